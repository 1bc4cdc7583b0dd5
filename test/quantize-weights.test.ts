// FGQ weight quantization (lib/quantize/weights): the row layout and its padding, the exact /
// TWN / asymmetric thresholds against brute force, lossless pre-ternarized packing, 4-bit and
// int8 bounds, folded multipliers, determinism, argument checks, and a cross-check of the
// dequantized weights against the real kernels.
import { describe, expect, it } from 'vitest';
import { cpuInfo, PackedMatrix } from '../lib';
import {
  DEFAULT_TERNARY_TOLERANCE, detectPreTernarized, foldLayer, fromGemmRows, gemmLayout, INT4_CLIP_RATIOS,
  isPreTernarized, lowbitPackOptions, maxMultiplier, quantizeInt4Group, quantizeWeights, RowFolder,
  ternarizeGroup, toGemmRows, transposeToOutputMajor,
} from '../lib/quantize/weights';
import type { FoldedWeights, GroupScaledWeights, Int8Weights, QuantizedWeights, WeightQuantOptions } from '../lib/quantize/weights';
import { expectCode, randInt, rng } from './helpers';

function gaussian(r: () => number, n: number, sigma = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = r() || 1e-12, v = r();
    a[i] = sigma * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
  return a;
}

/** ||w - alpha*t||^2 in float64 for given codes and scales. */
function ternaryError(w: Float32Array, codes: Int8Array, alphaPos: number, alphaNeg = alphaPos): number {
  let e = 0;
  for (let i = 0; i < w.length; i++) {
    const d = w[i] - (codes[i] > 0 ? alphaPos : codes[i] < 0 ? -alphaNeg : 0);
    e += d * d;
  }
  return e;
}

/** Best error of "keep this subset of magnitudes, alpha = their mean" over all subsets. */
function bruteForceSubsets(mags: number[]): number {
  const n = mags.length;
  const total = mags.reduce((s, m) => s + m * m, 0);
  let best = total;
  for (let mask = 1; mask < 1 << n; mask++) {
    let sum = 0, count = 0, sq = 0;
    for (let i = 0; i < n; i++) if (mask & (1 << i)) { sum += mags[i]; sq += mags[i] * mags[i]; count++; }
    const a = sum / count;
    best = Math.min(best, total - sq + (sq - 2 * a * sum + count * a * a));
  }
  return best;
}

/** Best error over every threshold k (keep the k largest |w|). */
function bruteForceK(w: Float32Array): number {
  const mags = Array.from(w, Math.abs).sort((a, b) => b - a);
  let best = Infinity;
  for (let k = 0; k <= mags.length; k++) {
    const a = k ? mags.slice(0, k).reduce((s, m) => s + m, 0) / k : 0;
    let e = 0;
    mags.forEach((m, i) => { e += i < k ? (m - a) ** 2 : m * m; });
    best = Math.min(best, e);
  }
  return best;
}

function sameBits(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length), y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

function relErr(w: Float32Array, q: Float32Array): number {
  let e = 0, n = 0;
  for (let i = 0; i < w.length; i++) { e += (w[i] - q[i]) ** 2; n += w[i] * w[i]; }
  return Math.sqrt(e / n);
}

describe('row layout and grouping', () => {
  it('pads each (kh, kw) run of Ci = 24 to 32 for N = 16, ci innermost', () => {
    const layout = gemmLayout([3, 24, 2, 2], 16);
    expect(layout).toMatchObject({ rows: 3, inputChannels: 24, spatial: 4, paddedInputChannels: 32, K: 128 });
    for (let s = 0; s < 4; s++)
      for (let ci = 0; ci < 32; ci++) expect(layout.source[s * 32 + ci]).toBe(ci < 24 ? ci * 4 + s : -1);
    const w = gaussian(rng(1), 3 * 24 * 4);
    const rows = toGemmRows(w, layout);
    expect(rows[1 * 128 + 2 * 32 + 5]).toBe(w[(1 * 24 + 5) * 4 + 2]); // co 1, s 2, ci 5
    expect(rows[1 * 128 + 2 * 32 + 30]).toBe(0);
    expect(fromGemmRows(rows, layout)).toEqual(w);
  });

  it('quantizes the short last group of each run over its real weights only', () => {
    const w = gaussian(rng(2), 3 * 24 * 2 * 2);
    for (const threshold of ['exact', 'twn'] as const) {
      const q = quantizeWeights(w, [3, 24, 2, 2], { groupSize: 16, threshold, form: 'group-scaled' }) as GroupScaledWeights;
      expect(q).toMatchObject({ bits: 2, form: 'group-scaled', rows: 3, K: 128, G: 16, asym: false });
      expect(q.scalePos.length).toBe(3 * 8);
      const rows = toGemmRows(w, q.layout);
      for (let co = 0; co < 3; co++)
        for (let s = 0; s < 4; s++)
          for (let j = 0; j < 2; j++) {
            const start = co * 128 + s * 32 + j * 16, len = j === 0 ? 16 : 8;
            const ref = ternarizeGroup(rows.slice(start, start + len), { threshold });
            expect(q.scalePos[co * 8 + s * 2 + j]).toBe(ref.alphaPos);
            expect(Array.from(q.codes.slice(start, start + len))).toEqual(Array.from(ref.codes));
            if (j === 1) expect(Array.from(q.codes.slice(start + 8, start + 16))).toEqual(new Array(8).fill(0));
          }
      expect(q.dequantized().length).toBe(w.length);
      expect(q.stats.multiplicationsRemoved).toBeCloseTo(1 - 2 / 24, 12); // 2 groups per 24 weights
    }
  });

  it("'filter' is one group per output channel: G = K, no padding", () => {
    const w = gaussian(rng(3), 4 * 24 * 3 * 3);
    const q = quantizeWeights(w, [4, 24, 3, 3], { groupSize: 'filter', form: 'group-scaled' }) as GroupScaledWeights;
    expect(q).toMatchObject({ K: 216, G: 216 });
    expect(q.layout.paddedInputChannels).toBe(24);
    const rows = toGemmRows(w, q.layout);
    for (let co = 0; co < 4; co++) expect(q.scalePos[co]).toBe(ternarizeGroup(rows.slice(co * 216, co * 216 + 216)).alphaPos);
  });

  it("grouping 'filters' shares one scale over N output channels, replicated per row", () => {
    const w = gaussian(rng(4), 5 * 6 * 3);
    const q = quantizeWeights(w, [5, 6, 3], { grouping: 'filters', groupSize: 2, form: 'group-scaled' }) as GroupScaledWeights;
    expect(q).toMatchObject({ K: 18, G: 18 });
    const rows = toGemmRows(w, q.layout);
    const blocks = [[0, 2], [2, 4], [4, 5]];
    for (const [a, b] of blocks) {
      const ref = ternarizeGroup(rows.slice(a * 18, b * 18));
      for (let r = a; r < b; r++) expect(q.scalePos[r]).toBe(ref.alphaPos);
    }
    expect(q.stats.bytes).toBe(Math.ceil((5 * 18 * 2) / 8) + 3 * 4); // 3 distinct scales
  });

  it('Gemm weights: [Co][Ci] as is, [Ci][Co] through transposeToOutputMajor', () => {
    const w = new Float32Array([1, 2, 3, 4, 5, 6]); // [Ci = 2][Co = 3]
    const t = transposeToOutputMajor(w, [2, 3]);
    expect(t.dims).toEqual([3, 2]);
    expect(Array.from(t.weights)).toEqual([1, 4, 2, 5, 3, 6]);
    const q = quantizeWeights(t.weights, t.dims, { groupSize: 4 });
    expect(q).toMatchObject({ rows: 3, K: 4, G: 4 });
  });
});

describe('ternary thresholds of one group', () => {
  it('exact equals brute force over all subsets and all k, and beats or ties TWN', () => {
    const r = rng(10);
    for (let trial = 0; trial < 300; trial++) {
      const n = randInt(r, 1, 10);
      const w = gaussian(r, n);
      if (trial % 7 === 0) w[randInt(r, 0, n - 1)] = 0;
      const exact = ternarizeGroup(w, { losslessTolerance: null });
      const e = ternaryError(w, exact.codes, exact.alphaPos);
      const brute = bruteForceSubsets(Array.from(w, Math.abs));
      expect(e).toBeLessThanOrEqual(brute * (1 + 1e-6) + 1e-12);
      expect(e).toBeGreaterThanOrEqual(brute * (1 - 1e-6) - 1e-12);
      expect(bruteForceK(w)).toBeCloseTo(brute, 10);
      const twn = ternarizeGroup(w, { threshold: 'twn', losslessTolerance: null });
      expect(e).toBeLessThanOrEqual(ternaryError(w, twn.codes, twn.alphaPos) * (1 + 1e-6) + 1e-12);
    }
  });

  it('exact beats or ties TWN and every threshold on groups of 4 to 64', () => {
    const r = rng(11);
    for (const n of [4, 8, 16, 32, 64]) {
      for (let trial = 0; trial < 40; trial++) {
        const w = gaussian(r, n);
        const exact = ternarizeGroup(w);
        const e = ternaryError(w, exact.codes, exact.alphaPos);
        const twn = ternarizeGroup(w, { threshold: 'twn' });
        expect(e).toBeLessThanOrEqual(ternaryError(w, twn.codes, twn.alphaPos) * (1 + 1e-6));
        expect(e).toBeLessThanOrEqual(bruteForceK(w) * (1 + 1e-6));
        expect(e).toBeGreaterThanOrEqual(bruteForceK(w) * (1 - 1e-6));
      }
    }
  });

  it('TWN keeps |w| > 0.7 mean|w| and takes their mean', () => {
    const g = ternarizeGroup(new Float32Array([1, -0.5, 0.1, 0]), { threshold: 'twn', losslessTolerance: null });
    expect(Array.from(g.codes)).toEqual([1, -1, 0, 0]);
    expect(g.alphaPos).toBe(Math.fround(0.75));
  });

  it('all-zero groups give alpha 0 and zero codes in every mode', () => {
    for (const threshold of ['exact', 'twn'] as const)
      for (const asymmetric of [false, true])
        for (const losslessTolerance of [null, 1e-6]) {
          const g = ternarizeGroup(new Float32Array(8), { threshold, asymmetric, losslessTolerance });
          expect(g).toMatchObject({ alphaPos: 0, alphaNeg: 0 });
          expect(Array.from(g.codes)).toEqual(new Array(8).fill(0));
        }
  });

  it('ties are resolved by value, not position: permuting the group permutes the codes', () => {
    const r = rng(12);
    for (let trial = 0; trial < 100; trial++) {
      const levels = [0.25, 0.5, 1, 2];
      const n = randInt(r, 2, 12);
      const w = new Float32Array(n).map(() => levels[randInt(r, 0, 3)] * (r() < 0.5 ? -1 : 1));
      const perm = Array.from({ length: n }, (_, i) => i).sort(() => r() - 0.5);
      const p = new Float32Array(perm.map((i) => w[i]));
      const a = ternarizeGroup(w, { losslessTolerance: null }), b = ternarizeGroup(p, { losslessTolerance: null });
      expect(b.alphaPos).toBe(a.alphaPos);
      expect(Array.from(b.codes)).toEqual(perm.map((i) => a.codes[i]));
      expect(ternaryError(w, a.codes, a.alphaPos)).toBeLessThanOrEqual(bruteForceSubsets(Array.from(w, Math.abs)) * (1 + 1e-6) + 1e-12);
    }
  });

  it('asymmetric: each sign solved exactly over its own weights', () => {
    const r = rng(13);
    for (let trial = 0; trial < 200; trial++) {
      const w = gaussian(r, randInt(r, 1, 12));
      const g = ternarizeGroup(w, { asymmetric: true, losslessTolerance: null });
      const pos = Array.from(w).filter((x) => x > 0), neg = Array.from(w).filter((x) => x < 0).map((x) => -x);
      const e = ternaryError(w, g.codes, g.alphaPos, g.alphaNeg);
      expect(e).toBeLessThanOrEqual((bruteForceSubsets(pos) + bruteForceSubsets(neg)) * (1 + 1e-6) + 1e-12);
      for (let i = 0; i < w.length; i++) expect(g.codes[i] * w[i]).toBeGreaterThanOrEqual(0); // never flips a sign
      const sym = ternarizeGroup(w, { losslessTolerance: null });
      expect(e).toBeLessThanOrEqual(ternaryError(w, sym.codes, sym.alphaPos) * (1 + 1e-6) + 1e-12);
    }
  });
});

/** A TTQ-like layer: codes times per-group (or per-layer) positive / negative magnitudes. */
function ternaryLayer(r: () => number, co: number, ci: number, spatial: number, groupOf: (co: number, ci: number, s: number) => string, asym: boolean) {
  const w = new Float32Array(co * ci * spatial);
  const mags = new Map<string, [number, number]>();
  for (let o = 0; o < co; o++)
    for (let c = 0; c < ci; c++)
      for (let s = 0; s < spatial; s++) {
        const key = groupOf(o, c, s);
        if (!mags.has(key)) { const p = Math.fround(0.01 + r()); mags.set(key, [p, asym ? Math.fround(0.01 + r()) : p]); }
        const [p, n] = mags.get(key)!;
        const t = randInt(r, -1, 1);
        w[(o * ci + c) * spatial + s] = t > 0 ? p : t < 0 ? -n : 0;
      }
  return w;
}

describe('pre-ternarized layers', () => {
  it('are packed losslessly: dequantized() is bit-exact, at every grouping', () => {
    const r = rng(20);
    const w = ternaryLayer(r, 6, 24, 9, () => 'layer', true); // one Wp / Wn per layer (TTQ)
    for (const options of [{ groupSize: 4 }, { groupSize: 16 }, { groupSize: 'filter' }, { grouping: 'filters', groupSize: 4 }] as WeightQuantOptions[]) {
      const q = quantizeWeights(w, [6, 24, 3, 3], options) as GroupScaledWeights;
      expect(q.asym).toBe(true);
      expect(q.stats.lossless).toBe(true);
      expect(q.stats.relativeError).toBe(0);
      expect(sameBits(q.dequantized(), w)).toBe(true);
    }
    expect(detectPreTernarized(w, [6, 24, 3, 3], { groupSize: 'filter' })).toEqual({ preTernarized: true, asymmetric: true });
  });

  it('symmetric magnitudes stay symmetric; per-group magnitudes are detected at their grouping only', () => {
    const r = rng(21);
    const sym = ternaryLayer(r, 4, 16, 1, (o, c) => `${o},${c >> 3}`, false); // per group of 8
    const q = quantizeWeights(sym, [4, 16], { groupSize: 8 }) as GroupScaledWeights;
    expect(q.asym).toBe(false);
    expect(q.scaleNeg).toBeNull();
    expect(sameBits(q.dequantized(), sym)).toBe(true);
    expect(isPreTernarized(sym, [4, 16], { groupSize: 8 })).toBe(true);
    expect(isPreTernarized(sym, [4, 16], { groupSize: 4 })).toBe(true);
    expect(isPreTernarized(sym, [4, 16], { groupSize: 16 })).toBe(false);
    expect(isPreTernarized(gaussian(r, 64), [4, 16])).toBe(false);
    expect(isPreTernarized(new Float32Array(64), [4, 16])).toBe(true);
  });

  it('tolerate relative noise up to the tolerance only', () => {
    const w = new Float32Array([0.5, -0.5, 0, 0.5 * (1 + 3e-7), 0.25, -0.25, 0, -0.25]);
    expect(isPreTernarized(w, [2, 4])).toBe(true);
    const noisy = w.slice();
    noisy[3] = 0.5 * (1 + 1e-4);
    expect(isPreTernarized(noisy, [2, 4])).toBe(false);
    expect(isPreTernarized(noisy, [2, 4], { tolerance: 1e-3 })).toBe(true);
    expect(DEFAULT_TERNARY_TOLERANCE).toBe(1e-6);
  });

  it('asymmetric: false keeps the layer symmetric (then no longer lossless)', () => {
    const w = ternaryLayer(rng(22), 4, 8, 1, () => 'layer', true);
    const q = quantizeWeights(w, [4, 8], { asymmetric: false }) as GroupScaledWeights;
    expect(q.asym).toBe(false);
    expect(q.stats.lossless).toBe(false);
    const off = quantizeWeights(w, [4, 8], { preTernarized: 'off' }) as GroupScaledWeights;
    expect(off.asym).toBe(false);
  });
});

describe('4-bit weights', () => {
  it('s = max|w| / 7, codes in [-7, 7], ties away from zero', () => {
    const codes = new Int8Array(4);
    expect(quantizeInt4Group(new Float32Array([7, 3.5, -3.5, 0.5]), 0, 4, codes, 'max')).toBe(1);
    expect(Array.from(codes)).toEqual([7, 4, -4, 1]);
  });

  it('error per weight is at most s / 2 with max clipping; mse clipping is never worse', () => {
    const w = gaussian(rng(30), 8 * 64 * 3 * 3, 0.1);
    const max = quantizeWeights(w, [8, 64, 3, 3], { bits: 4, groupSize: 16 }) as GroupScaledWeights;
    const mse = quantizeWeights(w, [8, 64, 3, 3], { bits: 4, groupSize: 16, clipping: 'mse' }) as GroupScaledWeights;
    const rows = toGemmRows(w, max.layout), deq = toGemmRows(max.dequantized(), max.layout);
    for (let i = 0; i < rows.length; i++) {
      const s = max.scalePos[Math.floor(i / 16)];
      expect(Math.abs(max.codes[i])).toBeLessThanOrEqual(7);
      expect(Math.abs(rows[i] - deq[i])).toBeLessThanOrEqual(s / 2 * (1 + 1e-6));
    }
    expect(max.stats.relativeError).toBeLessThan(0.1);
    expect(mse.stats.relativeError).toBeLessThanOrEqual(max.stats.relativeError);
    expect(INT4_CLIP_RATIOS[0]).toBe(1);
    // per group too
    const c1 = new Int8Array(16), c2 = new Int8Array(16);
    for (let g = 0; g < rows.length / 16; g++) {
      const sMax = quantizeInt4Group(rows, g * 16, 16, c1, 'max'), sMse = quantizeInt4Group(rows, g * 16, 16, c2, 'mse');
      let eMax = 0, eMse = 0;
      for (let i = 0; i < 16; i++) { eMax += (rows[g * 16 + i] - sMax * c1[i]) ** 2; eMse += (rows[g * 16 + i] - sMse * c2[i]) ** 2; }
      expect(eMse).toBeLessThanOrEqual(eMax);
    }
  });
});

describe('int8 per-channel weights', () => {
  it('scale = max|w| / 127 per row, codes in [-127, 127], error at most scale / 2', () => {
    const w = gaussian(rng(40), 6 * 3 * 7 * 7);
    w.fill(0, 0, 3 * 49); // an all-zero row
    const q = quantizeWeights(w, [6, 3, 7, 7], { bits: 8 }) as Int8Weights;
    expect(q).toMatchObject({ bits: 8, form: 'per-channel', K: 147, G: 147 });
    expect(q.channelScale[0]).toBe(0);
    const deq = q.dequantized();
    for (let r = 1; r < 6; r++) {
      const row = w.subarray(r * 147, r * 147 + 147);
      const s = q.channelScale[r];
      expect(s).toBe(Math.fround(Math.max(...Array.from(row, Math.abs)) / 127));
      const codes = q.codes.subarray(r * 147, r * 147 + 147);
      expect(Math.max(...Array.from(codes, Math.abs))).toBe(127);
      for (let i = 0; i < 147; i++) expect(Math.abs(row[i] - deq[r * 147 + i])).toBeLessThanOrEqual(s / 2 * (1 + 1e-6));
    }
  });
});

describe('int8 reduced range (reduceRange)', () => {
  it('scale = max|w| / 63, codes in [-63, 63], error at most scale / 2; full range unless asked', () => {
    const w = gaussian(rng(41), 5 * 2 * 3 * 3);
    const q = quantizeWeights(w, [5, 2, 3, 3], { bits: 8, reduceRange: true }) as Int8Weights;
    const full = quantizeWeights(w, [5, 2, 3, 3], { bits: 8 }) as Int8Weights;
    const deq = q.dequantized();
    for (let r = 0; r < 5; r++) {
      const row = w.subarray(r * 18, r * 18 + 18);
      const s = q.channelScale[r];
      expect(s).toBe(Math.fround(Math.max(...Array.from(row, Math.abs)) / 63));
      expect(Math.max(...Array.from(q.codes.subarray(r * 18, r * 18 + 18), Math.abs))).toBe(63);
      expect(Math.max(...Array.from(full.codes.subarray(r * 18, r * 18 + 18), Math.abs))).toBe(127);
      for (let i = 0; i < 18; i++) expect(Math.abs(row[i] - deq[r * 18 + i])).toBeLessThanOrEqual(s / 2 * (1 + 1e-6));
    }
    expect(() => quantizeWeights(w, [5, 2, 3, 3], { bits: 8, reduceRange: 'yes' as unknown as boolean })).toThrow(/options\.reduceRange/);
  });
});

describe('folded int8 form', () => {
  it('multipliers in range, zero groups get 1, error close to group-scaled', () => {
    const r = rng(50);
    const w = gaussian(r, 8 * 32 * 3 * 3, 0.05);
    w.fill(0, 0, 32 * 9); // row 0 all zero
    for (const bits of [2, 4] as const)
      for (const asymmetric of bits === 2 ? [false, true] : [false])
        for (const groupSize of [4, 16, 'filter'] as const)
        for (const reduceRange of [false, true]) {
          const gs = quantizeWeights(w, [8, 32, 3, 3], { bits, groupSize, asymmetric, form: 'group-scaled' });
          const f = quantizeWeights(w, [8, 32, 3, 3], { bits, groupSize, asymmetric, form: 'folded', reduceRange }) as FoldedWeights;
          const M = maxMultiplier(bits, reduceRange);
          expect(M).toBe(bits === 4 ? 18 : reduceRange ? 63 : 127);
          expect(Math.max(...f.multPos, ...(f.multNeg ?? []))).toBeGreaterThanOrEqual(M - 15); // the search tries c = M .. M - 15
          expect(f.form).toBe('folded');
          for (const m of [f.multPos, ...(f.multNeg ? [f.multNeg] : [])])
            for (const v of m) { expect(v).toBeGreaterThanOrEqual(1); expect(v).toBeLessThanOrEqual(M); }
          expect(f.multNeg !== null).toBe(asymmetric);
          expect(f.channelScale[0]).toBe(0);
          expect(Array.from(f.multPos.subarray(0, f.K / f.G))).toEqual(new Array(f.K / f.G).fill(1));
          expect(Array.from(f.codes)).toEqual(Array.from(gs.codes));
          const slack = bits === 4 ? 1.15 : reduceRange ? 1.06 : 1.03; // 7-, 6- vs ~4-bit multiplier resolution
          expect(f.stats.relativeError).toBeLessThanOrEqual(gs.stats.relativeError * slack);
          if (groupSize !== 'filter') expect(f.stats.bytes).toBeLessThan(gs.stats.bytes); // 'filter': 1 + 4 bytes vs 4 per row
        }
  });

  it('the multiplier search never loses to s = max alpha / M', () => {
    const r = rng(51);
    for (const M of [127, 18]) {
      const folder = new RowFolder(M);
      for (let trial = 0; trial < 50; trial++) {
        const n = randInt(r, 1, 40);
        const A = new Float64Array(n).map(() => randInt(r, 0, 8));
        const alpha = new Float64Array(n).map(() => Math.exp(3 * r()));
        const B = A.map((a, i) => a * alpha[i]);
        const mult = new Uint8Array(n);
        const s = folder.fold(A, B, n, mult);
        const E = (sc: number, m: (i: number) => number) => A.reduce((e, a, i) => e + a * (m(i) * sc - alpha[i]) ** 2, 0);
        const tmax = Math.max(0, ...Array.from(alpha).filter((_, i) => A[i] > 0));
        if (tmax === 0) { expect(s).toBe(0); continue; }
        const s0 = Math.fround(tmax / M);
        const base = E(s0, (i) => Math.min(M, Math.max(1, Math.round(alpha[i] / s0))));
        expect(E(s, (i) => mult[i])).toBeLessThanOrEqual(base * (1 + 1e-9) + 1e-12);
      }
    }
  });

  it('foldLayer of a single-group row is exact up to float rounding', () => {
    const w = new Float32Array([0.3, -0.3, 0, 0.3]), codes = new Int8Array([1, -1, 0, 1]);
    const f = foldLayer(w, codes, 1, 4, 4, 2, false);
    expect(f.multPos[0] * f.channelScale[0]).toBeCloseTo(0.3, 6);
  });
});

describe('determinism and reports', () => {
  it('the same weights give identical bytes', () => {
    const w = gaussian(rng(60), 16 * 40 * 3 * 3);
    for (const options of [{}, { threshold: 'twn' }, { asymmetric: true }, { bits: 4, clipping: 'mse' }, { form: 'folded', groupSize: 8 }, { bits: 8 }] as WeightQuantOptions[]) {
      const a = quantizeWeights(w, [16, 40, 3, 3], options), b = quantizeWeights(w.slice(), [16, 40, 3, 3], options);
      expect(Buffer.from(a.codes.buffer).equals(Buffer.from(b.codes.buffer))).toBe(true);
      const scales = (q: QuantizedWeights) => (q.form === 'group-scaled' ? [q.scalePos, q.scaleNeg] : q.form === 'folded' ? [q.multPos, q.multNeg, q.channelScale] : [q.channelScale]);
      scales(a).forEach((s, i) => { const t = scales(b)[i]; expect(s === null ? null : Buffer.from(s.buffer)).toEqual(t === null ? null : Buffer.from(t.buffer)); });
      expect(a.stats).toEqual(b.stats);
      expect(sameBits(a.dequantized(), b.dequantized())).toBe(true);
    }
  });

  it('reports bits per weight, bytes, multiplications removed and the relative error', () => {
    const w = gaussian(rng(61), 64 * 64 * 3 * 3);
    const t4 = quantizeWeights(w, [64, 64, 3, 3], { groupSize: 4 }).stats; // folded: the default for ternary
    expect(t4.bitsPerWeight).toBeCloseTo(2 + 8 / 4 + 32 / 576, 12);
    expect(t4.multiplicationsRemoved).toBeCloseTo(1 - (144 + 1) / 576, 12);
    const g4 = quantizeWeights(w, [64, 64, 3, 3], { groupSize: 4, form: 'group-scaled' }).stats;
    expect(g4.bitsPerWeight).toBeCloseTo(2 + 32 / 4, 12);
    expect(g4.multiplicationsRemoved).toBeCloseTo(0.75, 12);
    const f64 = quantizeWeights(w, [64, 64, 3, 3], { groupSize: 64, form: 'folded' }).stats;
    expect(f64.bitsPerWeight).toBeCloseTo(2 + 8 / 64 + 32 / 576, 12);
    expect(f64.multiplicationsRemoved).toBeCloseTo(1 - (9 + 1) / 576, 12);
    const a4 = quantizeWeights(w, [64, 64, 3, 3], { groupSize: 4, asymmetric: true }).stats;
    expect(a4.multiplicationsRemoved).toBeCloseTo(1 - (2 * 144 + 1) / 576, 12);
    expect(quantizeWeights(w, [64, 64, 3, 3], { bits: 4 }).stats.multiplicationsRemoved).toBe(0);
    // error grows with N; relative error of exact ternary on Gaussians is about 0.3 - 0.5
    const errs = [4, 8, 16, 32, 64, 'filter'].map((groupSize) => quantizeWeights(w, [64, 64, 3, 3], { groupSize: groupSize as number }).stats.relativeError);
    for (let i = 1; i < errs.length; i++) expect(errs[i]).toBeGreaterThan(errs[i - 1]);
    expect(errs[0]).toBeGreaterThan(0.2);
    expect(errs[5]).toBeLessThan(0.6);
    expect(relErr(w, quantizeWeights(w, [64, 64, 3, 3]).dequantized())).toBeCloseTo(t4.relativeError, 9);
    expect(t4.zeroFraction).toBeGreaterThan(0.2);
  });
});

describe('BAD CALL', () => {
  const w = new Float32Array(8);
  it('rejects bad weights, dims and options with the formatter', () => {
    expectCode(() => quantizeWeights([1, 2] as unknown as Float32Array, [1, 2]), 'ERR_INVALID_ARGUMENT', /Expected a Float32Array for weights/);
    expectCode(() => quantizeWeights(w, [8]), 'ERR_INVALID_ARGUMENT', /for dims but received an array of length 1/);
    expectCode(() => quantizeWeights(w, [2, 0, 4]), 'ERR_INVALID_ARGUMENT', /Expected a positive integer for dims\[1\]/);
    expectCode(() => quantizeWeights(w, [3, 4]), 'ERR_SHAPE_MISMATCH', /hold 12 weights but weights has length 8/);
    expectCode(() => quantizeWeights(w, [2, 4], { bits: 3 as 2 }), 'ERR_INVALID_ARGUMENT', /Expected one of 2, 4, 8 for options.bits but received 3/);
    expectCode(() => quantizeWeights(w, [2, 4], { groupSize: 0 }), 'ERR_INVALID_ARGUMENT', /options.groupSize/);
    expectCode(() => quantizeWeights(w, [2, 4], { grouping: 'filters', groupSize: 'filter' }), 'ERR_INVALID_ARGUMENT', /output channels per group/);
    expectCode(() => quantizeWeights(w, [2, 4], { bits: 4, asymmetric: true }), 'ERR_INVALID_ARGUMENT', /ternary/);
    expectCode(() => quantizeWeights(w, [2, 4], { groupsize: 4 } as WeightQuantOptions), 'ERR_INVALID_ARGUMENT', /Unknown option "groupsize"/);
    expectCode(() => quantizeWeights(new Float32Array([1, NaN]), [1, 2]), 'ERR_INVALID_ARGUMENT', /finite numbers for weights\[1\] but received NaN/);
  });
});

describe('cross-check through the kernels', () => {
  const isas = cpuInfo().supported as ('scalar' | 'avx2' | 'avx512vnni' | 'avxvnni' | 'neon')[];
  const configs: WeightQuantOptions[] = [
    { groupSize: 16 }, { groupSize: 16, asymmetric: true }, { groupSize: 16, form: 'folded' },
    { groupSize: 16, asymmetric: true, form: 'folded' }, { groupSize: 4, threshold: 'twn' }, { groupSize: 'filter' },
    { grouping: 'filters', groupSize: 3 }, { bits: 4, groupSize: 8 }, { bits: 4, groupSize: 16, form: 'folded', clipping: 'mse' },
    { bits: 8 },
  ];
  it.each(isas)('kernel output = float product with dequantized() weights (%s)', (isa) => {
    const r = rng(70);
    const [co, ci, kh, kw] = [7, 24, 3, 3];
    const w = gaussian(r, co * ci * kh * kw, 0.1);
    const ttq = ternaryLayer(r, co, ci, kh * kw, () => 'layer', true); // lossless, some scaleNeg = 0
    const M = 5, rowLength = ci * kh * kw;
    const x = new Float32Array(M * rowLength).map(() => 2 * r()); // post-ReLU activations, original column order
    const sx = Math.fround(2 / 255);
    const xq = x.map((v) => Math.min(255, Math.round(v / sx)));
    for (const [options, weights] of [...configs.map((c) => [c, w] as const), [{ groupSize: 4 }, ttq] as const]) {
      const q = quantizeWeights(weights, [co, ci, kh, kw], options);
      const { K, source } = q.layout;
      const A = new Uint8Array(M * K); // im2col in the layout's column order, zeros at padding
      for (let m = 0; m < M; m++) for (let k = 0; k < K; k++) if (source[k] >= 0) A[m * K + k] = xq[m * rowLength + source[k]];
      let packed: PackedMatrix, scale: Float32Array;
      if (q.form === 'per-channel') {
        packed = PackedMatrix.int8(q.codes, q.rows, K, { isa });
        scale = q.channelScale.map((s) => sx * s);
      } else {
        const pack = q.bits === 2 ? PackedMatrix.ternary : PackedMatrix.int4;
        packed = pack(q.codes, q.rows, K, { ...lowbitPackOptions(q), isa });
        scale = q.form === 'folded' ? q.channelScale.map((s) => sx * s) : new Float32Array(q.rows).fill(sx);
      }
      const y = packed.matmul(A, M, { scale }) as Float32Array;
      packed.release();
      const deq = q.dequantized();
      for (let m = 0; m < M; m++)
        for (let n = 0; n < co; n++) {
          let exact = 0, mag = 0, fromFloat = 0, actBound = 0;
          for (let j = 0; j < rowLength; j++) {
            const d = deq[n * rowLength + j];
            exact += d * sx * xq[m * rowLength + j];
            mag += Math.abs(d * sx * xq[m * rowLength + j]);
            fromFloat += d * x[m * rowLength + j];
            actBound += Math.abs(d) * sx / 2; // activation rounding error, at most s_x / 2 each
          }
          const label = `${JSON.stringify(options)} ${weights === ttq ? 'ttq ' : ''}m=${m} n=${n}`;
          expect(Math.abs(y[m * co + n] - exact), label).toBeLessThanOrEqual(2e-6 * mag + 1e-7);
          expect(Math.abs(y[m * co + n] - fromFloat), label).toBeLessThanOrEqual(actBound + 2e-6 * mag + 1e-7);
        }
    }
  });
});
