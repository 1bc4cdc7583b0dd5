// examples/server/batcher.js without HTTP: dynamic batching over a real session of the embedded
// model (stacking, splitting, the window, maxBatch, the queue bound, aborts, close), compared
// with direct session.run calls on the same samples.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureDist, nodeRequire } from './ensure-dist';
import { ROOT } from './native-build';

/* eslint-disable @typescript-eslint/no-explicit-any */
let api: any; // ternion as the example loads it (dist/)
let B: any; // examples/server/batcher.js
let session: any;
let pixels: Float32Array; // the first 64 test images, [0, 1]
let direct: Float32Array; // their logits, one direct run per image

const MODEL = join(ROOT, 'models', 'fashion-mnist-resnet.onnx');

function sample(i: number, n = 1): any {
  return { image: new api.Tensor('float32', pixels.slice(i * 784, (i + n) * 784), [n, 1, 28, 28]) };
}

function expectLogits(t: any, first: number, n = 1): void {
  expect(t.dims).toEqual([n, 10]);
  const want = direct.subarray(first * 10, (first + n) * 10);
  for (let i = 0; i < want.length; i++) expect(t.data[i]).toBeCloseTo(want[i], 4);
}

beforeAll(async () => {
  await ensureDist();
  api = nodeRequire('./examples/server/ternion.js').ternion();
  B = nodeRequire('./examples/server/batcher.js');
  session = await api.InferenceSession.create(MODEL, { threads: 1 });
  const images = api.loadNpy(join(ROOT, 'data', 'fashion-mnist-test-images.npy')).data as Uint8Array;
  pixels = Float32Array.from(images.subarray(0, 64 * 784), (v) => v / 255);
  direct = new Float32Array(64 * 10);
  for (let i = 0; i < 64; i++) direct.set((await session.run(sample(i))).logits.data, i * 10);
});

afterAll(async () => {
  await session?.release();
});

describe('Batcher', () => {
  it('stacks requests that arrive within the window into one run and gives each its own rows', async () => {
    const batches: any[] = [];
    const b = new B.Batcher(session, { windowMs: 30, onBatch: (x: any) => batches.push(x) });
    expect(b.batching).toBe(true);
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => b.infer(sample(i))));
    expect(batches.map((x) => x.size)).toEqual([8]);
    results.forEach((r, i) => {
      expect(r.batchSize).toBe(8);
      expect(r.requests).toBe(8);
      expectLogits(r.outputs.logits, i);
    });
    expect(b.depth).toBe(0);
  });

  it('requests with several samples are stacked and split by their own counts', async () => {
    const b = new B.Batcher(session, { windowMs: 30 });
    const [r1, r2, r3] = await Promise.all([b.infer(sample(0, 3)), b.infer(sample(3, 1)), b.infer(sample(4, 5))]);
    expect([r1.batchSize, r2.batchSize, r3.batchSize]).toEqual([9, 9, 9]);
    expectLogits(r1.outputs.logits, 0, 3);
    expectLogits(r2.outputs.logits, 3, 1);
    expectLogits(r3.outputs.logits, 4, 5);
  });

  it('never puts more than maxBatch samples in a run, and keeps request order', async () => {
    const sizes: number[] = [];
    const b = new B.Batcher(session, { windowMs: 30, maxBatch: 4, onBatch: (x: any) => sizes.push(x.size) });
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => b.infer(sample(10 + i))));
    expect(sizes).toEqual([4, 4, 2]);
    results.forEach((r, i) => expectLogits(r.outputs.logits, 10 + i));
  });

  it('windowMs 0 turns batching off: every request runs alone', async () => {
    const sizes: number[] = [];
    const b = new B.Batcher(session, { windowMs: 0, onBatch: (x: any) => sizes.push(x.size) });
    expect(b.batching).toBe(false);
    const results = await Promise.all(Array.from({ length: 5 }, (_, i) => b.infer(sample(20 + i))));
    expect(sizes).toEqual([1, 1, 1, 1, 1]);
    results.forEach((r, i) => {
      expect(r.batchSize).toBe(1);
      expectLogits(r.outputs.logits, 20 + i);
    });
  });

  it('requests that arrive while the run slot is busy go together into the next run', async () => {
    const sizes: number[] = [];
    const b = new B.Batcher(session, { windowMs: 1, concurrency: 1, onBatch: (x: any) => sizes.push(x.size) });
    const first = b.infer(sample(30, 16));
    // Wait until the first run has started. On a fast CPU it can start and finish within one
    // turn of the event loop (its completion arrives in the same poll phase), so a finished run
    // (onBatch called) ends the wait too instead of spinning until the test times out.
    while (b.inFlight === 0 && sizes.length === 0) await new Promise((r) => setImmediate(r));
    const rest = Array.from({ length: 6 }, (_, i) => b.infer(sample(46 + i)));
    const results = await Promise.all([first, ...rest]);
    expect(sizes[0]).toBe(16);
    expect(sizes.slice(1).reduce((a, x) => a + x, 0)).toBe(6);
    expect(Math.max(...sizes.slice(1))).toBeGreaterThan(1);
    results.slice(1).forEach((r, i) => expectLogits(r.outputs.logits, 46 + i));
  });

  it('FULL QUEUE - past maxQueue waiting samples, infer rejects at once with ERR_QUEUE_FULL and a retry-after', async () => {
    const b = new B.Batcher(session, { windowMs: 50, maxQueue: 3 });
    const ok = [b.infer(sample(0, 2)), b.infer(sample(2))];
    expect(b.depth).toBe(3);
    const refused = await b.infer(sample(3)).then(() => null, (e: any) => e);
    expect(refused).toMatchObject({ code: 'ERR_QUEUE_FULL', statusCode: 503 });
    expect(refused.retryAfterSeconds).toBeGreaterThanOrEqual(1);
    const huge = await b.infer(sample(0, 4)).then(() => null, (e: any) => e);
    expect(huge).toMatchObject({ code: 'ERR_PAYLOAD_TOO_LARGE', statusCode: 413 });
    const done = await Promise.all(ok);
    expect(done.map((r) => r.batchSize)).toEqual([3, 3]);
    expect(b.depth).toBe(0);
    // Room again once the queue has drained.
    expect((await b.infer(sample(3))).batchSize).toBe(1);
  });

  it('BAD FEEDS - are refused before queueing (name, dtype, dims, empty batch) and never fail a batch', async () => {
    const b = new B.Batcher(session, { windowMs: 20 });
    const good = b.infer(sample(5));
    const T = api.Tensor;
    const cases: [any, string][] = [
      [{ pixels: sample(0).image }, 'ERR_INPUT_NAME'],
      [{}, 'ERR_INPUT_NAME'],
      [{ image: new T('int32', new Int32Array(784), [1, 1, 28, 28]) }, 'ERR_DTYPE'],
      [{ image: new T('float32', new Float32Array(784), [1, 28, 28]) }, 'ERR_SHAPE_MISMATCH'],
      [{ image: new T('float32', new Float32Array(784), [1, 1, 14, 56]) }, 'ERR_SHAPE_MISMATCH'],
      [{ image: new T('float32', new Float32Array(0), [0, 1, 28, 28]) }, 'ERR_SHAPE_MISMATCH'],
      [{ image: [1, 2, 3] }, 'ERR_INVALID_ARGUMENT'],
    ];
    for (const [feeds, code] of cases) {
      await expect(b.infer(feeds)).rejects.toMatchObject({ name: 'TernionError', code });
    }
    expect(b.depth).toBe(1);
    const r = await good;
    expect(r.batchSize).toBe(1);
    expectLogits(r.outputs.logits, 5);
  });

  it('an abort while queued takes the request out; the others run', async () => {
    const b = new B.Batcher(session, { windowMs: 30 });
    const ac = new AbortController();
    const kept = b.infer(sample(6));
    const dropped = b.infer(sample(7), { signal: ac.signal });
    expect(b.depth).toBe(2);
    ac.abort();
    await expect(dropped).rejects.toMatchObject({ code: 'ERR_ABORTED' });
    expect(b.depth).toBe(1);
    const r = await kept;
    expect(r.batchSize).toBe(1);
    expectLogits(r.outputs.logits, 6);
    await expect(b.infer(sample(0), { signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'ERR_ABORTED' });
  });

  it('close() answers what is queued, then refuses new requests with ERR_SHUTTING_DOWN', async () => {
    const b = new B.Batcher(session, { windowMs: 30 });
    const queued = [b.infer(sample(8)), b.infer(sample(9))];
    const closed = b.close();
    await expect(b.infer(sample(0))).rejects.toMatchObject({ code: 'ERR_SHUTTING_DOWN', statusCode: 503 });
    const results = await Promise.all(queued);
    await closed;
    expectLogits(results[1].outputs.logits, 9);
    expect(b.depth).toBe(0);
    expect(b.inFlight).toBe(0);
  });

  it('only a symbolic batch dim shared by every input and output is batched', () => {
    const meta = (inputs: any[], outputs: any[]) => ({ inputMetadata: inputs.map((shape, i) => ({ name: `i${i}`, type: 'float32', shape })), outputMetadata: outputs.map((shape, i) => ({ name: `o${i}`, type: 'float32', shape })) });
    expect(B.batchSymbol(session)).toBe('batch');
    expect(B.batchSymbol(meta([['N', 3]], [['N', 2]]))).toBe('N');
    expect(B.batchSymbol(meta([[1, 3]], [[1, 2]]))).toBeNull(); // fixed batch
    expect(B.batchSymbol(meta([['N', 3], ['M', 3]], [['N', 2]]))).toBeNull(); // two symbols
    expect(B.batchSymbol(meta([['N', 3]], [[2]]))).toBeNull(); // an output without the batch
    expect(B.batchSymbol(meta([undefined], [['N']]))).toBeNull(); // unknown shape
    expect(B.batchSymbol(meta([['N', 'N']], [['N']]))).toBeNull(); // the symbol repeats in a sample
    // Requests whose other symbolic dims differ cannot share a run: their keys differ.
    const inputs = [{ name: 'x', type: 'float32', shape: ['N', 'L'] }];
    const k = (n: number, l: number) => B.checkFeeds({ x: new api.Tensor('float32', new Float32Array(n * l), [n, l]) }, inputs, 'N');
    expect(k(2, 5)).toEqual({ samples: 2, key: k(1, 5).key });
    expect(k(1, 6).key).not.toBe(k(1, 5).key);
  });
});
