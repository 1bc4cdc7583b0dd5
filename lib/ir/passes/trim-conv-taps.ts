// Kernel taps that only ever read padding, trimmed off. A dilated convolution over a small map
// (DeepLabV3's ASPP: 3x3 kernels dilated by 24 and 36 over a 14x14 map, padding 24 and 36) has
// taps whose every window position lies in the zero padding: they multiply zeros for every output
// pixel. Where the input's spatial size is known, each axis keeps the range of taps that reach
// the image for some output position; the Conv becomes one with that smaller kernel, its weights
// sliced and its pads shortened by the dropped taps' extent, so every output pixel still sees the
// same window (a 3x3 dilated by 36 over 14x14 is the 1x1 of its centre taps). The sums lose only
// terms that were exactly zero. The last pass of optimizeGraph (on its inferred shapes), so
// quantized models get the small kernel too.

import { inferShapes } from '../infer-shapes';
import type { ConstantTensor, Graph, Node } from '../types';

function ints(node: Node, name: string): readonly number[] | undefined {
  const a = node.attributes[name];
  return a && a.type === 'ints' ? a.value : undefined;
}

/** The first and last tap along one axis that reach the input for some output position. */
function reachingTaps(inLen: number, k: number, d: number, s: number, pb: number, pe: number): [number, number] | undefined {
  const out = Math.floor((inLen + pb + pe - d * (k - 1) - 1) / s) + 1;
  if (out < 1) return undefined;
  let lo = -1, hi = -1;
  for (let t = 0; t < k; t++) {
    // Positions o*s - pb + t*d, o in [0, out): some in [0, inLen)?
    const first = -pb + t * d, last = (out - 1) * s - pb + t * d;
    if (last < 0 || first >= inLen) continue;
    // An arithmetic progression from first to last by s: the first position >= 0.
    const start = first >= 0 ? first : first + Math.ceil(-first / s) * s;
    if (start > last || start >= inLen) continue;
    if (lo < 0) lo = t;
    hi = t;
  }
  return lo < 0 ? undefined : [lo, hi];
}

/** A Conv that may have such taps: constant fp32 weights, explicit padding, a kernel wider than 1. */
function candidate(graph: Graph, n: Node): boolean {
  if (n.opType !== 'Conv' || n.domain !== '' || n.inputs.length < 2) return false;
  const autoPad = n.attributes.auto_pad;
  if (autoPad && !(autoPad.type === 'string' && autoPad.value === 'NOTSET')) return false;
  const w = graph.initializers.get(n.inputs[1]);
  // Without padding every tap reaches the input (the first at the first output, the last at the last).
  return !!w && w.dtype === 'float32' && w.dims.slice(2).some((k) => k > 1) && (ints(n, 'pads') ?? []).some((p) => p > 0);
}

export function trimConvTaps(graph: Graph): Graph {
  const convs = graph.nodes.filter((n) => candidate(graph, n));
  if (convs.length === 0) return graph;
  // Input shapes: the graph's own once inferred (optimizeGraph runs this pass last); else inferred here.
  const known = (g: Graph, v: string) => (g.valueInfo.get(v) ?? g.inputs.find((i) => i.name === v))?.shape;
  const typed = convs.every((n) => known(graph, n.inputs[0])) ? graph : inferShapes(graph);
  const initializers = new Map<string, ConstantTensor>(graph.initializers);
  const replaced = new Set<string>(); // weights some conv no longer reads
  const nodes = graph.nodes.map((n) => {
    if (!convs.includes(n)) return n;
    const w = graph.initializers.get(n.inputs[1])!;
    const shape = known(typed, n.inputs[0]);
    if (!shape || shape.length !== w.dims.length) return n;
    const nd = w.dims.length - 2;
    const spatial = shape.slice(2);
    if (nd < 1 || spatial.some((v) => typeof v !== 'number')) return n;
    const kernel = w.dims.slice(2);
    const strides = ints(n, 'strides') ?? Array(nd).fill(1);
    const dilations = ints(n, 'dilations') ?? Array(nd).fill(1);
    const pads = ints(n, 'pads') ?? Array(2 * nd).fill(0);
    const ranges: [number, number][] = [];
    for (let i = 0; i < nd; i++) {
      const r = reachingTaps(spatial[i] as number, kernel[i], dilations[i], strides[i], pads[i], pads[i + nd]);
      if (!r) return n; // an output wholly in the padding: leave such a conv as it is
      ranges.push(r);
    }
    if (ranges.every(([lo, hi], i) => lo === 0 && hi === kernel[i] - 1)) return n;
    const newPads = [...ranges.map(([lo], i) => pads[i] - lo * dilations[i]), ...ranges.map(([, hi], i) => pads[i + nd] - (kernel[i] - 1 - hi) * dilations[i])];
    if (newPads.some((p) => p < 0)) return n;
    // The weights [M, Cg, k...] sliced to the reaching taps, in the same order.
    const newKernel = ranges.map(([lo, hi]) => hi - lo + 1);
    const outer = w.dims[0] * w.dims[1];
    const src = w.data as Float32Array;
    const dst = new Float32Array(outer * newKernel.reduce((a, b) => a * b, 1));
    // The kept taps' offsets within one filter's kernel, in order; then each filter's values at them.
    const oldStride = kernel.map((_, i) => kernel.slice(i + 1).reduce((a, b) => a * b, 1));
    const oldSize = kernel.reduce((a, b) => a * b, 1);
    const offsets: number[] = [];
    const idx = new Array<number>(nd).fill(0);
    for (;;) {
      offsets.push(idx.reduce((off, t, i) => off + (ranges[i][0] + t) * oldStride[i], 0));
      let i = nd - 1;
      while (i >= 0 && ++idx[i] === newKernel[i]) idx[i--] = 0;
      if (i < 0) break;
    }
    let at = 0;
    for (let o = 0; o < outer; o++) {
      const base = o * oldSize;
      for (const off of offsets) dst[at++] = src[base + off];
    }
    const name = `${n.inputs[1]}::taps_${ranges.map(([lo, hi]) => `${lo}-${hi}`).join('_')}`;
    initializers.set(name, { name, dtype: 'float32', dims: [w.dims[0], w.dims[1], ...newKernel], data: dst });
    replaced.add(n.inputs[1]);
    return {
      ...n,
      inputs: [n.inputs[0], name, ...n.inputs.slice(2)],
      attributes: { ...n.attributes, kernel_shape: { type: 'ints' as const, value: newKernel }, pads: { type: 'ints' as const, value: newPads } },
    };
  });
  if (replaced.size === 0) return graph;
  // The full weights stay only if something else reads them.
  const read = new Set([...nodes.flatMap((n) => n.inputs), ...graph.outputs.map((o) => o.name)]);
  for (const name of replaced) if (!read.has(name)) initializers.delete(name);
  return { ...graph, nodes, initializers };
}
