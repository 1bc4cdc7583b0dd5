// Shapes of matrix products: MatMul (numpy: batched, broadcast, 1-D promotion), Gemm, and the
// quantized variants.

import { intAttribute } from '../attributes';
import type { DataType } from '../dtype';
import type { ShapeContext, ShapeFunction } from '../shape-context';
import { formatShape } from '../shape-context';
import type { Dim, Shape } from '../types';
import { broadcastShapes } from './elementwise';

function innerDimsAgree(a: Dim, b: Dim): boolean {
  return a === b || typeof a !== 'number' || typeof b !== 'number';
}

export function matmulOutputShape(ctx: ShapeContext, a: Shape, b: Shape): Dim[] {
  if (a.length === 0 || b.length === 0) ctx.fail('MatMul inputs must not be scalars');
  const a2 = a.length === 1 ? [1, a[0]] : a;
  const b2 = b.length === 1 ? [b[0], 1] : b;
  const k1 = a2[a2.length - 1];
  const k2 = b2[b2.length - 2];
  if (!innerDimsAgree(k1, k2)) ctx.fail(`inner dimensions differ: ${formatShape(a)} x ${formatShape(b)}`);
  const batch = broadcastShapes(a2.slice(0, -2), b2.slice(0, -2));
  if (batch === undefined) ctx.fail(`cannot broadcast the batch dims of ${formatShape(a)} and ${formatShape(b)}`);
  const out: Dim[] = [...batch];
  if (a.length !== 1) out.push(a2[a2.length - 2]);
  if (b.length !== 1) out.push(b2[b2.length - 1]);
  return out;
}

function matmulLike(aIndex: number, bIndex: number, outDtype: (ctx: ShapeContext) => DataType): ShapeFunction {
  return (ctx) => [{ dtype: outDtype(ctx), shape: matmulOutputShape(ctx, ctx.shape(aIndex), ctx.shape(bIndex)) }];
}

export const matmulShapeFn = matmulLike(0, 1, (ctx) => ctx.input(0).dtype);
export const matmulIntegerShapeFn = matmulLike(0, 1, () => 'int32');
/** QLinearMatMul(a, a_scale, a_zp, b, b_scale, b_zp, y_scale, y_zp): y has y_zero_point's type. */
export const qlinearMatmulShapeFn = matmulLike(0, 3, (ctx) => ctx.input(7).dtype);

export const gemmShapeFn: ShapeFunction = (ctx) => {
  const a = ctx.shape(0);
  const b = ctx.shape(1);
  if (a.length !== 2 || b.length !== 2) ctx.fail(`Gemm needs 2-D inputs but got ${formatShape(a)} and ${formatShape(b)}`);
  const transA = intAttribute(ctx.node, 'transA', 0) !== 0;
  const transB = intAttribute(ctx.node, 'transB', 0) !== 0;
  const [m, k1] = transA ? [a[1], a[0]] : [a[0], a[1]];
  const [k2, n] = transB ? [b[1], b[0]] : [b[0], b[1]];
  if (!innerDimsAgree(k1, k2)) ctx.fail(`inner dimensions differ: A ${formatShape(a)} (transA=${+transA}) x B ${formatShape(b)} (transB=${+transB})`);
  const out: Dim[] = [m, n];
  if (ctx.hasInput(2)) {
    const c = ctx.shape(2);
    const broadcast = broadcastShapes(out, c);
    if (broadcast === undefined || broadcast.length !== 2) ctx.fail(`C ${formatShape(c)} does not broadcast to ${formatShape(out)}`);
  }
  return [{ dtype: ctx.input(0).dtype, shape: out }];
};
