// The ops a LayerNorm (and GELU's tanh form) is written out with, on their fast paths:
// ReduceMean / ReduceSum of float32 over trailing axes (native/exec/ops/reduce.cc: a contiguous
// loop, eight double partial sums in a fixed order), checked against float64 sums, against the
// general path, and across threads; Pow by 2 and by 3 (native/exec/ops/math.cc) against x^2
// and x^3.
import { describe, expect, it } from 'vitest';
import { InferenceSession, Tensor } from '../lib';
import { INT64, encodeModel, valueInfo } from './onnx-build-model';

const INTS = 7;
/** Opset 13: ReduceMean takes its axes as an attribute, ReduceSum as an input. */
function model(op: string, axes: number[], rank: number): Uint8Array {
  const asInput = op === 'ReduceSum';
  return encodeModel({
    nodes: [{
      op, inputs: asInput ? ['x', 'axes'] : ['x'], outputs: ['y'],
      attributes: [...(asInput ? [] : [{ name: 'axes', type: INTS, ints: axes }]), { name: 'keepdims', type: 2, i: 0 }],
    }],
    inputs: [valueInfo('x', Array.from({ length: rank }, (_, i) => `d${i}`))],
    outputs: [{ name: 'y', type: { tensor_type: { elem_type: 1 } } }],
    initializers: asInput ? [{ name: 'axes', dataType: INT64, dims: [axes.length], int64Data: axes }] : [],
  });
}

describe('last-axis float reductions', () => {
  for (const n of [1, 7, 8, 9, 100, 1001]) {
    it(`ReduceMean and ReduceSum over a last axis of ${n} match float64, whatever the threads`, async () => {
      const rows = 37;
      const x = Float32Array.from({ length: rows * n }, (_, i) => Math.sin(i * 0.731) * 100 + (i % 5 === 0 ? 1e6 : 0));
      for (const op of ['ReduceMean', 'ReduceSum']) {
        const y1 = (await (await InferenceSession.create(model(op, [1], 2), { threads: 1 })).run({ x: new Tensor('float32', x, [rows, n]) })).y.data as Float32Array;
        const y2 = (await (await InferenceSession.create(model(op, [-1], 2), { threads: 2 })).run({ x: new Tensor('float32', x, [rows, n]) })).y.data as Float32Array;
        expect(Array.from(y2)).toEqual(Array.from(y1));
        for (let r = 0; r < rows; r++) {
          let sum = 0;
          for (let i = 0; i < n; i++) sum += x[r * n + i];
          const want = Math.fround(op === 'ReduceMean' ? sum / n : sum);
          expect(Math.abs(y1[r] - want)).toBeLessThanOrEqual(Math.abs(want) * 2 ** -23);
        }
      }
    });
  }

  it('agrees with the general path: trailing axes [1, 2] of a 3-D tensor, and [0, 2] (not trailing)', async () => {
    const x = Float32Array.from({ length: 4 * 5 * 6 }, (_, i) => Math.cos(i * 0.3) * 10);
    const t = new Tensor('float32', x, [4, 5, 6]);
    const trailing = (await (await InferenceSession.create(model('ReduceMean', [1, 2], 3))).run({ x: t })).y.data as Float32Array;
    for (let a = 0; a < 4; a++) {
      let s = 0;
      for (let i = 0; i < 30; i++) s += x[a * 30 + i];
      expect(Math.abs(trailing[a] - s / 30)).toBeLessThanOrEqual(Math.abs(s / 30) * 2 ** -23 + 1e-12);
    }
    const mixed = (await (await InferenceSession.create(model('ReduceMean', [0, 2], 3))).run({ x: t })).y.data as Float32Array;
    for (let b = 0; b < 5; b++) {
      let s = 0;
      for (let a = 0; a < 4; a++) for (let c = 0; c < 6; c++) s += x[a * 30 + b * 6 + c];
      expect(Math.abs(mixed[b] - s / 24)).toBeLessThanOrEqual(Math.abs(s / 24) * 2 ** -23 + 1e-12);
    }
  });
});

describe('Pow by 2 and 3 (LayerNorm variance, GELU tanh form)', () => {
  it('squares rounded once and cubes within an ulp of x^3, NaN and infinities as powf', async () => {
    const x = Float32Array.from({ length: 40001 }, (_, i) => Math.fround((i - 20000) * 0.00173));
    x[0] = NaN; x[1] = Infinity; x[2] = -Infinity; x[3] = -0;
    for (const e of [2, 3]) {
      const bytes = encodeModel({
        nodes: [{ op: 'Pow', inputs: ['x', 'e'], outputs: ['y'] }],
        inputs: [valueInfo('x', ['N'])], outputs: [valueInfo('y', ['N'])],
        initializers: [{ name: 'e', dims: [], floatData: [e] }],
      });
      const y = (await (await InferenceSession.create(bytes)).run({ x: new Tensor('float32', x, [x.length]) })).y.data as Float32Array;
      for (let i = 4; i < x.length; i++) {
        const want = x[i] ** e;
        const ulp = Math.max(2 ** -149, 2 ** (Math.floor(Math.log2(Math.abs(Math.fround(want)) || 1)) - 23));
        if (e === 2) expect(y[i]).toBe(Math.fround(want));
        else expect(Math.abs(y[i] - want)).toBeLessThanOrEqual(ulp);
      }
      expect(Number.isNaN(y[0])).toBe(true);
      expect([y[1], y[2]]).toEqual([Infinity, e === 2 ? Infinity : -Infinity]);
      expect(Object.is(y[3], e === 2 ? 0 : -0)).toBe(true);
    }
  });
});
