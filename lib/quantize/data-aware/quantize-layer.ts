// One layer's weights quantized to minimise its output error on the calibration data rather
// than its weight error: codes by sequential rounding with error feedback and/or scales refit
// by least squares, both driven by the layer's input statistics H. Same layout, same codes and
// scale arrays as the plain quantizer (weights/quantize-weights.ts), so everything downstream
// (folding, packing, the kernels, the .tern file) is shared.
import { foldLayer } from '../weights/folded';
import { channelMultiple, groupScheme } from '../weights/groups';
import { gemmLayout, toGemmRows, type GemmLayout } from '../weights/layout';
import { finish, layerForm, quantizeWeights } from '../weights/quantize-weights';
import { dequantizeRows } from '../weights/dequantize';
import type { FoldedWeights, GroupScaledWeights, QuantizedWeights, WeightQuantOptions } from '../weights/types';
import { dampedHessian, errorFeedbackCodes, paddingColumns, type LayerCodes } from './error-feedback';
import { refitScales } from './refit-scales';

/**
 * Error feedback then refit, three times over (each rounding pass on the previous refit's grid):
 * on the embedded model this took ternary N=16 from 91.8% to 92.4% top-1, N=4 from 92.3% to
 * 92.6%, for about 1.5x the time.
 */
export const DEFAULT_PASSES = 3;

export interface DataAwareWeightOptions {
  /** Sequential rounding with error feedback (GPTQ-style). */
  errorFeedback: boolean;
  /** Least-squares refit of the group scales on the output error. */
  refitScales: boolean;
  /** Diagonal damping of H, relative to its mean diagonal (default 0.01). */
  damping?: number;
  /** Rounding + refit passes when both methods are on (default DEFAULT_PASSES). */
  passes?: number;
}

/**
 * H in a layer's GEMM layout from H in the unpadded layout (k' = s * Cin + ci): padding
 * columns get zero rows and columns.
 */
export function expandToLayout(Hu: Float64Array, layout: GemmLayout): Float64Array {
  const { K, spatial: S, inputChannels: C } = layout;
  const map = new Int32Array(K);
  layout.source.forEach((src, k) => {
    map[k] = src < 0 ? -1 : (src % S) * C + Math.floor(src / S);
  });
  const Ku = S * C;
  if (Ku === K) return Hu;
  const H = new Float64Array(K * K);
  for (let i = 0; i < K; i++) {
    const mi = map[i];
    if (mi < 0) continue;
    for (let j = 0; j < K; j++) {
      const mj = map[j];
      if (mj >= 0) H[i * K + j] = Hu[mi * Ku + mj];
    }
  }
  return H;
}

/** A vector over the unpadded layout's columns, placed in the layer's GEMM layout. */
export function expandVector(vu: Float64Array, layout: GemmLayout): Float64Array {
  const { K, spatial: S, inputChannels: C } = layout;
  const v = new Float64Array(K);
  layout.source.forEach((src, k) => {
    if (src >= 0) v[k] = vu[(src % S) * C + Math.floor(src / S)];
  });
  return v;
}

/**
 * Quantizes weights (dims [Co, Cin, ...spatial], output-channel major) with `wopts`, using the
 * input statistics `Hu` (unpadded layout, [S*Cin]^2). Int8 layers and pre-ternarized layers
 * (packed losslessly) are left to the plain quantizer: there is nothing to gain.
 */
export function quantizeWeightsDataAware(
  weights: Float32Array,
  dims: readonly number[],
  wopts: WeightQuantOptions,
  Hu: Float64Array,
  da: DataAwareWeightOptions,
): QuantizedWeights {
  const plain = quantizeWeights(weights, dims, { ...wopts, form: 'group-scaled' });
  const bits = wopts.bits ?? 2;
  const folded = bits !== 8 && layerForm(wopts.form, bits as 2 | 4, plain.stats.lossless) === 'folded';
  if (bits === 8 || plain.stats.lossless || (!da.errorFeedback && !da.refitScales) || plain.form !== 'group-scaled') {
    return folded ? quantizeWeights(weights, dims, wopts) : plain;
  }
  const grouping = wopts.grouping ?? 'channels';
  const groupSize = wopts.groupSize ?? 4;
  const layout = gemmLayout(dims, channelMultiple(grouping, groupSize));
  const scheme = groupScheme(layout, grouping, groupSize);
  const rows = toGemmRows(weights, layout);
  const Hd = dampedHessian(expandToLayout(Hu, layout), layout.K, paddingColumns(scheme), da.damping ?? 0.01);
  const asym = plain.asym;
  const grid = { bits: bits as 2 | 4, asym, threshold: wopts.threshold ?? 'exact', int4Clipping: wopts.clipping ?? 'max' };
  let layer: LayerCodes = da.errorFeedback
    ? errorFeedbackCodes(rows, scheme, Hd, grid)
    : { codes: plain.codes.slice(), scalePos: plain.scalePos.slice(), scaleNeg: plain.scaleNeg ? plain.scaleNeg.slice() : null };
  if (da.refitScales) refitScales(rows, scheme, Hd, layer);
  for (let pass = 1; pass < (da.passes ?? DEFAULT_PASSES) && da.errorFeedback && da.refitScales; pass++) {
    // Round again on the refit grid, then refit to the new codes.
    layer = errorFeedbackCodes(rows, scheme, Hd, grid, layer);
    refitScales(rows, scheme, Hd, layer);
  }
  const common = { bits: bits as 2 | 4, rows: layout.rows, K: layout.K, G: scheme.G, asym, codes: layer.codes, layout };
  const scaled = finish<GroupScaledWeights>({ ...common, form: 'group-scaled', scalePos: layer.scalePos, scaleNeg: layer.scaleNeg }, rows, scheme, false);
  if (!folded) return scaled;
  // Folded: integer multipliers fitted to the data-aware weights (not to the fp32 ones).
  const f = foldLayer(dequantizeRows(scaled), layer.codes, layout.rows, layout.K, scheme.G, bits as 2 | 4, asym, wopts.reduceRange ?? false);
  return finish<FoldedWeights>({ ...common, form: 'folded', multPos: f.multPos, multNeg: f.multNeg, channelScale: f.channelScale }, rows, scheme, false);
}
