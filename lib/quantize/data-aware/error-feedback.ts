// Sequential ternarization with error feedback (the GPTQ idea, on FGQ's grid): columns of a
// layer's GEMM matrix are quantized in order; each column's rounding error, weighted by the
// inverse input second moment H^-1, is pushed onto the columns not yet quantized, so the layer's
// OUTPUT error on the calibration inputs (W - Wq) H (W - Wq)^T is what gets minimised, not the
// weight error. A group's scale(s) are fitted when the loop reaches its first column, from its
// weights as updated by the errors pushed so far.
//
// With U the upper Cholesky factor of H^-1 (H^-1 = U^T U), after rounding column j of a row
//   e = (w_j - q_j) / U[j][j];   w_i -= e * U[j][i]   for i > j
// which is the optimal update of the remaining weights (Frantar et al., "GPTQ", 2022).
import type { GroupScheme } from '../weights/groups';
import { native } from '../../native';
import { GroupGrid, type GridOptions } from './group-grid';

export interface LayerCodes {
  /** [rows][K] codes in the GEMM layout (0 at padding). */
  codes: Int8Array;
  /** [rows][slots] scales of +1 / 4-bit codes. */
  scalePos: Float32Array;
  /** [rows][slots] magnitudes of -1 codes (asymmetric ternary), else null. */
  scaleNeg: Float32Array | null;
}

/** W[r][i] -= e[r] * U[j][i] for every row and every i > j. */
export type FeedbackStep = (W: Float64Array, U: Float64Array, R: number, K: number, j: number, e: Float64Array) => void;

const nativeFeedback: FeedbackStep = (W, U, R, K, j, e) => native().feedbackColumn(W, U, R, K, j, e);

/** The same step in TypeScript: the reference the native one is tested against. */
export const feedbackColumnJs: FeedbackStep = (W, U, R, K, j, e) => {
  const urow = j * K;
  for (let r = 0; r < R; r++) {
    const f = e[r];
    if (f === 0) continue;
    const base = r * K;
    for (let i = j + 1; i < K; i++) W[base + i] -= f * U[urow + i];
  }
};

/** True for the GEMM columns that are padding (no weight behind them). */
export function paddingColumns(scheme: GroupScheme): Uint8Array {
  const pad = new Uint8Array(scheme.layout.K);
  scheme.layout.source.forEach((s, k) => {
    if (s < 0) pad[k] = 1;
  });
  return pad;
}

/**
 * H made safely invertible: columns that are padding or never active get a unit diagonal and no
 * coupling, and every diagonal grows by `damping` times the mean active diagonal.
 */
export function dampedHessian(H: Float64Array, K: number, pad: Uint8Array, damping: number): Float64Array {
  const D = Float64Array.from(H);
  let sum = 0, live = 0;
  for (let k = 0; k < K; k++) {
    if (!pad[k] && H[k * K + k] > 0) {
      sum += H[k * K + k];
      live++;
    }
  }
  const lambda = live ? (damping * sum) / live : 1;
  for (let k = 0; k < K; k++) {
    if (pad[k] || !(H[k * K + k] > 0)) {
      for (let i = 0; i < K; i++) D[k * K + i] = D[i * K + k] = 0;
      D[k * K + k] = 1;
    } else {
      D[k * K + k] += lambda;
    }
  }
  return D;
}

/**
 * Codes and scales of a layer by sequential rounding with error feedback. With `fixed`, the
 * groups keep those scales (a second pass after a refit) instead of fitting their own.
 */
export function errorFeedbackCodes(rows: Float32Array, scheme: GroupScheme, Hd: Float64Array, grid: GridOptions, fixed?: LayerCodes, feedback: FeedbackStep = nativeFeedback): LayerCodes {
  const { K, rows: R } = scheme.layout;
  const G = scheme.G, slots = scheme.slotsPerRow;
  const pad = paddingColumns(scheme);
  const U = native().inverseCholeskyUpper(Hd, K); // = linalg.ts inverseCholeskyUpper, natively
  const W = Float64Array.from(rows);
  for (let k = 0; k < K; k++) if (pad[k]) for (let r = 0; r < R; r++) W[r * K + k] = 0;
  const codes = new Int8Array(R * K);
  const scalePos = new Float32Array(R * slots);
  const scaleNeg = grid.bits === 2 && grid.asym ? new Float32Array(R * slots) : null;
  const grids = Array.from({ length: R }, () => new GroupGrid(G, grid));
  const values = new Float64Array(G);
  const err = new Float64Array(R);
  for (let j = 0; j < K; j++) {
    if (j % G === 0) {
      // A new group: fit each row's scale(s) on the group's real (non-padding) columns.
      const slot = j / G;
      for (let r = 0; r < R; r++) {
        let n = 0;
        for (let i = 0; i < G; i++) if (!pad[j + i]) values[n++] = W[r * K + j + i];
        if (fixed) {
          grids[r].pos = fixed.scalePos[r * slots + slot];
          grids[r].neg = fixed.scaleNeg ? fixed.scaleNeg[r * slots + slot] : grids[r].pos;
        } else {
          grids[r].fit(values, n);
        }
        scalePos[r * slots + slot] = grids[r].pos;
        if (scaleNeg) scaleNeg[r * slots + slot] = grids[r].neg;
      }
    }
    if (pad[j]) continue;
    const ujj = U[j * K + j];
    for (let r = 0; r < R; r++) {
      const base = r * K;
      const w = W[base + j];
      const c = grids[r].code(w);
      codes[base + j] = c;
      err[r] = (w - grids[r].value(c)) / ujj;
    }
    // The O(R K) update of the columns not yet rounded (the O(R K^2) bulk of the method).
    if (j + 1 < K) feedback(W, U, R, K, j, err);
  }
  return { codes, scalePos, scaleNeg };
}
