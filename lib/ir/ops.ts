// The op table: the one source of truth for which operators ternion supports, at which opset
// versions, and how each one's output types follow from its inputs. The loader rejects any node
// not covered here (ERR_UNSUPPORTED_OP); the native executor implements exactly these ops.

import { TernionError } from '../errors';
import { intAttribute } from './attributes';
import type { ShapeFunction } from './shape-context';
import { normalizeAxis } from './shape-context';
import { binaryArithmetic, sameAsFirstInput } from './shapes/elementwise';
import { convIntegerShapeFn, convShapeFn, convTransposeShapeFn, globalPoolShapeFn, poolShapeFn, qlinearConvShapeFn } from './shapes/conv-pool';
import { gemmShapeFn, matmulIntegerShapeFn, matmulShapeFn, qlinearMatmulShapeFn } from './shapes/matmul';
import { concatShapeFn, flattenShapeFn, reshapeShapeFn, squeezeShapeFn, transposeShapeFn, unsqueezeShapeFn } from './shapes/layout';
import { gatherShapeFn, padShapeFn, shapeOpShapeFn, sliceShapeFn, splitShapeFn } from './shapes/indexing';
import {
  batchNormShapeFn, constantShapeFn, dequantizeLinearShapeFn, dropoutShapeFn, dynamicQuantizeLinearShapeFn, identityShapeFn, layerNormShapeFn, quantizeLinearShapeFn,
} from './shapes/misc';
import {
  binaryBroadcastShapeFn, argExtremeShapeFn, castLikeShapeFn, castShapeFn, compareShapeFn, constantOfShapeShapeFn, expandShapeFn, powShapeFn, rangeShapeFn, reduceShapeFn, gatherElementsShapeFn, negShapeFn, preluShapeFn, resizeShapeFn, sizeShapeFn, spaceDepthShapeFn, tileShapeFn, topKShapeFn, variadicShapeFn, whereShapeFn,
} from './shapes/math-logic';
import { recurrentShapeFn } from './shapes/recurrent';
import { einsumShapeFn } from './shapes/einsum';
import { ifShapeFn, loopShapeFn, scanShapeFn } from './shapes/control-flow';
import {
  compressShapeFn, eyeLikeShapeFn, float32Only, floatClassShapeFn, gatherNDShapeFn, mvnShapeFn, nonZeroShapeFn, oneHotShapeFn, reverseSequenceShapeFn, scatterElementsShapeFn, shrinkShapeFn,
} from './shapes/extra-ops';
import { gridSampleShapeFn, maxUnpoolShapeFn, nonMaxSuppressionShapeFn, roiAlignShapeFn } from './shapes/detection';
import { bitShiftShapeFn, bitwiseBinaryShapeFn, bitwiseNotShapeFn, groupNormShapeFn } from './shapes/more-ops';
import type { Node } from './types';

/** The newest ai.onnx opset whose changes we have reviewed (ONNX 1.16). */
export const MAX_SUPPORTED_OPSET = 21;

export interface OpSpec {
  readonly opType: string;
  /** '' for ai.onnx. */
  readonly domain: string;
  /**
   * Oldest opset whose semantics we implement. Older versions differ in ways we don't model
   * (legacy broadcast attributes before 7, Reshape's shape attribute before 5, ...).
   */
  readonly minOpset: number;
  readonly maxOpset: number;
  readonly inferShapes: ShapeFunction;
}

/** Softmax/LogSoftmax/Hardmax: before opset 13 the input is coerced to 2-D at `axis` (default 1). */
const softmaxShapeFn: ShapeFunction = (ctx) => {
  const x = ctx.shape(0);
  const axis = intAttribute(ctx.node, 'axis', ctx.opset < 13 ? 1 : -1);
  if (x.length > 0 || axis !== -1) normalizeAxis(ctx, axis, Math.max(x.length, 1));
  return [{ dtype: ctx.input(0).dtype, shape: x }];
};

function op(opType: string, minOpset: number, inferShapes: ShapeFunction, maxOpset = MAX_SUPPORTED_OPSET): OpSpec {
  return { opType, domain: '', minOpset, maxOpset, inferShapes };
}

const OP_LIST: readonly OpSpec[] = [
  op('Conv', 1, convShapeFn),
  op('ConvTranspose', 1, convTransposeShapeFn),
  op('Gemm', 7, gemmShapeFn),
  op('MatMul', 1, matmulShapeFn),
  op('Add', 7, binaryArithmetic('Add')),
  op('Sub', 7, binaryArithmetic('Sub')),
  op('Mul', 7, binaryArithmetic('Mul')),
  op('Div', 7, binaryArithmetic('Div')),
  op('Relu', 1, sameAsFirstInput),
  op('LeakyRelu', 1, sameAsFirstInput),
  op('Clip', 1, sameAsFirstInput),
  op('Sigmoid', 1, sameAsFirstInput),
  op('Tanh', 1, sameAsFirstInput),
  op('HardSigmoid', 1, sameAsFirstInput),
  op('HardSwish', 14, sameAsFirstInput),
  op('Gelu', 20, sameAsFirstInput),
  op('Erf', 9, sameAsFirstInput),
  op('Elu', 6, sameAsFirstInput),
  op('Selu', 6, sameAsFirstInput),
  op('Celu', 12, sameAsFirstInput),
  op('Softplus', 1, sameAsFirstInput),
  op('Softsign', 1, sameAsFirstInput),
  op('ThresholdedRelu', 10, sameAsFirstInput),
  op('Mish', 18, sameAsFirstInput),
  op('PRelu', 7, preluShapeFn),
  op('MaxPool', 1, poolShapeFn),
  op('AveragePool', 1, poolShapeFn),
  op('GlobalAveragePool', 1, globalPoolShapeFn),
  op('GlobalMaxPool', 1, globalPoolShapeFn),
  op('Flatten', 1, flattenShapeFn),
  op('Reshape', 5, reshapeShapeFn),
  op('Transpose', 1, transposeShapeFn),
  op('Squeeze', 1, squeezeShapeFn),
  op('Unsqueeze', 1, unsqueezeShapeFn),
  op('Concat', 1, concatShapeFn),
  op('Split', 2, splitShapeFn),
  op('Slice', 1, sliceShapeFn),
  op('Gather', 1, gatherShapeFn),
  op('Pad', 2, padShapeFn),
  op('Softmax', 1, softmaxShapeFn),
  op('LogSoftmax', 1, softmaxShapeFn),
  op('Identity', 1, identityShapeFn),
  op('Dropout', 1, dropoutShapeFn),
  op('BatchNormalization', 7, batchNormShapeFn),
  // Opset 17 made it standard; onnxruntime writes it at any opset (its fusion of the written-out
  // form, same definition).
  op('LayerNormalization', 1, layerNormShapeFn),
  op('Shape', 1, shapeOpShapeFn),
  op('Constant', 1, constantShapeFn),
  op('Sqrt', 6, sameAsFirstInput),
  op('Exp', 6, sameAsFirstInput),
  op('Log', 6, sameAsFirstInput),
  op('Reciprocal', 6, sameAsFirstInput),
  op('Neg', 6, negShapeFn),
  op('Abs', 6, sameAsFirstInput),
  op('Sign', 9, sameAsFirstInput),
  op('Floor', 6, sameAsFirstInput),
  op('Ceil', 6, sameAsFirstInput),
  op('Round', 11, sameAsFirstInput),
  op('Sin', 7, sameAsFirstInput),
  op('Cos', 7, sameAsFirstInput),
  op('Min', 8, variadicShapeFn),
  op('Max', 8, variadicShapeFn),
  op('Sum', 8, variadicShapeFn),
  op('Mean', 8, variadicShapeFn),
  op('ArgMax', 1, argExtremeShapeFn),
  op('ArgMin', 1, argExtremeShapeFn),
  op('Pow', 7, powShapeFn),
  op('Mod', 10, binaryBroadcastShapeFn),
  op('ReduceMean', 1, reduceShapeFn(18)),
  op('ReduceSum', 1, reduceShapeFn(13)),
  op('ReduceMax', 1, reduceShapeFn(18)),
  op('ReduceMin', 1, reduceShapeFn(18)),
  op('ReduceProd', 1, reduceShapeFn(18)),
  op('ReduceSumSquare', 1, reduceShapeFn(18)),
  op('ReduceL1', 1, reduceShapeFn(18)),
  op('ReduceL2', 1, reduceShapeFn(18)),
  op('ReduceLogSumExp', 1, reduceShapeFn(18)),
  op('Cast', 6, castShapeFn),
  op('CastLike', 15, castLikeShapeFn),
  op('Equal', 7, compareShapeFn),
  op('Less', 7, compareShapeFn),
  op('Greater', 7, compareShapeFn),
  op('LessOrEqual', 12, compareShapeFn),
  op('GreaterOrEqual', 12, compareShapeFn),
  op('Not', 1, sameAsFirstInput),
  op('And', 7, compareShapeFn),
  op('Or', 7, compareShapeFn),
  op('Xor', 7, compareShapeFn),
  op('Where', 9, whereShapeFn),
  op('ConstantOfShape', 9, constantOfShapeShapeFn),
  op('Range', 11, rangeShapeFn),
  op('Expand', 8, expandShapeFn),
  op('ScatterND', 11, sameAsFirstInput),
  op('Resize', 10, resizeShapeFn(false)),
  op('Upsample', 7, resizeShapeFn(true), 9),
  op('Tile', 6, tileShapeFn),
  op('DepthToSpace', 11, spaceDepthShapeFn(true)),
  op('SpaceToDepth', 1, spaceDepthShapeFn(false)),
  op('Trilu', 14, sameAsFirstInput),
  op('GatherElements', 11, gatherElementsShapeFn),
  op('TopK', 10, topKShapeFn),
  op('CumSum', 11, sameAsFirstInput),
  op('Size', 1, sizeShapeFn),
  op('InstanceNormalization', 6, sameAsFirstInput),
  op('LRN', 1, sameAsFirstInput),
  op('QuantizeLinear', 10, quantizeLinearShapeFn),
  op('DynamicQuantizeLinear', 11, dynamicQuantizeLinearShapeFn),
  op('DequantizeLinear', 10, dequantizeLinearShapeFn),
  op('QLinearConv', 10, qlinearConvShapeFn),
  op('QLinearMatMul', 10, qlinearMatmulShapeFn),
  op('ConvInteger', 10, convIntegerShapeFn),
  op('MatMulInteger', 10, matmulIntegerShapeFn),
  // Opset 7 is where the recurrent ops took their current form (no output_sequence attribute).
  op('LSTM', 7, recurrentShapeFn('LSTM')),
  op('GRU', 7, recurrentShapeFn('GRU')),
  op('RNN', 7, recurrentShapeFn('RNN')),
  op('Tan', 7, float32Only(sameAsFirstInput)),
  op('Asin', 7, float32Only(sameAsFirstInput)),
  op('Acos', 7, float32Only(sameAsFirstInput)),
  op('Atan', 7, float32Only(sameAsFirstInput)),
  op('Sinh', 9, float32Only(sameAsFirstInput)),
  op('Cosh', 9, float32Only(sameAsFirstInput)),
  op('Asinh', 9, float32Only(sameAsFirstInput)),
  op('Acosh', 9, float32Only(sameAsFirstInput)),
  op('Atanh', 9, float32Only(sameAsFirstInput)),
  op('IsNaN', 9, floatClassShapeFn),
  op('IsInf', 10, floatClassShapeFn),
  op('Shrink', 9, shrinkShapeFn),
  op('Hardmax', 1, float32Only(softmaxShapeFn)),
  op('ReduceLogSum', 1, float32Only(reduceShapeFn(18))),
  // Opset 9 replaced the experimental form (across_channels / normalize_variance) with axes.
  op('MeanVarianceNormalization', 9, mvnShapeFn),
  op('EyeLike', 9, eyeLikeShapeFn),
  op('GatherND', 11, gatherNDShapeFn),
  op('ScatterElements', 11, scatterElementsShapeFn),
  // Scatter is ScatterElements under its old name, deprecated from opset 11.
  op('Scatter', 9, scatterElementsShapeFn, 10),
  op('OneHot', 9, oneHotShapeFn),
  op('NonZero', 9, nonZeroShapeFn),
  op('Compress', 9, compressShapeFn),
  op('ReverseSequence', 10, reverseSequenceShapeFn),
  op('Einsum', 12, einsumShapeFn),
  // Control flow: subgraphs in attributes, outer values read as the node's last inputs (ir/subgraphs.ts).
  op('If', 1, ifShapeFn),
  op('Loop', 1, loopShapeFn),
  // Opset 8's Scan has a batch axis and sequence_lens; opset 9 took today's form.
  op('Scan', 9, scanShapeFn),
  op('NonMaxSuppression', 10, nonMaxSuppressionShapeFn),
  // Opset 16 added coordinate_transformation_mode (default half_pixel; opset 10 behaves as output_half_pixel).
  op('RoiAlign', 10, roiAlignShapeFn),
  // 4-D input only; opset 20 allows N-D and renames the modes (both accepted by name per opset).
  op('GridSample', 16, gridSampleShapeFn),
  op('MaxUnpool', 9, maxUnpoolShapeFn),
  // Opset 18 gives scale and bias per group, opset 21 per channel (the node's opset decides).
  op('GroupNormalization', 18, groupNormShapeFn),
  op('BitwiseAnd', 18, bitwiseBinaryShapeFn),
  op('BitwiseOr', 18, bitwiseBinaryShapeFn),
  op('BitwiseXor', 18, bitwiseBinaryShapeFn),
  op('BitwiseNot', 18, bitwiseNotShapeFn),
  // uint8 only: the one unsigned type ternion holds.
  op('BitShift', 11, bitShiftShapeFn),
];

const OP_TABLE: ReadonlyMap<string, OpSpec> = new Map(OP_LIST.map((spec) => [`${spec.domain}::${spec.opType}`, spec]));

/** Every supported op, for docs and tests. */
export function supportedOps(): readonly OpSpec[] {
  return OP_LIST;
}

export function findOpSpec(domain: string, opType: string): OpSpec | undefined {
  return OP_TABLE.get(`${domain}::${opType}`);
}

/**
 * Attributes that passes add to Conv/Gemm/MatMul to record fusions; the executor reads them.
 * - activation: 'Relu' | 'Clip' | 'LeakyRelu' (passes/fuse-activation.ts), or 'Silu' | 'HardSwish'
 *   (Conv and TernionQConv, at session creation: passes/fuse-conv-swish.ts), applied last.
 * - activation_params: Clip [min, max]; LeakyRelu [alpha].
 * - fused_residual: 1 when the node's last input is added to its output before the activation.
 */
export const FUSED_ATTRIBUTES = ['activation', 'activation_params', 'fused_residual'] as const;
export type FusedActivation = 'Relu' | 'Clip' | 'LeakyRelu' | 'Silu' | 'HardSwish';

function domainName(domain: string): string {
  return domain === '' ? 'ai.onnx' : domain;
}

/** The op's spec for this node at the model's opset, or ERR_UNSUPPORTED_OP naming op, node and opset. */
export function requireSupportedOp(node: Node, opsets: Readonly<Record<string, number>>): OpSpec {
  const opset = opsets[node.domain];
  if (opset === undefined) {
    throw new TernionError('ERR_MODEL_FORMAT', `Node "${node.name}" (${node.opType}) uses domain "${domainName(node.domain)}" which the model does not import`);
  }
  const spec = findOpSpec(node.domain, node.opType);
  if (spec === undefined) {
    throw new TernionError(
      'ERR_UNSUPPORTED_OP',
      `Unsupported operator ${node.opType} (domain ${domainName(node.domain)}, opset ${opset}) in node "${node.name}"`,
    );
  }
  if (opset < spec.minOpset || opset > spec.maxOpset) {
    throw new TernionError(
      'ERR_UNSUPPORTED_OP',
      `Unsupported opset ${opset} for operator ${node.opType} in node "${node.name}": ternion supports ${node.opType} at opsets ${spec.minOpset} to ${spec.maxOpset}`,
    );
  }
  return spec;
}
