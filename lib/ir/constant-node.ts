// The tensor a Constant node produces, from whichever of its value attributes is set.

import { TernionError } from '../errors';
import type { ConstantTensor, Node } from './types';

/** Constant's value attributes: `value` (opset 1), the typed shortcuts (opset 12). */
export function constantNodeTensor(node: Node): ConstantTensor {
  const name = node.outputs[0] ?? node.name;
  const set = Object.keys(node.attributes);
  if (set.length !== 1) {
    throw new TernionError('ERR_MODEL_FORMAT', `Constant node "${node.name}" must have exactly one value attribute but has [${set.join(', ')}]`);
  }
  const attribute = node.attributes[set[0]];
  switch (`${set[0]}:${attribute.type}`) {
    case 'value:tensor':
      return { ...(attribute.value as ConstantTensor), name };
    case 'value_float:float':
      return { name, dtype: 'float32', dims: [], data: Float32Array.of(attribute.value as number) };
    case 'value_floats:floats': {
      const values = attribute.value as readonly number[];
      return { name, dtype: 'float32', dims: [values.length], data: Float32Array.from(values) };
    }
    case 'value_int:int':
      return { name, dtype: 'int64', dims: [], data: BigInt64Array.of(BigInt(attribute.value as number)) };
    case 'value_ints:ints': {
      const values = attribute.value as readonly number[];
      return { name, dtype: 'int64', dims: [values.length], data: BigInt64Array.from(values, (v) => BigInt(v)) };
    }
    default:
      throw new TernionError(
        'ERR_UNSUPPORTED_OP',
        `Constant node "${node.name}" uses value attribute "${set[0]}" of type ${attribute.type}; ternion supports value, value_float(s) and value_int(s)`,
      );
  }
}
