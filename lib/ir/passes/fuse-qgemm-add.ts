// Adds after a quantized MatMul layer taken into its epilogue. Exporters write a Linear layer as
// MatMul then Add(bias) (BERT, every transformer FC layer), and the quantizer keeps that Add
// after the TernionQGemm it makes; a residual connection adds the layer's input stream next. The
// TernionQGemm contract (native/exec/ops/qgemm.cc) has both: input 3, a constant bias [Co], and
// input 4, a residual of the output's shape, added in the store of each output. So
//   Add(QGemm(x), b)  -> QGemm(x, bias = b)           b a float32 constant of shape [Co]
//   Add(QGemm(x), r)  -> QGemm(x, residual = r)       r a float32 tensor of the output's shape
// when the QGemm has no such input yet and no activation (which would come before the Add), and
// its output is read by that Add alone. One pass over the layer's output less per Add. The sums
// round once where they rounded twice (the bias joins the scale in one fma), so values agree to
// rounding, not bit for bit.

import { consumersByTensor, graphOutputNames } from '../graph-utils';
import type { Graph, Node, Shape } from '../types';
import { applyFusions } from './fusion-utils';

/** Known to be equal: dim for dim the same number or the same symbol (one value within a model). */
const sameShape = (a: Shape | undefined, b: Shape | undefined): boolean => !!a && !!b && a.length === b.length && a.every((d, i) => d === b[i]);

export function fuseQGemmAdd(graph: Graph): Graph {
  const consumers = consumersByTensor(graph.nodes);
  const outputs = graphOutputNames(graph);
  const shapeOf = (v: string): Shape | undefined => (graph.valueInfo.get(v) ?? graph.inputs.find((i) => i.name === v))?.shape;
  const removed = new Set<Node>();
  const fused = new Map<Node, Node>();
  // Adds already taken into a layer: Add(QGemm(a), QGemm(b)) goes into one of the two only.
  const taken = new Set<Node>();
  for (const q0 of graph.nodes) {
    if (q0.opType !== 'TernionQGemm' || q0.domain !== '' || q0.outputs.length !== 1) continue;
    if (q0.attributes.activation || q0.attributes.fused_activation) continue;
    let q = q0, last: Node | undefined;
    for (;;) {
      const y = q.outputs[0];
      const readers = consumers.get(y) ?? [];
      const add = readers[0];
      if (outputs.has(y) || readers.length !== 1 || add.opType !== 'Add' || add.domain !== '' || add.inputs.length !== 2 || taken.has(add)) break;
      const other = add.inputs[0] === y ? add.inputs[1] : add.inputs[0];
      if (other === y) break;
      const codes = graph.initializers.get(q.inputs[1]);
      const Co = codes?.dims[0];
      const c = graph.initializers.get(other);
      const hasBias = !!q.inputs[3];
      const hasResidual = !!q.inputs[4];
      const inputs = [...q.inputs];
      while (inputs.length < 5) inputs.push('');
      if (c && c.dtype === 'float32' && c.dims.length === 1 && c.dims[0] === Co && !hasBias && !hasResidual) {
        inputs[3] = other;
      } else if (!c && !hasResidual && graph.valueInfo.get(other)?.dtype === 'float32' && sameShape(shapeOf(other), shapeOf(add.outputs[0])) && sameShape(shapeOf(y), shapeOf(add.outputs[0]))) {
        inputs[4] = other;
      } else {
        break;
      }
      while (inputs[inputs.length - 1] === '') inputs.pop();
      // The fused node takes the place of the last Add (every input it reads is defined by then).
      removed.add(last ?? q0);
      taken.add(add);
      q = { ...q, inputs, outputs: [add.outputs[0]] };
      last = add;
    }
    if (last) fused.set(last, q);
  }
  return applyFusions(graph, removed, fused);
}
