// FGQ weight quantization (shared/fgq.md sections 2, 3, 5): pure, deterministic TypeScript.
export { quantizeWeights } from './quantize-weights';
export type {
  FoldedWeights, GroupScaledWeights, Int8Weights, QuantizedWeights, WeightBits, WeightForm,
  WeightQuantOptions, WeightQuantStats,
} from './types';
export { gemmLayout, toGemmRows, fromGemmRows, transposeToOutputMajor } from './layout';
export type { GemmLayout } from './layout';
export type { GroupSize, Grouping } from './groups';
export { detectPreTernarized, isPreTernarized, DEFAULT_TERNARY_TOLERANCE } from './pre-ternarized';
export type { PreTernarizedOptions, PreTernarizedReport } from './pre-ternarized';
export { ternarizeGroup, solveExactSorted, solveTwn, sortAscending, ThresholdSolution } from './ternary';
export type { TernaryGroup, TernaryThreshold } from './ternary';
export { quantizeInt4Group, INT4_CLIP_RATIOS } from './int4';
export type { Int4Clipping } from './int4';
export { quantizeInt8Rows } from './int8';
export { foldLayer, maxMultiplier, RowFolder } from './folded';
export { dequantize, dequantizeRows } from './dequantize';
export { lowbitPackOptions } from './pack-options';
export { roundHalfAway } from './rounding';
