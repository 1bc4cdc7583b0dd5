// Ternary weights of one group (fgq.md section 3): w ~ alpha * t, t in {-1, 0, +1}.
//
//  - exact (default): for a kept set the L2-optimal alpha is the mean of its |w|, and the best
//    set of size k is the k largest |w|; so sort |w| descending, take prefix sums S_k, pick the
//    k maximising S_k^2 / k, alpha = S_k / k. Only k at the end of a run of equal magnitudes
//    are candidates, so "keep |w| >= cutoff" keeps exactly k weights and ties never split: this
//    loses nothing, because inside a run of equal values v the objective (c + k v)^2 / k is
//    convex in k, so its maximum over the run is at an end of it. Among equal maxima the
//    smallest k wins (strict comparison), which also drops zeros. Deterministic, O(N log N).
//  - twn: delta = 0.7 * mean|w|, alpha = mean of |w| > delta (none: alpha 0, all codes 0).
//  - asymmetric: positive and negative weights each solved over their own weights (exact, or
//    TWN with delta = 0.7 * the mean magnitude of that side); alpha_p, alpha_n.
// Groups that are pre-ternarized (pre-ternarized.ts) are packed losslessly first, when their
// magnitudes fit the layer's symmetry. All arithmetic is float64; scales are stored as float32.
import { GroupMagnitudes } from './pre-ternarized';

export type TernaryThreshold = 'exact' | 'twn';

/** Group length up to which insertion sort beats TypedArray.prototype.sort. */
const INSERTION_SORT_MAX = 24;

/** Sorts a[0, n) ascending in place. */
export function sortAscending(a: Float64Array, n: number): void {
  if (n > INSERTION_SORT_MAX) {
    a.subarray(0, n).sort();
    return;
  }
  for (let i = 1; i < n; i++) {
    const v = a[i];
    let j = i - 1;
    while (j >= 0 && a[j] > v) {
      a[j + 1] = a[j];
      j--;
    }
    a[j + 1] = v;
  }
}

/** One side's solution: keep |w| >= cutoff (count of them), scale alpha. Reused per group. */
export class ThresholdSolution {
  count = 0;
  alpha = 0;
  /** Smallest kept magnitude; Infinity when nothing is kept. */
  cutoff = Infinity;
}

/** Exact solve over magnitudes sorted ascending in mags[0, n). */
export function solveExactSorted(mags: Float64Array, n: number, out: ThresholdSolution): void {
  let sum = 0, bestScore = 0, bestK = 0, bestSum = 0;
  for (let k = 1; k <= n; k++) {
    const v = mags[n - k];
    if (v === 0) break; // zeros only lower S_k^2 / k
    sum += v;
    if (k < n && mags[n - k - 1] === v) continue; // inside a run of ties: not a candidate
    const score = (sum * sum) / k;
    if (score > bestScore) {
      bestScore = score;
      bestK = k;
      bestSum = sum;
    }
  }
  out.count = bestK;
  out.alpha = bestK ? bestSum / bestK : 0;
  out.cutoff = bestK ? mags[n - bestK] : Infinity;
}

/** TWN solve over magnitudes mags[0, n) (any order). */
export function solveTwn(mags: Float64Array, n: number, out: ThresholdSolution): void {
  let total = 0;
  for (let i = 0; i < n; i++) total += mags[i];
  const delta = n ? (0.7 * total) / n : 0;
  let sum = 0, count = 0, cutoff = Infinity;
  for (let i = 0; i < n; i++) {
    const v = mags[i];
    if (v > delta) {
      sum += v;
      count++;
      if (v < cutoff) cutoff = v;
    }
  }
  out.count = count;
  out.alpha = count ? sum / count : 0;
  out.cutoff = cutoff; // every kept v >= cutoff, every dropped v <= delta < cutoff
}

export interface TernaryGroupOptions {
  threshold: TernaryThreshold;
  asymmetric: boolean;
  /** Pack pre-ternarized groups losslessly with this relative tolerance; null: never. */
  losslessTolerance: number | null;
}

/**
 * Quantizes groups one at a time into codes, leaving the scales in alphaPos / alphaNeg (equal
 * when symmetric). Holds its scratch arrays, so a layer's hot loop allocates nothing.
 */
export class TernaryGroupQuantizer {
  alphaPos = 0;
  alphaNeg = 0;
  /** The last group was pre-ternarized and packed losslessly. */
  lossless = false;
  private readonly pos: Float64Array;
  private readonly neg: Float64Array;
  private readonly solPos = new ThresholdSolution();
  private readonly solNeg = new ThresholdSolution();
  private readonly magnitudes = new GroupMagnitudes();

  constructor(maxGroupLength: number, private readonly options: TernaryGroupOptions) {
    this.pos = new Float64Array(maxGroupLength);
    this.neg = new Float64Array(options.asymmetric ? maxGroupLength : 0);
  }

  /** Writes codes[start, start + length) for w[start, start + length). */
  quantize(w: Float32Array, start: number, length: number, codes: Int8Array): void {
    const { threshold, asymmetric, losslessTolerance } = this.options;
    const end = start + length;
    const m = this.magnitudes;
    if (losslessTolerance !== null && m.scan(w, start, length, losslessTolerance) && (asymmetric || m.symmetric(losslessTolerance))) {
      for (let i = start; i < end; i++) codes[i] = w[i] > 0 ? 1 : w[i] < 0 ? -1 : 0;
      this.alphaPos = asymmetric ? m.alphaPos : m.alpha;
      this.alphaNeg = asymmetric ? m.alphaNeg : this.alphaPos;
      this.lossless = true;
      return;
    }
    this.lossless = false;
    if (asymmetric) {
      let np = 0, nn = 0;
      for (let i = start; i < end; i++) {
        const x = w[i];
        if (x > 0) this.pos[np++] = x;
        else if (x < 0) this.neg[nn++] = -x;
      }
      this.solve(this.pos, np, this.solPos, threshold);
      this.solve(this.neg, nn, this.solNeg, threshold);
      const cp = this.solPos.cutoff, cn = this.solNeg.cutoff;
      for (let i = start; i < end; i++) {
        const x = w[i];
        codes[i] = x > 0 ? (x >= cp ? 1 : 0) : x < 0 ? (-x >= cn ? -1 : 0) : 0;
      }
      this.alphaPos = this.solPos.alpha;
      this.alphaNeg = this.solNeg.alpha;
    } else {
      for (let i = start; i < end; i++) this.pos[i - start] = Math.abs(w[i]);
      this.solve(this.pos, length, this.solPos, threshold);
      const c = this.solPos.cutoff;
      for (let i = start; i < end; i++) {
        const x = w[i];
        codes[i] = x >= c ? 1 : -x >= c ? -1 : 0;
      }
      this.alphaPos = this.alphaNeg = this.solPos.alpha;
    }
  }

  private solve(mags: Float64Array, n: number, out: ThresholdSolution, threshold: TernaryThreshold): void {
    if (threshold === 'twn') {
      solveTwn(mags, n, out);
    } else {
      sortAscending(mags, n);
      solveExactSorted(mags, n, out);
    }
  }
}

export interface TernaryGroup {
  /** t in {-1, 0, +1} per weight. */
  codes: Int8Array;
  /** Scale of +1 codes (and of -1 codes when symmetric), float32-rounded as stored. */
  alphaPos: number;
  /** Scale of -1 codes (a positive number; equals alphaPos when symmetric). */
  alphaNeg: number;
  /** The group was pre-ternarized and packed losslessly. */
  lossless: boolean;
}

/**
 * One group on its own (tests, tools): ternarizeGroup(values, { threshold: 'exact' }).
 * Defaults: exact, symmetric, lossless packing of pre-ternarized groups at tolerance 1e-6.
 */
export function ternarizeGroup(values: Float32Array, options: Partial<TernaryGroupOptions> = {}): TernaryGroup {
  const q = new TernaryGroupQuantizer(values.length, {
    threshold: options.threshold ?? 'exact',
    asymmetric: options.asymmetric ?? false,
    losslessTolerance: options.losslessTolerance === undefined ? 1e-6 : options.losslessTolerance,
  });
  const codes = new Int8Array(values.length);
  q.quantize(values, 0, values.length, codes);
  return { codes, alphaPos: Math.fround(q.alphaPos), alphaNeg: Math.fround(q.alphaNeg), lossless: q.lossless };
}
