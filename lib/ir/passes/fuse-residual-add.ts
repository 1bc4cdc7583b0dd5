// Residual Add fused into a Conv epilogue: Add(conv_out, other) becomes Conv(x, w, b, other)
// with fused_residual = 1, computing conv + bias + other in one pass (a following Relu is then
// fused by fuseActivation). The fused node takes the Add's place in the order, where `other` is
// guaranteed to exist.

import { inferNodeTypes } from '../infer-shapes';
import { consumersByTensor, hasSingleConsumer, producersByTensor } from '../graph-utils';
import type { InferredValue } from '../shape-context';
import type { Graph, Node } from '../types';

function sameStaticShape(a: InferredValue | undefined, b: InferredValue | undefined): boolean {
  if (a?.shape === undefined || b?.shape === undefined || a.dtype !== b.dtype) return false;
  return a.shape.length === b.shape.length && a.shape.every((d, i) => d === b.shape?.[i]);
}

function isPlainConv(node: Node | undefined): node is Node {
  return node !== undefined && node.opType === 'Conv' && node.domain === '' && node.outputs.length === 1 &&
    node.inputs.length <= 3 && node.attributes.activation === undefined && node.attributes.fused_residual === undefined;
}

export function fuseResidualAdd(graph: Graph): Graph {
  const types = inferNodeTypes(graph);
  const producers = producersByTensor(graph.nodes);
  const consumers = consumersByTensor(graph.nodes);
  const replaced = new Map<Node, Node>();
  const removed = new Set<Node>();
  for (const add of graph.nodes) {
    if (add.opType !== 'Add' || add.domain !== '' || add.inputs.length !== 2 || add.inputs[0] === add.inputs[1]) continue;
    for (const side of [0, 1]) {
      const convOut = add.inputs[side];
      const other = add.inputs[1 - side];
      const conv = producers.get(convOut);
      if (!isPlainConv(conv) || removed.has(conv)) continue;
      if (!hasSingleConsumer(graph, consumers, convOut)) continue;
      // Same shape both sides: the epilogue adds elementwise, no broadcasting.
      if (!sameStaticShape(types.get(convOut), types.get(other)) || !sameStaticShape(types.get(convOut), types.get(add.outputs[0]))) continue;
      const inputs = [conv.inputs[0], conv.inputs[1], conv.inputs[2] ?? '', other];
      replaced.set(add, {
        ...conv,
        inputs,
        outputs: [add.outputs[0]],
        attributes: { ...conv.attributes, fused_residual: { type: 'int', value: 1 } },
      });
      removed.add(conv);
      break;
    }
  }
  const nodes = graph.nodes.filter((n) => !removed.has(n)).map((n) => replaced.get(n) ?? n);
  return { ...graph, nodes };
}
