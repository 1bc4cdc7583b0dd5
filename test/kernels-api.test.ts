// The kernel API through the addon, against an independent JavaScript model of kernels.h
// (integer accumulations exact; fp32 parts within float rounding), every supported ISA
// bit-identical to scalar, and every native argument check.
import { describe, expect, it } from 'vitest';
import { cpuInfo, PackedMatrix } from '../lib';
import { expectCode, randInt, rng } from './helpers';

const isas = cpuInfo().supported as ('scalar' | 'avx2' | 'avx512vnni' | 'avxvnni' | 'neon')[];

function randomInts(r: () => number, n: number, lo: number, hi: number, Ctor: Int8ArrayConstructor | Uint8ArrayConstructor = Int8Array) {
  const a = new Ctor(n);
  for (let i = 0; i < n; i++) a[i] = randInt(r, lo, hi);
  return a;
}

function randomFloats(r: () => number, n: number, lo = -1, hi = 1) {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = lo + (hi - lo) * r();
  return a;
}

describe('cpuInfo', () => {
  it('reports features, the kernel set chosen and scalar as the last resort', () => {
    const info = cpuInfo();
    expect(['x86_64', 'aarch64', 'other']).toContain(info.arch);
    expect(info.supported.at(-1)).toBe('scalar');
    expect(info.compiled).toEqual(expect.arrayContaining(info.supported));
    expect(info.kernels).toBe(process.env.TERNION_ISA ? process.env.TERNION_ISA.replace(/^avx512$/, 'avx512vnni') : info.supported[0]);
    expect(info.threads).toBeGreaterThanOrEqual(1);
    if (info.supported.includes('avx2')) expect(info.features).toEqual(expect.arrayContaining(['avx2', 'fma']));
  });
});

describe('fp32 matmul', () => {
  it.each(isas)('matches a JavaScript reference (%s)', (isa) => {
    const r = rng(1);
    for (const [M, N, K] of [[1, 1, 1], [3, 17, 63], [17, 65, 1000], [5, 3, 2]]) {
      const A = randomFloats(r, M * K), W = randomFloats(r, N * K), bias = randomFloats(r, N);
      const C = PackedMatrix.float32(W, N, K, { isa }).matmul(A, M, { bias, relu: true }) as Float32Array;
      for (let m = 0; m < M; m++)
        for (let n = 0; n < N; n++) {
          let s = 0, mag = 0;
          for (let k = 0; k < K; k++) { s += A[m * K + k] * W[n * K + k]; mag += Math.abs(A[m * K + k] * W[n * K + k]); }
          expect(Math.abs(C[m * N + n] - Math.max(s + bias[n], 0))).toBeLessThanOrEqual(1e-5 * mag + 1e-6);
        }
    }
  });
});

describe('int8 matmul', () => {
  it.each(isas)('accumulates (a - aZero) * w exactly (%s)', (isa) => {
    const r = rng(2);
    for (const [M, N, K, aZero] of [[1, 1, 1, 0], [3, 17, 63, 128], [17, 65, 1000, 37], [2, 5, 4096, 255]]) {
      const A = randomInts(r, M * K, 0, 255, Uint8Array), W = randomInts(r, N * K, -128, 127);
      A.fill(255, 0, Math.min(K, 16)); W.fill(-128, 0, Math.min(K, 16)); // int16 would saturate here
      const C = PackedMatrix.int8(W, N, K, { isa }).matmul(A, M, { aZero, output: 'int32' }) as Int32Array;
      for (let m = 0; m < M; m++)
        for (let n = 0; n < N; n++) {
          let acc = 0;
          for (let k = 0; k < K; k++) acc += (A[m * K + k] - aZero) * W[n * K + k];
          expect(C[m * N + n]).toBe(acc);
        }
    }
  });

  it.each(isas)('requantizes with scale, bias, relu, round-half-even and clamping (%s)', (isa) => {
    // One input channel so acc = a * w is known; scale 0.5 puts values on .5 ties.
    const W = new Int8Array([1, -1, 3]);
    const A = new Uint8Array([0, 1, 3, 5, 7, 255]);
    const p = PackedMatrix.int8(W, 3, 1, { isa });
    const scale = new Float32Array([0.5, 0.5, 0.5]), bias = new Float32Array([0, 0, 10]);
    const u8 = p.matmul(A, 6, { scale, bias, output: 'uint8', zeroPoint: 3 }) as Uint8Array;
    const s8 = p.matmul(A, 6, { scale, bias, output: 'int8', relu: true }) as Int8Array;
    const f32 = p.matmul(A, 6, { scale, bias }) as Float32Array;
    const rint = (v: number) => { const f = Math.floor(v), d = v - f; return d > 0.5 || (d === 0.5 && f % 2 !== 0) ? f + 1 : f; };
    for (let m = 0; m < 6; m++)
      for (let n = 0; n < 3; n++) {
        const v = A[m] * W[n] * 0.5 + bias[n];
        expect(f32[m * 3 + n]).toBe(Math.fround(v));
        expect(u8[m * 3 + n]).toBe(Math.min(255, Math.max(0, rint(Math.min(252, Math.max(-3, v))) + 3)));
        expect(s8[m * 3 + n]).toBe(Math.min(127, rint(Math.max(0, v))));
      }
  });
});

describe('low-bit matmul', () => {
  const cases: [number, number, number, number][] = [[1, 3, 64, 4], [3, 17, 64, 16], [2, 5, 192, 64], [4, 2, 17, 17]];

  it.each(isas)('ternary and 4-bit, folded form, accumulate exactly (%s)', (isa) => {
    const r = rng(3);
    for (const bits of [2, 4] as const)
      for (const asym of bits === 2 ? [false, true] : [false])
        for (const [M, N, K, G] of cases) {
          const lim = bits === 2 ? 1 : 7, mmax = bits === 2 ? 127 : 18;
          const q = randomInts(r, N * K, -lim, lim), A = randomInts(r, M * K, 0, 255, Uint8Array);
          const mp = randomInts(r, N * (K / G), 1, mmax), mn = randomInts(r, N * (K / G), 1, mmax);
          const opts = { isa, groupSize: G, form: 'folded' as const, multipliers: mp, negativeMultipliers: asym ? mn : undefined };
          const p = bits === 2 ? PackedMatrix.ternary(q, N, K, opts) : PackedMatrix.int4(q, N, K, opts);
          const C = p.matmul(A, M, { aZero: 128, output: 'int32' }) as Int32Array;
          for (let m = 0; m < M; m++)
            for (let n = 0; n < N; n++) {
              let acc = 0;
              for (let k = 0; k < K; k++) {
                const c = q[n * K + k], g = n * (K / G) + Math.floor(k / G);
                const w = asym && c < 0 ? -mn[g] : c * mp[g];
                acc += w * (A[m * K + k] - 128);
              }
              expect(C[m * N + n]).toBe(acc);
            }
        }
  });

  it.each(isas)('group-scaled form sums alpha_g * acc_g in group order (%s)', (isa) => {
    const r = rng(4);
    for (const asym of [false, true])
      for (const [M, N, K, G] of cases) {
        const q = randomInts(r, N * K, -1, 1), A = randomInts(r, M * K, 0, 255, Uint8Array);
        const sp = randomFloats(r, N * (K / G), 0.01, 1), sn = randomFloats(r, N * (K / G), 0.01, 1);
        const p = PackedMatrix.ternary(q, N, K, { isa, groupSize: G, scales: sp, negativeScales: asym ? sn : undefined });
        const C = p.matmul(A, M) as Float32Array;
        for (let m = 0; m < M; m++)
          for (let n = 0; n < N; n++) {
            let sum = 0, mag = 0;
            for (let g = 0; g < K / G; g++) {
              let P = 0, Mn = 0;
              for (let k = g * G; k < (g + 1) * G; k++) {
                const c = q[n * K + k], x = A[m * K + k];
                if (c > 0) P += x;
                if (c < 0) Mn += x;
              }
              const gi = n * (K / G) + g;
              sum += asym ? sp[gi] * P - sn[gi] * Mn : sp[gi] * (P - Mn);
              mag += sp[gi] * P + (asym ? sn[gi] : sp[gi]) * Mn;
            }
            expect(Math.abs(C[m * N + n] - sum)).toBeLessThanOrEqual(1e-6 * mag + 1e-6);
          }
      }
  });
});

describe('every ISA gives the scalar bits', () => {
  it('int8, ternary and 4-bit outputs are identical across kernel sets, threads 1 and 2', () => {
    const r = rng(5);
    const [M, N, K] = [7, 33, 320];
    const A = randomInts(r, M * K, 0, 255, Uint8Array), W = randomInts(r, N * K, -127, 127);
    const q = randomInts(r, N * K, -1, 1), sp = randomFloats(r, N * (K / 16), 0.01, 0.2), sn = randomFloats(r, N * (K / 16), 0.01, 0.2);
    const scale = randomFloats(r, N, 0.001, 0.01), bias = randomFloats(r, N, -5, 5);
    const outputs = isas.flatMap((isa) =>
      [1, 2].map((threads) => {
        const a = PackedMatrix.int8(W, N, K, { isa }).matmul(A, M, { aZero: 3, scale, bias, output: 'uint8', threads });
        const b = PackedMatrix.ternary(q, N, K, { isa, groupSize: 16, scales: sp, negativeScales: sn }).matmul(A, M, { scale, bias, threads });
        return [Array.from(a), Array.from(b)];
      }),
    );
    for (const o of outputs) expect(o).toEqual(outputs[0]);
  });
});

describe('async matmul', () => {
  it('gives the sync result and leaves the event loop free while it runs', async () => {
    const r = rng(6);
    const [M, N, K] = [64, 512, 2048];
    const A = randomFloats(r, M * K), W = randomFloats(r, N * K);
    const p = PackedMatrix.float32(W, N, K);
    const sync = p.matmul(A, M, { threads: 1 });
    let ticks = 0;
    const timer = setInterval(() => ticks++, 0);
    const pending = p.matmulAsync(A, M, { threads: 1 });
    let immediateRan = false;
    setImmediate(() => { immediateRan = true; });
    const result = await pending;
    clearInterval(timer);
    expect(immediateRan).toBe(true);
    expect(Array.from(result)).toEqual(Array.from(sync));
  });

  it('release() during an async matmul waits for it', async () => {
    const p = PackedMatrix.float32(new Float32Array(256 * 256).fill(1), 256, 256);
    const pending = p.matmulAsync(new Float32Array(32 * 256).fill(1), 32);
    p.release();
    const C = await pending;
    expect(C[0]).toBe(256);
    expectCode(() => p.matmul(new Float32Array(256), 1), 'ERR_INVALID_ARGUMENT', /released/);
  });
});

describe('BAD CALL - native argument checks', () => {
  const W = new Float32Array(6);
  it('wrong weight dtype or length', () => {
    expectCode(() => PackedMatrix.float32(new Int8Array(6) as unknown as Float32Array, 2, 3), 'ERR_DTYPE', /Float32Array for weights/);
    expectCode(() => PackedMatrix.float32(W, 2, 4), 'ERR_SHAPE_MISMATCH', /weights to have 8 elements but it has 6/);
    expectCode(() => PackedMatrix.int8(new Int8Array(5), 2, 3), 'ERR_SHAPE_MISMATCH', /6 elements/);
  });
  it('bad sizes', () => {
    expectCode(() => PackedMatrix.float32(W, 0, 6), 'ERR_INVALID_ARGUMENT', /positive integer for N/);
    expectCode(() => PackedMatrix.float32(W, 2, 1.5), 'ERR_INVALID_ARGUMENT', /for K/);
    expectCode(() => PackedMatrix.int8(new Int8Array(70000), 1, 70000), 'ERR_SHAPE_MISMATCH', /exceeds/);
  });
  it('wrong activation dtype or length', () => {
    const p = PackedMatrix.float32(W, 2, 3);
    expectCode(() => p.matmul(new Uint8Array(3), 1), 'ERR_DTYPE', /Float32Array for A/);
    expectCode(() => p.matmul(new Float32Array(5), 2), 'ERR_SHAPE_MISMATCH', /A to have 6 elements/);
    expectCode(() => p.matmul(new Float32Array(3), 1, { bias: new Float32Array(3) }), 'ERR_SHAPE_MISMATCH', /bias to have 2/);
    expectCode(() => p.matmul(new Float32Array(3), 1, { output: 'uint8' }), 'ERR_DTYPE', /uint8 output needs/);
    const q = PackedMatrix.int8(new Int8Array(6), 2, 3);
    expectCode(() => q.matmul(new Float32Array(3) as unknown as Uint8Array, 1), 'ERR_DTYPE', /Uint8Array for A/);
    expectCode(() => q.matmul(new Uint8Array(3), 1, { aZero: 256 }), 'ERR_INVALID_ARGUMENT', /aZero/);
    expectCode(() => q.matmul(new Uint8Array(3), 1, { output: 'int16' as 'int8' }), 'ERR_DTYPE', /int16/);
    expectCode(() => q.matmul(new Uint8Array(3), 1, { output: 'uint8', qmin: 10, qmax: 5 }), 'ERR_INVALID_ARGUMENT', /qmin/);
  });
  it('low-bit codes, groups and multipliers out of range', () => {
    const s = new Float32Array(2);
    expectCode(() => PackedMatrix.ternary(new Int8Array([0, 2, 0, 0]), 1, 4, { groupSize: 4, scales: new Float32Array(1) }), 'ERR_INVALID_ARGUMENT', /weights\[1\] = 2 is outside \[-1, 1\]/);
    expectCode(() => PackedMatrix.int4(new Int8Array([8, 0, 0, 0]), 1, 4, { groupSize: 4, scales: new Float32Array(1) }), 'ERR_INVALID_ARGUMENT', /outside \[-7, 7\]/);
    expectCode(() => PackedMatrix.ternary(new Int8Array(6), 1, 6, { groupSize: 4, scales: s }), 'ERR_SHAPE_MISMATCH', /multiple of the group size/);
    expectCode(() => PackedMatrix.ternary(new Int8Array(8), 1, 8, { groupSize: 4, scales: new Float32Array(3) }), 'ERR_SHAPE_MISMATCH', /scalePos to have 2/);
    expectCode(() => PackedMatrix.ternary(new Int8Array(8), 1, 8, { groupSize: 4, form: 'folded', multipliers: new Int8Array([1, 0]) }), 'ERR_INVALID_ARGUMENT', /multPos\[1\] = 0/);
    expectCode(() => PackedMatrix.int4(new Int8Array(8), 1, 8, { groupSize: 4, form: 'folded', multipliers: new Int8Array([19, 1]) }), 'ERR_INVALID_ARGUMENT', /outside \[1, 18\]/);
    expectCode(() => PackedMatrix.ternary(new Int8Array(8), 1, 8, { groupSize: 4, scales: new Float32Array([1, NaN]) }), 'ERR_INVALID_ARGUMENT', /not finite/);
  });
  it('an ISA this build or CPU does not have', () => {
    expectCode(() => PackedMatrix.float32(W, 2, 3, { isa: 'vliw' as 'avx2' }), 'ERR_INVALID_ARGUMENT', /vliw/);
    const missing = ['avx2', 'avx512vnni', 'avxvnni', 'neon'].find((n) => !isas.includes(n as 'avx2'));
    if (missing) expectCode(() => PackedMatrix.float32(W, 2, 3, { isa: missing as 'avx2' }), 'ERR_INVALID_ARGUMENT', new RegExp(missing));
  });
  it('async errors reject rather than throw', async () => {
    const p = PackedMatrix.float32(W, 2, 3);
    await expect(p.matmulAsync(new Float32Array(1), 1)).rejects.toMatchObject({ code: 'ERR_SHAPE_MISMATCH' });
  });
});
