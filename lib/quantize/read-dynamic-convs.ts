// onnxruntime's dynamically quantized Conv layers (quantize_dynamic on a conv net; its default
// op types include Conv) are written as
//   (xq, xs, xz) = DynamicQuantizeLinear(x)
//   y = Mul(Cast(ConvInteger(xq, w, xz, w_zp), to = FLOAT), Mul(xs, w_scale))  [+ Add(Reshape(bias))]
// (operands of either Mul in either order). Read as a Conv of x on the dequantized weights
// (w - w_zp) * w_scale, with the ConvInteger's attributes, whose output is the Mul's: the bias
// Add then folds into it (fold-conv-bias-add.ts) and the layer runs on TernionQConv with dynamic
// activations, whose per-run range is DynamicQuantizeLinear's (min(0, min x) .. max(0, max x),
// 255 steps). The integer products are the same; the input's codes come from x * (1 / scale)
// where DynamicQuantizeLinear divides, so a value on a rounding tie may land one step apart.
// Otherwise ConvInteger runs as it is (the reference loop of quantized-linear.cc).

import { consumersByTensor, freshName, perChannelValues, producersByTensor, soleReader, usedNames } from '../ir/graph-utils';
import { scaledCast } from '../ir/passes/fuse-matmul-integer-scaled';
import { toNumberArray } from '../ir/dtype';
import type { ConstantTensor, Graph, Node } from '../ir';
import type { Grid } from './import-qdq';

export interface DynamicConvs {
  /** The graph with each recognized chain replaced by a Conv of fp32 weights. */
  graph: Graph;
  /** Names of those Conv nodes: quantize their input per run. */
  layers: Set<string>;
  /** Each dequantized weight's grid (when its codes minus zero points are int8 codes). */
  grids: Map<string, Grid>;
}

const isStd = (n: Node | undefined, op: string): n is Node => !!n && n.opType === op && n.domain === '';

/** ConvInteger's w_zero_point per output channel: one value, or a 1-D list of `channels`. */
function zeroPoints(t: ConstantTensor, channels: number): number[] | undefined {
  if (t.dims.length > 1 || (t.data.length !== 1 && t.data.length !== channels)) return undefined;
  const v = toNumberArray(t.data);
  return Array.from({ length: channels }, (_, k) => v[v.length === 1 ? 0 : k]);
}

export function readDynamicConvs(graph: Graph): DynamicConvs | undefined {
  if (!graph.nodes.some((n) => isStd(n, 'ConvInteger'))) return undefined;
  const consumers = consumersByTensor(graph.nodes);
  const producers = producersByTensor(graph.nodes);
  const used = usedNames(graph);
  const initializers = new Map(graph.initializers);
  const removed = new Set<Node>();
  const replaced = new Map<Node, Node>();
  const layers = new Set<string>();
  const grids = new Map<string, Grid>();
  for (const ci of graph.nodes) {
    if (!isStd(ci, 'ConvInteger') || ci.outputs.length !== 1) continue;
    const [xq, wName, xz, wzName] = ci.inputs;
    const dql = producers.get(xq);
    if (!isStd(dql, 'DynamicQuantizeLinear') || dql.outputs[0] !== xq || !xz || dql.outputs[2] !== xz) continue;
    const w = graph.initializers.get(wName);
    const wz = wzName ? graph.initializers.get(wzName) : undefined;
    if (!w || (w.dtype !== 'int8' && w.dtype !== 'uint8') || w.dims.length < 3 || (wzName && (!wz || wz.dtype !== w.dtype))) continue;
    const chain = scaledCast(graph, consumers, producers, ci.outputs[0]);
    if (!chain || !chain.scales.inputs.includes(dql.outputs[1])) continue;
    const { cast, mul, scales } = chain;
    const ws = graph.initializers.get(scales.inputs[0] === dql.outputs[1] ? scales.inputs[1] : scales.inputs[0]);
    const Co = w.dims[0], outRank = w.dims.length;
    const steps = ws?.dtype === 'float32' ? perChannelValues(ws, outRank, Co) : undefined;
    const zeros = wz ? zeroPoints(wz, Co) : new Array<number>(Co).fill(0);
    if (!steps || !zeros || steps.some((s) => !(s > 0) || !Number.isFinite(s))) continue;
    // The fp32 weights the integer layer stands for, and whether they lie on its grid.
    const codes = toNumberArray(w.data);
    const per = codes.length / Co;
    const data = new Float32Array(codes.length);
    let onGrid = true;
    for (let i = 0; i < codes.length; i++) {
      const k = Math.floor(i / per), c = codes[i] - zeros[k];
      if (c < -127 || c > 127) onGrid = false;
      data[i] = Math.fround(c * steps[k]);
    }
    const weights: ConstantTensor = { name: freshName(used, `${wName}/dequantized`), dtype: 'float32', dims: w.dims, data };
    initializers.set(weights.name, weights);
    if (onGrid) grids.set(weights.name, { steps: steps.every((s) => s === steps[0]) ? [steps[0]] : steps, axis: 0 });
    const name = freshName(used, `${ci.name || ci.outputs[0]}/conv`);
    layers.add(name);
    removed.add(ci).add(cast);
    if (soleReader(graph, consumers, scales.outputs[0]) === mul) removed.add(scales);
    replaced.set(mul, { name, opType: 'Conv', domain: '', inputs: [dql.inputs[0], weights.name], outputs: [...mul.outputs], attributes: { ...ci.attributes } });
  }
  if (layers.size === 0) return undefined;
  const valueInfo = new Map(graph.valueInfo);
  for (const n of removed) valueInfo.delete(n.outputs[0]);
  // Each Conv stands where its final Mul stood: x and everything else exist by then. The
  // DynamicQuantizeLinear goes with dead-node removal once no ConvInteger reads it.
  const nodes = graph.nodes.filter((n) => !removed.has(n)).map((n) => replaced.get(n) ?? n);
  return { graph: { ...graph, nodes, initializers, valueInfo }, layers, grids };
}
