// Model quantization: quantize() (static FGQ / int4 / int8) and the weight quantizer it builds on.
export { quantize } from './quantize';
export type { LayerOverride, LayerReport, QuantGroupSize, QuantizedModel, QuantizeOptions, QuantizeReport, WeightMode } from './quantize';
export { calibrateTensor, collectTensors, paramsOfRange } from './calibrate';
export type { ActivationParams, CalibrationMethod } from './calibrate';
export { findLayers } from './rewrite';
export type { LayerCandidate } from './rewrite';
