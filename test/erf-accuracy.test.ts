// Erf, Gelu (exact form) and Tanh use ternion's own vectorized erf and tanh
// (native/exec/ops/activations.cc, fitted by tools/fit-erf.py and tools/fit-tanh.py). Erf:
// within 2 ulps of the rounded erf over the whole float range, against a float64 reference
// computed here (power series up to |x| = 3, continued fraction for erfc beyond); Tanh within
// 1 ulp of the rounded Math.tanh; the special values as the spec has them.
import { describe, expect, it } from 'vitest';
import { InferenceSession, Tensor } from '../lib';
import { encodeModel, valueInfo } from './onnx-build-model';

/** erf in float64: the Maclaurin series for |x| <= 3, Lentz's continued fraction of erfc above. */
function erf64(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const a = Math.abs(x);
  let r: number;
  if (a <= 3) {
    let term = a, sum = a;
    for (let n = 1; n < 200; n++) {
      term *= (-a * a) / n;
      const t = term / (2 * n + 1);
      sum += t;
      if (Math.abs(t) < 1e-18 * Math.abs(sum)) break;
    }
    r = (2 / Math.sqrt(Math.PI)) * sum;
  } else {
    // erfc(a) = e^(-a^2) / sqrt(pi) * 1 / (a + 1/2 / (a + 1 / (a + 3/2 / (a + ...))))
    let f = a, c = a, d = 0;
    for (let n = 1; n < 500; n++) {
      const an = n / 2;
      d = a + an * d;
      d = 1 / d;
      c = a + an / c;
      const delta = c * d;
      f *= delta;
      if (Math.abs(delta - 1) < 1e-16) break;
    }
    r = 1 - Math.exp(-a * a) / Math.sqrt(Math.PI) / f;
  }
  return x < 0 ? -r : r;
}

const f32 = Math.fround;
/** Distance in float32 ulps (of the reference's magnitude). */
function ulps(got: number, want: number): number {
  const w = f32(want);
  if (w === 0) return got === 0 ? 0 : Infinity;
  const e = Math.floor(Math.log2(Math.abs(w)));
  const ulp = 2 ** (Math.max(e, -126) - 23);
  return Math.abs(got - want) / ulp;
}

function oneOp(op: string, attrs: Record<string, unknown>[] = [], opset = 13): Uint8Array {
  return encodeModel({ nodes: [{ op, inputs: ['x'], outputs: ['y'], attributes: attrs }], opset, inputs: [valueInfo('x', ['N'])], outputs: [valueInfo('y', ['N'])] });
}

describe('erf and tanh', () => {
  const grid: number[] = [];
  for (let i = -60000; i <= 60000; i++) grid.push(f32(i * 1e-4)); // [-6, 6] every 1e-4, both sides of 1 and 4
  for (let e = -40; e <= 30; e += 0.01) grid.push(f32(10 ** e), f32(-(10 ** e)));
  const xs = Float32Array.from(grid);

  it('Erf is within 2.5 ulps of erf (2 of the rounded value), odd, and 1 from |x| > 4; NaN, infinities and -0 as the spec', async () => {
    const s = await InferenceSession.create(oneOp('Erf'), { threads: 2 });
    const y = (await s.run({ x: new Tensor('float32', xs, [xs.length]) })).y.data as Float32Array;
    let worst = 0, at = 0;
    for (let i = 0; i < xs.length; i++) {
      const u = ulps(y[i], erf64(xs[i]));
      if (u > worst) { worst = u; at = xs[i]; }
    }
    expect(worst, `worst at x = ${at}`).toBeLessThanOrEqual(2.5);
    // Odd: the same bits but the sign.
    const neg = (await s.run({ x: new Tensor('float32', xs.map((v) => -v), [xs.length]) })).y.data as Float32Array;
    for (let i = 0; i < xs.length; i += 97) expect(Object.is(neg[i], -y[i])).toBe(true);
    const special = Float32Array.of(NaN, Infinity, -Infinity, 0, -0, 4.0001, -1e30, 1e-45);
    const z = (await s.run({ x: new Tensor('float32', special, [special.length]) })).y.data as Float32Array;
    expect(Number.isNaN(z[0])).toBe(true);
    expect([z[1], z[2]]).toEqual([1, -1]);
    expect(Object.is(z[3], 0) && Object.is(z[4], -0)).toBe(true);
    expect([z[5], z[6]]).toEqual([1, -1]);
    expect(z[7]).toBeGreaterThan(0);
  });

  it('Tanh is within 1.5 ulps of tanh (1 of the rounded value), odd, 1 in the tails; NaN and -0 as the spec', async () => {
    const s = await InferenceSession.create(oneOp('Tanh'), { threads: 2 });
    const wide = Float32Array.from([...xs, ...Array.from({ length: 20001 }, (_, i) => f32((i - 10000) * 1e-3))]);
    const y = (await s.run({ x: new Tensor('float32', wide, [wide.length]) })).y.data as Float32Array;
    let worst = 0, at = 0;
    for (let i = 0; i < wide.length; i++) {
      const u = ulps(y[i], Math.tanh(wide[i]));
      if (u > worst) { worst = u; at = wide[i]; }
    }
    expect(worst, `worst at x = ${at}`).toBeLessThanOrEqual(1.5);
    const neg = (await s.run({ x: new Tensor('float32', wide.map((v) => -v), [wide.length]) })).y.data as Float32Array;
    for (let i = 0; i < wide.length; i += 89) expect(Object.is(neg[i], -y[i])).toBe(true);
    const special = Float32Array.of(NaN, Infinity, -Infinity, 0, -0, 9.2, -50, 1e-45);
    const z = (await s.run({ x: new Tensor('float32', special, [special.length]) })).y.data as Float32Array;
    expect(Number.isNaN(z[0])).toBe(true);
    expect([z[1], z[2], z[5], z[6]]).toEqual([1, -1, 1, -1]);
    expect(Object.is(z[3], 0) && Object.is(z[4], -0)).toBe(true);
    expect(z[7]).toBeGreaterThan(0);
  });

  it('Gelu (opset 20, exact form) is 0.5 x (1 + erf(x / sqrt 2)) within a few ulps', async () => {
    const s = await InferenceSession.create(oneOp('Gelu', [], 20), { threads: 1 });
    const y = (await s.run({ x: new Tensor('float32', xs, [xs.length]) })).y.data as Float32Array;
    let worst = 0, at = 0;
    for (let i = 0; i < xs.length; i++) {
      const x = xs[i];
      const want = 0.5 * x * (1 + erf64(x / Math.SQRT2));
      // 1 + erf(u) cancels for u well below 0 (erf near -1, as in any float evaluation of the
      // formula): an absolute error up to an ulp of 1, times x / 2, on top of 4 ulps.
      const tol = 4 * Math.abs(want) * 2 ** -23 + 0.5 * Math.abs(x) * 2 ** -23 + 2 ** -149;
      if (!(Math.abs(y[i] - want) <= tol)) { worst = Math.abs(y[i] - want); at = x; }
    }
    expect(worst, `out of bounds at x = ${at}`).toBe(0);
  });
});
