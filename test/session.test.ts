// InferenceSession's API (onnxruntime-node's shape): create from a path or bytes, metadata,
// run/runSync, feed validation with stable codes, concurrency, release.
import { readFileSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InferenceSession, Tensor } from '../lib';
import { expectCode, expectRejection, rng } from './helpers';
import { ROOT } from './native-build';
import { encodeModel, valueInfo } from './onnx-build-model';
import { nodeTestDir, readTestTensors } from './onnx-testdata';

const model = join(ROOT, 'models', 'fashion-mnist-resnet.onnx');

function images(n: number, seed = 1): Tensor {
  const r = rng(seed);
  return new Tensor('float32', Float32Array.from({ length: n * 784 }, () => r()), [n, 1, 28, 28]);
}

function collector(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

/** RSS once garbage is collected and V8 has freed the backing stores (a background thread). */
async function settle(gc: () => void): Promise<number> {
  let rss = Infinity;
  for (let i = 0; i < 10; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 50));
    const now = process.memoryUsage().rss;
    if (now >= rss - (1 << 20)) return Math.min(rss, now);
    rss = now;
  }
  return rss;
}


describe('InferenceSession', () => {
  it('loads from a path or bytes and describes its inputs and outputs', async () => {
    for (const source of [model, readFileSync(model), new Uint8Array(readFileSync(model)).buffer]) {
      const s = await InferenceSession.create(source);
      expect(s.inputNames).toEqual(['image']);
      expect(s.outputNames).toEqual(['logits']);
      expect(s.inputMetadata[0]).toMatchObject({ name: 'image', type: 'float32' });
      expect(s.inputMetadata[0].shape?.slice(1)).toEqual([1, 28, 28]);
      expect(typeof s.inputMetadata[0].shape?.[0]).toBe('string'); // symbolic batch
      await s.release();
    }
  });

  it('loads a model from inside an ArrayBuffer: create(buffer, byteOffset, byteLength?, options?), as onnxruntime-node', async () => {
    const bytes = readFileSync(model);
    const big = new Uint8Array(bytes.length + 100).fill(0xee);
    big.set(bytes, 60);
    const feeds = { image: images(1) };
    const whole = await InferenceSession.create(bytes);
    const want = (await whole.run(feeds)).logits.data;
    await whole.release();
    for (const s of [
      await InferenceSession.create(big.buffer, 60, bytes.length, { threads: 1 }),
      await InferenceSession.create(big.subarray(0, 60 + bytes.length).slice().buffer, 60),
    ]) {
      expect((await s.run(feeds)).logits.data).toEqual(want);
      await s.release();
    }
    await expectRejection(InferenceSession.create(big.buffer, big.length), 'ERR_INVALID_ARGUMENT', /byteOffset/);
    await expectRejection(InferenceSession.create(big.buffer, 60, big.length), 'ERR_INVALID_ARGUMENT', /byteLength/);
    await expectRejection(InferenceSession.create(bytes, 60 as never), 'ERR_INVALID_ARGUMENT', /a byte offset goes with an ArrayBuffer/);
    await expectRejection(InferenceSession.create(big.buffer, 61, bytes.length), 'ERR_MODEL_FORMAT');
  });

  it('reports the native memory it holds: packed weights and the arena of the last run', async () => {
    const s = await InferenceSession.create(model, { threads: 1 });
    const before = s.memoryUsage();
    expect(before.packedBytes).toBeGreaterThan(100_000); // the embedded model's weights, packed
    expect(before.arenaBytes).toBe(0);
    await s.run({ image: images(2) });
    const after = s.memoryUsage();
    expect(after.packedBytes).toBe(before.packedBytes);
    expect(after.arenaBytes).toBeGreaterThan(2 * 28 * 28 * 4); // at least the first activations
    await s.release();
    expectCode(() => s.memoryUsage(), 'ERR_SESSION_RELEASED');
  });

  it('writes each run\'s outputs into the blocks of the last run (copied out first), not into fresh pages', async () => {
    // x -> Relu -> Neg -> y: the output is a block of the run, copied into the returned tensor.
    // Kept after the copy, it is the next run's block for the same output (before, every run
    // allocated it anew and its first writer faulted its pages in).
    const n = 65536;
    const bytes = encodeModel({
      nodes: [
        { op: 'Relu', inputs: ['x'], outputs: ['h'], name: 'relu' },
        { op: 'Neg', inputs: ['h'], outputs: ['y'], name: 'neg' },
      ],
      inputs: [valueInfo('x', ['N', n])],
      outputs: [valueInfo('y', ['N', n])],
    });
    const s = await InferenceSession.create(bytes, { threads: 1 });
    expect(s.memoryUsage().arenaBytes).toBe(0);
    const feed = (v: number) => ({ x: new Tensor('float32', new Float32Array(n).fill(v), [1, n]) });
    const first = (await s.run(feed(1))).y.data as Float32Array;
    const afterOne = s.memoryUsage().arenaBytes;
    // The intermediate and the output: both blocks are kept.
    expect(afterOne).toBeGreaterThanOrEqual(2 * n * 4);
    const second = s.runSync(feed(2)).y.data as Float32Array;
    const third = (await s.run(feed(3))).y.data as Float32Array;
    // Each returned tensor is its own copy: later runs reusing the block leave it alone.
    expect([first[0], first[n - 1], second[0], second[n - 1], third[0], third[n - 1]]).toEqual([-1, -1, -2, -2, -3, -3]);
    for (let i = 0; i < 5; i++) s.runSync(feed(i));
    expect(s.memoryUsage().arenaBytes).toBe(afterOne); // reused, not accumulated
    await s.release();
  });

  it('gives its packed weights back to the OS on release, even once malloc has moved big blocks to its heap', async () => {
    // glibc raises its mmap threshold to the largest block freed so far; blocks under it come from
    // the heap, where a freed one stays resident. Free a 30 MB block first, as a service that has
    // read a model file has, then hold and release a session with 16 MB of packed weights.
    const gc = collector();
    let big: Buffer | undefined = Buffer.allocUnsafeSlow(30 << 20).fill(1);
    expect(big[12345]).toBe(1);
    big = undefined;
    await settle(gc);
    const K = 2048;
    const w = new Float32Array(K * K).map((_, i) => ((i * 7919) % 255) / 255 - 0.5);
    const bytes = encodeModel({
      nodes: [{ op: 'MatMul', inputs: ['x', 'w'], outputs: ['y'], name: 'mm' }],
      inputs: [valueInfo('x', ['N', K])],
      outputs: [valueInfo('y', ['N', K])],
      initializers: [{ name: 'w', dims: [K, K], rawData: new Uint8Array(w.buffer) }],
    });
    const s = await InferenceSession.create(bytes, { threads: 1 });
    await s.run({ x: new Tensor('float32', new Float32Array(K).fill(0.25), [1, K]) });
    const packed = s.memoryUsage().packedBytes;
    expect(packed).toBeGreaterThanOrEqual(K * K * 4);
    const held = await settle(gc);
    await s.release();
    const after = await settle(gc);
    expect(bytes.length).toBeGreaterThan(K * K * 4); // the model bytes stay referenced: only the session went
    expect(held - after).toBeGreaterThan(0.8 * packed);
  });

  it('run and runSync agree, for any batch size', async () => {
    const s = await InferenceSession.create(model, { threads: 2 });
    for (const n of [1, 3, 8]) {
      const x = images(n, n);
      const a = await s.run({ image: x });
      const b = s.runSync({ image: x });
      expect(a.logits.dims).toEqual([n, 10]);
      expect(Array.from(a.logits.data as Float32Array)).toEqual(Array.from(b.logits.data as Float32Array));
    }
    await s.release();
  });

  it('concurrent runs on one session give the results of sequential runs', async () => {
    const s = await InferenceSession.create(model);
    const inputs = Array.from({ length: 8 }, (_, i) => images(2, 100 + i));
    const sequential = [];
    for (const x of inputs) sequential.push(Array.from((await s.run({ image: x })).logits.data as Float32Array));
    const concurrent = await Promise.all(inputs.map((x) => s.run({ image: x })));
    concurrent.forEach((o, i) => expect(Array.from(o.logits.data as Float32Array)).toEqual(sequential[i]));
    await s.release();
  });

  // Which thread runs: the native handle's run (worker) and runSync (inline) calls, counted.
  function countCalls(s: InferenceSession) {
    const handle = (s as unknown as { handle: Record<string, (...a: unknown[]) => unknown> }).handle;
    const calls = { worker: 0, inline: 0 };
    const run = handle.run.bind(handle), runSync = handle.runSync.bind(handle);
    (s as unknown as { handle: unknown }).handle = {
      ...Object.fromEntries(['release', 'memoryUsage'].map((k) => [k, handle[k].bind(handle)])),
      run: (...a: unknown[]) => (calls.worker++, run(...a)),
      runSync: (...a: unknown[]) => (calls.inline++, runSync(...a)),
    };
    return calls;
  }

  it('runs known-short inferences inline when nothing else is in flight, the others on a worker', async () => {
    // A generous bound so that timing cannot decide here: every run of this model is "short".
    const s = await InferenceSession.create(model, { threads: 1, inlineBelowMs: 1e6 });
    const calls = countCalls(s);
    const x = images(1, 7);
    const first = Array.from((await s.run({ image: x })).logits.data as Float32Array);
    expect(calls).toEqual({ worker: 1, inline: 0 }); // unknown shapes: measured on a worker first
    const second = Array.from((await s.run({ image: x })).logits.data as Float32Array);
    expect(calls).toEqual({ worker: 1, inline: 1 });
    expect(second).toEqual(first);
    await s.run({ image: images(3) }); // new input shapes: a worker again
    expect(calls).toEqual({ worker: 2, inline: 1 });
    // Runs started together: each known-short one completes inline before run() returns, so
    // none is ever in flight and all four run inline, with the results of runSync.
    const inputs = Array.from({ length: 4 }, (_, i) => images(1, 50 + i));
    const pending = inputs.map((v) => s.run({ image: v }));
    expect(calls).toEqual({ worker: 2, inline: 5 });
    const outs = await Promise.all(pending);
    for (let i = 0; i < inputs.length; i++) {
      expect(Array.from(outs[i].logits.data as Float32Array)).toEqual(Array.from((s.runSync({ image: inputs[i] })).logits.data as Float32Array));
    }
    await s.release();
  });

  it('sends runs to a worker while another run of the session is in flight, and always with inlineBelowMs 0', async () => {
    const s = await InferenceSession.create(model, { threads: 1, inlineBelowMs: 1e6 });
    const calls = countCalls(s);
    await s.run({ image: images(64) }); // measured on a worker
    const a = s.run({ image: images(64, 2) }); // known-short by the bound: inline, done before run() returns
    expect(calls).toEqual({ worker: 1, inline: 1 });
    await a;
    const big = s.run({ image: images(512) }); // unknown shapes: worker, in flight
    const during = s.run({ image: images(64, 3) }); // known-short, but a run is in flight: worker
    expect(calls).toEqual({ worker: 3, inline: 1 });
    await Promise.all([big, during]);
    await s.release();

    const never = await InferenceSession.create(model, { threads: 1, inlineBelowMs: 0 });
    const c0 = countCalls(never);
    for (let i = 0; i < 3; i++) await never.run({ image: images(1) });
    expect(c0).toEqual({ worker: 3, inline: 0 });
    await never.release();
  });

  it('takes int64 and bool tensors for index and shape inputs', async () => {
    const dir = nodeTestDir('test_gather_0');
    const s = await InferenceSession.create(join(dir, 'model.onnx'));
    const [data, idx] = readTestTensors(dir, 'input');
    expect(idx.dtype).toBe('int64');
    const out = await s.run({
      [s.inputNames[0]]: new Tensor('float32', data.data as Float32Array, data.dims),
      [s.inputNames[1]]: new Tensor('int64', idx.data as BigInt64Array, idx.dims),
    });
    expect(out[s.outputNames[0]].dims).toEqual([...readTestTensors(dir, 'output')[0].dims]);
    await s.release();
    const b = await InferenceSession.create(join(nodeTestDir('test_dropout_default_mask'), 'model.onnx'));
    const bx = readTestTensors(nodeTestDir('test_dropout_default_mask'), 'input')[0];
    const bo = await b.run({ [b.inputNames[0]]: new Tensor('float32', bx.data as Float32Array, bx.dims) });
    const mask = bo[b.outputNames[1]];
    expect(mask.type).toBe('bool');
    expect(Array.from(mask.data as Uint8Array).every((v) => v === 1)).toBe(true);
    await b.release();
  });

  describe('BAD CALL', () => {
    it('feeds with unknown or missing names', async () => {
      const s = await InferenceSession.create(model);
      await expectRejection(s.run({ img: images(1) } as never), 'ERR_INPUT_NAME', /no input "img" \(its inputs: "image"\)/);
      await expectRejection(s.run({}), 'ERR_INPUT_NAME', /Missing feed for input "image"/);
      await s.release();
    });
    it('wrong dtype or shape', async () => {
      const s = await InferenceSession.create(model);
      await expectRejection(s.run({ image: new Tensor('uint8', new Uint8Array(784), [1, 1, 28, 28]) }), 'ERR_DTYPE', /"image" is uint8 but the model expects float32/);
      await expectRejection(s.run({ image: new Tensor('float32', new Float32Array(784), [1, 28, 28]) }), 'ERR_SHAPE_MISMATCH', /dims \[1, 28, 28\] but the model expects \[.*, 1, 28, 28\]/);
      await expectRejection(s.run({ image: new Tensor('float32', new Float32Array(2 * 784), [1, 2, 28, 28]) }), 'ERR_SHAPE_MISMATCH', /\[1, 2, 28, 28\]/);
      await expectRejection(s.run({ image: new Float32Array(784) as never }), 'ERR_INVALID_ARGUMENT', /Expected a Tensor for feed "image"/);
      await expectRejection(s.run(null as never), 'ERR_INVALID_ARGUMENT', /feeds/);
      await s.release();
    });
    it('a released session', async () => {
      const s = await InferenceSession.create(model);
      await s.release();
      await expectRejection(s.run({ image: images(1) }), 'ERR_SESSION_RELEASED', /released/);
      expectCode(() => s.runSync({ image: images(1) }), 'ERR_SESSION_RELEASED');
    });
    it('bad options, with a hint for misspellings', async () => {
      await expectRejection(InferenceSession.create(model, { Threads: 2 } as never), 'ERR_INVALID_ARGUMENT', /Unknown option "Threads" \(did you mean "threads"\?\)/);
      await expectRejection(InferenceSession.create(model, { threads: 0 }), 'ERR_INVALID_ARGUMENT', /options.threads/);
      await expectRejection(InferenceSession.create(model, { precision: 'int3' as never }), 'ERR_INVALID_ARGUMENT', /options.precision/);
      for (const bad of [-1, Number.NaN, Infinity, '0.5']) {
        await expectRejection(InferenceSession.create(model, { inlineBelowMs: bad as never }), 'ERR_INVALID_ARGUMENT', /options.inlineBelowMs/);
      }
    });
    it('a missing file, or bytes that are not a model', async () => {
      await expectRejection(InferenceSession.create('/nonexistent/model.onnx'), 'ERR_INVALID_ARGUMENT', /Cannot read model file "\/nonexistent\/model.onnx"/);
      await expectRejection(InferenceSession.create(new Uint8Array([1, 2, 3, 4, 5])), 'ERR_MODEL_FORMAT', /Not a valid ONNX model/);
      await expectRejection(InferenceSession.create(42 as never), 'ERR_INVALID_ARGUMENT', /path or the bytes/);
    });
  });
});
