// The calibration samples of quantize(): a Tensor, an array / iterable of Tensors or an async
// iterable of them (a data loader), read once as batches of at most BATCH samples, so a large
// calibration set or a big model never holds more than one batch of activations in memory.
import { TernionError, invalidArgument } from '../errors';
import { Tensor } from '../tensor';

export type CalibrationInput = Tensor | Iterable<Tensor> | AsyncIterable<Tensor>;

/** Samples per calibration run: bounds the activation memory of one pass. */
export const CALIBRATION_BATCH = 64;

function isTensor(x: unknown): x is Tensor {
  return x instanceof Tensor;
}

/** Checks the option's shape up front (before any model work) so mistakes fail fast. */
export function checkCalibrationInput(value: unknown, name = 'options.calibration'): CalibrationInput {
  if (isTensor(value)) {
    if (value.type !== 'float32') throw invalidArgument('float32 sample inputs', name, `a ${value.type} Tensor`);
    if (value.dims.length === 0 || value.dims[0] === 0) throw invalidArgument('a Tensor with at least one sample (dims[0] >= 1)', name, `dims [${value.dims.join(', ')}]`);
    return value;
  }
  if (value !== null && typeof value === 'object' && (Symbol.iterator in value || Symbol.asyncIterator in value)) return value as CalibrationInput;
  throw invalidArgument('a float32 Tensor of sample inputs, or an (async) iterable of such Tensors', name, value);
}

function* split(t: Tensor, index: number): Generator<Tensor> {
  if (t.type !== 'float32') throw new TernionError('ERR_DTYPE', `Calibration batch ${index} is a ${t.type} Tensor; expected float32`);
  if (t.dims.length === 0) throw new TernionError('ERR_SHAPE_MISMATCH', `Calibration batch ${index} is a scalar; expected [samples, ...]`);
  const n = t.dims[0];
  const per = n === 0 ? 0 : t.size / n;
  for (let from = 0; from < n; from += CALIBRATION_BATCH) {
    const count = Math.min(CALIBRATION_BATCH, n - from);
    const data = (t.data as Float32Array).subarray(from * per, (from + count) * per);
    yield from === 0 && count === n ? t : new Tensor('float32', data, [count, ...t.dims.slice(1)]);
  }
}

/**
 * The calibration samples as batches of at most CALIBRATION_BATCH, in order. Every batch must
 * have the per-sample shape of the first; `limit` stops after that many samples.
 */
export async function* calibrationBatches(input: CalibrationInput, limit = Infinity): AsyncGenerator<Tensor> {
  let sampleShape: readonly number[] | null = null;
  let seen = 0, index = 0;
  const source: Iterable<Tensor> | AsyncIterable<Tensor> = isTensor(input) ? [input] : input;
  for await (const item of source as AsyncIterable<Tensor>) {
    if (!isTensor(item)) throw invalidArgument('a Tensor', `calibration batch ${index}`, item);
    for (const batch of split(item, index)) {
      const shape = batch.dims.slice(1);
      if (sampleShape === null) sampleShape = shape;
      else if (shape.length !== sampleShape.length || shape.some((d, i) => d !== sampleShape![i])) {
        throw new TernionError('ERR_SHAPE_MISMATCH', `Calibration batch ${index} has samples of shape [${shape.join(', ')}]; the first batch had [${sampleShape.join(', ')}]`);
      }
      if (seen >= limit) return;
      const take = Math.min(batch.dims[0], limit - seen);
      seen += take;
      yield take === batch.dims[0] ? batch : new Tensor('float32', (batch.data as Float32Array).subarray(0, take * (batch.size / batch.dims[0])), [take, ...shape]);
    }
    index++;
  }
  if (seen === 0) throw new TernionError('ERR_INVALID_ARGUMENT', 'The calibration data holds no samples');
}
