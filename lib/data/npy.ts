// .npy files (NumPy's format) read with the maintained `npyjs` parser into ternion Tensors, and
// written by a small writer of our own (format version 1.0, header padded to 64 bytes as NumPy
// does, so the data is aligned for memory mapping).
import { readFileSync, writeFileSync } from 'node:fs';
import { TernionError, invalidArgument } from '../errors';
import { Tensor, type TensorType } from '../tensor';

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
  if (!type) {
    const hint = parsed.dtype === 'f8' ? ' (float64: save it with x.astype(numpy.float32))' : '';
    throw new TernionError('ERR_DTYPE', `${what} holds ${parsed.dtype} data${hint}; ternion reads float32, uint8, int8, int32 and int64 .npy files`);
  }
  const count = parsed.shape.reduce((a, b) => a * b, 1);
  const length = (parsed.data as Float32Array).length;
  if (length < count) {
    throw new TernionError('ERR_MODEL_FORMAT', `${what} is truncated: shape [${parsed.shape.join(', ')}] needs ${count} values but the file holds ${length}`);
  }
  if (length > count) {
    throw new TernionError('ERR_MODEL_FORMAT', `${what} has ${length - count} values more than its shape [${parsed.shape.join(', ')}] describes`);
  }
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

const DESCR: Record<TensorType, string> = {
  float32: '<f4', float16: '<f2', int8: '|i1', uint8: '|u1', int32: '<i4', int64: '<i8', bool: '|b1',
};

/** The bytes of a .npy file (format 1.0, C order, little-endian) holding the tensor. */
export function formatNpy(tensor: Tensor): Uint8Array {
  if (!(tensor instanceof Tensor)) throw invalidArgument('a Tensor', 'tensor', tensor);
  if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) throw new TernionError('ERR_INTERNAL', 'formatNpy assumes a little-endian machine');
  const dims = tensor.dims;
  const shape = dims.length === 1 ? `(${dims[0]},)` : `(${dims.join(', ')})`;
  let header = `{'descr': '${DESCR[tensor.type]}', 'fortran_order': False, 'shape': ${shape}, }`;
  // magic (6) + version (2) + header length (2) + header + '\n', padded with spaces to 64 bytes.
  const unpadded = 10 + header.length + 1;
  header += ' '.repeat((64 - (unpadded % 64)) % 64) + '\n';
  if (header.length > 0xffff) throw new TernionError('ERR_SHAPE_MISMATCH', `dims [${dims.join(', ')}] make a header too long for .npy format 1.0`);
  const data = tensor.data;
  const out = new Uint8Array(10 + header.length + data.byteLength);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, header.length & 0xff, header.length >> 8]);
  for (let i = 0; i < header.length; i++) out[10 + i] = header.charCodeAt(i);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), 10 + header.length);
  return out;
}

/** Writes the tensor to a .npy file. */
export function saveNpy(path: string, tensor: Tensor): void {
  const bytes = formatNpy(tensor);
  try {
    writeFileSync(path, bytes);
  } catch (e) {
    throw new TernionError('ERR_INVALID_ARGUMENT', `Cannot write ${path}: ${(e as Error).message}`, { cause: e });
  }
}
