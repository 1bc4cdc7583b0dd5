// HardSwish as opset-13 exporters write it, Mul(x, HardSigmoid(x)) with alpha = 1/6 and
// beta = 0.5 (MobileNetV3), as the HardSwish op: one pass instead of two, one buffer fewer.
// ternion's HardSwish computes min(1, max(0, x * (1/6) + 0.5)) * x, the HardSigmoid's
// arithmetic with the same float constants then the same product, so the values are the same.

import { consumersByTensor, graphOutputNames } from '../graph-utils';
import type { Graph, Node, ValueType } from '../types';

const floatAttr = (n: Node, key: string, dflt: number): number => {
  const a = n.attributes[key];
  return a && a.type === 'float' ? a.value : dflt;
};

export function fuseHardSwish(graph: Graph): Graph {
  const consumers = consumersByTensor(graph.nodes);
  const outputs = graphOutputNames(graph);
  const removed = new Set<Node>();
  const fused = new Map<Node, Node>();
  for (const n of graph.nodes) {
    if (n.opType !== 'HardSigmoid' || n.domain !== '' || n.outputs.length !== 1) continue;
    // The float32 values of the native HardSwish's constants (attributes hold float32 values).
    if (Math.fround(floatAttr(n, 'alpha', 0.2)) !== Math.fround(1 / 6) || Math.fround(floatAttr(n, 'beta', 0.5)) !== 0.5) continue;
    const [x] = n.inputs;
    const [s] = n.outputs;
    const readers = consumers.get(s) ?? [];
    if (outputs.has(s) || readers.length !== 1) continue;
    const m = readers[0];
    if (m.opType !== 'Mul' || m.domain !== '' || m.inputs.length !== 2 || fused.has(m)) continue;
    if (!((m.inputs[0] === x && m.inputs[1] === s) || (m.inputs[0] === s && m.inputs[1] === x))) continue;
    removed.add(n);
    fused.set(m, { ...m, opType: 'HardSwish', inputs: [x], attributes: {} });
  }
  if (removed.size === 0) return graph;
  const valueInfo = new Map<string, ValueType>(graph.valueInfo);
  for (const n of removed) valueInfo.delete(n.outputs[0]);
  const nodes = graph.nodes.filter((n) => !removed.has(n)).map((n) => fused.get(n) ?? n);
  return { ...graph, nodes, valueInfo };
}
