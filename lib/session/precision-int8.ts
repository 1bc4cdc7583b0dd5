// precision: 'int8' — every Conv / Gemm / MatMul with constant weights runs on the int8 kernels:
// weights symmetric per output channel (lib/quantize/weights), activations quantized to uint8
// per run from their range (dynamic), accumulation in int32, fp32 out of a fused epilogue.
// The baseline the ternary paths are compared with. Depthwise convs stay fp32 (fgq.md 2).
import type { Attributes, AttributeValue, ConstantTensor, Graph, Node } from '../ir';
import { quantizeWeights, transposeToOutputMajor } from '../quantize/weights';
import type { QuantizedWeights } from '../quantize/weights';

const int = (value: number): AttributeValue => ({ type: 'int', value });
const str = (value: string): AttributeValue => ({ type: 'string', value });

// Attributes the quantized ops take over unchanged from the fp32 node.
const KEEP = ['strides', 'pads', 'dilations', 'auto_pad', 'group', 'activation', 'activation_params'];

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

interface Replacement {
  node: Node;
  constants: ConstantTensor[];
}

function weightConstants(prefix: string, q: QuantizedWeights): ConstantTensor[] {
  if (q.form !== 'per-channel') throw new Error('int8 expected');
  return [
    { name: `${prefix}/codes`, dtype: 'int8', dims: [q.rows, q.K], data: q.codes },
    { name: `${prefix}/channel_scale`, dtype: 'float32', dims: [q.rows], data: q.channelScale },
  ];
}

function quantizeConv(graph: Graph, node: Node): Replacement | undefined {
  const w = constantF32(graph, node.inputs[1]);
  if (!w || w.dims.length < 3) return undefined;
  const group = intAttr(node, 'group', 1);
  if (w.dims[1] === 1 && group > 1) return undefined; // depthwise: stays fp32
  const q = quantizeWeights(w.data as Float32Array, w.dims, { bits: 8 });
  const prefix = `${node.name}/int8`;
  const attributes: Record<string, AttributeValue> = {};
  for (const k of KEEP) if (node.attributes[k]) attributes[k] = node.attributes[k];
  Object.assign(attributes, {
    kernel_shape: { type: 'ints', value: w.dims.slice(2) },
    weight_bits: int(8),
    form: str('per-channel'),
    in_channels: int(q.layout.inputChannels),
    padded_channels: int(q.layout.paddedInputChannels),
    act_mode: str('dynamic'),
  } satisfies Attributes);
  const c = weightConstants(prefix, q);
  return {
    node: { ...node, opType: 'TernionQConv', domain: '', inputs: [node.inputs[0], c[0].name, c[1].name, node.inputs[2] ?? '', node.inputs[3] ?? ''], attributes },
    constants: c,
  };
}

function quantizeGemm(graph: Graph, node: Node): Replacement | undefined {
  const isGemm = node.opType === 'Gemm';
  const b = constantF32(graph, node.inputs[1]);
  if (!b || b.dims.length !== 2) return undefined;
  if (isGemm && intAttr(node, 'transA', 0) !== 0) return undefined;
  const alpha = isGemm ? floatAttr(node, 'alpha', 1) : 1;
  const beta = isGemm ? floatAttr(node, 'beta', 1) : 1;
  // Output-major weights [N][K], with alpha folded in.
  let wData = b.data as Float32Array, wDims: [number, number] = [b.dims[0], b.dims[1]];
  if (!(isGemm && intAttr(node, 'transB', 0) === 1)) ({ weights: wData, dims: wDims } = transposeToOutputMajor(wData, wDims));
  if (alpha !== 1) wData = wData.map((v) => v * alpha);
  const N = wDims[0];
  // A bias that varies only along N folds into the epilogue; any other C stays fp32.
  let bias: ConstantTensor | undefined;
  const cName = isGemm ? node.inputs[2] ?? '' : '';
  if (cName) {
    const c = constantF32(graph, cName);
    const perColumn = c && c.data.length === N && (c.dims.length === 1 || (c.dims.length === 2 && c.dims[0] === 1));
    if (!c || !perColumn) return undefined;
    bias = { name: `${node.name}/int8/bias`, dtype: 'float32', dims: [N], data: (c.data as Float32Array).map((v) => v * beta) };
  }
  const q = quantizeWeights(wData, wDims, { bits: 8 });
  const c = weightConstants(`${node.name}/int8`, q);
  if (bias) c.push(bias);
  const attributes: Record<string, AttributeValue> = { weight_bits: int(8), form: str('per-channel'), act_mode: str('dynamic') };
  for (const k of ['activation', 'activation_params']) if (node.attributes[k]) attributes[k] = node.attributes[k];
  return {
    node: { ...node, opType: 'TernionQGemm', domain: '', inputs: [node.inputs[0], c[0].name, c[1].name, bias ? bias.name : ''], attributes },
    constants: c,
  };
}

/** The graph with its Conv/Gemm/MatMul layers on int8 kernels (dynamic activation ranges). */
export function quantizeGraphInt8(graph: Graph): Graph {
  const initializers = new Map(graph.initializers);
  const nodes = graph.nodes.map((node) => {
    if (node.domain !== '') return node;
    const r = node.opType === 'Conv' ? quantizeConv(graph, node) : node.opType === 'Gemm' || node.opType === 'MatMul' ? quantizeGemm(graph, node) : undefined;
    if (!r) return node;
    for (const c of r.constants) initializers.set(c.name, c);
    return r.node;
  });
  // Weights no node reads any more are dropped.
  const used = new Set(nodes.flatMap((n) => n.inputs));
  for (const o of graph.outputs) used.add(o.name);
  for (const name of [...initializers.keys()]) if (!used.has(name)) initializers.delete(name);
  return { ...graph, nodes, initializers };
}
