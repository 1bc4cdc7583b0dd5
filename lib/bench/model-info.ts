// What a benchmark needs to know of a model before running it: its inputs (dtype, batch axis:
// dim 0 unless the declared shapes say otherwise, see lib/ir/batch-axes.ts; per-sample dims,
// symbolic ones need --shape; and what values make a valid input when none are given), and its
// MACs.
import { readFileSync } from 'node:fs';
import { TernionError } from '../errors';
import type { Graph, ValueInfo } from '../ir';
import { batchAxes } from '../ir/batch-axes';
import { loadOnnxModel } from '../onnx';
import { narrowToFloat16 } from '../onnx/half-float';
import { widenHalf } from '../ir/passes/widen-half';
import { Tensor, TENSOR_TYPES, type TensorData, type TensorType } from '../tensor';
import { countMacs } from './macs';
import { seededUniform } from './seeded';

/**
 * Values a generated input holds: 'uniform' seeded [0, 1) floats (or bytes 0..255); 'index' ids
 * in [0, bound), for an input that only indexes tables (a text model's token ids: the vocabulary
 * size is the embedding's row count); 'ones' for other integer and bool inputs (attention masks).
 */
export type InputValues = { kind: 'uniform' } | { kind: 'index'; bound: number } | { kind: 'ones' };

export interface BenchInput {
  name: string;
  dtype: TensorType;
  /** The model's declared shape. */
  declared: readonly (number | string)[];
  /** The axis of the samples, or null for an input fed whole to every run (a sample rate). */
  batchAxis: number | null;
  /** The dims without the batch axis (all of them when there is none). */
  sampleDims: number[];
  values: InputValues;
}

export interface ModelInfo {
  inputs: BenchInput[];
  /** Conv/Gemm/MatMul MACs per sample; null when some layer's shape stays unknown. */
  macsPerSample: number | null;
  graph: Graph;
}

/** Per-sample dims: one list for every input (of that rank), or a list per input name. */
export type SampleShapes = readonly number[] | Readonly<Record<string, readonly number[]>>;

const fmt = (s: readonly (number | string)[]) => `[${s.join(', ')}]`;

/** The values an integer input may hold, from what reads it (see InputValues). */
function valuesOf(graph: Graph, input: ValueInfo): InputValues {
  if (input.dtype === 'float32' || input.dtype === 'float16' || input.dtype === 'uint8' || input.dtype === 'int8') return { kind: 'uniform' };
  // Shape and Size read only the dims (a text model takes the sequence length from its ids).
  const readers = graph.nodes.filter((n) => n.inputs.includes(input.name) && n.opType !== 'Shape' && n.opType !== 'Size');
  let bound = Infinity;
  for (const n of readers) {
    const table = n.opType === 'Gather' && n.inputs[1] === input.name && n.inputs[0] !== input.name ? graph.initializers.get(n.inputs[0]) : undefined;
    if (!table) return { kind: 'ones' };
    const axis = Number(n.attributes.axis?.value ?? 0);
    const rows = table.dims[axis < 0 ? axis + table.dims.length : axis];
    bound = Math.min(bound, rows);
  }
  return readers.length && bound >= 1 && Number.isFinite(bound) ? { kind: 'index', bound } : { kind: 'ones' };
}

/** The dims of `count` samples of an input: its sample dims with the count at its batch axis. */
export function batchDims(input: Pick<BenchInput, 'batchAxis' | 'sampleDims'>, count: number | string): (number | string)[] {
  const dims: (number | string)[] = [...input.sampleDims];
  if (input.batchAxis !== null) dims.splice(input.batchAxis, 0, count);
  return dims;
}

function sampleDimsOf(input: ValueInfo, axis: number | null, batch: number | undefined, shapes: SampleShapes | undefined): number[] {
  const declared = input.shape;
  const named = shapes !== undefined && !Array.isArray(shapes) ? (shapes as Record<string, readonly number[]>)[input.name] : undefined;
  // A list for every input means the per-sample dims of the batched ones.
  const given = named ?? (Array.isArray(shapes) && axis !== null ? shapes as readonly number[] : undefined);
  if (!declared && !given) {
    throw new TernionError('ERR_SHAPE_MISMATCH', `input "${input.name}" has no declared shape; pass --shape with its per-sample dims`);
  }
  const batchDim = axis === null ? undefined : declared?.[axis];
  if (typeof batchDim === 'number' && batch !== undefined && batchDim !== batch) {
    throw new TernionError('ERR_SHAPE_MISMATCH', `input "${input.name}" has a fixed batch of ${batchDim} (shape ${fmt(declared!)}); pass --batch ${batchDim}`);
  }
  const rest = declared?.filter((_, i) => i !== axis);
  const what = axis === null ? 'dims (it is fed whole to every run)' : axis === 0 ? 'per-sample dims' : `per-sample dims (its batch is dim ${axis})`;
  if (given) {
    if (rest && (rest.length !== given.length || rest.some((d, i) => typeof d === 'number' && d !== given[i]))) {
      throw new TernionError('ERR_SHAPE_MISMATCH', `--shape ${given.join(',')} does not fit input "${input.name}" ${fmt(declared!)} (${what} ${fmt(rest)})`);
    }
    return [...given];
  }
  const symbolic = rest!.findIndex((d) => typeof d !== 'number');
  if (symbolic >= 0) {
    throw new TernionError('ERR_SHAPE_MISMATCH', `dim ${declared!.indexOf(rest![symbolic])} ("${rest![symbolic]}") of input "${input.name}" ${fmt(declared!)} is symbolic; pass --shape ${input.name}=${rest!.map((d) => (typeof d === 'number' ? d : 'N')).join(',')} with its ${what}`);
  }
  return rest as number[];
}

/**
 * Reads the model at `path`. `batch` must fit a fixed batch dim; `shape` (per-sample dims)
 * replaces the declared ones and is required when a dim other than the batch is symbolic;
 * `batchAxes` sets an input's batch axis where its declared shape does not tell.
 */
export function modelInfo(path: string, options: { batch?: number; shape?: SampleShapes; batchAxes?: Readonly<Record<string, number>> } = {}): ModelInfo {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new TernionError('ERR_INVALID_ARGUMENT', `Cannot read model file "${path}": ${(e as Error).message}`, { cause: e });
  }
  const graph = loadOnnxModel(bytes, { basePath: path.replace(/[\\/][^\\/]*$/, '') || '.' });
  if (graph.inputs.length === 0) throw new TernionError('ERR_INPUT_NAME', `${path} has no inputs to feed`);
  const { shape } = options;
  const named = [...(shape && !Array.isArray(shape) ? Object.keys(shape) : []), ...Object.keys(options.batchAxes ?? {})];
  for (const name of named) {
    if (!graph.inputs.some((i) => i.name === name)) throw new TernionError('ERR_INPUT_NAME', `--shape names "${name}", which is not an input of ${path} (its inputs: ${graph.inputs.map((i) => `"${i.name}"`).join(', ')})`);
  }
  // The axes the declared shapes give, where the caller names none (--shape state=2,B,128).
  const axes = new Map([...batchAxes(graph.inputs), ...Object.entries(options.batchAxes ?? {})]);
  const inputs = graph.inputs.map((input): BenchInput => {
    if (!(TENSOR_TYPES as readonly string[]).includes(input.dtype)) {
      throw new TernionError('ERR_DTYPE', `input "${input.name}" is ${input.dtype}; the benchmark feeds ${TENSOR_TYPES.join(', ')} inputs`);
    }
    const batchAxis = axes.get(input.name)!;
    return {
      name: input.name, dtype: input.dtype as TensorType, declared: input.shape ?? [], batchAxis,
      sampleDims: sampleDimsOf(input, batchAxis, options.batch, shape), values: valuesOf(graph, input),
    };
  });
  // Shapes as the session computes them (a float16 model in float32).
  const wide = widenHalf(graph);
  const fixed: Graph = {
    ...wide,
    inputs: wide.inputs.map((v, i) => {
      const axis = inputs[i].batchAxis;
      return { ...v, shape: batchDims(inputs[i], axis !== null && typeof v.shape?.[axis] === 'number' ? v.shape[axis] : 'batch') };
    }),
  };
  return { inputs, macsPerSample: countMacs(fixed).perSample, graph };
}

/** `count` generated samples of every input (seeded; see InputValues), as feeds. */
export function generatedInputs(inputs: readonly BenchInput[], count: number, seed = 12345): Record<string, Tensor> {
  const feeds: Record<string, Tensor> = {};
  inputs.forEach((input, i) => {
    const dims = batchDims(input, count) as number[];
    const n = dims.reduce((a, b) => a * b, 1);
    const u = seededUniform(n, seed + 7919 * i);
    let data: TensorData;
    const v = input.values;
    switch (input.dtype) {
      case 'float32': data = u; break;
      case 'float16': data = narrowToFloat16(u); break;
      case 'uint8': data = Uint8Array.from(u, (x) => Math.floor(x * 256)); break;
      case 'int8': data = Int8Array.from(u, (x) => Math.floor(x * 256) - 128); break;
      case 'int64': data = BigInt64Array.from(u, (x) => BigInt(v.kind === 'index' ? Math.floor(x * v.bound) : 1)); break;
      case 'int32': data = Int32Array.from(u, (x) => (v.kind === 'index' ? Math.floor(x * v.bound) : 1)); break;
      case 'bool': data = new Uint8Array(n).fill(1); break;
    }
    feeds[input.name] = new Tensor(input.dtype, data, dims);
  });
  return feeds;
}
