// Int8 weights for edge layers and depthwise convs (fgq.md sections 1-2): symmetric, one scale
// per output channel, scale = max|w| / qmax (float32-rounded first), q = round(w / scale) in
// [-qmax, qmax], ties away from zero. -128 is never used, so the kernels' int8 x uint8 products
// stay symmetric. An all-zero row gets scale 0 and zero codes.
// qmax is 127, or 63 with the reduced range: 7-bit codes let CPUs without VNNI multiply
// uint8 x int8 by vpmaddubsw (two products per int16 lane) without saturating, about 1.3x
// faster there; the result is exact either way (see native/kernels/avx2/gemm-q8-avx2.cc).
import { roundClamp } from './rounding';

export const INT8_MAX = 127;
export const INT8_REDUCED_MAX = 63;

/** Quantizes rows[r][0, K) into codes (same layout) and scales[r]. */
export function quantizeInt8Rows(rows: Float32Array, rowCount: number, K: number, codes: Int8Array, scales: Float32Array, qmax = INT8_MAX): void {
  for (let r = 0; r < rowCount; r++) {
    const start = r * K, end = start + K;
    let max = 0;
    for (let i = start; i < end; i++) {
      const a = Math.abs(rows[i]);
      if (a > max) max = a;
    }
    const s = Math.fround(max / qmax);
    scales[r] = s;
    if (s === 0) {
      codes.fill(0, start, end);
      continue;
    }
    for (let i = start; i < end; i++) codes[i] = roundClamp(rows[i] / s, -qmax, qmax);
  }
}
