// SiLU (x * sigmoid(x), "Swish": EfficientNet, YOLO) as one op, TernionSilu: one pass over the
// tensor instead of a Sigmoid writing s and a Mul reading x and s, and one buffer fewer. The
// native op computes x * (1 / (1 + e^-x)) with the Sigmoid's own arithmetic, then the product,
// so the result is bit-identical to the two ops. Only a Sigmoid read by nothing but that Mul
// (and not a graph output) is fused.

import { consumersByTensor, graphOutputNames } from '../graph-utils';
import type { Graph, Node, ValueType } from '../types';

export function fuseSilu(graph: Graph): Graph {
  const consumers = consumersByTensor(graph.nodes);
  const outputs = graphOutputNames(graph);
  const removed = new Set<Node>();
  const fused = new Map<Node, Node>();
  for (const n of graph.nodes) {
    if (n.opType !== 'Sigmoid' || n.domain !== '' || n.outputs.length !== 1) continue;
    const [x] = n.inputs;
    const [s] = n.outputs;
    const readers = consumers.get(s) ?? [];
    if (outputs.has(s) || readers.length !== 1) continue;
    const m = readers[0];
    if (m.opType !== 'Mul' || m.domain !== '' || m.inputs.length !== 2 || fused.has(m)) continue;
    if (!((m.inputs[0] === x && m.inputs[1] === s) || (m.inputs[0] === s && m.inputs[1] === x))) continue;
    removed.add(n);
    fused.set(m, { ...m, opType: 'TernionSilu', inputs: [x], attributes: {} });
  }
  if (removed.size === 0) return graph;
  const valueInfo = new Map<string, ValueType>(graph.valueInfo);
  for (const n of removed) valueInfo.delete(n.outputs[0]);
  const nodes = graph.nodes.filter((n) => !removed.has(n)).map((n) => fused.get(n) ?? n);
  return { ...graph, nodes, valueInfo };
}
