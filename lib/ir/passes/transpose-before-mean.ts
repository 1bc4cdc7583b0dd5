// A LayerNorm that onnxruntime's optimizer split around a Transpose (ConvNeXt as a session saved
// with optimizedModelFilePath writes it): the mean over channels and its subtraction stay on the
// NCHW tensor, the Transpose to NHWC follows, and the rest (SimplifiedLayerNormalization, written
// out at load) normalizes the last axis:
//   Transpose(Sub(x, ReduceMean(x, axes = [a])), perm) with perm moving axis a last
// is the same as Sub(t, ReduceMean(t, axes = [-1])) for t = Transpose(x, perm): the Transpose
// moved before the mean, the whole LayerNorm is over the last axis again and fuse-layer-norm
// runs it as one op. (The mean's values are the same; its sum may round in another order.)

import { consumersByTensor, freshName, graphOutputNames, producersByTensor, reduceAxes, usedNames } from '../graph-utils';
import type { Graph, Node, ValueType } from '../types';

export function moveTransposeBeforeMean(graph: Graph): Graph {
  const consumers = consumersByTensor(graph.nodes);
  const producers = producersByTensor(graph.nodes);
  const outputs = graphOutputNames(graph);
  const used = usedNames(graph);
  const initializers = new Map(graph.initializers);
  const valueInfo = new Map(graph.valueInfo);
  const only = (v: string, n: Node): boolean => !outputs.has(v) && (consumers.get(v) ?? []).length === 1 && consumers.get(v)![0] === n;
  const replaced = new Map<Node, Node[]>();
  const removed = new Set<Node>();
  for (const t of graph.nodes) {
    const perm = t.attributes.perm;
    if (t.opType !== 'Transpose' || t.domain !== '' || perm?.type !== 'ints') continue;
    const sub = producers.get(t.inputs[0]);
    if (!sub || sub.opType !== 'Sub' || sub.domain !== '' || !only(sub.outputs[0], t)) continue;
    const [x, m] = sub.inputs;
    const mean = producers.get(m);
    if (!mean || mean.opType !== 'ReduceMean' || mean.domain !== '' || mean.inputs[0] !== x || !only(m, sub)) continue;
    const keep = mean.attributes.keepdims;
    if (keep && !(keep.type === 'int' && keep.value === 1)) continue;
    const rank = perm.value.length;
    const axes = reduceAxes(graph, mean);
    if (!axes || axes.length !== 1) continue;
    const axis = axes[0] < 0 ? axes[0] + rank : axes[0];
    if (perm.value[rank - 1] !== axis) continue;
    const tx = freshName(used, `${t.outputs[0]}/input`);
    const mx = freshName(used, `${t.outputs[0]}/mean`);
    const xType = graph.valueInfo.get(x) ?? graph.inputs.find((i) => i.name === x);
    if (xType?.shape) {
      const shape = perm.value.map((p) => xType.shape![p]);
      valueInfo.set(tx, { dtype: xType.dtype, shape } as ValueType);
      valueInfo.set(mx, { dtype: xType.dtype, shape: [...shape.slice(0, -1), 1] } as ValueType);
    }
    let meanNode: Node;
    if (mean.attributes.axes) {
      meanNode = { ...mean, name: freshName(used, `${mean.name}/last_axis`), inputs: [tx], outputs: [mx], attributes: { ...mean.attributes, axes: { type: 'ints', value: [-1] } } };
    } else {
      const a = freshName(used, `${mean.name}/last_axis`);
      initializers.set(a, { name: a, dtype: 'int64', dims: [1], data: BigInt64Array.of(-1n) });
      meanNode = { ...mean, name: freshName(used, `${mean.name}/last_axis`), inputs: [tx, a], outputs: [mx] };
    }
    replaced.set(t, [
      { ...t, name: freshName(used, `${t.name}/moved`), inputs: [x], outputs: [tx] },
      meanNode,
      { ...sub, name: freshName(used, `${sub.name}/last_axis`), inputs: [tx, mx], outputs: [...t.outputs] },
    ]);
    removed.add(sub);
    removed.add(mean);
  }
  if (replaced.size === 0) return graph;
  const nodes = graph.nodes.filter((n) => !removed.has(n)).flatMap((n) => replaced.get(n) ?? [n]);
  return { ...graph, nodes, initializers, valueInfo };
}
