// Least-squares refit of the group scales with the codes fixed, on the layer's OUTPUT error:
// for each row w with codes fixed, Wq = sum_j a_j b_j where b_j is one scale's code pattern
// (symmetric: the group's codes; asymmetric: its +1 positions and, separately, its -1 positions
// negated; 4-bit: the group's codes), and the scales a minimise (w - Wq)^T H (w - Wq).
// The normal equations A a = c, A_ij = b_i^T H b_j, c_i = b_i^T H w, are solved by projected
// Gauss-Seidel sweeps (scales stay >= 0), warm-started from the current scales: each sweep
// costs (scales per row)^2, which keeps large layers affordable, and every step lowers the
// objective, so the result is never worse than the start.
import type { GroupScheme } from '../weights/groups';
import type { LayerCodes } from './error-feedback';

const MAX_SWEEPS = 50;
const TOLERANCE = 1e-10;

export function refitScales(rows: Float32Array, scheme: GroupScheme, H: Float64Array, layer: LayerCodes): void {
  const { K, rows: R } = scheme.layout;
  const G = scheme.G, slots = scheme.slotsPerRow;
  const asym = layer.scaleNeg !== null;
  const m = asym ? 2 * slots : slots;
  const Hw = new Float64Array(K);
  const V = new Float64Array(m * K); // V[j] = H b_j
  const A = new Float64Array(m * m);
  const c = new Float64Array(m);
  const a = new Float64Array(m);
  const used = new Uint8Array(m);
  for (let r = 0; r < R; r++) {
    const base = r * K;
    // b_j's support lies in its slot's columns; the sign pattern: code value (sym / 4-bit),
    // +1 where code > 0 (asym "pos"), +1 where code < 0 (asym "neg", whose value is -a * 1).
    const pattern = (j: number, k: number): number => {
      const code = layer.codes[base + k];
      if (!asym) return code;
      return j < slots ? (code > 0 ? 1 : 0) : code < 0 ? -1 : 0;
    };
    V.fill(0);
    used.fill(0);
    for (let j = 0; j < m; j++) {
      const g = j % slots;
      const vj = j * K;
      for (let k = g * G; k < g * G + G; k++) {
        const p = pattern(j, k);
        if (p === 0) continue;
        used[j] = 1;
        const hk = k * K;
        for (let i = 0; i < K; i++) V[vj + i] += p * H[hk + i];
      }
    }
    for (let i = 0; i < K; i++) {
      let s = 0;
      const hi = i * K;
      for (let k = 0; k < K; k++) s += H[hi + k] * rows[base + k];
      Hw[i] = s;
    }
    for (let i = 0; i < m; i++) {
      const gi = i % slots;
      let ci = 0;
      for (let k = gi * G; k < gi * G + G; k++) {
        const p = pattern(i, k);
        if (p !== 0) ci += p * Hw[k];
      }
      c[i] = ci;
      for (let j = i; j < m; j++) {
        const vj = j * K;
        let s = 0;
        for (let k = gi * G; k < gi * G + G; k++) {
          const p = pattern(i, k);
          if (p !== 0) s += p * V[vj + k];
        }
        A[i * m + j] = A[j * m + i] = s;
      }
      a[i] = i < slots ? layer.scalePos[r * slots + i] : layer.scaleNeg![r * slots + i - slots];
    }
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
