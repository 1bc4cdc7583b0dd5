// Dead-node removal: keep only nodes (and initializers) that graph outputs depend on.

import type { ConstantTensor, Graph, Node } from '../types';

export function removeDeadNodes(graph: Graph): Graph {
  const needed = new Set(graph.outputs.map((o) => o.name));
  const kept: Node[] = [];
  for (let i = graph.nodes.length - 1; i >= 0; i--) {
    const node = graph.nodes[i];
    if (!node.outputs.some((o) => needed.has(o))) continue;
    kept.push(node);
    for (const input of node.inputs) if (input !== '') needed.add(input);
  }
  kept.reverse();
  const initializers = new Map<string, ConstantTensor>();
  for (const [name, tensor] of graph.initializers) if (needed.has(name)) initializers.set(name, tensor);
  const valueInfo = new Map([...graph.valueInfo].filter(([name]) => needed.has(name)));
  return { ...graph, nodes: kept, initializers, valueInfo };
}
