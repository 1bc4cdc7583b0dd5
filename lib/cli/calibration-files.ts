// `ternion quantize --calib NAME=X.npy ...` for a model with several inputs, including the ones
// that are not [batch, ...] (lib/ir/batch-axes.ts): an RNN state whose samples lie along another
// dim ([layers, batch, hidden], from its own .npy in that layout, or zeros: an initial state)
// and a value fed whole to every run (a sample rate: --value sr=16000, or an .npy of it).
import { loadNpy } from '../data/npy';
import { TernionError } from '../errors';
import { batchAxes, batchAxesOf } from '../ir/batch-axes';
import type { DataType } from '../ir/dtype';
import type { ValueInfo } from '../ir/types';
import { feedRows, sampleCount } from '../quantize/calibration-data';
import type { InputMetadata } from '../session/feeds';
import { Tensor, type TensorType } from '../tensor';
import { UsageError } from './args';
import { bindInputFiles, samplesFromFiles, valueTensor, type Preprocess } from './inputs';

const ZEROS: Partial<Record<TensorType, (n: number) => Tensor['data']>> = {
  float32: (n) => new Float32Array(n),
  float16: (n) => new Uint16Array(n),
  int64: (n) => new BigInt64Array(n),
  int32: (n) => new Int32Array(n),
};

/**
 * The calibration record of every input: `files` the --calib values (NAME=X.npy), `values` the
 * --value ones; `count` caps the samples. Inputs batched on dim 0 need a file each; the others
 * take theirs when given.
 */
export function calibrationFromFiles(
  inputs: readonly InputMetadata[],
  files: readonly string[],
  values: readonly string[],
  pre: Preprocess,
  count: number,
  note: (line: string) => void,
  usage: string,
): Record<string, Tensor> {
  const infos: ValueInfo[] = inputs.map((i) => ({ name: i.name, dtype: i.type as DataType, shape: i.shape }));
  const declared = batchAxes(infos);
  const perSample = inputs.filter((i) => declared.get(i.name) === 0);
  const others = inputs.filter((i) => declared.get(i.name) !== 0);
  // Files named for the other inputs, apart from the per-sample ones bindInputFiles takes.
  const otherFiles = new Map<string, string>();
  const sampleFiles: string[] = [];
  for (const f of files) {
    const eq = f.indexOf('=');
    const name = eq > 0 ? f.slice(0, eq) : '';
    if (others.some((o) => o.name === name)) {
      if (otherFiles.has(name)) throw new UsageError(`ternion quantize: --calib ${name}=... is given twice`, usage);
      otherFiles.set(name, f.slice(eq + 1));
    } else {
      sampleFiles.push(f);
    }
  }
  if (perSample.length && sampleFiles.length === 0) {
    throw new UsageError(`ternion quantize: missing --calib NAME=X.npy for each of the model's per-sample inputs (${perSample.map((i) => i.name).join(', ')})`, usage);
  }
  const feeds: Record<string, Tensor> = perSample.length
    ? samplesFromFiles(bindInputFiles(sampleFiles, perSample.map((i) => i.name), '--calib', usage), perSample, pre, undefined, note)
    : {};
  const samples = perSample.length ? sampleCount(feeds) : undefined;

  const fixed = others
    .filter((i) => declared.get(i.name) === null && i.shape?.every((d) => typeof d === 'number'))
    .map((i) => ({ name: i.name, dtype: i.type as TensorType, dims: i.shape as number[] }));
  const given = new Map(values.map((v) => valueTensor(v, fixed, inputs.map((i) => ({ name: i.name, batchAxis: declared.get(i.name) ?? null })))));
  for (const input of others) {
    const axis = declared.get(input.name) ?? null;
    const file = otherFiles.get(input.name);
    if (file !== undefined && given.has(input.name)) throw new UsageError(`ternion quantize: input "${input.name}" is given by both --calib and --value`, usage);
    if (file !== undefined) {
      const t = loadNpy(file);
      if (t.type !== input.type) throw new TernionError('ERR_DTYPE', `${file} holds ${t.type} data but model input "${input.name}" takes ${input.type}`);
      feeds[input.name] = t;
      continue;
    }
    const value = given.get(input.name);
    if (value) {
      feeds[input.name] = value;
      continue;
    }
    const zeros = ZEROS[input.type as TensorType];
    const shape = input.shape;
    // A float input whose one symbolic dim is not named like the batch ([2, unk__10, 128] beside
    // [unk__8, unk__9], as exporters leave Silero VAD's state) takes its samples there.
    const symbolic = shape ? shape.flatMap((d, k) => (typeof d === 'string' ? [k] : [])) : [];
    const stateAxis = axis ?? (symbolic.length === 1 && input.type.startsWith('float') ? symbolic[0] : null);
    if (stateAxis !== null && samples !== undefined && shape && zeros && shape.every((d, k) => typeof d === 'number' || k === stateAxis)) {
      // A state with its batch on another dim: zeros, the state a stream starts from.
      const dims = shape.map((d, k) => (k === stateAxis ? samples : (d as number)));
      feeds[input.name] = new Tensor(input.type as TensorType, zeros(dims.reduce((a, b) => a * b, 1)) as never, dims);
      note(`note: input "${input.name}" [${shape.join(', ')}] has its samples on dim ${stateAxis}; calibrating with zeros (an initial state); give --calib ${input.name}=X.npy [${dims.join(', ')}] for others`);
      continue;
    }
    const how = axis === null && fixed.some((f) => f.name === input.name)
      ? `--value ${input.name}=V (one number, or one per element) or --calib ${input.name}=X.npy`
      : `--calib ${input.name}=X.npy in the layout the model takes, [${(shape ?? []).join(', ')}], with the samples on their dim`;
    throw new UsageError(`ternion quantize: input "${input.name}" is not batched on dim 0, so it needs its own data: ${how}`, usage);
  }
  // The axes again with the data (a state whose dims the model leaves unnamed is placed by its
  // sample count), then the first `count` samples of every batched input.
  const axes = batchAxesOf(infos, Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, t.dims])));
  const total = sampleCount(feeds, axes);
  const first = inputs.find((i) => axes.get(i.name) !== null)?.name;
  for (const [name, t] of Object.entries(feeds)) {
    const axis = axes.get(name) ?? null;
    if (axis === null) continue;
    if (t.dims.length <= axis || t.dims[axis] !== total) {
      throw new TernionError('ERR_SHAPE_MISMATCH', `--calib ${name}: dims [${t.dims.join(', ')}] should hold ${total} samples on dim ${axis}, as "${first}" holds`);
    }
  }
  return feedRows(feeds, 0, Math.min(count, total), axes);
}
