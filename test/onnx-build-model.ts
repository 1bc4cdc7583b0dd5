// Hand-built ONNX models for tests, encoded with the same protobuf schema the loader uses.

import { ModelProtoType, TensorProtoType } from '../lib/onnx/proto';

export const FLOAT = 1;
export const INT64 = 7;
export const FLOAT16 = 10;

export interface TensorSpec {
  name: string;
  dataType?: number;
  dims: number[];
  floatData?: number[];
  int64Data?: number[];
  int32Data?: number[];
  rawData?: Uint8Array;
  externalData?: Record<string, string>;
}

export function tensorProto(spec: TensorSpec): Record<string, unknown> {
  const proto: Record<string, unknown> = { name: spec.name, data_type: spec.dataType ?? FLOAT, dims: spec.dims };
  if (spec.floatData) proto.float_data = spec.floatData;
  if (spec.int64Data) proto.int64_data = spec.int64Data;
  if (spec.int32Data) proto.int32_data = spec.int32Data;
  if (spec.rawData) proto.raw_data = spec.rawData;
  if (spec.externalData) {
    proto.data_location = 1;
    proto.external_data = Object.entries(spec.externalData).map(([key, value]) => ({ key, value }));
  }
  return proto;
}

export function valueInfo(name: string, dims: (number | string)[], elemType = FLOAT): Record<string, unknown> {
  return {
    name,
    type: {
      tensor_type: {
        elem_type: elemType,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d })) },
      },
    },
  };
}

export interface NodeSpec {
  op: string;
  inputs: string[];
  outputs: string[];
  name?: string;
  domain?: string;
  attributes?: Record<string, unknown>[];
}

export function nodeProto(spec: NodeSpec): Record<string, unknown> {
  return { op_type: spec.op, input: spec.inputs, output: spec.outputs, name: spec.name ?? '', domain: spec.domain ?? '', attribute: spec.attributes ?? [] };
}

/** A graph-valued attribute (an If branch, a Loop or Scan body). */
export function graphAttr(name: string, g: { nodes: NodeSpec[]; inputs?: Record<string, unknown>[]; outputs: Record<string, unknown>[]; initializers?: TensorSpec[] }) {
  return { name, type: 5, g: { name, node: g.nodes.map(nodeProto), input: g.inputs ?? [], output: g.outputs, initializer: (g.initializers ?? []).map(tensorProto) } };
}

export interface ModelSpec {
  nodes: NodeSpec[];
  inputs: Record<string, unknown>[];
  outputs: Record<string, unknown>[];
  initializers?: TensorSpec[];
  opset?: number;
  /** Further domains the model imports (com.microsoft for onnxruntime's own ops). */
  domains?: { domain: string; version: number }[];
  irVersion?: number;
}

export function encodeModel(spec: ModelSpec): Uint8Array {
  const model = {
    ir_version: spec.irVersion ?? 8,
    producer_name: 'ternion-tests',
    opset_import: [{ domain: '', version: spec.opset ?? 13 }, ...(spec.domains ?? [])],
    graph: {
      name: 'test',
      node: spec.nodes.map(nodeProto),
      input: spec.inputs,
      output: spec.outputs,
      initializer: (spec.initializers ?? []).map(tensorProto),
    },
  };
  const message = ModelProtoType.fromObject(model);
  const error = ModelProtoType.verify(message);
  if (error) throw new Error(`test model does not verify: ${error}`);
  return ModelProtoType.encode(message).finish();
}

export function encodeTensor(spec: TensorSpec): Uint8Array {
  return TensorProtoType.encode(TensorProtoType.fromObject(tensorProto(spec))).finish();
}

/** A small valid model: y = Relu(x + bias). */
export function tinyModelSpec(): ModelSpec {
  return {
    nodes: [
      { op: 'Add', inputs: ['x', 'bias'], outputs: ['sum'], name: 'add' },
      { op: 'Relu', inputs: ['sum'], outputs: ['y'], name: 'relu' },
    ],
    inputs: [valueInfo('x', ['N', 3])],
    outputs: [valueInfo('y', ['N', 3])],
    initializers: [{ name: 'bias', dims: [3], floatData: [1, 2, 3] }],
  };
}
