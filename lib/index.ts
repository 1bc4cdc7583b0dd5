// ternion: quantized (fine-grained ternary, 4-bit, int8) neural-network inference for Node.js.
export { Tensor, TENSOR_TYPES } from './tensor';
export type { TensorType, TensorData, DataTypeMap } from './tensor';
// Loading ./image attaches Tensor.fromImage (sharp itself loads on first use).
export { fromImage } from './image';
export type { FromImageOptions, ImageInput } from './image';
export { TernionError, ErrorCodes } from './errors';
export type { ErrorCode } from './errors';
export { cpuInfo, PackedMatrix } from './kernels';
export type { CpuInfo, KernelIsa, LowbitForm, LowbitPackOptions, MatmulOptions, MatmulOutput, PackOptions } from './kernels';
export { InferenceSession } from './session/inference-session';
export type { RunOptions } from './session/inference-session';
export type { SessionOptions, SessionMemoryUsage } from './session/inference-session';
export type { InputMetadata } from './session/feeds';
export type { FetchesType } from './session/fetches';
export { loadNpy, parseNpy } from './data/npy';
export { quantize } from './quantize';
export type { QuantizeOptions, QuantizedModel, QuantizeProgress, QuantizeReport, LayerReport, LayerOverride, WeightMode, QuantGroupSize, CalibrationMethod, CalibrationFeeds, CalibrationInput, ActivationScaleMode } from './quantize';
export { readTern, writeTern, loadTern, saveTern, TERN_VERSION } from './format';
export type { TernModel, TernSection, TernQuantizationInfo, WriteTernOptions } from './format';
