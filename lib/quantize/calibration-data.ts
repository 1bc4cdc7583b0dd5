// The calibration samples of quantize(): for a model with one input a Tensor; for any model a
// record of Tensors by input name (session.run's feeds: a text encoder's input_ids and
// attention_mask); or an array / iterable / async iterable of either (a data loader). Read once
// as batches of at most CALIBRATION_BATCH samples, so a large calibration set or a big model
// never holds more than one batch of activations in memory.
import { TernionError, invalidArgument } from '../errors';
import type { ValueInfo } from '../ir';
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

/** The sample count of one batch (dims[0] of its tensors, checked equal by calibrationBatches). */
export function sampleCount(feeds: CalibrationFeeds): number {
  return Object.values(feeds)[0].dims[0];
}

/** Checks the option's shape up front (before any model work) so mistakes fail fast. */
export function checkCalibrationInput(value: unknown, name = 'options.calibration'): CalibrationInput {
  if (isTensor(value) || isCalibrationFeeds(value)) {
    for (const [key, t] of Object.entries(isTensor(value) ? { '': value } : value)) {
      if (t.dims.length === 0 || t.dims[0] === 0) {
        throw invalidArgument('a Tensor with at least one sample (dims[0] >= 1)', key ? `${name}.${key}` : name, `dims [${t.dims.join(', ')}]`);
      }
    }
    return value;
  }
  if (value !== null && typeof value === 'object' && isIterable(value)) return value as CalibrationInput;
  throw invalidArgument(EXPECTED, name, value);
}

/** Rows [from, from + count) of a batch tensor: a view of its data, no copy. */
export function sampleRows(t: Tensor, from: number, count: number): Tensor {
  if (from === 0 && count === t.dims[0]) return t;
  const per = t.dims[0] === 0 ? 0 : t.size / t.dims[0];
  const data = (t.data as Float32Array).subarray(from * per, (from + count) * per) as unknown as TensorData;
  return new Tensor(t.type, data, [count, ...t.dims.slice(1)]);
}

/** The same rows of every tensor of a batch. */
export function feedRows(feeds: CalibrationFeeds, from: number, count: number): Record<string, Tensor> {
  return Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, sampleRows(t, from, count)]));
}

/** One item of the user's data as feeds for `inputs`, with every problem named. */
function asFeeds(item: unknown, inputs: readonly ValueInfo[], index: number): CalibrationFeeds {
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
    if (t.dims.length === 0) throw new TernionError('ERR_SHAPE_MISMATCH', `${where}: input "${input.name}" is a scalar; expected [samples, ...]`);
    if (count !== undefined && t.dims[0] !== count) {
      throw new TernionError('ERR_SHAPE_MISMATCH', `${where}: input "${input.name}" holds ${t.dims[0]} samples but "${countOf}" holds ${count}; every input needs the same count (dims[0])`);
    }
    count = t.dims[0];
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
    const feeds = asFeeds(item, inputs, index);
    for (const [name, t] of Object.entries(feeds)) {
      const shape = t.dims.slice(1), first = sampleShape.get(name);
      if (!first) sampleShape.set(name, shape);
      else if (shape.length !== first.length || shape.some((d, i) => d !== first[i])) {
        throw new TernionError('ERR_SHAPE_MISMATCH', `Calibration batch ${index}: input "${name}" has samples of shape [${shape.join(', ')}]; the first batch had [${first.join(', ')}]`);
      }
    }
    const n = sampleCount(feeds);
    for (let from = 0; from < n; from += CALIBRATION_BATCH) {
      if (seen >= limit) return;
      const take = Math.min(CALIBRATION_BATCH, n - from, limit - seen);
      seen += take;
      yield feedRows(feeds, from, take);
    }
    index++;
  }
  if (seen === 0) throw new TernionError('ERR_INVALID_ARGUMENT', 'The calibration data holds no samples');
}
