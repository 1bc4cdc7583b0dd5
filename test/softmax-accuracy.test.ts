// Softmax / LogSoftmax along the last axis run on ternion's vectorized exp (native/exec/ops/
// softmax.cc): checked against a float64 softmax on rows of every length, with attention-mask
// values (-inf, -1e9), far tails, and the same bits on 1 and 2 threads.
import { describe, expect, it } from 'vitest';
import { InferenceSession, Tensor } from '../lib';
import { encodeModel, valueInfo } from './onnx-build-model';

function model(op: string): Uint8Array {
  return encodeModel({ nodes: [{ op, inputs: ['x'], outputs: ['y'] }], inputs: [valueInfo('x', ['R', 'N'])], outputs: [valueInfo('y', ['R', 'N'])] });
}

function rows(n: number, count: number, seed: number): Float32Array {
  let s = seed;
  const x = new Float32Array(n * count);
  for (let i = 0; i < x.length; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    x[i] = (s / 2147483648 - 0.5) * 30;
  }
  // Row 0: a masked half (-inf and -1e9), row 1: a far tail (100 below the max), row 2: constant.
  for (let i = 0; i < n; i++) {
    if (i % 2 === 1) x[i] = i % 4 === 1 ? -Infinity : -1e9;
    if (count > 1 && i % 3 === 0) x[n + i] = x[n] - 100;
    if (count > 2) x[2 * n + i] = 1.5;
  }
  if (n > 1) x[0] = 3; // keep row 0's maximum finite
  return x;
}

describe('Softmax on the vectorized exp', () => {
  for (const n of [1, 7, 197, 1000, 50000]) {
    it(`matches float64 softmax and log-softmax on rows of ${n}, masks to exact 0, the same on 1 and 2 threads`, async () => {
      const count = 4;
      const x = rows(n, count, n);
      const feed = { x: new Tensor('float32', x, [count, n]) };
      const soft = await InferenceSession.create(model('Softmax'), { threads: 1 });
      const y = (await soft.run(feed)).y.data as Float32Array;
      const y2 = (await (await InferenceSession.create(model('Softmax'), { threads: 2 })).run(feed)).y.data as Float32Array;
      expect(Buffer.from(y.buffer, y.byteOffset, y.byteLength).equals(Buffer.from(y2.buffer, y2.byteOffset, y2.byteLength))).toBe(true);
      const logy = (await (await InferenceSession.create(model('LogSoftmax'), { threads: 1 })).run(feed)).y.data as Float32Array;
      for (let r = 0; r < count; r++) {
        let max = -Infinity;
        for (let i = 0; i < n; i++) max = Math.max(max, x[r * n + i]);
        let sum = 0;
        for (let i = 0; i < n; i++) sum += Math.exp(x[r * n + i] - max);
        let total = 0;
        for (let i = 0; i < n; i++) {
          const k = r * n + i;
          const want = Math.exp(x[k] - max) / sum;
          // x - max is rounded to float first (as in any float softmax): half an ulp of it
          // moves e^(x - max) by that much relatively.
          const d = Number.isFinite(x[k]) ? Math.abs(x[k] - max) : 0; // -inf: want 0, exactly
          expect(Math.abs(y[k] - want), `row ${r} index ${i}`).toBeLessThanOrEqual((4e-7 + d * 2 ** -23) * want + 1e-38);
          const wantLog = x[k] - max - Math.log(sum);
          if (Number.isFinite(wantLog)) expect(Math.abs(logy[k] - wantLog)).toBeLessThanOrEqual(4e-7 * Math.abs(wantLog) + 1e-6);
          total += y[k];
        }
        expect(Math.abs(total - 1)).toBeLessThan(1e-5);
        if (r === 0 && n > 1) for (let i = 1; i < n; i += 2) expect(y[i]).toBe(0); // -inf and -1e9 masks
      }
    });
  }

  it('propagates NaN in a row and leaves other rows alone', async () => {
    const x = Float32Array.of(1, NaN, 2, 0.5, 1, 2);
    const y = (await (await InferenceSession.create(model('Softmax'))).run({ x: new Tensor('float32', x, [2, 3]) })).y.data as Float32Array;
    expect(Array.from(y.subarray(0, 3)).every(Number.isNaN)).toBe(true);
    expect(Array.from(y.subarray(3)).every((v) => v > 0 && v < 1)).toBe(true);
  });
});
