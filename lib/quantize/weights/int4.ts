// 4-bit weights of one group (fgq.md section 3): w ~ s * q, q in [-7, 7] (symmetric, so the
// kernels' folded form can expand q * m into int8 with m <= 18).
//  - 'max' (default): s = max|w| / 7, q = round(w / s), ties away from zero (rounding.ts).
//  - 'mse': MSE-optimal clipping. Tries s = r * max|w| / 7 for the fixed grid of clip ratios
//    INT4_CLIP_RATIOS (1 down to 0.5 in steps of 0.025), with q clamped to [-7, 7], and keeps
//    the ratio of least squared error; ties keep the larger ratio (the grid is scanned from 1),
//    so 'mse' is never worse than 'max' and is deterministic.
// The scale is rounded to float32 before the codes are chosen, so codes match the stored scale.
import { roundClamp } from './rounding';

export type Int4Clipping = 'max' | 'mse';

export const INT4_MAX = 7;

/** Clip ratios tried by 'mse', largest first. */
export const INT4_CLIP_RATIOS: readonly number[] = Array.from({ length: 21 }, (_, i) => 1 - i * 0.025);

/** Squared error of the group at scale s; the rounding is roundClamp's, inlined (hot loop). */
function squaredError(w: Float32Array, start: number, end: number, s: number): number {
  let e = 0;
  for (let i = start; i < end; i++) {
    const x = w[i];
    const t = x / s;
    let q = t < 0 ? -Math.round(-t) : Math.round(t);
    if (q > INT4_MAX) q = INT4_MAX;
    else if (q < -INT4_MAX) q = -INT4_MAX;
    const d = x - s * q;
    e += d * d;
  }
  return e;
}

/**
 * Writes codes[start, start + length) for w[start, start + length) and returns the group's
 * scale (float32-rounded; 0 for an all-zero group, whose codes are all 0).
 */
export function quantizeInt4Group(w: Float32Array, start: number, length: number, codes: Int8Array, clipping: Int4Clipping): number {
  const end = start + length;
  let max = 0;
  for (let i = start; i < end; i++) {
    const a = Math.abs(w[i]);
    if (a > max) max = a;
  }
  if (max === 0) {
    codes.fill(0, start, end);
    return 0;
  }
  let s = Math.fround(max / INT4_MAX);
  if (clipping === 'mse') {
    let best = squaredError(w, start, end, s);
    for (let r = 1; r < INT4_CLIP_RATIOS.length; r++) {
      const candidate = Math.fround((INT4_CLIP_RATIOS[r] * max) / INT4_MAX);
      if (candidate === 0) break;
      const e = squaredError(w, start, end, candidate);
      if (e < best) {
        best = e;
        s = candidate;
      }
    }
  }
  // Divide (not multiply by 1 / s): the codes must be the ones squaredError scored.
  for (let i = start; i < end; i++) codes[i] = roundClamp(w[i] / s, -INT4_MAX, INT4_MAX);
  return s;
}
