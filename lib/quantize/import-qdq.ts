// QDQ models (onnxruntime's static quantization format, its default: int8 weights behind a
// DequantizeLinear, every activation through a QuantizeLinear -> DequantizeLinear pair) run on
// ternion's quantized layers instead of as fp32 layers with fake quantization between them:
//   - a DequantizeLinear of constants (weights, int32 biases) becomes the fp32 constant it makes;
//   - a QuantizeLinear(x) whose readers are DequantizeLinears with its own scale and zero point
//     becomes x's activation parameters, and those readers read x itself;
//   - then the graph is optimized and each Conv / Gemm / MatMul whose input has parameters is
//     rewritten as quantize() rewrites it (rewrite.ts), with the model's parameters in place of
//     calibrated ones: int8 weights per output channel (re-quantized from the dequantized
//     weights: codes of the model's own grid when it is per channel, a finer grid per channel
//     when it was per tensor), uint8 activations with the model's scale and zero point (an int8
//     zero point z is the uint8 one z + 128: the same real values).
// Layers without parameters, and pairs this does not recognize, run as they are. The numbers
// follow the model's quantization as onnxruntime's QLinear kernels do, not bit for bit (their
// outputs are requantized at each layer, ternion's stay fp32 up to the next layer's input).

import type { Graph, Node, ConstantTensor } from '../ir';
import { optimizeGraph } from '../ir';
import { toNumberArray } from '../ir/dtype';
import type { ActivationParams } from './calibrate';
import { applyRewrites, findLayers, rewriteLayer, type RewrittenLayer } from './rewrite';

const isStd = (n: Node, op: string): boolean => n.opType === op && n.domain === '';

/** A QuantizeLinear / DequantizeLinear's constant scalar scale and zero point (uint8 form), if they are. */
function scalarParams(graph: Graph, n: Node): { scale: number; zeroPoint: number; signed: boolean } | undefined {
  const s = graph.initializers.get(n.inputs[1] ?? '');
  const z = n.inputs[2] ? graph.initializers.get(n.inputs[2]) : undefined;
  if (!s || s.dtype !== 'float32' || s.data.length !== 1 || (n.inputs[2] && !z)) return undefined;
  if (z && (z.data.length !== 1 || (z.dtype !== 'uint8' && z.dtype !== 'int8'))) return undefined;
  const scale = Number(s.data[0]);
  if (!(scale > 0) || !Number.isFinite(scale)) return undefined;
  const signed = z?.dtype === 'int8';
  const zp = z ? Number(z.data[0]) : 0;
  return { scale, zeroPoint: signed ? zp + 128 : zp, signed };
}

/** DequantizeLinear of constants, evaluated: (q - zero_point) * scale, per tensor or along `axis`. */
function dequantizeConstant(graph: Graph, n: Node): ConstantTensor | undefined {
  const q = graph.initializers.get(n.inputs[0]);
  const s = graph.initializers.get(n.inputs[1] ?? '');
  const z = n.inputs[2] ? graph.initializers.get(n.inputs[2]) : undefined;
  if (!q || !s || s.dtype !== 'float32' || (n.inputs[2] && !z)) return undefined;
  if (!['int8', 'uint8', 'int32'].includes(q.dtype)) return undefined;
  const count = s.data.length;
  const axisAttr = n.attributes.axis;
  const axis0 = axisAttr?.type === 'int' ? axisAttr.value : 1;
  const axis = axis0 < 0 ? axis0 + q.dims.length : axis0;
  if (count !== 1 && (s.dims.length !== 1 || q.dims[axis] !== count)) return undefined;
  if (z && z.data.length !== count) return undefined;
  const inner = count === 1 ? 1 : q.dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const qs = toNumberArray(q.data), scales = toNumberArray(s.data), zps = z ? toNumberArray(z.data) : null;
  const out = new Float32Array(qs.length);
  for (let i = 0; i < qs.length; i++) {
    const c = count === 1 ? 0 : Math.floor(i / inner) % count;
    out[i] = Math.fround((qs[i] - (zps ? zps[c] : 0)) * scales[c]);
  }
  return { name: n.outputs[0], dtype: 'float32', dims: q.dims, data: out };
}

/** The graph with its QDQ structure read and its layers quantized, or undefined when it has none. */
export function importQdq(graph: Graph): Graph | undefined {
  if (!graph.nodes.some((n) => isStd(n, 'QuantizeLinear') || isStd(n, 'DequantizeLinear'))) return undefined;
  const outputs = new Set(graph.outputs.map((o) => o.name));
  const initializers = new Map(graph.initializers);
  const removed = new Set<Node>();
  const rename = new Map<string, string>(); // a removed DequantizeLinear's output -> the tensor it stood for
  const act = new Map<string, ActivationParams>();
  for (const n of graph.nodes) {
    if (!isStd(n, 'DequantizeLinear') || outputs.has(n.outputs[0]) || !graph.initializers.has(n.inputs[0])) continue;
    const c = dequantizeConstant(graph, n);
    if (!c) continue;
    initializers.set(c.name, c);
    removed.add(n);
  }
  const readers = new Map<string, Node[]>();
  for (const n of graph.nodes) for (const x of n.inputs) if (x) readers.set(x, [...(readers.get(x) ?? []), n]);
  for (const q of graph.nodes) {
    if (!isStd(q, 'QuantizeLinear')) continue;
    const p = scalarParams(graph, q);
    if (!p) continue;
    const x = q.inputs[0];
    const same = (d: Node): boolean => {
      const dp = isStd(d, 'DequantizeLinear') && d.inputs[0] === q.outputs[0] ? scalarParams(graph, d) : undefined;
      return !!dp && dp.scale === p.scale && dp.zeroPoint === p.zeroPoint && !outputs.has(d.outputs[0]);
    };
    const dqs = (readers.get(q.outputs[0]) ?? []).filter(same);
    if (dqs.length === 0) continue;
    for (const d of dqs) {
      rename.set(d.outputs[0], x);
      removed.add(d);
    }
    if (dqs.length === (readers.get(q.outputs[0]) ?? []).length && !outputs.has(q.outputs[0])) removed.add(q);
    if (!act.has(x)) {
      const lo = (0 - p.zeroPoint) * p.scale, hi = (255 - p.zeroPoint) * p.scale;
      act.set(x, { scale: p.scale, zeroPoint: p.zeroPoint, bits: 8, lo, hi, unsigned: p.zeroPoint === 0 });
    }
  }
  if (act.size === 0) return undefined;
  const resolve = (v: string): string => {
    let r = v;
    while (rename.has(r)) r = rename.get(r) as string;
    return r;
  };
  const nodes = graph.nodes.filter((n) => !removed.has(n)).map((n) => ({ ...n, inputs: n.inputs.map((x) => (x ? resolve(x) : x)) }));
  const valueInfo = new Map(graph.valueInfo);
  for (const n of removed) for (const o of n.outputs) if (!initializers.has(o)) valueInfo.delete(o);
  const used = new Set(nodes.flatMap((n) => n.inputs));
  for (const name of [...initializers.keys()]) if (!used.has(name)) initializers.delete(name);
  const fp32 = optimizeGraph({ ...graph, nodes, initializers, valueInfo });

  // The layers whose input carries the model's parameters, on int8 weights.
  const rewrites = new Map<string, RewrittenLayer>();
  for (const layer of findLayers(fp32)) {
    const a = act.get(layer.node.inputs[0]);
    if (!a) continue;
    const r = layer.kind === 'conv' ? layer.node.inputs[3] : undefined;
    rewrites.set(layer.node.name, rewriteLayer(layer, { bits: 8 }, a, { residual: r ? act.get(r) : undefined }));
  }
  if (rewrites.size === 0) return undefined;
  return applyRewrites(fp32, rewrites);
}
