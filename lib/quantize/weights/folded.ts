// The folded-int8 form (fgq.md section 5, ours): each group's scale becomes an integer multiplier
// m_g of one per-output-channel scale s, so q * m_g is an int8 weight and a layer is one int8
// GEMM plus one per-channel requantization (kernel Requant scale = s_x * s).
//
// Multipliers are in [1, 127] for ternary and [1, 18] for 4-bit (7 * 18 = 126 fits int8); with
// reduceRange, ternary multipliers stay in [1, 63], so every q * m fits the 7-bit int8 form that
// AVX2 runs on vpmaddubsw (as reduceRange does for int8 layers). 4-bit keeps 18: 9 levels would
// be too coarse a scale.
// Choosing s: with the codes fixed, group g's contribution to ||W - Wq||^2 as a function of its
// effective scale c = m_g * s is A_g * c^2 - 2 * B_g * c + const, where A_g = sum q^2 and
// B_g = sum w * q over the group (for an asymmetric ternary pair, each sign is its own "group":
// A = count of that code, B = sum of |w| under it). So the multiplier error is
//     E(s) = sum_g A_g * (m_g * s - B_g / A_g)^2 + const,   m_g = clamp(round(B_g / (A_g s)), 1, M)
// which we minimise over a small deterministic set of s: t_max / c for c = M, M-1, ..., M-15
// (t_max = max_g B_g / A_g; c = M puts the largest group at the top of the range), then two
// least-squares refinements s = sum m_g B_g / sum A_g m_g^2 from the best. The candidate c = M
// is always tried, so the result is never worse than the plain s = max alpha / M. s is rounded
// to float32 before the multipliers are taken. Groups with no nonzero code (A_g = 0) get m = 1
// and add nothing; a row with none at all gets s = 0.
import { roundClamp } from './rounding';

/** Largest multiplier per code width: every expanded q * m must fit int8. */
export function maxMultiplier(bits: 2 | 4, reduceRange = false): number {
  if (bits === 4) return 18;
  return reduceRange ? 63 : 127;
}

const CANDIDATES = 16;
const REFINEMENTS = 2;

/** Reusable per-row fold: fills mult[0, count) and returns the channel scale. */
export class RowFolder {
  constructor(private readonly maxMult: number) {}

  /** A[g] = sum q^2, B[g] = sum w * q of the row's groups g in [0, count). */
  fold(A: Float64Array, B: Float64Array, count: number, mult: Uint8Array): number {
    let tmax = 0;
    for (let g = 0; g < count; g++) {
      if (A[g] > 0 && B[g] > 0) {
        const t = B[g] / A[g];
        if (t > tmax) tmax = t;
      }
    }
    if (tmax === 0) {
      mult.fill(1, 0, count);
      return 0;
    }
    const M = this.maxMult;
    let bestS = 0, bestE = Infinity;
    for (let c = M; c >= Math.max(1, M - CANDIDATES + 1); c--) {
      const s = Math.fround(tmax / c);
      const e = this.error(A, B, count, s);
      if (e < bestE) {
        bestE = e;
        bestS = s;
      }
    }
    for (let it = 0; it < REFINEMENTS; it++) {
      let num = 0, den = 0;
      for (let g = 0; g < count; g++) {
        if (A[g] === 0) continue;
        const m = roundClamp(B[g] / (A[g] * bestS), 1, M);
        num += m * B[g];
        den += A[g] * m * m;
      }
      const s = Math.fround(num / den);
      if (!(s > 0)) break;
      const e = this.error(A, B, count, s);
      if (!(e < bestE)) break;
      bestE = e;
      bestS = s;
    }
    for (let g = 0; g < count; g++) mult[g] = A[g] === 0 ? 1 : roundClamp(B[g] / (A[g] * bestS), 1, M);
    return bestS;
  }

  /** E(s) without its constant: sum_g A_g c_g^2 - 2 B_g c_g with c_g = m_g s. */
  private error(A: Float64Array, B: Float64Array, count: number, s: number): number {
    const M = this.maxMult;
    let e = 0;
    for (let g = 0; g < count; g++) {
      if (A[g] === 0) continue;
      const c = roundClamp(B[g] / (A[g] * s), 1, M) * s;
      e += A[g] * c * c - 2 * B[g] * c;
    }
    return e;
  }
}

export interface FoldedScales {
  multPos: Int8Array;
  multNeg: Int8Array | null;
  channelScale: Float32Array;
}

/**
 * Folds a quantized layer: codes [rows][K] in slots of G columns, weights w in the same layout.
 * Asymmetric ternary layers fold the +1 and -1 scales of a row against one shared s.
 */
export function foldLayer(w: Float32Array, codes: Int8Array, rows: number, K: number, G: number, bits: 2 | 4, asym: boolean, reduceRange = false): FoldedScales {
  const slots = K / G;
  const sides = asym ? 2 : 1;
  const A = new Float64Array(slots * sides), B = new Float64Array(slots * sides);
  const mult = new Uint8Array(slots * sides);
  const multPos = new Int8Array(rows * slots);
  const multNeg = asym ? new Int8Array(rows * slots) : null;
  const channelScale = new Float32Array(rows);
  const folder = new RowFolder(maxMultiplier(bits, reduceRange));
  for (let r = 0; r < rows; r++) {
    A.fill(0);
    B.fill(0);
    for (let g = 0; g < slots; g++) {
      const start = r * K + g * G, end = start + G;
      for (let i = start; i < end; i++) {
        const q = codes[i];
        if (q === 0) continue;
        const j = asym && q < 0 ? slots + g : g;
        A[j] += q * q;
        B[j] += w[i] * q;
      }
    }
    channelScale[r] = folder.fold(A, B, slots * sides, mult);
    for (let g = 0; g < slots; g++) {
      multPos[r * slots + g] = mult[g];
      if (multNeg) multNeg[r * slots + g] = mult[slots + g];
    }
  }
  return { multPos, multNeg, channelScale };
}
