// Pre-ternarized weights (fgq.md section 3): models trained with TTQ or similar and exported as
// fp32 hold, in each group, at most one positive and one negative magnitude plus zeros. Such a
// group is packed losslessly (codes from the signs, alpha_p / alpha_n from the magnitudes), not
// re-quantized. Magnitudes are "the same" within a relative tolerance (default 1e-6) of the first
// one seen in the group, so export noise does not defeat the detection; the scale is then the
// mean of the magnitudes (the L2-optimal value, and exactly the magnitude when all are equal,
// which makes the round trip bit-exact).
import { checkWeightDims, gemmLayout, toGemmRows } from './layout';
import { channelMultiple, GroupCursor, groupScheme, type GroupSize, type Grouping } from './groups';

export const DEFAULT_TERNARY_TOLERANCE = 1e-6;

function near(a: number, b: number, tolerance: number): boolean {
  return Math.abs(a - b) <= tolerance * Math.max(a, b);
}

/** The magnitudes of one group, reused from group to group. */
export class GroupMagnitudes {
  sumPos = 0;
  countPos = 0;
  sumNeg = 0;
  countNeg = 0;

  /**
   * Scans w[start, start + length): true when its nonzero values take at most one positive
   * and one negative magnitude (within the relative tolerance).
   */
  scan(w: Float32Array, start: number, length: number, tolerance: number): boolean {
    let firstPos = 0, firstNeg = 0, sumPos = 0, sumNeg = 0, countPos = 0, countNeg = 0;
    const end = start + length;
    for (let i = start; i < end; i++) {
      const x = w[i];
      if (x > 0) {
        if (countPos === 0) firstPos = x;
        else if (x !== firstPos && !near(x, firstPos, tolerance)) return false;
        sumPos += x;
        countPos++;
      } else if (x < 0) {
        const m = -x;
        if (countNeg === 0) firstNeg = m;
        else if (m !== firstNeg && !near(m, firstNeg, tolerance)) return false;
        sumNeg += m;
        countNeg++;
      }
    }
    this.sumPos = sumPos;
    this.countPos = countPos;
    this.sumNeg = sumNeg;
    this.countNeg = countNeg;
    return true;
  }

  /** Magnitude of the +1 codes (0 when the group has no positive weight). */
  get alphaPos(): number {
    return this.countPos ? this.sumPos / this.countPos : 0;
  }

  /** Magnitude of the -1 codes (0 when the group has no negative weight). */
  get alphaNeg(): number {
    return this.countNeg ? this.sumNeg / this.countNeg : 0;
  }

  /** One magnitude serves both signs (within the tolerance): a symmetric scale is lossless. */
  symmetric(tolerance: number): boolean {
    if (this.countPos === 0 || this.countNeg === 0) return true;
    const p = this.alphaPos, n = this.alphaNeg;
    return p === n || near(p, n, tolerance);
  }

  /** The symmetric scale: mean magnitude of all nonzero weights (0 for an all-zero group). */
  get alpha(): number {
    const count = this.countPos + this.countNeg;
    return count ? (this.sumPos + this.sumNeg) / count : 0;
  }
}

export interface PreTernarizedOptions {
  /** N (default 4); with grouping 'filters', output channels per group. */
  groupSize?: GroupSize;
  /** 'channels' (default) or 'filters'. */
  grouping?: Grouping;
  /** Relative tolerance between magnitudes taken as equal (default 1e-6). */
  tolerance?: number;
}

export interface PreTernarizedReport {
  /** Every group holds at most one positive and one negative magnitude. */
  preTernarized: boolean;
  /** Some group needs separate positive and negative scales to be lossless. */
  asymmetric: boolean;
}

/**
 * Whether a whole layer is pre-ternarized at this grouping, and whether lossless packing needs
 * asymmetric scales. Stops at the first group that is not. Weights are output-channel major
 * (see layout.ts); options are trusted here (quantizeWeights validates its own).
 */
export function detectPreTernarized(weights: Float32Array, dims: readonly number[], options: PreTernarizedOptions = {}): PreTernarizedReport {
  checkWeightDims(weights, dims);
  const grouping = options.grouping ?? 'channels';
  const groupSize = options.groupSize ?? 4;
  const layout = gemmLayout(dims, channelMultiple(grouping, groupSize));
  return detectInRows(toGemmRows(weights, layout), groupScheme(layout, grouping, groupSize), options.tolerance ?? DEFAULT_TERNARY_TOLERANCE);
}

/** detectPreTernarized(...).preTernarized */
export function isPreTernarized(weights: Float32Array, dims: readonly number[], options: PreTernarizedOptions = {}): boolean {
  return detectPreTernarized(weights, dims, options).preTernarized;
}

/** The same test on weights already in row layout. */
export function detectInRows(rows: Float32Array, scheme: ReturnType<typeof groupScheme>, tolerance: number): PreTernarizedReport {
  const cursor = new GroupCursor(scheme);
  const m = new GroupMagnitudes();
  let asymmetric = false;
  while (cursor.next()) {
    if (!m.scan(rows, cursor.start, cursor.length, tolerance)) return { preTernarized: false, asymmetric: false };
    if (!asymmetric && !m.symmetric(tolerance)) asymmetric = true;
  }
  return { preTernarized: true, asymmetric };
}
