// Finding the quantizable layers of an optimized graph and rewriting them to TernionQConv /
// TernionQGemm with static activation quantization (op contract: native/exec/ops/quant-common.h).
// The layer checks are the same as lib/session/precision-int8.ts (copied, not shared, so that
// pass stays untouched).
import type { AttributeValue, ConstantTensor, Graph, Node } from '../ir';
import { quantizeWeights, transposeToOutputMajor } from './weights';
import type { QuantizedWeights, WeightQuantOptions } from './weights';
import type { ActivationParams } from './calibrate';

const int = (value: number): AttributeValue => ({ type: 'int', value });
const str = (value: string): AttributeValue => ({ type: 'string', value });
const float = (value: number): AttributeValue => ({ type: 'float', value });

const KEEP_CONV = ['strides', 'pads', 'dilations', 'auto_pad', 'group', 'activation', 'activation_params'];
const KEEP_GEMM = ['activation', 'activation_params'];

function constantF32(graph: Graph, name: string): ConstantTensor | undefined {
  const t = name ? graph.initializers.get(name) : undefined;
  return t && t.dtype === 'float32' ? t : undefined;
}

function intAttr(node: Node, key: string, dflt: number): number {
  const a = node.attributes[key];
  return a && a.type === 'int' ? a.value : dflt;
}

function floatAttr(node: Node, key: string, dflt: number): number {
  const a = node.attributes[key];
  return a && (a.type === 'float' || a.type === 'int') ? a.value : dflt;
}

/** The layer's fp32 bias [Co] (zeros when it has none). */
export function layerBias(graph: Graph, layer: LayerCandidate): Float32Array {
  const Co = layer.dims[0];
  if (layer.kind === 'gemm') return layer.bias ? Float32Array.from(layer.bias) : new Float32Array(Co);
  const b = constantF32(graph, layer.node.inputs[2] ?? '');
  return b && b.data.length === Co ? Float32Array.from(b.data as Float32Array) : new Float32Array(Co);
}

/** A layer the quantizer can rewrite: its output-major weights and (Gemm) folded bias. */
export interface LayerCandidate {
  node: Node;
  kind: 'conv' | 'gemm';
  /** Weights: conv [Co, Ci/group, k...]; gemm output-major [N, K] with alpha folded in. */
  weights: Float32Array;
  dims: number[];
  /** Gemm: bias [N] with beta folded in (absent: none). */
  bias?: Float32Array;
  /** Multiply-accumulates per sample (weights x output positions), or null if shapes unknown. */
  macs: number | null;
  /** A depthwise conv (one input and one output channel per group): int8 unless overridden. */
  depthwise?: boolean;
}

function numericProduct(shape: readonly (number | string)[] | undefined, from: number, to: number): number | null {
  if (!shape) return null;
  let p = 1;
  for (let i = from; i < to; i++) {
    const d = shape[i];
    if (typeof d !== 'number') return null;
    p *= d;
  }
  return p;
}

function convCandidate(graph: Graph, node: Node): LayerCandidate | undefined {
  const w = constantF32(graph, node.inputs[1]);
  if (!w || w.dims.length < 3 || w.dims.length > 5) return undefined; // 1-D to 3-D convs
  const group = intAttr(node, 'group', 1);
  // Depthwise with a channel multiplier (more outputs than inputs per group) has no fast kernel: stays fp32.
  const depthwise = w.dims[1] === 1 && group > 1;
  if (depthwise && w.dims[0] !== group) return undefined;
  const out = graph.valueInfo.get(node.outputs[0])?.shape;
  const spatial = out ? numericProduct(out, 2, out.length) : null;
  const c: LayerCandidate = { node, kind: 'conv', weights: w.data as Float32Array, dims: [...w.dims], macs: spatial === null ? null : spatial * w.data.length };
  if (depthwise) c.depthwise = true;
  return c;
}

function gemmCandidate(graph: Graph, node: Node): LayerCandidate | undefined {
  const isGemm = node.opType === 'Gemm';
  const b = constantF32(graph, node.inputs[1]);
  if (!b || b.dims.length !== 2) return undefined;
  if (isGemm && intAttr(node, 'transA', 0) !== 0) return undefined;
  const alpha = isGemm ? floatAttr(node, 'alpha', 1) : 1;
  const beta = isGemm ? floatAttr(node, 'beta', 1) : 1;
  let wData = b.data as Float32Array, wDims: [number, number] = [b.dims[0], b.dims[1]];
  if (!(isGemm && intAttr(node, 'transB', 0) === 1)) ({ weights: wData, dims: wDims } = transposeToOutputMajor(wData, wDims));
  if (alpha !== 1) wData = wData.map((v) => v * alpha);
  const N = wDims[0];
  let bias: Float32Array | undefined;
  const cName = isGemm ? node.inputs[2] ?? '' : '';
  if (cName) {
    const c = constantF32(graph, cName);
    const perColumn = c && c.data.length === N && (c.dims.length === 1 || (c.dims.length === 2 && c.dims[0] === 1));
    if (!c || !perColumn) return undefined;
    bias = (c.data as Float32Array).map((v) => v * beta);
  }
  const out = graph.valueInfo.get(node.outputs[0])?.shape;
  const rows = out && out.length >= 2 ? numericProduct(out, 1, out.length - 1) : 1; // leading dims after batch
  return { node, kind: 'gemm', weights: wData, dims: wDims, bias, macs: rows === null ? null : rows * wData.length };
}

/** The Conv / Gemm / MatMul nodes the quantizer can rewrite, in graph order. */
export function findLayers(graph: Graph): LayerCandidate[] {
  const found: LayerCandidate[] = [];
  for (const node of graph.nodes) {
    if (node.domain !== '') continue;
    const c = node.opType === 'Conv' ? convCandidate(graph, node) : node.opType === 'Gemm' || node.opType === 'MatMul' ? gemmCandidate(graph, node) : undefined;
    if (c) found.push(c);
  }
  return found;
}

/** The first Conv fed by the graph input through weightless ops only (no Conv/Gemm/MatMul on the way). */
export function firstConvName(graph: Graph, layers: LayerCandidate[]): string | undefined {
  const weighted = new Set(['Conv', 'ConvTranspose', 'Gemm', 'MatMul']);
  const reach = new Set(graph.inputs.map((i) => i.name));
  const candidates = new Set(layers.filter((l) => l.kind === 'conv').map((l) => l.node.name));
  for (const node of graph.nodes) {
    if (!reach.has(node.inputs[0] ?? '')) continue;
    if (node.opType === 'Conv') {
      if (candidates.has(node.name)) return node.name;
      continue;
    }
    if (weighted.has(node.opType) || node.domain !== '') continue;
    for (const o of node.outputs) reach.add(o);
  }
  return undefined;
}

function weightConstants(prefix: string, q: QuantizedWeights): ConstantTensor[] {
  const { rows: Co, K, G } = q;
  const codes: ConstantTensor = { name: `${prefix}/codes`, dtype: 'int8', dims: [Co, K], data: q.codes };
  const slots = [Co, K / G];
  if (q.form === 'per-channel') return [codes, { name: `${prefix}/channel_scale`, dtype: 'float32', dims: [Co], data: q.channelScale }];
  if (q.form === 'group-scaled') {
    const c: ConstantTensor[] = [codes, { name: `${prefix}/scale_pos`, dtype: 'float32', dims: slots, data: q.scalePos }];
    if (q.scaleNeg) c[5] = { name: `${prefix}/scale_neg`, dtype: 'float32', dims: slots, data: q.scaleNeg };
    return c;
  }
  const c: ConstantTensor[] = [codes, { name: `${prefix}/mult_pos`, dtype: 'int8', dims: slots, data: q.multPos }];
  if (q.multNeg) c[5] = { name: `${prefix}/mult_neg`, dtype: 'int8', dims: slots, data: q.multNeg };
  c[6] = { name: `${prefix}/channel_scale`, dtype: 'float32', dims: [Co], data: q.channelScale };
  return c;
}

export interface RewrittenLayer {
  node: Node;
  constants: ConstantTensor[];
  weights: QuantizedWeights;
}

/** What a caller may decide instead of the plain quantizer: the weights, and a new bias. */
export interface RewriteChoices {
  /** Weights already quantized (data-aware); default: quantizeWeights(layer, wopts). */
  weights?: QuantizedWeights;
  /** A corrected bias [Co] replacing the layer's own (bias correction). */
  bias?: Float32Array;
  /** Quantize the conv's residual (input 3 of a fused residual Add) with these parameters. */
  residual?: ActivationParams;
}

/**
 * One layer on the quantized op: weights quantized with `wopts`; activations static with the
 * calibrated `act`, or 'dynamic' (quantized per run from their range).
 */
export function rewriteLayer(layer: LayerCandidate, wopts: WeightQuantOptions, act: ActivationParams | 'dynamic', choices: RewriteChoices = {}): RewrittenLayer {
  const { node } = layer;
  const q = choices.weights ?? quantizeWeights(layer.weights, layer.dims, wopts);
  const prefix = `${node.name}/q${q.bits}`;
  // Weight parameter inputs at their contract positions: 1 codes, 2, 5, 6.
  const w = weightConstants(prefix, q);
  const constants: ConstantTensor[] = w.filter((c) => c !== undefined);
  const attributes: Record<string, AttributeValue> = {};
  for (const k of layer.kind === 'conv' ? KEEP_CONV : KEEP_GEMM) if (node.attributes[k]) attributes[k] = node.attributes[k];
  attributes.weight_bits = int(q.bits);
  attributes.form = str(q.form);
  if (q.form !== 'per-channel') {
    attributes.group_size = int(q.G);
    attributes.asym = int(q.asym ? 1 : 0);
  }
  attributes.in_channels = int(q.layout.inputChannels);
  attributes.padded_channels = int(layer.kind === 'conv' ? q.layout.paddedInputChannels : q.K);
  if (layer.kind === 'conv') attributes.kernel_shape = { type: 'ints', value: layer.dims.slice(2) };
  if (act === 'dynamic') {
    attributes.act_mode = str('dynamic');
  } else {
    attributes.act_mode = str('static');
    attributes.act_scale = float(act.scale);
    attributes.act_zero_point = int(act.zeroPoint);
    attributes.act_bits = int(act.bits);
  }
  let biasName = '', residual = '';
  if (layer.kind === 'conv') residual = node.inputs[3] ?? '';
  if (residual && choices.residual) {
    attributes.residual_scale = float(choices.residual.scale);
    attributes.residual_zero_point = int(choices.residual.zeroPoint);
    attributes.residual_bits = int(choices.residual.bits);
  }
  if (choices.bias) {
    const b: ConstantTensor = { name: `${prefix}/bias`, dtype: 'float32', dims: [choices.bias.length], data: choices.bias };
    constants.push(b);
    biasName = b.name;
  } else if (layer.kind === 'conv') {
    biasName = node.inputs[2] ?? '';
  } else if (layer.bias) {
    const b: ConstantTensor = { name: `${prefix}/bias`, dtype: 'float32', dims: [layer.bias.length], data: layer.bias };
    constants.push(b);
    biasName = b.name;
  }
  const inputs = [node.inputs[0], w[0].name, w[1].name, biasName, residual, w[5]?.name ?? '', w[6]?.name ?? ''];
  while (inputs.length > 1 && inputs[inputs.length - 1] === '') inputs.pop();
  return {
    node: { ...node, opType: layer.kind === 'conv' ? 'TernionQConv' : 'TernionQGemm', domain: '', inputs, attributes },
    constants,
    weights: q,
  };
}

/** The graph with the given nodes replaced; initializers no node reads any more are dropped. */
export function applyRewrites(graph: Graph, rewrites: Map<string, RewrittenLayer>): Graph {
  const initializers = new Map(graph.initializers);
  const nodes = graph.nodes.map((node) => {
    const r = rewrites.get(node.name);
    if (!r) return node;
    for (const c of r.constants) initializers.set(c.name, c);
    return r.node;
  });
  const used = new Set(nodes.flatMap((n) => n.inputs));
  for (const o of graph.outputs) used.add(o.name);
  for (const name of [...initializers.keys()]) if (!used.has(name)) initializers.delete(name);
  return { ...graph, nodes, initializers };
}
