// What the chain fusions (fuse-silu.ts, fuse-hard-swish.ts, fuse-gelu.ts) share: removing the
// fused chain's nodes and their outputs' types, and the "x times a gate of x" pattern.

import { consumersByTensor, graphOutputNames } from '../graph-utils';
import type { Graph, Node, ValueType } from '../types';

/** The graph without `removed` (and their outputs' types), with `replaced` nodes swapped in place. */
export function applyFusions(graph: Graph, removed: ReadonlySet<Node>, replaced: ReadonlyMap<Node, Node>): Graph {
  if (removed.size === 0) return graph;
  const valueInfo = new Map<string, ValueType>(graph.valueInfo);
  for (const n of removed) valueInfo.delete(n.outputs[0]);
  const nodes = graph.nodes.filter((n) => !removed.has(n)).map((n) => replaced.get(n) ?? n);
  return { ...graph, nodes, valueInfo };
}

/**
 * Mul(x, gate(x)), operands in either order, as one node `opType` reading x and writing the
 * Mul's output: for each one-output node `isGate` accepts whose output only that Mul reads
 * (and is not a graph output).
 */
export function fuseSelfGatedMul(graph: Graph, isGate: (n: Node) => boolean, opType: string): Graph {
  const consumers = consumersByTensor(graph.nodes);
  const outputs = graphOutputNames(graph);
  const removed = new Set<Node>();
  const fused = new Map<Node, Node>();
  for (const n of graph.nodes) {
    if (n.domain !== '' || n.outputs.length !== 1 || !isGate(n)) continue;
    const [x] = n.inputs;
    const [s] = n.outputs;
    const readers = consumers.get(s) ?? [];
    if (outputs.has(s) || readers.length !== 1) continue;
    const m = readers[0];
    if (m.opType !== 'Mul' || m.domain !== '' || m.inputs.length !== 2 || fused.has(m)) continue;
    if (!((m.inputs[0] === x && m.inputs[1] === s) || (m.inputs[0] === s && m.inputs[1] === x))) continue;
    removed.add(n);
    fused.set(m, { ...m, opType, inputs: [x], attributes: {} });
  }
  return applyFusions(graph, removed, fused);
}
