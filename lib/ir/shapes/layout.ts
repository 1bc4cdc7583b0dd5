// Shapes of ops that rearrange elements without computing: Flatten, Reshape, Transpose,
// Squeeze, Unsqueeze, Concat. Small integer values pass through, for shape arithmetic.

import { intAttribute, intsAttribute } from '../attributes';
import { addDims, dimProduct, divideDims, opaqueDim } from '../symbolic-dims';
import type { InferredValue, ShapeContext, ShapeFunction } from '../shape-context';
import { formatShape, normalizeAxis, numericValues } from '../shape-context';
import type { Dim, Shape } from '../types';

function withValue(result: InferredValue, value: readonly Dim[] | undefined): InferredValue {
  return value === undefined ? result : { ...result, value };
}

export const flattenShapeFn: ShapeFunction = (ctx) => {
  const x = ctx.shape(0);
  let axis = intAttribute(ctx.node, 'axis', 1);
  if (axis < -x.length || axis > x.length) ctx.fail(`axis ${axis} is out of range for rank ${x.length}`);
  if (axis < 0) axis += x.length;
  return [{ dtype: ctx.input(0).dtype, shape: [dimProduct(x.slice(0, axis)), dimProduct(x.slice(axis))] }];
};

/** Resolve Reshape's target: 0 copies the input dim (unless allowzero), one -1 is inferred. */
export function resolveReshape(ctx: ShapeContext, input: Shape, target: readonly Dim[], allowZero: boolean): Dim[] {
  const out: Dim[] = target.map((d, i) => {
    if (d === 0 && !allowZero) {
      if (i >= input.length) ctx.fail(`target dim ${i} is 0 (copy) but the input ${formatShape(input)} has no dim ${i}`);
      return input[i];
    }
    if (typeof d === 'number' && d < -1) ctx.fail(`target shape ${formatShape(target)} has an invalid dim ${d}`);
    return d;
  });
  const inferred = out.filter((d) => d === -1).length;
  if (inferred > 1) ctx.fail(`target shape ${formatShape(target)} has more than one -1`);
  const total = dimProduct(input);
  if (inferred === 1) {
    const known = dimProduct(out.filter((d) => d !== -1));
    const at = out.indexOf(-1);
    const quotient = known === 0 ? undefined : divideDims(total, known);
    if (quotient === undefined && typeof total === 'number' && typeof known === 'number') {
      ctx.fail(`cannot reshape ${formatShape(input)} (${total} elements) into ${formatShape(target)}`);
    }
    out[at] = quotient ?? opaqueDim(`${ctx.node.outputs[0]}[${at}]`);
  } else {
    const product = dimProduct(out);
    if (typeof total === 'number' && typeof product === 'number' && total !== product) {
      ctx.fail(`cannot reshape ${formatShape(input)} (${total} elements) into ${formatShape(target)} (${product} elements)`);
    }
  }
  return out;
}

export const reshapeShapeFn: ShapeFunction = (ctx) => {
  const input = ctx.input(0);
  const x = ctx.shape(0);
  const targetShape = ctx.shape(1);
  if (targetShape.length !== 1) ctx.fail(`the shape input must be 1-D but is ${formatShape(targetShape)}`);
  const target = ctx.values(1);
  if (target === undefined) {
    // Only the rank is known: name each dim after the output so that equal outputs stay equal.
    const rank = targetShape[0];
    if (typeof rank !== 'number') return [{ dtype: input.dtype }];
    return [{ dtype: input.dtype, shape: Array.from({ length: rank }, (_, i) => opaqueDim(`${ctx.node.outputs[0]}[${i}]`)) }];
  }
  const allowZero = intAttribute(ctx.node, 'allowzero', 0) !== 0;
  return [withValue({ dtype: input.dtype, shape: resolveReshape(ctx, x, target, allowZero) }, ctx.values(0))];
};

export const transposeShapeFn: ShapeFunction = (ctx) => {
  const x = ctx.shape(0);
  const perm = intsAttribute(ctx.node, 'perm') ?? x.map((_, i) => x.length - 1 - i);
  const sorted = [...perm].sort((a, b) => a - b);
  if (perm.length !== x.length || sorted.some((p, i) => p !== i)) ctx.fail(`perm [${perm.join(',')}] is not a permutation of the ${x.length} axes`);
  return [{ dtype: ctx.input(0).dtype, shape: perm.map((p) => x[p]) }];
};

/**
 * Axes from the attribute (before `inputFromOpset`) or from input 1 (from it on): 'absent' when
 * not given, 'runtime' when computed by the graph (then only the run knows the output shape).
 */
export function readAxes(ctx: ShapeContext, inputFromOpset: number, inputIndex = 1): readonly number[] | 'absent' | 'runtime' {
  if (ctx.opset < inputFromOpset) return intsAttribute(ctx.node, 'axes') ?? 'absent';
  if (!ctx.hasInput(inputIndex)) return 'absent';
  return numericValues(ctx, inputIndex) ?? 'runtime';
}

export const squeezeShapeFn: ShapeFunction = (ctx) => {
  const x = ctx.shape(0);
  const dtype = ctx.input(0).dtype;
  const axes = readAxes(ctx, 13);
  if (axes === 'runtime') return [{ dtype }];
  let keep: boolean[];
  if (axes === 'absent') {
    if (x.some((d) => typeof d !== 'number')) return [{ dtype }];
    keep = x.map((d) => d !== 1);
  } else {
    keep = x.map(() => true);
    for (const axis of axes) {
      const a = normalizeAxis(ctx, axis, x.length);
      if (typeof x[a] === 'number' && x[a] !== 1) ctx.fail(`cannot squeeze axis ${axis} of size ${x[a]}`);
      keep[a] = false;
    }
  }
  return [withValue({ dtype, shape: x.filter((_, i) => keep[i]) }, ctx.values(0))];
};

export const unsqueezeShapeFn: ShapeFunction = (ctx) => {
  const x = ctx.shape(0);
  const dtype = ctx.input(0).dtype;
  const axes = readAxes(ctx, 13);
  if (axes === 'absent') return ctx.fail('axes are required');
  if (axes === 'runtime') return [{ dtype }];
  const rank = x.length + axes.length;
  const inserted = new Set(axes.map((a) => normalizeAxis(ctx, a, rank)));
  if (inserted.size !== axes.length) ctx.fail(`axes [${axes.join(',')}] repeat an axis`);
  const out: Dim[] = [];
  let next = 0;
  for (let i = 0; i < rank; i++) out.push(inserted.has(i) ? 1 : x[next++]);
  return [withValue({ dtype, shape: out }, ctx.values(0))];
};

export const concatShapeFn: ShapeFunction = (ctx) => {
  const first = ctx.shape(0);
  // Concat-1 defaulted axis to 1; from opset 4 it is required.
  const axis = normalizeAxis(ctx, ctx.opset < 4 ? intAttribute(ctx.node, 'axis', 1) : intAttribute(ctx.node, 'axis'), first.length);
  const out = [...first];
  const values: Dim[] = [];
  let valuesKnown = first.length === 1;
  for (let i = 0; i < ctx.inputCount; i++) {
    const shape = ctx.shape(i);
    if (shape.length !== first.length) ctx.fail(`input ${i} ${formatShape(shape)} has a different rank than input 0 ${formatShape(first)}`);
    if (i > 0) out[axis] = addDims(out[axis], shape[axis]);
    shape.forEach((d, a) => {
      if (a !== axis && typeof d === 'number' && typeof out[a] === 'number' && d !== out[a]) {
        ctx.fail(`input ${i} ${formatShape(shape)} differs from ${formatShape(first)} outside axis ${axis}`);
      }
    });
    const v = ctx.values(i);
    if (v === undefined) valuesKnown = false;
    else values.push(...v);
  }
  return [withValue({ dtype: ctx.input(0).dtype, shape: out }, valuesKnown ? values : undefined)];
};
