// Identity and inference-mode Dropout removal: consumers read the input directly. When the
// removed node's output is a graph output, the producer of its input is renamed instead, so graph
// output names never change.

import { graphOutputNames, renameInputs } from '../graph-utils';
import type { Graph, Node } from '../types';

function isPassThrough(node: Node, graph: Graph, outputs: ReadonlySet<string>): boolean {
  if (node.domain !== '') return false;
  if (node.opType === 'Identity') return true;
  if (node.opType !== 'Dropout') return false;
  // Dropout is the identity at inference; from opset 12 training_mode is an input (absent or
  // constant false), before that is_test / no training flag at all.
  const trainingMode = node.inputs[2];
  if (trainingMode !== undefined && trainingMode !== '') {
    const flag = graph.initializers.get(trainingMode);
    if (flag === undefined || flag.data[0]) return false;
  }
  const mask = node.outputs[1];
  return mask === undefined || mask === '' || (!outputs.has(mask) && !graph.nodes.some((n) => n.inputs.includes(mask)));
}

export function removeIdentity(graph: Graph): Graph {
  const outputs = graphOutputNames(graph);
  const inputsAndConstants = new Set([...graph.inputs.map((i) => i.name), ...graph.initializers.keys()]);
  let nodes: readonly Node[] = graph.nodes;
  for (const original of graph.nodes) {
    if (!isPassThrough(original, graph, outputs)) continue;
    // Earlier removals may have renamed this node's input: work on its current version.
    const node = nodes.find((n) => n.name === original.name) as Node;
    const [source] = node.inputs;
    const [target] = node.outputs;
    const current = nodes;
    if (!outputs.has(target)) {
      // Consumers of the output read the input instead.
      const renames = new Map([[target, source]]);
      nodes = current.filter((n) => n !== node).map((n) => renameInputs(n, renames));
    } else if (!outputs.has(source) && !inputsAndConstants.has(source)) {
      // The output is a graph output: let the producer of the input write it under that name.
      const renames = new Map([[source, target]]);
      nodes = current
        .filter((n) => n !== node)
        .map((n) => {
          const renamed = renameInputs(n, renames);
          return renamed.outputs.includes(source) ? { ...renamed, outputs: renamed.outputs.map((o) => (o === source ? target : o)) } : renamed;
        });
    }
  }
  return { ...graph, nodes };
}
