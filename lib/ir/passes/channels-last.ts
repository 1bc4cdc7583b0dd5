// Channels-last layout and integer chaining: convolutions pass pixel-major (NHWC) activations to
// each other, and between two quantized convolutions the activation stays uint8 where every
// reader agrees, instead of going NCHW -> (quantize ->) transpose in every layer.
//
// A TernionQConv, an fp32 Conv with constant weights (dense, or depthwise without a channel
// multiplier), an fp32 ConvTranspose with constant weights, or a 1-D / 2-D MaxPool whose output
// is read only by ops that can take it pixel-major
// gets output_layout "nhwc" (the MaxPool becomes TernionMaxPoolNhwc, a GlobalAveragePool
// reading it TernionGlobalAveragePoolNhwc) and stores each output pixel's channels contiguously:
//   - 'u8':   uint8, quantized with the readers' static activation parameters (quantized convs
//             reading input 0 with padded_channels == in_channels or low-bit weights without
//             conv groups, a uint8 MaxPool, or a quantized conv's residual input when the conv
//             quantizes it: residual_scale);
//   - 'f32':  float32, for a conv's residual input, a GlobalAveragePool, readers with dynamic
//             activation ranges or padded channels, or readers that disagree on parameters
//             (each quantizes the fp32 pixels itself: a contiguous pass, no transpose);
//   - 'both': a conv's two outputs when both kinds of readers exist.
// The epilogue computes the same fp32 value as before and quantizes it with the formula the
// reader would have applied (a residual's reader dequantizes the codes it would have made), and
// max pooling commutes with that monotone quantization, so the chained graph's outputs are
// bit-identical to the unchained one (test/channels-last.test.ts).
//
// Elementwise ops (activations such as Sigmoid or HardSwish, and Add / Sub / Mul / Div) run on
// float32 NHWC values as they are: an activation maps each value alone, and a binary op's
// operands are both NHWC, or one is a scalar, or a per-channel vector [N, C, 1, 1] (a
// squeeze-and-excitation scale), which a Transpose to [N, 1, 1, C] lays out for the same
// broadcast. So SiLU (x * sigmoid(x)) and squeeze-and-excitation blocks (EfficientNet,
// MobileNetV3) no longer send a whole network back to NCHW. Their results are the same values.
//
// A Concat along channels (Inception, DenseNet; of 1-D to 3-D conv activations) joins NHWC
// pieces along their last axis, in uint8 when its readers agree on parameters (every piece is then quantized with them
// by the layer producing it) or in float32: the same values, and the join stays in the chain.
// A join or pool that cannot be uint8 (a U-Net skip Concat of a quantized conv's output and an
// fp32 Resize's or ConvTranspose's) stays chained in float32 rather than going planar.
//
// A Slice with constant bounds and axes (a CSP block's channel split, a causal 1-D conv's trim)
// runs on the NHWC value with its axes mapped to [N, spatial..., C]: the same elements.
//
// A Resize (or Upsample) over the spatial axes only, with constant scales or sizes, runs on the
// NHWC float32 value with its factors in [N, H, W, C] order: the op resizes one axis at a time
// in the same order and arithmetic whatever the layout, so U-Net / FPN decoders stay chained
// and give the planar graph's values.
//
// Transposes between the layouts become views: a Transpose(perm [0, 2, 3, 1]) of an NHWC value
// is that value's memory (its output, logically [N, H, W, C], is stored just so), and a
// Transpose(perm [0, 3, 1, 2]) of a [N, H, W, C] tensor is an NHWC value with the tensor's memory.
// Both become Identity (no copy). ConvNeXt's blocks (depthwise conv, permute, LayerNorm, MLP,
// permute back, layer scale, residual) then stay pixel-major end to end.
//
// Forms are decided readers first (reverse topological order); a decision that needs an
// unchained residual or pooled input is forbidden and the decisions are redone (a fixpoint).

import { consumersByTensor, freshName, producersByTensor, usedNames } from '../graph-utils';
import type { AttributeValue, ConstantTensor, Graph, Node, ValueType } from '../types';

interface QParams {
  scale: number;
  zeroPoint: number;
  bits: number;
}

function attrNum(node: Node, key: string): number | undefined {
  const a = node.attributes[key];
  return a && (a.type === 'int' || a.type === 'float') ? a.value : undefined;
}

function attrStr(node: Node, key: string): string | undefined {
  const a = node.attributes[key];
  return a && a.type === 'string' ? a.value : undefined;
}

/** The static activation parameters a quantized conv applies to its input 0, if it can read uint8 NHWC. */
function convInputParams(node: Node): QParams | undefined {
  if (attrStr(node, 'act_mode') !== 'static') return undefined;
  const cin = attrNum(node, 'in_channels');
  const padded = attrNum(node, 'padded_channels') ?? cin;
  // Padded channels need the staging copy, except in a low-bit conv without groups: the native
  // op drops the padding from its weights (quant::unpad_lowbit) and reads cin channels.
  const unpadded = (attrNum(node, 'weight_bits') ?? 8) !== 8 && (attrNum(node, 'group') ?? 1) === 1;
  if (cin === undefined || (padded !== cin && !unpadded)) return undefined;
  const scale = attrNum(node, 'act_scale');
  if (scale === undefined) return undefined;
  return { scale, zeroPoint: attrNum(node, 'act_zero_point') ?? 0, bits: attrNum(node, 'act_bits') ?? 8 };
}

/** The parameters a quantized conv quantizes its residual (input 4) with, if it does. */
function residualParams(node: Node): QParams | undefined {
  const scale = attrNum(node, 'residual_scale');
  if (scale === undefined) return undefined;
  return { scale, zeroPoint: attrNum(node, 'residual_zero_point') ?? 0, bits: attrNum(node, 'residual_bits') ?? 8 };
}

const isQConv = (n: Node): boolean => n.opType === 'TernionQConv' && n.domain === '';

/**
 * An fp32 Conv that runs pixel-major: constant weights, dense groups, or depthwise without a
 * channel multiplier; or a ConvTranspose with constant weights (a U-Net's up-convolution), which
 * reads and writes either layout like a dense conv.
 */
function floatConvKind(graph: Graph, n: Node): 'dense' | 'depthwise' | undefined {
  if ((n.opType !== 'Conv' && n.opType !== 'ConvTranspose') || n.domain !== '' || n.outputs.length !== 1) return undefined;
  const w = graph.initializers.get(n.inputs[1]);
  if (!w || w.dims.length < 3 || w.dims.length > 5) return undefined;
  if (n.opType === 'ConvTranspose') return 'dense';
  const group = attrNum(n, 'group') ?? 1;
  // One input channel without groups (a grayscale stem) is a dense conv with K = kernel size.
  if (w.dims[1] > 1 || group === 1) return 'dense';
  return group === w.dims[0] ? 'depthwise' : undefined;
}
const isPlainMaxPool = (n: Node): boolean =>
  n.opType === 'MaxPool' && n.domain === '' && (n.outputs.length === 1 || n.outputs[1] === '') &&
  (n.attributes.kernel_shape?.type === 'ints' && (n.attributes.kernel_shape.value.length === 1 || n.attributes.kernel_shape.value.length === 2));
const isGlobalAveragePool = (n: Node): boolean => n.opType === 'GlobalAveragePool' && n.domain === '';

/**
 * A Resize (or Upsample) of a 4-D float tensor over its spatial axes only, with constant scales
 * or sizes: the same op on the [N, H, W, C] tensor with its factors reordered (the op resizes
 * one axis at a time, whatever the layout). U-Nets, FPNs and detectors upsample between convs;
 * planar there, every conv around them would take and give planes.
 */
function spatialResize(graph: Graph, n: Node): { input: number; factors: readonly number[] } | undefined {
  if ((n.opType !== 'Resize' && n.opType !== 'Upsample') || n.domain !== '' || n.outputs.length !== 1) return undefined;
  if (graph.valueInfo.get(n.outputs[0])?.shape?.length !== 4 || graph.valueInfo.get(n.outputs[0])?.dtype !== 'float32') return undefined;
  const mode = n.attributes.coordinate_transformation_mode;
  if (mode?.type === 'string' && mode.value === 'tf_crop_and_resize') return undefined;
  if (n.attributes.axes !== undefined) return undefined;
  const x = knownShape(graph, n.inputs[0]);
  // The factors' input: scales (Upsample, Resize 10: input 1; Resize 11+: input 2), else sizes (3).
  const candidates = n.opType === 'Upsample' || (graph.opsets[''] ?? 0) < 11 ? [1] : [2, 3];
  for (const i of candidates) {
    const name = n.inputs[i];
    if (!name) continue;
    const c = graph.initializers.get(name);
    if (!c || c.dims.length !== 1) return undefined;
    if (c.data.length === 0) continue;  // an empty scales input: sizes decide
    if (c.data.length !== 4) return undefined;
    const f = Array.from(c.data as ArrayLike<number | bigint>, Number);
    const keepsN = i === 3 ? x !== undefined && f[0] === x[0] && f[1] === x[1] : f[0] === 1 && f[1] === 1;
    return keepsN ? { input: i, factors: f } : undefined;
  }
  return undefined;
}

/** Where logical axis a (of [N, C, spatial...], rank r) lies in the pixel-major [N, spatial..., C]. */
const physicalAxis = (a: number, r: number): number => (a === 0 ? 0 : a === 1 ? r - 1 : a - 1);

/** The rank of a value pixel-major chains take: 1-D to 3-D convs' activations. */
const chainRank = (graph: Graph, v: string): number | undefined => {
  const r = graph.valueInfo.get(v)?.shape?.length;
  return r !== undefined && r >= 3 && r <= 5 ? r : undefined;
};

/**
 * A Slice of a float tensor of a conv's rank with constant starts, ends, axes (or none: the
 * leading ones) and steps: the same Slice on the [N, spatial..., C] tensor with its axes mapped.
 * PyTorch writes a CSP block's channel split (`chunk`) so, and a causal 1-D conv's trim of its
 * padding (WaveNet, TCNs); planar there, the convs around it would write planes.
 */
function layoutFreeSlice(graph: Graph, n: Node): { axes: number[] } | undefined {
  if (n.opType !== 'Slice' || n.domain !== '' || n.outputs.length !== 1 || (graph.opsets[''] ?? 0) < 10) return undefined;
  const r = chainRank(graph, n.outputs[0]);
  if (r === undefined || graph.valueInfo.get(n.outputs[0])?.dtype !== 'float32') return undefined;
  const constant = (i: number) => (n.inputs[i] ? graph.initializers.get(n.inputs[i]) : undefined);
  const starts = constant(1), ends = constant(2);
  if (!starts || !ends || (n.inputs[4] && !constant(4))) return undefined;
  if (n.inputs[3] && !constant(3)) return undefined;
  const axesTensor = constant(3);
  const axes = axesTensor ? Array.from(axesTensor.data as ArrayLike<number | bigint>, Number) : starts.data.length <= r ? Array.from({ length: starts.data.length }, (_, i) => i) : undefined;
  if (!axes || axes.some((a) => a < -r || a >= r)) return undefined;
  return { axes: axes.map((a) => physicalAxis(a < 0 ? a + r : a, r)) };
}

/** A Concat along the channel axis of a conv's activations (Inception's and DenseNet's branch joins, 1-D and 3-D too). */
function isChannelConcat(graph: Graph, n: Node): boolean {
  if (n.opType !== 'Concat' || n.domain !== '' || n.outputs.length !== 1 || n.inputs.length === 0 || n.inputs.some((x) => x === '')) return false;
  const axis = n.attributes.axis;
  const r = chainRank(graph, n.outputs[0]);
  return r !== undefined && axis?.type === 'int' && (axis.value === 1 || axis.value === 1 - r);
}

// Float activations whose output at each position depends on the input at that position only
// (Clip's min / max inputs are scalars), and the broadcasting binary arithmetic ops.
const UNARY_ELEMENTWISE = new Set([
  'Relu', 'LeakyRelu', 'Clip', 'Sigmoid', 'HardSigmoid', 'HardSwish', 'Tanh', 'Elu', 'Selu', 'Celu', 'Softplus',
  'Softsign', 'Mish', 'Gelu', 'Erf', 'Abs', 'Neg', 'Exp', 'Sqrt', 'ThresholdedRelu', 'TernionSilu', 'TernionGeluErf',
]);
const BINARY_ELEMENTWISE = new Set(['Add', 'Sub', 'Mul', 'Div']);

/** 'unary' or 'binary' for an elementwise op that can run on NHWC values as they are. */
function elementwiseKind(n: Node): 'unary' | 'binary' | undefined {
  if (n.domain !== '' || n.outputs.length !== 1) return undefined;
  if (UNARY_ELEMENTWISE.has(n.opType)) return 'unary';
  if (BINARY_ELEMENTWISE.has(n.opType) && n.inputs.length === 2) return 'binary';
  return undefined;
}

/** A Transpose with the given permutation. */
function isTranspose(n: Node, perm: readonly number[]): boolean {
  const p = n.attributes.perm;
  return n.opType === 'Transpose' && n.domain === '' && n.inputs.length === 1 && n.outputs.length === 1 &&
    p?.type === 'ints' && p.value.length === perm.length && p.value.every((v, i) => v === perm[i]);
}
const TO_NHWC = [0, 2, 3, 1];
const TO_NCHW = [0, 3, 1, 2];

/** The dims of a value, when known: an initializer's, or the inferred shape's. */
function knownShape(graph: Graph, v: string): readonly (number | string)[] | undefined {
  const c = graph.initializers.get(v);
  if (c) return c.dims;
  return graph.valueInfo.get(v)?.shape;
}

/**
 * How a binary elementwise op's operand that stays planar combines with an NHWC operand of
 * rank `rank`: 'scalar' (every dim 1: broadcasts the same in any layout), 'channels' (rank 4,
 * [N, C, 1, 1]: transposed to [N, 1, 1, C]), or undefined (not layout-neutral).
 */
function planarOperand(graph: Graph, v: string, rank: number | undefined): 'scalar' | 'channels' | undefined {
  const dims = knownShape(graph, v);
  if (!dims) return undefined;
  if (dims.every((d) => d === 1)) return 'scalar';
  // [N, C, 1, 1], or [C, 1, 1] (a layer scale), which broadcasting aligns with the channel dim.
  if (rank === 4 && (dims.length === 4 || dims.length === 3) && dims[dims.length - 2] === 1 && dims[dims.length - 1] === 1) return 'channels';
  return undefined;
}

const sameParams = (a: QParams, b: QParams): boolean => a.scale === b.scale && a.zeroPoint === b.zeroPoint && a.bits === b.bits;

/** How a chained value is stored: uint8 NHWC, float32 NHWC, or both (a conv's second output). */
type Form = 'u8' | 'f32' | 'both';

interface Decision {
  form: Form;
  params?: QParams; // of the uint8 form
}

export function toChannelsLast(graph: Graph): Graph {
  const convKind = new Map<Node, 'dense' | 'depthwise'>();
  for (const n of graph.nodes) {
    const kind = floatConvKind(graph, n);
    if (kind) convKind.set(n, kind);
  }
  if (!graph.nodes.some(isQConv) && convKind.size === 0) return graph;
  const elementwise = new Map<Node, 'unary' | 'binary'>();
  for (const n of graph.nodes) {
    const kind = elementwiseKind(n);
    if (kind) elementwise.set(n, kind);
  }
  const rankOf = (v: string): number | undefined => knownShape(graph, v)?.length;
  /** An elementwise node's data operands: input 0, and input 1 of a binary op (Clip's min / max are not). */
  const dataInputs = (n: Node): readonly string[] => n.inputs.slice(0, elementwise.get(n) === 'unary' ? 1 : 2);
  const producers = producersByTensor(graph.nodes);
  const consumers = consumersByTensor(graph.nodes);
  const outputs = new Set(graph.outputs.map((o) => o.name));
  const concats = new Set(graph.nodes.filter((n) => isChannelConcat(graph, n)));
  // Each with what its rewrite needs, found once.
  const resizes = new Map(graph.nodes.flatMap((n) => { const r = spatialResize(graph, n); return r ? [[n, r] as const] : []; }));
  const slices = new Map(graph.nodes.flatMap((n) => { const r = layoutFreeSlice(graph, n); return r ? [[n, r] as const] : []; }));
  // Ops that run on the NHWC value as they are, with a constant input rewritten for the layout.
  const remapped = (n: Node): boolean => resizes.has(n) || slices.has(n);
  const forbidden = new Set<string>();
  // Joins and pools that cannot be uint8 (a piece comes from an fp32 op, or pieces disagree on
  // parameters) stay chained in float32: their readers quantize the pixels themselves.
  const floatOnly = new Set<string>();

  // Decide each value's form from its readers, readers first (reverse topological order): a
  // reader's own output is decided before its input. Returns the decisions, or a value whose
  // decision turned out impossible (its residual or pooled input is not chained: forbid it) or
  // that must be float32 (a uint8 join or pool of a piece that cannot be its uint8).
  const decide = (): Map<string, Decision> | { forbid: string } | { float: string } => {
    const decided = new Map<string, Decision>();
    for (let k = graph.nodes.length - 1; k >= 0; k--) {
      const producer = graph.nodes[k];
      const v = producer.outputs[0];
      if (!v || forbidden.has(v) || outputs.has(v) ||
          !(isQConv(producer) || isPlainMaxPool(producer) || convKind.has(producer) || elementwise.has(producer) || isTranspose(producer, TO_NCHW) ||
            concats.has(producer) || remapped(producer))) continue;
      let ok = true;
      let needF32 = false;
      let params: QParams | undefined;
      let paramsClash = false;
      const wantU8 = (p: QParams): void => {
        if (params && !sameParams(params, p)) paramsClash = true;
        params ??= p;
      };
      for (const c of consumers.get(v) ?? []) {
        c.inputs.forEach((input, i) => {
          if (input !== v) return;
          const after = decided.get(c.outputs[0]);
          if (isQConv(c) && i === 0) {
            const p = convInputParams(c);
            if (p) wantU8(p);
            else needF32 = true;
          } else if (isQConv(c) && i === 4) {
            // A residual the conv quantizes can be read as its codes.
            const p = residualParams(c);
            if (!after) ok = false;
            else if (p) wantU8(p);
            else needF32 = true;
          } else if (((isPlainMaxPool(c) && i === 0) || concats.has(c)) && after) {
            // A pooled or joined value in the reader's form (a Concat's inputs all in its own).
            if (after.form === 'u8') wantU8(after.params as QParams);
            else needF32 = true;
          } else if (convKind.has(c) && i === 0) {
            // A dense fp32 conv reads either layout; a depthwise one only with a pixel-major output.
            if (convKind.get(c) === 'dense' || after) needF32 = true;
            else ok = false;
          } else if (convKind.has(c) && i === 3) {
            if (after) needF32 = true;
            else ok = false;
          } else if (isGlobalAveragePool(c) && i === 0) {
            needF32 = true;
          } else if (elementwise.has(c) && i < dataInputs(c).length && after) {
            needF32 = true;
          } else if (remapped(c) && i === 0 && after) {
            needF32 = true;
          } else if (isTranspose(c, TO_NHWC)) {
            needF32 = true; // a view of the float32 form
          } else {
            ok = false;
          }
        });
      }
      if (!ok) continue;
      if (paramsClash) needF32 = true;
      if (floatOnly.has(v)) {
        needF32 = true;
        paramsClash = true;
      }
      let form: Form = !needF32 ? 'u8' : params && !paramsClash ? 'both' : 'f32';
      if ((isPlainMaxPool(producer) || concats.has(producer)) && form === 'both') form = 'f32'; // one output
      if (convKind.has(producer) || elementwise.has(producer) || isTranspose(producer, TO_NCHW) || remapped(producer)) form = 'f32'; // fp32 ops do not quantize their output
      decided.set(v, { form, params: form === 'f32' ? undefined : params });
    }
    // Consistency: a chained conv output needs its residual chained, in float32 or as codes
    // with the conv's residual parameters; a chained MaxPool needs its input chained in its own form.
    for (const [v, d] of decided) {
      const p = producers.get(v) as Node;
      if (isQConv(p) && p.inputs[4]) {
        const r = decided.get(p.inputs[4]);
        const rp = residualParams(p);
        if (!r || (r.form === 'u8' && !(rp && sameParams(r.params as QParams, rp)))) return { forbid: v };
      }
      if (convKind.has(p)) {
        const r = p.inputs[3] ? decided.get(p.inputs[3]) : undefined;
        if (p.inputs[3] && (!r || r.form === 'u8')) return { forbid: v };
        // A depthwise conv reads float32 pixels; a planar input it stages itself.
        const src = decided.get(p.inputs[0]);
        if (convKind.get(p) === 'depthwise' && src?.form === 'u8') return { forbid: v };
      }
      if (isTranspose(p, TO_NCHW) && decided.has(p.inputs[0])) return { forbid: v }; // its input must be a plain [N, H, W, C] tensor
      if (elementwise.has(p)) {
        // Its data operands are NHWC float32; a binary op's other operand, if planar, must be a
        // scalar or a channel vector.
        const data = dataInputs(p);
        const chained = data.filter((x) => decided.has(x));
        if (chained.length === 0 || chained.some((x) => (decided.get(x) as Decision).form === 'u8')) return { forbid: v };
        const ranks = new Set(chained.map(rankOf));
        if (ranks.size > 1) return { forbid: v };
        for (const x of data) if (!decided.has(x) && !planarOperand(graph, x, rankOf(chained[0]))) return { forbid: v };
      }
      if (remapped(p)) {
        const src = decided.get(p.inputs[0]);
        if (!src || src.form === 'u8') return { forbid: v };
      }
      // A chained MaxPool needs its input, a Concat every input, chained in its own form.
      for (const x of isPlainMaxPool(p) ? [p.inputs[0]] : concats.has(p) ? p.inputs : []) {
        const src = decided.get(x);
        if (!src) return { forbid: v };
        if (d.form === 'u8' && (src.form === 'f32' || !sameParams(src.params as QParams, d.params as QParams))) return { float: v };
        if (d.form === 'f32' && src.form === 'u8') return { forbid: v };
      }
    }
    return decided;
  };

  let decided = decide();
  while (!(decided instanceof Map)) {
    if ('forbid' in decided) forbidden.add(decided.forbid);
    else floatOnly.add(decided.float);
    decided = decide();
  }
  if (decided.size === 0) return graph;

  const used = usedNames(graph);
  const valueInfo = new Map<string, ValueType>(graph.valueInfo);
  const f32Name = new Map<string, string>(); // value -> the name of its float32 NHWC form
  for (const [v, d] of decided) {
    if (d.form === 'both') f32Name.set(v, freshName(used, `${v}/nhwc_f32`));
    else if (d.form === 'f32') f32Name.set(v, v);
    if (d.form !== 'f32') valueInfo.set(v, { dtype: 'uint8' });
    if (d.form !== 'u8') valueInfo.set(f32Name.get(v) as string, { dtype: 'float32' });
  }
  // The name a reader takes: the uint8 form when it reads uint8 with the same parameters.
  const readName = (v: string, u8With?: QParams): string => {
    const d = decided.get(v) as Decision;
    if (d.form !== 'f32' && u8With && sameParams(d.params as QParams, u8With)) return v;
    return f32Name.get(v) as string;
  };

  const str = (value: string): AttributeValue => ({ type: 'string', value });
  const int = (value: number): AttributeValue => ({ type: 'int', value });
  const float = (value: number): AttributeValue => ({ type: 'float', value });
  const ints = (value: number[]): AttributeValue => ({ type: 'ints', value });
  const transposed = new Map<string, string>(); // channel vector -> its [N, 1, 1, C] form
  const addedInitializers = new Map<string, ConstantTensor>(); // a chained Resize's reordered factors
  const nodes = graph.nodes.flatMap((n): Node[] => {
    // Layout transposes that are views now (see the top).
    if (isTranspose(n, TO_NCHW) && decided.has(n.outputs[0])) return [{ ...n, opType: 'Identity', attributes: {} }];
    if (isTranspose(n, TO_NHWC) && decided.has(n.inputs[0])) return [{ ...n, opType: 'Identity', inputs: [readName(n.inputs[0])], attributes: {} }];
    if (elementwise.has(n) && decided.has(n.outputs[0])) {
      const before: Node[] = [];
      const inputs = n.inputs.map((x, i) => {
        if (i >= dataInputs(n).length || x === '') return x;
        if (decided.has(x)) return readName(x);
        const chainedRank = rankOf(n.inputs[1 - i]);
        if (planarOperand(graph, x, chainedRank) !== 'channels') return x;
        let t = transposed.get(x);
        if (!t) {
          t = freshName(used, `${x}/nhwc`);
          transposed.set(x, t);
          const perm = knownShape(graph, x)?.length === 3 ? [1, 2, 0] : [0, 2, 3, 1]; // [C, 1, 1] -> [1, 1, C]
          before.push({ name: freshName(used, `${n.name}/to_nhwc`), opType: 'Transpose', domain: '', inputs: [x], outputs: [t],
                        attributes: { perm: ints(perm) } });
          const vt = graph.valueInfo.get(x);
          valueInfo.set(t, { dtype: vt?.dtype ?? 'float32' });
        }
        return t;
      });
      return [...before, { ...n, inputs }];
    }
    const attributes: Record<string, AttributeValue> = { ...n.attributes };
    const inputs = [...n.inputs];
    let outs = [...n.outputs];
    let opType = n.opType;
    if (isQConv(n)) {
      if (decided.has(n.inputs[0])) {
        attributes.input_layout = str('nhwc');
        inputs[0] = readName(n.inputs[0], convInputParams(n));
      }
      if (n.inputs[4] && decided.has(n.inputs[4])) inputs[4] = readName(n.inputs[4], residualParams(n));
      const d = decided.get(n.outputs[0]);
      if (d) {
        attributes.output_layout = str('nhwc');
        if (d.form !== 'f32') {
          const p = d.params as QParams;
          attributes.output_quant = int(1);
          attributes.output_scale = float(p.scale);
          attributes.output_zero_point = int(p.zeroPoint);
          attributes.output_bits = int(p.bits);
          if (d.form === 'both') outs = [n.outputs[0], f32Name.get(n.outputs[0]) as string];
        }
      }
    } else if (convKind.has(n)) {
      if (decided.has(n.inputs[0])) {
        attributes.input_layout = str('nhwc');
        inputs[0] = readName(n.inputs[0]);
      }
      if (n.inputs[3] && decided.has(n.inputs[3])) inputs[3] = readName(n.inputs[3]);
      if (decided.has(n.outputs[0])) attributes.output_layout = str('nhwc');
    } else if (isPlainMaxPool(n) && decided.has(n.outputs[0])) {
      const d = decided.get(n.outputs[0]) as Decision;
      opType = 'TernionMaxPoolNhwc';
      inputs[0] = readName(n.inputs[0], d.form === 'u8' ? d.params : undefined);
      outs = [n.outputs[0]];
    } else if (concats.has(n) && decided.has(n.outputs[0])) {
      // [N, spatial..., C] pieces joined along C: the last axis.
      const d = decided.get(n.outputs[0]) as Decision;
      inputs.forEach((x, i) => { inputs[i] = readName(x, d.form === 'u8' ? d.params : undefined); });
      attributes.axis = int((chainRank(graph, n.outputs[0]) as number) - 1);
    } else if (isGlobalAveragePool(n) && decided.has(n.inputs[0])) {
      opType = 'TernionGlobalAveragePoolNhwc';
      inputs[0] = readName(n.inputs[0]);
    } else if (resizes.has(n) && decided.has(n.outputs[0])) {
      // The factors in [N, H, W, C] order, as a new constant.
      const { input, factors } = resizes.get(n) as { input: number; factors: readonly number[] };
      const original = graph.initializers.get(n.inputs[input]) as ConstantTensor;
      const name = freshName(used, `${n.inputs[input]}/nhwc`);
      const data = original.data instanceof BigInt64Array
        ? BigInt64Array.from(TO_NHWC, (a) => BigInt(factors[a]))
        : Float32Array.from(TO_NHWC, (a) => factors[a]);
      addedInitializers.set(name, { name, dtype: original.dtype, dims: [4], data });
      inputs[0] = readName(n.inputs[0]);
      inputs[input] = name;
    } else if (slices.has(n) && decided.has(n.outputs[0])) {
      const { axes } = slices.get(n) as { axes: number[] };
      const name = freshName(used, `${n.name}/axes_nhwc`);
      addedInitializers.set(name, { name, dtype: 'int64', dims: [axes.length], data: BigInt64Array.from(axes, (a) => BigInt(a)) });
      inputs[0] = readName(n.inputs[0]);
      while (inputs.length < 4) inputs.push('');
      inputs[3] = name;
    }
    return [{ ...n, opType, inputs, outputs: outs, attributes }];
  });
  const initializers = addedInitializers.size ? new Map([...graph.initializers, ...addedInitializers]) : graph.initializers;
  return { ...graph, nodes, valueInfo, initializers };
}
