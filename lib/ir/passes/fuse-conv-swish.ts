// SiLU (TernionSilu) and HardSwish after a Conv (fp32, or quantized: TernionQConv) as the conv's
// activation: the conv applies them to its output while it is still in cache, instead of a
// separate pass over a tensor that is often larger than the cache (EfficientNet's expanded
// layers: 4.8 MB at 112 x 112 x 96). The conv runs the ops' own code on its finished fp32 output
// (bias and any fused residual added first), so the values are bit for bit the same; a quantized
// conv chained to the next one (channels-last.ts) then quantizes the activated values for it in
// the same store (YOLO- and EfficientNet-style nets: Conv-BN-SiLU throughout). Runs at session
// creation, after fuse-silu.ts and fuse-hard-swish.ts made the ops.

import { consumersByTensor, hasSingleConsumer, producersByTensor } from '../graph-utils';
import type { FusedActivation } from '../ops';
import type { Graph, Node } from '../types';

const GATES: ReadonlyMap<string, FusedActivation> = new Map([['TernionSilu', 'Silu'], ['HardSwish', 'HardSwish']]);
const CONVS: ReadonlySet<string> = new Set(['Conv', 'TernionQConv']);

export function fuseConvSwish(graph: Graph): Graph {
  const consumers = consumersByTensor(graph.nodes);
  const producers = producersByTensor(graph.nodes);
  const removed = new Set<Node>();
  const replaced = new Map<Node, Node>();
  for (const n of graph.nodes) {
    const kind = n.domain === '' && n.inputs.length === 1 && n.outputs.length === 1 ? GATES.get(n.opType) : undefined;
    if (!kind) continue;
    const v = n.inputs[0];
    const conv = producers.get(v);
    if (!conv || !CONVS.has(conv.opType) || conv.domain !== '' || conv.outputs.length !== 1 || replaced.has(conv)) continue;
    if (conv.attributes.activation !== undefined || conv.attributes.fused_activation !== undefined || !hasSingleConsumer(graph, consumers, v)) continue;
    replaced.set(conv, { ...conv, outputs: [n.outputs[0]], attributes: { ...conv.attributes, activation: { type: 'string', value: kind } } });
    removed.add(n);
  }
  if (removed.size === 0) return graph;
  // The gate's output is the conv's now; the conv's old output is gone.
  const valueInfo = new Map(graph.valueInfo);
  for (const n of removed) valueInfo.delete(n.inputs[0]);
  const nodes = graph.nodes.filter((n) => !removed.has(n)).map((n) => replaced.get(n) ?? n);
  return { ...graph, nodes, valueInfo };
}
