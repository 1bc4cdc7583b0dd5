// GraphProto -> Graph: value infos, initializers, nodes (checked against the op table before
// their attributes are decoded), then topological order and the Graph invariants.

import { TernionError } from '../errors';
import { requireSupportedOp } from '../ir/ops';
import { CONTROL_FLOW_OPS, isControlFlow } from '../ir/subgraphs';
import { UnknownDimNames } from '../ir/symbolic-dims';
import { topologicalSort } from '../ir/topo-sort';
import type { Attributes, AttributeValue, ConstantTensor, Dim, Graph, GraphMetadata, Node, ValueType, ValueInfo } from '../ir/types';
import { validateGraph } from '../ir/validate-graph';
import { decodeAttribute } from './attributes';
import { lowerContribOps, isLoweredContribOp } from './lower-contrib-ops';
import { onnxElementType, onnxElementTypeName } from './element-types';
import type { GraphProtoMessage, NodeProtoMessage, TypeProtoMessage, ValueInfoProtoMessage } from './proto';
import { int64ToNumber } from './proto';
import { decodeTensorMessage } from './tensor-proto';
import type { TensorDecodeOptions } from './tensor-proto';

function formatError(message: string): TernionError {
  return new TernionError('ERR_MODEL_FORMAT', message);
}

export function normalizeDomain(domain: string): string {
  return domain === 'ai.onnx' ? '' : domain;
}

/** A declared tensor type. Unnamed or negative dims become fresh symbols ("unk__3"). */
function decodeTensorType(type: TypeProtoMessage | null | undefined, what: string, unknownDims: UnknownDimNames): ValueType | undefined {
  if (!type) return undefined;
  const tensorType = type.tensor_type;
  if (!tensorType) {
    throw new TernionError('ERR_DTYPE', `The ${what} is a ${type.value ?? 'non-tensor'} value; ternion supports only tensors`);
  }
  const dtype = onnxElementType(tensorType.elem_type);
  if (dtype === undefined) throw new TernionError('ERR_DTYPE', `The ${what} has element type ${onnxElementTypeName(tensorType.elem_type)}, which ternion does not support`);
  if (!tensorType.shape) return { dtype };
  const shape: Dim[] = tensorType.shape.dim.map((dim) => {
    if (dim.value === 'dim_value' && dim.dim_value !== undefined) {
      const size = int64ToNumber(dim.dim_value);
      // Some exporters write -1 for "unknown"; treat any negative declared size that way.
      if (size >= 0 && Number.isSafeInteger(size)) return size;
    }
    if (dim.value === 'dim_param' && dim.dim_param) return dim.dim_param;
    return unknownDims.fresh();
  });
  return { dtype, shape };
}

function decodeValueInfo(info: ValueInfoProtoMessage, what: string, unknownDims: UnknownDimNames): ValueInfo {
  if (!info.name) throw formatError(`A ${what} has no name`);
  const type = decodeTensorType(info.type, `${what} "${info.name}"`, unknownDims);
  if (type === undefined) throw formatError(`The ${what} "${info.name}" has no type`);
  return { name: info.name, ...type };
}

/** What decoding a graph at any depth shares: the model's opsets, tensor options, unknown-dim names. */
interface DecodeScope {
  readonly opsets: Readonly<Record<string, number>>;
  readonly options: TensorDecodeOptions;
  readonly unknownDims: UnknownDimNames;
  readonly metadata: GraphMetadata;
}

function decodeNode(proto: NodeProtoMessage, name: string, scope: DecodeScope): Node {
  const shell: Node = {
    name,
    opType: proto.op_type,
    domain: normalizeDomain(proto.domain),
    inputs: [...proto.input],
    outputs: [...proto.output],
    attributes: {},
  };
  if (!proto.op_type) throw formatError(`Node "${name}" has no op_type`);
  // Unsupported ops fail here, before their attributes (subgraphs) are even decoded.
  // onnxruntime's own ops that are written out as standard ones (lower-contrib-ops.ts) pass.
  if (!isLoweredContribOp(shell.domain, shell.opType) || scope.opsets[shell.domain] === undefined) requireSupportedOp(shell, scope.opsets);
  const attributes: Record<string, AttributeValue> = {};
  const subgraphs: [string, Graph, string[]][] = [];
  for (const attribute of proto.attribute) {
    if (!attribute.name) throw formatError(`Node "${name}" (${proto.op_type}) has an attribute without a name`);
    if (attributes[attribute.name] !== undefined) throw formatError(`Node "${name}" (${proto.op_type}) sets attribute "${attribute.name}" twice`);
    if ((attribute.type === 5 || (!attribute.type && attribute.g)) && attribute.g && isControlFlow(shell)) {
      const where = `${attribute.name} of node "${name}" (${proto.op_type})`;
      let decoded: { graph: Graph; free: string[] };
      try {
        decoded = decodeBody(attribute.g, scope, where);
      } catch (error) {
        // Which subgraph, at any depth: the innermost message first, each level appending its own.
        if (error instanceof TernionError) throw new TernionError(error.code, `${error.message}, in the ${where}`, { cause: error });
        throw error;
      }
      const { graph, free } = decoded;
      subgraphs.push([attribute.name, graph, free]);
      attributes[attribute.name] = { type: 'graph', value: graph };
      continue;
    }
    attributes[attribute.name] = decodeAttribute(attribute, proto, name, scope.options);
  }
  if (!isControlFlow(shell)) return { ...shell, attributes: attributes as Attributes };
  for (const graphName of CONTROL_FLOW_OPS[shell.opType]) {
    if (attributes[graphName]?.type !== 'graph') throw formatError(`Node "${name}" (${proto.op_type}) has no graph attribute "${graphName}"`);
  }
  // The outer values any subgraph reads become the node's last inputs and every subgraph's last
  // inputs (ir/subgraphs.ts); their types are set by shape inference.
  const captures = [...new Set(subgraphs.flatMap(([, , free]) => free))];
  for (const [attributeName, graph] of subgraphs) {
    const inputs = [...graph.inputs, ...captures.map((c): ValueInfo => ({ name: c, dtype: 'float32' }))];
    attributes[attributeName] = { type: 'graph', value: { ...graph, inputs } };
  }
  attributes.captures = { type: 'int', value: captures.length };
  return { ...shell, inputs: [...shell.inputs, ...captures], attributes: attributes as Attributes };
}

/** Names for nodes: the model's, or "<OpType>_<index>" when missing or already taken. */
function uniqueNodeNames(nodes: readonly NodeProtoMessage[]): string[] {
  const taken = new Set(nodes.map((n) => n.name).filter((n) => n !== ''));
  const used = new Set<string>();
  return nodes.map((node, index) => {
    let name = node.name;
    if (name === '' || used.has(name)) {
      name = `${node.op_type || 'node'}_${index}`;
      while (taken.has(name) || used.has(name)) name += '_';
    }
    used.add(name);
    return name;
  });
}

/**
 * The parts of a graph at any depth. `subgraph`: the graph of an attribute, whose inputs and
 * outputs may leave their types to shape inference and whose nodes may read outer values (`free`,
 * in order of first read).
 */
function decodeBody(proto: GraphProtoMessage, scope: DecodeScope, subgraph?: string): { graph: Graph; free: string[] } {
  const what = subgraph === undefined ? '' : ` in the subgraph ${subgraph}`;
  if (proto.sparse_initializer.length > 0) throw formatError(`The model has sparse initializers${what}, which ternion does not support`);
  // Nodes first: an unsupported op is the most useful thing to report about a model.
  const names = uniqueNodeNames(proto.node);
  const nodes = proto.node.map((node, i) => decodeNode(node, names[i], scope));

  const initializers = new Map<string, ConstantTensor>();
  for (const tensor of proto.initializer) {
    if (!tensor.name) throw formatError(`An initializer${what} has no name`);
    if (initializers.has(tensor.name)) throw formatError(`Initializer "${tensor.name}"${what} is defined twice`);
    initializers.set(tensor.name, decodeTensorMessage(tensor, { ...scope.options, description: `initializer "${tensor.name}"${what}` }));
  }

  const valueInfoOf = (info: ValueInfoProtoMessage, kind: string): ValueInfo => {
    if (subgraph === undefined || (info.type && info.type.tensor_type)) return decodeValueInfo(info, kind + what, scope.unknownDims);
    if (!info.name) throw formatError(`A ${kind}${what} has no name`);
    return { name: info.name, dtype: 'float32' };  // typed by shape inference from the node's inputs
  };
  // Before IR version 4 initializers were also listed as inputs; here they are constants.
  const inputs = proto.input.filter((info) => !initializers.has(info.name)).map((info) => valueInfoOf(info, 'graph input'));
  const outputs = proto.output.map((info) => valueInfoOf(info, 'graph output'));

  const valueInfo = new Map<string, ValueType>();
  for (const info of proto.value_info) {
    const type = info.name ? decodeTensorType(info.type, `value "${info.name}"`, scope.unknownDims) : undefined;
    if (type !== undefined) valueInfo.set(info.name, type);
  }

  const defined = new Set<string>([...inputs.map((i) => i.name), ...initializers.keys()]);
  for (const node of nodes) for (const o of node.outputs) if (o !== '') defined.add(o);
  const free: string[] = [];
  if (subgraph !== undefined) {
    const reads = [...nodes.flatMap((n) => n.inputs), ...outputs.map((o) => o.name)];
    for (const name of reads) if (name !== '' && !defined.has(name) && !free.includes(name)) free.push(name);
  }
  const available = new Set<string>([...inputs.map((i) => i.name), ...initializers.keys(), ...free]);
  const graph: Graph = lowerContribOps({
    name: proto.name,
    opsets: scope.opsets,
    inputs,
    outputs,
    initializers,
    nodes: topologicalSort(nodes, available),
    valueInfo,
    metadata: scope.metadata,
  });
  // A subgraph is validated with its outer reads as inputs, once decodeNode has added them.
  if (subgraph === undefined) validateGraph(graph);
  return { graph, free };
}

export function decodeGraph(
  proto: GraphProtoMessage,
  opsets: Readonly<Record<string, number>>,
  metadata: GraphMetadata,
  options: TensorDecodeOptions,
): Graph {
  return decodeBody(proto, { opsets, options, unknownDims: new UnknownDimNames(), metadata }).graph;
}
