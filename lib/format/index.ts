// format/: the .tern model file (docs/format.md). One reader, one writer, one version.
import { readFile, writeFile } from 'node:fs/promises';
import { TernionError, invalidArgument } from '../errors';
import type { Graph } from '../ir';
import { readTern } from './read-tern';
import type { TernModel, WriteTernOptions } from './types';
import { writeTern } from './write-tern';

export { readTern } from './read-tern';
export { writeTern } from './write-tern';
export { quantizationInfo } from './quantization-info';
export { TERN_VERSION, looksLikeTern } from './tern-layout';
export type { TernModel, TernQuantizationInfo, TernSection, WriteTernOptions } from './types';

/** Writes `graph` to a .tern file at `path` (replacing it). */
export async function saveTern(path: string, graph: Graph, options: WriteTernOptions = {}): Promise<void> {
  if (typeof path !== 'string' || path === '') throw invalidArgument('a file path', 'path', path);
  const bytes = writeTern(graph, options);
  try {
    await writeFile(path, bytes);
  } catch (e) {
    throw new TernionError('ERR_INVALID_ARGUMENT', `Cannot write model file "${path}": ${(e as Error).message}`, { cause: e });
  }
}

/** Reads the .tern file at `path`. */
export async function loadTern(path: string): Promise<TernModel> {
  if (typeof path !== 'string' || path === '') throw invalidArgument('a file path', 'path', path);
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new TernionError('ERR_INVALID_ARGUMENT', `Cannot read model file "${path}": ${(e as Error).message}`, { cause: e });
  }
  return readTern(bytes);
}
