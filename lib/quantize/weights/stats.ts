// The per-layer numbers of fgq.md section 5: what each one counts.
//
// bytes: codes at their width over the padded matrix, ceil(rows * K * bits / 8) (2 bits per
//   ternary code, though log2(3) would do), plus
//     group-scaled: 4 bytes per fp32 scale (x2 asymmetric), one per group of the method (with
//                   grouping 'filters' one per block of N rows, not one per replicated row);
//     folded:       1 byte per multiplier per kernel slot (x2 asymmetric) + 4 bytes per row;
//     per-channel:  4 bytes per row.
//   So ternary at N = 4 costs about 2 + 32/4 = 10 bits per weight group-scaled and
//   2 + 8/4 = 4 folded, plus 32 / (weights per row) for the channel scale.
// bitsPerWeight: bytes * 8 / original weights (padding is counted as overhead).
// multiplicationsRemoved: 1 - (multiplies per output) / (weights per row), where the fp32 layer
//   needs one multiply per weight. Ternary codes only add or subtract, so what is left is:
//     group-scaled: one per group of the row (two when asymmetric: alpha_p and alpha_n), i.e.
//                   1 - 1/N when N divides Cin; short groups count as whole groups;
//     folded:       the same integer multiplies by m_g (the reference semantics allow summing
//                   t * x per group and multiplying once by m_g), plus the per-channel one.
//                   Our SIMD kernels in fact expand m_g * t to int8 and use multiply-add
//                   instructions; this counts the arithmetic of the method, not instructions;
//     4-bit, int8:  0 (every weight is a multiply, if a cheaper one).
//   It goes negative for layers whose groups hold fewer weights than multiplies they need.
// relativeError: ||W - Wq|| / ||W|| in float64 over the original weights.
import type { GroupScheme } from './groups';
import type { WeightBits, WeightForm, WeightQuantStats } from './types';

export interface StatsInput {
  scheme: GroupScheme;
  bits: WeightBits;
  form: WeightForm;
  asym: boolean;
  /** Original weights in the row layout and their reconstruction (both [rows][K]). */
  weights: Float32Array;
  reconstructed: Float32Array;
  codes: Int8Array;
  lossless: boolean;
}

export function layerStats(input: StatsInput): WeightQuantStats {
  const { scheme, bits, form, asym, weights, reconstructed, codes } = input;
  const { rows, K, inputChannels, spatial } = scheme.layout;
  const weightsPerRow = inputChannels * spatial;
  const parameters = rows * weightsPerRow;
  const sides = asym ? 2 : 1;

  let bytes = Math.ceil((rows * K * bits) / 8);
  if (form === 'group-scaled') bytes += 4 * scheme.groupCount * sides;
  else if (form === 'folded') bytes += rows * scheme.slotsPerRow * sides + 4 * rows;
  else bytes += 4 * rows;

  let multiplicationsRemoved = 0;
  if (bits === 2) {
    const groupsPerRow = scheme.grouping === 'filters' ? 1 : scheme.slotsPerRow;
    const perOutput = groupsPerRow * sides + (form === 'folded' ? 1 : 0);
    multiplicationsRemoved = 1 - perOutput / weightsPerRow;
  }

  // Padding holds 0 in both arrays (no error), and code 0: discount it from the zero count.
  let err = 0, norm = 0, zeros = 0;
  for (let i = 0; i < weights.length; i++) {
    const w = weights[i];
    const d = w - reconstructed[i];
    err += d * d;
    norm += w * w;
    if (codes[i] === 0) zeros++;
  }
  zeros -= rows * K - parameters;
  return {
    parameters,
    groupSize: bits === 8 ? null : scheme.groupSize,
    grouping: scheme.grouping,
    bitsPerWeight: (bytes * 8) / parameters,
    bytes,
    multiplicationsRemoved,
    relativeError: norm > 0 ? Math.sqrt(err / norm) : 0,
    zeroFraction: zeros / parameters,
    lossless: input.lossless,
  };
}
