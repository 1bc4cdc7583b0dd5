// ir/: the graph types, shape inference and the passes.

export type { AttributeType, AttributeValue, Attributes, ConstantTensor, Dim, Graph, GraphMetadata, Node, Shape, ValueType, ValueInfo } from './types';
export type { DataType, StoredDataType, TensorData, TensorDataMap } from './dtype';
export { inferShapes } from './infer-shapes';
export { optimizeGraph } from './optimize';
export type { OptimizeOptions } from './optimize';
export { FUSED_ATTRIBUTES, MAX_SUPPORTED_OPSET, findOpSpec, supportedOps } from './ops';
export type { FusedActivation, OpSpec } from './ops';
export { topologicalSort } from './topo-sort';
export { validateGraph } from './validate-graph';
export { foldConstants } from './passes/fold-constants';
export { foldBatchNorm } from './passes/fold-batch-norm';
export { foldConvBiasAdd } from './passes/fold-conv-bias-add';
export { fuseActivation } from './passes/fuse-activation';
export { fuseResidualAdd } from './passes/fuse-residual-add';
export { removeIdentity } from './passes/remove-identity';
export { removeDeadNodes } from './passes/remove-dead-nodes';
export { toChannelsLast } from './passes/channels-last';
export { fuseSilu } from './passes/fuse-silu';
export { fuseConvSwish } from './passes/fuse-conv-swish';
export { fuseMatMulIntegerScaled } from './passes/fuse-matmul-integer-scaled';
export { fuseGeluErf } from './passes/fuse-gelu';
export { fuseHardSwish } from './passes/fuse-hard-swish';
export { fuseLayerNormChain } from './passes/fuse-layer-norm';
export { moveTransposeBeforeMean } from './passes/transpose-before-mean';
export { fuseQGemmAdd } from './passes/fuse-qgemm-add';
export { trimConvTaps } from './passes/trim-conv-taps';
export { fuseAttentionSoftmax } from './passes/fuse-attention-softmax';
