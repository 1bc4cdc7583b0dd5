// Multiply-accumulates of a model per sample, from its shapes: the Conv, ConvTranspose, Gemm and
// MatMul layers (and their quantized forms), which hold nearly all of a CNN's or an MLP's
// arithmetic, and the recurrent LSTM, GRU and RNN layers, which hold a sequence model's. Used to
// turn latencies into GMAC/s and compare them with the peak-probe's limits.
import { inferShapes, type Graph, type Node, type Shape } from '../ir';
import { someNodeDeep, subgraphsOf } from '../ir/subgraphs';

export interface MacCount {
  /** Sum over the layers counted; null when a layer's shape is not static (beyond the batch dim). */
  perSample: number | null;
  layers: number;
  /** Layers whose MACs could not be counted (symbolic shapes), and control-flow nodes holding layers. */
  unknown: string[];
}

function shapeOf(graph: Graph, name: string): Shape | undefined {
  const init = graph.initializers.get(name);
  if (init) return init.dims;
  return graph.valueInfo.get(name)?.shape ?? graph.inputs.find((v) => v.name === name)?.shape;
}

/** Product of dims 1.. (dim 0 is the batch); null when one of them is symbolic. */
function perSampleSize(shape: Shape | undefined, from = 1): number | null {
  if (!shape) return null;
  let n = 1;
  for (const d of shape.slice(from)) {
    if (typeof d !== 'number') return null;
    n *= d;
  }
  return n;
}

/**
 * LSTM / GRU / RNN, per sequence: each step and direction multiplies the input by W^T and the
 * state by R^T, input_size + hidden_size MACs for each of the gates * hidden_size rows.
 */
function recurrentMacs(graph: Graph, node: Node): number | null {
  const x = shapeOf(graph, node.inputs[0]), w = shapeOf(graph, node.inputs[1]), r = shapeOf(graph, node.inputs[2]);
  if (!x || !w || !r || x.length !== 3 || w.length !== 3 || r.length !== 3) return null;
  const seq = x[node.attributes.layout?.value === 1 ? 1 : 0];
  const [directions, rows, input] = w;
  const hidden = r[2];
  const dims = [seq, directions, rows, input, hidden];
  if (!dims.every((d) => typeof d === 'number')) return null;
  return (seq as number) * (directions as number) * (rows as number) * ((input as number) + (hidden as number));
}

function layerMacs(graph: Graph, node: Node): number | null {
  if (RECURRENT.has(node.opType)) return recurrentMacs(graph, node);
  const out = shapeOf(graph, node.outputs[0]);
  const outPerSample = perSampleSize(out);
  if (outPerSample === null) return null;
  if (node.opType === 'Conv' || node.opType === 'ConvTranspose' || node.opType === 'QLinearConv' || node.opType === 'ConvInteger') {
    // Each output element of Conv takes (C_in / group) x kernel MACs: the weight's dims 1...
    const w = shapeOf(graph, node.inputs[node.opType === 'QLinearConv' ? 3 : 1]);
    const perOutput = perSampleSize(w);
    if (perOutput === null || !w) return null;
    if (node.opType !== 'ConvTranspose') return outPerSample * perOutput;
    // ConvTranspose: each input element scatters into C_out / group x kernel outputs.
    const x = perSampleSize(shapeOf(graph, node.inputs[0]));
    return x === null ? null : x * perOutput;
  }
  // Gemm / MatMul (and their integer forms): each output element is a dot product of length K (A's last dim).
  const a = shapeOf(graph, node.inputs[0]);
  if (!a || a.length === 0) return null;
  const transA = node.opType === 'Gemm' && node.attributes.transA?.value === 1;
  const k = transA ? a[0] : a[a.length - 1];
  return typeof k === 'number' ? outPerSample * k : null;
}

// With the quantized forms of a QOperator or dynamically quantized model.
const RECURRENT = new Set(['LSTM', 'GRU', 'RNN']);
const LAYERS = new Set(['Conv', 'ConvTranspose', 'Gemm', 'MatMul', 'QLinearConv', 'ConvInteger', 'QLinearMatMul', 'MatMulInteger', ...RECURRENT]);

/** MACs per sample of a graph (as loadOnnxModel returns it; its shapes are inferred here). */
export function countMacs(loaded: Graph): MacCount {
  const graph = inferShapes(loaded);
  let total = 0, layers = 0;
  const unknown: string[] = [];
  for (const node of graph.nodes) {
    // Layers inside an If / Loop / Scan run as often as the data decides: not counted statically.
    if (subgraphsOf(node).some(([, sub]) => someNodeDeep(sub, (n) => LAYERS.has(n.opType)))) unknown.push(node.name || node.outputs[0]);
    if (!LAYERS.has(node.opType)) continue;
    layers++;
    const m = layerMacs(graph, node);
    if (m === null) unknown.push(node.name || node.outputs[0]);
    else total += m;
  }
  return { perSample: unknown.length ? null : total, layers, unknown };
}
