// onnxruntime's own operators (domain com.microsoft), as models it wrote carry them: its QOperator
// quantization (QLinearAdd, QLinearGlobalAveragePool, QGemm, ...), its dynamically quantized
// layers once optimized (DynamicQuantizeMatMul, MatMulIntegerToFloat), its block-quantized
// weights (MatMulNBits: `model_q4.onnx`), its transformers tool's Attention, MultiHeadAttention
// (without its key / value cache) and EmbedLayerNormalization, and the fusions of a session
// saved with `optimizedModelFilePath`
// (FusedConv, FusedMatMul, Gelu, BiasGelu, QuickGelu, FastGelu, SkipLayerNormalization, BiasAdd;
// and SimplifiedLayerNormalization, RMS normalization, which onnxruntime writes in the ai.onnx
// domain). Each is written out at load as the standard ops its
// specification defines it by (onnxruntime's ContribOperators.md), so the rest of ternion sees
// ai.onnx ops only: the quantized ones as DequantizeLinear -> op -> QuantizeLinear (which the
// QDQ import then reads as activation parameters, as for any QDQ model), the fusions as the
// chains ternion's own passes fuse again (fuse-gelu, fuse-silu, fuse-activation,
// fuse-residual-add). Other com.microsoft ops stay refused with ERR_UNSUPPORTED_OP, as before.

import { TernionError } from '../errors';
import { inferNodeTypes } from '../ir/infer-shapes';
import type { InferredValue } from '../ir/shape-context';
import type { AttributeValue, ConstantTensor, DataType, Graph, Node, StoredDataType } from '../ir';
import { createTensorData, toNumberArray } from '../ir/dtype';
import { freshName, usedNames } from '../ir/graph-utils';

export const CONTRIB_DOMAIN = 'com.microsoft';

/** What a lowering can do: read its node, look up constants and types, emit standard nodes. */
interface Lowering {
  readonly node: Node;
  /** The model's ai.onnx opset, which the emitted nodes follow. */
  readonly opset: number;
  input(i: number): string;
  constant(name: string): ConstantTensor | undefined;
  /** The element type and shape of a tensor the node reads (types inferred up to this node). */
  type(name: string): InferredValue;
  rank(name: string): number;
  attr(name: string): AttributeValue | undefined;
  int(name: string, fallback: number): number;
  float(name: string, fallback: number): number;
  /** A new initializer; its name. */
  add(base: string, dtype: StoredDataType, dims: readonly number[], values: readonly number[]): string;
  scalar(value: number): string;
  /** A standard node; its output names (fresh ones unless `outputs` are given). */
  emit(opType: string, inputs: readonly string[], attributes?: Record<string, AttributeValue>, outputs?: readonly string[], count?: number): string[];
  fail(message: string): never;
}

const int = (value: number): AttributeValue => ({ type: 'int', value });
const float = (value: number): AttributeValue => ({ type: 'float', value });
const ints = (value: readonly number[]): AttributeValue => ({ type: 'ints', value });

/** DequantizeLinear of x (scale, optional zero point; per `axis` when given). */
function dequantize(l: Lowering, x: string, scale: string, zp: string, axis?: number): string {
  return l.emit('DequantizeLinear', zp ? [x, scale, zp] : [x, scale], axis === undefined ? {} : { axis: int(axis) })[0];
}

/**
 * QuantizeLinear of v to the node's output `out` with the given scale and zero point; without a
 * zero point the output takes the element type of `like` (the quantized inputs' type).
 */
function quantizeTo(l: Lowering, v: string, scale: string, zp: string, like: string, out: readonly string[]): void {
  let z = zp;
  if (!z) {
    const dtype = l.type(like).dtype;
    if (dtype !== 'uint8' && dtype !== 'int8') l.fail(`its quantized input "${like}" is ${dtype}, not uint8 or int8`);
    z = l.add('zero_point', dtype, [], [0]);
  }
  l.emit('QuantizeLinear', [v, scale, z], {}, out);
}

/** A Clip with constant bounds, as the model's opset writes it (attributes before 11, inputs since). */
function clip(l: Lowering, x: string, min: number, max: number, out?: readonly string[]): string {
  if (l.opset < 11) return l.emit('Clip', [x], { min: float(min), max: float(max) }, out)[0];
  return l.emit('Clip', [x, l.scalar(min), l.scalar(max)], {}, out)[0];
}

/** GELU as PyTorch exports it, x * (erf(x / sqrt(2)) + 1) * 0.5, which fuse-gelu runs as one op. */
function geluErf(l: Lowering, x: string, out: readonly string[]): void {
  const scaled = l.emit('Div', [x, l.scalar(Math.SQRT2)])[0];
  const erf = l.emit('Erf', [scaled])[0];
  const plus = l.emit('Add', [erf, l.scalar(1)])[0];
  const times = l.emit('Mul', [x, plus])[0];
  l.emit('Mul', [times, l.scalar(0.5)], {}, out);
}

/** Transpose swapping the last two axes of a tensor of rank r (identity below rank 2). */
function swapLastTwo(l: Lowering, x: string): string {
  const r = l.rank(x);
  if (r < 2) return x;
  const perm = Array.from({ length: r }, (_, i) => i);
  [perm[r - 2], perm[r - 1]] = [perm[r - 1], perm[r - 2]];
  return l.emit('Transpose', [x], { perm: ints(perm) })[0];
}

/** An NHWC tensor's op run on NCHW: transposes around `run` (channels_last = 1 of the QLinear pools). */
function onChannelsFirst(l: Lowering, x: string, run: (nchw: string) => string): string {
  const r = l.rank(x);
  if (r < 3) l.fail(`channels_last needs an input of rank 3 or more, not ${r}`);
  const toFirst = [0, r - 1, ...Array.from({ length: r - 2 }, (_, i) => i + 1)];
  const toLast = [0, ...Array.from({ length: r - 2 }, (_, i) => i + 2), 1];
  const y = run(l.emit('Transpose', [x], { perm: ints(toFirst) })[0]);
  return l.emit('Transpose', [y], { perm: ints(toLast) })[0];
}

/** An activation op by onnxruntime's name (FusedConv's `activation`), with its parameters. */
function activation(l: Lowering, x: string, name: string, params: readonly number[], out: readonly string[]): void {
  switch (name) {
    case 'Relu':
    case 'Sigmoid':
    case 'Tanh':
      l.emit(name, [x], {}, out);
      return;
    case 'LeakyRelu':
      l.emit('LeakyRelu', [x], { alpha: float(params[0] ?? 0.01) }, out);
      return;
    case 'HardSigmoid':
      l.emit('HardSigmoid', [x], { alpha: float(params[0] ?? 0.2), beta: float(params[1] ?? 0.5) }, out);
      return;
    case 'Clip':
      clip(l, x, params[0] ?? -Infinity, params[1] ?? Infinity, out);
      return;
    default:
      l.fail(`its activation "${name}" is not one ternion knows (Relu, Sigmoid, Tanh, LeakyRelu, HardSigmoid, Clip)`);
  }
}

/** QLinearSigmoid / QLinearLeakyRelu: X, X_scale, X_zero_point?, Y_scale, Y_zero_point?. */
function unaryQLinear(apply: (l: Lowering, x: string) => string) {
  return (l: Lowering): void => {
    const x = dequantize(l, l.input(0), l.input(1), l.input(2));
    quantizeTo(l, apply(l, x), l.input(3), l.input(4), l.input(0), l.node.outputs);
  };
}

/** QLinearAdd / QLinearMul: A, A_scale, A_zero_point?, B, B_scale, B_zero_point?, C_scale, C_zero_point?. */
function binaryQLinear(op: 'Add' | 'Mul') {
  return (l: Lowering): void => {
    const a = dequantize(l, l.input(0), l.input(1), l.input(2));
    const b = dequantize(l, l.input(3), l.input(4), l.input(5));
    quantizeTo(l, l.emit(op, [a, b])[0], l.input(6), l.input(7), l.input(0), l.node.outputs);
  };
}

/** The node's attributes of these names that it has (those a contrib op shares with a standard one). */
function attributesOf(l: Lowering, names: readonly string[]): Record<string, AttributeValue> {
  const out: Record<string, AttributeValue> = {};
  for (const name of names) {
    const a = l.attr(name);
    if (a) out[name] = a;
  }
  return out;
}
const POOL_ATTRIBUTES = ['auto_pad', 'ceil_mode', 'count_include_pad', 'kernel_shape', 'pads', 'strides'];
const CONV_ATTRIBUTES = ['auto_pad', 'dilations', 'group', 'kernel_shape', 'pads', 'strides'];

/**
 * QGemm: Y = alpha * A' B' + C', A' and B' dequantized (B per column where b_scale has one value
 * per column), C' the int32 C at scale alpha * a_scale * b_scale; quantized when y_scale is given.
 */
function qgemm(l: Lowering): void {
  const [A, aScale, aZp, B, bScale, bZp, C, yScale, yZp] = Array.from({ length: 9 }, (_, i) => l.input(i));
  const alpha = l.float('alpha', 1);
  const transB = l.int('transB', 0);
  const a = dequantize(l, A, aScale, aZp);
  const perColumn = (l.type(bScale).shape ?? []).some((d) => d !== 1);
  const b = dequantize(l, B, bScale, bZp, perColumn ? (transB ? 0 : 1) : undefined);
  const inputs = [a, b];
  if (C) {
    const c = l.constant(C), as = l.constant(aScale), bs = l.constant(bScale);
    if (c && as && bs && c.dtype === 'int32') {
      // Constant bias: its float values, each at its column's scale.
      const cols = c.dims.length ? c.dims[c.dims.length - 1] : 1;
      const bv = toNumberArray(bs.data), av = Number(as.data[0]);
      const values = toNumberArray(c.data).map((v, i) => v * Math.fround(Math.fround(alpha * av) * bv[bv.length === 1 ? 0 : cols === 1 ? 0 : i % cols]));
      inputs.push(l.add('bias', 'float32', c.dims, values));
    } else {
      const scale = l.emit('Mul', [l.emit('Mul', [aScale, bScale])[0], l.scalar(alpha)])[0];
      inputs.push(l.emit('Mul', [l.emit('Cast', [C], { to: int(1) })[0], scale])[0]);
    }
  }
  const gemm = { alpha: float(alpha), beta: float(1), transA: int(l.int('transA', 0)), transB: int(transB) };
  if (!yScale) {
    l.emit('Gemm', inputs, gemm, l.node.outputs);
    return;
  }
  quantizeTo(l, l.emit('Gemm', inputs, gemm)[0], yScale, yZp, A, l.node.outputs);
}

const LOWERINGS: ReadonlyMap<string, (l: Lowering) => void> = new Map<string, (l: Lowering) => void>([
  ['QLinearAdd', binaryQLinear('Add')],
  ['QLinearMul', binaryQLinear('Mul')],
  ['QLinearSigmoid', unaryQLinear((l, x) => l.emit('Sigmoid', [x])[0])],
  ['QLinearLeakyRelu', unaryQLinear((l, x) => l.emit('LeakyRelu', [x], { alpha: float(l.float('alpha', 0.01)) })[0])],
  [
    'QLinearGlobalAveragePool',
    (l) => {
      const x = dequantize(l, l.input(0), l.input(1), l.input(2));
      const pool = (v: string) => l.emit('GlobalAveragePool', [v])[0];
      const y = l.int('channels_last', 0) ? onChannelsFirst(l, x, pool) : pool(x);
      quantizeTo(l, y, l.input(3), l.input(4), l.input(0), l.node.outputs);
    },
  ],
  [
    'QLinearAveragePool',
    (l) => {
      const x = dequantize(l, l.input(0), l.input(1), l.input(2));
      const pool = (v: string) => l.emit('AveragePool', [v], attributesOf(l, POOL_ATTRIBUTES))[0];
      const y = l.int('channels_last', 0) ? onChannelsFirst(l, x, pool) : pool(x);
      quantizeTo(l, y, l.input(3), l.input(4), l.input(0), l.node.outputs);
    },
  ],
  [
    'QLinearConcat',
    (l) => {
      const n = l.node.inputs.length;
      if (n < 5 || (n - 2) % 3 !== 0) l.fail(`it has ${n} inputs; QLinearConcat takes Y_scale, Y_zero_point and (X, X_scale, X_zero_point) triples`);
      const axis = l.attr('axis');
      if (axis?.type !== 'int') return l.fail('its attribute axis is required');
      const parts: string[] = [];
      for (let i = 2; i < n; i += 3) {
        // A float32 piece (TV allows it) is concatenated as it is.
        const t = l.type(l.input(i)).dtype;
        parts.push(t === 'float32' ? l.input(i) : dequantize(l, l.input(i), l.input(i + 1), l.input(i + 2)));
      }
      const y = l.emit('Concat', parts, { axis })[0];
      quantizeTo(l, y, l.input(0), l.input(1), l.input(2), l.node.outputs);
    },
  ],
  [
    'QLinearSoftmax',
    (l) => {
      const x = dequantize(l, l.input(0), l.input(1), l.input(2));
      const axis = l.int('axis', -1);
      const semantics = l.int('opset', l.opset);
      let y: string;
      if (semantics >= 13 === l.opset >= 13) {
        y = l.emit('Softmax', [x], { axis: int(axis) })[0];
      } else if (semantics < 13) {
        // Rows of the input flattened at axis, on a model whose Softmax takes one axis.
        const flat = l.emit('Flatten', [x], { axis: int(axis) })[0];
        const rows = l.emit('Softmax', [flat], { axis: int(-1) })[0];
        y = l.emit('Reshape', [rows, l.emit('Shape', [x])[0]])[0];
      } else {
        // One axis on a model whose Softmax flattens: the same where that axis is the last.
        const r = l.rank(l.input(0));
        if (axis !== -1 && axis !== r - 1) l.fail(`softmax over axis ${axis} of a rank-${r} input has no form at opset ${l.opset}`);
        y = l.emit('Softmax', [x], { axis: int(r - 1) })[0];
      }
      quantizeTo(l, y, l.input(3), l.input(4), l.input(0), l.node.outputs);
    },
  ],
  [
    'QLinearReduceMean',
    (l) => {
      const x = dequantize(l, l.input(0), l.input(1), l.input(2));
      const axes = l.attr('axes');
      const list = axes?.type === 'ints' ? axes.value : [];
      // No axes: all of them, which ReduceMean does without an axes argument too.
      const r = list.length ? axesArgs(l, x, list, 18) : { inputs: [x], attributes: {} };
      const y = l.emit('ReduceMean', r.inputs, { ...r.attributes, keepdims: int(l.int('keepdims', 1)) })[0];
      quantizeTo(l, y, l.input(3), l.input(4), l.input(0), l.node.outputs);
    },
  ],
  [
    'QLinearWhere',
    (l) => {
      const x = dequantize(l, l.input(1), l.input(2), l.input(3));
      const y = dequantize(l, l.input(4), l.input(5), l.input(6));
      quantizeTo(l, l.emit('Where', [l.input(0), x, y])[0], l.input(7), l.input(8), l.input(1), l.node.outputs);
    },
  ],
  ['QGemm', qgemm],
  ['MatMulNBits', matMulNBits],
  ['Attention', attention],
  ['MultiHeadAttention', multiHeadAttention],
  ['EmbedLayerNormalization', embedLayerNormalization],
  [
    'MatMulIntegerToFloat',
    (l) => {
      // A, B, a_scale, b_scale, a_zero_point?, b_zero_point?, bias?
      const acc = l.emit('MatMulInteger', trimOptional([l.input(0), l.input(1), l.input(4), l.input(5)]))[0];
      scaledToFloat(l, acc, l.input(2), l.input(3), l.input(6));
    },
  ],
  [
    'DynamicQuantizeMatMul',
    (l) => {
      // A (float), B, b_scale, b_zero_point?, bias?
      const [q, scale, zp] = l.emit('DynamicQuantizeLinear', [l.input(0)], {}, undefined, 3);
      const acc = l.emit('MatMulInteger', trimOptional([q, l.input(1), zp, l.input(3)]))[0];
      scaledToFloat(l, acc, scale, l.input(2), l.input(4));
    },
  ],
  ['Gelu', (l) => geluErf(l, l.input(0), l.node.outputs)],
  ['BiasGelu', (l) => geluErf(l, l.emit('Add', [l.input(0), l.input(1)])[0], l.node.outputs)],
  [
    'FastGelu',
    (l) => {
      // 0.5 * x * (1 + tanh(x * (0.797885 + 0.035677 * x * x))), x = X + bias.
      const x = l.input(1) ? l.emit('Add', [l.input(0), l.input(1)])[0] : l.input(0);
      const square = l.emit('Mul', [x, x])[0];
      const inner = l.emit('Add', [l.emit('Mul', [square, l.scalar(0.035677)])[0], l.scalar(0.797885)])[0];
      const tanh = l.emit('Tanh', [l.emit('Mul', [x, inner])[0]])[0];
      const half = l.emit('Mul', [x, l.scalar(0.5)])[0];
      l.emit('Mul', [half, l.emit('Add', [tanh, l.scalar(1)])[0]], {}, l.node.outputs);
    },
  ],
  [
    'QuickGelu',
    (l) => {
      // x * sigmoid(alpha * x); with alpha 1 the SiLU that fuse-silu runs as one op.
      const alpha = l.float('alpha', 1.702);
      const x = l.input(0);
      const gate = l.emit('Sigmoid', [alpha === 1 ? x : l.emit('Mul', [x, l.scalar(alpha)])[0]])[0];
      l.emit('Mul', [x, gate], {}, l.node.outputs);
    },
  ],
  [
    'BiasAdd',
    (l) => {
      const biased = l.emit('Add', [l.input(0), l.input(1)])[0];
      l.emit('Add', [biased, l.input(2)], {}, l.node.outputs);
    },
  ],
  [
    'FusedConv',
    (l) => {
      const conv = attributesOf(l, CONV_ATTRIBUTES);
      const kind = l.attr('activation');
      const params = l.attr('activation_params');
      const name = kind?.type === 'string' ? kind.value : '';
      // activation(conv + B + Z), as onnxruntime's float kernel computes it.
      const hasZ = !!l.input(3);
      let y = l.emit('Conv', trimOptional([l.input(0), l.input(1), l.input(2)]), conv, name || hasZ ? undefined : l.node.outputs)[0];
      if (hasZ) y = l.emit('Add', [y, l.input(3)], {}, name ? undefined : l.node.outputs)[0];
      if (name) activation(l, y, name, params?.type === 'floats' ? params.value : [], l.node.outputs);
    },
  ],
  [
    'FusedMatMul',
    (l) => {
      if (l.int('transBatchA', 0) || l.int('transBatchB', 0)) l.fail('transBatchA / transBatchB are not supported');
      const a = l.int('transA', 0) ? swapLastTwo(l, l.input(0)) : l.input(0);
      const b = l.int('transB', 0) ? swapLastTwo(l, l.input(1)) : l.input(1);
      const alpha = l.float('alpha', 1);
      const y = l.emit('MatMul', [a, b], {}, alpha === 1 ? l.node.outputs : undefined)[0];
      if (alpha !== 1) l.emit('Mul', [y, l.scalar(alpha)], {}, l.node.outputs);
    },
  ],
  [
    'SkipLayerNormalization',
    (l) => {
      if (l.node.outputs[1] || l.node.outputs[2]) l.fail('its mean and inv_std_var outputs are not supported');
      // input + skip (+ bias), then LayerNormalization over the last axis.
      const s = skipSum(l, 4);
      l.emit('LayerNormalization', trimOptional([s, l.input(2), l.input(3)]), { axis: int(-1), epsilon: float(l.float('epsilon', 1e-12)) }, [l.node.outputs[0]]);
    },
  ],
  [
    'SkipSimplifiedLayerNormalization',
    (l) => {
      // input, skip, gamma, bias? (index 3, not 4 as in SkipLayerNormalization).
      if (l.node.outputs[1] || l.node.outputs[2]) l.fail('its mean and inv_std_var outputs are not supported');
      rmsNorm(l, skipSum(l, 3), l.input(2), l.node.outputs[0]);
    },
  ],
]);

/** onnxruntime's ops it registers in the ai.onnx domain itself (no opset of ONNX defines them). */
const ONNX_DOMAIN_LOWERINGS: ReadonlyMap<string, (l: Lowering) => void> = new Map([
  [
    'SimplifiedLayerNormalization',
    (l: Lowering) => {
      if (l.node.outputs[1]) l.fail('its inv_std_var output is not supported');
      rmsNorm(l, l.input(0), l.input(1), l.node.outputs[0]);
    },
  ],
]);

function loweringOf(domain: string, opType: string): ((l: Lowering) => void) | undefined {
  return domain === CONTRIB_DOMAIN ? LOWERINGS.get(opType) : domain === '' ? ONNX_DOMAIN_LOWERINGS.get(opType) : undefined;
}

/**
 * RMS normalization (onnxruntime's SimplifiedLayerNormalization, which it writes in the ai.onnx
 * domain): x / sqrt(mean(x * x over axis..last) + epsilon) * scale.
 */
function rmsNorm(l: Lowering, x: string, scale: string, out: string): void {
  const axis = l.int('axis', -1);
  const count = axis < 0 ? -axis : l.rank(x) - axis;  // the axes normalized: axis .. last
  const axes = Array.from({ length: count }, (_, i) => i - count);
  const square = l.emit('Mul', [x, x])[0];
  const r = axesArgs(l, square, axes, 18);
  const mean = l.emit('ReduceMean', r.inputs, { ...r.attributes, keepdims: int(1) })[0];
  const std = l.emit('Sqrt', [l.emit('Add', [mean, l.scalar(l.float('epsilon', 1e-5))])[0]])[0];
  l.emit('Mul', [l.emit('Div', [x, std])[0], scale], {}, [out]);
}

/** input + skip (+ the bias at input `bias`), written to the node's input_skip_bias_sum output (3) when it has one. */
function skipSum(l: Lowering, bias: number): string {
  const sum = l.node.outputs[3] ?? '';
  const b = l.input(bias);
  const s = l.emit('Add', [l.input(0), l.input(1)], {}, b || !sum ? undefined : [sum])[0];
  return b ? l.emit('Add', [s, b], {}, sum ? [sum] : undefined)[0] : s;
}

/**
 * MatMulNBits (onnxruntime's block-quantized weights, the `model_q4.onnx` files): Y = A W + bias,
 * W [K, N] the constant codes dequantized at load, (code - zero point) * scale per block of
 * block_size along K; codes packed low bits first, zero points packed the same way (default
 * 2^(bits - 1)) or float. ternion computes the layer in float32 (quantize() can make it its own
 * low-bit layer).
 */
function matMulNBits(l: Lowering): void {
  const [A, B, S, Z, gIdx, bias] = Array.from({ length: 6 }, (_, i) => l.input(i));
  const K = l.int('K', 0), N = l.int('N', 0), bits = l.int('bits', 4), blockSize = l.int('block_size', 0);
  if (!(K > 0 && N > 0)) l.fail('its attributes K and N must be positive');
  if (![2, 4, 8].includes(bits)) l.fail(`bits = ${bits} is not supported (2, 4, 8 are)`);
  if (!(blockSize >= 16 && (blockSize & (blockSize - 1)) === 0)) l.fail(`block_size ${blockSize} must be a power of 2, at least 16`);
  if (gIdx) l.fail('g_idx (a permuted block order) is not supported');
  const codes = l.constant(B), scales = l.constant(S), zeros = Z ? l.constant(Z) : undefined;
  if (!codes || !scales || (Z && !zeros)) l.fail('its weights, scales and zero points must be constants');
  const blocks = Math.ceil(K / blockSize), blob = (blockSize * bits) / 8;
  const q = codes!.data as Uint8Array, s = toNumberArray(scales!.data);
  if (codes!.dtype !== 'uint8' || q.length !== N * blocks * blob) l.fail(`B must be uint8 [${N}, ${blocks}, ${blob}], not ${codes!.dtype} [${codes!.dims.join(', ')}]`);
  if (s.length !== N * blocks) l.fail(`scales must hold ${N * blocks} values (N x blocks), not ${s.length}`);
  const mask = (1 << bits) - 1, perByte = 8 / bits;
  const zeroBytes = Math.ceil((blocks * bits) / 8);
  const zeroOf = (n: number, b: number): number => {
    if (!zeros) return 1 << (bits - 1);
    if (zeros.dtype === 'uint8' && zeros.data.length === N * zeroBytes) {
      const byte = (zeros.data as Uint8Array)[n * zeroBytes + Math.floor(b / perByte)];
      return (byte >> ((b % perByte) * bits)) & mask;
    }
    if (zeros.dtype === 'float32' && zeros.data.length === N * blocks) return Number(zeros.data[n * blocks + b]);
    return l.fail(`zero_points must be packed uint8 [${N}, ${zeroBytes}] or float [${N}, ${blocks}]`);
  };
  const w = new Array<number>(K * N);
  for (let n = 0; n < N; n++) {
    for (let b = 0; b < blocks; b++) {
      const scale = s[n * blocks + b], zero = zeroOf(n, b);
      for (let j = 0; j < blockSize && b * blockSize + j < K; j++) {
        const byte = q[(n * blocks + b) * blob + Math.floor(j / perByte)];
        const code = (byte >> ((j % perByte) * bits)) & mask;
        w[(b * blockSize + j) * N + n] = Math.fround((code - zero) * scale);
      }
    }
  }
  const weights = l.add('weights', 'float32', [K, N], w);
  const y = l.emit('MatMul', [A, weights], {}, bias ? undefined : l.node.outputs)[0];
  if (bias) l.emit('Add', [y, bias], {}, l.node.outputs);
}

/** A reduction's axes as the model's opset writes them: an attribute before `since` (ReduceSum 13, ReduceMean 18), an input from it. */
function axesArgs(l: Lowering, x: string, axes: readonly number[], since: number): { inputs: string[]; attributes: Record<string, AttributeValue> } {
  return l.opset >= since ? { inputs: [x, l.add('axes', 'int64', [axes.length], axes)], attributes: {} } : { inputs: [x], attributes: { axes: ints(axes) } };
}

/** Dim `axis` of x at run time, as an int64 scalar. */
function dimOf(l: Lowering, x: string, axis: number): string {
  return l.emit('Gather', [l.emit('Shape', [x])[0], l.add('axis', 'int64', [], [axis])], { axis: int(0) })[0];
}

/** 0, 1, ..., n - 1 (int64) for an int64 scalar n. */
function positions(l: Lowering, n: string): string {
  return l.emit('Range', [l.add('zero', 'int64', [], [0]), n, l.add('one', 'int64', [], [1])])[0];
}

/** (1 - keep) * fill as float: 0 where a position is kept, `fill` where it is masked. */
function maskBias(l: Lowering, keep: string, fill: number): string {
  const k = l.emit('Cast', [keep], { to: int(1) })[0];
  return l.emit('Mul', [l.emit('Sub', [l.scalar(1), k])[0], l.scalar(fill)])[0];
}

/**
 * The additive [B, 1, 1 or S, T] mask of a padding mask over T keys (`keys`: a tensor whose dim 1
 * is T): 0 where a key is kept, `fill` where it is padding. 1-D [B]: end positions (keys t <
 * end[b] kept); 2-D [B, T] or 3-D [B, S, T]: values <= 0 are padding.
 */
function keyMask(l: Lowering, mask: string, keys: string, fill: number, what: string): string {
  const rank = l.rank(mask);
  if (rank === 1) {
    const end = l.emit('Reshape', [l.emit('Cast', [mask], { to: int(7) })[0], l.add('shape', 'int64', [2], [-1, 1])])[0];
    const keep = l.emit('Less', [positions(l, dimOf(l, keys, 1)), end])[0];
    return l.emit('Reshape', [maskBias(l, keep, fill), l.add('shape', 'int64', [4], [0, 1, 1, -1])])[0];
  }
  if (rank !== 2 && rank !== 3) return l.fail(`a ${what} of rank ${rank} is not supported (1, 2 and 3 are)`);
  const keep = l.emit('Greater', [mask, l.add('zero', l.type(mask).dtype === 'int64' ? 'int64' : 'int32', [], [0])])[0];
  const bias = maskBias(l, keep, fill);
  // [B, T] -> [B, 1, 1, T]; [B, S, T] -> [B, 1, S, T] (Reshape's 0 copies the dim of the same
  // index, so the 3-D case spells its shape out).
  let shape = l.add('shape', 'int64', [4], [0, 1, 1, -1]);
  if (rank === 3) {
    const dims = l.emit('Shape', [mask])[0];
    const slice = (from: number, to: number) => l.emit('Slice', [dims, l.add('start', 'int64', [1], [from]), l.add('end', 'int64', [1], [to])])[0];
    shape = l.emit('Concat', [slice(0, 1), l.add('one', 'int64', [1], [1]), slice(1, 3)], { axis: int(0) })[0];
  }
  return l.emit('Reshape', [bias, shape])[0];
}

/**
 * The additive [S, T] causal mask of S queries over T keys (dim 1 of `queries` and `keys`): the
 * lowest float where key t comes after query s (t > s), else 0, so a query attends to itself and
 * what precedes it. With `lastQuerySeesAll`, the last query is left unmasked, as onnxruntime's
 * CPU kernel leaves it (which differs from t > s only when there are more keys than queries).
 */
function causalMask(l: Lowering, queries: string, keys: string, lastQuerySeesAll = false): string {
  const queryCount = dimOf(l, queries, 1);
  const col = positions(l, dimOf(l, keys, 1));
  const row = l.emit('Reshape', [positions(l, queryCount), l.add('shape', 'int64', [2], [-1, 1])])[0];
  let later = l.emit('Greater', [col, row])[0];
  if (lastQuerySeesAll) {
    const notLast = l.emit('Less', [row, l.emit('Sub', [queryCount, l.add('one', 'int64', [], [1])])[0]])[0];
    later = l.emit('And', [later, notLast])[0];
  }
  return l.emit('Where', [later, l.scalar(-3.4028234663852886e38), l.scalar(0)])[0];
}

/**
 * Attention (onnxruntime's fused self-attention of BERT-style models optimized by its transformers
 * tool): Q, K, V = input W + bias (column blocks [0, D), [D, 2D), [2D, 2D + Dv), each head a run
 * of H columns), softmax(scale Q K^T + attention_bias + mask) V, heads concatenated. The mask is
 * added: mask_filter_value (default -10000) where mask_index says a key is padding (1-D: end
 * positions per batch; 2-D [batch, keys] or 3-D [batch, queries, keys]: values <= 0), and the
 * lowest float above the diagonal when unidirectional. Written out as the MatMul, Add, Reshape,
 * Transpose, Softmax chain an exporter writes, which ternion's passes fuse and quantize as such.
 */
function attention(l: Lowering): void {
  const [x, W, bias, maskIndex, past, attnBias, pastLength] = Array.from({ length: 7 }, (_, i) => l.input(i));
  if (past || pastLength) l.fail('past key / value state (past, past_sequence_length) is not supported');
  if (l.node.outputs[1]) l.fail('the present output is not supported');
  if (l.int('do_rotary', 0)) l.fail('do_rotary is not supported');
  if (!bias) l.fail('its bias input is required (as onnxruntime\'s CPU kernel requires it)');
  const heads = l.int('num_heads', 0);
  if (!(heads > 0)) l.fail('num_heads must be positive');
  const w = l.constant(W);
  const width = w?.dims[1] ?? (l.type(W).shape ?? [])[1];
  if (typeof width !== 'number') l.fail('the width of its weights must be known');
  const sizesAttr = l.attr('qkv_hidden_sizes');
  const sizes = sizesAttr?.type === 'ints' ? [...sizesAttr.value] : [(width as number) / 3, (width as number) / 3, (width as number) / 3];
  const [D, , Dv] = sizes;
  if (sizes.length !== 3 || sizes[0] !== sizes[1] || sizes.some((v) => !Number.isInteger(v) || v <= 0 || v % heads !== 0) || D + D + Dv !== width) {
    l.fail(`qkv_hidden_sizes [${sizes.join(', ')}] must be three sizes divisible by num_heads ${heads}, Q and K equal, summing to the weights' width ${width}`);
  }
  const H = D / heads, Hv = Dv / heads;
  const scaleAttr = l.float('scale', 0);
  const scale = scaleAttr === 0 ? 1 / Math.sqrt(H) : scaleAttr;
  const b = l.constant(bias);
  // Q, K and V as three layers (constant weights split by column block), else one and a Split.
  const project = (from: number, size: number): string => {
    if (w && b && w.dtype === 'float32' && b.dtype === 'float32') {
      const rows = w.dims[0], cols = w.dims[1];
      const wPart: number[] = new Array(rows * size);
      for (let r = 0; r < rows; r++) for (let c = 0; c < size; c++) wPart[r * size + c] = Number(w.data[r * cols + from + c]);
      const bPart = Array.from((b.data as Float32Array).subarray(from, from + size));
      return l.emit('Add', [l.emit('MatMul', [x, l.add('weights', 'float32', [rows, size], wPart)])[0], l.add('bias', 'float32', [size], bPart)])[0];
    }
    const all = l.emit('Add', [l.emit('MatMul', [x, W])[0], bias])[0];
    const split = l.add('split', 'int64', [3], [D, D, Dv]);
    const parts = l.opset >= 13 ? l.emit('Split', [all, split], { axis: int(-1) }, undefined, 3) : l.emit('Split', [all], { axis: int(-1), split: ints([D, D, Dv]) }, undefined, 3);
    return parts[from === 0 ? 0 : from === D ? 1 : 2];
  };
  const heads4 = (v: string, size: number, perm: number[]): string => {
    const r = l.emit('Reshape', [v, l.add('shape', 'int64', [4], [0, 0, heads, size])])[0];
    return l.emit('Transpose', [r], { perm: ints(perm) })[0];
  };
  const q = heads4(project(0, D), H, [0, 2, 1, 3]);
  const k = heads4(project(D, D), H, [0, 2, 3, 1]);
  const v = heads4(project(2 * D, Dv), Hv, [0, 2, 1, 3]);
  let scores = l.emit('Mul', [l.emit('MatMul', [q, k])[0], l.scalar(scale)])[0];
  if (attnBias) scores = l.emit('Add', [scores, attnBias])[0];
  const fill = l.float('mask_filter_value', -10000);
  if (maskIndex) scores = l.emit('Add', [scores, keyMask(l, maskIndex, x, fill, 'mask_index')])[0];
  if (l.int('unidirectional', 0)) scores = l.emit('Add', [scores, causalMask(l, x, x)])[0];
  const probs = l.emit('Softmax', [scores], { axis: int(l.opset >= 13 ? -1 : 3) })[0];
  const out = l.emit('Transpose', [l.emit('MatMul', [probs, v])[0]], { perm: ints([0, 2, 1, 3]) })[0];
  l.emit('Reshape', [out, l.add('shape', 'int64', [3], [0, 0, Dv])], {}, [l.node.outputs[0]]);
}

/**
 * MultiHeadAttention (onnxruntime's attention over given query, key and value, its
 * transformers tool's self- and cross-attention without the input projection): heads of H =
 * D / num_heads columns, Q, K, V (+ bias [D + D + Dv], column blocks), softmax(scale Q K^T +
 * attention_bias [1 or B, N, S, L] + masks) V, heads concatenated to [B, S, Dv]. query [B, S, D]
 * with key [B, L, D] and value [B, L, Dv]; or key [B, L, N, 2, H] (packed K and V, no value); or
 * query [B, S, N, 3, H] (packed Q, K and V, no key or value). The masks as Attention's:
 * key_padding_mask 1-D [B] (end positions), 2-D [B, L] or 3-D [B, S, L] (values <= 0 are
 * padding) adds mask_filter_value (default -10000); unidirectional hides keys t > s from every
 * query but the last (onnxruntime's CPU kernel, where L > S: causalMask). No key /
 * value cache: past_key, past_value, past_sequence_length, cache_indirection and the
 * present_key, present_value and qk outputs are refused by name, as are keys already split into
 * heads ([B, N, L, H]) and the 1-D mask with start positions ([3B + 2]).
 */
function multiHeadAttention(l: Lowering): void {
  const [query, key, value, bias, keyPadding, attnBias] = Array.from({ length: 6 }, (_, i) => l.input(i));
  ['past_key', 'past_value', 'past_sequence_length', 'cache_indirection'].forEach((name, i) => {
    if (l.input(6 + i)) l.fail(`its input ${name} is not supported (no key / value cache)`);
  });
  ['present_key', 'present_value', 'qk'].forEach((name, i) => {
    if (l.node.outputs[1 + i]) l.fail(`its output ${name} is not supported (no key / value cache)`);
  });
  const heads = l.int('num_heads', 0);
  if (!(heads > 0)) l.fail('num_heads must be positive');
  const qType = l.type(query);
  if (qType.dtype !== 'float32') l.fail(`query is ${qType.dtype}; ternion runs MultiHeadAttention in float32 only`);
  const known = (name: string, dims: readonly (number | string)[] | undefined, axis: number): number => {
    const d = dims?.[axis];
    return typeof d === 'number' ? d : l.fail(`dim ${axis} of ${name} must be known at load`);
  };
  const qRank = l.rank(query);
  // Each of Q, K, V as [B, S or L, N, width]; the bias block of each is added in that form.
  const toHeads = (x: string, width: number): string => l.emit('Reshape', [x, l.add('shape', 'int64', [4], [0, 0, heads, width])])[0];
  const unpack = (packed: string, index: number): string => l.emit('Gather', [packed, l.add('index', 'int64', [], [index])], { axis: int(3) })[0];
  const checkPacked = (name: string, dims: readonly (number | string)[] | undefined, count: number): number => {
    if (known(name, dims, 2) !== heads || known(name, dims, 3) !== count) {
      l.fail(`packed ${name} ${formatDims(dims)} must be [B, ${name === 'query' ? 'S' : 'L'}, num_heads ${heads}, ${count}, H]`);
    }
    return known(name, dims, 4);
  };
  let q: string, k: string, v: string, H: number, Hv: number, keySource: string;
  if (qRank === 5) {
    if (key || value) l.fail('a packed query [B, S, N, 3, H] takes no key or value');
    H = Hv = checkPacked('query', qType.shape, 3);
    [q, k, v] = [0, 1, 2].map((i) => unpack(query, i));
    keySource = query;
  } else if (qRank === 3) {
    if (!key) l.fail('its key is required unless the query is packed [B, S, N, 3, H]');
    const D = known('query', qType.shape, 2);
    if (D % heads !== 0) l.fail(`the query's width ${D} is not divisible by num_heads ${heads}`);
    H = D / heads;
    q = toHeads(query, H);
    const kType = l.type(key);
    const kRank = l.rank(key);
    if (kRank === 5) {
      if (value) l.fail('a packed key [B, L, N, 2, H] takes no value');
      if (checkPacked('key', kType.shape, 2) !== H) l.fail(`the head size of packed key ${formatDims(kType.shape)} differs from the query's ${H}`);
      Hv = H;
      [k, v] = [0, 1].map((i) => unpack(key, i));
    } else if (kRank === 3) {
      if (!value) l.fail('its value is required unless the key is packed [B, L, N, 2, H]');
      if (known('key', kType.shape, 2) !== D) l.fail(`key ${formatDims(kType.shape)} must have the query's width ${D}`);
      if (l.rank(value) !== 3) l.fail(`value must be [B, L, Dv], got rank ${l.rank(value)}`);
      const Dv = known('value', l.type(value).shape, 2);
      if (Dv % heads !== 0) l.fail(`the value's width ${Dv} is not divisible by num_heads ${heads}`);
      Hv = Dv / heads;
      k = toHeads(key, H);
      v = toHeads(value, Hv);
    } else {
      return l.fail(`a key of rank ${kRank} is not supported (keys split into heads [B, N, L, H] are a key / value cache form; [B, L, D] and packed [B, L, N, 2, H] are supported)`);
    }
    keySource = key;
  } else {
    return l.fail(`a query of rank ${qRank} is not supported ([B, S, D] and packed [B, S, N, 3, H] are)`);
  }
  if (bias) {
    const D = heads * H, Dv = heads * Hv;
    const bShape = l.type(bias).shape;
    if (bShape?.length !== 1 || (typeof bShape[0] === 'number' && bShape[0] !== 2 * D + Dv)) {
      l.fail(`bias ${formatDims(bShape)} must be [${2 * D + Dv}] (query, key and value blocks)`);
    }
    const split = l.opset >= 13 ? l.emit('Split', [bias, l.add('split', 'int64', [3], [D, D, Dv])], { axis: int(0) }, undefined, 3)
      : l.emit('Split', [bias], { axis: int(0), split: ints([D, D, Dv]) }, undefined, 3);
    const addBias = (x: string, part: string, width: number) => l.emit('Add', [x, l.emit('Reshape', [part, l.add('shape', 'int64', [2], [heads, width])])[0]])[0];
    [q, k, v] = [addBias(q, split[0], H), addBias(k, split[1], H), addBias(v, split[2], Hv)];
  }
  const scaleAttr = l.float('scale', 0);
  const scale = scaleAttr === 0 ? 1 / Math.sqrt(H) : scaleAttr;
  const qT = l.emit('Transpose', [q], { perm: ints([0, 2, 1, 3]) })[0];
  const kT = l.emit('Transpose', [k], { perm: ints([0, 2, 3, 1]) })[0];
  const vT = l.emit('Transpose', [v], { perm: ints([0, 2, 1, 3]) })[0];
  let scores = l.emit('Mul', [l.emit('MatMul', [qT, kT])[0], l.scalar(scale)])[0];
  if (attnBias) {
    if (l.rank(attnBias) !== 4) l.fail(`attention_bias must be [1 or B, N, S, L], got rank ${l.rank(attnBias)}`);
    scores = l.emit('Add', [scores, attnBias])[0];
  }
  if (keyPadding) {
    const mShape = l.type(keyPadding).shape;
    const batch = qType.shape?.[0];
    if (mShape?.length === 1 && typeof mShape[0] === 'number' && typeof batch === 'number' && mShape[0] !== batch) {
      l.fail(`key_padding_mask ${formatDims(mShape)} is not [B = ${batch}] (the [3B + 2] form with start positions is not supported)`);
    }
    scores = l.emit('Add', [scores, keyMask(l, keyPadding, keySource, l.float('mask_filter_value', -10000), 'key_padding_mask')])[0];
  }
  if (l.int('unidirectional', 0)) scores = l.emit('Add', [scores, causalMask(l, query, keySource, true)])[0];
  const probs = l.emit('Softmax', [scores], { axis: int(l.opset >= 13 ? -1 : 3) })[0];
  const out = l.emit('Transpose', [l.emit('MatMul', [probs, vT])[0]], { perm: ints([0, 2, 1, 3]) })[0];
  l.emit('Reshape', [out, l.add('shape', 'int64', [3], [0, 0, heads * Hv])], {}, [l.node.outputs[0]]);
}

function formatDims(dims: readonly (number | string)[] | undefined): string {
  return dims ? `[${dims.join(', ')}]` : '[?]';
}

/**
 * EmbedLayerNormalization (BERT's embeddings as onnxruntime's tool fuses them): word + position
 * (position_ids, or 0..S-1) + segment embeddings (row 0 of the table when no segment_ids), then
 * LayerNormalization (epsilon default 1e-12); mask_index = the count of 1s in each mask row
 * (int32; zeros without a mask); embedding_sum the sum before normalization.
 */
function embedLayerNormalization(l: Lowering): void {
  const [ids, segmentIds, wordTable, positionTable, segmentTable, gamma, beta, mask, positionIds] = Array.from({ length: 9 }, (_, i) => l.input(i));
  const [output, maskIndexOut, sumOut] = [l.node.outputs[0], l.node.outputs[1] ?? '', l.node.outputs[2] ?? ''];
  let sum = l.emit('Gather', [wordTable, ids], { axis: int(0) })[0];
  const positionsOf = positionIds || positions(l, dimOf(l, ids, 1));
  sum = l.emit('Add', [sum, l.emit('Gather', [positionTable, positionsOf], { axis: int(0) })[0]])[0];
  if (segmentTable) {
    const rows = segmentIds || l.add('row', 'int64', [], [0]);
    sum = l.emit('Add', [sum, l.emit('Gather', [segmentTable, rows], { axis: int(0) })[0]], {}, sumOut ? [sumOut] : undefined)[0];
  } else if (sumOut) {
    sum = l.emit('Identity', [sum], {}, [sumOut])[0];
  }
  l.emit('LayerNormalization', [sum, gamma, beta], { axis: int(-1), epsilon: float(l.float('epsilon', 1e-12)) }, [output]);
  if (!maskIndexOut) return;
  if (mask) {
    const ones = l.emit('Cast', [l.emit('Equal', [mask, l.add('one', l.type(mask).dtype === 'int64' ? 'int64' : 'int32', [], [1])])[0]], { to: int(1) })[0];
    const r = axesArgs(l, ones, [1], 13);
    const count = l.emit('ReduceSum', r.inputs, { ...r.attributes, keepdims: int(0) })[0];
    l.emit('Cast', [count], { to: int(6) }, [maskIndexOut]);
  } else {
    const batch = l.emit('Reshape', [dimOf(l, ids, 0), l.add('shape', 'int64', [1], [1])])[0];
    l.emit('ConstantOfShape', [batch], { value: { type: 'tensor', value: { name: 'value', dtype: 'int32', dims: [1], data: Int32Array.of(0) } } }, [maskIndexOut]);
  }
}

/** Optional trailing inputs dropped when absent (''), inner ones kept as ''. */
function trimOptional(inputs: readonly string[]): string[] {
  const out = [...inputs];
  while (out.length > 0 && !out[out.length - 1]) out.pop();
  return out;
}

/** The int32 result of a MatMulInteger as float: Cast, times a_scale * b_scale, plus bias (fuse-matmul-integer-scaled's pattern). */
function scaledToFloat(l: Lowering, acc: string, aScale: string, bScale: string, bias: string): void {
  const f = l.emit('Cast', [acc], { to: int(1) })[0];
  const scale = l.emit('Mul', [aScale, bScale])[0];
  const y = l.emit('Mul', [f, scale], {}, bias ? undefined : l.node.outputs)[0];
  if (bias) l.emit('Add', [y, bias], {}, l.node.outputs);
}

/** Whether ternion writes this com.microsoft op out as standard ops at load. */
export function isLoweredContribOp(domain: string, opType: string): boolean {
  return loweringOf(domain, opType) !== undefined;
}

/**
 * The graph with every com.microsoft op ternion knows written out as standard ops (in place, so
 * the order stays topological). Graphs without any are returned as they are.
 */
export function lowerContribOps(graph: Graph): Graph {
  if (!graph.nodes.some((n) => isLoweredContribOp(n.domain, n.opType))) return graph;
  const opset = graph.opsets[''];
  if (opset === undefined) {
    const first = graph.nodes.find((n) => isLoweredContribOp(n.domain, n.opType)) as Node;
    throw new TernionError('ERR_UNSUPPORTED_OP', `Node "${first.name}" (${first.opType}, ${first.domain}) is written out as ai.onnx ops, but the model does not import ai.onnx`);
  }
  const used = usedNames(graph);
  const initializers = new Map(graph.initializers);
  const nodes: Node[] = [];
  // Types of what the lowered prefix computes, inferred again only when a lowering asks.
  let inferred: Map<string, InferredValue> | undefined;
  let inferredAt = -1;
  const typeOf = (name: string, node: Node): InferredValue => {
    const c = initializers.get(name);
    if (c) return { dtype: c.dtype as DataType, shape: c.dims };
    const input = graph.inputs.find((i) => i.name === name);
    if (input) return { dtype: input.dtype, shape: input.shape };
    if (inferredAt !== nodes.length) {
      inferred = inferNodeTypes({ ...graph, initializers, nodes });
      inferredAt = nodes.length;
    }
    const t = inferred?.get(name);
    if (!t) throw new TernionError('ERR_MODEL_FORMAT', `Node "${node.name}" (${node.opType}) reads "${name}", whose type is not known`);
    return t;
  };
  for (const node of graph.nodes) {
    const lower = loweringOf(node.domain, node.opType);
    if (!lower) {
      nodes.push(node);
      continue;
    }
    const fail = (message: string): never => {
      throw new TernionError('ERR_UNSUPPORTED_OP', `Node "${node.name}" (${node.opType}, ${node.domain || 'ai.onnx'}): ${message}`);
    };
    const l: Lowering = {
      node,
      opset,
      input: (i) => node.inputs[i] ?? '',
      constant: (name) => initializers.get(name),
      type: (name) => typeOf(name, node),
      rank: (name) => {
        const shape = typeOf(name, node).shape;
        return shape ? shape.length : fail(`the rank of "${name}" is not known`);
      },
      attr: (name) => node.attributes[name],
      int: (name, fallback) => {
        const a = node.attributes[name];
        return a?.type === 'int' ? a.value : fallback;
      },
      float: (name, fallback) => {
        const a = node.attributes[name];
        return a?.type === 'float' ? a.value : fallback;
      },
      add: (base, dtype, dims, values) => {
        const name = freshName(used, `${node.name}/${base}`);
        const data = createTensorData(dtype, values.length);
        values.forEach((v, i) => {
          data[i] = (dtype === 'int64' || dtype === 'uint64' ? BigInt(v) : v) as never;
        });
        initializers.set(name, { name, dtype, dims, data });
        return name;
      },
      scalar: (value) => l.add('constant', 'float32', [], [value]),
      emit: (opType, inputs, attributes = {}, outputs, count = 1) => {
        const outs = outputs ? [...outputs] : Array.from({ length: count }, () => freshName(used, `${node.name}/${opType.toLowerCase()}`));
        nodes.push({ name: freshName(used, `${node.name}/${opType}`), opType, domain: '', inputs: [...inputs], outputs: outs, attributes });
        return outs;
      },
      fail,
    };
    lower(l);
  }
  return { ...graph, nodes, initializers };
}
