// float16 / bfloat16 models (the `model_fp16.onnx` files published beside fp32 ones) computed in
// float32: their weights are widened at load already (onnx/half-float.ts); this pass makes every
// declared half type float32 (graph inputs, outputs, value infos) and every Cast to a half type a
// Cast to float32, so the values stay float32 from end to end. The session converts its float16
// feeds and outputs at the boundary (inference-session.ts). Results are those of the model in
// float32, more precise than half arithmetic: they differ from a half-precision run by about its
// rounding (onnxruntime's CPU runs most such ops in float32 too, casting around them).

import type { DataType } from '../dtype';
import { inferNodeTypes } from '../infer-shapes';
import type { Graph, Node, ValueInfo, ValueType } from '../types';

const HALF: ReadonlySet<DataType> = new Set(['float16', 'bfloat16']);
const FLOAT16 = 10, BFLOAT16 = 16, FLOAT = 1;

export function hasHalfTypes(graph: Graph): boolean {
  const io = [...graph.inputs, ...graph.outputs, ...graph.valueInfo.values()];
  return io.some((v) => HALF.has(v.dtype)) || graph.nodes.some(castsToHalf);
}

function castsToHalf(n: Node): boolean {
  const to = n.attributes.to;
  return n.opType === 'Cast' && n.domain === '' && to?.type === 'int' && (to.value === FLOAT16 || to.value === BFLOAT16);
}

export function widenHalf(graph: Graph): Graph {
  if (!hasHalfTypes(graph)) return graph;
  const widen = <T extends ValueType>(v: T): T => (HALF.has(v.dtype) ? { ...v, dtype: 'float32' } : v);
  const valueInfo = new Map<string, ValueType>();
  for (const [name, v] of graph.valueInfo) valueInfo.set(name, widen(v));
  const widened: Graph = {
    ...graph,
    inputs: graph.inputs.map((v) => widen<ValueInfo>(v)),
    outputs: graph.outputs.map((v) => widen<ValueInfo>(v)),
    valueInfo,
    nodes: graph.nodes.map((n) => (castsToHalf(n) ? { ...n, attributes: { ...n.attributes, to: { type: 'int', value: FLOAT } } } : n)),
  };
  return dropFloatToFloatCasts(widened);
}

/**
 * The Casts a half model wraps around ops (to half before, to float after) now cast float32 to
 * float32: they become Identity (removed by optimizeGraph), so they neither copy the values nor
 * break a chain of channels-last convs. Left as they are when the graph's types do not resolve.
 */
function dropFloatToFloatCasts(graph: Graph): Graph {
  let types: ReturnType<typeof inferNodeTypes>;
  try {
    types = inferNodeTypes(graph);
  } catch {
    return graph;
  }
  const isFloatCast = (n: Node): boolean => {
    const to = n.attributes.to;
    return n.opType === 'Cast' && n.domain === '' && to?.type === 'int' && to.value === FLOAT && types.get(n.inputs[0])?.dtype === 'float32';
  };
  if (!graph.nodes.some(isFloatCast)) return graph;
  return { ...graph, nodes: graph.nodes.map((n) => (isFloatCast(n) ? { ...n, opType: 'Identity', attributes: {} } : n)) };
}
