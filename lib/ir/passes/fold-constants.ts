// Constant folding: Constant nodes become initializers; Shape of a statically shaped tensor
// becomes an int64 initializer; any node the reference evaluator knows whose inputs are all
// constant is computed now. This collapses Shape -> Gather -> Unsqueeze -> Concat -> Reshape
// chains so the executor sees plain Reshapes with constant shapes.

import { constantNodeTensor } from '../constant-node';
import { findEvaluator, TYPE_CHANGING_EVALUATORS } from '../evaluate';
import { isStoredDataType } from '../dtype';
import { inferNodeTypes } from '../infer-shapes';
import type { ConstantTensor, Graph, Node } from '../types';

/** Results larger than this stay as nodes: folding must not bloat the model. */
const MAX_FOLDED_ELEMENTS = 1 << 20;

function staticDims(shape: readonly (number | string)[] | undefined): number[] | undefined {
  return shape !== undefined && shape.every((d) => typeof d === 'number') ? (shape as number[]) : undefined;
}

function foldShapeNode(node: Node, inputShape: number[], outputDims: number[] | undefined): ConstantTensor | undefined {
  if (outputDims === undefined) return undefined;
  const rank = inputShape.length;
  const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + rank : v, 0), rank);
  const start = clamp(node.attributes.start?.type === 'int' ? node.attributes.start.value : 0);
  const end = clamp(node.attributes.end?.type === 'int' ? node.attributes.end.value : rank);
  const dims = inputShape.slice(start, Math.max(start, end));
  return { name: node.outputs[0], dtype: 'int64', dims: [dims.length], data: BigInt64Array.from(dims, (d) => BigInt(d)) };
}

export function foldConstants(graph: Graph): Graph {
  const types = inferNodeTypes(graph);
  const constants = new Map(graph.initializers);
  const kept: Node[] = [];
  for (const node of graph.nodes) {
    const folded = tryFold(node, graph, constants, types);
    if (folded === undefined) {
      kept.push(node);
      continue;
    }
    for (const tensor of folded) constants.set(tensor.name, tensor);
  }
  return { ...graph, nodes: kept, initializers: constants };
}

/**
 * An integer output whose every element shape inference knows as a number, though its inputs
 * are not all constant: Gather(Shape(x), 1) of x [batch, 32, 80, 80] is 32. PyTorch computes a
 * chunk's split points, a head count or a reshape's channel dim so from a tensor whose batch is
 * symbolic; folded, the Slices, Reshapes and Ifs after them see constants.
 */
function trackedValue(node: Node, types: ReturnType<typeof inferNodeTypes>, dims: number[]): ConstantTensor | undefined {
  if (node.opType === 'Constant') return undefined;
  const t = types.get(node.outputs[0]);
  const v = t?.value;
  if (!t || !v || (t.dtype !== 'int64' && t.dtype !== 'int32') || dims.length > 1 || v.length !== dims.reduce((a, b) => a * b, 1)) return undefined;
  if (!v.every((d): d is number => typeof d === 'number' && Number.isSafeInteger(d))) return undefined;
  const numbers = v as number[];
  const data = t.dtype === 'int64' ? BigInt64Array.from(numbers, (d) => BigInt(d)) : Int32Array.from(numbers);
  return { name: node.outputs[0], dtype: t.dtype, dims, data };
}

function tryFold(
  node: Node,
  graph: Graph,
  constants: ReadonlyMap<string, ConstantTensor>,
  types: ReturnType<typeof inferNodeTypes>,
): ConstantTensor[] | undefined {
  if (node.domain !== '') return undefined;
  if (node.opType === 'Constant') return [constantNodeTensor(node)];
  const outputDims = node.outputs.map((name) => staticDims(types.get(name)?.shape));
  if (node.opType === 'Shape') {
    const inputShape = staticDims(types.get(node.inputs[0])?.shape);
    const tensor = inputShape && foldShapeNode(node, inputShape, outputDims[0]);
    return tensor && [tensor];
  }
  if (node.outputs.length !== 1 || outputDims[0] === undefined) return undefined;
  const known = trackedValue(node, types, outputDims[0]);
  if (known) return [known];
  const inputs = node.inputs.map((name) => (name === '' ? undefined : constants.get(name)));
  if (node.inputs.some((name, i) => name !== '' && inputs[i] === undefined)) return undefined;
  const first = inputs[0];
  if (first === undefined) return undefined;
  const evaluate = findEvaluator(node, graph.opsets[''] ?? 0, first.dtype);
  const dims = outputDims[0];
  if (evaluate === undefined || dims.reduce((a, b) => a * b, 1) > MAX_FOLDED_ELEMENTS) return undefined;
  const outputType = types.get(node.outputs[0]);
  if (outputType === undefined) return undefined;
  const to = outputType.dtype;
  if (to !== first.dtype) {
    if (!TYPE_CHANGING_EVALUATORS.has(node.opType) || !isStoredDataType(to)) return undefined;
  }
  return [{ name: node.outputs[0], dtype: to as typeof first.dtype, dims, data: evaluate(node, inputs, dims, to as typeof first.dtype) }];
}
