// The GEMM row layout of a weight tensor: the one place that fixes how a Conv / Gemm / MatMul
// weight becomes the [rows][K] matrix the low-bit kernels consume (native/kernels/kernels.h),
// and therefore the column order the executor's im2col must produce.
//
// ORIENTATION. Weights come output-channel major, as ONNX stores Conv weights and Gemm weights
// with transB = 1:
//     dims = [Co, Cin, ...spatial]      Conv: [Co][Ci/group][Kh][Kw] (any number of spatial dims)
//                                       Gemm (transB = 1): [Co][Ci]
// A MatMul right-hand side or a Gemm with transB = 0 is [Ci][Co]: pass it through
// transposeToOutputMajor() first. For a grouped conv, Cin is the per-group input count Ci/group;
// every row (output channel) only sees its own conv group's inputs, so the layout below is the
// same for each row and the executor runs one GEMM per conv group over that group's row range.
//
// LAYOUT. With S = product of the spatial dims (Kh*Kw for a 2-D conv, 1 for Gemm), s = the
// flattened spatial index (kh*Kw + kw) and P = paddedInputChannels (Cin rounded up to a
// multiple of the channel group size N; P = Cin when nothing is padded):
//
//     K = S * P
//     k = s * P + ci                            ci innermost, then kw, then kh
//     W[co][k] = w[co][ci][s]   for ci < Cin
//     W[co][k] = 0 (code 0)     for Cin <= ci < P   (padding)
//
// so an FGQ group (N consecutive input channels at one fixed (co, kh, kw), fgq.md section 2) is
// N consecutive k, and every group starts at a multiple of N: the kernels' uniform groups of
// G = N. Where Cin is not a multiple of N, the method's short last group of each (kh, kw) run
// keeps its real weights at the start of its G slots and zero codes after them.
//
// IM2COL. For each output position the executor writes the K columns in the same order:
// column k = s * P + ci takes input channel ci at kernel offset s, and the P - Cin columns
// after each run of Cin are padding. Their codes are 0, so any activation value there adds
// nothing; writing the activation zero point (0 for unsigned data) is the natural choice.
// `source[k]` spells the mapping out: ci * S + s (the index within one original row), or -1.
import { TernionError, invalidArgument } from '../../errors';

export interface GemmLayout {
  /** The original weight dims, output channel first. */
  readonly dims: readonly number[];
  /** Output channels: rows of the GEMM matrix. */
  readonly rows: number;
  /** Input channels per row (Ci/group for a grouped conv). */
  readonly inputChannels: number;
  /** Product of the spatial (kernel) dims; 1 for Gemm / MatMul. */
  readonly spatial: number;
  /** Input channels per (kh, kw) run after padding: inputChannels rounded up to the channel multiple. */
  readonly paddedInputChannels: number;
  /** Columns of the GEMM matrix: spatial * paddedInputChannels. */
  readonly K: number;
  /** For each column k: its index ci * spatial + s within one original row, or -1 for padding. */
  readonly source: Int32Array;
}

/** Checks dims (at least [Co, Cin], positive integers) against the number of weights. */
export function checkWeightDims(weights: unknown, dims: unknown): asserts dims is readonly number[] {
  if (!(weights instanceof Float32Array)) throw invalidArgument('a Float32Array', 'weights', weights);
  if (!Array.isArray(dims) || dims.length < 2) {
    throw invalidArgument('an array [outputChannels, inputChannels, ...spatial] of at least 2 dims', 'dims', dims);
  }
  let count = 1;
  dims.forEach((d, i) => {
    if (typeof d !== 'number' || !Number.isInteger(d) || d < 1) throw invalidArgument('a positive integer', `dims[${i}]`, d);
    count *= d;
  });
  if (count !== weights.length) {
    throw new TernionError('ERR_SHAPE_MISMATCH', `dims [${dims.join(', ')}] hold ${count} weights but weights has length ${weights.length}`);
  }
}

/**
 * The layout of a weight of these dims, with each (kh, kw) run of input channels padded to a
 * multiple of `channelMultiple` (1: no padding).
 */
export function gemmLayout(dims: readonly number[], channelMultiple = 1): GemmLayout {
  const rows = dims[0];
  const inputChannels = dims[1];
  let spatial = 1;
  for (let i = 2; i < dims.length; i++) spatial *= dims[i];
  const paddedInputChannels = Math.ceil(inputChannels / channelMultiple) * channelMultiple;
  const K = spatial * paddedInputChannels;
  const source = new Int32Array(K);
  for (let s = 0; s < spatial; s++) {
    for (let ci = 0; ci < paddedInputChannels; ci++) {
      source[s * paddedInputChannels + ci] = ci < inputChannels ? ci * spatial + s : -1;
    }
  }
  return { dims: dims.slice(), rows, inputChannels, spatial, paddedInputChannels, K, source };
}

/**
 * The weights in GEMM row layout, [rows][K] with zeros at padding. Throws on a non-finite
 * weight (a NaN cannot be quantized; it usually means a broken model or a bad BN fold).
 */
export function toGemmRows(weights: Float32Array, layout: GemmLayout): Float32Array {
  const { rows, K, source } = layout;
  const rowLength = layout.inputChannels * layout.spatial;
  const out = new Float32Array(rows * K);
  for (let r = 0; r < rows; r++) {
    const src = r * rowLength;
    const dst = r * K;
    for (let k = 0; k < K; k++) {
      const j = source[k];
      if (j < 0) continue;
      const v = weights[src + j];
      if (!Number.isFinite(v)) throw invalidArgument('finite numbers', `weights[${src + j}]`, v);
      out[dst + k] = v;
    }
  }
  return out;
}

/** The inverse of toGemmRows: [rows][K] back to the original dims (padding dropped). */
export function fromGemmRows(gemmRows: Float32Array, layout: GemmLayout): Float32Array {
  const { rows, K, source } = layout;
  const rowLength = layout.inputChannels * layout.spatial;
  const out = new Float32Array(rows * rowLength);
  for (let r = 0; r < rows; r++) {
    for (let k = 0; k < K; k++) {
      const j = source[k];
      if (j >= 0) out[r * rowLength + j] = gemmRows[r * K + k];
    }
  }
  return out;
}

/**
 * A [Ci][Co] weight (MatMul right-hand side, Gemm with transB = 0) as [Co][Ci], the
 * orientation every function here takes.
 */
export function transposeToOutputMajor(weights: Float32Array, dims: readonly [number, number]): { weights: Float32Array; dims: [number, number] } {
  checkWeightDims(weights, dims);
  if (dims.length !== 2) throw invalidArgument('2 dims [inputs, outputs]', 'dims', dims);
  const [ci, co] = dims;
  const out = new Float32Array(weights.length);
  for (let i = 0; i < ci; i++) for (let o = 0; o < co; o++) out[o * ci + i] = weights[i * co + o];
  return { weights: out, dims: [co, ci] };
}
