// The bridge to the kernel API: a quantized low-bit layer as the options of
// PackedMatrix.ternary / PackedMatrix.int4 (lib/kernels.ts). Pure: no native call here.
//
//   const layer = quantizeWeights(w, dims, { bits: 2, groupSize: 16 });
//   const packed = PackedMatrix.ternary(layer.codes, layer.rows, layer.K, lowbitPackOptions(layer));
//
// The matmul epilogue then takes scale[n] = s_x for group-scaled layers and
// scale[n] = s_x * layer.channelScale[n] for folded ones (and for int8 per-channel layers,
// packed with PackedMatrix.int8(layer.codes, layer.rows, layer.K)).
import type { LowbitPackOptions } from '../../kernels';
import type { FoldedWeights, GroupScaledWeights } from './types';

export function lowbitPackOptions(layer: GroupScaledWeights | FoldedWeights): LowbitPackOptions {
  if (layer.form === 'folded') {
    return {
      groupSize: layer.G, form: 'folded', multipliers: layer.multPos,
      ...(layer.multNeg ? { negativeMultipliers: layer.multNeg } : {}),
    };
  }
  return {
    groupSize: layer.G, form: 'group-scaled', scales: layer.scalePos,
    ...(layer.scaleNeg ? { negativeScales: layer.scaleNeg } : {}),
  };
}
