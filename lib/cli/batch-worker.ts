// The piscina worker of `ternion run --batch-dir`: each worker thread opens the model once (one
// session, `threads` threads per run, 1 by default: the workers are the parallelism) and runs
// the files of each task it is given: decoded (.npy, or an image through sharp), converted to
// the model input like `ternion run --input` does, stacked into runs of up to `batch` samples,
// and split back per file. A file that cannot be read or does not fit the model is reported in
// its result, not thrown, so one bad file does not stop the job.
import { extname } from 'node:path';
import { loadNpy } from '../data/npy';
import { TernionError } from '../errors';
import { decodeImage } from '../image';
import type { InputMetadata } from '../session/feeds';
import type { InferenceSession } from '../session/inference-session';
import { Tensor } from '../tensor';
import { concatRows, rowsOf, runInBatches, toModelInput, type Preprocess } from './inputs';
import { openModel } from './model-file';

export interface BatchTask {
  model: string;
  precision?: 'fp32' | 'int8';
  threads: number;
  /** Samples per run. */
  batch: number;
  pre: Preprocess;
  files: string[];
}

export interface SampleOutputs {
  /** Output name -> this sample's values (its row of the output). */
  outputs: Record<string, Tensor['data']>;
  /** Index of the largest value of the first output, when it is [batch, classes] with classes > 1. */
  top1?: number;
}

export interface FileResult {
  file: string;
  /** One entry per sample of the file (an image or a single-sample .npy: one). */
  samples?: SampleOutputs[];
  error?: { code: string; message: string };
}

export interface TaskResult {
  files: FileResult[];
  /** The model cannot be used at all (unreadable, several inputs): the job stops. */
  fatal?: { code: string; message: string };
  /** Notes for stderr (once per job is enough; the caller dedupes). */
  notes: string[];
}

const IMAGE_EXTENSIONS = ['.png', '.jpg', '.jpeg', '.webp', '.gif', '.tif', '.tiff', '.avif'];

let opened: { key: string; session: Promise<InferenceSession> } | undefined;

function sessionFor(task: BatchTask): Promise<InferenceSession> {
  const key = JSON.stringify([task.model, task.precision, task.threads]);
  if (opened?.key !== key) {
    const previous = opened;
    opened = { key, session: openModel(task.model, { precision: task.precision, threads: task.threads }).then((o) => o.session) };
    previous?.session.then((s) => s.release(), () => undefined);
  }
  return opened.session;
}

function coded(e: unknown): { code: string; message: string } {
  return e instanceof TernionError ? { code: e.code, message: e.message } : { code: 'ERR_INTERNAL', message: String((e as Error)?.message ?? e) };
}

/** A file as the model input: [n, ...sample dims] in the input's dtype. */
async function loadFile(file: string, meta: InputMetadata, pre: Preprocess, note: (s: string) => void): Promise<Tensor> {
  const shape = meta.shape;
  if (IMAGE_EXTENSIONS.includes(extname(file).toLowerCase())) {
    const [c, h, w] = shape?.slice(1) ?? [];
    if (!shape || shape.length !== 4 || (c !== 1 && c !== 3) || typeof h !== 'number' || typeof w !== 'number') {
      throw new TernionError('ERR_SHAPE_MISMATCH', `Images feed an NCHW input with 1 or 3 channels and a fixed height and width; model input "${meta.name}" has shape ${shape ? `[${shape.join(', ')}]` : 'unknown'}`);
    }
    const { pixels } = await decodeImage(file, { size: [h, w], channels: c, fit: 'cover' });
    const planar = new Uint8Array(c * h * w);
    for (let p = 0; p < h * w; p++) for (let k = 0; k < c; k++) planar[k * h * w + p] = pixels[p * c + k];
    // Images are always 0..255: scale 1/255 by default without a note.
    return toModelInput(new Tensor('uint8', planar, [1, c, h, w]), meta, { ...pre, scale: pre.scale ?? 1 / 255 }, file, () => undefined);
  }
  let t = loadNpy(file);
  // One sample without the batch dim gets it: [1, 28, 28] for [batch, 1, 28, 28], and so does
  // [28, 28] (size-1 dims left out) when the per-sample shape is fixed.
  if (shape && t.dims.length < shape.length) {
    const per = shape.slice(1);
    const fixed = per.every((d) => typeof d === 'number');
    if (t.dims.length === shape.length - 1 || (fixed && t.size === (per as number[]).reduce((a, b) => a * b, 1))) t = t.reshape([1, ...t.dims]);
  }
  return toModelInput(t, meta, pre, file, note);
}

/** Runs one task: its files, in order, in runs of up to task.batch samples. */
export async function runFiles(task: BatchTask): Promise<TaskResult> {
  const notes: string[] = [];
  let session: InferenceSession;
  try {
    session = await sessionFor(task);
  } catch (e) {
    return { files: [], fatal: coded(e), notes };
  }
  if (session.inputMetadata.length !== 1) {
    return { files: [], fatal: { code: 'ERR_INPUT_NAME', message: `--batch-dir feeds models with one input; ${task.model} has ${session.inputMetadata.length} (${session.inputNames.join(', ')}): use --input NAME=X.npy for each` }, notes };
  }
  const meta = session.inputMetadata[0];
  const results: FileResult[] = task.files.map((file) => ({ file }));
  // Load every file; those with the same per-sample dims run together.
  const groups = new Map<string, { index: number; t: Tensor }[]>();
  for (const [index, file] of task.files.entries()) {
    try {
      const t = await loadFile(file, meta, task.pre, (s) => notes.push(s));
      const key = `${t.type}:${t.dims.slice(1).join('x')}`;
      groups.set(key, [...(groups.get(key) ?? []), { index, t }]);
    } catch (e) {
      results[index].error = coded(e);
    }
  }
  for (const members of groups.values()) {
    try {
      const stacked = concatRows(members.map((m) => m.t));
      const count = stacked.dims[0];
      const parts = new Map<string, Tensor[]>(session.outputNames.map((n) => [n, []]));
      await runInBatches(session, { [meta.name]: stacked }, count, task.batch, (outs, _from, rows) => {
        for (const [name, t] of Object.entries(outs)) {
          if (t.dims[0] !== rows) {
            throw new TernionError('ERR_SHAPE_MISMATCH', `Output "${name}" has dims [${t.dims.join(', ')}], not one row per sample; --batch-dir needs outputs with the batch as their first dim`);
          }
          parts.get(name)!.push(t);
        }
      });
      const outputs = session.outputNames.map((name) => [name, concatRows(parts.get(name)!)] as const);
      const first = outputs[0][1];
      const classifier = first.dims.length === 2 && first.dims[1] > 1 && first.type !== 'int64';
      let row = 0;
      for (const { index, t } of members) {
        const samples: SampleOutputs[] = [];
        for (let i = 0; i < t.dims[0]; i++, row++) {
          const sample: SampleOutputs = { outputs: {} };
          for (const [name, out] of outputs) sample.outputs[name] = rowsOf(out, row, 1).data.slice();
          if (classifier) {
            const v = sample.outputs[outputs[0][0]] as Float32Array;
            let best = 0;
            for (let k = 1; k < v.length; k++) if (v[k] > v[best]) best = k;
            sample.top1 = best;
          }
          samples.push(sample);
        }
        results[index].samples = samples;
      }
    } catch (e) {
      for (const { index } of members) results[index].error = coded(e);
    }
  }
  return { files: results, notes };
}
