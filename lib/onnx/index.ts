// onnx/: decodes ONNX protobuf into the IR, nothing else.

export { loadOnnxModel } from './load-model';
export type { LoadOnnxOptions } from './load-model';
export { decodeTensorProto } from './tensor-proto';
export type { TensorDecodeOptions } from './tensor-proto';
