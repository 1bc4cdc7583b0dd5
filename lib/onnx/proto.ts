// The ONNX protobuf schema, loaded from its prebuilt JSON descriptor (no .proto parsing at run
// time), and TypeScript views of the decoded messages limited to the fields ternion reads.
// Field names keep the .proto's snake_case (the descriptor is generated with keepCase).

import * as protobuf from 'protobufjs/light';
import { onnxProtoDescriptor } from './onnx-proto';

/** protobufjs decodes int64 fields as Long objects (the `long` package is its dependency). */
export interface LongLike {
  readonly low: number;
  readonly high: number;
  readonly unsigned: boolean;
  toNumber(): number;
  toString(): string;
}
export type Int64 = number | LongLike;

export interface StringStringEntryProto {
  key: string;
  value: string;
}

export interface TensorProtoMessage {
  dims: Int64[];
  data_type: number;
  segment?: object | null;
  float_data: number[];
  int32_data: number[];
  string_data: Uint8Array[];
  int64_data: Int64[];
  name: string;
  raw_data: Uint8Array;
  external_data: StringStringEntryProto[];
  data_location: number;
  double_data: number[];
  uint64_data: Int64[];
}

export interface DimensionMessage {
  dim_value?: Int64;
  dim_param?: string;
  /** The oneof's virtual field: which of the two is set. */
  value?: 'dim_value' | 'dim_param';
}

export interface TypeProtoMessage {
  tensor_type?: { elem_type: number; shape?: { dim: DimensionMessage[] } | null } | null;
  value?: string;
}

export interface ValueInfoProtoMessage {
  name: string;
  type?: TypeProtoMessage | null;
}

export interface AttributeProtoMessage {
  name: string;
  ref_attr_name: string;
  type: number;
  f: number;
  i: Int64;
  s: Uint8Array;
  t?: TensorProtoMessage | null;
  g?: GraphProtoMessage | null;
  sparse_tensor?: object | null;
  tp?: object | null;
  floats: number[];
  ints: Int64[];
  strings: Uint8Array[];
  tensors: TensorProtoMessage[];
  graphs: GraphProtoMessage[];
  sparse_tensors: object[];
  type_protos: object[];
}

export interface NodeProtoMessage {
  input: string[];
  output: string[];
  name: string;
  op_type: string;
  domain: string;
  attribute: AttributeProtoMessage[];
}

export interface GraphProtoMessage {
  node: NodeProtoMessage[];
  name: string;
  initializer: TensorProtoMessage[];
  sparse_initializer: object[];
  input: ValueInfoProtoMessage[];
  output: ValueInfoProtoMessage[];
  value_info: ValueInfoProtoMessage[];
}

export interface OperatorSetIdMessage {
  domain: string;
  version: Int64;
}

export interface ModelProtoMessage {
  ir_version: Int64;
  opset_import: OperatorSetIdMessage[];
  producer_name: string;
  producer_version: string;
  graph?: GraphProtoMessage | null;
  functions: object[];
}

/** The schema root; exported so tests can encode hand-built models with the same schema. */
export const onnxRoot: protobuf.Root = protobuf.Root.fromJSON(onnxProtoDescriptor as protobuf.INamespace);
export const ModelProtoType: protobuf.Type = onnxRoot.lookupType('onnx.ModelProto');
export const TensorProtoType: protobuf.Type = onnxRoot.lookupType('onnx.TensorProto');

/** Whether a decoded message carries `field` (protobufjs keeps unset proto2 fields on the prototype). */
export function hasField(message: object, field: string): boolean {
  return Object.prototype.hasOwnProperty.call(message, field);
}

export function int64ToNumber(value: Int64): number {
  return typeof value === 'number' ? value : value.toNumber();
}

export function int64ToBigInt(value: Int64): bigint {
  if (typeof value === 'number') return BigInt(value);
  const bits = (BigInt(value.high >>> 0) << 32n) | BigInt(value.low >>> 0);
  return value.unsigned ? bits : BigInt.asIntN(64, bits);
}

const utf8 = new TextDecoder('utf-8');
export function bytesToString(bytes: Uint8Array): string {
  return utf8.decode(bytes);
}
