// A one-node ONNX model Y = A x W (W a constant [K][N]), encoded with ternion's own ONNX schema,
// so onnxruntime can be measured on exactly the shapes our kernels run.
'use strict';
const { ModelProtoType } = require('../dist/onnx/proto');

function valueInfo(name, dims) {
  return { name, type: { tensor_type: { elem_type: 1, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d })) } } } };
}

function encodeMatMulModel(W, K, N) {
  const raw = new Uint8Array(W.buffer, W.byteOffset, W.byteLength);
  const model = {
    ir_version: 8,
    opset_import: [{ domain: '', version: 13 }],
    producer_name: 'ternion-bench',
    graph: {
      name: 'matmul',
      node: [{ op_type: 'MatMul', input: ['A', 'W'], output: ['Y'], name: 'matmul' }],
      initializer: [{ name: 'W', data_type: 1, dims: [K, N], raw_data: raw }],
      input: [valueInfo('A', ['M', K])],
      output: [valueInfo('Y', ['M', N])],
    },
  };
  return ModelProtoType.encode(ModelProtoType.fromObject(model)).finish();
}

module.exports = { encodeMatMulModel, valueInfo };
