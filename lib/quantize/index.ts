// Model quantization: quantize() (static FGQ / int4 / int8) and the weight quantizer it builds on.
export { quantize } from './quantize';
export type { LayerOverride, LayerReport, QuantGroupSize, QuantizedModel, QuantizeOptions, QuantizeProgress, QuantizeReport, WeightMode } from './quantize';
export { forEachCalibrationBatch, paramsOfRange, RangeObserver } from './calibrate';
export type { ActivationParams, ActivationScaleMode, CalibrationMethod } from './calibrate';
export { calibrationBatches, CALIBRATION_BATCH } from './calibration-data';
export type { CalibrationFeeds, CalibrationInput } from './calibration-data';
export { findLayers } from './rewrite';
export type { LayerCandidate } from './rewrite';
