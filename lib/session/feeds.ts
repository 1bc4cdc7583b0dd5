// Checks a run's feeds against the model's inputs: names, dtypes and shapes, where a symbolic
// dim (e.g. the batch) may take any size but the same symbol must take the same size everywhere.
import { TernionError, describe } from '../errors';
import type { Dim } from '../ir';
import { widenHalfFloats } from '../onnx/half-float';
import { Tensor } from '../tensor';

export interface InputMetadata {
  name: string;
  /** Always true: ternion's inputs and outputs are tensors (onnxruntime-node's field). */
  isTensor?: true;
  type: string;
  /** Dims; a string is a symbolic dim (any size, the same wherever the name repeats). */
  shape: readonly Dim[] | undefined;
}

export function checkFeeds(feeds: unknown, inputs: readonly InputMetadata[]): Tensor[] {
  if (feeds === null || typeof feeds !== 'object' || Array.isArray(feeds) || feeds instanceof Tensor) {
    throw new TernionError('ERR_INVALID_ARGUMENT', `Expected an object mapping input names to Tensors for feeds but received ${describe(feeds)}`);
  }
  const record = feeds as Record<string, unknown>;
  const known = new Set(inputs.map((i) => i.name));
  for (const name of Object.keys(record)) {
    if (!known.has(name)) {
      throw new TernionError('ERR_INPUT_NAME', `The model has no input "${name}" (its inputs: ${inputs.map((i) => `"${i.name}"`).join(', ')})`);
    }
  }
  const bound = new Map<string, number>();
  return inputs.map((input) => {
    const t = record[input.name];
    if (t === undefined) throw new TernionError('ERR_INPUT_NAME', `Missing feed for input "${input.name}"`);
    if (!(t instanceof Tensor)) throw new TernionError('ERR_INVALID_ARGUMENT', `Expected a Tensor for feed "${input.name}" but received ${describe(t)}`);
    if (t.type !== input.type) {
      throw new TernionError('ERR_DTYPE', `Feed "${input.name}" is ${t.type} but the model expects ${input.type}`);
    }
    const shape = input.shape;
    if (shape !== undefined) {
      const mismatch = () =>
        new TernionError('ERR_SHAPE_MISMATCH', `Feed "${input.name}" has dims [${t.dims.join(', ')}] but the model expects [${shape.join(', ')}]`);
      if (t.dims.length !== shape.length) throw mismatch();
      shape.forEach((d, i) => {
        const got = t.dims[i];
        if (typeof d === 'number') {
          if (d !== got) throw mismatch();
        } else {
          const prev = bound.get(d);
          if (prev !== undefined && prev !== got) {
            throw new TernionError('ERR_SHAPE_MISMATCH', `Feed "${input.name}" dim ${i} ("${d}") is ${got}, but another feed set "${d}" to ${prev}`);
          }
          bound.set(d, got);
        }
      });
    }
    return t;
  });
}

/**
 * The feeds with every float16 tensor widened to float32 where the input takes float32: a float16
 * model's quantized forms (and the float32 graph quantize() calibrates it as) take float32 where
 * the model itself takes float16.
 */
export function widenHalfFeeds(inputs: readonly { name: string; type: string }[], feeds: Readonly<Record<string, Tensor>>): Record<string, Tensor> {
  return Object.fromEntries(
    inputs.map((m) => {
      const t = feeds[m.name];
      return [m.name, t && t.type === 'float16' && m.type === 'float32' ? new Tensor('float32', widenHalfFloats(t.data as Uint16Array, 'float16'), t.dims) : t];
    }),
  );
}
