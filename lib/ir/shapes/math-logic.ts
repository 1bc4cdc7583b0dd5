// Shapes of the reductions, Cast, comparisons, Where and the ops that build tensors from shape
// values (ConstantOfShape, Range, Expand). Element-type limits the executor has (Cast to
// float16, say) are refused here with ERR_DTYPE, so the loader names them.

import { TernionError } from '../../errors';
import { floatsAttribute, intAttribute, intsAttribute, tensorAttribute } from '../attributes';
import type { DataType } from '../dtype';
import { isIntegerType, toNumberArray } from '../dtype';
import type { InferredValue, ShapeFunction } from '../shape-context';
import { normalizeAxis, numericValues } from '../shape-context';
import { opaqueDim } from '../symbolic-dims';
import type { Dim } from '../types';
import { broadcastAll } from './elementwise';
import { readAxes } from './layout';

/** ReduceMean/Max/Min (axes an input from opset 18) and ReduceSum (from 13). */
export function reduceShapeFn(axesInputFrom: number): ShapeFunction {
  return (ctx) => {
    const x = ctx.shape(0);
    const dtype = ctx.input(0).dtype;
    const keepdims = intAttribute(ctx.node, 'keepdims', 1) !== 0;
    const noop = intAttribute(ctx.node, 'noop_with_empty_axes', 0) !== 0;
    const axes = readAxes(ctx, axesInputFrom);
    if (axes === 'runtime') return [{ dtype }];
    const list = axes === 'absent' ? [] : axes;
    if (list.length === 0 && noop) return [{ dtype, shape: x }];
    const reduced = new Array<boolean>(x.length).fill(list.length === 0);
    for (const a of list) reduced[normalizeAxis(ctx, a, x.length, 'axes')] = true;
    const shape: Dim[] = [];
    x.forEach((d, i) => {
      if (!reduced[i]) shape.push(d);
      else if (keepdims) shape.push(1);
    });
    return [{ dtype, shape }];
  };
}

/** The element types the executor holds, by ONNX TensorProto code (Cast's `to`, EyeLike's `dtype`). */
export const CAST_TARGETS: Readonly<Record<number, DataType>> = { 1: 'float32', 2: 'uint8', 3: 'int8', 6: 'int32', 7: 'int64', 9: 'bool' };

/** Cast: the `to` type, when the executor holds it; integer values pass through (shape math). */
export const castShapeFn: ShapeFunction = (ctx) => {
  const to = intAttribute(ctx.node, 'to');
  const dtype = CAST_TARGETS[to];
  if (dtype === undefined) {
    throw new TernionError('ERR_DTYPE', `Node "${ctx.node.name}" (Cast): casting to ONNX element type ${to} is not supported (float32, int32, int64, int8, uint8 and bool are)`);
  }
  return castTo(ctx, dtype, 'Cast');
};

/** CastLike (opset 15): Cast to the element type of input 1, whose values are not read. */
export const castLikeShapeFn: ShapeFunction = (ctx) => {
  const dtype = ctx.input(1).dtype;
  if (!Object.values(CAST_TARGETS).includes(dtype)) {
    throw new TernionError('ERR_DTYPE', `Node "${ctx.node.name}" (CastLike): casting to ${dtype} is not supported (float32, int32, int64, int8, uint8 and bool are)`);
  }
  return castTo(ctx, dtype, 'CastLike');
};

function castTo(ctx: Parameters<ShapeFunction>[0], dtype: DataType, op: string): ReturnType<ShapeFunction> {
  const from = ctx.input(0).dtype;
  if (!Object.values(CAST_TARGETS).includes(from)) {
    throw new TernionError('ERR_DTYPE', `Node "${ctx.node.name}" (${op}): casting from ${from} is not supported (float32, int32, int64, int8, uint8 and bool are)`);
  }
  // Integer values pass through to integer types (shape arithmetic), and to float32 when all are
  // known numbers (exact below 2^24): Range(0, Cast(n), 1) then still has a known length.
  const values = ctx.values(0);
  const numeric = values !== undefined && values.every((v) => typeof v === 'number' && Math.abs(v) < 2 ** 24);
  const keep = values !== undefined && isIntegerType(from) && (dtype === 'int64' || dtype === 'int32' || (dtype === 'float32' && numeric));
  return [{ dtype, shape: ctx.shape(0), ...(keep ? { value: values } : {}) }];
}

/** Equal, Less, Greater, ...: broadcast, bool out. */
export const compareShapeFn: ShapeFunction = (ctx) => {
  if (ctx.input(0).dtype !== ctx.input(1).dtype) ctx.fail(`inputs have different element types ${ctx.input(0).dtype} and ${ctx.input(1).dtype}`);
  return [{ dtype: 'bool', shape: broadcastAll(ctx, [ctx.shape(0), ctx.shape(1)]) }];
};

/** Where(condition, X, Y): X's type, the three shapes broadcast. */
export const whereShapeFn: ShapeFunction = (ctx) => {
  if (ctx.input(0).dtype !== 'bool') ctx.fail(`the condition is ${ctx.input(0).dtype}, not bool`);
  if (ctx.input(1).dtype !== ctx.input(2).dtype) ctx.fail(`X is ${ctx.input(1).dtype} but Y is ${ctx.input(2).dtype}`);
  return [{ dtype: ctx.input(1).dtype, shape: broadcastAll(ctx, [ctx.shape(0), ctx.shape(1), ctx.shape(2)]) }];
};

/** Pow: X's type, broadcast against Y. */
export const powShapeFn: ShapeFunction = (ctx) => [{ dtype: ctx.input(0).dtype, shape: broadcastAll(ctx, [ctx.shape(0), ctx.shape(1)]) }];

/** Mod: one element type, broadcast. */
export const binaryBroadcastShapeFn: ShapeFunction = (ctx) => {
  if (ctx.input(0).dtype !== ctx.input(1).dtype) ctx.fail(`inputs have different element types ${ctx.input(0).dtype} and ${ctx.input(1).dtype}`);
  return [{ dtype: ctx.input(0).dtype, shape: broadcastAll(ctx, [ctx.shape(0), ctx.shape(1)]) }];
};

/** ConstantOfShape: the dims are input 0's values (symbolic ones too); the type is `value`'s. */
export const constantOfShapeShapeFn: ShapeFunction = (ctx) => {
  const value = tensorAttribute(ctx.node, 'value');
  const dtype: DataType = value?.dtype ?? 'float32';
  if (value && value.data.length !== 1) ctx.fail('value must hold exactly one element');
  const dims = ctx.values(0);
  if (dims !== undefined) {
    const trackable = isIntegerType(dtype) && dims.length <= 1 && value !== undefined;
    const fill = trackable ? toNumberArray(value.data)[0] : undefined;
    const result: InferredValue = { dtype, shape: dims };
    if (trackable && typeof dims[0] === 'number' && dims[0] <= 64) return [{ ...result, value: new Array<Dim>(dims.length ? dims[0] : 1).fill(fill as number) }];
    return [result];
  }
  const rank = ctx.shape(0)[0];
  if (typeof rank !== 'number') return [{ dtype }];
  return [{ dtype, shape: Array.from({ length: rank }, (_, i) => opaqueDim(`${ctx.node.outputs[0]}[${i}]`)) }];
};

/** Range: one dim, known when start, limit and delta are constants. */
export const rangeShapeFn: ShapeFunction = (ctx) => {
  const dtype = ctx.input(0).dtype;
  const read = (i: number) => {
    const c = ctx.constant(i);
    return c && c.data.length === 1 ? Number(c.data[0]) : numericValues(ctx, i)?.[0];
  };
  const [start, limit, delta] = [read(0), read(1), read(2)];
  if (start === undefined || limit === undefined || delta === undefined || delta === 0) {
    return [{ dtype, shape: [opaqueDim(`${ctx.node.outputs[0]}[0]`)] }];
  }
  const length = Math.max(Math.ceil((limit - start) / delta), 0);
  // Small integer ranges are tracked (axes lists built with Range stay known).
  if (isIntegerType(dtype) && length <= 64) return [{ dtype, shape: [length], value: Array.from({ length }, (_, i) => start + i * delta) }];
  return [{ dtype, shape: [length] }];
};

/** Expand: X broadcast against the shape input's values (bidirectionally). */
export const expandShapeFn: ShapeFunction = (ctx) => {
  const dtype = ctx.input(0).dtype;
  const x = ctx.shape(0);
  const target = ctx.values(1);
  if (target !== undefined) return [{ dtype, shape: broadcastAll(ctx, [x, target]) }];
  const length = ctx.shape(1)[0];
  if (typeof length !== 'number') return [{ dtype }];
  const rank = Math.max(length, x.length);
  return [{ dtype, shape: Array.from({ length: rank }, (_, i) => opaqueDim(`${ctx.node.outputs[0]}[${i}]`)) }];
};

/**
 * Resize (scales input 1 before opset 11, else scales 2 / sizes 3; `axes` from 18) and Upsample
 * (scales attribute before 9, input 1 from 9): floor(dim * scale), or the sizes.
 */
export function resizeShapeFn(upsample: boolean): ShapeFunction {
  return (ctx) => {
    const x = ctx.shape(0);
    const dtype = ctx.input(0).dtype;
    const axesAttr = intsAttribute(ctx.node, 'axes');
    const axes = axesAttr ? axesAttr.map((a) => normalizeAxis(ctx, a, x.length, 'axes')) : x.map((_, i) => i);
    const unknown = (): InferredValue[] => [{ dtype, shape: x.map((d, i) => (axes.includes(i) ? opaqueDim(`${ctx.node.outputs[0]}[${i}]`) : d)) }];
    let scales: number[] | undefined;
    if (upsample && ctx.opset < 9) scales = [...(floatsAttribute(ctx.node, 'scales') ?? [])];
    else {
      const at = upsample || ctx.opset < 11 ? 1 : 2;
      const c = ctx.hasInput(at) ? ctx.constant(at) : undefined;
      if (c && c.data.length > 0) scales = Array.from(c.data as Float32Array, Number);
      else if (ctx.hasInput(at) && !c && !ctx.hasInput(3)) return unknown();
    }
    const out = [...x];
    if (scales && scales.length > 0) {
      if (scales.length !== axes.length) ctx.fail(`scales has ${scales.length} values for ${axes.length} axes`);
      axes.forEach((a, i) => {
        const d = x[a];
        if (typeof d === 'number') out[a] = Math.floor(d * scales![i]);
        else if (scales![i] !== 1) out[a] = opaqueDim(`${ctx.node.outputs[0]}[${a}]`);
      });
      return [{ dtype, shape: out }];
    }
    if (!upsample && ctx.opset >= 11 && ctx.hasInput(3)) {
      const sizes = ctx.values(3);
      if (sizes === undefined) return unknown();
      if (sizes.length !== axes.length) ctx.fail(`sizes has ${sizes.length} values for ${axes.length} axes`);
      axes.forEach((a, i) => { out[a] = sizes[i]; });
      return [{ dtype, shape: out }];
    }
    return unknown();
  };
}

/** Min, Max, Sum, Mean: every input broadcast together. */
export const variadicShapeFn: ShapeFunction = (ctx) => {
  const shapes = [];
  for (let i = 0; i < ctx.inputCount; i++) {
    if (ctx.input(i).dtype !== ctx.input(0).dtype) ctx.fail(`input ${i} is ${ctx.input(i).dtype} but input 0 is ${ctx.input(0).dtype}`);
    shapes.push(ctx.shape(i));
  }
  return [{ dtype: ctx.input(0).dtype, shape: broadcastAll(ctx, shapes) }];
};

/** ArgMax / ArgMin: int64, the axis dropped or kept as 1. */
export const argExtremeShapeFn: ShapeFunction = (ctx) => {
  const x = ctx.shape(0);
  const axis = normalizeAxis(ctx, intAttribute(ctx.node, 'axis', 0), x.length);
  const keepdims = intAttribute(ctx.node, 'keepdims', 1) !== 0;
  return [{ dtype: 'int64', shape: keepdims ? x.map((d, i) => (i === axis ? 1 : d)) : x.filter((_, i) => i !== axis) }];
};

/** PRelu: the slope broadcasts to X, whose shape the output keeps. */
export const preluShapeFn: ShapeFunction = (ctx) => {
  const x = ctx.shape(0);
  const both = broadcastAll(ctx, [x, ctx.shape(1)]);
  if (both.length !== x.length || both.some((d, i) => typeof d === 'number' && typeof x[i] === 'number' && d !== x[i])) ctx.fail('the slope does not broadcast to X');
  return [{ dtype: ctx.input(0).dtype, shape: x }];
};

/** Tile: each dim times its repeat (known when the repeats are). */
export const tileShapeFn: ShapeFunction = (ctx) => {
  const x = ctx.shape(0);
  const dtype = ctx.input(0).dtype;
  const reps = numericValues(ctx, 1);
  if (reps === undefined) return [{ dtype, shape: x.map((_, i) => opaqueDim(`${ctx.node.outputs[0]}[${i}]`)) }];
  if (reps.length !== x.length) ctx.fail(`repeats has ${reps.length} values for rank ${x.length}`);
  return [{ dtype, shape: x.map((d, i) => (reps[i] === 1 ? d : typeof d === 'number' ? d * reps[i] : opaqueDim(`${ctx.node.outputs[0]}[${i}]`))) }];
};

/** DepthToSpace / SpaceToDepth on [N, C, H, W]. */
export function spaceDepthShapeFn(toSpace: boolean): ShapeFunction {
  return (ctx) => {
    const x = ctx.shape(0);
    if (x.length !== 4) ctx.fail(`input must be 4-D [N, C, H, W]`);
    const b = intAttribute(ctx.node, 'blocksize');
    const scale = (d: Dim, f: number, divide: boolean, i: number): Dim => {
      if (typeof d !== 'number') return opaqueDim(`${ctx.node.outputs[0]}[${i}]`);
      if (divide && d % f !== 0) ctx.fail(`dim ${i} (${d}) is not a multiple of ${f}`);
      return divide ? d / f : d * f;
    };
    const shape = toSpace
      ? [x[0], scale(x[1], b * b, true, 1), scale(x[2], b, false, 2), scale(x[3], b, false, 3)]
      : [x[0], scale(x[1], b * b, false, 1), scale(x[2], b, true, 2), scale(x[3], b, true, 3)];
    return [{ dtype: ctx.input(0).dtype, shape }];
  };
}

/** GatherElements: the indices' shape, the data's type. */
export const gatherElementsShapeFn: ShapeFunction = (ctx) => [{ dtype: ctx.input(0).dtype, shape: ctx.shape(1) }];

/** TopK: values and int64 indices, the axis cut to K. */
export const topKShapeFn: ShapeFunction = (ctx) => {
  const x = ctx.shape(0);
  const axis = normalizeAxis(ctx, intAttribute(ctx.node, 'axis', -1), x.length);
  const k = numericValues(ctx, 1)?.[0];
  const shape = x.map((d, i) => (i !== axis ? d : k ?? opaqueDim(`${ctx.node.outputs[0]}[${i}]`)));
  return [{ dtype: ctx.input(0).dtype, shape }, { dtype: 'int64', shape }];
};

/** Size: an int64 scalar, the element count (tracked when every dim is known). */
export const sizeShapeFn: ShapeFunction = (ctx) => {
  const x = ctx.shape(0);
  const n = x.every((d) => typeof d === 'number') ? (x as number[]).reduce((a, b) => a * b, 1) : undefined;
  return [{ dtype: 'int64', shape: [], ...(n !== undefined ? { value: [n] } : {}) }];
};

/** Neg: integer values stay tracked, negated (shape arithmetic: the last -k axes). */
export const negShapeFn: ShapeFunction = (ctx) => {
  const dtype = ctx.input(0).dtype;
  const values = numericValues(ctx, 0);
  return [{ dtype, shape: ctx.shape(0), ...(values !== undefined && isIntegerType(dtype) ? { value: values.map((v) => -v) } : {}) }];
};
