// If, Loop and Scan: output types from their subgraphs, each inferred with its inputs typed from
// the node's (ir/subgraphs.ts explains the capture inputs). The typed subgraphs are kept for
// inferShapes, which stores them in the node so later stages see every subgraph value typed.

import { TernionError } from '../../errors';
import { intAttribute, intsAttribute } from '../attributes';
import { inferShapes } from '../infer-shapes';
import type { InferredValue, ShapeContext, ShapeFunction } from '../shape-context';
import { formatShape, normalizeAxis } from '../shape-context';
import { captureCount } from '../subgraphs';
import type { Dim, Graph, Node, Shape, ValueType } from '../types';
import { inferOnce } from './subgraph-cache';

/** The node's subgraphs, typed and inferred, from the last time its shapes were inferred. */
const typedSubgraphs = new WeakMap<Node, Record<string, Graph>>();

export function inferredSubgraphs(node: Node): Record<string, Graph> | undefined {
  return typedSubgraphs.get(node);
}

function graphAttribute(ctx: ShapeContext, name: string): Graph {
  const a = ctx.node.attributes[name];
  if (a === undefined || a.type !== 'graph') ctx.fail(`has no graph attribute "${name}"`);
  return a.value;
}

/** The subgraph with its inputs typed as `types` (formal inputs, then captures), inferred (once per types: subgraph-cache.ts). */
function inferSubgraph(ctx: ShapeContext, sub: Graph, types: readonly ValueType[], what: string): Graph {
  if (sub.inputs.length !== types.length) {
    ctx.fail(`its ${what} takes ${sub.inputs.length} inputs where ${types.length} are bound (formal inputs and captured values)`);
  }
  const inputs = sub.inputs.map((input, i) => ({ name: input.name, ...types[i] }));
  try {
    return inferOnce(sub, types, () => inferShapes({ ...sub, inputs }));
  } catch (error) {
    if (error instanceof TernionError) throw new TernionError(error.code, `In the ${what} of node "${ctx.node.name}" (${ctx.node.opType}): ${error.message}`, { cause: error });
    throw error;
  }
}

function typeOf(value: InferredValue | ValueType): ValueType {
  return value.shape === undefined ? { dtype: value.dtype } : { dtype: value.dtype, shape: value.shape };
}

/** Types of inputs [from, inputCount) of the node. */
function inputTypes(ctx: ShapeContext, from: number): ValueType[] {
  const types: ValueType[] = [];
  for (let i = from; i < ctx.inputCount; i++) types.push(typeOf(ctx.input(i)));
  return types;
}

/** One type for a value that is `a` on some runs and `b` on others: differing dims become symbols. */
function mergeTypes(ctx: ShapeContext, a: ValueType, b: ValueType, symbol: (dim: number) => string, what: string): ValueType {
  if (a.dtype !== b.dtype) ctx.fail(`${what} is ${a.dtype} on one path and ${b.dtype} on another`);
  if (a.shape === undefined || b.shape === undefined || a.shape.length !== b.shape.length) return { dtype: a.dtype };
  const bShape = b.shape;
  return { dtype: a.dtype, shape: a.shape.map((d, i) => (d === bShape[i] ? d : symbol(i))) };
}

function sameShape(a: Shape | undefined, b: Shape | undefined): boolean {
  return a === b || (a !== undefined && b !== undefined && a.length === b.length && a.every((d, i) => d === b[i]));
}

/** A branch inferred on the bound types, or undefined when those shapes are wrong for it. */
function inferBranch(ctx: ShapeContext, name: string, captured: readonly ValueType[]): Graph | undefined {
  try {
    return inferSubgraph(ctx, graphAttribute(ctx, name), captured, name);
  } catch (error) {
    if (error instanceof TernionError && error.code === 'ERR_SHAPE_MISMATCH') return undefined;
    throw error;
  }
}

/** The If's condition when it is a constant, else undefined. */
function constantCondition(ctx: ShapeContext): boolean | undefined {
  const cond = ctx.constant(0);
  return cond !== undefined && cond.data.length === 1 ? Number(cond.data[0]) !== 0 : undefined;
}

export const ifShapeFn: ShapeFunction = (ctx) => {
  const cond = ctx.input(0);
  if (cond.shape !== undefined && cond.shape.some((d) => typeof d === 'number' && d !== 1)) {
    ctx.fail(`its condition must hold one element, not ${formatShape(cond.shape)}`);
  }
  const captured = inputTypes(ctx, 1);
  const thenGraph = inferBranch(ctx, 'then_branch', captured);
  const elseGraph = inferBranch(ctx, 'else_branch', captured);
  if (thenGraph === undefined && elseGraph === undefined) {
    inferSubgraph(ctx, graphAttribute(ctx, 'then_branch'), captured, 'then_branch');  // throws the first branch's error
  }
  if (thenGraph === undefined || elseGraph === undefined) {
    // One branch cannot run on these shapes (a squeeze of a batch that is not 1): the other one
    // will; both are kept, typed without shapes where they failed.
    const good = (thenGraph ?? elseGraph) as Graph;
    const untyped = captured.map((t): ValueType => ({ dtype: t.dtype }));
    const bad = inferSubgraph(ctx, graphAttribute(ctx, thenGraph ? 'else_branch' : 'then_branch'), untyped, thenGraph ? 'else_branch' : 'then_branch');
    typedSubgraphs.set(ctx.node, thenGraph ? { then_branch: good, else_branch: bad } : { then_branch: bad, else_branch: good });
    if (bad.outputs.length !== good.outputs.length || good.outputs.length !== ctx.node.outputs.length) {
      ctx.fail(`has ${ctx.node.outputs.length} outputs but its branches give ${good.outputs.length} and ${bad.outputs.length}`);
    }
    return good.outputs.map((t, i) => {
      if (t.dtype !== bad.outputs[i].dtype) ctx.fail(`output ${i} is ${t.dtype} on one path and ${bad.outputs[i].dtype} on another`);
      return constantCondition(ctx) === (thenGraph !== undefined) ? typeOf(t) : { dtype: t.dtype };
    });
  }
  const count = ctx.node.outputs.length;
  if (thenGraph.outputs.length !== count || elseGraph.outputs.length !== count) {
    ctx.fail(`has ${count} outputs but its branches give ${thenGraph.outputs.length} and ${elseGraph.outputs.length}`);
  }
  typedSubgraphs.set(ctx.node, { then_branch: thenGraph, else_branch: elseGraph });
  return thenGraph.outputs.map((t, i) => mergeTypes(ctx, t, elseGraph.outputs[i], (d) => `${ctx.node.name}:${i}:${d}`, `output ${i}`));
};

/**
 * Loop and Scan bodies carry state from one iteration to the next, whose shape may change: the
 * body is inferred with the initial types, and again with merged types until they hold.
 */
function inferCarried(
  ctx: ShapeContext,
  sub: Graph,
  before: readonly ValueType[],
  carried: ValueType[],
  after: readonly ValueType[],
  outputOffset: number,
): Graph {
  for (let pass = 0; ; pass++) {
    const body = inferSubgraph(ctx, sub, [...before, ...carried, ...after], 'body');
    if (body.outputs.length < outputOffset + carried.length) {
      ctx.fail(`its body gives ${body.outputs.length} outputs, fewer than its ${carried.length} carried values need`);
    }
    let stable = true;
    carried.forEach((type, i) => {
      const out = body.outputs[outputOffset + i];
      if (out.dtype !== type.dtype) ctx.fail(`carried value ${i} enters the body as ${type.dtype} and leaves it as ${out.dtype}`);
      if (sameShape(type.shape, out.shape)) return;
      stable = false;
      carried[i] = pass < 2 ? mergeTypes(ctx, type, out, (d) => `${ctx.node.name}:carried${i}:${d}`, `carried value ${i}`) : { dtype: type.dtype };
    });
    if (stable) return body;
  }
}

/**
 * The trip count when it is known before the loop runs: a constant M, and a condition that is
 * absent or true and that the body hands on unchanged (directly or through Identity nodes).
 */
function knownTrips(ctx: ShapeContext, body: Graph): number | undefined {
  const m = ctx.hasInput(0) ? ctx.values(0) : undefined;
  if (m === undefined || m.length !== 1 || typeof m[0] !== 'number') return undefined;
  if (ctx.hasInput(1)) {
    const cond = ctx.constant(1);
    if (cond === undefined || cond.data.length !== 1 || Number(cond.data[0]) === 0) return undefined;
  }
  let name = body.outputs[0]?.name;
  const producer = new Map(body.nodes.flatMap((n) => n.outputs.map((o): [string, Node] => [o, n])));
  for (let hops = 0; name !== undefined && hops < body.nodes.length + 1; hops++) {
    if (name === body.inputs[1]?.name) return Math.max(0, m[0]);
    const node = producer.get(name);
    if (node === undefined || node.opType !== 'Identity') return undefined;
    name = node.inputs[0];
  }
  return undefined;
}

export const loopShapeFn: ShapeFunction = (ctx) => {
  const captures = captureCount(ctx.node);
  const carriedCount = ctx.inputCount - 2 - captures;
  if (carriedCount < 0) ctx.fail(`has ${ctx.inputCount} inputs: fewer than the trip count, the condition and ${captures} captured values`);
  if (ctx.hasInput(0) && ctx.input(0).dtype !== 'int64') ctx.fail(`its trip count is ${ctx.input(0).dtype}, not int64`);
  if (ctx.hasInput(1) && ctx.input(1).dtype !== 'bool') ctx.fail(`its condition is ${ctx.input(1).dtype}, not bool`);
  const carried = inputTypes(ctx, 2).slice(0, carriedCount);
  const captured = inputTypes(ctx, 2 + carriedCount);
  const formal: ValueType[] = [{ dtype: 'int64', shape: [] }, { dtype: 'bool', shape: [] }];
  const body = inferCarried(ctx, graphAttribute(ctx, 'body'), formal, carried, captured, 1);
  const scanCount = body.outputs.length - 1 - carriedCount;
  if (ctx.node.outputs.length !== carriedCount + scanCount) {
    ctx.fail(`has ${ctx.node.outputs.length} outputs but its body gives ${carriedCount} carried values and ${scanCount} scan outputs`);
  }
  typedSubgraphs.set(ctx.node, { body });
  const trips = knownTrips(ctx, body) ?? `${ctx.node.name}:trips`;
  const scans = body.outputs.slice(1 + carriedCount).map((o): ValueType => (o.shape === undefined ? { dtype: o.dtype } : { dtype: o.dtype, shape: [trips, ...o.shape] }));
  return [...carried, ...scans];
};

export const scanShapeFn: ShapeFunction = (ctx) => {
  const captures = captureCount(ctx.node);
  const scanInputs = intAttribute(ctx.node, 'num_scan_inputs');
  const stateCount = ctx.inputCount - scanInputs - captures;
  if (scanInputs < 1 || stateCount < 0) ctx.fail(`num_scan_inputs ${scanInputs} does not fit its ${ctx.inputCount} inputs (${captures} captured)`);
  const inputAxes = intsAttribute(ctx.node, 'scan_input_axes') ?? new Array<number>(scanInputs).fill(0);
  if (inputAxes.length !== scanInputs) ctx.fail(`scan_input_axes has ${inputAxes.length} entries for ${scanInputs} scan inputs`);
  let length: Dim | undefined;
  const slices: ValueType[] = [];
  for (let j = 0; j < scanInputs; j++) {
    const input = ctx.input(stateCount + j);
    if (input.shape === undefined) {
      slices.push({ dtype: input.dtype });
      continue;
    }
    const axis = normalizeAxis(ctx, inputAxes[j], input.shape.length, `scan_input_axes[${j}]`);
    const size = input.shape[axis];
    if (length === undefined) length = size;
    else if (typeof length === 'number' && typeof size === 'number' && length !== size) ctx.fail(`its scan inputs have lengths ${length} and ${size}`);
    slices.push({ dtype: input.dtype, shape: input.shape.filter((_, k) => k !== axis) });
  }
  const states = inputTypes(ctx, 0).slice(0, stateCount);
  const captured = inputTypes(ctx, stateCount + scanInputs);
  const body = inferCarried(ctx, graphAttribute(ctx, 'body'), [], states, [...slices, ...captured], 0);
  const scanOutputs = body.outputs.length - stateCount;
  if (ctx.node.outputs.length !== body.outputs.length) ctx.fail(`has ${ctx.node.outputs.length} outputs but its body gives ${body.outputs.length}`);
  const outputAxes = intsAttribute(ctx.node, 'scan_output_axes') ?? new Array<number>(scanOutputs).fill(0);
  if (outputAxes.length !== scanOutputs) ctx.fail(`scan_output_axes has ${outputAxes.length} entries for ${scanOutputs} scan outputs`);
  typedSubgraphs.set(ctx.node, { body });
  const trips = length ?? `${ctx.node.name}:length`;
  const scans = body.outputs.slice(stateCount).map((o, j): ValueType => {
    if (o.shape === undefined) return { dtype: o.dtype };
    const axis = normalizeAxis(ctx, outputAxes[j], o.shape.length + 1, `scan_output_axes[${j}]`);
    return { dtype: o.dtype, shape: [...o.shape.slice(0, axis), trips, ...o.shape.slice(axis)] };
  });
  return [...states, ...scans];
};
