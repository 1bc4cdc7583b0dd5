// Element types of IR tensors and the typed array that holds each one.
// One table per fact: DTYPE_INFO says how big an element is and which typed array stores it.

/**
 * Element type of an IR tensor. 'float16' and 'bfloat16' appear only in declared types of graph
 * inputs/outputs/values: their initializer data is widened to float32 on load (fp32 is what the
 * rest of ternion computes in). 'string' and the complex types never carry data in the IR.
 */
export type DataType =
  | 'float32'
  | 'float64'
  | 'float16'
  | 'bfloat16'
  | 'int8'
  | 'uint8'
  | 'int16'
  | 'uint16'
  | 'int32'
  | 'uint32'
  | 'int64'
  | 'uint64'
  | 'bool'
  | 'string'
  | 'complex64'
  | 'complex128';

/** The dtypes an IR tensor can hold data in, each with its typed array (bool is one byte, 0 or 1). */
export interface TensorDataMap {
  float32: Float32Array;
  float64: Float64Array;
  int8: Int8Array;
  uint8: Uint8Array;
  int16: Int16Array;
  uint16: Uint16Array;
  int32: Int32Array;
  uint32: Uint32Array;
  int64: BigInt64Array;
  uint64: BigUint64Array;
  bool: Uint8Array;
}

export type StoredDataType = keyof TensorDataMap;
export type TensorData = TensorDataMap[StoredDataType];

interface StoredTypeInfo {
  bytesPerElement: number;
  create: (length: number) => TensorData;
}

export const STORED_DTYPES: Readonly<Record<StoredDataType, StoredTypeInfo>> = {
  float32: { bytesPerElement: 4, create: (n) => new Float32Array(n) },
  float64: { bytesPerElement: 8, create: (n) => new Float64Array(n) },
  int8: { bytesPerElement: 1, create: (n) => new Int8Array(n) },
  uint8: { bytesPerElement: 1, create: (n) => new Uint8Array(n) },
  int16: { bytesPerElement: 2, create: (n) => new Int16Array(n) },
  uint16: { bytesPerElement: 2, create: (n) => new Uint16Array(n) },
  int32: { bytesPerElement: 4, create: (n) => new Int32Array(n) },
  uint32: { bytesPerElement: 4, create: (n) => new Uint32Array(n) },
  int64: { bytesPerElement: 8, create: (n) => new BigInt64Array(n) },
  uint64: { bytesPerElement: 8, create: (n) => new BigUint64Array(n) },
  bool: { bytesPerElement: 1, create: (n) => new Uint8Array(n) },
};

export function isStoredDataType(dtype: DataType): dtype is StoredDataType {
  return Object.prototype.hasOwnProperty.call(STORED_DTYPES, dtype);
}

export function createTensorData<T extends StoredDataType>(dtype: T, length: number): TensorDataMap[T] {
  return STORED_DTYPES[dtype].create(length) as TensorDataMap[T];
}

export function isFloatType(dtype: DataType): boolean {
  return dtype === 'float32' || dtype === 'float64' || dtype === 'float16' || dtype === 'bfloat16';
}

export function isIntegerType(dtype: DataType): boolean {
  return /^u?int(8|16|32|64)$/.test(dtype);
}

/** Read element i of any tensor data as a JS number (int64 values beyond 2^53 lose precision). */
export function elementAsNumber(data: TensorData, i: number): number {
  return Number(data[i]);
}

/** All elements as numbers; int64 values are clamped to ±2^53 so INT64_MAX-style sentinels stay ordered. */
export function toNumberArray(data: TensorData): number[] {
  const out = new Array<number>(data.length);
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    out[i] = typeof v === 'bigint' ? clampBigIntToSafeNumber(v) : v;
  }
  return out;
}

function clampBigIntToSafeNumber(v: bigint): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) return Number.MAX_SAFE_INTEGER;
  if (v < BigInt(Number.MIN_SAFE_INTEGER)) return Number.MIN_SAFE_INTEGER;
  return Number(v);
}

/** All elements as a plain array (bigint for 64-bit integer types), for messages and tests. */
export function tensorElements(data: TensorData): (number | bigint)[] {
  return Array.from(data as ArrayLike<number | bigint>);
}
