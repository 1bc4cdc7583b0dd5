// Tensor data stored outside the .onnx file (data_location EXTERNAL): read `length` bytes at
// `offset` of `location`, a path relative to the model's directory that must stay inside it.

import * as fs from 'fs';
import * as path from 'path';
import { invalidArgument, TernionError } from '../errors';
import type { StringStringEntryProto } from './proto';

function formatError(message: string): TernionError {
  return new TernionError('ERR_MODEL_FORMAT', message);
}

function isInside(directory: string, candidate: string): boolean {
  const relative = path.relative(directory, candidate);
  return relative !== '' && !relative.startsWith('..') && !path.isAbsolute(relative);
}

function parseByteCount(value: string | undefined, what: string, tensorName: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) {
    throw formatError(`Tensor "${tensorName}" has an invalid external data ${what} "${value}"`);
  }
  return Number(value);
}

/**
 * The bytes of an external tensor, checked against `expectedBytes` before anything is allocated.
 * `basePath` is the directory the model was loaded from.
 */
export function readExternalData(
  entries: readonly StringStringEntryProto[],
  tensorName: string,
  expectedBytes: number,
  basePath: string | undefined,
): Uint8Array {
  const fields = new Map(entries.map((e) => [e.key, e.value]));
  const location = fields.get('location');
  if (location === undefined || location === '') throw formatError(`Tensor "${tensorName}" stores external data but names no location`);
  if (basePath === undefined) {
    throw invalidArgument(`the model's directory (tensor "${tensorName}" stores its data in "${location}")`, 'options.basePath', basePath);
  }
  const offset = parseByteCount(fields.get('offset'), 'offset', tensorName) ?? 0;
  const length = parseByteCount(fields.get('length'), 'length', tensorName) ?? expectedBytes;
  if (length !== expectedBytes) {
    throw formatError(`Tensor "${tensorName}" declares ${length} bytes of external data but its dims and type need ${expectedBytes}`);
  }

  const directory = path.resolve(basePath);
  const file = path.resolve(directory, location);
  if (path.isAbsolute(location) || !isInside(directory, file)) {
    throw formatError(`Tensor "${tensorName}" has external data location "${location}" outside the model's directory`);
  }
  let realFile: string;
  try {
    realFile = fs.realpathSync(file);
  } catch (error) {
    throw formatError(`Tensor "${tensorName}" has external data in "${location}", which cannot be opened: ${(error as Error).message}`);
  }
  // A symlink inside the directory must not lead out of it either.
  if (!isInside(fs.realpathSync(directory), realFile)) {
    throw formatError(`Tensor "${tensorName}" has external data location "${location}" that resolves outside the model's directory`);
  }
  const size = fs.statSync(realFile).size;
  if (offset + length > size) {
    throw formatError(`Tensor "${tensorName}" needs bytes ${offset}..${offset + length} of "${location}" but the file has ${size} bytes`);
  }
  const bytes = new Uint8Array(length);
  const fd = fs.openSync(realFile, 'r');
  try {
    let done = 0;
    while (done < length) {
      const read = fs.readSync(fd, bytes, done, length - done, offset + done);
      if (read === 0) throw formatError(`External data file "${location}" ended early while reading tensor "${tensorName}"`);
      done += read;
    }
  } finally {
    fs.closeSync(fd);
  }
  return bytes;
}
