// Loads the native addon through `bindings` and turns every failure into one actionable
// TernionError: what failed, why, and the command that fixes it (in the manner of sharp).
import { TernionError } from './errors';

export interface NativeCpuInfo {
  arch: string;
  features: string[];
  compiled: string[];
  supported: string[];
  kernels: string | null;
  error?: string;
  threads: number;
  spinMicros: number;
}

export interface NativePackedWeights {
  readonly N: number;
  readonly K: number;
  readonly kind: 'float32' | 'int8' | 'lowbit';
  readonly isa: string;
  readonly byteLength: number;
  release(): void;
}

export interface NativeGemmOptions {
  aZero?: number;
  scale?: Float32Array;
  bias?: Float32Array;
  relu?: boolean;
  output?: 'float32' | 'int32' | 'uint8' | 'int8';
  zeroPoint?: number;
  qmin?: number;
  qmax?: number;
  threads?: number;
}

export interface NativeBinding {
  napiVersion: number;
  cpuInfo(): NativeCpuInfo;
  setErrorClass(cls: typeof TernionError): void;
  /** Returns the C allocator's cached free pages to the OS (glibc malloc_trim; no-op elsewhere). */
  trimFreedMemory(): void;
  PackedWeights: new (options: Record<string, unknown>) => NativePackedWeights;
  gemm(packed: NativePackedWeights, A: Float32Array | Uint8Array, M: number, options?: NativeGemmOptions): Float32Array | Int32Array | Uint8Array | Int8Array;
  gemmAsync(packed: NativePackedWeights, A: Float32Array | Uint8Array, M: number, options?: NativeGemmOptions): Promise<Float32Array | Int32Array | Uint8Array | Int8Array>;
  /** Data-aware quantizer helpers (native/quant/data-aware-math.h). */
  inverseCholeskyUpper(H: Float64Array, n: number): Float64Array;
  refitNormalEquations(w: Float32Array, codes: Int8Array, H: Float64Array, K: number, G: number, asym: boolean, A: Float64Array, c: Float64Array): void;
  feedbackColumn(W: Float64Array, U: Float64Array, R: number, K: number, j: number, e: Float64Array): void;
}

let cached: NativeBinding | undefined;

function explain(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const lines = [`Could not load the ternion native addon (Node ${process.version}, ABI ${process.versions.modules}, ${process.platform}-${process.arch}).`, `Cause: ${message.split('\n')[0]}`];
  const solutions: string[] = [];
  if (/Could not locate the bindings file|Cannot find module/.test(message)) {
    solutions.push('The addon was never built: run `npm rebuild ternion` (or `npm install` in a checkout); it needs cmake and a C++17 compiler.');
  }
  if (/NODE_MODULE_VERSION|was compiled against a different Node.js version|napi/i.test(message)) {
    solutions.push('The addon was built for another Node.js: run `npm rebuild ternion` with this Node.');
  }
  if (/wrong ELF class|invalid ELF header|Exec format error/.test(message)) {
    solutions.push(`The addon was built for another CPU architecture: reinstall on this ${process.arch} machine (\`npm rebuild ternion\`).`);
  }
  if (/illegal instruction/i.test(message)) {
    solutions.push('The addon uses instructions this CPU lacks: rebuild from source with `npm rebuild ternion`.');
  }
  if (solutions.length === 0) solutions.push('Rebuild the addon from source: `npm rebuild ternion` (needs cmake and a C++17 compiler).');
  return [...lines, 'Possible solutions:', ...solutions.map((s) => `- ${s}`)].join('\n');
}

/**
 * The addon built from source (build/Release, found by `bindings`: a checkout, or an install
 * that fell back to compiling) when there is one, else the prebuilt addon shipped for this
 * platform (prebuilds/<platform>-<arch>/, made by `npm run prebuild`). TERNION_ADDON=path loads
 * that file instead (e.g. the sanitizer build of tools/sanitize.sh).
 */
function loadBinding(): NativeBinding {
  /* eslint-disable @typescript-eslint/no-require-imports */
  const path = require('path') as typeof import('path');
  const fs = require('fs') as typeof import('fs');
  const root = path.join(__dirname, '..');
  if (process.env.TERNION_ADDON) return require(path.resolve(process.env.TERNION_ADDON)) as NativeBinding;
  const prebuilt = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`, 'ternion.node');
  try {
    return require('bindings')({ bindings: 'ternion.node', module_root: root }) as NativeBinding;
  } catch (err) {
    if (!fs.existsSync(prebuilt) || !/Could not locate the bindings file/.test(String((err as Error).message))) throw err;
  }
  return require(prebuilt) as NativeBinding;
  /* eslint-enable @typescript-eslint/no-require-imports */
}

/** The addon, loaded once per JavaScript environment (each worker thread loads its own). */
export function native(): NativeBinding {
  if (cached) return cached;
  let binding: NativeBinding;
  try {
    binding = loadBinding();
  } catch (err) {
    throw new TernionError('ERR_NATIVE_LOAD', explain(err), { cause: err });
  }
  binding.setErrorClass(TernionError);
  cached = binding;
  return binding;
}

/** For tests: the explanation the loader gives for a load failure. */
export const explainLoadFailure = explain;
