// A static QDQ int8 model for onnxruntime, the int8 reference of the benchmarks: what
// onnxruntime's own static quantizer (QDQ format, per-channel) makes, written here so that no
// Python is needed. BatchNormalization after a Conv is folded into it first; each Conv / Gemm /
// MatMul weight becomes an int8 initializer behind a per-channel DequantizeLinear (symmetric,
// zero points 0); each activation tensor around the quantizable ops (Conv, Gemm, MatMul, Add,
// pools, Flatten) gets a uint8 per-tensor QuantizeLinear -> DequantizeLinear pair, its scale and
// zero point from the min/max seen when onnxruntime runs the fp32 model on calibration inputs.
// Layer outputs are taken after a single Relu / Clip reader, so onnxruntime sees
// DQ -> Conv -> Relu -> Q and fuses it to QLinearConv (dropping the Relu); bias stays fp32.
import { TernionError } from '../errors';
import { ModelProtoType, int64ToNumber, type ModelProtoMessage, type NodeProtoMessage, type TensorProtoMessage } from '../onnx/proto';
import { cpuInfo } from '../kernels';
import { inferShapes } from '../ir/infer-shapes';
import { loadOnnxModel } from '../onnx/load-model';
import { batchAxesOf, type BatchAxes } from '../ir/batch-axes';
import { feedRows, sampleCount, type CalibrationFeeds } from '../quantize/calibration-data';
import { Tensor } from '../tensor';
import type { OrtModule, OrtTensor } from './ort';

const FLOAT = 1, UINT8 = 2, INT8 = 3;
const ATTR_INT = 2;

export interface QdqOptions {
  /** onnxruntime-node, which runs the fp32 model for the activation ranges. */
  ort: OrtModule;
  /** Sample inputs: a Tensor [samples, ...] for a model with one input, else a Tensor per input by name. */
  calibration: Tensor | CalibrationFeeds;
  /** Samples per calibration run (default 4). */
  batch?: number;
  /**
   * Largest weight code: 127, or 63 (onnxruntime's reduce_range). Default: 63 on CPUs without
   * VNNI, where onnxruntime's u8s8 kernels (vpmaddubsw) saturate int16 pair sums with 8-bit
   * weights (measured here: 97.8% top-1 agreement with fp32 on the embedded model, 99.4% with 7 bits),
   * 127 with AVX-512 VNNI / AVX-VNNI.
   */
  weightMax?: 127 | 63;
}

export interface QdqReport {
  foldedBatchNorms: number;
  quantizedWeights: number;
  quantizedActivations: number;
  calibrationSamples: number;
  weightMax: number;
}

type Node = NodeProtoMessage;

function dimsOf(t: TensorProtoMessage): number[] {
  return t.dims.map(int64ToNumber);
}

function floatsOf(t: TensorProtoMessage): Float32Array {
  if (t.data_type !== FLOAT) throw new TernionError('ERR_DTYPE', `initializer "${t.name}" has element type ${t.data_type}; the QDQ tool quantizes float32 models`);
  if ((t.external_data ?? []).length > 0) throw new TernionError('ERR_MODEL_FORMAT', `initializer "${t.name}" is stored externally; the QDQ tool reads models with embedded weights`);
  if (t.raw_data && t.raw_data.length > 0) {
    const copy = new Uint8Array(t.raw_data); // aligned copy
    return new Float32Array(copy.buffer, 0, copy.length / 4);
  }
  return Float32Array.from(t.float_data ?? []);
}

function tensor(name: string, dataType: number, dims: number[], bytes: Uint8Array): TensorProtoMessage {
  return { name, data_type: dataType, dims, raw_data: bytes } as unknown as TensorProtoMessage;
}

function floatTensor(name: string, dims: number[], data: Float32Array): TensorProtoMessage {
  return tensor(name, FLOAT, dims, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
}

function node(op: string, inputs: string[], outputs: string[], name: string, axis?: number): Node {
  const attribute = axis === undefined ? [] : [{ name: 'axis', type: ATTR_INT, i: axis }];
  return { op_type: op, input: inputs, output: outputs, name, domain: '', attribute } as unknown as Node;
}

function intAttr(n: Node, name: string, fallback: number): number {
  const a = n.attribute.find((x) => x.name === name);
  return a ? int64ToNumber(a.i) : fallback;
}

function floatAttr(n: Node, name: string, fallback: number): number {
  const a = n.attribute.find((x) => x.name === name);
  return a ? a.f : fallback;
}

class GraphView {
  readonly init = new Map<string, TensorProtoMessage>();
  readonly consumers = new Map<string, Node[]>();
  readonly outputs: Set<string>;
  readonly inputs: string[];

  constructor(readonly model: ModelProtoMessage) {
    const g = model.graph!;
    for (const t of g.initializer) this.init.set(t.name, t);
    this.outputs = new Set(g.output.map((o) => o.name));
    this.inputs = g.input.map((i) => i.name).filter((n) => !this.init.has(n));
    this.index();
  }

  index(): void {
    this.consumers.clear();
    for (const n of this.model.graph!.node) {
      for (const i of n.input) if (i) this.consumers.set(i, [...(this.consumers.get(i) ?? []), n]);
    }
  }

  readers(name: string): Node[] {
    return this.consumers.get(name) ?? [];
  }

  uses(name: string): number {
    return this.readers(name).length;
  }
}

/** Folds BatchNormalization into the Conv before it (its only reader), as quantizers do first. */
function foldBatchNorms(view: GraphView): number {
  const g = view.model.graph!;
  const producer = new Map<string, Node>();
  for (const n of g.node) for (const o of n.output) producer.set(o, n);
  const removed = new Set<Node>();
  for (const bn of g.node) {
    if (bn.op_type !== 'BatchNormalization' || bn.output.length !== 1) continue;
    const conv = producer.get(bn.input[0]);
    if (!conv || conv.op_type !== 'Conv' || view.uses(bn.input[0]) !== 1 || view.outputs.has(bn.input[0])) continue;
    const [, sName, bName, mName, vName] = bn.input;
    const params = [sName, bName, mName, vName].map((n) => view.init.get(n));
    const w = view.init.get(conv.input[1]);
    if (params.some((p) => !p) || !w || view.uses(conv.input[1]) !== 1) continue;
    const [scale, shift, mean, variance] = params.map((p) => floatsOf(p!));
    const eps = floatAttr(bn, 'epsilon', 1e-5);
    const wDims = dimsOf(w);
    const out = wDims[0];
    const per = wDims.slice(1).reduce((a, b) => a * b, 1);
    const wData = floatsOf(w).slice();
    const oldBias = conv.input[2] ? view.init.get(conv.input[2]) : undefined;
    if (conv.input[2] && (!oldBias || view.uses(conv.input[2]) !== 1)) continue;
    const bias = oldBias ? floatsOf(oldBias).slice() : new Float32Array(out);
    for (let o = 0; o < out; o++) {
      const k = scale[o] / Math.sqrt(variance[o] + eps);
      for (let i = 0; i < per; i++) wData[o * per + i] *= k;
      bias[o] = (bias[o] - mean[o]) * k + shift[o];
    }
    const wt = floatTensor(w.name, wDims, wData);
    g.initializer[g.initializer.indexOf(w)] = wt;
    view.init.set(w.name, wt);
    const biasName = oldBias ? oldBias.name : `${conv.input[1]}::folded_bias`;
    const bt = floatTensor(biasName, [out], bias);
    if (oldBias) g.initializer[g.initializer.indexOf(oldBias)] = bt;
    else g.initializer.push(bt);
    view.init.set(biasName, bt);
    conv.input = [conv.input[0], conv.input[1], biasName];
    conv.output = [bn.output[0]];
    removed.add(bn);
  }
  g.node = g.node.filter((n) => !removed.has(n));
  // BN parameters nobody reads any more.
  view.index();
  g.initializer = g.initializer.filter((t) => view.uses(t.name) > 0 || view.outputs.has(t.name));
  return removed.size;
}

const LAYER_OPS = new Set(['Conv', 'Gemm', 'MatMul']);
const POOL_OPS = new Set(['GlobalAveragePool', 'AveragePool']);
/** Ops whose output values are a subset of their input's: the output reuses the input's grid. */
const PASS_THROUGH_OPS = new Set(['MaxPool', 'Flatten', 'Reshape']);

/** Axis of the output channels of a layer's weight. */
function weightAxis(n: Node): number {
  if (n.op_type === 'Conv') return 0;
  if (n.op_type === 'Gemm') return intAttr(n, 'transB', 0) === 1 ? 0 : 1;
  return 1; // MatMul: B is [K, N]
}

/** The tensors to quantize, and for pass-through outputs the tensor whose grid they share. */
function chooseActivations(view: GraphView, floats?: ReadonlySet<string>): { tensors: Set<string>; sharedWith: Map<string, string>; weights: Map<string, number> } {
  const tensors = new Set<string>();
  const weights = new Map<string, number>();
  // Graph outputs too (as onnxruntime's quantizer does): a layer whose output is not quantized
  // is not fused by onnxruntime, it dequantizes the weight on every run. Only float32 tensors:
  // an Add of shape arithmetic (int64, with Constant-node operands) is not an activation.
  const isActivation = (name: string) => Boolean(name) && !view.init.has(name) && (!floats || floats.has(name));
  const after = (name: string) => {
    // A lone Relu / Clip reader: quantize its output (onnxruntime then removes the activation).
    let t = name;
    for (;;) {
      const r = view.readers(t);
      if (r.length !== 1 || (r[0].op_type !== 'Relu' && r[0].op_type !== 'Clip') || view.outputs.has(t)) return t;
      t = r[0].output[0];
    }
  };
  const mark = (name: string) => {
    if (isActivation(name)) tensors.add(name);
  };
  const g = view.model.graph!;
  for (const n of g.node) {
    if (LAYER_OPS.has(n.op_type)) {
      const w = view.init.get(n.input[1]);
      if (w && w.data_type === FLOAT) weights.set(n.input[1], weightAxis(n));
      else mark(n.input[1]);
      mark(n.input[0]);
      mark(after(n.output[0]));
    } else if (n.op_type === 'Add' && n.input.every((i) => !view.init.has(i))) {
      n.input.forEach(mark);
      mark(after(n.output[0]));
    } else if (POOL_OPS.has(n.op_type)) {
      mark(n.input[0]);
      mark(after(n.output[0]));
    }
  }
  const sharedWith = new Map<string, string>();
  for (const n of g.node) {
    if (PASS_THROUGH_OPS.has(n.op_type) && tensors.has(n.input[0])) {
      mark(n.output[0]);
      if (tensors.has(n.output[0])) sharedWith.set(n.output[0], n.input[0]);
    }
  }
  // A weight shared by a layer that reads it transposed (or by other ops) stays fp32.
  for (const name of [...weights.keys()]) {
    if (view.readers(name).some((r) => !LAYER_OPS.has(r.op_type) || r.input[1] !== name || weightAxis(r) !== weights.get(name))) weights.delete(name);
  }
  return { tensors, sharedWith, weights };
}

function rootOf(name: string, sharedWith: Map<string, string>): string {
  let t = name;
  while (sharedWith.has(t)) t = sharedWith.get(t)!;
  return t;
}

/** The batch axis of each graph input for `feeds` (see batchAxesOf), from the declared dims of the proto. */
function inputBatchAxes(view: GraphView, feeds: CalibrationFeeds): BatchAxes {
  let unknown = 0;
  const infos = view.model.graph!.input.filter((i) => view.inputs.includes(i.name)).map((i) => {
    const dims = i.type?.tensor_type?.shape?.dim;
    const shape = dims?.map((d) => (d.value === 'dim_value' && d.dim_value !== undefined ? int64ToNumber(d.dim_value) : d.value === 'dim_param' && d.dim_param ? d.dim_param : `?${unknown++}`));
    return { name: i.name, dtype: 'float32' as const, shape };
  });
  return batchAxesOf(infos, Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, t.dims])));
}

/** Min and max of each tensor over the calibration inputs, from onnxruntime runs of the fp32 model. */
async function observeRanges(view: GraphView, names: string[], options: QdqOptions): Promise<{ ranges: Map<string, [number, number]>; samples: number }> {
  const { ort, calibration } = options;
  const g = view.model.graph!;
  if (calibration instanceof Tensor && view.inputs.length !== 1) {
    throw new TernionError('ERR_INPUT_NAME', `the model has ${view.inputs.length} inputs (${view.inputs.join(', ')}): give the QDQ tool's calibration as a Tensor per input, by name`);
  }
  const feeds: CalibrationFeeds = calibration instanceof Tensor ? { [view.inputs[0]]: calibration } : calibration;
  for (const name of view.inputs) if (!feeds[name]) throw new TernionError('ERR_INPUT_NAME', `the QDQ tool's calibration has no tensor for input "${name}"`);
  const ranges = new Map<string, [number, number]>();
  const observe = (name: string, data: ArrayLike<number>) => {
    let lo = Infinity, hi = -Infinity;
    for (let i = 0; i < data.length; i++) {
      const v = data[i];
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    const r = ranges.get(name);
    ranges.set(name, r ? [Math.min(r[0], lo), Math.max(r[1], hi)] : [lo, hi]);
  };
  const extra = names.filter((n) => !view.inputs.includes(n));
  const probe = ModelProtoType.decode(ModelProtoType.encode(view.model).finish()) as unknown as ModelProtoMessage;
  probe.graph!.output.push(...(extra.map((name) => ({ name, type: { tensor_type: { elem_type: FLOAT } } })) as typeof g.output));
  const session = await ort.InferenceSession.create(ModelProtoType.encode(probe).finish(), { intraOpNumThreads: 1, interOpNumThreads: 1 });
  const axes = inputBatchAxes(view, feeds);
  const samples = sampleCount(feeds, axes);
  try {
    const step = options.batch ?? 4;
    for (let from = 0; from < samples; from += step) {
      const rows = Math.min(step, samples - from);
      const part = Object.entries(feedRows(feeds, from, rows, axes));
      for (const [name, t] of part) if (names.includes(name)) observe(name, t.data as Float32Array);
      const out = await session.run(Object.fromEntries(part.map(([name, t]) => [name, new ort.Tensor(t.type, t.data, t.dims)])));
      for (const name of extra) observe(name, (out[name] as OrtTensor).data as Float32Array);
    }
  } finally {
    await session.release();
  }
  return { ranges, samples };
}

/** uint8 asymmetric per-tensor grid over [min(0, lo), max(0, hi)]. */
function activationGrid([lo, hi]: [number, number]): { scale: number; zeroPoint: number } {
  const rmin = Math.min(0, lo), rmax = Math.max(0, hi);
  if (!(rmax > rmin)) return { scale: 1, zeroPoint: 0 };
  const scale = (rmax - rmin) / 255;
  const zeroPoint = Math.min(255, Math.max(0, Math.round(-rmin / scale)));
  return { scale, zeroPoint };
}

/** Per-channel symmetric int8 codes and scales of a weight along `axis`. */
export function quantizeWeightPerChannel(data: Float32Array, dims: readonly number[], axis: number, qmax: number): { codes: Int8Array; scales: Float32Array } {
  const channels = dims[axis];
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const absMax = new Float32Array(channels);
  for (let i = 0; i < data.length; i++) {
    const c = Math.floor(i / inner) % channels;
    const a = Math.abs(data[i]);
    if (a > absMax[c]) absMax[c] = a;
  }
  const scales = absMax.map((m) => (m > 0 ? m / qmax : 1));
  const codes = new Int8Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const c = Math.floor(i / inner) % channels;
    codes[i] = Math.max(-qmax, Math.min(qmax, Math.round(data[i] / scales[c])));
  }
  return { codes, scales };
}

/** 127 where onnxruntime's u8s8 products are exact (VNNI), else 63 (see QdqOptions.weightMax). */
export function defaultWeightMax(): 127 | 63 {
  const f = cpuInfo().features;
  return f.includes('avx512vnni') || f.includes('avxvnni') || cpuInfo().arch !== 'x86_64' ? 127 : 63;
}

/**
 * The float32 tensors of a model (its float inputs and node outputs), by ternion's loader and
 * shape inference; undefined when ternion cannot load the model (then every non-constant tensor
 * is taken for float, as the ops the tool quantizes around read and write float).
 */
function floatTensors(bytes: Uint8Array): Set<string> | undefined {
  let graph;
  try {
    graph = inferShapes(loadOnnxModel(bytes));
  } catch {
    return undefined;
  }
  const floats = new Set<string>();
  for (const i of graph.inputs) if (i.dtype === 'float32') floats.add(i.name);
  for (const [name, v] of graph.valueInfo) if (v.dtype === 'float32' && !graph.initializers.has(name)) floats.add(name);
  return floats;
}

/** Makes the QDQ int8 model of an fp32 .onnx (its bytes); returns the new bytes and what was done. */
export async function makeQdqModel(bytes: Uint8Array, options: QdqOptions): Promise<{ bytes: Uint8Array; report: QdqReport }> {
  const model = ModelProtoType.decode(bytes) as unknown as ModelProtoMessage;
  if (!model.graph) throw new TernionError('ERR_MODEL_FORMAT', 'the model has no graph');
  const opset = model.opset_import.find((o) => o.domain === '' || o.domain === 'ai.onnx');
  if (!opset || int64ToNumber(opset.version) < 13) {
    throw new TernionError('ERR_MODEL_FORMAT', `per-channel DequantizeLinear needs ai.onnx opset 13 or later; the model imports ${opset ? int64ToNumber(opset.version) : 'none'}`);
  }
  const view = new GraphView(model);
  const floats = floatTensors(bytes);
  const foldedBatchNorms = foldBatchNorms(view);
  const { tensors, sharedWith, weights } = chooseActivations(view, floats);
  const roots = [...new Set([...tensors].map((t) => rootOf(t, sharedWith)))];
  const { ranges, samples } = await observeRanges(view, roots, options);
  const g = model.graph;
  const qmax = options.weightMax ?? defaultWeightMax();

  // Weights: int8 codes + scale vector + zero points behind one DequantizeLinear per reader.
  const weightNodes = new Map<string, Node>();
  for (const [name, axis] of weights) {
    const w = view.init.get(name)!;
    const dims = dimsOf(w);
    const { codes, scales } = quantizeWeightPerChannel(floatsOf(w), dims, axis, qmax);
    const q = `${name}::int8`, s = `${name}::scale`, z = `${name}::zero_point`, out = `${name}::dequantized`;
    g.initializer[g.initializer.indexOf(w)] = tensor(q, INT8, dims, new Uint8Array(codes.buffer));
    g.initializer.push(floatTensor(s, [dims[axis]], scales), tensor(z, INT8, [dims[axis]], new Uint8Array(dims[axis])));
    weightNodes.set(name, node('DequantizeLinear', [q, s, z], [out], `${name}::DequantizeLinear`, axis));
    for (const r of view.readers(name)) r.input = r.input.map((i) => (i === name ? out : i));
  }
  g.input = g.input.filter((i) => !weights.has(i.name)); // old models list initializers as inputs too

  // Activations: one QuantizeLinear per tensor, one DequantizeLinear per reader.
  const grids = new Map<string, { s: string; z: string }>();
  for (const root of roots) {
    const range = ranges.get(root);
    if (!range) throw new TernionError('ERR_INTERNAL', `no calibration range for "${root}"`);
    const { scale, zeroPoint } = activationGrid(range);
    const s = `${root}::act_scale`, z = `${root}::act_zero_point`;
    g.initializer.push(floatTensor(s, [], Float32Array.of(scale)), tensor(z, UINT8, [], Uint8Array.of(zeroPoint)));
    grids.set(root, { s, z });
  }
  const inserted = new Map<string, Node[]>();
  for (const t of tensors) {
    const { s, z } = grids.get(rootOf(t, sharedWith))!;
    const q = `${t}::quantized`;
    if (view.outputs.has(t)) {
      // A graph output keeps its name: the producer writes t::float, the last DequantizeLinear t.
      const producer = g.node.find((n) => n.output.includes(t))!;
      producer.output = producer.output.map((o) => (o === t ? `${t}::float` : o));
      inserted.set(`${t}::float`, [node('QuantizeLinear', [`${t}::float`, s, z], [q], `${t}::QuantizeLinear`), node('DequantizeLinear', [q, s, z], [t], `${t}::DequantizeLinear`)]);
      continue;
    }
    const list = [node('QuantizeLinear', [t, s, z], [q], `${t}::QuantizeLinear`)];
    view.readers(t).forEach((r, i) => {
      const dq = `${t}::dequantized_${i}`;
      list.push(node('DequantizeLinear', [q, s, z], [dq], `${t}::DequantizeLinear_${i}`));
      r.input = r.input.map((x) => (x === t ? dq : x));
    });
    inserted.set(t, list);
  }
  // Keep the node list topologically sorted: each pair right after its tensor's producer.
  const nodes: Node[] = [...weightNodes.values()];
  for (const t of view.inputs) nodes.push(...(inserted.get(t) ?? []));
  for (const n of g.node) {
    nodes.push(n);
    for (const o of n.output) nodes.push(...(inserted.get(o) ?? []));
  }
  g.node = nodes;
  model.producer_name = 'ternion-qdq';
  return {
    bytes: ModelProtoType.encode(model).finish(),
    report: { foldedBatchNorms, quantizedWeights: weights.size, quantizedActivations: tensors.size, calibrationSamples: samples, weightMax: qmax },
  };
}
