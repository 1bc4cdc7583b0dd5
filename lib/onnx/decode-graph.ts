// GraphProto -> Graph: value infos, initializers, nodes (checked against the op table before
// their attributes are decoded), then topological order and the Graph invariants.

import { TernionError } from '../errors';
import { requireSupportedOp } from '../ir/ops';
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

function decodeNode(
  proto: NodeProtoMessage,
  name: string,
  opsets: Readonly<Record<string, number>>,
  options: TensorDecodeOptions,
): Node {
  const shell: Node = {
    name,
    opType: proto.op_type,
    domain: normalizeDomain(proto.domain),
    inputs: [...proto.input],
    outputs: [...proto.output],
    attributes: {},
  };
  if (!proto.op_type) throw formatError(`Node "${name}" has no op_type`);
  // Unsupported ops fail here, before their attributes (If/Loop subgraphs) are even decoded.
  // onnxruntime's own ops that are written out as standard ones (lower-contrib-ops.ts) pass.
  if (!isLoweredContribOp(shell.domain, shell.opType) || opsets[shell.domain] === undefined) requireSupportedOp(shell, opsets);
  const attributes: Record<string, AttributeValue> = {};
  for (const attribute of proto.attribute) {
    if (!attribute.name) throw formatError(`Node "${name}" (${proto.op_type}) has an attribute without a name`);
    if (attributes[attribute.name] !== undefined) throw formatError(`Node "${name}" (${proto.op_type}) sets attribute "${attribute.name}" twice`);
    attributes[attribute.name] = decodeAttribute(attribute, proto, name, options);
  }
  return { ...shell, attributes: attributes as Attributes };
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

export function decodeGraph(
  proto: GraphProtoMessage,
  opsets: Readonly<Record<string, number>>,
  metadata: GraphMetadata,
  options: TensorDecodeOptions,
): Graph {
  if (proto.sparse_initializer.length > 0) throw formatError('The model has sparse initializers, which ternion does not support');
  const unknownDims = new UnknownDimNames();
  // Nodes first: an unsupported op is the most useful thing to report about a model.
  const names = uniqueNodeNames(proto.node);
  const nodes = proto.node.map((node, i) => decodeNode(node, names[i], opsets, options));

  const initializers = new Map<string, ConstantTensor>();
  for (const tensor of proto.initializer) {
    if (!tensor.name) throw formatError('An initializer has no name');
    if (initializers.has(tensor.name)) throw formatError(`Initializer "${tensor.name}" is defined twice`);
    initializers.set(tensor.name, decodeTensorMessage(tensor, { ...options, description: `initializer "${tensor.name}"` }));
  }

  // Before IR version 4 initializers were also listed as inputs; here they are constants.
  const inputs = proto.input
    .filter((info) => !initializers.has(info.name))
    .map((info) => decodeValueInfo(info, 'graph input', unknownDims));
  const outputs = proto.output.map((info) => decodeValueInfo(info, 'graph output', unknownDims));

  const valueInfo = new Map<string, ValueType>();
  for (const info of proto.value_info) {
    const type = info.name ? decodeTensorType(info.type, `value "${info.name}"`, unknownDims) : undefined;
    if (type !== undefined) valueInfo.set(info.name, type);
  }


  const available = new Set<string>([...inputs.map((i) => i.name), ...initializers.keys()]);
  const graph: Graph = lowerContribOps({
    name: proto.name,
    opsets,
    inputs,
    outputs,
    initializers,
    nodes: topologicalSort(nodes, available),
    valueInfo,
    metadata,
  });
  validateGraph(graph);
  return graph;
}
