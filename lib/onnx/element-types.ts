// ONNX TensorProto.DataType numbers and how ternion stores each one.

import type { DataType } from '../ir/dtype';

/** ONNX's element type enum (onnx.proto TensorProto.DataType), number -> IR dtype. */
const ONNX_ELEMENT_TYPES: Readonly<Record<number, DataType>> = {
  1: 'float32',
  2: 'uint8',
  3: 'int8',
  4: 'uint16',
  5: 'int16',
  6: 'int32',
  7: 'int64',
  8: 'string',
  9: 'bool',
  10: 'float16',
  11: 'float64',
  12: 'uint32',
  13: 'uint64',
  14: 'complex64',
  15: 'complex128',
  16: 'bfloat16',
};

/** Names of types newer than our onnx.proto (float8, 4-bit), for messages. */
const NEWER_ELEMENT_TYPES: Readonly<Record<number, string>> = {
  17: 'FLOAT8E4M3FN',
  18: 'FLOAT8E4M3FNUZ',
  19: 'FLOAT8E5M2',
  20: 'FLOAT8E5M2FNUZ',
  21: 'UINT4',
  22: 'INT4',
};

export function onnxElementType(code: number): DataType | undefined {
  return ONNX_ELEMENT_TYPES[code];
}

export function onnxElementTypeName(code: number): string {
  return ONNX_ELEMENT_TYPES[code] ?? NEWER_ELEMENT_TYPES[code] ?? `unknown element type ${code}`;
}

/** Bytes per element in raw_data / external data (before float16 widening). */
export function onnxBytesPerElement(dtype: DataType): number | undefined {
  switch (dtype) {
    case 'int8': case 'uint8': case 'bool': return 1;
    case 'int16': case 'uint16': case 'float16': case 'bfloat16': return 2;
    case 'int32': case 'uint32': case 'float32': return 4;
    case 'int64': case 'uint64': case 'float64': case 'complex64': return 8;
    case 'complex128': return 16;
    case 'string': return undefined;
  }
}
