// session.run(feeds, { signal }): an abort stops the run between two ops on the worker thread,
// frees what it allocated and rejects with ERR_ABORTED (or the signal's reason); the session
// stays usable and later runs give the same outputs as before.
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { InferenceSession, Tensor } from '../lib';
import { ROOT } from './native-build';

const modelPath = join(ROOT, 'models', 'fashion-mnist-resnet.onnx');
let session: InferenceSession;
let big: Tensor, small: Tensor;

beforeAll(async () => {
  session = await InferenceSession.create(modelPath, { threads: 1 });
  // 512 images: tens of milliseconds of work even on a fast core, so an abort lands mid-run.
  big = new Tensor('float32', Float32Array.from({ length: 512 * 784 }, (_, i) => ((i * 2654435761) >>> 0) / 2 ** 32), [512, 1, 28, 28]);
  small = new Tensor('float32', big.data.slice(0, 4 * 784) as Float32Array, [4, 1, 28, 28]);
});

describe('InferenceSession.run with an AbortSignal', () => {
  it('an abort during the run rejects with ERR_ABORTED; the session keeps working', async () => {
    const before = (await session.run({ image: small })).logits.data;
    for (let i = 0; i < 5; i++) {
      const controller = new AbortController();
      const p = session.run({ image: big }, { signal: controller.signal });
      controller.abort();
      await expect(p).rejects.toMatchObject({ name: 'TernionError', code: 'ERR_ABORTED' });
    }
    expect((await session.run({ image: small })).logits.data).toEqual(before);
  });

  it('an already aborted signal rejects before any work; its reason wins when it is an Error', async () => {
    await expect(session.run({ image: small }, { signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'ERR_ABORTED' });
    const reason = new Error('client went away');
    await expect(session.run({ image: small }, { signal: AbortSignal.abort(reason) })).rejects.toBe(reason);
    const controller = new AbortController();
    const p = session.run({ image: big }, { signal: controller.signal });
    controller.abort(reason);
    await expect(p).rejects.toBe(reason);
  });

  it('a signal that never fires changes nothing; aborting after the run is harmless', async () => {
    const controller = new AbortController();
    const a = await session.run({ image: small }, { signal: controller.signal });
    controller.abort();
    expect(a.logits.data).toEqual((await session.run({ image: small })).logits.data);
  });

  it('many aborted runs do not hold on to their buffers', async () => {
    const rss0 = process.memoryUsage().rss;
    for (let i = 0; i < 40; i++) {
      const controller = new AbortController();
      const p = session.run({ image: big }, { signal: controller.signal });
      setTimeout(() => controller.abort(), i % 4);
      await p.catch((e) => expect(e.code).toBe('ERR_ABORTED'));
    }
    const grown = (process.memoryUsage().rss - rss0) / 2 ** 20;
    console.log(`RSS growth over 40 aborted runs: ${grown.toFixed(1)} MB`);
    // One run of this batch allocates ~150 MB of activations; 40 kept alive would be ~6 GB.
    expect(grown).toBeLessThan(400);
  });

  it('BAD CALL: options.signal must be an AbortSignal', async () => {
    await expect(session.run({ image: small }, { signal: {} as never })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT', message: expect.stringMatching(/options\.signal/) });
  });
});
