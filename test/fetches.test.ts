// run(feeds, fetches, options) as onnxruntime-node takes it: output names to return, or outputs
// mapped to null or to pre-allocated Tensors filled in place; checked side by side with
// onnxruntime-node on the same model and feeds.
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { InferenceSession, Tensor } from '../lib';
import { expectCode, expectRejection, rng } from './helpers';
import { toFloat16Model } from './half-models';
import { encodeModel, valueInfo } from './onnx-build-model';

// x [N, 6] -> Relu -> a [N, 6];  x -> MatMul w [6, 4] -> b [N, 4];  b -> Neg -> c (int output: Cast).
const w = Float32Array.from({ length: 24 }, (_, i) => ((i * 37) % 11) / 11 - 0.5);
const model = encodeModel({
  nodes: [
    { op: 'Relu', inputs: ['x'], outputs: ['a'], name: 'relu' },
    { op: 'MatMul', inputs: ['x', 'w'], outputs: ['b'], name: 'mm' },
    { op: 'Neg', inputs: ['b'], outputs: ['nb'], name: 'neg' },
    { op: 'Cast', inputs: ['nb'], outputs: ['c'], name: 'cast', attributes: [{ name: 'to', type: 2, i: 6 }] },
  ],
  inputs: [valueInfo('x', ['N', 6])],
  outputs: [valueInfo('a', ['N', 6]), valueInfo('b', ['N', 4]), valueInfo('c', ['N', 4], 6)],
  initializers: [{ name: 'w', dims: [6, 4], rawData: new Uint8Array(w.buffer) }],
});

function input(n: number, seed = 3): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n * 6 }, () => (r() - 0.5) * 20);
}


describe('run(feeds, fetches)', () => {
  // inlineBelowMs 0: every run() on the worker thread; a large one: on the calling thread.
  for (const [where, inlineBelowMs] of [['on the worker thread', 0], ['inline', 1e9]] as const) {
    it(`returns the outputs named, as onnxruntime-node does (${where})`, async () => {
      const s = await InferenceSession.create(model, { threads: 1, inlineBelowMs });
      const o = await ort.InferenceSession.create(model);
      const x = input(3);
      const feeds = { x: new Tensor('float32', x, [3, 6]) };
      const ortFeeds = { x: new ort.Tensor('float32', x, [3, 6]) };
      // The metadata too, field for field.
      expect(s.inputMetadata).toEqual(o.inputMetadata);
      expect(s.outputMetadata).toEqual(o.outputMetadata);
      await s.run(feeds); // a first run, so that later ones may go inline
      const all = await s.run(feeds);
      const ortAll = await o.run(ortFeeds);
      expect(Object.keys(all)).toEqual(['a', 'b', 'c']);
      for (const k of ['a', 'b', 'c']) expect(Array.from(all[k].data as ArrayLike<number>)).toEqual(Array.from(ortAll[k].data as ArrayLike<number>));

      const some = await s.run(feeds, ['c', 'a']);
      const ortSome = await o.run(ortFeeds, ['c', 'a']);
      expect(Object.keys(some).sort()).toEqual(Object.keys(ortSome).sort());
      expect(Array.from(some.c.data as Int32Array)).toEqual(Array.from(ortSome.c.data as Int32Array));
      expect(some.c.dims).toEqual([3, 4]);

      const viaNull = await s.run(feeds, { b: null });
      expect(Object.keys(viaNull)).toEqual(['b']);
      expect(Array.from(viaNull.b.data as Float32Array)).toEqual(Array.from(ortAll.b.data as Float32Array));
      expect(Object.keys(s.runSync(feeds, ['b']))).toEqual(['b']);
      await s.release();
      await o.release();
    });

    it(`writes into pre-allocated tensors and returns them (${where})`, async () => {
      const s = await InferenceSession.create(model, { threads: 1, inlineBelowMs });
      const o = await ort.InferenceSession.create(model);
      const x = input(2, 9);
      const feeds = { x: new Tensor('float32', x, [2, 6]) };
      await s.run(feeds);
      const b = new Tensor('float32', new Float32Array(8).fill(NaN), [2, 4]);
      const c = new Tensor('int32', new Int32Array(8).fill(-999), [2, 4]);
      const out = await s.run(feeds, { b, c });
      expect(Object.keys(out).sort()).toEqual(['b', 'c']);
      expect(out.b).toBe(b);
      expect(out.c).toBe(c);
      const ortB = new ort.Tensor('float32', new Float32Array(8), [2, 4]);
      const ortC = new ort.Tensor('int32', new Int32Array(8), [2, 4]);
      await o.run({ x: new ort.Tensor('float32', x, [2, 6]) }, { b: ortB, c: ortC });
      expect(Array.from(b.data as Float32Array)).toEqual(Array.from(ortB.data as Float32Array));
      expect(Array.from(c.data as Int32Array)).toEqual(Array.from(ortC.data as Int32Array));
      // A target that is a view into a larger buffer gets exactly its bytes.
      const backing = new Float32Array(20).fill(7);
      const view = new Tensor('float32', backing.subarray(4, 16), [2, 6]);
      s.runSync(feeds, { a: view });
      expect(Array.from(backing.subarray(0, 4))).toEqual([7, 7, 7, 7]);
      expect(Array.from(backing.subarray(16))).toEqual([7, 7, 7, 7]);
      expect(Array.from(backing.subarray(4, 16))).toEqual(Array.from(x, (v) => Math.max(0, v)));
      // The same tensors again with another input: filled anew.
      const x2 = input(2, 10);
      await s.run({ x: new Tensor('float32', x2, [2, 6]) }, { b });
      await o.run({ x: new ort.Tensor('float32', x2, [2, 6]) }, { b: ortB });
      expect(Array.from(b.data as Float32Array)).toEqual(Array.from(ortB.data as Float32Array));
      await s.release();
      await o.release();
    });
  }

  it('fills a float16 output of a half-precision model from the float32 it computed in', async () => {
    const half = toFloat16Model(model);
    const s = await InferenceSession.create(half, { threads: 1 });
    const o = await ort.InferenceSession.create(half);
    const xs = new Uint16Array(12);
    const r = rng(5);
    // Halves of small integers and halves: exact in float16.
    const values = Array.from({ length: 12 }, () => Math.round((r() - 0.5) * 16) / 2);
    const { numberToFloat16Bits } = await import('../lib/onnx/half-float');
    values.forEach((v, i) => (xs[i] = numberToFloat16Bits(v)));
    const b = new Tensor('float16', new Uint16Array(8), [2, 4]);
    const out = await s.run({ x: new Tensor('float16', xs, [2, 6]) }, { b });
    expect(out.b).toBe(b);
    const ortOut = await o.run({ x: new ort.Tensor('float16', xs, [2, 6]) }, ['b']);
    expect(Array.from(b.data as Uint16Array)).toEqual(Array.from(ortOut.b.data as Uint16Array));
    await expect(s.run({ x: new Tensor('float16', xs, [2, 6]) }, { b: new Tensor('float16', new Uint16Array(4), [1, 4]) })).rejects.toMatchObject({ code: 'ERR_SHAPE_MISMATCH' });
    await s.release();
    await o.release();
  });

  it('takes run options as the second argument when it names no output, or as the third', async () => {
    const s = await InferenceSession.create(model, { threads: 1, inlineBelowMs: 0 });
    const feeds = { x: new Tensor('float32', input(1), [1, 6]) };
    const aborted = AbortSignal.abort();
    await expectRejection(s.run(feeds, { signal: aborted }), 'ERR_ABORTED', /aborted/i);
    await expectRejection(s.run(feeds, ['a'], { signal: aborted }), 'ERR_ABORTED', /aborted/i);
    expect(Object.keys(await s.run(feeds, ['a'], {}))).toEqual(['a']);
    expect(Object.keys(await s.run(feeds, {}))).toEqual(['a', 'b', 'c']);
    await s.release();
  });

  it('refuses unknown outputs, wrong targets and ambiguous arguments, naming them; the session goes on working', async () => {
    const s = await InferenceSession.create(model, { threads: 1, inlineBelowMs: 0 });
    const feeds = { x: new Tensor('float32', input(2), [2, 6]) };
    await expectRejection(s.run(feeds, ['a', 'logits']), 'ERR_OUTPUT_NAME', /no output "logits" \(its outputs: "a", "b", "c"\)/);
    await expectRejection(s.run(feeds, { a: null, logits: null }), 'ERR_OUTPUT_NAME', /no output "logits"/);
    await expectRejection(s.run(feeds, []), 'ERR_INVALID_ARGUMENT', /empty/);
    await expectRejection(s.run(feeds, [3] as never), 'ERR_INVALID_ARGUMENT', /output names/);
    await expectRejection(s.run(feeds, null as never), 'ERR_INVALID_ARGUMENT', /second argument/);
    await expectRejection(s.run(feeds, feeds.x as never), 'ERR_INVALID_ARGUMENT', /second argument/);
    await expectRejection(s.run(feeds, { a: new Float32Array(12) } as never), 'ERR_INVALID_ARGUMENT', /null or a Tensor for output "a"/);
    await expectRejection(s.run(feeds, { logit: null } as never, {}), 'ERR_INVALID_ARGUMENT', /names none of the model's outputs/);
    // The dtype is checked before the run; dims the model fixes too; symbolic dims once computed.
    await expectRejection(s.run(feeds, { c: new Tensor('float32', new Float32Array(8), [2, 4]) }), 'ERR_DTYPE', /output "c" is float32 but the model's output is int32/);
    await expectRejection(s.run(feeds, { b: new Tensor('float32', new Float32Array(10), [2, 5]) }), 'ERR_SHAPE_MISMATCH', /output "b" has dims \[2, 5\] but the model's output is \[N, 4\]/);
    await expectRejection(s.run(feeds, { b: new Tensor('float32', new Float32Array(12), [3, 4]) }), 'ERR_SHAPE_MISMATCH', /output 'b' has dims \[3, 4\] but this run computed \[2, 4\]/);
    expectCode(() => s.runSync(feeds, { b: new Tensor('float32', new Float32Array(4), [1, 4]) }), 'ERR_SHAPE_MISMATCH', /this run computed \[2, 4\]/);
    const shared = new Float32Array(24);
    await expectRejection(
      s.run(feeds, { a: new Tensor('float32', shared.subarray(0, 12), [2, 6]), b: new Tensor('float32', shared.subarray(10, 18), [2, 4]) }),
      'ERR_INVALID_ARGUMENT',
      /share the same memory/,
    );
    expectCode(() => s.runSync(feeds, { signal: AbortSignal.abort() } as never), 'ERR_INVALID_ARGUMENT', /runSync takes no options/);
    // Disjoint parts of one buffer are fine, and the session still runs.
    const out = await s.run(feeds, { a: new Tensor('float32', shared.subarray(0, 12), [2, 6]), b: new Tensor('float32', shared.subarray(12, 20), [2, 4]) });
    expect(out.a.data.buffer).toBe(shared.buffer);
    expect(Array.from(shared.subarray(0, 12))).toEqual(Array.from(feeds.x.data as Float32Array, (v) => Math.max(0, v)));
    await s.release();
  });
});
