// Input data for the commands: .npy arrays (first dim = sample count) turned into a model
// input's dtype and per-sample shape, preprocessing (--scale, --mean, --std), and batched runs.
//
// Conversion to a float32 input: value * scale, then (v - mean[c]) / std[c] per channel (dim 1).
// The default scale is 1 for float32 (and integer) data, and 1/255 for uint8 data, which the
// command notes on stderr: uint8 .npy files are almost always 0..255 pixels, and ternion's
// embedded model takes pixels in [0, 1]. `--scale 1` keeps raw uint8 values.
import { TernionError } from '../errors';
import type { InputMetadata } from '../session/feeds';
import type { InferenceSession } from '../session/inference-session';
import { Tensor, type TensorType } from '../tensor';
import { existsSync } from 'node:fs';
import { loadNpy } from '../data/npy';
import { narrowToFloat16 } from '../onnx/half-float';
import { UsageError, numberList, parseNumber, type ParsedArgs } from './args';

export interface Preprocess {
  /** Multiplier (default: 1/255 for uint8 data, 1 otherwise). */
  scale?: number;
  /** Per-channel (or one) mean subtracted after scaling. */
  mean?: number[];
  /** Per-channel (or one) divisor applied after the mean. */
  std?: number[];
}

export const PREPROCESS_FLAGS = [{ name: 'scale' }, { name: 'mean' }, { name: 'std' }];

/** Usage lines of --scale / --mean / --std, their descriptions starting at column `column`. */
export function preprocessUsage(column: number): string {
  const rows: [string, string][] = [
    ['--scale S', 'multiply the data by S first (default 1/255 for uint8 data, 1 otherwise)'],
    ['--mean M[,M...]', 'then subtract a mean per channel (one value: every channel)'],
    ['--std D[,D...]', 'then divide by a standard deviation per channel'],
  ];
  return rows.map(([flag, what]) => `  ${flag.padEnd(column - 2)}${what}`).join('\n');
}

export function preprocessOf(args: ParsedArgs): Preprocess {
  const scale = args.values.get('scale');
  const std = numberList(args, 'std');
  if (std?.some((d) => d === 0)) throw new TernionError('ERR_INVALID_ARGUMENT', `Expected non-zero values for --std but received "${args.values.get('std')}"`);
  return { scale: scale === undefined ? undefined : parseNumber(scale, '--scale'), mean: numberList(args, 'mean'), std };
}

function fmt(shape: readonly (number | string)[]): string {
  return `[${shape.join(', ')}]`;
}

/**
 * The dims `data` (from `file`) takes for the model input `meta`: the .npy's first dim is the
 * sample count and the rest must be the model's per-sample shape. Size-1 dims may be missing or
 * extra ([n, 28, 28] feeds [N, 1, 28, 28]) when the model's per-sample shape is fully known.
 */
export function sampleDims(dims: readonly number[], meta: InputMetadata, file: string): number[] {
  if (dims.length === 0) throw new TernionError('ERR_SHAPE_MISMATCH', `${file} holds a scalar; its first dim must be the sample count`);
  const shape = meta.shape;
  if (shape === undefined) return [...dims];
  const want = shape.slice(1);
  const got = dims.slice(1);
  if (want.length === got.length && want.every((d, i) => typeof d !== 'number' || d === got[i])) return [...dims];
  const squeeze = (s: readonly (number | string)[]) => s.filter((d) => d !== 1);
  if (want.every((d) => typeof d === 'number')) {
    const a = squeeze(want), b = squeeze(got);
    if (a.length === b.length && a.every((d, i) => d === b[i])) return [dims[0], ...(want as number[])];
  }
  throw new TernionError(
    'ERR_SHAPE_MISMATCH',
    `${file} has shape ${fmt(dims)}: ${dims[0]} samples of ${fmt(got)}, but model input "${meta.name}" takes samples of ${fmt(want)} ` +
      `(its shape is ${fmt(shape)}; the .npy's first dim is the sample count)`,
  );
}

/**
 * `NAME=X.npy` values of a repeatable flag (`--input`, `--calib`) bound to the model's inputs:
 * NAME may be left out when the model has one input; every input must get exactly one file.
 */
export function bindInputFiles(values: readonly string[], names: readonly string[], flag: string, usage: string): Map<string, string> {
  const bound = new Map<string, string>();
  const list = names.map((n) => `"${n}"`).join(', ');
  for (const v of values) {
    const eq = v.indexOf('=');
    const left = eq > 0 ? v.slice(0, eq) : undefined;
    let name: string, file: string;
    if (left !== undefined && names.includes(left)) {
      name = left;
      file = v.slice(eq + 1);
    } else if (left !== undefined && !existsSync(v)) {
      throw new TernionError('ERR_INPUT_NAME', `The model has no input "${left}" (its inputs: ${list})`);
    } else if (names.length === 1) {
      name = names[0];
      file = v;
    } else {
      throw new TernionError('ERR_INPUT_NAME', `${flag} ${v} names no input; the model has ${names.length}: write ${flag} NAME=X.npy with NAME one of ${list}`);
    }
    if (bound.has(name)) throw new UsageError(`${flag}: input "${name}" is given twice`, usage);
    bound.set(name, file);
  }
  const missing = names.filter((n) => !bound.has(n));
  if (missing.length) throw new TernionError('ERR_INPUT_NAME', `Missing ${flag} for ${missing.map((n) => `"${n}"`).join(', ')}`);
  return bound;
}

/**
 * Samples from one .npy per model input (`bound`: input name -> file), for calibration: the
 * first `count` of each (all when undefined), converted to the input's type (float32 inputs
 * with the preprocessing); every input must give the same number.
 */
export function samplesFromFiles(bound: ReadonlyMap<string, string>, inputs: readonly InputMetadata[], pre: Preprocess, count: number | undefined,
  note: (line: string) => void): Record<string, Tensor> {
  const feeds: Record<string, Tensor> = {};
  let samples: number | undefined, samplesOf = '';
  for (const meta of inputs) {
    const file = bound.get(meta.name)!;
    const raw = loadNpy(file);
    const n = Math.min(count ?? raw.dims[0] ?? 0, raw.dims[0] ?? 0);
    if (n === 0) throw new TernionError('ERR_SHAPE_MISMATCH', `${file} holds no samples (shape [${raw.dims.join(', ')}])`);
    if (samples !== undefined && n !== samples) {
      throw new TernionError('ERR_SHAPE_MISMATCH', `${file} gives ${n} samples but ${samplesOf} gives ${samples}; every input needs the same count (first dim)`);
    }
    samples = n;
    samplesOf = file;
    feeds[meta.name] = toModelInput(rowsOf(raw, 0, n), meta, meta.type === 'float32' ? pre : {}, file, note);
  }
  return feeds;
}

/** Converts an array to the model input's dtype with the preprocessing; notes go to `note`. */
export function toModelInput(t: Tensor, meta: InputMetadata, pre: Preprocess, file: string, note: (line: string) => void): Tensor {
  if (meta.type === 'float16') {
    // A float16 model: the data prepared as for float32, then rounded to half.
    const wide = toModelInput(t, { ...meta, type: 'float32' }, pre, file, note);
    return new Tensor('float16', narrowToFloat16(wide.data as Float32Array), wide.dims);
  }
  const dims = sampleDims(t.dims, meta, file);
  if (meta.type !== 'float32') {
    if (pre.scale !== undefined || pre.mean || pre.std) {
      throw new TernionError('ERR_INVALID_ARGUMENT', `--scale, --mean and --std apply to float32 inputs; model input "${meta.name}" is ${meta.type}`);
    }
    if (t.type !== meta.type) throw new TernionError('ERR_DTYPE', `${file} holds ${t.type} data but model input "${meta.name}" takes ${meta.type}`);
    return t.reshape(dims);
  }
  if (t.type === 'bool') throw new TernionError('ERR_DTYPE', `${file} holds bool data; model input "${meta.name}" takes float32`);
  let scale = pre.scale;
  if (scale === undefined && t.type === 'uint8') {
    scale = 1 / 255;
    note(`note: ${file} is uint8; fed to the model as value/255 (pass --scale 1 to keep 0..255)`);
  }
  scale ??= 1;
  const channels = dims.length > 1 ? dims[1] : 1;
  const perChannel = dims.slice(2).reduce((a, b) => a * b, 1);
  const pick = (list: number[] | undefined, what: string, dflt: number): Float32Array => {
    const out = new Float32Array(channels).fill(dflt);
    if (!list) return out;
    if (list.length === 1) return out.fill(list[0]);
    if (list.length !== channels) {
      throw new TernionError('ERR_SHAPE_MISMATCH', `--${what} has ${list.length} values but model input "${meta.name}" has ${channels} channels (dim 1)`);
    }
    out.set(list);
    return out;
  };
  const mean = pick(pre.mean, 'mean', 0), std = pick(pre.std, 'std', 1);
  const identity = scale === 1 && !pre.mean && !pre.std;
  if (t.type === 'float32' && identity) return t.reshape(dims);
  const src = t.data;
  const out = new Float32Array(t.size);
  for (let i = 0; i < out.length; i++) {
    const c = Math.floor(i / perChannel) % channels;
    out[i] = (Number(src[i]) * scale - mean[c]) / std[c];
  }
  return new Tensor('float32', out, dims);
}

/** Rows [from, from + count) of a tensor along dim 0, zero-padded to `rows` rows. */
export function rowsOf<T extends TensorType>(t: Tensor<T>, from: number, count: number, rows = count): Tensor<T> {
  const per = t.dims.slice(1).reduce((a, b) => a * b, 1);
  const data = t.data.subarray(from * per, (from + count) * per) as Tensor<T>['data'];
  const dims = [rows, ...t.dims.slice(1)];
  if (rows === count) return new Tensor(t.type, data, dims);
  const Ctor = data.constructor as new (n: number) => Tensor<T>['data'];
  const padded = new Ctor(rows * per);
  (padded as unknown as { set(a: ArrayLike<unknown>): void }).set(data as unknown as ArrayLike<unknown>);
  return new Tensor(t.type, padded, dims);
}

/** The batch size a model input allows: its fixed first dim, or `wanted` when that dim is free. */
export function batchSizeFor(metas: readonly InputMetadata[], wanted: number): number {
  for (const m of metas) {
    const d = m.shape?.[0];
    if (typeof d === 'number' && d > 0) return d;
  }
  return wanted;
}

/**
 * Runs `inputs` (all with `count` samples along dim 0) through the session in batches and calls
 * `each` with the outputs of every batch, trimmed to the real rows when a fixed batch was padded.
 */
export async function runInBatches(
  session: InferenceSession,
  inputs: Record<string, Tensor>,
  count: number,
  batch: number,
  each: (outputs: Record<string, Tensor>, from: number, rows: number) => void | Promise<void>,
): Promise<void> {
  const size = batchSizeFor(session.inputMetadata, batch);
  const fixed = session.inputMetadata.some((m) => typeof m.shape?.[0] === 'number' && m.shape[0] > 0);
  for (let from = 0; from < count; from += size) {
    const rows = Math.min(size, count - from);
    const feeds: Record<string, Tensor> = {};
    for (const [name, t] of Object.entries(inputs)) feeds[name] = rowsOf(t, from, rows, fixed ? size : rows);
    const outputs = await session.run(feeds);
    if (fixed && rows < size) {
      for (const [name, o] of Object.entries(outputs)) if (o.dims[0] === size) outputs[name] = rowsOf(o, 0, rows);
    }
    await each(outputs, from, rows);
  }
}

/** Concatenates tensors along dim 0. */
export function concatRows(parts: Tensor[]): Tensor {
  if (parts.length === 1) return parts[0];
  const first = parts[0];
  const Ctor = first.data.constructor as new (n: number) => Tensor['data'];
  const total = parts.reduce((a, p) => a + p.size, 0);
  const data = new Ctor(total);
  let at = 0;
  for (const p of parts) {
    (data as unknown as { set(a: ArrayLike<unknown>, o: number): void }).set(p.data as unknown as ArrayLike<unknown>, at);
    at += p.size;
  }
  return new Tensor(first.type, data as Float32Array, [parts.reduce((a, p) => a + p.dims[0], 0), ...first.dims.slice(1)]);
}

/** An input fed whole to every run (not per sample): what --value fills. */
export interface FixedInput {
  name: string;
  dtype: TensorType;
  dims: readonly number[];
}

/**
 * `--value NAME=V[,V...]` (a sample rate: --value sr=16000) as the tensor of that input: one
 * number fills it, or one per element. `fixed` are the inputs it may name; `all`, every input
 * (for the messages).
 */
export function valueTensor(spec: string, fixed: readonly FixedInput[], all: readonly { name: string; batchAxis: number | null }[]): [string, Tensor] {
  const eq = spec.indexOf('=');
  const name = spec.slice(0, eq);
  const other = all.find((i) => i.name === name);
  if (eq < 1 || !other) throw new TernionError('ERR_INPUT_NAME', `--value ${spec} names no input; the model's inputs: ${all.map((i) => `"${i.name}"`).join(', ')}`);
  const input = fixed.find((i) => i.name === name);
  if (!input) throw new TernionError('ERR_INVALID_ARGUMENT', `--value: input "${name}" is batched (dim ${other.batchAxis}); --value sets inputs fed whole to every run`);
  const numbers = spec.slice(eq + 1).split(',').map(Number);
  const size = input.dims.reduce((a, b) => a * b, 1);
  if (numbers.some((x) => !Number.isFinite(x)) || (numbers.length !== 1 && numbers.length !== size)) {
    throw new TernionError('ERR_INVALID_ARGUMENT', `--value ${spec}: expected one number or ${size} (input "${name}" has dims [${input.dims.join(', ')}])`);
  }
  const values = Array.from({ length: size }, (_, i) => numbers[numbers.length === 1 ? 0 : i]);
  const t = input.dtype === 'float16' ? new Tensor('float16', narrowToFloat16(Float32Array.from(values)), input.dims) : new Tensor(input.dtype, values, input.dims);
  return [name, t];
}
