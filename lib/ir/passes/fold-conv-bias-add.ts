// A constant Add after a Conv that is one value per output channel (or one value) folded into
// the Conv's bias. Exporters that keep the bias apart write it so: onnxruntime's quantize_dynamic
// (ConvInteger ... Add(Reshape(bias, [1, -1, 1, 1]))), TensorFlow converters (Conv + BiasAdd as
// Add). The Conv then adds it in its epilogue instead of a pass over the whole output.
// Applies when the Conv's output feeds nothing but the Add, its weights' rank is known and its
// own bias (if any) is a float32 initializer.

import { consumersByTensor, float32Initializer, freshName, hasSingleConsumer, perChannelValues, producersByTensor, usedNames } from '../graph-utils';
import type { ConstantTensor, Graph, Node } from '../types';

export function foldConvBiasAdd(graph: Graph): Graph {
  const consumers = consumersByTensor(graph.nodes);
  const producers = producersByTensor(graph.nodes);
  const names = usedNames(graph);
  const initializers = new Map(graph.initializers);
  const removed = new Set<Node>();
  const replaced = new Map<Node, Node>();
  for (const add of graph.nodes) {
    if (add.opType !== 'Add' || add.domain !== '' || add.inputs.length !== 2) continue;
    const at = add.inputs.findIndex((x) => {
      const p = producers.get(x);
      return p?.opType === 'Conv' && p.domain === '' && !removed.has(p) && !replaced.has(p);
    });
    if (at < 0) continue;
    const conv = producers.get(add.inputs[at]) as Node;
    const constant = float32Initializer(graph, add.inputs[1 - at]);
    const weights = graph.initializers.get(conv.inputs[1] ?? '');
    if (!constant || !weights || conv.inputs.length > 3 || !hasSingleConsumer(graph, consumers, conv.outputs[0])) continue;
    const channels = weights.dims[0];
    const bias = conv.inputs[2] ? float32Initializer(graph, conv.inputs[2]) : undefined;
    if ((conv.inputs[2] && (!bias || bias.data.length !== channels)) || Object.keys(conv.attributes).some((k) => k === 'activation' || k === 'fused_residual')) continue;
    const add1 = perChannelValues(constant, weights.dims.length, channels);
    if (!add1) continue;
    const data = new Float32Array(channels);
    for (let k = 0; k < channels; k++) data[k] = (bias ? (bias.data[k] as number) : 0) + add1[k];
    const folded: ConstantTensor = { name: freshName(names, `${conv.name || conv.outputs[0]}_bias_add`), dtype: 'float32', dims: [channels], data };
    initializers.set(folded.name, folded);
    removed.add(add);
    replaced.set(conv, { ...conv, inputs: [conv.inputs[0], conv.inputs[1], folded.name], outputs: [...add.outputs] });
  }
  if (removed.size === 0) return graph;
  // The Conv's old output is gone (the Add's output, same type, is now the Conv's).
  const valueInfo = new Map(graph.valueInfo);
  for (const conv of replaced.keys()) valueInfo.delete(conv.outputs[0]);
  const nodes = graph.nodes.filter((n) => !removed.has(n)).map((n) => replaced.get(n) ?? n);
  return { ...graph, nodes, initializers, valueInfo };
}
