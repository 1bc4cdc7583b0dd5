// Static shape inference: walks the sorted nodes once, asking the op table for each node's output
// types. A symbolic batch dim ("N") flows through; small integer tensors are tracked by value so
// shape arithmetic (Shape -> Gather -> Concat -> Reshape) resolves.

import { TernionError } from '../errors';
import { constantNodeTensor } from './constant-node';
import { isIntegerType, toNumberArray } from './dtype';
import { requireSupportedOp } from './ops';
import type { InferredValue, ShapeContext } from './shape-context';
import { formatShape, shapeError, UnknownRankSignal } from './shape-context';
import { MAX_TRACKED_VALUES } from './shapes/misc';
import { inferredSubgraphs } from './shapes/control-flow';
import { isControlFlow, mapNodeSubgraphs } from './subgraphs';
import type { ConstantTensor, Dim, Graph, Node, Shape, ValueType, ValueInfo } from './types';

function valueOfConstant(tensor: ConstantTensor): readonly Dim[] | undefined {
  if (!isIntegerType(tensor.dtype) || tensor.dims.length > 1 || tensor.data.length > MAX_TRACKED_VALUES) return undefined;
  return toNumberArray(tensor.data);
}

function makeContext(node: Node, opset: number, known: Map<string, InferredValue>, constants: Map<string, ConstantTensor>): ShapeContext {
  const inputName = (i: number): string => node.inputs[i] ?? '';
  const ctx: ShapeContext = {
    node,
    opset,
    inputCount: node.inputs.length,
    hasInput: (i) => inputName(i) !== '',
    input(i) {
      const name = inputName(i);
      const value = name === '' ? undefined : known.get(name);
      if (value === undefined) ctx.fail(name === '' ? `required input ${i} is missing` : `input ${i} "${name}" has no known type`);
      return value;
    },
    shape(i) {
      const shape = ctx.input(i).shape;
      if (shape === undefined) throw new UnknownRankSignal(i);
      return shape;
    },
    constant: (i) => constants.get(inputName(i)),
    values(i) {
      const name = inputName(i);
      const tracked = known.get(name)?.value;
      if (tracked !== undefined) return tracked;
      const constant = constants.get(name);
      return constant === undefined ? undefined : valueOfConstant(constant);
    },
    fail(message): never {
      throw shapeError(node, message);
    },
  };
  return ctx;
}

/** Infer every node's output types. Throws ERR_UNSUPPORTED_OP / ERR_SHAPE_MISMATCH naming the node. */
export function inferNodeTypes(graph: Graph): Map<string, InferredValue> {
  const known = new Map<string, InferredValue>();
  const constants = new Map<string, ConstantTensor>();
  for (const input of graph.inputs) known.set(input.name, { dtype: input.dtype, shape: input.shape });
  for (const [name, tensor] of graph.initializers) {
    constants.set(name, tensor);
    known.set(name, { dtype: tensor.dtype, shape: tensor.dims, value: valueOfConstant(tensor) });
  }
  for (const node of graph.nodes) {
    const spec = requireSupportedOp(node, graph.opsets);
    if (node.opType === 'Constant' && node.domain === '') constants.set(node.outputs[0], constantNodeTensor(node));
    const ctx = makeContext(node, graph.opsets[node.domain], known, constants);
    let outputs: InferredValue[];
    try {
      outputs = spec.inferShapes(ctx);
    } catch (error) {
      if (error instanceof UnknownRankSignal) {
        outputs = node.outputs.map(() => ({ dtype: ctx.input(0).dtype }));
      } else if (error instanceof TernionError) {
        throw error;
      } else {
        throw new TernionError('ERR_INTERNAL', `Shape inference failed on node "${node.name}" (${node.opType}): ${String(error)}`, { cause: error });
      }
    }
    node.outputs.forEach((name, i) => {
      if (name === '' || outputs[i] === undefined) return;
      const declared = graph.valueInfo.get(name);
      known.set(name, outputs[i].shape === undefined && declared?.shape !== undefined ? { ...outputs[i], shape: declared.shape } : outputs[i]);
    });
  }
  return known;
}

/** Merge a declared shape into an inferred one: inferred sizes win, declared names fill the rest. */
function mergeDeclared(name: string, inferred: Shape | undefined, declared: Shape | undefined): Shape | undefined {
  if (inferred === undefined) return declared;
  if (declared === undefined) return inferred;
  if (declared.length !== inferred.length) {
    throw new TernionError('ERR_SHAPE_MISMATCH', `Graph output "${name}" is declared ${formatShape(declared)} but computes ${formatShape(inferred)}`);
  }
  return inferred.map((d, i) => {
    const e = declared[i];
    if (typeof d === 'number' && typeof e === 'number' && d !== e) {
      throw new TernionError('ERR_SHAPE_MISMATCH', `Graph output "${name}" is declared ${formatShape(declared)} but computes ${formatShape(inferred)}`);
    }
    return typeof d === 'number' ? d : e;
  });
}

/** A copy of the graph whose valueInfo types every node output and whose outputs carry shapes. */
export function inferShapes(graph: Graph): Graph {
  const known = inferNodeTypes(graph);
  // Control-flow nodes keep their subgraphs typed as this inference found them.
  const nodes = graph.nodes.map((node) => {
    const typed = isControlFlow(node) ? inferredSubgraphs(node) : undefined;
    if (typed === undefined) return node;
    return mapNodeSubgraphs(node, (sub, name) => typed[name] ?? sub);
  });
  const valueInfo = new Map<string, ValueType>(graph.valueInfo);
  for (const node of graph.nodes) {
    for (const name of node.outputs) {
      const value = known.get(name);
      if (name !== '' && value !== undefined) valueInfo.set(name, value.shape === undefined ? { dtype: value.dtype } : { dtype: value.dtype, shape: value.shape });
    }
  }
  const outputs: ValueInfo[] = graph.outputs.map((output) => {
    const value = known.get(output.name);
    if (value === undefined) return output;
    const shape = mergeDeclared(output.name, value.shape, output.shape);
    return shape === undefined ? { name: output.name, dtype: value.dtype } : { name: output.name, dtype: value.dtype, shape };
  });
  return { ...graph, nodes, valueInfo, outputs };
}
