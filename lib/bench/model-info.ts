// What a benchmark needs to know of a model before running it: its single float32 input, the
// per-sample dims (the batch dim is dim 0; other symbolic dims need --shape), and its MACs.
import { readFileSync } from 'node:fs';
import { TernionError } from '../errors';
import type { Graph } from '../ir';
import { loadOnnxModel } from '../onnx';
import { countMacs } from './macs';

export interface ModelInfo {
  inputName: string;
  /** The model's declared input shape. */
  declared: readonly (number | string)[];
  sampleDims: number[];
  /** Conv/Gemm/MatMul MACs per sample; null when some layer's shape stays unknown. */
  macsPerSample: number | null;
  graph: Graph;
}

const fmt = (s: readonly (number | string)[]) => `[${s.join(', ')}]`;

/**
 * Reads the model at `path`. `batch` must fit a fixed dim 0; `shape` (per-sample dims) replaces
 * the declared ones and is required when a dim other than the batch is symbolic.
 */
export function modelInfo(path: string, options: { batch?: number; shape?: readonly number[] } = {}): ModelInfo {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new TernionError('ERR_INVALID_ARGUMENT', `Cannot read model file "${path}": ${(e as Error).message}`, { cause: e });
  }
  const graph = loadOnnxModel(bytes, { basePath: path.replace(/[\\/][^\\/]*$/, '') || '.' });
  if (graph.inputs.length !== 1) {
    throw new TernionError('ERR_INPUT_NAME', `the benchmark feeds one input; ${path} has ${graph.inputs.length}: ${graph.inputs.map((i) => i.name).join(', ')}`);
  }
  const input = graph.inputs[0];
  if (input.dtype !== 'float32') throw new TernionError('ERR_DTYPE', `input "${input.name}" is ${input.dtype}; the benchmark feeds float32 inputs`);
  const declared = input.shape;
  if (!declared || declared.length === 0) {
    if (!options.shape) throw new TernionError('ERR_SHAPE_MISMATCH', `input "${input.name}" has no declared shape; pass --shape with its per-sample dims`);
  }
  const batchDim = declared?.[0];
  if (typeof batchDim === 'number' && options.batch !== undefined && batchDim !== options.batch) {
    throw new TernionError('ERR_SHAPE_MISMATCH', `input "${input.name}" has a fixed batch of ${batchDim} (shape ${fmt(declared!)}); pass --batch ${batchDim}`);
  }
  let sampleDims: number[];
  if (options.shape) {
    const rest = declared?.slice(1);
    if (rest && (rest.length !== options.shape.length || rest.some((d, i) => typeof d === 'number' && d !== options.shape![i]))) {
      throw new TernionError('ERR_SHAPE_MISMATCH', `--shape ${options.shape.join(',')} does not fit input "${input.name}" ${fmt(declared!)} (per-sample dims ${fmt(rest)})`);
    }
    sampleDims = [...options.shape];
  } else {
    const rest = declared!.slice(1);
    const symbolic = rest.findIndex((d) => typeof d !== 'number');
    if (symbolic >= 0) {
      throw new TernionError('ERR_SHAPE_MISMATCH', `dim ${symbolic + 1} ("${rest[symbolic]}") of input "${input.name}" ${fmt(declared!)} is symbolic; pass --shape with the per-sample dims (e.g. --shape ${rest.map((d) => (typeof d === 'number' ? d : 'N')).join(',')})`);
    }
    sampleDims = rest as number[];
  }
  const fixed: Graph = { ...graph, inputs: [{ ...input, shape: [typeof batchDim === 'number' ? batchDim : 'batch', ...sampleDims] }] };
  return { inputName: input.name, declared: declared ?? [], sampleDims, macsPerSample: countMacs(fixed).perSample, graph };
}
