// Opening the MODEL argument of eval / run: an .onnx (fp32, or --precision int8) or a .tern
// (already quantized; InferenceSession.create recognizes it by its magic).
import { closeSync, openSync, readSync } from 'node:fs';
import { TernionError } from '../errors';
import { looksLikeTern } from '../format';
import { InferenceSession } from '../session/inference-session';

export function readHead(path: string, length = 16): Uint8Array {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw new TernionError('ERR_INVALID_ARGUMENT', `Cannot read model file "${path}": ${(e as Error).message}`, { cause: e });
  }
  try {
    const head = new Uint8Array(length);
    const n = readSync(fd, head, 0, length, 0);
    return head.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

/** Whether the file starts with the .tern magic (else it is taken for an .onnx). */
export function isTernFile(path: string): boolean {
  return looksLikeTern(readHead(path, 8));
}

export interface OpenOptions {
  precision?: 'fp32' | 'int8';
  threads?: number;
}

export async function openModel(path: string, options: OpenOptions): Promise<{ session: InferenceSession; kind: 'onnx' | 'tern'; precision: string }> {
  const tern = isTernFile(path);
  if (tern && options.precision !== undefined) {
    throw new TernionError('ERR_INVALID_ARGUMENT', `--precision applies to .onnx models; ${path} is a .tern model, quantized already`);
  }
  const session = await InferenceSession.create(path, { threads: options.threads, ...(tern ? {} : { precision: options.precision ?? 'fp32' }) });
  return { session, kind: tern ? 'tern' : 'onnx', precision: tern ? 'tern' : options.precision ?? 'fp32' };
}
