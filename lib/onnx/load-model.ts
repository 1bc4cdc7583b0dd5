// The public entry of onnx/: bytes of a .onnx file in, a validated IR graph out.

import { invalidArgument, TernionError } from '../errors';
import type { Graph } from '../ir/types';
import { decodeGraph, normalizeDomain } from './decode-graph';
import type { ModelProtoMessage } from './proto';
import { hasField, int64ToNumber, ModelProtoType } from './proto';

export interface LoadOnnxOptions {
  /**
   * Directory of the .onnx file, against which external data locations are resolved. Required
   * only for models that keep weights in separate files (data_location EXTERNAL).
   */
  basePath?: string;
}

function formatError(message: string, cause?: unknown): TernionError {
  return new TernionError('ERR_MODEL_FORMAT', message, cause === undefined ? undefined : { cause });
}

function decodeModelProto(bytes: Uint8Array): ModelProtoMessage {
  try {
    return ModelProtoType.decode(bytes) as unknown as ModelProtoMessage;
  } catch (error) {
    // protobufjs reports truncation as "index out of range" and garbage as "invalid wire type".
    throw formatError(`Not a valid ONNX model (${bytes.byteLength} bytes): ${(error as Error).message}`, error);
  }
}

function decodeOpsets(model: ModelProtoMessage): Record<string, number> {
  const opsets: Record<string, number> = {};
  for (const entry of model.opset_import) {
    const domain = normalizeDomain(entry.domain);
    const version = int64ToNumber(entry.version);
    if (!Number.isSafeInteger(version) || version < 1) throw formatError(`The model imports domain "${entry.domain || 'ai.onnx'}" at invalid opset ${version}`);
    if (opsets[domain] !== undefined && opsets[domain] !== version) {
      throw formatError(`The model imports domain "${entry.domain || 'ai.onnx'}" twice (opsets ${opsets[domain]} and ${version})`);
    }
    opsets[domain] = version;
  }
  if (Object.keys(opsets).length === 0) throw formatError('The model imports no opset');
  return opsets;
}

/**
 * Decode an ONNX model into ternion's IR.
 *
 * Throws TernionError: ERR_MODEL_FORMAT for corrupt or inconsistent files (naming the tensor or
 * node at fault), ERR_UNSUPPORTED_OP for operators outside the op table (naming op, node and
 * opset), ERR_DTYPE for element types ternion cannot hold.
 */
export function loadOnnxModel(bytes: Uint8Array, options: LoadOnnxOptions = {}): Graph {
  if (!(bytes instanceof Uint8Array)) throw invalidArgument('a Uint8Array of .onnx bytes', 'bytes', bytes);
  if (options.basePath !== undefined && typeof options.basePath !== 'string') {
    throw invalidArgument('a directory path string', 'options.basePath', options.basePath);
  }
  if (bytes.byteLength === 0) throw formatError('Not a valid ONNX model: the file is empty');
  const model = decodeModelProto(bytes);
  if (!hasField(model, 'ir_version')) throw formatError('Not a valid ONNX model: it has no ir_version');
  if (!model.graph) throw formatError('Not a valid ONNX model: it has no graph');
  const metadata = {
    irVersion: int64ToNumber(model.ir_version),
    producerName: model.producer_name,
    producerVersion: model.producer_version,
  };
  try {
    return decodeGraph(model.graph, decodeOpsets(model), metadata, { basePath: options.basePath });
  } catch (error) {
    if (error instanceof TernionError) throw error;
    // Deeply nested garbage can overflow the stack or trip an invariant; never leak a raw error.
    throw formatError(`Not a valid ONNX model: ${(error as Error).message}`, error);
  }
}
