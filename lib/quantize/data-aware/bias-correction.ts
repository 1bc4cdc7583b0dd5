// Bias correction: after quantization, a layer's output on the calibration data is off by a
// systematic per-channel amount, (W mu_fp) - (Wq mu_q), where mu_fp is the mean GEMM row of
// its input in the fp32 model and mu_q the mean of the input it really gets: the quantized
// model's (through the already-corrected quantized layers before it), as quantized to its
// activation grid. Adding that gap to the bias makes the means agree.
//
// Layers are corrected in waves: one calibration pass of the partially quantized model serves
// every pending layer whose input depends only on layers already corrected (in a ResNet, a
// block's first conv and its downsample conv share a pass).
import type { Graph } from '../../ir';
import { Tensor } from '../../tensor';
import { forEachCalibrationBatch, roundHalfEven, throwIfAborted, type ActivationParams } from '../calibrate';
import { applyRewrites, type LayerCandidate, type RewrittenLayer } from '../rewrite';
import { dequantizeRows, toGemmRows } from '../weights';
import type { LayerRows } from './layer-inputs';
import { expandVector } from './quantize-layer';

export interface BiasCorrectionJob {
  graph: Graph;
  /** Every quantized layer, in graph order (rewrites holds one per name). */
  layers: readonly LayerCandidate[];
  /** Names of the layers to correct. */
  correct: ReadonlySet<string>;
  rewrites: Map<string, RewrittenLayer>;
  /** Rebuilds a layer's rewrite with a new bias. */
  rebuild(layer: LayerCandidate, bias: Float32Array): RewrittenLayer;
  /** The layer's fp32 bias [Co]. */
  bias(layer: LayerCandidate): Float32Array;
  /** Mean GEMM row of each layer's fp32 input (unpadded layout). */
  fpMean: ReadonlyMap<string, Float64Array>;
  samplers: ReadonlyMap<string, LayerRows>;
  /** Activation parameters by layer input tensor. */
  act: ReadonlyMap<string, ActivationParams>;
  batches: readonly Tensor[];
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
    if (isLayer.has(node.name)) result.set(node.name, new Set(above.get(node.inputs[0]) ?? []));
    if (isLayer.has(node.name)) s.add(node.name);
    for (const o of node.outputs) above.set(o, s);
  }
  return result;
}

function fakeQuantize(x: Float32Array, p: ActivationParams): Float32Array {
  const qmax = (1 << p.bits) - 1;
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    let q = roundHalfEven(x[i] / p.scale) + p.zeroPoint;
    q = q < 0 ? 0 : q > qmax ? qmax : q;
    out[i] = (q - p.zeroPoint) * p.scale;
  }
  return out;
}

export async function correctBiases(job: BiasCorrectionJob): Promise<void> {
  const upstream = upstreamLayers(job.graph, job.layers);
  const pending = job.layers.filter((l) => job.correct.has(l.node.name));
  const done = new Set(job.layers.filter((l) => !job.correct.has(l.node.name)).map((l) => l.node.name));
  const total = pending.length;
  let finished = 0;
  while (pending.length) {
    throwIfAborted(job.signal);
    const wave = pending.filter((l) => [...upstream.get(l.node.name)!].every((n) => done.has(n)));
    // Graph order guarantees the first pending layer is ready; never loop forever regardless.
    if (wave.length === 0) wave.push(pending[0]);
    const partial = applyRewrites(job.graph, new Map([...job.rewrites].filter(([n]) => done.has(n))));
    const inputs = [...new Set(wave.map((l) => l.node.inputs[0]))];
    const sums = new Map(wave.map((l) => [l.node.name, { sum: new Float64Array(job.samplers.get(l.node.name)!.K), rows: 0 }]));
    await forEachCalibrationBatch(partial, job.batches, inputs, (values) => {
      for (const l of wave) {
        const input = values.get(l.node.inputs[0])!;
        const p = job.act.get(l.node.inputs[0])!;
        const xq = new Tensor('float32', fakeQuantize(input.data as Float32Array, p), input.dims);
        const { columns, count } = job.samplers.get(l.node.name)!.sample(xq);
        const acc = sums.get(l.node.name)!;
        for (let k = 0; k < acc.sum.length; k++) {
          let s = 0;
          for (let r = 0; r < count; r++) s += columns[k * count + r];
          acc.sum[k] += s;
        }
        acc.rows += count;
      }
    }, { signal: job.signal });
    for (const l of wave) {
      const name = l.node.name;
      const q = job.rewrites.get(name)!.weights;
      const acc = sums.get(name)!;
      const muQ = expandVector(acc.sum.map((v) => (acc.rows ? v / acc.rows : 0)), q.layout);
      const muF = expandVector(job.fpMean.get(name)!, q.layout);
      const W = toGemmRows(l.weights, q.layout);
      const Wq = dequantizeRows(q);
      const bias = job.bias(l);
      const { rows, K } = q.layout;
      for (let r = 0; r < rows; r++) {
        let gap = 0;
        for (let k = 0; k < K; k++) gap += W[r * K + k] * muF[k] - Wq[r * K + k] * muQ[k];
        bias[r] = Math.fround(bias[r] + gap);
      }
      job.rewrites.set(name, job.rebuild(l, bias));
      done.add(name);
      pending.splice(pending.indexOf(l), 1);
      job.onLayer?.(++finished, total, name);
    }
  }
}
