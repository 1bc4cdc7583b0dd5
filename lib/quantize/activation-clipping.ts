// calibrate: 'auto' (issue 8): each activation tensor's clipping is chosen among 'max',
// 'percentile' and 'mse' by what matters, the error it causes in the OUTPUT of the layers that
// read it: sum over those layers of ||W (x - q(x))||^2 on sample input rows of the first
// calibration batch (fp32 weights; W times the quantization error by the fp32 GEMM kernel).
// Ties keep the earlier candidate ('max' first), so the choice is deterministic.
import { PackedMatrix } from '../kernels';
import { Tensor } from '../tensor';
import type { ActivationParams, CalibrationMethod } from './calibrate';
import type { LayerRows } from './data-aware';
import { fakeQuantize } from './data-aware/sequential';
import type { LayerCandidate } from './rewrite';
import { gemmLayout, toGemmRows } from './weights';

export const AUTO_CANDIDATES: readonly CalibrationMethod[] = ['max', 'percentile', 'mse'];

/** Sample rows of one layer's fp32 input, row-major [count][K]. */
export interface LayerProbe {
  rows: Float32Array;
  count: number;
  K: number;
}

export function probeRows(sampler: LayerRows, input: Tensor): LayerProbe {
  const { columns, count } = sampler.sample(input);
  const K = sampler.K;
  const rows = new Float32Array(count * K);
  for (let k = 0; k < K; k++) for (let r = 0; r < count; r++) rows[r * K + k] = columns[k * count + r];
  return { rows, count, K };
}

/** The output error of `layer` when its sampled input rows are quantized with `p`. */
function outputError(layer: LayerCandidate, packed: PackedMatrix, probe: LayerProbe, p: ActivationParams): number {
  const q = fakeQuantize(probe.rows, p);
  for (let i = 0; i < q.length; i++) q[i] = probe.rows[i] - q[i];
  const y = packed.matmul(q, probe.count) as Float32Array;
  let e = 0;
  for (let i = 0; i < y.length; i++) e += y[i] * y[i];
  return e;
}

/**
 * For every tensor in `candidates` (its parameters under each AUTO_CANDIDATES method), the one
 * whose readers' output error is least, and the method chosen.
 */
export function chooseClipping(
  candidates: ReadonlyMap<string, ActivationParams[]>,
  layers: readonly LayerCandidate[],
  probes: ReadonlyMap<string, LayerProbe>,
): Map<string, { params: ActivationParams; method: CalibrationMethod }> {
  const errors = new Map<string, Float64Array>();
  for (const [name, c] of candidates) errors.set(name, new Float64Array(c.length));
  for (const layer of layers) {
    const probe = probes.get(layer.node.name);
    const c = candidates.get(layer.node.inputs[0]);
    if (!probe || !c || probe.count === 0) continue;
    const layout = gemmLayout(layer.dims, 1);
    const packed = PackedMatrix.float32(toGemmRows(layer.weights, layout), layout.rows, layout.K);
    try {
      const e = errors.get(layer.node.inputs[0])!;
      c.forEach((p, i) => {
        e[i] += outputError(layer, packed, probe, p);
      });
    } finally {
      packed.release();
    }
  }
  const out = new Map<string, { params: ActivationParams; method: CalibrationMethod }>();
  for (const [name, c] of candidates) {
    const e = errors.get(name)!;
    let best = 0;
    for (let i = 1; i < c.length; i++) if (e[i] < e[best]) best = i;
    out.set(name, { params: c[best], method: AUTO_CANDIDATES[best] });
  }
  return out;
}
