// `ternion eval MODEL --inputs X.npy --labels Y.npy`: top-1 / top-5 accuracy of a classifier
// (.onnx in fp32 or int8, or a .tern) over an .npy data set, in batches, with a progress bar.
import { loadNpy } from '../data/npy';
import { TernionError } from '../errors';
import type { Tensor } from '../tensor';
import { choiceValue, intValue, type CommandSpec, type ParsedArgs } from './args';
import { PREPROCESS_FLAGS, preprocessUsage, preprocessOf, rowsOf, runInBatches, toModelInput } from './inputs';
import type { Io } from './io';
import { openModel } from './model-file';
import { Progress } from './progress';

export const EVAL_SPEC: CommandSpec = {
  name: 'eval',
  usage: `usage: ternion eval MODEL --inputs X.npy --labels Y.npy [options]

  MODEL                   an .onnx (fp32, or --precision int8) or a .tern
  --inputs X.npy          samples, first dim = count (float32, uint8 or int64)
  --labels Y.npy          class indices, one per sample (uint8, int32 or int64)
  --count N               evaluate the first N samples only
  --batch B               samples per run (default 100)
  --precision fp32|int8   how to run an .onnx (default fp32)
  --threads T             threads per run (default: all cores)
  --json                  print one JSON object: top1, top5, count, imagesPerSecond, ...
${preprocessUsage(26)}`,
  positionals: ['MODEL'],
  flags: [
    { name: 'inputs', required: true }, { name: 'labels', required: true }, { name: 'count' }, { name: 'batch' },
    { name: 'precision' }, { name: 'threads' }, { name: 'json', switch: true }, ...PREPROCESS_FLAGS,
  ],
};

function labelsOf(t: Tensor, file: string, count: number): Int32Array {
  if (t.type !== 'uint8' && t.type !== 'int64' && t.type !== 'int32' && t.type !== 'int8') {
    throw new TernionError('ERR_DTYPE', `${file} holds ${t.type} data; labels are class indices (uint8, int32 or int64)`);
  }
  const perSample = t.dims.slice(1).reduce((a, b) => a * b, 1);
  if (t.dims.length === 0 || perSample !== 1) {
    throw new TernionError('ERR_SHAPE_MISMATCH', `${file} has shape [${t.dims.join(', ')}]; labels take one class index per sample ([N] or [N, 1])`);
  }
  if (t.dims[0] < count) throw new TernionError('ERR_SHAPE_MISMATCH', `${file} holds ${t.dims[0]} labels for ${count} samples`);
  const out = new Int32Array(count);
  for (let i = 0; i < count; i++) out[i] = Number(t.data[i]);
  return out;
}

export interface EvalResult {
  model: string;
  precision: string;
  count: number;
  classes: number;
  top1: number;
  /** null when the model has fewer than 5 classes. */
  top5: number | null;
  correct: number;
  imagesPerSecond: number;
  seconds: number;
  batch: number;
}

export async function evalCommand(args: ParsedArgs, io: Io): Promise<number> {
  const modelPath = args.positionals[0];
  const json = args.values.has('json');
  const batch = intValue(args, 'batch') ?? 100;
  const threads = intValue(args, 'threads');
  const precision = choiceValue(args, 'precision', ['fp32', 'int8'] as const);
  const pre = preprocessOf(args);
  const inputsFile = args.values.get('inputs')!, labelsFile = args.values.get('labels')!;
  const data = loadNpy(inputsFile);
  const labelData = loadNpy(labelsFile);
  const { session, precision: ran } = await openModel(modelPath, { precision, threads });
  try {
    if (session.inputMetadata.length !== 1) {
      throw new TernionError('ERR_INPUT_NAME', `eval feeds one input; ${modelPath} has ${session.inputNames.length}: ${session.inputNames.join(', ')} (use ternion run)`);
    }
    const available = data.dims[0] ?? 0;
    const count = Math.min(intValue(args, 'count') ?? available, available);
    if (count === 0) throw new TernionError('ERR_SHAPE_MISMATCH', `${inputsFile} holds no samples (shape [${data.dims.join(', ')}])`);
    const labels = labelsOf(labelData, labelsFile, count);
    const x = toModelInput(rowsOf(data, 0, count), session.inputMetadata[0], pre, inputsFile, io.err);
    const outputName = session.outputNames[0];
    const progress = new Progress({ stream: io.progressStream });
    let top1 = 0, top5 = 0, classes = 0;
    const start = process.hrtime.bigint();
    await runInBatches(session, { [session.inputNames[0]]: x }, count, batch, (outputs, from, rows) => {
      const y = outputs[outputName];
      if (y.type !== 'float32') throw new TernionError('ERR_DTYPE', `output "${outputName}" is ${y.type}; eval ranks float32 class scores`);
      classes = y.size / rows;
      if (y.dims[0] !== rows || !Number.isInteger(classes)) {
        throw new TernionError('ERR_SHAPE_MISMATCH', `output "${outputName}" has dims [${y.dims.join(', ')}] for a batch of ${rows}; eval needs [batch, classes]`);
      }
      const scores = y.data as Float32Array;
      for (let i = 0; i < rows; i++) {
        const label = labels[from + i];
        if (label < 0 || label >= classes) {
          throw new TernionError('ERR_INVALID_ARGUMENT', `label ${label} of sample ${from + i} in ${labelsFile} is outside the model's ${classes} classes`);
        }
        const row = scores.subarray(i * classes, (i + 1) * classes);
        // Rank of the true class in a stable descending sort (ties: lower index first, as argmax).
        let above = 0;
        const s = row[label];
        for (let c = 0; c < classes; c++) if (row[c] > s || (row[c] === s && c < label)) above++;
        if (above === 0) top1++;
        if (above < 5) top5++;
      }
      progress.update('evaluating', from + rows, count);
    });
    progress.done();
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    const result: EvalResult = {
      model: modelPath, precision: ran, count, classes, top1: top1 / count, top5: classes >= 5 ? top5 / count : null,
      correct: top1, imagesPerSecond: count / seconds, seconds, batch,
    };
    if (json) {
      io.out(JSON.stringify(result));
    } else {
      const five = result.top5 === null ? `top-5 n/a (${classes} classes)` : `top-5 ${(result.top5 * 100).toFixed(2)}%`;
      io.out(`${modelPath} (${ran}): top-1 ${(result.top1 * 100).toFixed(2)}% (${top1}/${count})  ${five}  ${result.imagesPerSecond.toFixed(0)} images/s`);
    }
    return 0;
  } finally {
    await session.release();
  }
}
