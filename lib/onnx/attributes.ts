// AttributeProto -> AttributeValue. Graph-valued attributes are decoded by decode-graph.ts for the
// ops that take them (If, Loop, Scan); anywhere else they are refused.

import { TernionError } from '../errors';
import type { AttributeValue } from '../ir/types';
import type { AttributeProtoMessage, NodeProtoMessage } from './proto';
import { bytesToString, hasField, int64ToNumber } from './proto';
import { decodeTensorMessage } from './tensor-proto';
import type { TensorDecodeOptions } from './tensor-proto';

/** AttributeProto.AttributeType numbers from onnx.proto. */
const ATTRIBUTE_TYPE_NAMES: Readonly<Record<number, string>> = {
  1: 'FLOAT', 2: 'INT', 3: 'STRING', 4: 'TENSOR', 5: 'GRAPH', 6: 'FLOATS', 7: 'INTS', 8: 'STRINGS',
  9: 'TENSORS', 10: 'GRAPHS', 11: 'SPARSE_TENSOR', 12: 'SPARSE_TENSORS', 13: 'TYPE_PROTO', 14: 'TYPE_PROTOS',
};

/** IR version 1 models may leave `type` unset; the set field tells. */
function inferAttributeType(a: AttributeProtoMessage): number {
  if (hasField(a, 'f')) return 1;
  if (hasField(a, 'i')) return 2;
  if (hasField(a, 's')) return 3;
  if (a.t) return 4;
  if (a.g) return 5;
  if (a.floats.length) return 6;
  if (a.ints.length) return 7;
  if (a.strings.length) return 8;
  if (a.tensors.length) return 9;
  if (a.graphs.length) return 10;
  return 0;
}

export function decodeAttribute(
  attribute: AttributeProtoMessage,
  node: NodeProtoMessage,
  nodeName: string,
  options: TensorDecodeOptions,
): AttributeValue {
  const where = `attribute "${attribute.name}" of node "${nodeName}" (${node.op_type})`;
  if (attribute.ref_attr_name) {
    throw new TernionError('ERR_MODEL_FORMAT', `The ${where} refers to function attribute "${attribute.ref_attr_name}" outside a function`);
  }
  const type = attribute.type || inferAttributeType(attribute);
  switch (type) {
    case 1: return { type: 'float', value: attribute.f };
    case 2: return { type: 'int', value: int64ToNumber(attribute.i) };
    case 3: return { type: 'string', value: bytesToString(attribute.s) };
    case 4:
      if (!attribute.t) throw new TernionError('ERR_MODEL_FORMAT', `The ${where} is of type TENSOR but holds no tensor`);
      return { type: 'tensor', value: decodeTensorMessage(attribute.t, { ...options, description: `tensor of ${where}` }) };
    case 6: return { type: 'floats', value: [...attribute.floats] };
    case 7: return { type: 'ints', value: attribute.ints.map(int64ToNumber) };
    case 8: return { type: 'strings', value: attribute.strings.map(bytesToString) };
    case 5: case 10:
      throw new TernionError(
        'ERR_UNSUPPORTED_OP',
        `Node "${nodeName}" (${node.op_type}) has a subgraph in ${where}: ternion takes subgraphs only in If, Loop and Scan`,
      );
    default:
      throw new TernionError(
        'ERR_UNSUPPORTED_OP',
        `The ${where} has type ${ATTRIBUTE_TYPE_NAMES[type] ?? type}, which ternion does not support`,
      );
  }
}
