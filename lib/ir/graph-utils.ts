// Small queries over a Graph that several passes share: who produces and who consumes a tensor,
// fresh names, renaming inputs.

import { toNumberArray } from './dtype';
import type { ConstantTensor, Graph, Node } from './types';

export function producersByTensor(nodes: readonly Node[]): Map<string, Node> {
  const producers = new Map<string, Node>();
  for (const node of nodes) for (const output of node.outputs) if (output !== '') producers.set(output, node);
  return producers;
}

/** Consumers of each tensor (a node reading a tensor twice is listed once). */
export function consumersByTensor(nodes: readonly Node[]): Map<string, Node[]> {
  const consumers = new Map<string, Node[]>();
  for (const node of nodes) {
    for (const input of new Set(node.inputs)) {
      if (input === '') continue;
      const list = consumers.get(input);
      if (list === undefined) consumers.set(input, [node]);
      else list.push(node);
    }
  }
  return consumers;
}

export function graphOutputNames(graph: Graph): Set<string> {
  return new Set(graph.outputs.map((o) => o.name));
}

/** Whether `tensor` feeds exactly one node and nothing else (not a graph output). */
export function hasSingleConsumer(graph: Graph, consumers: Map<string, Node[]>, tensor: string): boolean {
  return (consumers.get(tensor)?.length ?? 0) === 1 && !graph.outputs.some((o) => o.name === tensor);
}

/** Every tensor and node name in use, for making fresh ones. */
export function usedNames(graph: Graph): Set<string> {
  const names = new Set<string>([...graph.inputs.map((i) => i.name), ...graph.initializers.keys()]);
  for (const node of graph.nodes) {
    names.add(node.name);
    for (const name of [...node.inputs, ...node.outputs]) names.add(name);
  }
  return names;
}

/** `base`, or `base_1`, `base_2`, ... whichever is not yet used; records the choice. */
export function freshName(used: Set<string>, base: string): string {
  let name = base;
  for (let i = 1; used.has(name); i++) name = `${base}_${i}`;
  used.add(name);
  return name;
}

export function renameInputs(node: Node, renames: ReadonlyMap<string, string>): Node {
  if (!node.inputs.some((i) => renames.has(i))) return node;
  return { ...node, inputs: node.inputs.map((i) => renames.get(i) ?? i) };
}

/** The one node reading `tensor`, once, when nothing else reads it and it is not a graph output. */
export function soleReader(graph: Graph, consumers: Map<string, Node[]>, tensor: string): Node | undefined {
  const reader = hasSingleConsumer(graph, consumers, tensor) ? consumers.get(tensor)![0] : undefined;
  return reader && reader.inputs.filter((x) => x === tensor).length === 1 ? reader : undefined;
}

/**
 * A constant broadcast against a conv's output [N, C, spatial...] (rank outRank) as one value per
 * channel (`channels` of them): a single value, or dims that are all 1 but the channel axis
 * (right-aligned) holding C; undefined for any other shape.
 */
export function perChannelValues(t: ConstantTensor, outRank: number, channels: number): number[] | undefined {
  if (t.dims.length > outRank) return undefined;
  const channelAxis = t.dims.length - (outRank - 1);
  if (!t.dims.every((d, i) => d === 1 || (i === channelAxis && d === channels))) return undefined;
  const v = toNumberArray(t.data);
  return Array.from({ length: channels }, (_, k) => v[v.length === 1 ? 0 : k]);
}

/** A float32 initializer, or undefined if `name` is anything else. */
export function float32Initializer(graph: Graph, name: string | undefined): ConstantTensor | undefined {
  if (name === undefined || name === '') return undefined;
  const tensor = graph.initializers.get(name);
  return tensor?.dtype === 'float32' ? tensor : undefined;
}

/** A reduction's constant axes: its `axes` attribute, or (newer opsets) its constant axes input; undefined when neither. */
export function reduceAxes(graph: Graph, node: Node): number[] | undefined {
  const a = node.attributes.axes;
  if (a) return a.type === 'ints' ? [...a.value] : undefined;
  return constantInts(graph, node.inputs[1]);
}

/** A constant int64 / int32 input's values (Slice bounds, axes), or undefined for anything else. */
export function constantInts(graph: Graph, name: string | undefined): number[] | undefined {
  const c = name ? graph.initializers.get(name) : undefined;
  return c && (c.dtype === 'int64' || c.dtype === 'int32') ? Array.from(c.data as ArrayLike<number | bigint>, Number) : undefined;
}
