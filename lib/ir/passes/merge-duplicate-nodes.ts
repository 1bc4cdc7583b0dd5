// Common subexpressions: a node that repeats an earlier one (the same op, domain, inputs and
// attributes) computes the same tensors, so its readers read the earlier one's outputs and the
// repeat is dropped. Exporters and quantizers write such repeats: onnxruntime's dynamic
// quantization as written by some tools gives each of the Q, K and V projections its own
// DynamicQuantizeLinear of the same hidden states; attention masks and shape arithmetic are
// often computed once per layer. Every op ternion runs is a pure function of its inputs. Graph
// outputs keep their names: a repeat that writes one is kept.

import { graphOutputNames } from '../graph-utils';
import type { AttributeValue, Graph, Node } from '../types';

/** Subgraphs compare by identity: two nodes holding the same graph object are the same. */
const graphIds = new WeakMap<Graph, number>();
let nextGraphId = 0;

function attributeKey(value: AttributeValue): string {
  if (value.type === 'graph') {
    if (!graphIds.has(value.value)) graphIds.set(value.value, nextGraphId++);
    return `graph#${graphIds.get(value.value)}`;
  }
  if (value.type !== 'tensor') return JSON.stringify(value);
  const t = value.value;
  // Tensor attributes (Constant, ConstantOfShape's value) by content.
  return JSON.stringify({ dtype: t.dtype, dims: t.dims, data: Array.from(t.data as ArrayLike<number | bigint>, String) });
}

function nodeKey(node: Node): string {
  const attributes = Object.keys(node.attributes)
    .sort()
    .map((name) => `${name}=${attributeKey(node.attributes[name])}`);
  return `${node.domain}|${node.opType}|${node.inputs.join(',')}|${node.outputs.length}|${attributes.join(';')}`;
}

export function mergeDuplicateNodes(graph: Graph): Graph {
  const outputs = graphOutputNames(graph);
  const first = new Map<string, Node>();
  const rename = new Map<string, string>();
  const nodes: Node[] = [];
  for (const original of graph.nodes) {
    const node = original.inputs.some((i) => rename.has(i)) ? { ...original, inputs: original.inputs.map((i) => rename.get(i) ?? i) } : original;
    const key = nodeKey(node);
    const earlier = first.get(key);
    // A repeat merges when it writes no graph output and the earlier node writes every output
    // the repeat does (an optional output one of them left out stays apart).
    if (earlier && !node.outputs.some((o, i) => outputs.has(o) || (o !== '' && earlier.outputs[i] === ''))) {
      node.outputs.forEach((o, i) => {
        if (o !== '') rename.set(o, earlier.outputs[i]);
      });
      continue;
    }
    if (!earlier) first.set(key, node);
    nodes.push(node);
  }
  return rename.size === 0 ? graph : { ...graph, nodes };
}
