// The calibration samples of quantize(): for a model with one input a Tensor; for any model a
// record of Tensors by input name (session.run's feeds: a text encoder's input_ids and
// attention_mask); or an array / iterable / async iterable of either (a data loader). Read once
// as batches of at most CALIBRATION_BATCH samples, so a large calibration set or a big model
// never holds more than one batch of activations in memory.
import { TernionError, invalidArgument } from '../errors';
import type { ValueInfo } from '../ir';
import { batchAxesOf, type BatchAxes } from '../ir/batch-axes';
import { widenHalfFeeds } from '../session/feeds';
import { Tensor, type TensorData } from '../tensor';

/** One batch of sample inputs by model input name, every tensor [samples, ...] with the same sample count. */
export type CalibrationFeeds = Readonly<Record<string, Tensor>>;
export type CalibrationInput =
  | Tensor
  | CalibrationFeeds
  | Iterable<Tensor | CalibrationFeeds>
  | AsyncIterable<Tensor | CalibrationFeeds>;

/** Samples per calibration run: bounds the activation memory of one pass. */
export const CALIBRATION_BATCH = 64;

const EXPECTED = 'a Tensor of sample inputs, a record of Tensors by input name ({ input_ids: Tensor, ... }), or an (async) iterable of either';

function isTensor(x: unknown): x is Tensor {
  return x instanceof Tensor;
}

function isIterable(x: object): boolean {
  return Symbol.iterator in x || Symbol.asyncIterator in x;
}

/** A plain object of Tensors (not a Tensor, not an iterable). */
export function isCalibrationFeeds(x: unknown): x is CalibrationFeeds {
  return x !== null && typeof x === 'object' && !isTensor(x) && !isIterable(x) && Object.values(x).length > 0 && Object.values(x).every(isTensor);
}

/**
 * The sample count of one batch: the size of its inputs' batch axis (dims[0] unless `axes` says
 * otherwise; checked equal by calibrationBatches). Inputs fed whole to every run do not count.
 */
export function sampleCount(feeds: CalibrationFeeds, axes?: BatchAxes): number {
  for (const [name, t] of Object.entries(feeds)) {
    const axis = axes ? axes.get(name) : 0;
    if (axis !== null && axis !== undefined) return t.dims[axis];
  }
  return 1;
}

/** Checks the option's shape up front (before any model work) so mistakes fail fast. */
export function checkCalibrationInput(value: unknown, name = 'options.calibration'): CalibrationInput {
  if (isTensor(value) || isCalibrationFeeds(value)) {
    for (const [key, t] of Object.entries(isTensor(value) ? { '': value } : value)) {
      // A scalar in a record is an input fed whole to every run (a sample rate); see BatchAxes.
      if (key && t.dims.length === 0) continue;
      if (t.dims.length === 0 || t.dims[0] === 0) {
        throw invalidArgument('a Tensor with at least one sample (dims[0] >= 1)', key ? `${name}.${key}` : name, `dims [${t.dims.join(', ')}]`);
      }
    }
    return value;
  }
  if (value !== null && typeof value === 'object' && isIterable(value)) return value as CalibrationInput;
  throw invalidArgument(EXPECTED, name, value);
}

/**
 * Samples [from, from + count) of a batch tensor along `axis`: along dim 0 a view of its data,
 * along another axis (an RNN state's [layers, batch, hidden]) a copy.
 */
export function sampleRows(t: Tensor, from: number, count: number, axis = 0): Tensor {
  const size = t.dims[axis];
  if (from === 0 && count === size) return t;
  const dims = t.dims.map((d, i) => (i === axis ? count : d));
  const inner = t.dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const data = t.data as Float32Array;
  if (axis === 0) return new Tensor(t.type, data.subarray(from * inner, (from + count) * inner) as unknown as TensorData, dims);
  const outer = t.dims.slice(0, axis).reduce((a, b) => a * b, 1);
  const out = new (data.constructor as Float32ArrayConstructor)(outer * count * inner);
  for (let o = 0; o < outer; o++) {
    const start = (o * size + from) * inner;
    out.set(data.subarray(start, start + count * inner), o * count * inner);
  }
  return new Tensor(t.type, out as unknown as TensorData, dims);
}

/** The same samples of every tensor of a batch; inputs without a batch axis (see BatchAxes) whole. */
export function feedRows(feeds: CalibrationFeeds, from: number, count: number, axes?: BatchAxes): Record<string, Tensor> {
  return Object.fromEntries(Object.entries(feeds).map(([k, t]) => {
    const axis = axes ? axes.get(k) ?? null : 0;
    return [k, axis === null ? t : sampleRows(t, from, count, axis)];
  }));
}

/** The batch axis of each input for one batch of the user's data (see batchAxesOf). */
export function feedBatchAxes(inputs: readonly ValueInfo[], item: unknown): BatchAxes {
  const feeds = isTensor(item) ? { [inputs[0]?.name]: item } : isCalibrationFeeds(item) ? item : {};
  return batchAxesOf(inputs, Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, t.dims])));
}

/** One item of the user's data as feeds for `inputs`, with every problem named. */
function asFeeds(item: unknown, inputs: readonly ValueInfo[], axes: BatchAxes, index: number): CalibrationFeeds {
  const where = `Calibration batch ${index}`;
  const names = inputs.map((i) => `"${i.name}"`).join(', ');
  let feeds: CalibrationFeeds;
  if (isTensor(item)) {
    if (inputs.length !== 1) {
      throw new TernionError('ERR_INPUT_NAME', `${where} is a single Tensor but the model has ${inputs.length} inputs (${names}): pass each batch as a record { ${inputs.map((i) => `${i.name}: Tensor`).join(', ')} }`);
    }
    feeds = { [inputs[0].name]: item };
  } else if (isCalibrationFeeds(item)) {
    feeds = item;
  } else {
    throw invalidArgument(EXPECTED.replace(', or an (async) iterable of either', ''), `calibration batch ${index}`, item);
  }
  for (const key of Object.keys(feeds)) {
    if (!inputs.some((i) => i.name === key)) throw new TernionError('ERR_INPUT_NAME', `${where} has a tensor for "${key}", which is not an input of the model (its inputs: ${names})`);
  }
  // A float16 model's samples, for the float32 graph it is quantized as.
  feeds = widenHalfFeeds(inputs.map((i) => ({ name: i.name, type: i.dtype })), feeds);
  let count: number | undefined, countOf = '';
  for (const input of inputs) {
    const t = feeds[input.name];
    if (!t) throw new TernionError('ERR_INPUT_NAME', `${where} has no tensor for input "${input.name}" (the model's inputs: ${names})`);
    if (t.type !== input.dtype) throw new TernionError('ERR_DTYPE', `${where}: input "${input.name}" is a ${t.type} Tensor; the model expects ${input.dtype}`);
    const axis = axes.get(input.name) ?? null;
    if (axis === null) continue;
    if (t.dims.length <= axis) {
      const shape = input.shape ? `[${input.shape.join(', ')}]` : `[samples, ...]`;
      throw new TernionError('ERR_SHAPE_MISMATCH', `${where}: input "${input.name}" has dims [${t.dims.join(', ')}]; expected ${shape} with the samples on axis ${axis}`);
    }
    if (count !== undefined && t.dims[axis] !== count) {
      throw new TernionError('ERR_SHAPE_MISMATCH', `${where}: input "${input.name}" holds ${t.dims[axis]} samples${axis ? ` (dim ${axis})` : ''} but "${countOf}" holds ${count}; every input needs the same count`);
    }
    count = t.dims[axis];
    countOf = input.name;
  }
  return feeds;
}

/**
 * The calibration samples as feeds for the model's `inputs`, in batches of at most
 * CALIBRATION_BATCH, in order. Every batch must have the per-sample shapes of the first;
 * `limit` stops after that many samples.
 */
export async function* calibrationBatches(input: CalibrationInput, inputs: readonly ValueInfo[], limit = Infinity): AsyncGenerator<CalibrationFeeds> {
  const sampleShape = new Map<string, readonly number[]>();
  let seen = 0, index = 0;
  const source = (isTensor(input) || isCalibrationFeeds(input) ? [input] : input) as AsyncIterable<unknown>;
  for await (const item of source) {
    const axes = feedBatchAxes(inputs, item);
    const feeds = asFeeds(item, inputs, axes, index);
    for (const [name, t] of Object.entries(feeds)) {
      const axis = axes.get(name) ?? null;
      const shape = axis === null ? t.dims : t.dims.filter((_, i) => i !== axis), first = sampleShape.get(name);
      if (!first) sampleShape.set(name, shape);
      else if (shape.length !== first.length || shape.some((d, i) => d !== first[i])) {
        throw new TernionError('ERR_SHAPE_MISMATCH', `Calibration batch ${index}: input "${name}" has samples of shape [${shape.join(', ')}]; the first batch had [${first.join(', ')}]`);
      }
    }
    const n = sampleCount(feeds, axes);
    for (let from = 0; from < n; from += CALIBRATION_BATCH) {
      if (seen >= limit) return;
      const take = Math.min(CALIBRATION_BATCH, n - from, limit - seen);
      seen += take;
      yield feedRows(feeds, from, take, axes);
    }
    index++;
  }
  if (seen === 0) throw new TernionError('ERR_INVALID_ARGUMENT', 'The calibration data holds no samples');
}
