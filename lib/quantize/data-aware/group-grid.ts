// The grid of one group for the data-aware quantizer: its scale(s) chosen from the group's
// current values by the same rules as the plain quantizer (exact or TWN ternary threshold,
// symmetric or asymmetric; 4-bit max or MSE clipping), and the nearest grid point of a value.
import { roundClamp } from '../weights/rounding';
import { INT4_CLIP_RATIOS } from '../weights/int4';
import { solveExactSorted, solveTwn, sortAscending, ThresholdSolution } from '../weights/ternary';

export interface GridOptions {
  bits: 2 | 4;
  asym: boolean;
  threshold: 'exact' | 'twn';
  int4Clipping: 'max' | 'mse';
}

export class GroupGrid {
  /** Scale of the +1 (or 4-bit) codes, float32-rounded. */
  pos = 0;
  /** Magnitude of the -1 codes (equals pos when symmetric). */
  neg = 0;
  private readonly a: Float64Array;
  private readonly b: Float64Array;
  private readonly sol = new ThresholdSolution();

  constructor(maxLength: number, private readonly o: GridOptions) {
    this.a = new Float64Array(maxLength);
    this.b = new Float64Array(maxLength);
  }

  /** Chooses the scales for values v[0, n). */
  fit(v: Float64Array, n: number): void {
    const { a, b, sol, o } = this;
    if (o.bits === 4) {
      let max = 0;
      for (let i = 0; i < n; i++) max = Math.max(max, Math.abs(v[i]));
      let s = Math.fround(max / 7);
      if (s > 0 && o.int4Clipping === 'mse') {
        let best = this.int4Error(v, n, s);
        for (let r = 1; r < INT4_CLIP_RATIOS.length; r++) {
          const c = Math.fround((INT4_CLIP_RATIOS[r] * max) / 7);
          const e = this.int4Error(v, n, c);
          if (e < best) {
            best = e;
            s = c;
          }
        }
      }
      this.pos = this.neg = s;
      return;
    }
    if (o.asym) {
      let np = 0, nn = 0;
      for (let i = 0; i < n; i++) {
        if (v[i] > 0) a[np++] = v[i];
        else if (v[i] < 0) b[nn++] = -v[i];
      }
      this.pos = Math.fround(this.solve(a, np));
      this.neg = Math.fround(this.solve(b, nn));
      return;
    }
    for (let i = 0; i < n; i++) a[i] = Math.abs(v[i]);
    this.pos = this.neg = Math.fround(this.solve(a, n));
    void sol;
  }

  private solve(m: Float64Array, n: number): number {
    if (this.o.threshold === 'twn') solveTwn(m, n, this.sol);
    else {
      sortAscending(m, n);
      solveExactSorted(m, n, this.sol);
    }
    return this.sol.alpha;
  }

  private int4Error(v: Float64Array, n: number, s: number): number {
    let e = 0;
    for (let i = 0; i < n; i++) {
      const d = v[i] - s * roundClamp(v[i] / s, -7, 7);
      e += d * d;
    }
    return e;
  }

  /** The code of the grid point nearest to x. */
  code(x: number): number {
    if (this.o.bits === 4) return this.pos > 0 ? roundClamp(x / this.pos, -7, 7) : 0;
    if (x > 0) return this.pos > 0 && x >= this.pos / 2 ? 1 : 0;
    if (x < 0) return this.neg > 0 && -x >= this.neg / 2 ? -1 : 0;
    return 0;
  }

  /** The value a code stands for. */
  value(code: number): number {
    return code > 0 ? code * this.pos : code < 0 ? code * this.neg : 0;
  }
}
