// onnxruntime-node's session options, so that code written for it creates a ternion session
// unchanged: the ones with a ternion meaning are translated (intra-op threads, the optimization
// level, the CPU execution provider); the ones about onnxruntime's own machinery (logging, its
// memory arena, inter-op threads, profiling files) are accepted and have no effect. Anything
// else is still refused by name (a typo must not pass silently).
import { TernionError, describe } from '../errors';

/** Options of onnxruntime-node's InferenceSession.create that ternion accepts. */
export interface OnnxruntimeSessionOptions {
  /** Threads per run, as ternion's `threads` (0: the default, all cores). */
  intraOpNumThreads?: number;
  /** 'disabled' is ternion's `optimize: false`; 'basic', 'extended' and 'all' run its passes. */
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all';
  /** Only the CPU: 'cpu' (or { name: 'cpu' }). */
  executionProviders?: readonly (string | { name: string })[];
  interOpNumThreads?: number;
  executionMode?: 'sequential' | 'parallel';
  enableCpuMemArena?: boolean;
  enableMemPattern?: boolean;
  enableProfiling?: boolean;
  profileFilePrefix?: string;
  logId?: string;
  logSeverityLevel?: 0 | 1 | 2 | 3 | 4;
  logVerbosityLevel?: number;
  optimizedModelFilePath?: string;
  freeDimensionOverrides?: Readonly<Record<string, number>>;
  extra?: Record<string, unknown>;
}

/** onnxruntime-node options ternion has no use for (its logging, allocator, scheduling, files). */
export const ONNXRUNTIME_IGNORED_OPTIONS: readonly string[] = [
  'interOpNumThreads', 'executionMode', 'enableCpuMemArena', 'enableMemPattern', 'enableProfiling', 'profileFilePrefix',
  'logId', 'logSeverityLevel', 'logVerbosityLevel', 'optimizedModelFilePath', 'freeDimensionOverrides', 'extra',
];
export const ONNXRUNTIME_OPTIONS: readonly string[] = ['intraOpNumThreads', 'graphOptimizationLevel', 'executionProviders', ...ONNXRUNTIME_IGNORED_OPTIONS];

const LEVELS = ['disabled', 'basic', 'extended', 'all'];

/**
 * Rewrites onnxruntime's keys in `opts` to ternion's (threads, optimize) and drops the ignored
 * ones; throws when the two spellings of one setting disagree or an execution provider is not
 * the CPU.
 */
export function translateOnnxruntimeOptions(opts: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(opts)) if (!ONNXRUNTIME_OPTIONS.includes(k)) out[k] = v;
  const intra = opts.intraOpNumThreads;
  if (intra !== undefined) {
    if (typeof intra !== 'number' || !Number.isInteger(intra) || intra < 0 || intra > 1024) {
      throw new TernionError('ERR_INVALID_ARGUMENT', `Expected an integer between 0 and 1024 for options.intraOpNumThreads but received ${describe(intra)}`);
    }
    if (intra > 0) {
      if (out.threads !== undefined && out.threads !== intra) {
        throw new TernionError('ERR_INVALID_ARGUMENT', `options.threads (${String(out.threads)}) and options.intraOpNumThreads (${intra}) disagree; give one`);
      }
      out.threads = intra;
    }
  }
  const level = opts.graphOptimizationLevel;
  if (level !== undefined) {
    if (typeof level !== 'string' || !LEVELS.includes(level)) {
      throw new TernionError('ERR_INVALID_ARGUMENT', `Expected one of ${LEVELS.map((l) => `"${l}"`).join(', ')} for options.graphOptimizationLevel but received ${describe(level)}`);
    }
    const optimize = level !== 'disabled';
    if (out.optimize !== undefined && out.optimize !== optimize) {
      throw new TernionError('ERR_INVALID_ARGUMENT', `options.optimize (${String(out.optimize)}) and options.graphOptimizationLevel ("${level}") disagree; give one`);
    }
    out.optimize = optimize;
  }
  const eps = opts.executionProviders;
  if (eps !== undefined) {
    if (!Array.isArray(eps)) throw new TernionError('ERR_INVALID_ARGUMENT', `Expected an array for options.executionProviders but received ${describe(eps)}`);
    for (const ep of eps) {
      const name = typeof ep === 'string' ? ep : ep !== null && typeof ep === 'object' ? (ep as { name?: unknown }).name : undefined;
      if (name !== 'cpu') {
        throw new TernionError('ERR_INVALID_ARGUMENT', `ternion runs models on the CPU only; options.executionProviders lists ${describe(typeof name === 'string' ? name : ep)} (use ['cpu'] or leave it out)`);
      }
    }
  }
  return out;
}
