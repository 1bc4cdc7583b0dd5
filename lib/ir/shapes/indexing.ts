// Shapes of ops that select parts of a tensor: Split, Slice, Gather, Pad, Shape.

import { intAttribute, intsAttribute } from '../attributes';
import { addDims, opaqueDim } from '../symbolic-dims';
import type { ShapeContext, ShapeFunction } from '../shape-context';
import { formatShape, normalizeAxis, numericValues } from '../shape-context';
import type { Dim } from '../types';

export const splitShapeFn: ShapeFunction = (ctx) => {
  const x = ctx.shape(0);
  const axis = normalizeAxis(ctx, intAttribute(ctx.node, 'axis', 0), x.length);
  const count = ctx.node.outputs.length;
  let sizes: readonly Dim[] | undefined;
  if (ctx.opset < 13) sizes = intsAttribute(ctx.node, 'split');
  else if (ctx.hasInput(1)) {
    // Sizes computed at run time: only the rank is known here.
    sizes = numericValues(ctx, 1) ?? Array.from({ length: count }, (_, i) => opaqueDim(`${ctx.node.outputs[i]}[${axis}]`));
  }
  const dim = x[axis];
  if (sizes === undefined) {
    const numOutputs = ctx.opset >= 18 ? intAttribute(ctx.node, 'num_outputs', count) : count;
    if (numOutputs !== count) ctx.fail(`num_outputs is ${numOutputs} but the node has ${count} outputs`);
    if (typeof dim !== 'number') {
      sizes = Array.from({ length: count }, (_, i) => opaqueDim(`split(${dim},${i}/${count})`));
    } else if (ctx.opset >= 18 && ctx.node.attributes.num_outputs !== undefined) {
      // Opset 18: chunks of ceil(dim / n), the last one smaller.
      const chunk = Math.ceil(dim / count);
      sizes = Array.from({ length: count }, (_, i) => Math.max(0, Math.min(chunk, dim - chunk * i)));
    } else {
      if (dim % count !== 0) ctx.fail(`axis ${axis} of size ${dim} does not split evenly into ${count} outputs`);
      sizes = new Array<number>(count).fill(dim / count);
    }
  }
  if (sizes.length !== count) ctx.fail(`split has ${sizes.length} sizes but the node has ${count} outputs`);
  const total = sizes.reduce<number | undefined>((acc, s) => (typeof s === 'number' && acc !== undefined ? acc + s : undefined), 0);
  if (typeof dim === 'number' && total !== undefined && total !== dim) ctx.fail(`split sizes [${sizes.join(',')}] do not add up to ${dim}`);
  return sizes.map((size) => ({ dtype: ctx.input(0).dtype, shape: x.map((d, a) => (a === axis ? size : d)) }));
};

interface SliceRange { start: number; end: number; step: number }

/** ONNX Slice clamping of one axis; returns the clamped range for a known dim. */
export function clampSlice(dim: number, start: number, end: number, step: number): SliceRange & { length: number } {
  let s = start < 0 ? start + dim : start;
  let e = end < 0 ? end + dim : end;
  if (step > 0) {
    s = Math.min(Math.max(s, 0), dim);
    e = Math.min(Math.max(e, 0), dim);
  } else {
    s = Math.min(Math.max(s, 0), dim - 1);
    e = Math.min(Math.max(e, -1), dim - 1);
  }
  return { start: s, end: e, step, length: Math.max(0, Math.ceil((e - s) / step)) };
}

function readSliceParams(ctx: ShapeContext, rank: number) {
  let starts: readonly number[] | undefined;
  let ends: readonly number[] | undefined;
  let axes: readonly number[] | undefined;
  let steps: readonly number[] | undefined;
  if (ctx.opset < 10) {
    starts = intsAttribute(ctx.node, 'starts');
    ends = intsAttribute(ctx.node, 'ends');
    axes = intsAttribute(ctx.node, 'axes');
  } else {
    starts = numericValues(ctx, 1);
    ends = numericValues(ctx, 2);
    if (ctx.hasInput(3)) axes = numericValues(ctx, 3) ?? [];
    if (ctx.hasInput(4)) steps = numericValues(ctx, 4) ?? [];
  }
  // Anything computed at run time leaves the sliced sizes unknown.
  if (starts === undefined || ends === undefined || axes?.length === 0 || steps?.length === 0) return undefined;
  if (starts.length !== ends.length) ctx.fail(`starts [${starts.join(',')}] and ends [${ends.join(',')}] differ in length`);
  axes = (axes ?? starts.map((_, i) => i)).map((a) => normalizeAxis(ctx, a, rank));
  steps = steps ?? starts.map(() => 1);
  if (steps.some((s) => s === 0)) ctx.fail('steps must not be 0');
  return { starts, ends, axes, steps };
}

export const sliceShapeFn: ShapeFunction = (ctx) => {
  const x = ctx.shape(0);
  const dtype = ctx.input(0).dtype;
  const params = readSliceParams(ctx, x.length);
  if (params === undefined) {
    return [{ dtype, shape: x.map((_, a) => opaqueDim(`${ctx.node.outputs[0]}[${a}]`)) }];
  }
  const out = [...x];
  const ranges = new Map<number, SliceRange>();
  params.axes.forEach((axis, i) => {
    const dim = x[axis];
    const [start, end, step] = [params.starts[i], params.ends[i], params.steps[i]];
    if (typeof dim === 'number') {
      const range = clampSlice(dim, start, end, step);
      out[axis] = range.length;
      ranges.set(axis, range);
    } else if (!(start === 0 && step === 1 && end >= Number.MAX_SAFE_INTEGER)) {
      out[axis] = opaqueDim(`slice(${dim},${start},${end},${step})`);
    }
  });
  const values = ctx.values(0);
  const range = ranges.get(0);
  if (values !== undefined && x.length === 1 && (range !== undefined || !params.axes.includes(0))) {
    const picked: Dim[] = [];
    if (range === undefined) picked.push(...values);
    else for (let i = range.start; range.step > 0 ? i < range.end : i > range.end; i += range.step) picked.push(values[i]);
    return [{ dtype, shape: out, value: picked }];
  }
  return [{ dtype, shape: out }];
};

export const gatherShapeFn: ShapeFunction = (ctx) => {
  const data = ctx.shape(0);
  const indices = ctx.shape(1);
  const axis = normalizeAxis(ctx, intAttribute(ctx.node, 'axis', 0), data.length);
  const shape = [...data.slice(0, axis), ...indices, ...data.slice(axis + 1)];
  const result = { dtype: ctx.input(0).dtype, shape };
  const values = ctx.values(0);
  const picks = numericValues(ctx, 1);
  if (values === undefined || picks === undefined || data.length !== 1) return [result];
  const length = values.length;
  if (picks.some((p) => p < -length || p >= length)) ctx.fail(`indices [${picks.join(',')}] are out of range for ${length} values`);
  return [{ ...result, value: picks.map((p) => values[p < 0 ? p + length : p]) }];
};

export const padShapeFn: ShapeFunction = (ctx) => {
  const x = ctx.shape(0);
  const rank = x.length;
  const pads = ctx.opset < 11 ? (intsAttribute(ctx.node, 'pads') ?? ctx.fail('attribute pads is required')) : numericValues(ctx, 1);
  const dtype = ctx.input(0).dtype;
  if (pads === undefined) return [{ dtype, shape: x.map((_, a) => opaqueDim(`${ctx.node.outputs[0]}[${a}]`)) }];
  const axes = ctx.opset >= 18 && ctx.hasInput(3)
    ? (numericValues(ctx, 3) ?? ctx.fail('input 3 (axes) must be a constant')).map((a) => normalizeAxis(ctx, a, rank))
    : x.map((_, i) => i);
  if (pads.length !== axes.length * 2) ctx.fail(`pads has ${pads.length} values, expected ${axes.length * 2} for input ${formatShape(x)}`);
  const out = [...x];
  axes.forEach((axis, i) => {
    const padded = addDims(out[axis], pads[i] + pads[i + axes.length]);
    if (typeof padded === 'number' && padded < 0) ctx.fail(`pads [${pads.join(',')}] remove more than axis ${axis} holds`);
    out[axis] = padded;
  });
  return [{ dtype, shape: out }];
};

export const shapeOpShapeFn: ShapeFunction = (ctx) => {
  const input = ctx.input(0);
  if (input.shape === undefined) return [{ dtype: 'int64', shape: [opaqueDim(`rank(${ctx.node.inputs[0]})`)] }];
  const rank = input.shape.length;
  // Opset 15 added start/end (clamped like Python slicing).
  const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + rank : v, 0), rank);
  const start = clamp(intAttribute(ctx.node, 'start', 0));
  const end = clamp(intAttribute(ctx.node, 'end', rank));
  const value = input.shape.slice(start, Math.max(start, end));
  return [{ dtype: 'int64', shape: [value.length], value }];
};
