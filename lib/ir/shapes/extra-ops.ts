// Shapes of the less common ops: the float-only math (trigonometric, IsNaN / IsInf, Hardmax,
// ReduceLogSum, MeanVarianceNormalization), Shrink, EyeLike, and the indexing ops (GatherND,
// ScatterElements / Scatter, OneHot, NonZero, Compress, ReverseSequence). Element types the
// executor does not compute these ops in are refused here with ERR_DTYPE, so a model fails at
// load rather than at its first run. NonZero's and Compress's output sizes depend on their
// inputs' values: unless those are constants, the dim is an opaque symbol named after the output
// ("(y[1])"), which later ops carry like any other run-time dim.

import { TernionError } from '../../errors';
import { hasAttribute, intAttribute, intsAttribute } from '../attributes';
import type { DataType } from '../dtype';
import { toNumberArray } from '../dtype';
import type { ShapeContext, ShapeFunction } from '../shape-context';
import { formatShape, normalizeAxis, numericValues } from '../shape-context';
import { dimProduct, opaqueDim } from '../symbolic-dims';
import type { Dim } from '../types';
import { CAST_TARGETS } from './math-logic';

const INDEX_TYPES: readonly DataType[] = ['int64', 'int32'];
const NUMBER_TYPES: readonly DataType[] = ['float32', 'int32', 'int64', 'int8', 'uint8'];

/** Input i's element type, or ERR_DTYPE naming the node, the input and the types it takes. */
export function requireInputType(ctx: ShapeContext, i: number, allowed: readonly DataType[], what: string): DataType {
  const dtype = ctx.input(i).dtype;
  if (!allowed.includes(dtype)) {
    throw new TernionError('ERR_DTYPE', `Node "${ctx.node.name}" (${ctx.node.opType}): ${what} is ${dtype}, but ${ctx.node.opType} takes ${allowed.join(' or ')} here`);
  }
  return dtype;
}

/** A shape function whose op computes in float32 only: input 0 is checked first. */
export function float32Only(shapeFn: ShapeFunction): ShapeFunction {
  return (ctx) => {
    requireInputType(ctx, 0, ['float32'], 'input 0');
    return shapeFn(ctx);
  };
}

/** IsNaN / IsInf: float32 in, bool out, one shape. */
export const floatClassShapeFn: ShapeFunction = (ctx) => {
  requireInputType(ctx, 0, ['float32'], 'input 0');
  return [{ dtype: 'bool', shape: ctx.shape(0) }];
};

/** Shrink: any number type, kept. */
export const shrinkShapeFn: ShapeFunction = (ctx) => [{ dtype: requireInputType(ctx, 0, NUMBER_TYPES, 'input 0'), shape: ctx.shape(0) }];

/** MeanVarianceNormalization: float32, its axes (default [0, 2, 3]) within the input's rank. */
export const mvnShapeFn: ShapeFunction = (ctx) => {
  requireInputType(ctx, 0, ['float32'], 'X');
  const x = ctx.shape(0);
  const axes = (intsAttribute(ctx.node, 'axes') ?? [0, 2, 3]).map((a) => normalizeAxis(ctx, a, x.length, 'axes'));
  if (new Set(axes).size !== axes.length) ctx.fail(`axes [${axes.join(',')}] repeat an axis`);
  return [{ dtype: 'float32', shape: x }];
};

/** EyeLike: 2-D, the input's shape, `dtype` (an ONNX type code) or the input's type. */
export const eyeLikeShapeFn: ShapeFunction = (ctx) => {
  const x = ctx.shape(0);
  if (x.length !== 2) ctx.fail(`input must be 2-D, got ${formatShape(x)}`);
  if (!hasAttribute(ctx.node, 'dtype')) return [{ dtype: ctx.input(0).dtype, shape: x }];
  const code = intAttribute(ctx.node, 'dtype');
  const dtype = CAST_TARGETS[code];
  if (dtype === undefined) {
    throw new TernionError('ERR_DTYPE', `Node "${ctx.node.name}" (EyeLike): dtype ${code} is not supported (float32, int32, int64, int8, uint8 and bool are)`);
  }
  return [{ dtype, shape: x }];
};

/** GatherND: indices.shape[:-1] + data.shape[batch_dims + m:] for index tuples of m values. */
export const gatherNDShapeFn: ShapeFunction = (ctx) => {
  requireInputType(ctx, 1, INDEX_TYPES, 'indices');
  const data = ctx.shape(0);
  const indices = ctx.shape(1);
  const b = intAttribute(ctx.node, 'batch_dims', 0);
  const dtype = ctx.input(0).dtype;
  if (data.length < 1 || indices.length < 1) ctx.fail(`data ${formatShape(data)} and indices ${formatShape(indices)} must both have rank >= 1`);
  if (b < 0 || b >= Math.min(data.length, indices.length)) ctx.fail(`batch_dims ${b} must be in [0, ${Math.min(data.length, indices.length)})`);
  const m = indices[indices.length - 1];
  if (typeof m !== 'number') return [{ dtype }];  // the tuple length decides the rank
  if (m < 1 || m > data.length - b) ctx.fail(`index tuples of ${m} values do not fit data ${formatShape(data)} after ${b} batch dims`);
  for (let i = 0; i < b; i++) {
    if (typeof data[i] === 'number' && typeof indices[i] === 'number' && data[i] !== indices[i]) {
      ctx.fail(`data ${formatShape(data)} and indices ${formatShape(indices)} differ in batch axis ${i}`);
    }
  }
  return [{ dtype, shape: [...indices.slice(0, -1), ...data.slice(b + m)] }];
};

/** ScatterElements / Scatter: data's type and shape; indices and updates of data's rank. */
export const scatterElementsShapeFn: ShapeFunction = (ctx) => {
  requireInputType(ctx, 1, INDEX_TYPES, 'indices');
  const data = ctx.shape(0);
  const dtype = ctx.input(0).dtype;
  if (ctx.input(2).dtype !== dtype) {
    throw new TernionError('ERR_DTYPE', `Node "${ctx.node.name}" (${ctx.node.opType}): updates are ${ctx.input(2).dtype} but data is ${dtype}`);
  }
  normalizeAxis(ctx, intAttribute(ctx.node, 'axis', 0), data.length);
  const indices = ctx.shape(1);
  const updates = ctx.shape(2);
  if (indices.length !== data.length || updates.length !== data.length) {
    ctx.fail(`indices ${formatShape(indices)} and updates ${formatShape(updates)} must have the rank of data ${formatShape(data)}`);
  }
  return [{ dtype, shape: data }];
};

/** OneHot: indices' shape with depth classes inserted at `axis`; values' type. */
export const oneHotShapeFn: ShapeFunction = (ctx) => {
  requireInputType(ctx, 0, NUMBER_TYPES, 'indices');
  requireInputType(ctx, 1, NUMBER_TYPES, 'depth');
  const indices = ctx.shape(0);
  const axis = normalizeAxis(ctx, intAttribute(ctx.node, 'axis', -1), indices.length + 1);
  // depth is often a float constant, which value tracking (integers only) does not see.
  const constant = ctx.constant(1);
  const known = constant !== undefined ? toNumberArray(constant.data) : numericValues(ctx, 1);
  let depth: Dim = opaqueDim(`${ctx.node.outputs[0]}[${axis}]`);
  if (known !== undefined) {
    if (known.length !== 1) ctx.fail(`depth must hold one value, got ${known.length}`);
    depth = Math.trunc(known[0]);
    if (!(depth >= 1)) ctx.fail(`depth ${known[0]} must be a positive number of classes`);
  }
  const shape = [...indices];
  shape.splice(axis, 0, depth);
  return [{ dtype: ctx.input(2).dtype, shape }];
};

/** NonZero: int64 coordinates [rank (1 for a scalar), count], the count known only at run time. */
export const nonZeroShapeFn: ShapeFunction = (ctx) => {
  const x = ctx.shape(0);
  // A constant input gives the count now.
  const c = ctx.constant(0);
  const count: Dim = c !== undefined ? Array.from(c.data as ArrayLike<number | bigint>).filter((v) => v !== 0 && v !== 0n).length
    : opaqueDim(`${ctx.node.outputs[0]}[1]`);
  return [{ dtype: 'int64', shape: [Math.max(x.length, 1), count] }];
};

/** Compress: the kept slices along `axis` (the flattened input without one). */
export const compressShapeFn: ShapeFunction = (ctx) => {
  requireInputType(ctx, 1, ['bool'], 'condition');
  const x = ctx.shape(0);
  const condition = ctx.shape(1);
  if (condition.length !== 1) ctx.fail(`condition must be 1-D, got ${formatShape(condition)}`);
  const hasAxis = hasAttribute(ctx.node, 'axis');
  if (hasAxis && x.length === 0) ctx.fail('a scalar input has no axis to compress');
  const axis = hasAxis ? normalizeAxis(ctx, intAttribute(ctx.node, 'axis'), x.length) : 0;
  const length = hasAxis ? x[axis] : dimProduct(x);
  // A constant condition over a known length gives the count now; entries past the length are not read.
  const c = ctx.constant(1);
  const kept: Dim = c !== undefined && typeof length === 'number'
    ? Array.from(c.data as Uint8Array).slice(0, length).filter((v) => v !== 0).length
    : opaqueDim(`${ctx.node.outputs[0]}[${axis}]`);
  return [{ dtype: ctx.input(0).dtype, shape: hasAxis ? x.map((d, i) => (i === axis ? kept : d)) : [kept] }];
};

/** ReverseSequence: the input's shape; batch_axis and time_axis are 0 and 1, one each. */
export const reverseSequenceShapeFn: ShapeFunction = (ctx) => {
  requireInputType(ctx, 1, INDEX_TYPES, 'sequence_lens');
  const x = ctx.shape(0);
  const batchAxis = intAttribute(ctx.node, 'batch_axis', 1);
  const timeAxis = intAttribute(ctx.node, 'time_axis', 0);
  if (!((batchAxis === 0 && timeAxis === 1) || (batchAxis === 1 && timeAxis === 0))) {
    throw new TernionError('ERR_MODEL_FORMAT', `Node "${ctx.node.name}" (ReverseSequence): batch_axis ${batchAxis} and time_axis ${timeAxis} must be 0 and 1, one each`);
  }
  if (x.length < 2) ctx.fail(`input must have rank >= 2, got ${formatShape(x)}`);
  const lens = ctx.shape(1);
  if (lens.length !== 1) ctx.fail(`sequence_lens must be 1-D, got ${formatShape(lens)}`);
  if (typeof lens[0] === 'number' && typeof x[batchAxis] === 'number' && lens[0] !== x[batchAxis]) {
    ctx.fail(`sequence_lens ${formatShape(lens)} must hold one length per entry of batch axis ${batchAxis} of ${formatShape(x)}`);
  }
  return [{ dtype: ctx.input(0).dtype, shape: x }];
};
