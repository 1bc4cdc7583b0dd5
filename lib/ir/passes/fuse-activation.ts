// Activation fusion: Relu, Clip with constant bounds (ReLU6) and LeakyRelu applied by the
// Conv/Gemm/MatMul that produces their input, recorded as the `activation` and
// `activation_params` attributes (see FUSED_ATTRIBUTES in ops.ts). Saves a pass over memory.

import { floatAttribute } from '../attributes';
import { toNumberArray } from '../dtype';
import { consumersByTensor, hasSingleConsumer, producersByTensor } from '../graph-utils';
import type { FusedActivation } from '../ops';
import type { AttributeValue, Graph, Node } from '../types';

const FUSABLE_PRODUCERS: ReadonlySet<string> = new Set(['Conv', 'Gemm', 'MatMul']);

interface Activation {
  kind: FusedActivation;
  params: number[];
}

/** A constant scalar input of Clip (opset >= 11), or the default when absent. */
function clipBound(graph: Graph, name: string | undefined, fallback: number): number | undefined {
  if (name === undefined || name === '') return fallback;
  const tensor = graph.initializers.get(name);
  if (tensor === undefined || tensor.data.length !== 1) return undefined;
  return toNumberArray(tensor.data)[0];
}

/** A Clip's constant [min, max] in either form (attributes before opset 11, inputs since), or undefined. */
export function clipBounds(graph: Graph, node: Node): [number, number] | undefined {
  const opset = graph.opsets[''] ?? 0;
  const min = opset < 11 ? floatAttribute(node, 'min', -3.4028234663852886e38) : clipBound(graph, node.inputs[1], -Infinity);
  const max = opset < 11 ? floatAttribute(node, 'max', 3.4028234663852886e38) : clipBound(graph, node.inputs[2], Infinity);
  return min === undefined || max === undefined ? undefined : [min, max];
}

function readActivation(graph: Graph, node: Node): Activation | undefined {
  if (node.domain !== '') return undefined;
  switch (node.opType) {
    case 'Relu':
      return { kind: 'Relu', params: [] };
    case 'LeakyRelu':
      return { kind: 'LeakyRelu', params: [floatAttribute(node, 'alpha', 0.01)] };
    case 'Clip': {
      const bounds = clipBounds(graph, node);
      return bounds && { kind: 'Clip', params: bounds };
    }
    default:
      return undefined;
  }
}

export function fuseActivation(graph: Graph): Graph {
  const producers = producersByTensor(graph.nodes);
  const consumers = consumersByTensor(graph.nodes);
  const replaced = new Map<Node, Node>();
  const removed = new Set<Node>();
  for (const node of graph.nodes) {
    const activation = readActivation(graph, node);
    if (activation === undefined) continue;
    const producer = producers.get(node.inputs[0]);
    if (!producer || producer.domain !== '' || !FUSABLE_PRODUCERS.has(producer.opType) || replaced.has(producer)) continue;
    if (producer.attributes.activation !== undefined || producer.outputs.length !== 1) continue;
    if (!hasSingleConsumer(graph, consumers, node.inputs[0])) continue;
    const attributes: Record<string, AttributeValue> = {
      ...producer.attributes,
      activation: { type: 'string', value: activation.kind },
    };
    if (activation.params.length > 0) attributes.activation_params = { type: 'floats', value: activation.params };
    replaced.set(producer, { ...producer, attributes, outputs: [node.outputs[0]] });
    removed.add(node);
  }
  const nodes = graph.nodes.filter((n) => !removed.has(n)).map((n) => replaced.get(n) ?? n);
  return { ...graph, nodes };
}
