// LayerNorm as exporters write it before opset 17 (PyTorch's nn.LayerNorm: BERT, ViT, ConvNeXt
// at opset 13/14), nine ops over the last axis:
//   m = ReduceMean(x), d = x - m, v = ReduceMean(Pow(d, 2)), s = Sqrt(v + eps),
//   y = d / s, then optionally Mul by a scale and Add a bias (float32 constants of the axis' size)
// as one op, TernionLayerNormChain: one pass per row instead of nine over the tensor, eight
// buffers fewer. The native op performs the chain's own float operations in their order (the
// means summed as ReduceMean sums a last-axis run, the square as Pow by 2 rounds it, the division
// per value), so the result is the chain's, value for value. Every intermediate must be read by
// the chain alone and not be a graph output; Mul(d, d) stands for Pow(d, 2) too.

import { consumersByTensor, graphOutputNames, reduceAxes } from '../graph-utils';
import type { Graph, Node } from '../types';
import { applyFusions } from './fusion-utils';

export function fuseLayerNormChain(graph: Graph): Graph {
  const consumers = consumersByTensor(graph.nodes);
  const outputs = graphOutputNames(graph);
  const readers = (v: string): Node[] => consumers.get(v) ?? [];
  /** The single reader of an intermediate value, if it is `op` in the default domain. */
  const onlyReader = (v: string, op: string): Node | undefined => {
    const r = readers(v);
    return !outputs.has(v) && r.length === 1 && r[0].opType === op && r[0].domain === '' ? r[0] : undefined;
  };
  const other = (n: Node, v: string): string | undefined =>
    n.inputs.length !== 2 ? undefined : n.inputs[0] === v ? n.inputs[1] : n.inputs[1] === v ? n.inputs[0] : undefined;
  const floats = (name: string | undefined) => {
    const c = name === undefined ? undefined : graph.initializers.get(name);
    return c && c.dtype === 'float32' ? c : undefined;
  };
  const rankOf = (v: string): number | undefined => (graph.valueInfo.get(v) ?? graph.inputs.find((i) => i.name === v))?.shape?.length;
  const lastDimOf = (v: string): number | undefined => {
    const s = (graph.valueInfo.get(v) ?? graph.inputs.find((i) => i.name === v))?.shape;
    const d = s?.[s.length - 1];
    return typeof d === 'number' ? d : undefined;
  };
  /** A ReduceMean over the last axis of its input only, dims kept. */
  const isLastAxisMean = (n: Node): boolean => {
    if (n.opType !== 'ReduceMean' || n.domain !== '' || n.outputs.length !== 1) return false;
    if (n.attributes.keepdims && !(n.attributes.keepdims.type === 'int' && n.attributes.keepdims.value === 1)) return false;
    const axes = reduceAxes(graph, n);
    if (!axes || axes.length !== 1) return false;
    const rank = rankOf(n.inputs[0]);
    return axes[0] === -1 || (rank !== undefined && axes[0] === rank - 1);
  };

  const removed = new Set<Node>();
  const fused = new Map<Node, Node>();
  for (const mean of graph.nodes) {
    if (!isLastAxisMean(mean) || removed.has(mean)) continue;
    const x = mean.inputs[0];
    const sub = onlyReader(mean.outputs[0], 'Sub');
    if (!sub || sub.inputs[0] !== x || sub.inputs[1] !== mean.outputs[0]) continue;
    const d = sub.outputs[0];
    const dReaders = readers(d);
    if (outputs.has(d) || dReaders.length !== 2) continue;
    const square = dReaders.find((n) => n.domain === '' && ((n.opType === 'Pow' && n.inputs[0] === d && floats(n.inputs[1])?.data.length === 1 && Number(floats(n.inputs[1])!.data[0]) === 2) ||
      (n.opType === 'Mul' && n.inputs[0] === d && n.inputs[1] === d)));
    const div = dReaders.find((n) => n.opType === 'Div' && n.domain === '' && n.inputs[0] === d);
    if (!square || !div || square === div) continue;
    const varMean = onlyReader(square.outputs[0], 'ReduceMean');
    if (!varMean || !isLastAxisMean(varMean)) continue;
    const addEps = onlyReader(varMean.outputs[0], 'Add');
    const eps = addEps && floats(other(addEps, varMean.outputs[0]));
    if (!addEps || !eps || eps.data.length !== 1) continue;
    const sqrt = onlyReader(addEps.outputs[0], 'Sqrt');
    if (!sqrt || div.inputs[1] !== sqrt.outputs[0] || readers(sqrt.outputs[0]).length !== 1 || outputs.has(sqrt.outputs[0])) continue;
    // The optional affine part: constants of the normalized axis' size only (the chain broadcast
    // them along it; the fused op reads one value per position).
    const D = lastDimOf(x);
    const affine = (n: Node | undefined, v: string) => {
      const c = n && floats(other(n, v));
      return c && D !== undefined && c.data.length === D && c.dims[c.dims.length - 1] === D ? c : undefined;
    };
    let last = div, scale = '', bias = '';
    const mul = onlyReader(div.outputs[0], 'Mul');
    if (mul && affine(mul, div.outputs[0])) {
      scale = other(mul, div.outputs[0])!;
      last = mul;
      const add = onlyReader(mul.outputs[0], 'Add');
      if (add && affine(add, mul.outputs[0])) {
        bias = other(add, mul.outputs[0])!;
        last = add;
      }
    }
    const chain = [mean, sub, square, varMean, addEps, sqrt, div, ...(scale ? [mul!] : []), ...(bias ? [last] : [])];
    for (const n of chain) if (n !== last) removed.add(n);
    fused.set(last, {
      ...last, opType: 'TernionLayerNormChain', inputs: bias ? [x, scale, bias] : scale ? [x, scale] : [x],
      attributes: { epsilon: { type: 'float', value: Number(eps.data[0]) } },
    });
  }
  return applyFusions(graph, removed, fused);
}
