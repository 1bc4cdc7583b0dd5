// run(feeds, fetches?, options?) as onnxruntime-node takes it: the second argument is either the
// outputs wanted (a list of names, or a record of names to null or to a pre-allocated Tensor the
// result is written into) or, when it names no output, the run options.
import { TernionError, describe } from '../errors';
import { Tensor } from '../tensor';
import type { InputMetadata } from './feeds';

/** Output names, or names mapped to null (allocate) or to a Tensor to write the result into. */
export type FetchesType = readonly string[] | Readonly<Record<string, Tensor | null>>;

export interface RunArguments<O> {
  /** Parallel to the model's outputs: whether the caller gets it back. */
  wanted: boolean[];
  /** Parallel to the model's outputs: the caller's Tensor to fill, if any. */
  into: (Tensor | undefined)[];
  options: O | undefined;
}

function unknownOutput(name: string, outputs: readonly InputMetadata[]): TernionError {
  return new TernionError('ERR_OUTPUT_NAME', `The model has no output "${name}" (its outputs: ${outputs.map((o) => `"${o.name}"`).join(', ')})`);
}

function checkTarget(t: Tensor, output: InputMetadata): Tensor {
  if (t.type !== output.type) {
    throw new TernionError('ERR_DTYPE', `The tensor given for output "${output.name}" is ${t.type} but the model's output is ${output.type}`);
  }
  const shape = output.shape;
  if (shape !== undefined) {
    const fixed = shape.length === t.dims.length && shape.every((d, i) => typeof d !== 'number' || d === t.dims[i]);
    if (!fixed) {
      throw new TernionError(
        'ERR_SHAPE_MISMATCH',
        `The tensor given for output "${output.name}" has dims [${t.dims.join(', ')}] but the model's output is [${shape.join(', ')}]`,
      );
    }
  }
  return t;
}

/**
 * Sorts out run()'s second and third arguments. `arg1` is fetches when it is a list, or a record
 * holding at least one output name whose value is null or a Tensor; otherwise it is the options.
 */
export function runArguments<O>(outputs: readonly InputMetadata[], arg1: unknown, arg2: unknown): RunArguments<O> {
  const all = { wanted: outputs.map(() => true), into: outputs.map(() => undefined) };
  if (arg1 === undefined) return { ...all, options: arg2 as O | undefined };
  if (arg1 === null || typeof arg1 !== 'object' || arg1 instanceof Tensor) {
    throw new TernionError('ERR_INVALID_ARGUMENT', `Expected output names, a record of outputs or run options as run()'s second argument but received ${describe(arg1)}`);
  }
  const index = new Map(outputs.map((o, i) => [o.name, i]));
  const wanted = outputs.map(() => false);
  const into: (Tensor | undefined)[] = outputs.map(() => undefined);
  if (Array.isArray(arg1)) {
    if (arg1.length === 0) throw new TernionError('ERR_INVALID_ARGUMENT', 'The list of outputs to fetch is empty');
    for (const name of arg1) {
      if (typeof name !== 'string') throw new TernionError('ERR_INVALID_ARGUMENT', `Expected output names in the fetch list but received ${describe(name)}`);
      const i = index.get(name);
      if (i === undefined) throw unknownOutput(name, outputs);
      wanted[i] = true;
    }
    return { wanted, into, options: arg2 as O | undefined };
  }
  const record = arg1 as Record<string, unknown>;
  const outputKeys = Object.keys(record).filter((k) => index.has(k));
  const fetched = outputKeys.filter((k) => record[k] === null || record[k] instanceof Tensor);
  // An output name holding something else is a mistaken fetch, not an option (the one option
  // name, signal, holds an AbortSignal).
  const mistaken = outputKeys.find((k) => !fetched.includes(k) && !(k === 'signal' && record[k] instanceof AbortSignal));
  if (fetched.length === 0 && mistaken !== undefined) {
    throw new TernionError('ERR_INVALID_ARGUMENT', `Expected null or a Tensor for output "${mistaken}" but received ${describe(record[mistaken])}`);
  }
  if (fetched.length === 0) {
    if (arg2 !== undefined) throw new TernionError('ERR_INVALID_ARGUMENT', `run()'s second argument names none of the model's outputs (${outputs.map((o) => `"${o.name}"`).join(', ')}), so it cannot come with options as a third`);
    return { ...all, options: arg1 as O };
  }
  // A record of outputs: every key must be one (a typo would otherwise be taken silently).
  for (const [name, v] of Object.entries(record)) {
    const i = index.get(name);
    if (i === undefined) throw unknownOutput(name, outputs);
    if (v !== null && !(v instanceof Tensor)) throw new TernionError('ERR_INVALID_ARGUMENT', `Expected null or a Tensor for output "${name}" but received ${describe(v)}`);
    wanted[i] = true;
    if (v) into[i] = checkTarget(v, outputs[i]);
  }
  // Two outputs written over the same bytes would leave only the later one.
  const targets = into.filter((t): t is Tensor => t !== undefined);
  targets.forEach((a, i) => {
    for (const b of targets.slice(i + 1)) {
      const overlap = a.data.buffer === b.data.buffer && a.data.byteOffset < b.data.byteOffset + b.data.byteLength && b.data.byteOffset < a.data.byteOffset + a.data.byteLength;
      if (overlap) throw new TernionError('ERR_INVALID_ARGUMENT', 'Two pre-allocated outputs share the same memory');
    }
  });
  return { wanted, into, options: arg2 as O | undefined };
}
