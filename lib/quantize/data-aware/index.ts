// Data-aware quantization (issue 8): layer statistics from the calibration data, output-error
// driven codes and scales, and bias correction.
export { LayerRows, convGeometry } from './layer-inputs';
export { LayerStatistics } from './layer-statistics';
export { quantizeWeightsDataAware, expandToLayout, expandVector } from './quantize-layer';
export type { DataAwareWeightOptions } from './quantize-layer';
export { errorFeedbackCodes, dampedHessian } from './error-feedback';
export { refitScales } from './refit-scales';
export { quantizeSequentially, correctedBias, fakeQuantize } from './sequential';
export { choleskyLower, choleskyUpper, inverseCholeskyUpper, inverseSpd, solveSpdInPlace } from './linalg';
