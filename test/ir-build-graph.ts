// Hand-built IR graphs for tests of shape inference and passes.

import type { AttributeValue, ConstantTensor, Dim, Graph, Node, ValueInfo } from '../lib/ir/types';
import type { DataType } from '../lib/ir/dtype';

export function node(opType: string, inputs: string[], outputs: string[], attributes: Record<string, AttributeValue> = {}, name?: string): Node {
  return { name: name ?? `${opType}:${outputs[0]}`, opType, domain: '', inputs, outputs, attributes };
}

export const ints = (value: number[]): AttributeValue => ({ type: 'ints', value });
export const int = (value: number): AttributeValue => ({ type: 'int', value });
export const float = (value: number): AttributeValue => ({ type: 'float', value });
export const str = (value: string): AttributeValue => ({ type: 'string', value });

export function floatTensor(name: string, dims: number[], values?: number[]): ConstantTensor {
  const count = dims.reduce((a, b) => a * b, 1);
  return { name, dtype: 'float32', dims, data: Float32Array.from(values ?? Array.from({ length: count }, (_, i) => (i % 7) - 3 + i / 10)) };
}

export function int64Tensor(name: string, dims: number[], values: number[]): ConstantTensor {
  return { name, dtype: 'int64', dims, data: BigInt64Array.from(values, (v) => BigInt(v)) };
}

export function input(name: string, shape: Dim[], dtype: DataType = 'float32'): ValueInfo {
  return { name, dtype, shape };
}

export function graph(spec: { inputs: ValueInfo[]; outputs: (string | ValueInfo)[]; nodes: Node[]; initializers?: ConstantTensor[]; opset?: number }): Graph {
  return {
    name: 'test',
    opsets: { '': spec.opset ?? 13 },
    inputs: spec.inputs,
    outputs: spec.outputs.map((o) => (typeof o === 'string' ? { name: o, dtype: 'float32' } : o)),
    initializers: new Map((spec.initializers ?? []).map((t) => [t.name, t])),
    nodes: spec.nodes,
    valueInfo: new Map(),
    metadata: { irVersion: 8, producerName: 'test', producerVersion: '' },
  };
}
