// The low-level kernel API: a weight matrix packed once for the chosen instruction set, then
// multiplied by batches of activations. Sessions use the same kernels through the graph
// executor; this API is for benchmarks, tests and users who build their own layers.
import { TernionError, invalidArgument } from './errors';
import { native, NativeGemmOptions, NativePackedWeights } from './native';

export type KernelIsa = 'scalar' | 'avx2' | 'avx512vnni' | 'avxvnni' | 'neon';
export type LowbitForm = 'group-scaled' | 'folded';
export type MatmulOutput = 'float32' | 'int32' | 'uint8' | 'int8';

export interface CpuInfo {
  /** CPU architecture the addon was built for. */
  arch: string;
  /** Instruction-set features found by CPUID / getauxval (and enabled by the OS). */
  features: string[];
  /** Kernel sets compiled into this binary, best first. */
  compiled: string[];
  /** Kernel sets this CPU can run, best first (scalar last). */
  supported: string[];
  /** The kernel set in use (TERNION_ISA overrides the choice); null if TERNION_ISA was unusable. */
  kernels: string | null;
  /** Why TERNION_ISA could not be honoured, if it could not. */
  error?: string;
  /** Default number of threads (the number of cores). */
  threads: number;
  /**
   * How long the pool's idle threads spin for the next parallel section before they sleep, in
   * microseconds (TERNION_SPIN_MICROS, default 200; 0 sleeps at once).
   */
  spinMicros: number;
}

/** What the CPU has and which kernels ternion chose. */
export function cpuInfo(): CpuInfo {
  return native().cpuInfo();
}

export interface PackOptions {
  /** Force an instruction set (must be in cpuInfo().supported); default: the best one. */
  isa?: KernelIsa;
}

export interface LowbitPackOptions extends PackOptions {
  /** Group size along K (a divisor of K); K itself means one group per row ("filter"). */
  groupSize: number;
  /** 'group-scaled' (fp32 scale per group, default) or 'folded' (int8 multiplier per group). */
  form?: LowbitForm;
  /** group-scaled: scale of each group, [N][K / groupSize] (of +1 codes when asymmetric). */
  scales?: Float32Array;
  /** group-scaled, asymmetric ternary: magnitude of -1 codes per group. */
  negativeScales?: Float32Array;
  /** folded: integer multiplier per group, [N][K / groupSize], 1..127 (ternary) or 1..18 (4-bit). */
  multipliers?: Int8Array;
  /** folded, asymmetric ternary: multiplier of -1 codes per group. */
  negativeMultipliers?: Int8Array;
}

export interface MatmulOptions {
  /** Zero point of uint8 activations (0 for unsigned data, 128 for shifted signed data). */
  aZero?: number;
  /** Per-output-channel scale and bias of the fused epilogue: v = acc * scale[n] + bias[n]. */
  scale?: Float32Array;
  bias?: Float32Array;
  relu?: boolean;
  /** Output type; integer outputs are rounded half to even, offset by zeroPoint, clamped. */
  output?: MatmulOutput;
  zeroPoint?: number;
  qmin?: number;
  qmax?: number;
  /** Threads to use (default: all cores). */
  threads?: number;
}

function positiveInt(v: unknown, name: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 2 ** 31 - 1) {
    throw invalidArgument('a positive integer', name, v);
  }
  return v;
}

/**
 * Weights W[N][K] (output-channel major, like ONNX Gemm with transB or Conv) packed for one
 * kernel set. matmul(A, M) computes C[M][N] = A[M][K] x W^T with the fused epilogue.
 */
export class PackedMatrix {
  private constructor(private readonly handle: NativePackedWeights) {}

  static float32(weights: Float32Array, N: number, K: number, options: PackOptions = {}): PackedMatrix {
    return PackedMatrix.pack({ kind: 'float32', weights, N: positiveInt(N, 'N'), K: positiveInt(K, 'K'), isa: options.isa });
  }

  /** Symmetric int8 weights; activations are uint8 with a zero point. */
  static int8(weights: Int8Array, N: number, K: number, options: PackOptions = {}): PackedMatrix {
    return PackedMatrix.pack({ kind: 'int8', weights, N: positiveInt(N, 'N'), K: positiveInt(K, 'K'), isa: options.isa });
  }

  /** Ternary codes in {-1, 0, 1} with per-group scales (asymmetric when negative scales are given). */
  static ternary(codes: Int8Array, N: number, K: number, options: LowbitPackOptions): PackedMatrix {
    return PackedMatrix.lowbit(2, codes, N, K, options);
  }

  /** 4-bit codes in [-7, 7] with per-group scales. */
  static int4(codes: Int8Array, N: number, K: number, options: LowbitPackOptions): PackedMatrix {
    if (options && (options.negativeScales || options.negativeMultipliers)) {
      throw new TernionError('ERR_INVALID_ARGUMENT', 'Asymmetric scales apply to ternary weights only');
    }
    return PackedMatrix.lowbit(4, codes, N, K, options);
  }

  private static lowbit(bits: 2 | 4, codes: Int8Array, N: number, K: number, o: LowbitPackOptions): PackedMatrix {
    if (!o || typeof o !== 'object') throw invalidArgument('an options object with groupSize', 'options', o);
    const form = o.form ?? 'group-scaled';
    if (form !== 'group-scaled' && form !== 'folded') throw invalidArgument('"group-scaled" or "folded"', 'form', form);
    const asym = form === 'group-scaled' ? o.negativeScales !== undefined : o.negativeMultipliers !== undefined;
    return PackedMatrix.pack({
      kind: 'lowbit', bits, weights: codes, N: positiveInt(N, 'N'), K: positiveInt(K, 'K'),
      G: positiveInt(o.groupSize, 'groupSize'), form, asym, isa: o.isa,
      scalePos: o.scales, scaleNeg: o.negativeScales, multPos: o.multipliers, multNeg: o.negativeMultipliers,
    });
  }

  private static pack(options: Record<string, unknown>): PackedMatrix {
    return new PackedMatrix(new (native().PackedWeights)(options));
  }

  get N(): number { return this.handle.N; }
  get K(): number { return this.handle.K; }
  /** The instruction set whose layout these weights are packed in. */
  get isa(): string { return this.handle.isa; }
  /** Bytes of packed weights held in native memory. */
  get byteLength(): number { return this.handle.byteLength; }

  /** Synchronous product (blocks the calling thread: prefer matmulAsync on a server). */
  matmul(A: Float32Array | Uint8Array, M: number, options: MatmulOptions = {}) {
    return native().gemm(this.handle, A, positiveInt(M, 'M'), options as NativeGemmOptions);
  }

  /** The product computed on a worker thread; the event loop stays free meanwhile. */
  matmulAsync(A: Float32Array | Uint8Array, M: number, options: MatmulOptions = {}) {
    return native().gemmAsync(this.handle, A, positiveInt(M, 'M'), options as NativeGemmOptions);
  }

  /** Frees the native memory now (after any matmulAsync still running). */
  release(): void {
    this.handle.release();
  }
}
