// Types of the weight quantizer: its options and the quantized layer it returns.
import type { GroupSize, Grouping } from './groups';
import type { Int4Clipping } from './int4';
import type { GemmLayout } from './layout';
import type { TernaryThreshold } from './ternary';

export type WeightBits = 2 | 4 | 8;
/** 'group-scaled' and 'folded' are the two FGQ execution forms; 'per-channel' is int8. */
export type WeightForm = 'group-scaled' | 'folded' | 'per-channel';

export interface WeightQuantOptions {
  /** 2 = ternary (default), 4 = 4-bit, 8 = int8 per output channel (edge layers). */
  bits?: WeightBits;
  /** N: 4, 8, 16, 32, 64 (any positive integer) or 'filter' (default 4). Ignored for 8 bits. */
  groupSize?: GroupSize;
  /** 'channels': N input channels per group (default); 'filters': N output channels (paper v1). */
  grouping?: Grouping;
  /** Ternary threshold: 'exact' (default) or 'twn'. */
  threshold?: TernaryThreshold;
  /**
   * Ternary only: separate scales for +1 and -1 codes. Default false, except that a layer found
   * pre-ternarized with unequal magnitudes is packed asymmetric unless this is set to false.
   */
  asymmetric?: boolean;
  /** 'folded' (int8 multipliers; default for ternary) or 'group-scaled' (fp32 scale per group; default for 4-bit). */
  form?: 'group-scaled' | 'folded';
  /** 4-bit clipping: 'max' (default) or 'mse'. */
  clipping?: Int4Clipping;
  /** Ternary: pack pre-ternarized groups losslessly ('auto', default) or never ('off'). */
  preTernarized?: 'auto' | 'off';
  /** Relative tolerance between magnitudes taken as equal by the detection (default 1e-6). */
  tolerance?: number;
  /**
   * 7-bit int8 weights (default false): 8 bits, codes in [-63, 63] instead of [-127, 127];
   * folded ternary, multipliers in [1, 63]. The int8 kernel of CPUs without VNNI runs them
   * about 1.3x faster, exactly; see int8.ts and folded.ts.
   */
  reduceRange?: boolean;
}

/** The per-layer report of fgq.md section 5 (see stats.ts for what each number counts). */
export interface WeightQuantStats {
  /** Weights of the original tensor. */
  parameters: number;
  /** N as asked ('filter' for one group per output channel); null for int8 per channel. */
  groupSize: GroupSize | null;
  grouping: Grouping;
  /** Storage bits per original weight: codes plus scales / multipliers. */
  bitsPerWeight: number;
  /** Storage bytes: codes (2, 4 or 8 bits each, padding included) plus scales. */
  bytes: number;
  /** Fraction of the fp32 layer's multiplications the arithmetic no longer needs. */
  multiplicationsRemoved: number;
  /** ||W - Wq|| / ||W|| over the original weights (0 for an all-zero tensor). */
  relativeError: number;
  /** Fraction of the original weights whose code is 0. */
  zeroFraction: number;
  /** Every group was pre-ternarized and packed losslessly. */
  lossless: boolean;
}

interface QuantizedCommon {
  /** Output channels: rows of the GEMM matrix. */
  rows: number;
  /** Columns per row, padding included (layout.ts). */
  K: number;
  /** Columns per scale slot (kernel group size); K for 'filter', 'filters' and int8. */
  G: number;
  asym: boolean;
  /** Integer codes [rows][K] in the GEMM layout: t in {-1,0,1}, q in [-7,7] or [-127,127]. */
  codes: Int8Array;
  layout: GemmLayout;
  stats: WeightQuantStats;
  /** The weights the quantized layer stands for, in the ORIGINAL layout and dims (new array). */
  dequantized(): Float32Array;
}

export interface GroupScaledWeights extends QuantizedCommon {
  form: 'group-scaled';
  bits: 2 | 4;
  /** Scale of each group [rows][K / G] (of the +1 codes when asymmetric). */
  scalePos: Float32Array;
  /** Asymmetric: magnitude of the -1 codes [rows][K / G]; null when symmetric. */
  scaleNeg: Float32Array | null;
}

export interface FoldedWeights extends QuantizedCommon {
  form: 'folded';
  bits: 2 | 4;
  /** Integer multiplier per group [rows][K / G], in [1, 127] (ternary) or [1, 18] (4-bit). */
  multPos: Int8Array;
  /** Asymmetric: multiplier of the -1 codes; null when symmetric. */
  multNeg: Int8Array | null;
  /** Per-output-channel scale: weight = code * multiplier * channelScale[row]. */
  channelScale: Float32Array;
}

export interface Int8Weights extends QuantizedCommon {
  form: 'per-channel';
  bits: 8;
  /** Per-output-channel scale: weight = code * channelScale[row]. */
  channelScale: Float32Array;
}

export type QuantizedWeights = GroupScaledWeights | FoldedWeights | Int8Weights;
