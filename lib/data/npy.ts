// .npy files (NumPy's format) read with the maintained `npyjs` parser into ternion Tensors.
import { readFileSync } from 'node:fs';
import { TernionError } from '../errors';
import { Tensor } from '../tensor';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const NpyParser = require('npyjs');

interface Parsed { data: ArrayBufferView; shape: number[]; dtype: string }

const DTYPES: Record<string, 'float32' | 'uint8' | 'int8' | 'int32' | 'int64'> = {
  f4: 'float32', u1: 'uint8', i1: 'int8', i4: 'int32', i8: 'int64',
};

/** Parses the bytes of a .npy file (C order; float32, uint8, int8, int32 or int64). */
export function parseNpy(bytes: Uint8Array, what = 'npy data'): Tensor {
  let parsed: Parsed;
  try {
    const Ctor = NpyParser.default ?? NpyParser;
    parsed = new Ctor().parse(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  } catch (e) {
    throw new TernionError('ERR_MODEL_FORMAT', `${what} is not a valid .npy file: ${(e as Error).message}`, { cause: e });
  }
  const header = new TextDecoder().decode(bytes.subarray(0, Math.min(bytes.length, 256)));
  if (/'fortran_order':\s*True/.test(header)) throw new TernionError('ERR_MODEL_FORMAT', `${what} is in Fortran order; save it in C order`);
  const type = DTYPES[parsed.dtype];
  if (!type) throw new TernionError('ERR_DTYPE', `${what} holds ${parsed.dtype} data; ternion reads float32, uint8, int8, int32 and int64 .npy files`);
  return new Tensor(type, parsed.data as Float32Array, parsed.shape);
}

export function loadNpy(path: string): Tensor {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new TernionError('ERR_INVALID_ARGUMENT', `Cannot read ${path}: ${(e as Error).message}`, { cause: e });
  }
  return parseNpy(bytes, path);
}
