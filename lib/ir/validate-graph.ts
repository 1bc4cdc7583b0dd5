// The Graph invariants of types.ts, checked once at load and available to tests of passes.

import { TernionError } from '../errors';
import { subgraphsOf } from './subgraphs';
import { topologicalSort } from './topo-sort';
import type { Graph } from './types';

/** Throws ERR_MODEL_FORMAT unless the graph keeps the invariants documented on Graph. */
export function validateGraph(graph: Graph): void {
  const available = new Set<string>();
  for (const input of graph.inputs) {
    if (graph.initializers.has(input.name)) throw new TernionError('ERR_MODEL_FORMAT', `Graph input "${input.name}" is also an initializer`);
    if (available.has(input.name)) throw new TernionError('ERR_MODEL_FORMAT', `Graph input "${input.name}" is listed twice`);
    available.add(input.name);
  }
  for (const name of graph.initializers.keys()) available.add(name);
  const sorted = topologicalSort(graph.nodes, available);
  if (sorted.some((node, i) => node !== graph.nodes[i])) {
    const first = graph.nodes.find((node, i) => node !== sorted[i]);
    throw new TernionError('ERR_MODEL_FORMAT', `Nodes are not in topological order (first out of place: "${first?.name}")`);
  }
  const produced = new Set(available);
  for (const node of graph.nodes) for (const output of node.outputs) if (output !== '') produced.add(output);
  for (const output of graph.outputs) {
    if (!produced.has(output.name)) throw new TernionError('ERR_MODEL_FORMAT', `Graph output "${output.name}" is not produced by any node, input or initializer`);
  }
  const names = new Set<string>();
  for (const node of graph.nodes) {
    if (names.has(node.name)) throw new TernionError('ERR_MODEL_FORMAT', `Two nodes are named "${node.name}"`);
    names.add(node.name);
  }
  // Subgraphs keep the same invariants; they read outer values only through their inputs.
  for (const node of graph.nodes) {
    for (const [name, sub] of subgraphsOf(node)) {
      try {
        validateGraph(sub);
      } catch (error) {
        if (!(error instanceof TernionError)) throw error;
        throw new TernionError(error.code, `In the ${name} of node "${node.name}" (${node.opType}): ${error.message}`, { cause: error });
      }
    }
  }
}
