// A Slice of a convolution's output along its spatial axes, folded into the convolution's pads.
// A causal 1-D conv is written as a conv padded on both sides whose extra outputs are sliced off
// (PyTorch: `conv(x)[..., :-pad]`; WaveNet, TCNs, streaming Conformers); a U-Net crops the same
// way. Output positions [a, b) of a conv are the outputs of the same conv whose window starts
// a * stride later and that stops after b - a positions: its begin pad shrinks by a * stride and
// its end pad is what the last window needs. Every kept output sums the same terms in the same
// order, and the dropped ones are never computed (nor the Slice's copy made).

import { intsAttribute } from '../attributes';
import { constantInts, consumersByTensor, soleReader } from '../graph-utils';
import { inferShapes } from '../infer-shapes';
import type { AttributeValue, Graph, Node } from '../types';

/** ONNX Slice's clamping of one bound on an axis of length n (step 1). */
function clampBound(v: number, n: number): number {
  const x = v < 0 ? v + n : v;
  return Math.min(Math.max(x, 0), n);
}

/** The conv's new pads when Slice `slice` keeps part of its output, or undefined when it cannot be folded. */
function foldedPads(graph: Graph, conv: Node, slice: Node): number[] | undefined {
  const x = graph.valueInfo.get(conv.inputs[0])?.shape ?? graph.inputs.find((i) => i.name === conv.inputs[0])?.shape;
  const y = graph.valueInfo.get(conv.outputs[0])?.shape;
  const w = graph.initializers.get(conv.inputs[1])?.dims ?? graph.valueInfo.get(conv.inputs[1])?.shape;
  if (!x || !y || !w || x.length !== y.length || w.length !== y.length || x.length < 3) return undefined;
  const rank = y.length, nd = rank - 2;
  const starts = constantInts(graph, slice.inputs[1]), ends = constantInts(graph, slice.inputs[2]);
  const axesGiven = slice.inputs[3] ? constantInts(graph, slice.inputs[3]) : Array.from({ length: starts?.length ?? 0 }, (_, i) => i);
  const steps = slice.inputs[4] ? constantInts(graph, slice.inputs[4]) : undefined;
  if (!starts || !ends || !axesGiven || starts.length !== ends.length || axesGiven.length !== starts.length) return undefined;
  if (steps && steps.some((s) => s !== 1)) return undefined;
  const strides = intsAttribute(conv, 'strides') ?? Array(nd).fill(1);
  const dilations = intsAttribute(conv, 'dilations') ?? Array(nd).fill(1);
  const pads = [...(intsAttribute(conv, 'pads') ?? Array(2 * nd).fill(0))];
  if (strides.length !== nd || dilations.length !== nd || pads.length !== 2 * nd) return undefined;
  const seen = new Set<number>();
  for (let i = 0; i < axesGiven.length; i++) {
    const axis = axesGiven[i] < 0 ? axesGiven[i] + rank : axesGiven[i];
    // Spatial axes only, each once, with known sizes.
    if (axis < 2 || axis >= rank || seen.has(axis)) return undefined;
    seen.add(axis);
    const j = axis - 2;
    const [inLen, outLen, k] = [x[axis], y[axis], w[axis]];
    if (typeof inLen !== 'number' || typeof outLen !== 'number' || typeof k !== 'number') return undefined;
    const a = clampBound(starts[i], outLen), b = clampBound(ends[i], outLen);
    if (b <= a) return undefined;
    const s = strides[j], span = dilations[j] * (k - 1) + 1;
    const begin = pads[j] - a * s;
    const end = (b - a - 1) * s + span - inLen - begin;
    if (begin < 0 || end < 0) return undefined;
    pads[j] = begin;
    pads[j + nd] = end;
  }
  return pads;
}

export function foldConvSlices(graph: Graph): Graph {
  if ((graph.opsets[''] ?? 0) < 10) return graph; // Slice bounds as attributes: not read here
  const consumers = consumersByTensor(graph.nodes);
  const folded = new Map<Node, { conv: Node; pads: number[] }>(); // slice -> its conv, new pads
  for (const conv of graph.nodes) {
    if (conv.opType !== 'Conv' || conv.domain !== '' || conv.outputs.length !== 1) continue;
    const autoPad = conv.attributes.auto_pad;
    if (autoPad && !(autoPad.type === 'string' && autoPad.value === 'NOTSET')) continue;
    // A fused residual has the full output's shape.
    if (conv.inputs[3]) continue;
    const slice = soleReader(graph, consumers, conv.outputs[0]);
    if (!slice || slice.opType !== 'Slice' || slice.domain !== '' || slice.inputs[0] !== conv.outputs[0]) continue;
    const pads = foldedPads(graph, conv, slice);
    if (pads) folded.set(slice, { conv, pads });
  }
  if (folded.size === 0) return graph;
  const byConv = new Map([...folded].map(([slice, f]) => [f.conv, { slice, pads: f.pads }]));
  const nodes = graph.nodes.flatMap((n): Node[] => {
    if (folded.has(n)) return [];
    const f = byConv.get(n);
    if (!f) return [n];
    const pads: AttributeValue = { type: 'ints', value: f.pads };
    return [{ ...n, outputs: [f.slice.outputs[0]], attributes: { ...n.attributes, pads } }];
  });
  const valueInfo = new Map(graph.valueInfo);
  for (const { conv } of folded.values()) valueInfo.delete(conv.outputs[0]);
  return inferShapes({ ...graph, nodes, valueInfo });
}
