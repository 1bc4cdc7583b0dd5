// Compiles an optimized IR graph into the plan the native executor consumes: values numbered,
// constants as typed arrays, attributes in the executor's vocabulary. Pure: no native calls.
import { TernionError } from '../errors';
import type { AttributeValue, ConstantTensor, Graph, Node } from '../ir';

export type PlanDType = 'float32' | 'uint8' | 'int8' | 'int32' | 'int64' | 'bool';
const PLAN_DTYPES: ReadonlySet<string> = new Set(['float32', 'uint8', 'int8', 'int32', 'int64', 'bool']);

export interface PlanTensor {
  dtype: PlanDType;
  dims: number[];
  data: ArrayBufferView;
}

export type PlanAttr =
  | { type: 'int' | 'float'; value: number }
  | { type: 'string'; value: string }
  | { type: 'strings'; value: string[] }
  | { type: 'ints' | 'floats'; value: number[] }
  | { type: 'tensor'; value: PlanTensor }
  // A subgraph (If branch, Loop / Scan body): a plan of its own, with its own value ids.
  | { type: 'graph'; value: Plan };

export interface PlanNode {
  op: string;
  name: string;
  opset: number;
  attrs: Record<string, PlanAttr>;
  inputs: number[];
  outputs: number[];
}

export interface Plan {
  /**
   * `dims` (in subgraphs: null for a size known only at run time) is read only for a Loop that
   * runs zero times, whose scan outputs then take the body's declared shape after their 0.
   */
  values: { name: string; dtype: PlanDType; dims?: (number | null)[] }[];
  constants: (PlanTensor & { id: number })[];
  nodes: PlanNode[];
  inputs: number[];
  outputs: number[];
}

function planDType(dtype: string, what: string): PlanDType {
  if (!PLAN_DTYPES.has(dtype)) {
    throw new TernionError('ERR_DTYPE', `${what} has element type ${dtype}, which ternion does not compute in (supported: ${[...PLAN_DTYPES].join(', ')})`);
  }
  return dtype as PlanDType;
}

function planTensor(t: ConstantTensor, what: string): PlanTensor {
  let dtype = t.dtype as string;
  let data: ArrayBufferView = t.data;
  if (dtype === 'float64') {
    // fp64 weights are computed in fp32 like everything else.
    dtype = 'float32';
    data = Float32Array.from(t.data as Float64Array);
  }
  return { dtype: planDType(dtype, what), dims: [...t.dims], data };
}

const ACTIVATION_CODES: Record<string, number> = { Relu: 1, Clip: 2, LeakyRelu: 3, Silu: 4, HardSwish: 5 };

// The IR's fusion attributes (ir/ops.ts FUSED_ATTRIBUTES) in the executor's integer form.
function translateFused(node: Node, attrs: Record<string, PlanAttr>): void {
  const act = node.attributes.activation;
  if (!act) return;
  delete attrs.activation;
  delete attrs.activation_params;
  const code = act.type === 'string' ? ACTIVATION_CODES[act.value] : undefined;
  if (code === undefined) throw new TernionError('ERR_INTERNAL', `node "${node.name}" has an unknown fused activation`);
  attrs.fused_activation = { type: 'int', value: code };
  const params = node.attributes.activation_params;
  const p = params && params.type === 'floats' ? params.value : [];
  if (code === 2) {
    attrs.fused_min = { type: 'float', value: p[0] ?? -Infinity };
    attrs.fused_max = { type: 'float', value: p[1] ?? Infinity };
  }
  if (code === 3) attrs.fused_alpha = { type: 'float', value: p[0] ?? 0.01 };
}

function planAttr(a: AttributeValue, where: string): PlanAttr {
  switch (a.type) {
    case 'int': case 'float': return { type: a.type, value: a.value };
    case 'string': return { type: 'string', value: a.value };
    case 'ints': case 'floats': return { type: a.type, value: [...a.value] };
    case 'tensor': return { type: 'tensor', value: planTensor(a.value, where) };
    case 'strings': return { type: 'strings', value: [...a.value] };
    case 'graph': return { type: 'graph', value: compilePlan(a.value, true) };
  }
}

export function compilePlan(graph: Graph, subgraph = false): Plan {
  const ids = new Map<string, number>();
  const values: Plan['values'] = [];
  const typeOf = (name: string): string | undefined =>
    graph.inputs.find((v) => v.name === name)?.dtype ?? graph.initializers.get(name)?.dtype ?? graph.valueInfo.get(name)?.dtype;
  const idOf = (name: string, where: string): number => {
    if (name === '') return -1;
    let id = ids.get(name);
    if (id === undefined) {
      const dtype = typeOf(name);
      if (dtype === undefined) throw new TernionError('ERR_MODEL_FORMAT', `${where}: the type of tensor "${name}" is unknown`);
      id = values.length;
      ids.set(name, id);
      const value: Plan['values'][number] = { name, dtype: planDType(dtype === 'float64' ? 'float32' : dtype, `tensor "${name}"`) };
      const shape = subgraph ? (graph.outputs.find((v) => v.name === name) ?? graph.valueInfo.get(name))?.shape : undefined;
      if (shape !== undefined) value.dims = shape.map((d) => (typeof d === 'number' ? d : null));
      values.push(value);
    }
    return id;
  };
  const inputs = graph.inputs.map((v) => idOf(v.name, 'graph input'));
  const constants: Plan['constants'] = [];
  for (const [name, t] of graph.initializers) constants.push({ id: idOf(name, 'initializer'), ...planTensor(t, `initializer "${name}"`) });
  const nodes = graph.nodes.map((node): PlanNode => {
    const where = `${node.opType} node "${node.name}"`;
    const attrs: Record<string, PlanAttr> = {};
    for (const [k, a] of Object.entries(node.attributes)) attrs[k] = planAttr(a, `${where} attribute ${k}`);
    translateFused(node, attrs);
    return {
      op: node.opType,
      name: node.name,
      opset: graph.opsets[node.domain] ?? 0,
      attrs,
      inputs: node.inputs.map((n) => idOf(n, where)),
      outputs: node.outputs.map((n) => idOf(n, where)),
    };
  });
  const outputs = graph.outputs.map((v) => idOf(v.name, 'graph output'));
  return { values, constants, nodes, inputs, outputs };
}
