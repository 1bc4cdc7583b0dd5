// GELU as exporters write it, x * (erf(x / c) + 1) * 0.5 over five ops (PyTorch's nn.GELU:
// Div, Erf, Add, Mul, Mul; ConvNeXt, ViT, BERT), as one op, TernionGeluErf: one pass over the
// tensor instead of five, four buffers fewer. The native op computes
// (x * (erf(x / divisor) + addend)) * scale with the ops' own arithmetic in their order, so the
// result is the chain's, value for value. Each intermediate must have that one reader and not be
// a graph output; the constants must be float32 scalars.

import { consumersByTensor, graphOutputNames } from '../graph-utils';
import type { Graph, Node } from '../types';
import { applyFusions } from './fusion-utils';

export function fuseGeluErf(graph: Graph): Graph {
  const consumers = consumersByTensor(graph.nodes);
  const outputs = graphOutputNames(graph);
  const producer = new Map<string, Node>();
  for (const n of graph.nodes) for (const o of n.outputs) producer.set(o, n);
  /** The value of a float32 scalar initializer. */
  const scalar = (name: string): number | undefined => {
    const c = graph.initializers.get(name);
    return c && c.dtype === 'float32' && c.data.length === 1 ? Number(c.data[0]) : undefined;
  };
  /** The single reader of a value (not a graph output), if it is `op` in the default domain. */
  const onlyReader = (v: string, op: string): Node | undefined => {
    const r = consumers.get(v) ?? [];
    return !outputs.has(v) && r.length === 1 && r[0].opType === op && r[0].domain === '' && r[0].inputs.length === 2 ? r[0] : undefined;
  };
  /** The operand of a binary node that is not `v`, if `v` is one of its two. */
  const other = (n: Node, v: string): string | undefined => (n.inputs[0] === v ? n.inputs[1] : n.inputs[1] === v ? n.inputs[0] : undefined);

  const removed = new Set<Node>();
  const fused = new Map<Node, Node>();
  for (const erf of graph.nodes) {
    if (erf.opType !== 'Erf' || erf.domain !== '') continue;
    const div = producer.get(erf.inputs[0]);
    if (!div || div.opType !== 'Div' || div.domain !== '' || outputs.has(div.outputs[0]) || (consumers.get(div.outputs[0]) ?? []).length !== 1) continue;
    const x = div.inputs[0];
    const divisor = scalar(div.inputs[1]);
    const add = onlyReader(erf.outputs[0], 'Add');
    const addend = add && scalar(other(add, erf.outputs[0]) ?? '');
    const mul = add && onlyReader(add.outputs[0], 'Mul');
    if (divisor === undefined || addend === undefined || !mul || other(mul, add.outputs[0]) !== x) continue;
    const last = onlyReader(mul.outputs[0], 'Mul');
    const scale = last && scalar(other(last, mul.outputs[0]) ?? '');
    if (!last || scale === undefined) continue;
    for (const n of [div, erf, add, mul]) removed.add(n);
    fused.set(last, {
      ...last, opType: 'TernionGeluErf', inputs: [x],
      attributes: { divisor: { type: 'float', value: divisor }, addend: { type: 'float', value: addend }, scale: { type: 'float', value: scale } },
    });
  }
  return applyFusions(graph, removed, fused);
}
