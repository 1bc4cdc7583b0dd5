// Dense symmetric positive-definite algebra in float64 for the data-aware quantizer: Cholesky
// factorisation, inverse and solve of small (K up to a few thousand) row-major matrices.
import { TernionError } from '../../errors';

/** In place: the lower Cholesky factor L of A = L L^T (upper triangle left as is). */
export function choleskyLower(A: Float64Array, n: number): void {
  for (let j = 0; j < n; j++) {
    const rj = j * n;
    let d = A[rj + j];
    for (let k = 0; k < j; k++) d -= A[rj + k] * A[rj + k];
    if (!(d > 0) || !Number.isFinite(d)) throw new TernionError('ERR_INTERNAL', `Cholesky: matrix not positive definite at column ${j} (pivot ${d})`);
    const ljj = Math.sqrt(d);
    A[rj + j] = ljj;
    for (let i = j + 1; i < n; i++) {
      const ri = i * n;
      let s = A[ri + j];
      for (let k = 0; k < j; k++) s -= A[ri + k] * A[rj + k];
      A[ri + j] = s / ljj;
    }
  }
}

/** The inverse of a lower-triangular L (row-major), lower; rows are updated contiguously. */
function invertLower(L: Float64Array, n: number): Float64Array {
  const M = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    const ri = i * n;
    // row i of M: (e_i - sum_{k<i} L[i][k] M[k]) / L[i][i]; M[k] is zero past column k.
    M[ri + i] = 1;
    for (let k = 0; k < i; k++) {
      const l = L[ri + k];
      if (l === 0) continue;
      const rk = k * n;
      for (let j = 0; j <= k; j++) M[ri + j] -= l * M[rk + j];
    }
    const d = 1 / L[ri + i];
    for (let j = 0; j <= i; j++) M[ri + j] *= d;
  }
  return M;
}

/** The inverse of SPD A (n x n, row-major), as a new full symmetric matrix. */
export function inverseSpd(A: Float64Array, n: number): Float64Array {
  const L = Float64Array.from(A);
  choleskyLower(L, n);
  const M = invertLower(L, n);
  // A^{-1} = M^T M, accumulated as rank-1 updates by rows of M (contiguous access).
  const inv = new Float64Array(n * n);
  for (let k = 0; k < n; k++) {
    const rk = k * n;
    for (let i = 0; i <= k; i++) {
      const m = M[rk + i];
      if (m === 0) continue;
      const ri = i * n;
      for (let j = i; j <= k; j++) inv[ri + j] += m * M[rk + j];
    }
  }
  for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) inv[i * n + j] = inv[j * n + i];
  return inv;
}

/** The upper Cholesky factor U of SPD A = U^T U, as a new matrix (zeros below the diagonal). */
export function choleskyUpper(A: Float64Array, n: number): Float64Array {
  const L = Float64Array.from(A);
  choleskyLower(L, n);
  const U = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) U[j * n + i] = L[i * n + j];
  return U;
}

/**
 * The upper Cholesky factor U of H^-1 (H^-1 = U^T U) without forming H^-1: with J the index
 * reversal, J H J = L L^T gives H = R R^T for the upper R = J L J, so H^-1 = R^-T R^-1 and
 * U = R^-1. One Cholesky and one triangular inverse (n^3 / 3 in all).
 */
export function inverseCholeskyUpper(H: Float64Array, n: number): Float64Array {
  const Hr = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) Hr[i * n + j] = H[(n - 1 - i) * n + (n - 1 - j)];
  choleskyLower(Hr, n);
  const Li = invertLower(Hr, n); // (J R J)^-1 = J R^-1 J
  const U = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = i; j < n; j++) U[i * n + j] = Li[(n - 1 - i) * n + (n - 1 - j)];
  return U;
}

/** Solves A x = b for SPD A (n x n) in place of b; A is factored in place. */
export function solveSpdInPlace(A: Float64Array, b: Float64Array, n: number): void {
  choleskyLower(A, n);
  for (let i = 0; i < n; i++) {
    let s = b[i];
    for (let k = 0; k < i; k++) s -= A[i * n + k] * b[k];
    b[i] = s / A[i * n + i];
  }
  for (let i = n - 1; i >= 0; i--) {
    let s = b[i];
    for (let k = i + 1; k < n; k++) s -= A[k * n + i] * b[k];
    b[i] = s / A[i * n + i];
  }
}
