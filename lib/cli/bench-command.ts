// `ternion bench MODEL`: onnxruntime-node and ternion's engines side by side on a user's own
// fp32 .onnx model, with the measurement `npm run bench` uses (lib/bench/): the ternion engines
// quantize the model on the fly, onnxruntime-node runs when it can be required (it is not a
// dependency of ternion) and its int8 engine gets a static QDQ model made on the fly.
import { TernionError } from '../errors';
import { cpuInfo } from '../kernels';
import { compareEngines, type EngineRow } from '../bench/compare';
import { DEFAULT_ENGINES, parseEngines, prepareEngines } from '../bench/engines';
import { MEMORY_METHOD } from '../bench/memory-probe';
import { generatedInputs, modelInfo, type ModelInfo, type SampleShapes } from '../bench/model-info';
import { sampleCount, sampleRows, type CalibrationFeeds } from '../quantize/calibration-data';
import { Tensor } from '../tensor';
import { loadOrt } from '../bench/ort';
import { UsageError, intValue, parseNumber, type CommandSpec, type ParsedArgs } from './args';
import { PREPROCESS_FLAGS, bindInputFiles, concatRows, preprocessOf, preprocessUsage, samplesFromFiles, valueTensor } from './inputs';
import type { Io } from './io';
import { isTernFile } from './model-file';
import { table } from './text';

export const BENCH_SPEC: CommandSpec = {
  name: 'bench',
  usage: `usage: ternion bench MODEL [options]

  MODEL                   an fp32 .onnx model
  --batch B               samples per run (default 1)
  --threads T             threads per run, every engine (default 1)
  --compare LIST          engines, comma-separated (default ${DEFAULT_ENGINES.join(',')}):
                          ort-fp32, ort-int8 (onnxruntime-node; int8 runs a static QDQ model
                          made on the fly), fp32, int8, int8-dynamic, ternary-gN, ternary-asym-gN,
                          int4-gN (ternion; N: 4, 8, 16, 32, 64 or filter)
  --calib [NAME=]X.npy    calibration samples for the quantized engines, first dim = count
                          (NAME may be left out when the model has one input; repeat for each
                          input); they also feed the timed runs. Default: 8 generated samples
                          (seeded uniform [0, 1) floats; token ids below the size of the table
                          an integer input indexes; ones for other integer inputs such as
                          attention masks): fine for speed, not for accuracy
  --calib-count K         use the first K calibration samples
  --shape [NAME=]D,D,...  per-sample input dims, when the model's are symbolic (without NAME:
                          for every input; repeat with NAME for inputs of different shapes).
                          The batch is dim 0, or the dim where an input has the symbol other
                          inputs start with ([2, batch, 128] state); an input with neither (a
                          scalar sample rate) is fed the same at every batch size. B marks
                          the batch's place where the model does not tell: state=2,B,128
  --value NAME=V[,V...]   the value of an input fed whole to every run, such as a sample rate
                          (--value sr=16000): one number fills it, or one per element
  --qdq FILE.onnx         a QDQ model for ort-int8 instead of making one
  --samples N             timed runs at least (default 3)
  --max-time S            seconds of further timed runs per engine (default 2)
  --no-memory             skip the memory probe (a child process per engine that measures
                          the session's RSS and the peak while loading it and running once)
  --json                  print one JSON object with a row per engine
${preprocessUsage(26)}`,
  positionals: ['MODEL'],
  flags: [
    { name: 'batch' }, { name: 'threads' }, { name: 'compare' }, { name: 'calib', repeat: true }, { name: 'calib-count' }, { name: 'shape', repeat: true }, { name: 'value', repeat: true },
    { name: 'qdq' }, { name: 'samples' }, { name: 'max-time' }, { name: 'no-memory', switch: true }, { name: 'json', switch: true }, ...PREPROCESS_FLAGS,
  ],
};

/** D,D,... positive integers; one dim may be B, where the batch goes (its index is returned). */
function dimsOf(text: string, v: string): { dims: number[]; batchAxis?: number } {
  const parts = text.split(',');
  const batchAxis = parts.findIndex((d) => d === 'B');
  const dims = parts.filter((_, i) => i !== batchAxis).map((d) => Number(d));
  if (parts.length === 0 || dims.some((d) => !Number.isInteger(d) || d < 1) || parts.filter((d) => d === 'B').length > 1) {
    throw new TernionError('ERR_INVALID_ARGUMENT', `Expected positive integers separated by commas (and at most one B, where the batch goes) for --shape but received "${v}"`);
  }
  return batchAxis >= 0 ? { dims, batchAxis } : { dims };
}

/** --shape D,D (every input) or --shape NAME=D,D (repeatable, one per input; NAME=2,B,128 places the batch). */
function shapeValue(args: ParsedArgs): { shape?: SampleShapes; batchAxes?: Record<string, number> } {
  const list = args.lists.get('shape');
  if (!list?.length) return {};
  const named: Record<string, number[]> = {};
  const batchAxes: Record<string, number> = {};
  for (const v of list) {
    const eq = v.lastIndexOf('=');
    if (eq < 0) {
      if (list.length > 1) throw new UsageError('--shape: give one list for every input, or NAME=D,D for each input', BENCH_SPEC.usage);
      const all = dimsOf(v, v);
      if (all.batchAxis !== undefined) throw new UsageError('--shape: B (where the batch goes) needs the input\'s NAME=', BENCH_SPEC.usage);
      return { shape: all.dims };
    }
    const name = v.slice(0, eq);
    if (named[name]) throw new UsageError(`--shape: input "${name}" is given twice`, BENCH_SPEC.usage);
    const one = dimsOf(v.slice(eq + 1), v);
    named[name] = one.dims;
    if (one.batchAxis !== undefined) batchAxes[name] = one.batchAxis;
  }
  return { shape: named, batchAxes };
}

/** --value NAME=V,V: tensors for inputs without a batch axis, of their dtype and dims. */
function fixedInputValues(args: ParsedArgs, info: ModelInfo): Record<string, Tensor> {
  const fixed = info.inputs.filter((i) => i.batchAxis === null).map((i) => ({ name: i.name, dtype: i.dtype, dims: i.sampleDims }));
  return Object.fromEntries((args.lists.get('value') ?? []).map((v) => valueTensor(v, fixed, info.inputs)));
}

/** The engines asked for; without --compare, the default list minus onnxruntime's when it is missing. */
function chooseEngines(args: ParsedArgs, io: Io) {
  const list = args.values.get('compare');
  const ort = loadOrt();
  if (list === undefined) {
    const ids = DEFAULT_ENGINES.filter((id) => ort.ort || !id.startsWith('ort-'));
    if (!ort.ort) io.err(`note: onnxruntime-node could not be loaded (${ort.error}); it is not a dependency of ternion, so the ort-* engines are left out (npm install onnxruntime-node to compare with it)`);
    return parseEngines(ids.join(','));
  }
  const engines = parseEngines(list);
  if (!ort.ort && engines.some((e) => e.kind === 'ort')) {
    throw new TernionError('ERR_INVALID_ARGUMENT', `--compare ${list} asks for onnxruntime-node, which is not a dependency of ternion and could not be loaded (${ort.error}); install it with "npm install onnxruntime-node" or leave the ort-* engines out`);
  }
  return engines;
}

function calibrationOf(args: ParsedArgs, info: ModelInfo, io: Io): CalibrationFeeds {
  const files = args.lists.get('calib');
  const count = intValue(args, 'calib-count');
  if (!files?.length) return generatedInputs(info.inputs, count ?? 8, 777);
  // Files hold samples along dim 0; an input whose batch is another dim, or that is fed whole to
  // every run (a sample rate, see lib/ir/batch-axes.ts), gets its generated value.
  const perSample = info.inputs.filter((i) => i.batchAxis === 0);
  const other = info.inputs.filter((i) => i.batchAxis !== 0);
  const bound = bindInputFiles(files, perSample.map((i) => i.name), '--calib', BENCH_SPEC.usage);
  const metas = perSample.map((i) => ({ name: i.name, type: i.dtype, shape: ['batch', ...i.sampleDims] }));
  const feeds = samplesFromFiles(bound, metas, preprocessOf(args), count, io.err);
  if (other.length) io.err(`note: ${other.map((i) => `"${i.name}"`).join(', ')} ${other.length > 1 ? 'are' : 'is'} not batched on dim 0; generated values feed ${other.length > 1 ? 'them' : 'it'}`);
  return { ...feeds, ...generatedInputs(other, sampleCount(feeds), 777) };
}

/** One batch of input: the calibration samples repeated (with --calib), else generated ones. */
function inputOf(args: ParsedArgs, info: ModelInfo, calibration: CalibrationFeeds, batch: number): CalibrationFeeds {
  if (!args.lists.get('calib')?.length) return generatedInputs(info.inputs, batch);
  // The inputs calibrationOf generated (not batched on dim 0), generated again at this batch.
  const generated = generatedInputs(info.inputs.filter((i) => i.batchAxis !== 0), batch, 777);
  return Object.fromEntries(info.inputs.map((input) => {
    const t = calibration[input.name];
    if (input.batchAxis !== 0) return [input.name, generated[input.name]];
    return [input.name, concatRows(Array.from({ length: batch }, (_, b) => sampleRows(t, b % t.dims[0], 1)))];
  }));
}

const fixed = (x: number | null, digits: number, suffix = '') => (x === null ? '-' : `${x.toFixed(digits)}${suffix}`);

export interface BenchResult {
  model: string;
  inputs: { name: string; type: string; dims: number[] }[];
  batch: number;
  threads: number;
  macsPerSample: number | null;
  kernels: string | null;
  cpuFeatures: string[];
  onnxruntime: string | null;
  memoryMethod: string | null;
  rows: EngineRow[];
}

export async function benchCommand(args: ParsedArgs, io: Io): Promise<number> {
  const modelPath = args.positionals[0];
  const json = args.values.has('json');
  const memory = !args.values.has('no-memory');
  const batch = intValue(args, 'batch') ?? 1;
  const threads = intValue(args, 'threads') ?? 1;
  const minSamples = intValue(args, 'samples') ?? 3;
  const maxTimeArg = args.values.get('max-time');
  const maxTime = maxTimeArg === undefined ? 2 : parseNumber(maxTimeArg, '--max-time');
  if (!(maxTime >= 0)) throw new TernionError('ERR_INVALID_ARGUMENT', `Expected a number of seconds >= 0 for --max-time but received "${maxTimeArg}"`);
  if (isTernFile(modelPath)) throw new TernionError('ERR_INVALID_ARGUMENT', `${modelPath} is a .tern model; ternion bench compares engines on the fp32 .onnx it was quantized from`);
  const info = modelInfo(modelPath, { batch, ...shapeValue(args) });
  const engines = chooseEngines(args, io);
  // A model quantized for onnxruntime already: every engine runs it as given, whatever its name says.
  const quantizedOps = new Set(['QuantizeLinear', 'DequantizeLinear', 'DynamicQuantizeLinear', 'QLinearConv', 'QLinearMatMul', 'MatMulInteger', 'ConvInteger']);
  const quantizedOp = info.graph.nodes.find((n) => n.domain === '' && quantizedOps.has(n.opType));
  if (quantizedOp) {
    io.err(`note: ${modelPath} is quantized already (${quantizedOp.opType} nodes): "onnxruntime fp32" and "ternion fp32" run it as it is ` +
      '(onnxruntime its int8 kernels, ternion its int8 layers with the model\'s scales); the quantizing engines start from the fp32 model it stands for');
  }
  const values = fixedInputValues(args, info);
  const calibration = { ...calibrationOf(args, info, io), ...values };
  if (!args.lists.get('calib')?.length && engines.some((e) => e.precision === 'quantized' || e.precision === 'int8')) {
    io.err(`note: no --calib; quantizing with ${sampleCount(calibration)} generated samples (fine for speed; pass --calib for real ranges)`);
  }
  const prepared = await prepareEngines(engines, { model: modelPath, calibration, qdqModel: args.values.get('qdq'), log: json ? undefined : io.err });
  const inputs = { ...inputOf(args, info, calibration, batch), ...values };
  const rows = await compareEngines(prepared, {
    batch, threads, inputs, inputValues: info.inputs, macsPerSample: info.macsPerSample, timing: { minSamples, maxTime }, memory,
    onRow: json ? undefined : (r) => io.err(`${r.label}: ${r.error ? `failed: ${r.error}` : `${r.medianMs!.toFixed(2)} ms`}`),
  });
  const cpu = cpuInfo();
  const result: BenchResult = {
    model: modelPath, inputs: Object.entries(inputs).map(([name, t]) => ({ name, type: t.type, dims: [...t.dims] })), batch, threads, macsPerSample: info.macsPerSample,
    kernels: cpu.kernels, cpuFeatures: cpu.features, onnxruntime: loadOrt().version, memoryMethod: memory ? MEMORY_METHOD : null, rows,
  };
  if (json) {
    io.out(JSON.stringify(result, null, 1));
  } else {
    const gmac = info.macsPerSample === null ? 'unknown MACs' : `${(info.macsPerSample / 1e9).toFixed(3)} GMAC per sample`;
    const described = result.inputs.map((i) => `${i.name} ${i.type === 'float32' ? '' : `${i.type} `}[${i.dims.join(', ')}]`).join(', ');
    io.out(`${modelPath}: input${result.inputs.length > 1 ? 's' : ''} ${described}, ${gmac}, ${threads} thread${threads > 1 ? 's' : ''}, kernels ${cpu.kernels}, timer ${rows.find((r) => r.timer)?.timer ?? '-'}`);
    const body = rows.map((r) => [
      r.label, r.error ? `failed: ${r.error}` : fixed(r.medianMs, 2), fixed(r.imagesPerSecond, 1), fixed(r.gmacPerSecond, 1),
      fixed(r.vsOrtFp32, 2, 'x'), fixed(r.vsOrtInt8, 2, 'x'), fixed(r.rssMB, 0), fixed(r.peakRssMB, 0),
    ]);
    for (const line of table(['engine', 'median ms', 'samples/s', 'GMAC/s', 'vs ort fp32', 'vs ort int8', 'RSS MB', 'peak MB'], body, 1)) io.out(line);
    if (memory) io.out('RSS MB: the session after one run; peak MB: while reading the model, creating the session and running once (each in a fresh process)');
  }
  return rows.some((r) => r.error) ? 1 : 0;
}
