// Activation calibration for static quantization (shared/fgq.md section 4): run the fp32 graph
// on sample inputs, batch by batch, with every quantized layer's input as an extra output;
// observe each tensor's range (and a fixed-size sample of its values) and turn it into a
// uint8 / uint4 scale and zero point ('max', 'percentile' or 'mse'; 'pow2' scales for dynamic
// fixed point).
import type { Graph, ValueInfo } from '../ir';
import { InferenceSession } from '../session/inference-session';
import { TernionError, throwIfAborted } from '../errors';
import { Tensor } from '../tensor';
import { calibrationBatches, feedBatchAxes, sampleCount, type CalibrationFeeds, type CalibrationInput } from './calibration-data';

export type CalibrationMethod = 'max' | 'percentile' | 'mse';
/** 'free': any fp32 scale; 'pow2': a power of two (the papers' dynamic fixed point). */
export type ActivationScaleMode = 'free' | 'pow2';

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

/**
 * Scale and zero point of a clipping range, computed as quant-common.h does (fp32). With
 * 'pow2' the scale is the smallest power of two whose grid still spans the range.
 */
export function paramsOfRange(lo: number, hi: number, bits: 8 | 4, unsigned: boolean, scaleMode: ActivationScaleMode = 'free'): ActivationParams {
  const qmax = (1 << bits) - 1;
  lo = Math.min(0, lo);
  hi = Math.max(0, hi);
  if (!(hi > lo) || !Number.isFinite(hi - lo)) return { scale: 1, zeroPoint: 0, bits, lo, hi, unsigned };
  let scale = f32(f32(f32(hi) - f32(lo)) / qmax);
  if (scaleMode === 'pow2' && scale > 0) scale = 2 ** Math.ceil(Math.log2(scale));
  if (!(scale > 0) || !Number.isFinite(scale)) return { scale: 1, zeroPoint: 0, bits, lo, hi, unsigned };
  const zp = Math.min(qmax, Math.max(0, roundHalfEven(f32(-f32(lo) / scale))));
  return { scale, zeroPoint: zp, bits, lo, hi, unsigned };
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

/** Values kept per tensor for 'percentile' and 'mse'. */
export const SAMPLE_LIMIT = 1 << 18;

function paramsFromObservation(min: number, max: number, s: Float32Array, method: CalibrationMethod, bits: 8 | 4, scaleMode: ActivationScaleMode): ActivationParams {
  if (min === Infinity) return paramsOfRange(0, 0, bits, true, scaleMode);
  const unsigned = min >= 0;
  if (method === 'max' || s.length === 0) return paramsOfRange(unsigned ? 0 : min, max, bits, unsigned, scaleMode);
  if (method === 'percentile') {
    const abs = Float32Array.from(s, (v) => Math.abs(v)).sort();
    const a = abs[Math.min(abs.length - 1, Math.floor(0.9999 * (abs.length - 1)))];
    return paramsOfRange(unsigned ? 0 : Math.max(min, -a), Math.min(max, a), bits, unsigned, scaleMode);
  }
  let best = paramsOfRange(unsigned ? 0 : min, max, bits, unsigned, scaleMode);
  let bestErr = quantMse(s, best);
  for (const r of MSE_RATIOS.slice(1)) {
    const p = paramsOfRange(unsigned ? 0 : min * r, max * r, bits, unsigned, scaleMode);
    const e = quantMse(s, p);
    if (e < bestErr) {
      best = p;
      bestErr = e;
    }
  }
  return best;
}

/**
 * Streams one tensor's calibration values: exact min / max, and (when `keep` > 0) a uniform
 * random sample of at most `keep` values (reservoir sampling with a fixed seed: deterministic
 * for the same data in the same order).
 */
export class RangeObserver {
  min = Infinity;
  max = -Infinity;
  private readonly reservoir: Float32Array;
  private kept = 0;
  private seen = 0;
  private state = 0x9e3779b9;

  constructor(keep: number) {
    this.reservoir = new Float32Array(keep);
  }

  private random(): number {
    // mulberry32
    let t = (this.state = (this.state + 0x6d2b79f5) | 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  observe(values: Float32Array): void {
    let { min, max } = this;
    const cap = this.reservoir.length;
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (v !== v) continue;
      if (v < min) min = v;
      if (v > max) max = v;
      if (cap === 0) continue;
      if (this.kept < cap) {
        this.reservoir[this.kept++] = v;
      } else {
        const j = Math.floor(this.random() * (this.seen + 1));
        if (j < cap) this.reservoir[j] = v;
      }
      this.seen++;
    }
    this.min = min;
    this.max = max;
  }

  /** The sampled values (a view; at most `keep`). */
  get sample(): Float32Array {
    return this.reservoir.subarray(0, this.kept);
  }

  params(method: CalibrationMethod, bits: 8 | 4, scaleMode: ActivationScaleMode = 'free'): ActivationParams {
    return paramsFromObservation(this.min, this.max, this.sample, method, bits, scaleMode);
  }
}

export interface CalibrationPassOptions {
  signal?: AbortSignal;
  /** Called after each batch with the number of samples read so far. */
  onBatch?: (samples: number) => void;
  /** Stop after this many samples. */
  limit?: number;
  /** Tensors of any type may be named (default: float32 activations only). */
  anyType?: boolean;
}

/**
 * Runs `graph` (fp32) on every calibration batch with the named tensors as extra outputs and
 * hands them to `visit` (graph inputs among the names are the fed tensors themselves). One
 * session for the whole pass; one batch of activations alive at a time.
 */
export async function forEachCalibrationBatch(
  graph: Graph,
  input: CalibrationInput,
  names: readonly string[],
  visit: (values: Map<string, Tensor>, batch: CalibrationFeeds) => void | Promise<void>,
  options: CalibrationPassOptions = {},
): Promise<number> {
  const extra: ValueInfo[] = [];
  const have = new Set([...graph.inputs, ...graph.outputs].map((o) => o.name));
  for (const name of names) {
    if (have.has(name)) continue;
    const vt = graph.valueInfo.get(name);
    if (!vt) throw new TernionError('ERR_INVALID_ARGUMENT', `Calibration: no type known for tensor "${name}"`);
    extra.push({ name, dtype: vt.dtype, shape: vt.shape });
    have.add(name);
  }
  const g: Graph = { ...graph, outputs: [...graph.outputs, ...extra] };
  const session = InferenceSession.fromGraph(g, { optimize: false });
  let samples = 0;
  try {
    for await (const batch of calibrationBatches(input, graph.inputs, options.limit)) {
      throwIfAborted(options.signal);
      const outs = await session.run(batch);
      const values = new Map<string, Tensor>();
      for (const name of names) {
        const t = batch[name] ?? outs[name];
        if (!t || (t.type !== 'float32' && !options.anyType)) throw new TernionError('ERR_INVALID_ARGUMENT', `Calibration: tensor "${name}" is not float32`);
        values.set(name, t);
      }
      await visit(values, batch);
      samples += sampleCount(batch, feedBatchAxes(graph.inputs, batch));
      options.onBatch?.(samples);
    }
  } finally {
    await session.release();
  }
  throwIfAborted(options.signal);
  return samples;
}
