// Least-squares refit of the group scales with the codes fixed, on the layer's OUTPUT error:
// for each row w with codes fixed, Wq = sum_j a_j b_j where b_j is one scale's code pattern
// (symmetric: the group's codes; asymmetric: its +1 positions and, separately, its -1 positions
// negated; 4-bit: the group's codes), and the scales a minimise (w - Wq)^T H (w - Wq).
// The normal equations A a = c, A_ij = b_i^T H b_j, c_i = b_i^T H w, are solved by projected
// Gauss-Seidel sweeps (scales stay >= 0), warm-started from the current scales: each sweep
// costs (scales per row)^2, which keeps large layers affordable, and every step lowers the
// objective, so the result is never worse than the start.
import type { GroupScheme } from '../weights/groups';
import { native } from '../../native';
import type { LayerCodes } from './error-feedback';

const MAX_SWEEPS = 25;
const TOLERANCE = 1e-7;

export function refitScales(rows: Float32Array, scheme: GroupScheme, H: Float64Array, layer: LayerCodes): void {
  const { K, rows: R } = scheme.layout;
  const G = scheme.G, slots = scheme.slotsPerRow;
  const asym = layer.scaleNeg !== null;
  const m = asym ? 2 * slots : slots;
  const A = new Float64Array(m * m);
  const c = new Float64Array(m);
  const a = new Float64Array(m);
  const used = new Uint8Array(m);
  const row = new Float32Array(K);
  const rowCodes = new Int8Array(K);
  for (let r = 0; r < R; r++) {
    const base = r * K;
    row.set(rows.subarray(base, base + K));
    rowCodes.set(layer.codes.subarray(base, base + K));
    // A and c natively (the O(K^2) part); refitNormalEquationsJs is the same in TypeScript.
    native().refitNormalEquations(row, rowCodes, H, K, G, asym, A, c);
    used.fill(0);
    for (let k = 0; k < K; k++) {
      const code = rowCodes[k];
      if (code === 0) continue;
      const g = Math.floor(k / G);
      used[asym && code < 0 ? slots + g : g] = 1;
    }
    for (let i = 0; i < m; i++) a[i] = i < slots ? layer.scalePos[r * slots + i] : layer.scaleNeg![r * slots + i - slots];
    let scaleOfA = 0;
    for (let i = 0; i < m; i++) scaleOfA = Math.max(scaleOfA, A[i * m + i]);
    for (let sweep = 0; sweep < MAX_SWEEPS; sweep++) {
      let change = 0, size = 0;
      for (let i = 0; i < m; i++) {
        const aii = A[i * m + i];
        if (!used[i] || !(aii > 0)) continue;
        let s = c[i];
        const ri = i * m;
        for (let j = 0; j < m; j++) if (j !== i) s -= A[ri + j] * a[j];
        const next = Math.max(0, s / aii);
        change = Math.max(change, Math.abs(next - a[i]));
        size = Math.max(size, Math.abs(next));
        a[i] = next;
      }
      if (change <= TOLERANCE * Math.max(size, 1e-30) || scaleOfA === 0) break;
    }
    for (let i = 0; i < m; i++) {
      const v = Math.fround(a[i]);
      if (i < slots) layer.scalePos[r * slots + i] = v;
      else layer.scaleNeg![r * slots + i - slots] = v;
    }
  }
}

/**
 * The normal equations of one row in TypeScript (the reference the native helper is tested
 * against): A_ij = b_i^T H b_j, c_i = b_i^T H w.
 */
export function refitNormalEquationsJs(w: Float32Array, codes: Int8Array, H: Float64Array, K: number, G: number, asym: boolean): { A: Float64Array; c: Float64Array } {
  const slots = K / G;
  const m = asym ? 2 * slots : slots;
  const pattern = (j: number, k: number): number => (!asym ? codes[k] : j < slots ? (codes[k] > 0 ? 1 : 0) : codes[k] < 0 ? -1 : 0);
  const V = new Float64Array(m * K);
  for (let j = 0; j < m; j++) {
    const g = j % slots;
    for (let k = g * G; k < g * G + G; k++) {
      const p = pattern(j, k);
      if (p !== 0) for (let i = 0; i < K; i++) V[j * K + i] += p * H[k * K + i];
    }
  }
  const Hw = new Float64Array(K);
  for (let i = 0; i < K; i++) for (let k = 0; k < K; k++) Hw[i] += H[i * K + k] * w[k];
  const A = new Float64Array(m * m), c = new Float64Array(m);
  for (let i = 0; i < m; i++) {
    const gi = i % slots;
    for (let k = gi * G; k < gi * G + G; k++) c[i] += pattern(i, k) * Hw[k];
    for (let j = 0; j < m; j++) for (let k = gi * G; k < gi * G + G; k++) A[i * m + j] += pattern(i, k) * V[j * K + k];
  }
  return { A, c };
}
