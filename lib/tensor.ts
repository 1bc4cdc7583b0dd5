// Tensors in the style of onnxruntime-node: new Tensor(type, data, dims). The data is a typed
// array held by reference (no copy), so it goes to native code without copying either.
import { TernionError, describe, invalidArgument } from './errors';
import type { FromImageOptions, ImageInput } from './image';

export type TensorType = 'float32' | 'float16' | 'int8' | 'uint8' | 'int32' | 'int64' | 'bool';

/**
 * The typed array that backs each tensor type. `bool` is one byte per element, 0 or 1;
 * `float16` holds IEEE half-precision bit patterns, as onnxruntime-node's float16 tensors do.
 */
export interface DataTypeMap {
  float32: Float32Array;
  float16: Uint16Array;
  int8: Int8Array;
  uint8: Uint8Array;
  int32: Int32Array;
  int64: BigInt64Array;
  bool: Uint8Array;
}

export type TensorData = DataTypeMap[TensorType];

const ARRAY_OF: { [T in TensorType]: { new (n: number): DataTypeMap[T]; name: string } } = {
  float32: Float32Array,
  float16: Uint16Array,
  int8: Int8Array,
  uint8: Uint8Array,
  int32: Int32Array,
  int64: BigInt64Array,
  bool: Uint8Array,
};

export const TENSOR_TYPES = Object.keys(ARRAY_OF) as TensorType[];

/** Largest element count a tensor may hold (keeps products of dims exact in doubles). */
export const MAX_TENSOR_ELEMENTS = 2 ** 40;

/** Checks dims and returns their product; names the offending dim in the error. */
export function checkDims(dims: unknown, name = 'dims'): number {
  if (!Array.isArray(dims)) throw invalidArgument('an array of non-negative integers', name, dims);
  let size = 1;
  dims.forEach((d, i) => {
    if (typeof d !== 'number' || !Number.isInteger(d) || d < 0) {
      throw new TernionError('ERR_SHAPE_MISMATCH', `Expected a non-negative integer for ${name}[${i}] but received ${describe(d)}`);
    }
    size *= d;
    if (size > MAX_TENSOR_ELEMENTS) {
      throw new TernionError('ERR_SHAPE_MISMATCH', `${name} [${dims.join(', ')}] describe more than 2^40 elements`);
    }
  });
  return size;
}

export class Tensor<T extends TensorType = TensorType> {
  readonly type: T;
  readonly data: DataTypeMap[T];
  readonly dims: readonly number[];
  readonly size: number;

  /** Decodes a JPEG/PNG/... (path or bytes) with the optional `sharp` into float32 [1, C, H, W]: lib/image.ts. */
  declare static fromImage: (image: ImageInput, options?: FromImageOptions) => Promise<Tensor<'float32'>>;

  /**
   * new Tensor('float32', data, [1, 1, 28, 28]); data may be a typed array of the type's class
   * (held, not copied) or a plain array of numbers (booleans for bool; copied). Dims default to
   * [data.length]. As in onnxruntime-node, the type may be left out and read from a typed array
   * (new Tensor(Float32Array.from(...), dims); a Uint8ClampedArray, copied, is uint8) or a
   * boolean array (bool).
   */
  constructor(type: T, data: DataTypeMap[T] | readonly number[] | readonly bigint[] | readonly boolean[], dims?: readonly number[]);
  constructor(data: DataTypeMap[T] | Uint8ClampedArray | readonly boolean[], dims?: readonly number[]);
  constructor(...args: unknown[]) {
    let [type, data, dims] = args as [T, DataTypeMap[T] | readonly (number | bigint | boolean)[], readonly number[] | undefined];
    if (typeof args[0] !== 'string') [type, data, dims] = [inferType(args[0]) as T, ...(args as [never, readonly number[] | undefined])];
    if (type === 'uint8' && data instanceof Uint8ClampedArray) data = Uint8Array.from(data) as DataTypeMap[T];
    if (typeof type !== 'string' || !(type in ARRAY_OF)) {
      throw new TernionError('ERR_DTYPE', `Expected one of ${TENSOR_TYPES.join(', ')} for type but received ${describe(type)}`);
    }
    const Ctor = ARRAY_OF[type];
    let array: DataTypeMap[T];
    if (Array.isArray(data)) {
      array = Tensor.fromArray(type, data) as DataTypeMap[T];
    } else if (ArrayBuffer.isView(data) && data.constructor === Ctor) {
      array = data as DataTypeMap[T];
    } else {
      throw new TernionError('ERR_DTYPE', `Expected a ${Ctor.name} or an array for the data of a ${type} tensor but received ${describe(data)}`);
    }
    const size = checkDims(dims === undefined ? [array.length] : dims);
    const shape = dims === undefined ? [array.length] : [...dims];
    if (size !== array.length) {
      throw new TernionError('ERR_SHAPE_MISMATCH', `dims [${shape.join(', ')}] hold ${size} elements but the data has ${array.length}`);
    }
    if (type === 'bool') {
      const bad = (array as Uint8Array).findIndex((v) => v > 1);
      if (bad >= 0) throw new TernionError('ERR_INVALID_ARGUMENT', `bool tensor data[${bad}] is ${(array as Uint8Array)[bad]}, expected 0 or 1`);
    }
    this.type = type;
    this.data = array;
    this.dims = Object.freeze(shape);
    this.size = size;
  }

  private static fromArray(type: TensorType, values: readonly (number | bigint | boolean)[]): TensorData {
    const out = new ARRAY_OF[type](values.length);
    values.forEach((v, i) => {
      if (type === 'bool' && typeof v === 'boolean') {
        out[i] = v ? 1 : 0;
      } else if (type === 'int64') {
        if (typeof v !== 'bigint' && !(typeof v === 'number' && Number.isSafeInteger(v))) {
          throw new TernionError('ERR_DTYPE', `Expected a bigint or safe integer for data[${i}] of an int64 tensor but received ${describe(v)}`);
        }
        (out as BigInt64Array)[i] = BigInt(v);
      } else {
        if (typeof v !== 'number') throw new TernionError('ERR_DTYPE', `Expected a number for data[${i}] of a ${type} tensor but received ${describe(v)}`);
        (out as Float32Array)[i] = v;
      }
    });
    return out;
  }

  /** A tensor of the same data with other dims (same element count); no copy. */
  reshape(dims: readonly number[]): Tensor<T> {
    return new Tensor(this.type, this.data, dims);
  }

  /** Where the data lives: always the CPU (onnxruntime-node's tensors may be on a GPU). */
  get location(): 'cpu' {
    return 'cpu';
  }

  /** The data, as onnxruntime-node's getData() resolves it for a CPU tensor. */
  async getData(): Promise<DataTypeMap[T]> {
    return this.data;
  }

  /** Nothing to free (the data is a JavaScript typed array); kept for onnxruntime-node's API. */
  dispose(): void {}
}

/** The tensor type onnxruntime-node reads from data given without one. */
function inferType(data: unknown): TensorType {
  if (Array.isArray(data)) {
    if (data.length > 0 && typeof data[0] === 'boolean') return 'bool';
    throw new TernionError('ERR_DTYPE', `A tensor type cannot be read from ${describe(data)}: give it, as in new Tensor('float32', data, dims) (only typed arrays and boolean arrays say their type)`);
  }
  if (data instanceof Uint8ClampedArray) return 'uint8';
  const named = (['float32', 'int8', 'uint8', 'int32', 'int64'] as const).find((t) => ArrayBuffer.isView(data) && data.constructor === ARRAY_OF[t]);
  if (named) return named;
  const hint = data instanceof Uint16Array ? " (onnxruntime reads a Uint16Array as uint16; for float16 bit patterns write new Tensor('float16', data, dims))" : '';
  throw new TernionError('ERR_DTYPE', `A tensor of ${describe(data)} is of a type ternion does not hold${hint}; its types: ${TENSOR_TYPES.join(', ')}`);
}
