// `ternion quantize IN.onnx -o OUT.tern`: quantize() with calibration data from an .npy file or
// a folder of images, a progress bar, Ctrl-C to abort (exit 130), the report as JSON, and a
// summary table of the layers.
import { existsSync, realpathSync, statSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { loadNpy } from '../data/npy';
import { TernionError } from '../errors';
import type { Graph } from '../ir';
import { loadOnnxModel } from '../onnx';
import { sampleCount } from '../quantize/calibration-data';
import { quantize, type QuantGroupSize, type QuantizeProgress, type QuantizeReport, type WeightMode } from '../quantize';
import type { InputMetadata } from '../session/feeds';
import { Tensor } from '../tensor';
import { UsageError, choiceValue, intValue, parseNumber, type CommandSpec, type ParsedArgs } from './args';
import { EMBEDDED_MODEL, PACKAGE_ROOT } from './demo';
import { loadImageFolder } from './images';
import { calibrationFromFiles } from './calibration-files';
import { PREPROCESS_FLAGS, bindInputFiles, preprocessUsage, preprocessOf, rowsOf, toModelInput } from './inputs';
import { isTernFile } from './model-file';
import { Progress } from './progress';
import type { Io } from './io';
import { num, pct, table } from './text';

export const QUANTIZE_SPEC: CommandSpec = {
  name: 'quantize',
  usage: `usage: ternion quantize IN.onnx -o OUT.tern [options]

  -o, --output OUT.tern            the quantized model (required)
  --weights ternary|ternary-asym|int4|int8
                                   inner layers' weights (default ternary; the first conv and the
                                   last FC stay int8)
  --group 4|8|16|32|64|filter      FGQ group size N (default 4; ignored for int8)
  --threshold exact|twn            ternary threshold (default exact)
  --form group-scaled|folded       execution form (default folded for ternary: an int8 multiplier
                                   per group, 2 + 8/N bits per weight; group-scaled for int4)
  --full-range                     int8 weights in [-127, 127] (default: 7-bit [-63, 63], which
                                   CPUs without VNNI run about 1.3x faster, exactly)
  --activations 8|4                activation bits (default 8)
  --activation-scale free|pow2     activation scales: any float, or powers of two (dynamic
                                   fixed point) (default free)
  --calibrate max|percentile|mse|auto  activation clipping (default max; auto: per tensor, by output error)
  --calib X.npy|DIR                sample inputs: an .npy (first dim = samples) or a folder of images
                                   (needs sharp); optional only for the embedded model
  --calib NAME=X.npy               for a model with several inputs (a text encoder's input_ids,
                                   attention_mask, ...): one .npy per input, same sample count;
                                   an input batched on another dim (an RNN state [2, batch, 128])
                                   in that layout, zeros when left out
  --value NAME=V[,V...]            an input fed whole to every run, such as a sample rate
                                   (--value sr=16000): one number fills it, or one per element
  --calib-count K                  use the first K samples (default 256)
  --report R.json                  write the per-layer report as JSON
  --data-aware                     choose codes and scales for each layer's output error on the
                                   calibration data: all of the three methods below
  --error-feedback                 sequential rounding with error feedback (GPTQ-style)
  --refit-scales                   least-squares refit of the group scales on the output error
  --bias-correction                shift each bias by its mean output gap to fp32
  --max-drop X                     accuracy budget: largest top-1 drop vs fp32 (0.01 = 1 point);
                                   picks ternary N=64/16/4, 4-bit or int8 per layer (needs --validate)
  --validate X.npy Y.npy           labelled samples the budget is measured on
${preprocessUsage(35)}`,
  positionals: ['IN.onnx'],
  flags: [
    { name: 'output', alias: 'o', required: true },
    { name: 'weights' }, { name: 'group' }, { name: 'threshold' }, { name: 'form' }, { name: 'full-range', switch: true }, { name: 'activations' },
    { name: 'activation-scale' }, { name: 'calibrate' }, { name: 'calib', repeat: true }, { name: 'value', repeat: true }, { name: 'calib-count' }, { name: 'report' },
    { name: 'data-aware', switch: true }, { name: 'error-feedback', switch: true }, { name: 'refit-scales', switch: true },
    { name: 'bias-correction', switch: true }, { name: 'max-drop' }, { name: 'validate', arity: 2 },
    ...PREPROCESS_FLAGS,
  ],
};

const PHASE_LABEL: Record<QuantizeProgress['phase'], string> = {
  calibrate: 'calibrating', quantize: 'quantizing layers', 'data-aware': 'data-aware pass', budget: 'accuracy budget search', finish: 'finishing',
};


function groupOf(args: ParsedArgs): QuantGroupSize | undefined {
  const g = choiceValue(args, 'group', ['4', '8', '16', '32', '64', 'filter'] as const);
  return g === undefined ? undefined : g === 'filter' ? 'filter' : (Number(g) as QuantGroupSize);
}

function samePath(a: string, b: string): boolean {
  try {
    return realpathSync(a) === realpathSync(b);
  } catch {
    return false;
  }
}

/** Calibration samples: one input's (.npy or image folder), or a Tensor per input for a model with several. */
async function calibrationData(args: ParsedArgs, input: string, inputs: readonly InputMetadata[], io: Io): Promise<Tensor | Record<string, Tensor>> {
  const count = intValue(args, 'calib-count') ?? 256;
  const pre = preprocessOf(args);
  const files = args.lists.get('calib') ?? [];
  if (inputs.length > 1) {
    if (files.length === 0) throw new UsageError(`ternion quantize: missing --calib NAME=X.npy for each of the model's inputs (${inputs.map((i) => i.name).join(', ')})`, QUANTIZE_SPEC.usage);
    for (const f of files) {
      const file = f.slice(f.indexOf('=') + 1);
      if (!existsSync(file) || statSync(file).isDirectory()) throw new TernionError('ERR_INVALID_ARGUMENT', `Cannot read --calib ${f}: not an .npy file (image folders feed models with one input)`);
    }
    return calibrationFromFiles(inputs, files, args.lists.get('value') ?? [], pre, count, io.err, QUANTIZE_SPEC.usage);
  }
  if (args.lists.has('value')) throw new UsageError('ternion quantize: --value sets inputs fed whole to every run; this model has one input', QUANTIZE_SPEC.usage);
  const meta = inputs[0];
  if (files.length > 1) throw new UsageError(`ternion quantize: --calib is given ${files.length} times but the model has one input`, QUANTIZE_SPEC.usage);
  let calib = files.length ? bindInputFiles(files, [meta.name], '--calib', QUANTIZE_SPEC.usage).get(meta.name) : undefined;
  if (calib === undefined) {
    if (!samePath(input, EMBEDDED_MODEL)) {
      throw new UsageError('ternion quantize: missing --calib: sample inputs to calibrate the activations (X.npy, first dim = samples, or a folder of images)', QUANTIZE_SPEC.usage);
    }
    calib = join(PACKAGE_ROOT, 'data', 'fashion-mnist-calib-images.npy');
    io.err(`note: calibrating on the embedded model's calibration slice (${calib})`);
  }
  if (!existsSync(calib)) throw new TernionError('ERR_INVALID_ARGUMENT', `Cannot read --calib ${calib}: no such file or folder`);
  if (statSync(calib).isDirectory()) return loadImageFolder(calib, meta, count, pre);
  const data = loadNpy(calib);
  const take = Math.min(count, data.dims[0] ?? 0);
  if (take === 0) throw new TernionError('ERR_SHAPE_MISMATCH', `${calib} holds no samples (shape [${data.dims.join(', ')}])`);
  return toModelInput(rowsOf(data, 0, take), meta, pre, calib, io.err);
}


export function summaryTable(report: QuantizeReport): string[] {
  const rows = report.layers.map((l) => [
    l.name, l.op, l.weights, l.groupSize === null ? '-' : String(l.groupSize), l.bitsPerWeight.toFixed(2),
    num(l.bytes), num(l.parameters * 4), pct(l.multiplicationsRemoved), l.relativeError.toFixed(3),
  ]);
  const t = report.total;
  const bits = t.parameters > 0 ? (t.bytes * 8) / t.parameters : 0;
  rows.push(['total', '', '', '', bits.toFixed(2), num(t.bytes), num(t.fp32Bytes), pct(t.multiplicationsRemoved), '']);
  const lines = table(['layer', 'op', 'weights', 'N', 'bits/w', 'bytes', 'fp32 bytes', 'mults removed', 'weight err'], rows, 3);
  const out = [
    ...lines,
    `${report.layers.length} layers: ${num(t.bytes)} B of weights, ${(t.fp32Bytes / Math.max(1, t.bytes)).toFixed(1)}x smaller than fp32; ` +
      `${pct(t.multiplicationsRemoved)} of the multiplications removed (weighted by ${t.multiplicationsWeightedBy})`,
  ];
  const f = report.fidelity;
  if (f) {
    out.push(`against fp32 on ${f.samples} calibration samples: output "${f.output}" relative error ${f.relativeError.toFixed(3)}` +
      (f.top1Agreement === null ? '' : `, top-1 agreement ${pct(f.top1Agreement)}`));
  }
  for (const w of report.warnings ?? []) out.push(`warning: ${w}`);
  return out;
}

/** Runs `quantize` with Ctrl-C wired to its AbortSignal: interrupted, it writes nothing and exits 130. */
export async function quantizeCommand(args: ParsedArgs, io: Io): Promise<number> {
  const controller = new AbortController();
  const onSigint = () => {
    if (controller.signal.aborted) process.exit(130); // a second Ctrl-C: stop now
    controller.abort();
  };
  process.on('SIGINT', onSigint);
  const progress = new Progress({ stream: io.progressStream });
  try {
    return await quantizeTo(args, io, controller.signal, progress);
  } catch (e) {
    if (!controller.signal.aborted) throw e;
    progress.done();
    io.err('ternion quantize: interrupted');
    return 130;
  } finally {
    process.off('SIGINT', onSigint);
  }
}

async function quantizeTo(args: ParsedArgs, io: Io, signal: AbortSignal, progress: Progress): Promise<number> {
  const input = args.positionals[0];
  const output = args.values.get('output')!;
  const reportPath = args.values.get('report');
  for (const p of [output, reportPath]) {
    if (p !== undefined && !existsSync(dirname(resolve(p)))) throw new TernionError('ERR_INVALID_ARGUMENT', `Cannot write ${p}: folder ${dirname(resolve(p))} does not exist`);
  }
  if (isTernFile(input)) throw new TernionError('ERR_INVALID_ARGUMENT', `${input} is a .tern model, quantized already; quantize takes an fp32 .onnx`);
  const options = {
    weights: choiceValue(args, 'weights', ['ternary', 'ternary-asym', 'int4', 'int8'] as const) as WeightMode | undefined,
    groupSize: groupOf(args),
    threshold: choiceValue(args, 'threshold', ['exact', 'twn'] as const),
    form: choiceValue(args, 'form', ['group-scaled', 'folded'] as const),
    activationBits: choiceValue(args, 'activations', ['8', '4'] as const) === '4' ? 4 : 8,
    activationScale: choiceValue(args, 'activation-scale', ['free', 'pow2'] as const),
    calibrate: choiceValue(args, 'calibrate', ['max', 'percentile', 'mse', 'auto'] as const),
    dataAware: args.values.has('data-aware') ? true : undefined,
    errorFeedback: args.values.has('error-feedback') ? true : undefined,
    refitScales: args.values.has('refit-scales') ? true : undefined,
    biasCorrection: args.values.has('bias-correction') ? true : undefined,
    reduceRange: args.values.has('full-range') ? false : undefined,
  } as const;
  const maxDropText = args.values.get('max-drop');
  const maxDrop = maxDropText === undefined ? undefined : parseNumber(maxDropText, '--max-drop');
  if (maxDrop !== undefined && !(maxDrop >= 0 && maxDrop < 1)) throw new TernionError('ERR_INVALID_ARGUMENT', `Expected a fraction in [0, 1) for --max-drop (0.01 = one point of top-1) but received "${maxDropText}"`);
  if (maxDrop !== undefined && !args.lists.has('validate')) throw new UsageError('ternion quantize: --max-drop needs --validate X.npy Y.npy (labelled samples)', QUANTIZE_SPEC.usage);

  let graph: Graph;
  try {
    graph = loadOnnxModel(await readFile(input), { basePath: dirname(input) });
  } catch (e) {
    if (e instanceof TernionError) throw e;
    throw new TernionError('ERR_INVALID_ARGUMENT', `Cannot read model file "${input}": ${(e as Error).message}`, { cause: e });
  }
  const metas: InputMetadata[] = graph.inputs.map((i) => ({ name: i.name, type: i.dtype, shape: i.shape }));
  const calibration = await calibrationData(args, input, metas, io);
  const meta = metas[0];
  let validation: { inputs: Tensor; labels: Int32Array } | undefined;
  if (maxDrop !== undefined) {
    if (metas.length > 1) throw new TernionError('ERR_INVALID_ARGUMENT', `--max-drop measures top-1 on a model with one input; ${input} has ${metas.length} (${metas.map((i) => i.name).join(', ')})`);
    const [xPath, yPath] = args.lists.get('validate')!;
    const x = loadNpy(xPath);
    const y = loadNpy(yPath);
    const inputs = toModelInput(rowsOf(x, 0, x.dims[0] ?? 0), meta, preprocessOf(args), xPath, io.err);
    const labels = Int32Array.from(y.data as ArrayLike<number | bigint>, (v) => Number(v));
    validation = { inputs, labels };
  }

  const start = Date.now();
  const model = await quantize(graph, {
    ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)),
    calibration,
    ...(maxDrop !== undefined ? { maxAccuracyDrop: maxDrop, validation } : {}),
    onProgress: (p) => progress.update(PHASE_LABEL[p.phase] ?? p.phase, p.done, p.total, p.layer),
    signal,
  });
  signal.throwIfAborted();
  await model.save(output);
  progress.done();
  if (reportPath !== undefined) {
    try {
      writeFileSync(reportPath, JSON.stringify(model.report, null, 1) + '\n');
    } catch (e) {
      throw new TernionError('ERR_INVALID_ARGUMENT', `Cannot write ${reportPath}: ${(e as Error).message}`, { cause: e });
    }
  }
  for (const line of summaryTable(model.report)) io.out(line);
  const b = model.report.budget;
  if (b) {
    io.out(`accuracy budget: fp32 top-1 ${(b.fp32Accuracy * 100).toFixed(2)}%, quantized ${(b.accuracy * 100).toFixed(2)}% ` +
      `(drop ${((b.fp32Accuracy - b.accuracy) * 100).toFixed(2)} points, budget ${(b.maxAccuracyDrop * 100).toFixed(2)}): ${b.met ? 'met' : 'NOT met: every layer that could back off did'}; ${b.evaluations} validation runs`);
  }
  const seconds = ((Date.now() - start) / 1000).toFixed(1);
  io.out(`wrote ${output} (${num(statSync(output).size)} bytes) in ${seconds} s, calibrated on ${calibration instanceof Tensor ? calibration.dims[0] : sampleCount(calibration)} samples${reportPath ? `; report: ${reportPath}` : ''}`);
  return 0;
}
