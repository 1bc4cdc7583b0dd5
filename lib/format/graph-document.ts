// The graph section of a .tern file: the IR graph as a JSON document, with tensor data replaced
// by references to tensor sections. This file defines the document and writes it; its reader is
// parse-graph-document.ts. Numbers that JSON cannot spell (NaN, +-Infinity, -0) in float
// attributes are written as the strings "NaN", "Infinity", "-Infinity", "-0".
import type { AttributeValue, ConstantTensor, Graph, StoredDataType, ValueInfo, ValueType } from '../ir';
import type { TernQuantizationInfo } from './types';

/** A tensor in the document: its type and shape here, its elements in section `section`. */
export interface TensorRef {
  name: string;
  dtype: StoredDataType;
  dims: number[];
  section: number;
}

export type JsonFloat = number | 'NaN' | 'Infinity' | '-Infinity' | '-0';

export type AttributeDoc =
  | { type: 'float'; value: JsonFloat }
  | { type: 'floats'; value: JsonFloat[] }
  | { type: 'int'; value: number }
  | { type: 'ints'; value: number[] }
  | { type: 'string'; value: string }
  | { type: 'strings'; value: string[] }
  | { type: 'tensor'; value: TensorRef }
  | { type: 'graph'; value: GraphBodyDoc };

export interface ValueDoc {
  name: string;
  dtype: string;
  shape?: (number | string)[];
}

export interface NodeDoc {
  name: string;
  opType: string;
  domain: string;
  inputs: string[];
  outputs: string[];
  attributes: Record<string, AttributeDoc>;
}

/** A graph's own parts; a subgraph (If branch, Loop / Scan body) is one of these, in its attribute. */
export interface GraphBodyDoc {
  name: string;
  inputs: ValueDoc[];
  outputs: ValueDoc[];
  initializers: TensorRef[];
  nodes: NodeDoc[];
  valueInfo: ValueDoc[];
}

export interface GraphDocument {
  producer: { name: string; version: string };
  graph: GraphBodyDoc & {
    opsets: Record<string, number>;
    metadata: { irVersion: number; producerName: string; producerVersion: string };
  };
  quantization: TernQuantizationInfo | null;
}

export function encodeFloat(x: number): JsonFloat {
  if (Number.isNaN(x)) return 'NaN';
  if (x === Infinity) return 'Infinity';
  if (x === -Infinity) return '-Infinity';
  if (Object.is(x, -0)) return '-0';
  return x;
}

function valueDoc(name: string, t: ValueType): ValueDoc {
  const v: ValueDoc = { name, dtype: t.dtype };
  if (t.shape !== undefined) v.shape = [...t.shape];
  return v;
}

/**
 * The document for `graph`, and the tensors whose data goes in sections: `tensors[i]` belongs in
 * section `firstSection + i` (in document order: a graph's initializers, then the tensors of its
 * nodes' attributes, subgraphs depth first where their attribute stands).
 */
export function graphDocument(
  graph: Graph,
  firstSection: number,
  producer: { name: string; version: string },
  quantization: TernQuantizationInfo | null,
): { document: GraphDocument; tensors: ConstantTensor[] } {
  const tensors: ConstantTensor[] = [];
  const ref = (t: ConstantTensor): TensorRef => {
    tensors.push(t);
    return { name: t.name, dtype: t.dtype, dims: [...t.dims], section: firstSection + tensors.length - 1 };
  };
  const attribute = (a: AttributeValue): AttributeDoc => {
    switch (a.type) {
      case 'float': return { type: 'float', value: encodeFloat(a.value) };
      case 'floats': return { type: 'floats', value: a.value.map(encodeFloat) };
      case 'int': return { type: 'int', value: a.value };
      case 'ints': return { type: 'ints', value: [...a.value] };
      case 'string': return { type: 'string', value: a.value };
      case 'strings': return { type: 'strings', value: [...a.value] };
      case 'tensor': return { type: 'tensor', value: ref(a.value) };
      case 'graph': return { type: 'graph', value: body(a.value) };
    }
  };
  const body = (g: Graph): GraphBodyDoc => ({
    name: g.name,
    inputs: g.inputs.map((v: ValueInfo) => valueDoc(v.name, v)),
    outputs: g.outputs.map((v: ValueInfo) => valueDoc(v.name, v)),
    initializers: [...g.initializers.values()].map(ref),
    nodes: g.nodes.map((n) => ({
      name: n.name,
      opType: n.opType,
      domain: n.domain,
      inputs: [...n.inputs],
      outputs: [...n.outputs],
      attributes: Object.fromEntries(Object.entries(n.attributes).map(([k, a]) => [k, attribute(a)])),
    })),
    valueInfo: [...g.valueInfo].map(([name, t]) => valueDoc(name, t)),
  });
  const document: GraphDocument = {
    producer,
    graph: {
      ...body(graph),
      opsets: { ...graph.opsets },
      metadata: { irVersion: graph.metadata.irVersion, producerName: graph.metadata.producerName, producerVersion: graph.metadata.producerVersion },
    },
    quantization,
  };
  return { document, tensors };
}
