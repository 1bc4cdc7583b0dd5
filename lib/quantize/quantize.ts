// quantize(): an fp32 ONNX model (or IR graph) to a static-activation FGQ model on the quantized
// ops: load + optimize, find the Conv / Gemm / MatMul layers, calibrate every layer input's range
// on sample data, and rewrite each layer to TernionQConv / TernionQGemm (shared/fgq.md 1, 4, 5).
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { TernionError, invalidArgument, oneOf, throwIfAborted } from '../errors';
import { optimizeGraph, type Graph } from '../ir';
import { quantizationInfo, saveTern, writeTern } from '../format';
import { loadOnnxModel } from '../onnx';
import { InferenceSession, type SessionOptions } from '../session/inference-session';
import { Tensor } from '../tensor';
import { forEachCalibrationBatch, RangeObserver, SAMPLE_LIMIT, type ActivationParams, type ActivationScaleMode, type CalibrationMethod } from './calibrate';
import { convGeometry, correctedBias, LayerRows, LayerStatistics, quantizeSequentially, quantizeWeightsDataAware } from './data-aware';
import { checkCalibrationInput, feedBatchAxes, feedRows, isCalibrationFeeds, sampleCount, type CalibrationFeeds, type CalibrationInput } from './calibration-data';
import { readQdq } from './import-qdq';
import { widenHalf } from '../ir/passes/widen-half';
import { IfBranches, layersInSubgraphs } from './quantize-branches';
import { applyRewrites, findLayers, firstConvName, layerBias, rewriteLayer, type LayerCandidate, type RewriteChoices, type RewrittenLayer } from './rewrite';
import { gemmLayout, type WeightQuantOptions } from './weights';
import { AUTO_CANDIDATES, chooseClipping, probeRows, type LayerProbe } from './activation-clipping';
import { budgetLevels, checkValidation, searchBudget, top1, type BudgetReport, type Validation } from './accuracy-budget';

export type WeightMode = 'ternary' | 'ternary-asym' | 'int4' | 'int8';
export type QuantGroupSize = 4 | 8 | 16 | 32 | 64 | 'filter';

export interface LayerOverride {
  weights?: WeightMode;
  groupSize?: QuantGroupSize;
}

export interface QuantizeOptions {
  /** Inner layers' weights (default 'ternary'). */
  weights?: WeightMode;
  /** FGQ group size N (default 4); ignored for int8. */
  groupSize?: QuantGroupSize;
  threshold?: 'exact' | 'twn';
  /**
   * Execution form of ternary / 4-bit layers: 'folded' (an integer multiplier per group of one
   * per-channel scale: 2 + 8/N bits per weight, runs as int8) or 'group-scaled' (an fp32 scale
   * per group). Default: folded for ternary, group-scaled for 4-bit (README, Quantizing).
   */
  form?: 'group-scaled' | 'folded';
  activationBits?: 8 | 4;
  /**
   * Quantize the residual stream: the tensor a residual Add adds to a conv's output is rounded to
   * 8 bits like an activation (as onnxruntime's QDQ models do), so the convs producing it pass it
   * on as uint8 (a quarter of the memory traffic of float32). Default true.
   */
  quantizeResiduals?: boolean;
  /** 'free' fp32 scales (default) or 'pow2': powers of two (dynamic fixed point, fgq.md 4). */
  activationScale?: ActivationScaleMode;
  /** Activation clipping: 'max' (default), 'percentile', 'mse', or 'auto' (per tensor, by the readers' output error). */
  calibrate?: CalibrationMethod | 'auto';
  /**
   * Sample inputs (required): a Tensor [samples, ...] for a model with one input, or a record of
   * Tensors by input name for any model (as session.run takes them: { input_ids, attention_mask },
   * every tensor with the same sample count in dims[0]); or an array / iterable / async iterable
   * of such batches (read once, in order). An input that is not per sample (a scalar sample rate,
   * a fixed-shape input beside inputs with a symbolic batch) is fed whole to every run, and an
   * input whose batch is another dim ([2, batch, 128] beside [batch, samples]) is split along it
   * (lib/ir/batch-axes.ts).
   */
  calibration: CalibrationInput;
  /**
   * Data-aware quantization (all three methods below, each unless set to false): codes and
   * scales chosen for the layer's output error on the calibration data, not its weight error.
   */
  dataAware?: boolean;
  /** Sequential rounding with error feedback through H = X^T X (GPTQ-style). */
  errorFeedback?: boolean;
  /** Least-squares refit of each group's scale(s) on the output error, codes fixed. */
  refitScales?: boolean;
  /** Shift each layer's bias by its mean output gap to the fp32 model on calibration data. */
  biasCorrection?: boolean;
  /**
   * Take each layer's input statistics from the partially quantized model (layer by layer, as
   * it will really run) rather than from the fp32 model (default true).
   */
  sequential?: boolean;
  /**
   * Accuracy budget: the largest top-1 drop versus fp32 allowed on `validation`; each inner
   * layer then gets the most aggressive of ternary N=64/16/4, 4-bit N=16 and int8 that keeps it.
   */
  maxAccuracyDrop?: number;
  /** Labelled samples the budget is measured on (classification: top-1 of the first output). */
  validation?: Validation;
  /** Use at most this many calibration samples (default: all). */
  calibrationCount?: number;
  /** Progress of the long phases, for progress bars. */
  onProgress?: (progress: QuantizeProgress) => void;
  /** Cancels quantization; the promise then rejects with ERR_ABORTED (or the signal's reason). */
  signal?: AbortSignal;
  /** First Conv and last Gemm/MatMul keep int8 weights (default true). */
  keepEdgeLayers8bit?: boolean;
  /**
   * Depthwise convs (MobileNet-style, one channel per group): 'int8' weights per channel and
   * uint8 activations, run by the depthwise kernel (default), or left 'float32'. Their few
   * weights per filter make ternary a poor fit, so the inner-layer mode does not apply to them.
   */
  depthwise?: 'int8' | 'float32';
  /**
   * Int8 conv/Gemm weights (edge layers, depthwise convs, int8 mode) get 7-bit codes in
   * [-63, 63], like onnxruntime's reduce_range, and folded ternary multipliers stay in [1, 63].
   * On CPUs without VNNI the int8 kernels then multiply by vpmaddubsw, faster, and stay exact.
   * Default true.
   */
  reduceRange?: boolean;
  overrides?: Record<string, LayerOverride>;
}

export interface QuantizeProgress {
  phase: 'calibrate' | 'quantize' | 'data-aware' | 'budget' | 'finish';
  /** Units done in this phase: calibration samples, or layers. */
  done: number;
  /** Units in this phase (calibration: null when the data is an iterable of unknown length). */
  total: number | null;
  /** The layer being worked on ('quantize' and 'data-aware'). */
  layer?: string;
}

export interface LayerReport {
  name: string;
  op: string;
  weights: WeightMode;
  /** N; null for int8 (one scale per output channel). */
  groupSize: QuantGroupSize | null;
  bitsPerWeight: number;
  bytes: number;
  multiplicationsRemoved: number;
  relativeError: number;
  activationScale: number;
  activationZeroPoint: number;
  /** How the input's range was clipped (with calibrate: 'auto', the method chosen for it). */
  activationClipping: CalibrationMethod;
  parameters: number;
  /** Multiply-accumulates per sample (null when the shapes are not static). */
  macs: number | null;
  /** Every group was already ternary (a TTQ-trained layer) and was packed losslessly (fgq.md 3). */
  lossless: boolean;
  /** Data-aware methods applied to this layer ('error-feedback', 'refit-scales', 'bias-correction'). */
  methods: string[];
}

export interface QuantizeReport {
  layers: LayerReport[];
  total: {
    parameters: number;
    bytes: number;
    fp32Bytes: number;
    /** Over the quantized layers, weighted by MACs per sample ('macs') or by parameters ('parameters') when a shape is unknown. */
    multiplicationsRemoved: number;
    multiplicationsWeightedBy: 'macs' | 'parameters';
  };
  /** The accuracy-budget search's outcome (only with maxAccuracyDrop). */
  budget?: BudgetReport;
  /**
   * The quantized model against fp32 on the first calibration samples (up to 32), for the
   * model's first output: a cheap end-to-end check that needs no labels.
   */
  fidelity: FidelityReport | null;
  /** Plain-language warnings, e.g. when the quantized model disagrees with fp32 too often. */
  warnings: string[];
}

export interface FidelityReport {
  output: string;
  samples: number;
  /** ||quantized - fp32|| / ||fp32|| over the output. */
  relativeError: number;
  /** Fraction of samples whose argmax over the last axis equals fp32's (outputs of rank 2), else null. */
  top1Agreement: number | null;
}

const FIDELITY_SAMPLES = 32;

export interface QuantizedModel {
  graph: Graph;
  report: QuantizeReport;
  createSession(options?: Omit<SessionOptions, 'optimize' | 'precision'>): Promise<InferenceSession>;
  /** Writes the model as a .tern file (docs/format.md); InferenceSession.create(path) loads it. */
  save(path: string): Promise<void>;
  /** The bytes of the .tern file save() writes. */
  toBuffer(): Uint8Array;
}

const OPTION_NAMES = [
  'weights', 'groupSize', 'threshold', 'form', 'activationBits', 'quantizeResiduals', 'activationScale', 'calibrate', 'calibration', 'calibrationCount',
  'keepEdgeLayers8bit', 'depthwise', 'reduceRange', 'overrides', 'onProgress', 'signal', 'dataAware', 'errorFeedback', 'refitScales', 'biasCorrection', 'sequential', 'maxAccuracyDrop', 'validation',
];
const WEIGHT_MODES: readonly WeightMode[] = ['ternary', 'ternary-asym', 'int4', 'int8'];
const GROUP_SIZES: readonly QuantGroupSize[] = [4, 8, 16, 32, 64, 'filter'];

interface Resolved {
  weights: WeightMode;
  groupSize: QuantGroupSize;
  threshold: 'exact' | 'twn';
  form: 'group-scaled' | 'folded' | undefined;
  activationBits: 8 | 4;
  quantizeResiduals: boolean;
  activationScale: ActivationScaleMode;
  calibrate: CalibrationMethod | 'auto';
  calibration: CalibrationInput;
  calibrationCount: number;
  keepEdgeLayers8bit: boolean;
  depthwise: 'int8' | 'float32';
  reduceRange: boolean;
  overrides: Record<string, LayerOverride>;
  onProgress: (progress: QuantizeProgress) => void;
  signal: AbortSignal | undefined;
  errorFeedback: boolean;
  refitScales: boolean;
  biasCorrection: boolean;
  sequential: boolean;
  maxAccuracyDrop: number | undefined;
  validation: unknown;
}

function resolveOptions(options: unknown): Resolved {
  if (options === null || typeof options !== 'object') throw invalidArgument('an options object', 'options', options);
  const o = options as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (!OPTION_NAMES.includes(key)) throw new TernionError('ERR_INVALID_ARGUMENT', `Unknown option "${key}"; expected one of ${OPTION_NAMES.join(', ')}`);
  }
  const calibration = checkCalibrationInput(o.calibration);
  if (o.calibrationCount !== undefined && (!Number.isInteger(o.calibrationCount) || (o.calibrationCount as number) < 1)) {
    throw invalidArgument('a positive integer', 'options.calibrationCount', o.calibrationCount);
  }
  if (o.onProgress !== undefined && typeof o.onProgress !== 'function') throw invalidArgument('a function', 'options.onProgress', o.onProgress);
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) throw invalidArgument('an AbortSignal', 'options.signal', o.signal);
  for (const key of ['keepEdgeLayers8bit', 'quantizeResiduals', 'reduceRange', 'dataAware', 'errorFeedback', 'refitScales', 'biasCorrection', 'sequential']) {
    if (o[key] !== undefined && typeof o[key] !== 'boolean') throw invalidArgument('a boolean', `options.${key}`, o[key]);
  }
  if (o.maxAccuracyDrop !== undefined && !(typeof o.maxAccuracyDrop === 'number' && o.maxAccuracyDrop >= 0 && o.maxAccuracyDrop < 1)) {
    throw invalidArgument('a fraction in [0, 1) (0.01 = one point of top-1)', 'options.maxAccuracyDrop', o.maxAccuracyDrop);
  }
  if (o.maxAccuracyDrop !== undefined && o.validation === undefined) throw new TernionError('ERR_INVALID_ARGUMENT', 'options.maxAccuracyDrop needs options.validation: { inputs, labels }');
  if (o.maxAccuracyDrop !== undefined) checkValidation(o.validation);
  const dataAware = o.dataAware === true;
  const method = (key: string) => (o[key] as boolean | undefined) ?? dataAware;
  const overrides: Record<string, LayerOverride> = {};
  if (o.overrides !== undefined) {
    if (o.overrides === null || typeof o.overrides !== 'object' || Array.isArray(o.overrides)) throw invalidArgument('an object keyed by node name', 'options.overrides', o.overrides);
    for (const [name, ov] of Object.entries(o.overrides as Record<string, unknown>)) {
      const where = `options.overrides[${JSON.stringify(name)}]`;
      if (ov === null || typeof ov !== 'object') throw invalidArgument('an object { weights?, groupSize? }', where, ov);
      const r = ov as Record<string, unknown>;
      for (const key of Object.keys(r)) {
        if (key !== 'weights' && key !== 'groupSize') throw new TernionError('ERR_INVALID_ARGUMENT', `Unknown option "${key}" in ${where}; expected weights, groupSize`);
      }
      overrides[name] = {
        weights: r.weights === undefined ? undefined : oneOf(r.weights, WEIGHT_MODES, `${where}.weights`, 'ternary'),
        groupSize: r.groupSize === undefined ? undefined : oneOf(r.groupSize, GROUP_SIZES, `${where}.groupSize`, 4),
      };
    }
  }
  return {
    weights: oneOf(o.weights, WEIGHT_MODES, 'options.weights', 'ternary'),
    groupSize: oneOf(o.groupSize, GROUP_SIZES, 'options.groupSize', 4),
    threshold: oneOf(o.threshold, ['exact', 'twn'] as const, 'options.threshold', 'exact'),
    form: o.form === undefined ? undefined : oneOf(o.form, ['group-scaled', 'folded'] as const, 'options.form', 'folded'),
    activationBits: oneOf(o.activationBits, [8, 4] as const, 'options.activationBits', 8),
    quantizeResiduals: (o.quantizeResiduals as boolean | undefined) ?? true,
    activationScale: oneOf(o.activationScale, ['free', 'pow2'] as const, 'options.activationScale', 'free'),
    calibrate: oneOf(o.calibrate, ['max', 'percentile', 'mse', 'auto'] as const, 'options.calibrate', 'max'),
    calibration,
    calibrationCount: (o.calibrationCount as number | undefined) ?? Infinity,
    keepEdgeLayers8bit: (o.keepEdgeLayers8bit as boolean | undefined) ?? true,
    depthwise: oneOf(o.depthwise, ['int8', 'float32'] as const, 'options.depthwise', 'int8'),
    reduceRange: (o.reduceRange as boolean | undefined) ?? true,
    overrides,
    onProgress: (o.onProgress as Resolved['onProgress'] | undefined) ?? (() => undefined),
    signal: o.signal as AbortSignal | undefined,
    errorFeedback: method('errorFeedback'),
    refitScales: method('refitScales'),
    biasCorrection: method('biasCorrection'),
    sequential: (o.sequential as boolean | undefined) ?? true,
    maxAccuracyDrop: o.maxAccuracyDrop as number | undefined,
    validation: o.validation,
  };
}

function weightOptions(mode: WeightMode, groupSize: QuantGroupSize, o: Resolved, depthwise: boolean): WeightQuantOptions {
  if (mode === 'int8') return { bits: 8, reduceRange: o.reduceRange };
  if (mode === 'int4') return { bits: 4, groupSize, form: o.form };
  return { bits: 2, groupSize, threshold: o.threshold, asymmetric: mode === 'ternary-asym' ? true : undefined, form: o.form, reduceRange: o.reduceRange };
}

async function loadGraph(model: unknown): Promise<Graph> {
  if (typeof model === 'string') {
    let bytes: Uint8Array;
    try {
      bytes = await readFile(model);
    } catch (e) {
      throw new TernionError('ERR_INVALID_ARGUMENT', `Cannot read model file "${model}": ${(e as Error).message}`, { cause: e });
    }
    return loadOnnxModel(bytes, { basePath: dirname(model) });
  }
  if (model instanceof Uint8Array) return loadOnnxModel(model);
  if (model && typeof model === 'object' && Array.isArray((model as Graph).nodes) && (model as Graph).initializers instanceof Map) return model as Graph;
  throw invalidArgument('a path, the bytes of an .onnx model or a Graph', 'model', model);
}

/** Grouped (non-depthwise) convs see a different input per conv group: no single H. */
function supportsDataAware(layer: LayerCandidate): boolean {
  const g = layer.node.attributes.group;
  return layer.kind === 'gemm' || !g || g.type !== 'int' || g.value === 1;
}

/** Rows sampled per calibration batch for a layer's statistics (bounds their cost). */
const STAT_ROWS_PER_BATCH = 4096;

/** Input rows per layer that 'auto' clipping scores its candidates on. */
const PROBE_ROWS = 512;

function layerRows(layer: LayerCandidate, rowsPerBatch = STAT_ROWS_PER_BATCH): LayerRows {
  const layout = gemmLayout(layer.dims, 1);
  return new LayerRows(layer.kind, layout, layer.kind === 'conv' ? convGeometry(layer.node, layer.dims.slice(2)) : null, rowsPerBatch);
}

/** Quantizes an fp32 model: FGQ / int4 / int8 weights and statically calibrated activations. */
export async function quantize(model: string | Uint8Array | Graph, options: QuantizeOptions): Promise<QuantizedModel> {
  const o = resolveOptions(options);
  throwIfAborted(o.signal);
  // A model quantized for onnxruntime (QDQ) is quantized again from the fp32 graph it stands for.
  const loaded = await loadGraph(model);
  // A float16 model is quantized as the float32 one it computes as (its .tern takes float32 feeds).
  const wide = widenHalf(loaded);
  const graph = optimizeGraph(readQdq(wide)?.fp32 ?? wide);
  if (o.maxAccuracyDrop !== undefined && graph.inputs.length !== 1) {
    // validation.inputs is one Tensor of labelled samples: a classifier with one input.
    throw new TernionError('ERR_INVALID_ARGUMENT', `options.maxAccuracyDrop measures top-1 on a model with one input; this one has ${graph.inputs.length} (${graph.inputs.map((i) => `"${i.name}"`).join(', ')})`);
  }
  const layers = findLayers(graph).filter((l) => !(l.depthwise && o.depthwise === 'float32'));
  const names = new Set(layers.map((l) => l.node.name));
  for (const name of Object.keys(o.overrides)) {
    if (!names.has(name)) {
      throw new TernionError('ERR_INVALID_ARGUMENT', `options.overrides names "${name}", which is not a quantizable layer; quantizable: ${[...names].join(', ')}`);
    }
  }
  const edge = new Set<string>();
  if (o.keepEdgeLayers8bit) {
    const first = firstConvName(graph, layers);
    if (first) edge.add(first);
    const gemms = layers.filter((l) => l.kind === 'gemm');
    if (gemms.length) edge.add(gemms[gemms.length - 1].node.name);
  }

  type PlanEntry = { mode: WeightMode; groupSize: QuantGroupSize; wopts: WeightQuantOptions };
  const entry = (l: LayerCandidate, mode: WeightMode, groupSize: QuantGroupSize): PlanEntry => ({ mode, groupSize, wopts: weightOptions(mode, groupSize, o, l.depthwise === true) });
  const plan = new Map(layers.map((layer) => {
    const ov = o.overrides[layer.node.name] ?? {};
    return [layer.node.name, entry(layer, ov.weights ?? (edge.has(layer.node.name) || layer.depthwise ? 'int8' : o.weights), ov.groupSize ?? o.groupSize)];
  }));
  const budget = o.maxAccuracyDrop === undefined ? null : checkValidation(o.validation);
  // The layers an accuracy budget may move (edge layers and user overrides stay as set).
  const tunable = budget ? layers.filter((l) => !edge.has(l.node.name) && !l.depthwise && !o.overrides[l.node.name]) : [];

  // One calibration pass over the fp32 model: activation ranges and, for data-aware methods,
  // each layer's input statistics; the batches are kept for the layer-by-layer passes.
  const weightsByData = o.errorFeedback || o.refitScales;
  const statLayers = weightsByData || o.biasCorrection ? layers.filter(supportsDataAware) : [];
  const byData = (l: LayerCandidate, mode = plan.get(l.node.name)!.mode) => weightsByData && mode !== 'int8' && supportsDataAware(l);
  const samplers = new Map(statLayers.map((l) => [l.node.name, layerRows(l)]));
  const needFpH = (l: LayerCandidate) => weightsByData && (!o.sequential ? byData(l) : tunable.includes(l));
  const fpStats = new Map(statLayers.map((l) => [l.node.name, new LayerStatistics(samplers.get(l.node.name)!, needFpH(l))]));
  const inputNames = [...new Set(layers.map((l) => l.node.inputs[0]))];
  // The residual each conv adds (fuse-residual-add made it the conv's input 3), when quantized.
  const residualOf = (l: LayerCandidate): string | undefined => (o.quantizeResiduals && l.kind === 'conv' && l.node.inputs[3]) || undefined;
  const residualNames = [...new Set(layers.map(residualOf).filter((n): n is string => n !== undefined))];
  const observed = [...new Set([...inputNames, ...residualNames])];
  const observers = new Map(observed.map((n) => [n, new RangeObserver(o.calibrate === 'max' ? 0 : SAMPLE_LIMIT)]));
  // 'auto' clipping scores each candidate on sample rows of the first batch (activation-clipping.ts).
  const probes = new Map<string, LayerProbe>();
  const probeSamplers = o.calibrate === 'auto' ? layers.filter(supportsDataAware).map((l) => [l, layerRows(l, PROBE_ROWS)] as const) : [];
  const replay: CalibrationFeeds[] = [];
  const given = o.calibration instanceof Tensor ? o.calibration.dims[0] : isCalibrationFeeds(o.calibration) ? sampleCount(o.calibration, feedBatchAxes(graph.inputs, o.calibration)) : null;
  const knownSamples = given === null ? null : Math.min(given, o.calibrationCount);
  o.onProgress({ phase: 'calibrate', done: 0, total: knownSamples });
  // The fp32 output of the first samples, for the fidelity check once the model is quantized.
  const outputName = graph.outputs[0]?.dtype === 'float32' ? graph.outputs[0].name : undefined;
  const fidelityIn: CalibrationFeeds[] = [];
  const fidelityOut: Tensor[] = [];
  let fidelitySamples = 0;
  // If branches holding layers: their conditions and captured values, per batch.
  const ifBranches = new IfBranches(graph);
  const calibNames = [...new Set([...observed, ...(outputName ? [outputName] : []), ...ifBranches.names])];
  await forEachCalibrationBatch(graph, o.calibration, calibNames, (values, batch) => {
    const out = outputName ? values.get(outputName) : undefined;
    const axes = feedBatchAxes(graph.inputs, batch);
    const count = sampleCount(batch, axes);
    if (out && fidelitySamples < FIDELITY_SAMPLES && out.dims[0] === count) {
      const take = Math.min(count, FIDELITY_SAMPLES - fidelitySamples);
      fidelityIn.push(copyFeeds(feedRows(batch, 0, take, axes)));
      fidelityOut.push(firstRows(out, take));
      fidelitySamples += take;
    }
    for (const [name, t] of values) observers.get(name)?.observe(t.data as Float32Array);
    ifBranches.collect(values);
    if (probes.size === 0) for (const [l, sampler] of probeSamplers) probes.set(l.node.name, probeRows(sampler, values.get(l.node.inputs[0])!));
    for (const l of statLayers) fpStats.get(l.node.name)!.observe(values.get(l.node.inputs[0])!);
    if (statLayers.length && (o.sequential || o.biasCorrection)) replay.push(batch);
  }, {
    signal: o.signal,
    limit: o.calibrationCount,
    onBatch: (done) => o.onProgress({ phase: 'calibrate', done, total: knownSamples }),
    anyType: ifBranches.names.length > 0,  // an If's condition is bool, a captured shape int64
  });
  const clipping = new Map<string, CalibrationMethod>();
  const act = new Map<string, ActivationParams>();
  if (o.calibrate === 'auto') {
    const candidates = new Map(inputNames.map((n) => [n, AUTO_CANDIDATES.map((m) => observers.get(n)!.params(m, o.activationBits, o.activationScale))]));
    for (const [n, c] of chooseClipping(candidates, layers, probes)) {
      act.set(n, c.params);
      clipping.set(n, c.method);
    }
  } else {
    for (const n of inputNames) {
      act.set(n, observers.get(n)!.params(o.calibrate, o.activationBits, o.activationScale));
      clipping.set(n, o.calibrate);
    }
  }
  // A residual that is also a layer's input shares its parameters, so one uint8 tensor serves
  // both readers; otherwise its own 8-bit range ('auto' clipping scores layer inputs only: 'max').
  const residualAct = new Map<string, ActivationParams>();
  for (const n of residualNames) {
    const shared = act.get(n);
    residualAct.set(n, shared && shared.bits === 8 ? shared : observers.get(n)!.params(o.calibrate === 'auto' ? 'max' : o.calibrate, 8, o.activationScale));
  }
  const rewrite = (l: LayerCandidate, wopts: WeightQuantOptions, choices: RewriteChoices = {}) => {
    const r = residualOf(l);
    return rewriteLayer(l, wopts, act.get(l.node.inputs[0])!, { ...choices, residual: r ? residualAct.get(r) : undefined });
  };
  const dataAwareWeights = (l: LayerCandidate, wopts: WeightQuantOptions, H: Float64Array) =>
    quantizeWeightsDataAware(l.weights, l.dims, wopts, H, { errorFeedback: o.errorFeedback, refitScales: o.refitScales });

  /** The quantized graph for a plan: per-layer weights, then the layer-by-layer passes. */
  const build = async () => {
    const rewrites = new Map<string, RewrittenLayer>();
    for (const [index, layer] of layers.entries()) {
      const name = layer.node.name;
      throwIfAborted(o.signal);
      o.onProgress({ phase: 'quantize', done: index, total: layers.length, layer: name });
      const st = fpStats.get(name);
      const weights = st && byData(layer) && !o.sequential ? dataAwareWeights(layer, plan.get(name)!.wopts, st.H) : undefined;
      rewrites.set(name, rewrite(layer, plan.get(name)!.wopts, { weights }));
    }
    o.onProgress({ phase: 'quantize', done: layers.length, total: layers.length });
    // Layer by layer on the partially quantized model: sequential weights and / or bias correction.
    const lossless = (l: LayerCandidate) => rewrites.get(l.node.name)!.weights.stats.lossless;
    const pending = new Set(statLayers.filter((l) => !lossless(l) && ((byData(l) && o.sequential) || o.biasCorrection)).map((l) => l.node.name));
    if (pending.size) {
      await quantizeSequentially({
        graph, layers, pending, rewrites, samplers, act, batches: replay, signal: o.signal,
        withHessian: (l) => byData(l) && o.sequential,
        finish: (l, input) => {
          const name = l.node.name;
          const weights = byData(l) && o.sequential ? dataAwareWeights(l, plan.get(name)!.wopts, input.H) : rewrites.get(name)!.weights;
          const bias = o.biasCorrection ? correctedBias(l, weights, layerBias(graph, l), fpStats.get(name)!.mean(), input.mean()) : undefined;
          return rewrite(l, plan.get(name)!.wopts, { weights, bias });
        },
        onLayer: (done, total, layer) => o.onProgress({ phase: 'data-aware', done, total, layer }),
      });
    }
    const methods = new Map<string, string[]>(layers.map((l) => [l.node.name, []]));
    for (const l of statLayers) {
      if (lossless(l)) continue;
      const m = methods.get(l.node.name)!;
      if (byData(l) && o.errorFeedback) m.push('error-feedback');
      if (byData(l) && o.refitScales) m.push('refit-scales');
      if (o.biasCorrection) m.push('bias-correction');
    }
    return { rewrites, methods, graph: applyRewrites(graph, rewrites) };
  };

  let budgetReport: BudgetReport | undefined;
  let built: Awaited<ReturnType<typeof build>>;
  if (budget) {
    const fp32Accuracy = await top1(graph, budget);
    const levels = budgetLevels(o.weights);
    const fixed = new Map(layers.filter((l) => !tunable.includes(l)).map((l) => [l.node.name, rewrite(l, plan.get(l.node.name)!.wopts)]));
    // Candidates use the fp32-input statistics (a sequential pass per candidate would be too slow);
    // the saved model is then built with every option and checked again below.
    const { choice, evaluations } = await searchBudget({
      graph, layers, tunable, fixed, levels, fp32Accuracy, maxDrop: o.maxAccuracyDrop!, signal: o.signal,
      evaluate: (g) => top1(g, budget),
      rewrite: (l, level) => {
        const e = entry(l, level.weights, level.groupSize);
        const st = fpStats.get(l.node.name);
        const weights = st && st.withHessian && byData(l, e.mode) ? dataAwareWeights(l, e.wopts, st.H) : undefined;
        return rewrite(l, e.wopts, { weights });
      },
      onStep: (done, total, layer) => o.onProgress({ phase: 'budget', done, total, layer }),
    });
    for (const l of tunable) {
      const level = levels[choice.get(l.node.name)!];
      plan.set(l.node.name, entry(l, level.weights, level.groupSize));
    }
    built = await build();
    let accuracy = await top1(built.graph, budget);
    let extra = 0;
    // The full method can differ from the search's candidates: back off (least aggressive layer
    // choice first gives up the least) until the budget holds or nothing is left to give.
    while (fp32Accuracy - accuracy > o.maxAccuracyDrop! && extra < 8) {
      const movable = tunable.filter((l) => choice.get(l.node.name)! < levels.length - 1);
      if (!movable.length) break;
      const l = movable.reduce((a, b) => (choice.get(b.node.name)! < choice.get(a.node.name)! ? b : a));
      choice.set(l.node.name, choice.get(l.node.name)! + 1);
      const level = levels[choice.get(l.node.name)!];
      plan.set(l.node.name, entry(l, level.weights, level.groupSize));
      built = await build();
      accuracy = await top1(built.graph, budget);
      extra++;
    }
    budgetReport = {
      maxAccuracyDrop: o.maxAccuracyDrop!, fp32Accuracy, accuracy, met: fp32Accuracy - accuracy <= o.maxAccuracyDrop!,
      evaluations: evaluations + extra + 1,
      plan: layers.map((l) => ({ name: l.node.name, weights: plan.get(l.node.name)!.mode, groupSize: plan.get(l.node.name)!.mode === 'int8' ? null : plan.get(l.node.name)!.groupSize })),
    };
  } else {
    built = await build();
  }
  const { rewrites, methods } = built;
  // The layers inside If branches, each branch quantized as a model of its own on the values it
  // reads in the batches that take it (quantize-branches.ts); their reports join the top level's.
  throwIfAborted(o.signal);
  const nestedResult = await ifBranches.quantize(built.graph, async (branch, batches) => {
    const q = await quantize(branch, { ...options, calibration: batches, maxAccuracyDrop: undefined, validation: undefined, overrides: undefined, onProgress: undefined });
    return { graph: q.graph, report: q.report };
  });
  const reports: LayerReport[] = layers.map((layer) => {
    const name = layer.node.name;
    const { mode, groupSize } = plan.get(name)!;
    const a = act.get(layer.node.inputs[0])!;
    const s = rewrites.get(name)!.weights.stats;
    return {
      name,
      op: layer.node.opType,
      weights: mode,
      groupSize: mode === 'int8' ? null : groupSize,
      bitsPerWeight: s.bitsPerWeight,
      bytes: s.bytes,
      multiplicationsRemoved: s.multiplicationsRemoved,
      relativeError: s.relativeError,
      activationScale: a.scale,
      activationZeroPoint: a.zeroPoint,
      activationClipping: clipping.get(layer.node.inputs[0])!,
      parameters: s.parameters,
      macs: layer.macs,
      lossless: s.lossless,
      methods: methods.get(name)!,
    };
  });
  for (const b of nestedResult.branches) {
    reports.push(...b.report.layers);
  }
  const quantized = nestedResult.graph;
  const byMacs = reports.every((r) => r.macs !== null);
  let weight = 0, removed = 0, parameters = 0, bytes = 0;
  for (const r of reports) {
    const w = byMacs ? r.macs! : r.parameters;
    weight += w;
    removed += w * r.multiplicationsRemoved;
    parameters += r.parameters;
    bytes += r.bytes;
  }
  const report: QuantizeReport = {
    layers: reports,
    total: {
      parameters,
      bytes,
      fp32Bytes: parameters * 4,
      multiplicationsRemoved: weight > 0 ? removed / weight : 0,
      multiplicationsWeightedBy: byMacs ? 'macs' : 'parameters',
    },
    ...(budgetReport ? { budget: budgetReport } : {}),
    fidelity: null,
    warnings: [],
  };
  if (outputName && fidelityIn.length) {
    throwIfAborted(o.signal);
    const session = InferenceSession.fromGraph(quantized, { optimize: false });
    try {
      const got: Tensor[] = [];
      for (const x of fidelityIn) got.push((await session.run(x))[outputName]);
      report.fidelity = compareOutputs(outputName, fidelityOut, got);
    } finally {
      await session.release();
    }
    report.warnings.push(...fidelityWarnings(report.fidelity, o));
  }
  for (const b of nestedResult.branches) report.warnings.push(...b.report.warnings.map((w) => `${b.where}: ${w}`));
  for (const f of nestedResult.failed) report.warnings.push(`${f.where}: left float32, it could not be quantized: ${f.message}`);
  const nested = layersInSubgraphs(quantized);
  if (nested.length > 0) {
    report.warnings.push(
      `${nested.length} Conv / Gemm / MatMul layer${nested.length === 1 ? '' : 's'} inside subgraphs (${nested.slice(0, 3).map((n) => `"${n}"`).join(', ')}${nested.length > 3 ? ', ...' : ''}) stay float32: Loop and Scan bodies, and If branches no calibration batch took, are not quantized`,
    );
  }
  o.onProgress({ phase: 'finish', done: 1, total: 1 });
  const saved = { quantization: quantizationInfo(o, report) }; // plain JSON now, so the calibration data is not kept alive
  return {
    graph: quantized,
    report,
    createSession: async (sessionOptions = {}) => InferenceSession.fromGraph(quantized, { ...sessionOptions, optimize: false }),
    save: (path: string) => saveTern(path, quantized, saved),
    toBuffer: () => writeTern(quantized, saved),
  };
}

/** fp32 against quantized outputs of the same batches (fidelity report). */
export function compareOutputs(output: string, fp32: Tensor[], quantized: Tensor[]): FidelityReport {
  let num = 0, den = 0, samples = 0, agree = 0, ranked = true;
  for (let b = 0; b < fp32.length; b++) {
    const f = fp32[b].data as Float32Array, q = quantized[b].data as Float32Array;
    for (let i = 0; i < f.length; i++) {
      const d = q[i] - f[i];
      num += d * d;
      den += f[i] * f[i];
    }
    const dims = fp32[b].dims;
    samples += dims[0];
    if (dims.length !== 2 || dims[1] < 2) {
      ranked = false;
      continue;
    }
    const C = dims[1];
    for (let r = 0; r < dims[0]; r++) {
      let bf = 0, bq = 0;
      for (let c = 1; c < C; c++) {
        if (f[r * C + c] > f[r * C + bf]) bf = c;
        if (q[r * C + c] > q[r * C + bq]) bq = c;
      }
      if (bf === bq) agree++;
    }
  }
  return { output, samples, relativeError: den > 0 ? Math.sqrt(num / den) : num > 0 ? Infinity : 0, top1Agreement: ranked ? agree / samples : null };
}

function fidelityWarnings(f: FidelityReport, o: Resolved): string[] {
  const out: string[] = [];
  const fix = 'try dataAware: true, an accuracy budget (maxAccuracyDrop with validation data), a larger group or int8 weights for the layers that matter (overrides)';
  if (f.top1Agreement !== null && f.top1Agreement < 0.9) {
    out.push(`The quantized model's top-1 on "${f.output}" matches fp32 on only ${(100 * f.top1Agreement).toFixed(0)}% of ${f.samples} calibration samples (weights ${o.weights}, N=${o.groupSize}): ${fix}.`);
  } else if (f.top1Agreement === null && !(f.relativeError <= 0.5)) {
    // Not a classifier's scores (where logits may move a lot with the top-1 intact): the raw error.
    out.push(`The quantized model's output "${f.output}" differs from fp32 by ${(100 * f.relativeError).toFixed(0)}% (relative L2, ${f.samples} calibration samples; weights ${o.weights}, N=${o.groupSize}): ${fix}.`);
  }
  return out;
}

/** The first `n` samples of a float32 batch (a copy, so the batch itself is not kept alive). */
function firstRows(t: Tensor, n: number): Tensor {
  const per = t.dims.slice(1).reduce((a, b) => a * b, 1);
  return new Tensor('float32', (t.data as Float32Array).slice(0, n * per), [n, ...t.dims.slice(1)]);
}

/** Copies of a batch's tensors, so the user's batch itself is not kept alive. */
function copyFeeds(feeds: CalibrationFeeds): CalibrationFeeds {
  return Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, new Tensor(t.type, (t.data as Float32Array).slice() as unknown as Float32Array, t.dims)]));
}
