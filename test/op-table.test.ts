// One source of truth for "supported": every op the loader's table accepts (lib/ir/ops.ts) has a
// native implementation, so an accepted model never fails later for a missing op. Gelu has no
// conformance data in ONNX 1.12's test set, so it is checked here against its definition.
import { describe, expect, it } from 'vitest';
import { InferenceSession, Tensor } from '../lib';
import { supportedOps } from '../lib/ir';
import { native } from '../lib/native';
import { encodeModel, valueInfo } from './onnx-build-model';

describe('op table', () => {
  it('every op the loader accepts is implemented by the executor', () => {
    const implemented = new Set((native() as unknown as { registeredOps(): string[] }).registeredOps());
    const missing = supportedOps().map((o) => o.opType).filter((op) => !implemented.has(op));
    expect(missing).toEqual([]);
  });

  it('Gelu (opset 20), exact and tanh forms, matches its definition', async () => {
    const erf = (x: number) => {
      // Abramowitz-Stegun 7.1.26 is too coarse; integrate the series instead (|x| < 6 here).
      let sum = 0, term = x;
      for (let n = 0; n < 200; n++) {
        sum += term / (2 * n + 1);
        term *= (-x * x) / (n + 1);
      }
      return (2 / Math.sqrt(Math.PI)) * sum;
    };
    const x = Float32Array.from({ length: 41 }, (_, i) => (i - 20) / 5);
    for (const approximate of ['none', 'tanh']) {
      const bytes = encodeModel({
        opset: 20,
        irVersion: 9,
        nodes: [{ op: 'Gelu', name: 'gelu', inputs: ['x'], outputs: ['y'], attributes: [{ name: 'approximate', type: 3, s: new TextEncoder().encode(approximate) }] }],
        inputs: [valueInfo('x', [41])],
        outputs: [valueInfo('y', [41])],
      });
      const s = await InferenceSession.create(bytes);
      const y = (await s.run({ x: new Tensor('float32', x, [41]) })).y.data as Float32Array;
      x.forEach((v, i) => {
        const want = approximate === 'none'
          ? 0.5 * v * (1 + erf(v / Math.SQRT2))
          : 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));
        expect(Math.abs(y[i] - want)).toBeLessThanOrEqual(1e-6 + 1e-5 * Math.abs(want));
      });
      await s.release();
    }
  });
});
