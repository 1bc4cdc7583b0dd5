// QDQ models (onnxruntime's static quantization format, its default: int8 weights behind a
// DequantizeLinear, every activation through a QuantizeLinear -> DequantizeLinear pair) run on
// ternion's quantized layers instead of as fp32 layers with fake quantization between them:
//   - a DequantizeLinear of constants (weights, int32 biases) becomes the fp32 constant it makes;
//   - a QuantizeLinear(x) whose readers are DequantizeLinears with its own scale and zero point
//     becomes x's activation parameters, and those readers read x itself;
//   - then the graph is optimized and each Conv / Gemm / MatMul whose input has parameters is
//     rewritten as quantize() rewrites it (rewrite.ts), with the model's parameters in place of
//     calibrated ones: int8 weights per output channel, the model's own codes and scales where
//     they are symmetric int8 along the output channels (else re-quantized from the dequantized
//     weights), uint8 activations with the model's scale and zero point (an int8 zero point z is
//     the uint8 one z + 128: the same real values).
// QOperator layers (QLinearConv, QLinearMatMul with constant weights: onnxruntime's QOperator
// format, models converted from TFLite) are first written out in QDQ form, DequantizeLinear ->
// Conv / MatMul -> QuantizeLinear (the int32 bias dequantized with x_scale * w_scale), so the
// pairs between consecutive layers read the same way.
// Convs onnxruntime's quantize_dynamic wrote (DynamicQuantizeLinear -> ConvInteger -> Cast -> Mul)
// are read as fp32 Convs too (read-dynamic-convs.ts) and run with dynamic activations.
// Layers without parameters, and pairs this does not recognize, run as they are. The numbers
// follow the model's quantization as onnxruntime's QLinear kernels do, not bit for bit (their
// outputs are requantized at each layer, ternion's stay fp32 up to the next layer's input).

import type { AttributeValue, Graph, Node, ConstantTensor } from '../ir';
import { optimizeGraph } from '../ir';
import { clipBounds } from '../ir/passes/fuse-activation';
import { consumersByTensor, freshName, producersByTensor, usedNames } from '../ir/graph-utils';
import { toNumberArray } from '../ir/dtype';
import type { ActivationParams } from './calibrate';
import { applyRewrites, findLayers, rewriteLayer, type LayerCandidate, type RewrittenLayer } from './rewrite';
import { readDynamicConvs } from './read-dynamic-convs';
import { quantizeWeights, type QuantizedWeights } from './weights';
import { toGemmRows } from './weights/layout';

const isStd = (n: Node, op: string): boolean => n.opType === op && n.domain === '';

/** A QuantizeLinear / DequantizeLinear's constant scalar scale and zero point (uint8 form), if they are. */
function scalarParams(graph: Graph, n: Node): { scale: number; zeroPoint: number; signed: boolean } | undefined {
  const s = graph.initializers.get(n.inputs[1] ?? '');
  const z = n.inputs[2] ? graph.initializers.get(n.inputs[2]) : undefined;
  if (!s || s.dtype !== 'float32' || s.data.length !== 1 || (n.inputs[2] && !z)) return undefined;
  if (z && (z.data.length !== 1 || (z.dtype !== 'uint8' && z.dtype !== 'int8'))) return undefined;
  const scale = Number(s.data[0]);
  if (!(scale > 0) || !Number.isFinite(scale)) return undefined;
  const signed = z?.dtype === 'int8';
  const zp = z ? Number(z.data[0]) : 0;
  return { scale, zeroPoint: signed ? zp + 128 : zp, signed };
}

/** DequantizeLinear of constants, evaluated: (q - zero_point) * scale, per tensor or along `axis`. */
function dequantizeConstant(graph: Graph, n: Node): ConstantTensor | undefined {
  const q = graph.initializers.get(n.inputs[0]);
  const s = graph.initializers.get(n.inputs[1] ?? '');
  const z = n.inputs[2] ? graph.initializers.get(n.inputs[2]) : undefined;
  if (!q || !s || s.dtype !== 'float32' || (n.inputs[2] && !z)) return undefined;
  if (!['int8', 'uint8', 'int32'].includes(q.dtype)) return undefined;
  const count = s.data.length;
  const axisAttr = n.attributes.axis;
  const axis0 = axisAttr?.type === 'int' ? axisAttr.value : 1;
  const axis = axis0 < 0 ? axis0 + q.dims.length : axis0;
  if (count !== 1 && (s.dims.length !== 1 || q.dims[axis] !== count)) return undefined;
  if (z && z.data.length !== count) return undefined;
  const inner = count === 1 ? 1 : q.dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const qs = toNumberArray(q.data), scales = toNumberArray(s.data), zps = z ? toNumberArray(z.data) : null;
  const out = new Float32Array(qs.length);
  for (let i = 0; i < qs.length; i++) {
    const c = count === 1 ? 0 : Math.floor(i / inner) % count;
    out[i] = Math.fround((qs[i] - (zps ? zps[c] : 0)) * scales[c]);
  }
  return { name: n.outputs[0], dtype: 'float32', dims: q.dims, data: out };
}

/**
 * QLinearConv / QLinearMatMul with constant weights and scales as DequantizeLinear -> Conv / MatMul
 * -> QuantizeLinear (the same values up to where onnxruntime rounds its requantization).
 */
function expandQOperators(graph: Graph): Graph {
  const used = usedNames(graph);
  const initializers = new Map(graph.initializers);
  const constant = (name: string | undefined) => (name ? graph.initializers.get(name) : undefined);
  const nodes = graph.nodes.flatMap((n): Node[] => {
    const conv = isStd(n, 'QLinearConv');
    if (!(conv || isStd(n, 'QLinearMatMul')) || n.outputs.length !== 1) return [n];
    const [x, xs, xz, w, ws, wz, ys, yz, bias] = n.inputs;
    const W = constant(w), WS = constant(ws), XS = constant(xs);
    if (!W || !WS || !XS || WS.dtype !== 'float32' || XS.data.length !== 1 || !constant(ys)) return [n];
    if (!conv && (W.dims.length !== 2 || (WS.data.length !== 1 && WS.data.length !== W.dims[1]))) return [n];
    const name = (base: string) => freshName(used, `${n.name || n.outputs[0]}/${base}`);
    const xf = name('x'), wf = name('w'), yf = name('y');
    const dq = (input: string, scale: string, zp: string | undefined, out: string, axis?: number): Node => ({
      name: name('dequantize'), opType: 'DequantizeLinear', domain: '', inputs: zp ? [input, scale, zp] : [input, scale], outputs: [out],
      attributes: axis === undefined ? {} : { axis: { type: 'int', value: axis } as AttributeValue },
    });
    const out: Node[] = [dq(x, xs, xz, xf), dq(w, ws, wz, wf, conv ? 0 : 1)];
    const layerInputs = [xf, wf];
    if (conv && bias) {
      const B = constant(bias);
      if (!B || B.dtype !== 'int32') return [n];
      const b = toNumberArray(B.data), wsc = toNumberArray(WS.data), xsc = Number(XS.data[0]);
      const data = Float32Array.from(b, (v, c) => Math.fround(v * Math.fround(xsc * wsc[wsc.length === 1 ? 0 : c])));
      const bf = name('bias');
      initializers.set(bf, { name: bf, dtype: 'float32', dims: B.dims, data });
      layerInputs.push(bf);
    }
    const attributes = conv ? n.attributes : {};
    out.push({ name: name(conv ? 'conv' : 'matmul'), opType: conv ? 'Conv' : 'MatMul', domain: '', inputs: layerInputs, outputs: [yf], attributes });
    out.push({ name: name('quantize'), opType: 'QuantizeLinear', domain: '', inputs: yz ? [yf, ys, yz] : [yf, ys], outputs: [...n.outputs], attributes: {} });
    return out;
  });
  return nodes.length === graph.nodes.length ? graph : { ...graph, nodes, initializers };
}


/** Ops that move or select values without computing new ones: on quantized codes they commute with QuantizeLinear. */
const CODE_OPS: ReadonlySet<string> = new Set([
  'MaxPool', 'GlobalMaxPool', 'Reshape', 'Flatten', 'Transpose', 'Squeeze', 'Unsqueeze', 'Identity', 'DepthToSpace', 'SpaceToDepth',
]);

/** Ops whose output is >= 0 wherever their input (the first) is: those, and averages. */
const KEEPS_SIGN: ReadonlySet<string> = new Set([...CODE_OPS, 'AveragePool', 'GlobalAveragePool']);

/**
 * Whether a node's output is already clamped at 0 from below: a Relu (or an op whose outputs are
 * never negative), a Clip whose lower bound is >= 0, a DequantizeLinear of codes whose zero point
 * is their least value, or a value-moving op or average of such an output.
 */
function clampsAtZero(graph: Graph, n: Node | undefined, producers: Map<string, Node>): boolean {
  if (!n || n.domain !== '') return false;
  if (KEEPS_SIGN.has(n.opType)) return clampsAtZero(graph, producers.get(n.inputs[0]), producers);
  // Relu, and ops whose outputs are never negative (the pair's upper clamp, as after a Relu, is
  // left to the quantized readers).
  if (['Relu', 'Sigmoid', 'HardSigmoid', 'Softmax'].includes(n.opType)) return true;
  if (n.opType === 'DequantizeLinear') return scalarParams(graph, n)?.zeroPoint === 0; // codes from 0 up
  const bounds = n.opType === 'Clip' ? clipBounds(graph, n) : undefined;
  return !!bounds && bounds[0] >= 0;
}

/** Clip(x, 0, hi) writing `out`, in the form of the model's opset (bounds as inputs since 11). */
function clipNode(graph: Graph, used: Set<string>, initializers: Map<string, ConstantTensor>, x: string, out: string, hi: number): Node {
  const name = freshName(used, `${out}/Clip`);
  if ((graph.opsets[''] ?? 0) < 11) {
    return { name, opType: 'Clip', domain: '', inputs: [x], outputs: [out], attributes: { min: { type: 'float', value: 0 }, max: { type: 'float', value: hi } } };
  }
  const bound = (base: string, value: number): string => {
    const c = freshName(used, `${out}/${base}`);
    initializers.set(c, { name: c, dtype: 'float32', dims: [], data: Float32Array.of(value) });
    return c;
  };
  return { name, opType: 'Clip', domain: '', inputs: [x, bound('min', 0), bound('max', hi)], outputs: [out], attributes: {} };
}


/**
 * Such an op on the codes of a QuantizeLinear, read only by DequantizeLinears of the same
 * parameters (a QOperator model's uint8 MaxPool between two layers), run on their values
 * instead: Q -> op -> DQ becomes Q -> DQ -> op -> Q -> DQ, which is exact (Q is monotonic, these
 * ops only move values), and both pairs then read as activation parameters.
 */
function codeOpsOnValues(graph: Graph): Graph {
  const readers = consumersByTensor(graph.nodes);
  const producers = producersByTensor(graph.nodes);
  const outputs = new Set(graph.outputs.map((o) => o.name));
  const used = usedNames(graph);
  const replaced = new Map<Node, Node[]>();
  for (const n of graph.nodes) {
    if (n.domain !== '' || !CODE_OPS.has(n.opType) || n.outputs.length !== 1 || outputs.has(n.outputs[0])) continue;
    const q = producers.get(n.inputs[0]);
    const p = q && isStd(q, 'QuantizeLinear') ? scalarParams(graph, q) : undefined;
    const rs = readers.get(n.outputs[0]) ?? [];
    if (!q || !p || rs.length === 0) continue;
    const sameParams = (d: Node): boolean => {
      const dp = isStd(d, 'DequantizeLinear') && d.inputs[0] === n.outputs[0] ? scalarParams(graph, d) : undefined;
      return !!dp && dp.scale === p.scale && dp.zeroPoint === p.zeroPoint;
    };
    if (!rs.every(sameParams)) continue;
    const dequantized = freshName(used, `${n.inputs[0]}/dequantized`);
    const values = freshName(used, `${n.outputs[0]}/values`);
    const dq: Node = { name: freshName(used, `${n.name}/dequantize`), opType: 'DequantizeLinear', domain: '', inputs: [n.inputs[0], ...q.inputs.slice(1)], outputs: [dequantized], attributes: {} };
    const moved: Node = { ...n, inputs: [dequantized, ...n.inputs.slice(1)], outputs: [values] };
    const requant: Node = { ...q, name: freshName(used, `${n.name}/quantize`), inputs: [values, ...q.inputs.slice(1)], outputs: [...n.outputs] };
    replaced.set(n, [dq, moved, requant]);
    producers.set(n.outputs[0], requant); // a chain (MaxPool -> Flatten) moves op by op
  }
  if (replaced.size === 0) return graph;
  return { ...graph, nodes: graph.nodes.flatMap((n) => replaced.get(n) ?? [n]) };
}

/** A dequantized weight's grid: its step per slice along `axis` (one step: per tensor). */
export interface Grid {
  steps: number[];
  axis: number;
}

/**
 * The layer's int8 weights on the model's own grid: codes w / step per output channel, when every
 * weight is such a code in [-127, 127] and the grid runs along the output channels; else undefined
 * (the caller re-quantizes).
 */
function weightsOnGrid(layer: LayerCandidate, grid: Grid | undefined): QuantizedWeights | undefined {
  if (!grid) return undefined;
  const rows = layer.dims[0];
  if (grid.steps.length !== 1 && grid.steps.length !== rows) return undefined;
  if (grid.steps.length !== 1) {
    // Conv weights [Co, ...]: axis 0. MatMul / Gemm: the axis of N in B (1 for [K, N], 0 for a transposed [N, K]).
    const transB = layer.node.attributes.transB;
    const nAxis = layer.kind === 'conv' ? 0 : layer.node.opType === 'Gemm' && transB?.type === 'int' && transB.value === 1 ? 0 : 1;
    if (grid.axis !== nAxis) return undefined;
  }
  const alpha = layer.node.attributes.alpha;
  if (layer.kind === 'gemm' && alpha?.type === 'float' && alpha.value !== 1) return undefined;
  const q = quantizeWeights(layer.weights, layer.dims, { bits: 8 });
  if (q.bits !== 8) return undefined;
  const w = toGemmRows(layer.weights, q.layout);
  const codes = new Int8Array(q.codes.length), scales = new Float32Array(q.rows);
  for (let r = 0; r < q.rows; r++) {
    const step = grid.steps.length === 1 ? grid.steps[0] : grid.steps[r];
    scales[r] = step;
    for (let k = 0; k < q.K; k++) {
      const v = w[r * q.K + k], c = Math.round(v / step);
      if (c < -127 || c > 127 || Math.fround(c * step) !== v) return undefined;
      codes[r * q.K + k] = c;
    }
  }
  q.codes.set(codes);
  q.channelScale.set(scales);
  return q;
}

/**
 * A quantized model read: its fp32 graph (not yet optimized), each activation's parameters, each
 * weight's grid, and the Convs onnxruntime quantized dynamically (read-dynamic-convs.ts).
 */
export interface QdqStructure {
  fp32: Graph;
  act: Map<string, ActivationParams>;
  grids: Map<string, Grid>;
  dynamic: Set<string>;
}

/**
 * The QDQ structure of a model (constant DequantizeLinears evaluated, activation pairs read and
 * removed), or undefined when it has no pair: quantize() starts from its fp32 graph, sessions
 * quantize its layers with its parameters (importQdq).
 */
export function readQdq(original: Graph): QdqStructure | undefined {
  const dynamic = readDynamicConvs(original);
  const start = dynamic?.graph ?? original;
  if (!start.nodes.some((n) => ['QuantizeLinear', 'DequantizeLinear', 'QLinearConv', 'QLinearMatMul'].some((op) => isStd(n, op)))) {
    return dynamic && { fp32: dynamic.graph, act: new Map(), grids: dynamic.grids, dynamic: dynamic.layers };
  }
  const graph = codeOpsOnValues(expandQOperators(start));
  const outputs = new Set(graph.outputs.map((o) => o.name));
  const initializers = new Map(graph.initializers);
  const removed = new Set<Node>();
  const rename = new Map<string, string>(); // a removed DequantizeLinear's output -> the tensor it stood for
  const act = new Map<string, ActivationParams>();
  const grids = new Map<string, Grid>(dynamic?.grids);
  for (const n of graph.nodes) {
    if (!isStd(n, 'DequantizeLinear') || outputs.has(n.outputs[0]) || !graph.initializers.has(n.inputs[0])) continue;
    const c = dequantizeConstant(graph, n);
    if (!c) continue;
    initializers.set(c.name, c);
    removed.add(n);
    // Symmetric int8 codes (zero points 0): the weights lie on a grid of the model's steps.
    const q = graph.initializers.get(n.inputs[0]);
    const z = n.inputs[2] ? graph.initializers.get(n.inputs[2]) : undefined;
    if (q?.dtype === 'int8' && (!z || toNumberArray(z.data).every((v) => v === 0))) {
      const axis = n.attributes.axis?.type === 'int' ? (n.attributes.axis.value + q.dims.length) % q.dims.length : 1;
      grids.set(c.name, { steps: toNumberArray((graph.initializers.get(n.inputs[1]) as ConstantTensor).data), axis });
    }
  }
  const readers = consumersByTensor(graph.nodes);
  const producers = producersByTensor(graph.nodes);
  const graphInputs = new Set(graph.inputs.map((i) => i.name));
  const used = usedNames(graph);
  const clamped = new Map<string, string>(); // a tensor -> its implied ReLU's output
  const added = new Map<Node, Node>(); // a QuantizeLinear -> the Clip inserted where it stands
  for (const q of graph.nodes) {
    if (!isStd(q, 'QuantizeLinear')) continue;
    const p = scalarParams(graph, q);
    if (!p) continue;
    const x = q.inputs[0];
    const same = (d: Node): boolean => {
      const dp = isStd(d, 'DequantizeLinear') && d.inputs[0] === q.outputs[0] ? scalarParams(graph, d) : undefined;
      return !!dp && dp.scale === p.scale && dp.zeroPoint === p.zeroPoint && !outputs.has(d.outputs[0]);
    };
    const dqs = (readers.get(q.outputs[0]) ?? []).filter(same);
    if (dqs.length === 0) continue;
    const lo = (0 - p.zeroPoint) * p.scale, hi = (255 - p.zeroPoint) * p.scale;
    // A pair starting at 0 after a producer that is no ReLU stands for one: onnxruntime's
    // quantizer and its QOperator form drop a Relu / Clip whose range the quantization clamps to
    // anyway. Readers that are not quantized layers (a residual Add, a pool) must still see it.
    let v = x;
    if (p.zeroPoint === 0 && !graphInputs.has(x) && !clampsAtZero(graph, producers.get(x), producers)) {
      v = clamped.get(x) ?? freshName(used, `${x}/implied_relu`);
      if (!clamped.has(x)) {
        clamped.set(x, v);
        added.set(q, clipNode(graph, used, initializers, x, v, hi));
      }
    }
    for (const d of dqs) {
      rename.set(d.outputs[0], v);
      removed.add(d);
    }
    if (dqs.length === (readers.get(q.outputs[0]) ?? []).length && !outputs.has(q.outputs[0])) removed.add(q);
    if (!act.has(v)) act.set(v, { scale: p.scale, zeroPoint: p.zeroPoint, bits: 8, lo, hi, unsigned: p.zeroPoint === 0 });
  }
  if (act.size === 0 && !dynamic) return undefined;
  const resolve = (v: string): string => {
    let r = v;
    while (rename.has(r)) r = rename.get(r) as string;
    return r;
  };
  const nodes = graph.nodes
    .flatMap((n) => (added.has(n) ? [added.get(n) as Node, n] : [n]))
    .filter((n) => !removed.has(n))
    .map((n) => ({ ...n, inputs: n.inputs.map((x) => (x ? resolve(x) : x)) }));
  const valueInfo = new Map(graph.valueInfo);
  for (const n of removed) for (const o of n.outputs) if (!initializers.has(o)) valueInfo.delete(o);
  const read = new Set(nodes.flatMap((n) => n.inputs));
  for (const name of [...initializers.keys()]) if (!read.has(name)) initializers.delete(name);
  return { fp32: { ...graph, nodes, initializers, valueInfo }, act, grids, dynamic: dynamic?.layers ?? new Set() };
}

/** The graph with its QDQ structure read and its layers quantized, or undefined when it has none. */
export function importQdq(original: Graph): Graph | undefined {
  const qdq = readQdq(original);
  if (!qdq) return undefined;
  const { act, grids, dynamic } = qdq;
  const fp32 = optimizeGraph(qdq.fp32);
  // The layers whose input carries the model's parameters, or that it quantizes per run, on
  // int8 weights.
  const rewrites = new Map<string, RewrittenLayer>();
  for (const layer of findLayers(fp32)) {
    const a = act.get(layer.node.inputs[0]) ?? (dynamic.has(layer.node.name) ? 'dynamic' : undefined);
    if (!a) continue;
    const r = layer.kind === 'conv' ? layer.node.inputs[3] : undefined;
    const weights = weightsOnGrid(layer, grids.get(layer.node.inputs[1]));
    rewrites.set(layer.node.name, rewriteLayer(layer, { bits: 8 }, a, { residual: r ? act.get(r) : undefined, weights }));
  }
  if (rewrites.size === 0) return undefined;
  return applyRewrites(fp32, rewrites);
}
