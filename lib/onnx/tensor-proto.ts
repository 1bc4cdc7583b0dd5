// TensorProto -> ConstantTensor, for initializers, Constant values, tensor attributes and the
// .pb files of ONNX test data. Sizes are checked against the bytes actually present before
// anything is allocated, so a corrupt dims field cannot make us allocate 2^40 elements.

import * as os from 'os';
import { TernionError } from '../errors';
import { createTensorData, isStoredDataType } from '../ir/dtype';
import type { StoredDataType, TensorData } from '../ir/dtype';
import type { ConstantTensor } from '../ir/types';
import { onnxBytesPerElement, onnxElementType, onnxElementTypeName } from './element-types';
import { readExternalData } from './external-data';
import { widenHalfFloats } from './half-float';
import type { Int64, TensorProtoMessage } from './proto';
import { hasField, int64ToBigInt, int64ToNumber, TensorProtoType } from './proto';

/** TensorProto.DataLocation.EXTERNAL */
const DATA_LOCATION_EXTERNAL = 1;

export interface TensorDecodeOptions {
  /** Directory that external data locations are relative to. */
  basePath?: string;
  /** What the tensor is, for messages: 'initializer "w"', 'attribute "value" of node "c"'. */
  description?: string;
}

function formatError(message: string): TernionError {
  return new TernionError('ERR_MODEL_FORMAT', message);
}

/** dims as numbers, rejecting negative or absurd values, and their product. */
function readDims(dims: readonly Int64[], what: string): { dims: number[]; count: number } {
  const out: number[] = [];
  let count = 1;
  for (const raw of dims) {
    const dim = int64ToNumber(raw);
    if (!Number.isSafeInteger(dim) || dim < 0) throw formatError(`The ${what} has an invalid dim ${String(raw)} in [${dims.map(String).join(',')}]`);
    out.push(dim);
    count *= dim;
  }
  if (!Number.isSafeInteger(count)) throw formatError(`The ${what} has dims [${out.join(',')}] whose element count overflows`);
  return { dims: out, count };
}

function assertLittleEndianHost(): void {
  // ONNX raw_data is little-endian; so is every CPU ternion ships kernels for.
  if (os.endianness() !== 'LE') throw new TernionError('ERR_INTERNAL', 'ternion reads ONNX raw_data only on little-endian CPUs');
}

/** Reinterpret little-endian bytes as `dtype` elements; the copy also fixes any misalignment. */
function fromRawBytes(bytes: Uint8Array, dtype: StoredDataType | 'float16' | 'bfloat16', count: number): TensorData {
  assertLittleEndianHost();
  const aligned = new Uint8Array(bytes.byteLength);
  aligned.set(bytes);
  if (dtype === 'float16' || dtype === 'bfloat16') return widenHalfFloats(new Uint16Array(aligned.buffer, 0, count), dtype);
  const data = createTensorData(dtype, 0);
  const TypedArray = data.constructor as new (buffer: ArrayBuffer, offset: number, length: number) => TensorData;
  const result = new TypedArray(aligned.buffer, 0, count);
  if (dtype === 'bool') for (let i = 0; i < result.length; i++) result[i] = result[i] ? 1 : 0;
  return result;
}

/** The typed repeated field ONNX uses for each dtype when raw_data is absent. */
function fromTypedField(message: TensorProtoMessage, dtype: StoredDataType | 'float16' | 'bfloat16', count: number, what: string): TensorData {
  const field = (() => {
    switch (dtype) {
      case 'float32': return { name: 'float_data', values: message.float_data };
      case 'float64': return { name: 'double_data', values: message.double_data };
      case 'int64': return { name: 'int64_data', values: message.int64_data };
      case 'uint32': case 'uint64': return { name: 'uint64_data', values: message.uint64_data };
      default: return { name: 'int32_data', values: message.int32_data };
    }
  })();
  if (field.values.length !== count) {
    throw formatError(`The ${what} has ${field.values.length} values in ${field.name} but its dims need ${count}`);
  }
  switch (dtype) {
    case 'float16': case 'bfloat16':
      return widenHalfFloats(message.int32_data, dtype);
    case 'int64':
      return BigInt64Array.from(message.int64_data, int64ToBigInt);
    case 'uint64':
      return BigUint64Array.from(message.uint64_data, (v) => BigInt.asUintN(64, int64ToBigInt(v)));
    case 'uint32':
      return Uint32Array.from(message.uint64_data, int64ToNumber);
    case 'bool':
      return Uint8Array.from(message.int32_data, (v) => (v ? 1 : 0));
    default: {
      const data = createTensorData(dtype, count);
      (data as Exclude<TensorData, BigInt64Array | BigUint64Array>).set(field.values as number[]);
      return data;
    }
  }
}

/** Decode a TensorProto message. float16/bfloat16 become float32; strings and complex are rejected. */
export function decodeTensorMessage(message: TensorProtoMessage, options: TensorDecodeOptions = {}): ConstantTensor {
  const name = message.name;
  const what = options.description ?? `tensor "${name}"`;
  const dtype = onnxElementType(message.data_type);
  if (dtype === undefined || dtype === 'string' || dtype === 'complex64' || dtype === 'complex128') {
    throw new TernionError('ERR_DTYPE', `The ${what} has element type ${onnxElementTypeName(message.data_type)}, which ternion cannot load`);
  }
  const sourceType = dtype as StoredDataType | 'float16' | 'bfloat16';
  const storedType: StoredDataType = isStoredDataType(dtype) ? dtype : 'float32';
  if (message.segment) throw formatError(`The ${what} is segmented, which ternion does not support`);
  const { dims, count } = readDims(message.dims, what);
  const bytesPerElement = onnxBytesPerElement(dtype) as number;

  let data: TensorData;
  if (message.data_location === DATA_LOCATION_EXTERNAL) {
    const expectedBytes = count * bytesPerElement;
    data = fromRawBytes(readExternalData(message.external_data, name, expectedBytes, options.basePath), sourceType, count);
  } else if (hasField(message, 'raw_data')) {
    const expectedBytes = count * bytesPerElement;
    if (message.raw_data.byteLength !== expectedBytes) {
      throw formatError(`The ${what} has ${message.raw_data.byteLength} bytes of raw_data but dims [${dims.join(',')}] of ${dtype} need ${expectedBytes}`);
    }
    data = fromRawBytes(message.raw_data, sourceType, count);
  } else {
    data = fromTypedField(message, sourceType, count, what);
  }
  return { name, dtype: storedType, dims, data };
}

/** Decode a serialized TensorProto, such as the input_0.pb / output_0.pb files of ONNX test data. */
export function decodeTensorProto(bytes: Uint8Array, options: TensorDecodeOptions = {}): ConstantTensor {
  let message: TensorProtoMessage;
  try {
    message = TensorProtoType.decode(bytes) as unknown as TensorProtoMessage;
  } catch (error) {
    throw new TernionError('ERR_MODEL_FORMAT', `Not a valid ONNX TensorProto: ${(error as Error).message}`, { cause: error });
  }
  return decodeTensorMessage(message, options);
}
