// An attention layer's scores as exporters write them: Softmax(Add(Div(S, sqrt(d)), mask)) over
// the last axis (BERT; Mul by 1/sqrt(d) in other exports; the scaling or the mask alone in
// others) as one op, TernionScaledMaskedSoftmax: one pass per row instead of three over the
// [batch, heads, query, key] scores, two buffers fewer. The native op (softmax.cc) performs the
// Div / Mul and the Add with the ops' own float operations, then the Softmax's, so the result
// is the chain's, value for value. The scale must be a float32 scalar constant, the mask a
// float32 tensor (broadcast as the Add does), every intermediate read by the chain alone and not
// a graph output.

import { consumersByTensor, graphOutputNames } from '../graph-utils';
import type { Graph, Node } from '../types';
import { applyFusions } from './fusion-utils';

export function fuseAttentionSoftmax(graph: Graph): Graph {
  const consumers = consumersByTensor(graph.nodes);
  const outputs = graphOutputNames(graph);
  const producer = new Map<string, Node>();
  for (const n of graph.nodes) for (const o of n.outputs) producer.set(o, n);
  const onlyRead = (v: string) => !outputs.has(v) && (consumers.get(v) ?? []).length === 1;
  const scalar = (name: string): number | undefined => {
    const c = graph.initializers.get(name);
    return c && c.dtype === 'float32' && c.data.length === 1 ? Number(c.data[0]) : undefined;
  };
  const rankOf = (v: string) => (graph.valueInfo.get(v) ?? graph.inputs.find((i) => i.name === v))?.shape?.length;
  const dtypeOf = (v: string) => (graph.valueInfo.get(v) ?? graph.inputs.find((i) => i.name === v))?.dtype ?? graph.initializers.get(v)?.dtype;
  /** A Softmax over the last axis of its input. */
  const lastAxis = (sm: Node): boolean => {
    const rank = rankOf(sm.inputs[0]);
    const opset = graph.opsets[''] ?? 13;
    const a = sm.attributes.axis;
    const axis = a && a.type === 'int' ? a.value : opset < 13 ? 1 : -1;
    return axis === -1 || (rank !== undefined && axis === rank - 1);
  };

  const removed = new Set<Node>();
  const fused = new Map<Node, Node>();
  for (const sm of graph.nodes) {
    if (sm.opType !== 'Softmax' || sm.domain !== '' || sm.inputs.length !== 1 || !lastAxis(sm)) continue;
    let scores = sm.inputs[0];
    let mask = '';
    const chain: Node[] = [];
    const add = producer.get(scores);
    if (add && add.opType === 'Add' && add.domain === '' && add.inputs.length === 2 && onlyRead(scores)) {
      // The scaled scores are the operand made by a Div / Mul by a scalar; else the first.
      const [a, b] = add.inputs;
      const scaled = (v: string) => ['Div', 'Mul'].includes(producer.get(v)?.opType ?? '');
      const [s, m] = scaled(b) && !scaled(a) ? [b, a] : [a, b];
      if (dtypeOf(m) !== 'float32' || s === m) continue;
      mask = m;
      scores = s;
      chain.push(add);
    }
    let scaleOp = 'none', scale = 1;
    const sc = producer.get(scores);
    if (sc && (sc.opType === 'Div' || sc.opType === 'Mul') && sc.domain === '' && sc.inputs.length === 2 && onlyRead(scores)) {
      const c1 = scalar(sc.inputs[1]);
      const c0 = sc.opType === 'Mul' ? scalar(sc.inputs[0]) : undefined;
      if (c1 !== undefined || c0 !== undefined) {
        scaleOp = sc.opType === 'Div' ? 'div' : 'mul';
        scale = (c1 ?? c0)!;
        scores = c1 !== undefined ? sc.inputs[0] : sc.inputs[1];
        chain.push(sc);
      }
    }
    if (chain.length === 0) continue;
    for (const n of chain) removed.add(n);
    fused.set(sm, {
      ...sm, opType: 'TernionScaledMaskedSoftmax', inputs: mask ? [scores, mask] : [scores],
      attributes: { scale_op: { type: 'string', value: scaleOp }, scale: { type: 'float', value: scale } },
    });
  }
  return applyFusions(graph, removed, fused);
}
