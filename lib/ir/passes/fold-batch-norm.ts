// BatchNormalization folded into the Conv or Gemm before it: y = s * (x - mean) + bias with
// s = scale / sqrt(var + eps) is linear per output channel, so it scales that channel's weights
// and shifts its bias. Applies only when the Conv/Gemm output feeds nothing but the BN and all
// parameters are float32 initializers.

import { floatAttribute, intAttribute } from '../attributes';
import { consumersByTensor, float32Initializer, freshName, hasSingleConsumer, producersByTensor, usedNames } from '../graph-utils';
import type { AttributeValue, ConstantTensor, Graph, Node } from '../types';

interface BatchNormParams {
  /** Per-channel multiplier scale / sqrt(var + eps). */
  multiplier: Float64Array;
  /** Per-channel offset bias - mean * multiplier. */
  offset: Float64Array;
}

function readBatchNorm(graph: Graph, bn: Node): BatchNormParams | undefined {
  if (bn.outputs.filter((o) => o !== '').length !== 1) return undefined; // training mode
  if (intAttribute(bn, 'training_mode', 0) !== 0) return undefined;
  const [scale, bias, mean, variance] = bn.inputs.slice(1, 5).map((name) => float32Initializer(graph, name));
  if (!scale || !bias || !mean || !variance) return undefined;
  const channels = scale.data.length;
  if ([bias, mean, variance].some((t) => t.data.length !== channels)) return undefined;
  const epsilon = floatAttribute(bn, 'epsilon', 1e-5);
  const multiplier = new Float64Array(channels);
  const offset = new Float64Array(channels);
  for (let c = 0; c < channels; c++) {
    multiplier[c] = (scale.data[c] as number) / Math.sqrt((variance.data[c] as number) + epsilon);
    offset[c] = (bias.data[c] as number) - (mean.data[c] as number) * multiplier[c];
  }
  return { multiplier, offset };
}

/** New weights with output channel c scaled; `channelOf(i)` maps a flat index to its channel. */
function scaleWeights(weights: ConstantTensor, name: string, params: BatchNormParams, channelOf: (i: number) => number): ConstantTensor {
  const data = new Float32Array(weights.data.length);
  for (let i = 0; i < data.length; i++) data[i] = (weights.data[i] as number) * params.multiplier[channelOf(i)];
  return { name, dtype: 'float32', dims: weights.dims, data };
}

/** New bias: (oldBias * biasScale - mean) * s + bias, i.e. oldBias * biasScale * s + offset. */
function foldBias(oldBias: ConstantTensor | undefined, biasScale: number, name: string, params: BatchNormParams): ConstantTensor {
  const channels = params.multiplier.length;
  const data = new Float32Array(channels);
  for (let c = 0; c < channels; c++) {
    const previous = oldBias === undefined ? 0 : (oldBias.data[oldBias.data.length === 1 ? 0 : c] as number) * biasScale;
    data[c] = previous * params.multiplier[c] + params.offset[c];
  }
  return { name, dtype: 'float32', dims: [channels], data };
}

interface Folded {
  node: Node;
  tensors: ConstantTensor[];
}

function foldIntoConv(graph: Graph, conv: Node, params: BatchNormParams, names: Set<string>): Folded | undefined {
  const weights = float32Initializer(graph, conv.inputs[1]);
  const bias = conv.inputs[2] ? float32Initializer(graph, conv.inputs[2]) : undefined;
  if (!weights || (conv.inputs[2] && !bias) || weights.dims[0] !== params.multiplier.length || conv.inputs.length > 3) return undefined;
  const perChannel = weights.data.length / weights.dims[0];
  const newWeights = scaleWeights(weights, freshName(names, `${weights.name}_bn`), params, (i) => Math.floor(i / perChannel));
  const newBias = foldBias(bias, 1, freshName(names, `${conv.name}_bn_bias`), params);
  return { node: { ...conv, inputs: [conv.inputs[0], newWeights.name, newBias.name] }, tensors: [newWeights, newBias] };
}

function foldIntoGemm(graph: Graph, gemm: Node, params: BatchNormParams, names: Set<string>): Folded | undefined {
  const weights = float32Initializer(graph, gemm.inputs[1]);
  const bias = gemm.inputs[2] ? float32Initializer(graph, gemm.inputs[2]) : undefined;
  if (!weights || weights.dims.length !== 2 || (gemm.inputs[2] && !bias)) return undefined;
  if (bias && bias.data.length !== 1 && !(bias.data.length === params.multiplier.length && bias.dims[bias.dims.length - 1] === bias.data.length)) return undefined;
  const transB = intAttribute(gemm, 'transB', 0) !== 0;
  const [rows, columns] = weights.dims;
  if ((transB ? rows : columns) !== params.multiplier.length) return undefined;
  const channelOf = transB ? (i: number) => Math.floor(i / columns) : (i: number) => i % columns;
  const newWeights = scaleWeights(weights, freshName(names, `${weights.name}_bn`), params, channelOf);
  const newBias = foldBias(bias, floatAttribute(gemm, 'beta', 1), freshName(names, `${gemm.name}_bn_bias`), params);
  const beta: AttributeValue = { type: 'float', value: 1 };
  return {
    node: { ...gemm, inputs: [gemm.inputs[0], newWeights.name, newBias.name], attributes: { ...gemm.attributes, beta } },
    tensors: [newWeights, newBias],
  };
}

export function foldBatchNorm(graph: Graph): Graph {
  const producers = producersByTensor(graph.nodes);
  const consumers = consumersByTensor(graph.nodes);
  const names = usedNames(graph);
  const initializers = new Map(graph.initializers);
  const replaced = new Map<Node, Node>();
  const removed = new Set<Node>();
  for (const bn of graph.nodes) {
    if (bn.opType !== 'BatchNormalization' || bn.domain !== '') continue;
    const producer = producers.get(bn.inputs[0]);
    if (!producer || producer.domain !== '' || replaced.has(producer) || !hasSingleConsumer(graph, consumers, bn.inputs[0])) continue;
    if (producer.opType !== 'Conv' && producer.opType !== 'Gemm') continue;
    // An already fused epilogue (activation, residual) sits between the product and the BN.
    if (producer.attributes.activation || producer.attributes.fused_residual) continue;
    const params = readBatchNorm(graph, bn);
    if (!params) continue;
    const folded = producer.opType === 'Conv' ? foldIntoConv(graph, producer, params, names) : foldIntoGemm(graph, producer, params, names);
    if (!folded) continue;
    for (const tensor of folded.tensors) initializers.set(tensor.name, tensor);
    replaced.set(producer, { ...folded.node, outputs: bn.outputs.slice(0, 1) });
    removed.add(bn);
  }
  const nodes = graph.nodes.filter((n) => !removed.has(n)).map((n) => replaced.get(n) ?? n);
  return { ...graph, nodes, initializers };
}
