// Fuzzes model loading end to end: a few thousand mutations (bit flips, byte overwrites,
// truncations, splices) of real ONNX files go through InferenceSession.create and, when they
// load, one run. Every outcome must be a result or a TernionError: never a crash, a hang, a
// raw exception, or a huge allocation. Seeded, so a failure reproduces.
import { describe, expect, it } from 'vitest';
import { InferenceSession, Tensor, TernionError } from '../lib';
import { nodeTestDir, readModelBytes } from './onnx-testdata';
import { randInt, rng } from './helpers';

const SEEDS = ['test_conv_with_strides_padding', 'test_gemm_all_attributes', 'test_maxpool_2d_pads', 'test_batchnorm_example', 'test_reshape_negative_dim', 'test_softmax_axis_1'];

function mutate(src: Uint8Array, r: () => number): Uint8Array {
  const b = new Uint8Array(src);
  switch (randInt(r, 0, 4)) {
    case 0: // flip a few bits
      for (let i = randInt(r, 1, 8); i > 0; i--) b[randInt(r, 0, b.length - 1)] ^= 1 << randInt(r, 0, 7);
      return b;
    case 1: // overwrite bytes with extremes (varint lengths, dims)
      for (let i = randInt(r, 1, 4); i > 0; i--) b[randInt(r, 0, b.length - 1)] = [0, 0xff, 0x7f, 0x80][randInt(r, 0, 3)];
      return b;
    case 2: // truncate
      return b.subarray(0, randInt(r, 0, b.length - 1));
    case 3: { // splice a chunk of itself elsewhere
      const from = randInt(r, 0, b.length - 1), len = randInt(r, 1, 32), to = randInt(r, 0, b.length - 1);
      const out = new Uint8Array(b.length + len);
      out.set(b.subarray(0, to));
      out.set(b.subarray(from, from + len), to);
      out.set(b.subarray(to), to + Math.min(len, b.length - from));
      return out.subarray(0, b.length + Math.min(len, b.length - from));
    }
    default: // random garbage of the same length
      return b.map(() => randInt(r, 0, 255));
  }
}

function zeroFeeds(session: InferenceSession): Record<string, Tensor> {
  const feeds: Record<string, Tensor> = {};
  for (const m of session.inputMetadata) {
    const dims = (m.shape ?? [1]).map((d) => (typeof d === 'number' ? Math.min(d, 64) : 1));
    const n = dims.reduce((a, d) => a * d, 1);
    const data = m.type === 'int64' ? new BigInt64Array(n) : m.type === 'float32' ? new Float32Array(n) : m.type === 'int32' ? new Int32Array(n) : m.type === 'int8' ? new Int8Array(n) : new Uint8Array(n);
    feeds[m.name] = new Tensor(m.type as 'float32', data as Float32Array, dims);
  }
  return feeds;
}

describe('loader fuzzing', () => {
  it('3000 mutated models give results or TernionErrors, nothing else', async () => {
    const r = rng(424242);
    const originals = SEEDS.map((s) => readModelBytes(nodeTestDir(s)));
    const outcomes = { loaded: 0, ran: 0, rejected: 0 };
    for (let i = 0; i < 3000; i++) {
      const bytes = mutate(originals[i % originals.length], r);
      let session: InferenceSession | undefined;
      try {
        session = await InferenceSession.create(bytes, { threads: 1 });
        outcomes.loaded++;
        await session.run(zeroFeeds(session));
        outcomes.ran++;
      } catch (e) {
        if (!(e instanceof TernionError)) throw new Error(`mutation ${i} (seed 424242) threw a non-TernionError: ${(e as Error)?.stack ?? e}`);
        outcomes.rejected++;
      } finally {
        await session?.release();
      }
    }
    expect(outcomes.rejected).toBeGreaterThan(500);
    expect(outcomes.loaded).toBeGreaterThan(50);
  }, 600_000);
});
