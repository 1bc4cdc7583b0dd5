// Activation calibration for static quantization (shared/fgq.md section 4): run the fp32 graph
// once on sample inputs with every quantized layer's input as an extra output, and turn each
// tensor's values into a uint8 / uint4 scale and zero point ('max', 'percentile' or 'mse').
import type { Graph, ValueInfo } from '../ir';
import { InferenceSession } from '../session/inference-session';
import { TernionError } from '../errors';
import { Tensor } from '../tensor';

export type CalibrationMethod = 'max' | 'percentile' | 'mse';

export interface ActivationParams {
  scale: number;
  zeroPoint: number;
  bits: 8 | 4;
  /** The clipping range [lo, hi] the scale stands for (lo = 0 for unsigned tensors). */
  lo: number;
  hi: number;
  unsigned: boolean;
}

const f32 = Math.fround;

/** round half to even, like the kernels' round_small. */
export function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v - Math.trunc(v)) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Scale and zero point of a clipping range, computed as quant-common.h does (fp32). */
export function paramsOfRange(lo: number, hi: number, bits: 8 | 4, unsigned: boolean): ActivationParams {
  const qmax = (1 << bits) - 1;
  lo = Math.min(0, lo);
  hi = Math.max(0, hi);
  if (!(hi > lo) || !Number.isFinite(hi - lo)) return { scale: 1, zeroPoint: 0, bits, lo, hi, unsigned };
  const scale = f32(f32(f32(hi) - f32(lo)) / qmax);
  if (!(scale > 0) || !Number.isFinite(scale)) return { scale: 1, zeroPoint: 0, bits, lo, hi, unsigned };
  const zp = Math.min(qmax, Math.max(0, roundHalfEven(f32(-f32(lo) / scale))));
  return { scale, zeroPoint: zp, bits, lo, hi, unsigned };
}

/** Deterministic subsample (every k-th value) so MSE / percentile stay fast on big tensors. */
function sample(x: Float32Array, limit: number): Float32Array {
  if (x.length <= limit) return x;
  const step = x.length / limit;
  const out = new Float32Array(limit);
  for (let i = 0; i < limit; i++) out[i] = x[Math.floor(i * step)];
  return out;
}

function quantMse(x: Float32Array, p: ActivationParams): number {
  const qmax = (1 << p.bits) - 1;
  let err = 0;
  for (let i = 0; i < x.length; i++) {
    let v = x[i] / p.scale;
    v = Math.min(qmax - p.zeroPoint, Math.max(-p.zeroPoint, v));
    const d = (roundHalfEven(v)) * p.scale - x[i];
    err += d * d;
  }
  return err / Math.max(1, x.length);
}

export const MSE_RATIOS: readonly number[] = Array.from({ length: 40 }, (_, i) => 1 - i * 0.02125); // 1 .. 0.17

/** Range of one tensor's calibration values for the chosen method. */
export function calibrateTensor(values: Float32Array, method: CalibrationMethod, bits: 8 | 4): ActivationParams {
  let min = Infinity, max = -Infinity;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v !== v) continue;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  if (min === Infinity) return paramsOfRange(0, 0, bits, true);
  const unsigned = min >= 0;
  if (method === 'max') return paramsOfRange(unsigned ? 0 : min, max, bits, unsigned);
  const s = sample(values, 1 << 18);
  if (method === 'percentile') {
    const abs = Float32Array.from(s, (v) => Math.abs(v)).sort();
    const a = abs[Math.min(abs.length - 1, Math.floor(0.9999 * (abs.length - 1)))];
    return paramsOfRange(unsigned ? 0 : Math.max(min, -a), Math.min(max, a), bits, unsigned);
  }
  let best = paramsOfRange(unsigned ? 0 : min, max, bits, unsigned);
  let bestErr = quantMse(s, best);
  for (const r of MSE_RATIOS.slice(1)) {
    const p = paramsOfRange(unsigned ? 0 : min * r, max * r, bits, unsigned);
    const e = quantMse(s, p);
    if (e < bestErr) {
      best = p;
      bestErr = e;
    }
  }
  return best;
}

/**
 * Values of the named tensors when the fp32 graph runs on `input` (fed to the graph's single
 * input). Graph inputs among the names are returned as the fed data.
 */
export async function collectTensors(graph: Graph, input: Tensor, names: readonly string[]): Promise<Map<string, Float32Array>> {
  const result = new Map<string, Float32Array>();
  const inputName = graph.inputs[0].name;
  const extra: ValueInfo[] = [];
  const have = new Set(graph.outputs.map((o) => o.name));
  for (const name of names) {
    if (name === inputName) {
      result.set(name, input.data as Float32Array);
      continue;
    }
    if (have.has(name)) continue;
    const vt = graph.valueInfo.get(name);
    if (!vt) throw new TernionError('ERR_INVALID_ARGUMENT', `Calibration: no type known for tensor "${name}"`);
    extra.push({ name, dtype: vt.dtype, shape: vt.shape });
    have.add(name);
  }
  const g: Graph = { ...graph, outputs: [...graph.outputs, ...extra] };
  const session = InferenceSession.fromGraph(g, { optimize: false });
  try {
    const outs = await session.run({ [inputName]: input });
    for (const name of names) {
      if (result.has(name)) continue;
      const t = outs[name];
      if (!t || t.type !== 'float32') throw new TernionError('ERR_INVALID_ARGUMENT', `Calibration: tensor "${name}" is not float32`);
      result.set(name, t.data as Float32Array);
    }
  } finally {
    await session.release();
  }
  return result;
}
