// onnxruntime-node, the reference the benchmarks compare against. It is not a dependency of
// ternion (a devDependency only), so it is loaded on use and its absence is reported clearly.
import { TernionError } from '../errors';

/** The part of onnxruntime-node's API the benchmarks use. */
export interface OrtTensor {
  readonly data: ArrayLike<number> | ArrayBufferView;
  readonly dims: readonly number[];
  readonly type: string;
}
export interface OrtSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  run(feeds: Record<string, OrtTensor>): Promise<Record<string, OrtTensor>>;
  release(): Promise<void>;
}
export interface OrtSessionOptions {
  intraOpNumThreads?: number;
  interOpNumThreads?: number;
  executionMode?: 'sequential' | 'parallel';
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  optimizedModelFilePath?: string;
}
export interface OrtModule {
  InferenceSession: { create(model: string | Uint8Array, options?: OrtSessionOptions): Promise<OrtSession> };
  Tensor: new (type: string, data: ArrayBufferView, dims: readonly number[]) => OrtTensor;
}

export interface OrtLoad {
  ort: OrtModule | null;
  version: string | null;
  /** Why it could not be loaded. */
  error?: string;
}

let cached: OrtLoad | undefined;

/** onnxruntime-node if it can be required (from the caller's project or ternion's), else null and why. */
export function loadOrt(): OrtLoad {
  if (cached) return cached;
  const from = [process.cwd(), __dirname];
  for (const base of from) {
    try {
      const resolved = require.resolve('onnxruntime-node', { paths: [base] });
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const ort = require(resolved) as OrtModule;
      let version: string | null = null;
      try {
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        version = (require(require.resolve('onnxruntime-node/package.json', { paths: [base] })) as { version: string }).version;
      } catch {
        version = null;
      }
      cached = { ort, version };
      return cached;
    } catch (e) {
      cached = { ort: null, version: null, error: (e as Error).message.split('\n')[0] };
    }
  }
  return cached!;
}

/** onnxruntime-node, or ERR_INVALID_ARGUMENT saying how to get it. */
export function requireOrt(what: string): OrtModule {
  const { ort, error } = loadOrt();
  if (!ort) {
    throw new TernionError(
      'ERR_INVALID_ARGUMENT',
      `${what} needs onnxruntime-node, which is not a dependency of ternion and could not be loaded (${error}); install it with "npm install onnxruntime-node" or leave the ort-* engines out`,
    );
  }
  return ort;
}
