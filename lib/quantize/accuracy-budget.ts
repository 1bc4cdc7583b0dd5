// The accuracy budget (issue 8): choose, per inner layer, between ternary at some N, 4-bit and
// 8-bit so the quantized model's top-1 on validation data stays within `maxAccuracyDrop` of
// fp32 with the most multiplications removed (then the smallest weights).
//
// Search: every candidate (layer, level) is quantized once; a configuration is then just a
// choice of rewrites, so trying one costs a session and a validation run, not a quantization.
//  1. Sensitivity: the drop of each layer alone at each level (every other layer at int8).
//  2. Greedy: starting from all int8, repeatedly take the move (one layer one level more
//     aggressive) with the best benefit per sensitivity (benefit = MACs x multiplications
//     removed, plus a little for bytes saved); keep it if the whole model still meets the
//     budget, else freeze that layer. Each kept or rejected move costs one validation run.
import { TernionError, throwIfAborted } from '../errors';
import type { Graph } from '../ir';
import { InferenceSession } from '../session/inference-session';
import { Tensor } from '../tensor';
import { applyRewrites, type LayerCandidate, type RewrittenLayer } from './rewrite';

export interface BudgetLevel {
  weights: 'ternary' | 'ternary-asym' | 'int4' | 'int8';
  groupSize: 4 | 8 | 16 | 32 | 64 | 'filter';
}

export interface Validation {
  /** Sample inputs [count, ...] for the model's single input. */
  inputs: Tensor;
  /** The class of each sample (count entries). */
  labels: ArrayLike<number | bigint> | Tensor;
}

export interface BudgetReport {
  maxAccuracyDrop: number;
  fp32Accuracy: number;
  /** Top-1 of the saved model on the validation data. */
  accuracy: number;
  met: boolean;
  /** Validation runs the search made. */
  evaluations: number;
  plan: { name: string; weights: BudgetLevel['weights']; groupSize: BudgetLevel['groupSize'] | null }[];
}

/** Candidate levels, most aggressive first, int8 last. */
export function budgetLevels(weights: BudgetLevel['weights']): BudgetLevel[] {
  const int8: BudgetLevel = { weights: 'int8', groupSize: 64 };
  if (weights === 'int8') return [int8];
  const low: BudgetLevel[] = weights === 'int4'
    ? [{ weights: 'int4', groupSize: 64 }, { weights: 'int4', groupSize: 16 }, { weights: 'int4', groupSize: 4 }]
    : [64, 16, 4].map((g) => ({ weights, groupSize: g as 64 | 16 | 4 }));
  if (weights !== 'int4') low.push({ weights: 'int4', groupSize: 16 });
  return [...low, int8];
}

/** Checks the validation option and returns labels as numbers. */
export function checkValidation(v: unknown): { inputs: Tensor; labels: Int32Array } {
  const where = 'options.validation';
  if (!v || typeof v !== 'object') throw new TernionError('ERR_INVALID_ARGUMENT', `Expected { inputs: Tensor, labels } for ${where}`);
  const { inputs, labels } = v as Validation;
  if (!(inputs instanceof Tensor) || inputs.type !== 'float32' || inputs.dims.length === 0) {
    throw new TernionError('ERR_INVALID_ARGUMENT', `Expected a float32 Tensor [count, ...] for ${where}.inputs`);
  }
  const data = labels instanceof Tensor ? labels.data : labels;
  if (!data || typeof (data as ArrayLike<unknown>).length !== 'number') throw new TernionError('ERR_INVALID_ARGUMENT', `Expected an array or Tensor of class indices for ${where}.labels`);
  const count = inputs.dims[0];
  if ((data as ArrayLike<unknown>).length !== count) {
    throw new TernionError('ERR_SHAPE_MISMATCH', `${where}.labels has ${(data as ArrayLike<unknown>).length} entries but inputs has ${count} samples`);
  }
  const out = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const n = Number((data as ArrayLike<number | bigint>)[i]);
    if (!Number.isInteger(n) || n < 0) throw new TernionError('ERR_INVALID_ARGUMENT', `${where}.labels[${i}] = ${String((data as ArrayLike<unknown>)[i])} is not a class index`);
    out[i] = n;
  }
  return { inputs, labels: out };
}

/** Top-1 of a graph's first output (classes on its last axis) on the validation data. */
export async function top1(graph: Graph, validation: { inputs: Tensor; labels: Int32Array }, batch = 500): Promise<number> {
  const session = InferenceSession.fromGraph(graph, { optimize: false });
  const x = validation.inputs;
  const count = x.dims[0];
  const per = x.size / Math.max(1, count);
  let correct = 0;
  try {
    for (let from = 0; from < count; from += batch) {
      const n = Math.min(batch, count - from);
      const part = new Tensor('float32', (x.data as Float32Array).subarray(from * per, (from + n) * per), [n, ...x.dims.slice(1)]);
      const out = (await session.run({ [session.inputNames[0]]: part }))[session.outputNames[0]];
      if (out.type !== 'float32') throw new TernionError('ERR_INVALID_ARGUMENT', `The accuracy budget needs a float32 score output; "${session.outputNames[0]}" is ${out.type}`);
      const classes = out.dims[out.dims.length - 1];
      if (out.size !== n * classes) throw new TernionError('ERR_SHAPE_MISMATCH', `The accuracy budget needs one score row per sample; output "${session.outputNames[0]}" has dims [${out.dims.join(', ')}]`);
      const s = out.data as Float32Array;
      for (let i = 0; i < n; i++) {
        let best = 0;
        for (let c = 1; c < classes; c++) if (s[i * classes + c] > s[i * classes + best]) best = c;
        if (best === validation.labels[from + i]) correct++;
      }
    }
  } finally {
    await session.release();
  }
  return correct / count;
}

export interface BudgetSearch {
  graph: Graph;
  layers: readonly LayerCandidate[];
  /** Layers the search may change (the others stay as `fixed` gives them). */
  tunable: readonly LayerCandidate[];
  fixed: ReadonlyMap<string, RewrittenLayer>;
  levels: readonly BudgetLevel[];
  /** The rewrite of a layer at a level (called once per pair). */
  rewrite(layer: LayerCandidate, level: BudgetLevel): RewrittenLayer;
  evaluate(graph: Graph): Promise<number>;
  fp32Accuracy: number;
  maxDrop: number;
  signal?: AbortSignal;
  onStep?: (done: number, total: number, layer?: string) => void;
}

/** multiplications removed per MAC at a level (ternary: all but one per group). */
function removedFraction(level: BudgetLevel): number {
  if (level.weights === 'int8' || level.weights === 'int4') return 0;
  const n = level.groupSize === 'filter' ? 1024 : level.groupSize;
  return 1 - (level.weights === 'ternary-asym' ? 2 : 1) / n;
}

function bitsOf(level: BudgetLevel): number {
  if (level.weights === 'int8') return 8;
  const n = level.groupSize === 'filter' ? 1024 : level.groupSize;
  return (level.weights === 'int4' ? 4 : 2) + (level.weights === 'ternary-asym' ? 64 : 32) / n;
}

/** The level index per tunable layer (into `levels`) and the number of validation runs. */
export async function searchBudget(s: BudgetSearch): Promise<{ choice: Map<string, number>; evaluations: number }> {
  const V = s.levels.length;
  const cache = new Map<string, RewrittenLayer>();
  const rewriteAt = (l: LayerCandidate, v: number) => {
    const key = `${l.node.name}\u0000${v}`;
    let r = cache.get(key);
    if (!r) cache.set(key, (r = s.rewrite(l, s.levels[v])));
    return r;
  };
  const choice = new Map(s.tunable.map((l) => [l.node.name, V - 1]));
  let evaluations = 0;
  const evaluate = async (ch: Map<string, number>) => {
    throwIfAborted(s.signal);
    const rewrites = new Map(s.fixed);
    for (const l of s.tunable) rewrites.set(l.node.name, rewriteAt(l, ch.get(l.node.name)!));
    evaluations++;
    return s.evaluate(applyRewrites(s.graph, rewrites));
  };
  const totalSteps = s.tunable.length * (V - 1) * 2 + 1;
  let step = 0;
  const base = await evaluate(choice);
  s.onStep?.(++step, totalSteps);
  // 1. Sensitivity of each layer alone at each level.
  const drop = new Map<string, Float64Array>();
  for (const l of s.tunable) {
    const d = new Float64Array(V);
    for (let v = 0; v < V - 1; v++) {
      const alone = new Map(choice);
      alone.set(l.node.name, v);
      d[v] = Math.max(0, base - (await evaluate(alone)));
      s.onStep?.(++step, totalSteps, l.node.name);
    }
    drop.set(l.node.name, d);
  }
  // 2. Greedy moves toward more aggressive levels.
  const frozen = new Set<string>();
  for (;;) {
    let best: LayerCandidate | null = null, bestRatio = -Infinity;
    for (const l of s.tunable) {
      const name = l.node.name, v = choice.get(name)!;
      if (frozen.has(name) || v === 0) continue;
      const from = s.levels[v], to = s.levels[v - 1];
      const macs = l.macs ?? l.weights.length;
      const benefit = macs * (removedFraction(to) - removedFraction(from)) + (l.weights.length * (bitsOf(from) - bitsOf(to))) / 64;
      if (benefit <= 0) continue;
      const d = drop.get(name)!;
      const cost = Math.max(1e-4, d[v - 1] - d[v]);
      const ratio = benefit / cost;
      if (ratio > bestRatio) {
        bestRatio = ratio;
        best = l;
      }
    }
    if (!best) break;
    const name = best.node.name;
    const trial = new Map(choice);
    trial.set(name, choice.get(name)! - 1);
    const acc = await evaluate(trial);
    s.onStep?.(Math.min(++step, totalSteps), totalSteps, name);
    if (s.fp32Accuracy - acc <= s.maxDrop) choice.set(name, trial.get(name)!);
    else frozen.add(name);
  }
  return { choice, evaluations };
}
