// Layer-by-layer data-aware quantization on the partially quantized model: each layer's input
// statistics (H and the mean row) are taken from what it really receives once the layers before
// it are quantized (and corrected), quantized to its own activation grid. Its weights are then
// chosen against that input (error feedback, refit) and its bias corrected by the mean output
// gap to the fp32 model: b' = b + W mu_fp - Wq mu_q.
//
// Layers go in waves: one calibration pass of the partially quantized model serves every
// pending layer whose input depends only on layers already done (in a ResNet, a block's first
// conv and its downsample conv share a pass).
import type { Graph } from '../../ir';
import { Tensor } from '../../tensor';
import { throwIfAborted } from '../../errors';
import { forEachCalibrationBatch, roundHalfEven, type ActivationParams } from '../calibrate';
import type { CalibrationFeeds } from '../calibration-data';
import { applyRewrites, type LayerCandidate, type RewrittenLayer } from '../rewrite';
import { dequantizeRows, toGemmRows, type QuantizedWeights } from '../weights';
import type { LayerRows } from './layer-inputs';
import { LayerStatistics } from './layer-statistics';
import { expandVector } from './quantize-layer';

export interface SequentialJob {
  graph: Graph;
  /** Every quantized layer, in graph order (rewrites holds one per name not pending). */
  layers: readonly LayerCandidate[];
  /** Names of the layers this pass decides. */
  pending: ReadonlySet<string>;
  rewrites: Map<string, RewrittenLayer>;
  /** Whether finish() needs H (weights chosen by data) or only the mean (bias correction). */
  withHessian(layer: LayerCandidate): boolean;
  /** Builds a layer's rewrite from the statistics of its quantized-model input. */
  finish(layer: LayerCandidate, input: LayerStatistics): RewrittenLayer;
  samplers: ReadonlyMap<string, LayerRows>;
  /** Activation parameters by layer input tensor. */
  act: ReadonlyMap<string, ActivationParams>;
  batches: readonly CalibrationFeeds[];
  signal?: AbortSignal;
  onLayer?: (done: number, total: number, layer: string) => void;
}

/** The quantized layers upstream of each layer's input tensor. */
function upstreamLayers(graph: Graph, layers: readonly LayerCandidate[]): Map<string, Set<string>> {
  const isLayer = new Set(layers.map((l) => l.node.name));
  const above = new Map<string, Set<string>>();
  const result = new Map<string, Set<string>>();
  for (const node of graph.nodes) {
    const s = new Set<string>();
    for (const i of node.inputs) for (const n of above.get(i) ?? []) s.add(n);
    if (isLayer.has(node.name)) {
      result.set(node.name, new Set(above.get(node.inputs[0]) ?? []));
      s.add(node.name);
    }
    for (const o of node.outputs) above.set(o, s);
  }
  return result;
}

/** x as the layer sees it: quantized to its activation grid and back. */
export function fakeQuantize(x: Float32Array, p: ActivationParams): Float32Array {
  const qmax = (1 << p.bits) - 1;
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    let q = roundHalfEven(x[i] / p.scale) + p.zeroPoint;
    q = q < 0 ? 0 : q > qmax ? qmax : q;
    out[i] = (q - p.zeroPoint) * p.scale;
  }
  return out;
}

/** The bias that makes the quantized layer's mean output match the fp32 one (see top). */
export function correctedBias(layer: LayerCandidate, q: QuantizedWeights, bias: Float32Array, fpMean: Float64Array, qMean: Float64Array): Float32Array {
  const muF = expandVector(fpMean, q.layout);
  const muQ = expandVector(qMean, q.layout);
  const W = toGemmRows(layer.weights, q.layout);
  const Wq = dequantizeRows(q);
  const { rows, K } = q.layout;
  const out = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    let gap = 0;
    for (let k = 0; k < K; k++) gap += W[r * K + k] * muF[k] - Wq[r * K + k] * muQ[k];
    out[r] = Math.fround(bias[r] + gap);
  }
  return out;
}

export async function quantizeSequentially(job: SequentialJob): Promise<void> {
  const upstream = upstreamLayers(job.graph, job.layers);
  const pending = job.layers.filter((l) => job.pending.has(l.node.name));
  const done = new Set(job.layers.filter((l) => !job.pending.has(l.node.name)).map((l) => l.node.name));
  const total = pending.length;
  let finished = 0;
  while (pending.length) {
    throwIfAborted(job.signal);
    const wave = pending.filter((l) => [...upstream.get(l.node.name)!].every((n) => done.has(n)));
    // Graph order guarantees the first pending layer is ready; never loop forever regardless.
    if (wave.length === 0) wave.push(pending[0]);
    const partial = applyRewrites(job.graph, new Map([...job.rewrites].filter(([n]) => done.has(n))));
    const inputs = [...new Set(wave.map((l) => l.node.inputs[0]))];
    const stats = new Map(wave.map((l) => [l.node.name, new LayerStatistics(job.samplers.get(l.node.name)!, job.withHessian(l))]));
    await forEachCalibrationBatch(partial, job.batches, inputs, (values) => {
      const quantized = new Map<string, Tensor>();
      for (const name of inputs) {
        const t = values.get(name)!;
        quantized.set(name, new Tensor('float32', fakeQuantize(t.data as Float32Array, job.act.get(name)!), t.dims));
      }
      for (const l of wave) stats.get(l.node.name)!.observe(quantized.get(l.node.inputs[0])!);
    }, { signal: job.signal });
    for (const l of wave) {
      const name = l.node.name;
      job.rewrites.set(name, job.finish(l, stats.get(name)!));
      done.add(name);
      pending.splice(pending.indexOf(l), 1);
      job.onLayer?.(++finished, total, name);
    }
  }
}
