// Shapes of elementwise ops: unary ops keep their input's type, binary ops broadcast (numpy rules).

import { isIntegerType } from '../dtype';
import { divideDims, multiplyDims, opaqueDim, addDims } from '../symbolic-dims';
import type { InferredValue, ShapeContext, ShapeFunction } from '../shape-context';
import { formatShape } from '../shape-context';
import type { Dim, Shape } from '../types';

/** Numpy broadcasting of two shapes; undefined when they are incompatible. */
export function broadcastShapes(a: Shape, b: Shape): Dim[] | undefined {
  const rank = Math.max(a.length, b.length);
  const out: Dim[] = new Array(rank);
  for (let i = 0; i < rank; i++) {
    const da = i < rank - a.length ? 1 : a[i - (rank - a.length)];
    const db = i < rank - b.length ? 1 : b[i - (rank - b.length)];
    if (da === db || db === 1) out[i] = da;
    else if (da === 1) out[i] = db;
    else if (typeof da === 'number' && typeof db === 'number') return undefined;
    // One side is symbolic: it must be 1 or equal to the other at run time, so the known side wins.
    else if (typeof da === 'number') out[i] = da;
    else if (typeof db === 'number') out[i] = db;
    else out[i] = opaqueDim(`broadcast(${da},${db})`);
  }
  return out;
}

export function broadcastAll(ctx: ShapeContext, shapes: readonly Shape[]): Dim[] {
  let out: Dim[] = [];
  for (const shape of shapes) {
    const next = broadcastShapes(out, shape);
    if (next === undefined) ctx.fail(`cannot broadcast shapes ${shapes.map(formatShape).join(' and ')}`);
    out = next;
  }
  return out;
}

/** Output 0 has the type of input 0 (Relu, Sigmoid, Clip, LeakyRelu, Softmax, ...). */
export const sameAsFirstInput: ShapeFunction = (ctx) => [{ dtype: ctx.input(0).dtype, shape: ctx.shape(0) }];

type BinaryArithmetic = 'Add' | 'Sub' | 'Mul' | 'Div';

function combineValues(op: BinaryArithmetic, a: Dim, b: Dim): Dim | undefined {
  if (typeof a === 'number' && typeof b === 'number') {
    switch (op) {
      case 'Add': return a + b;
      case 'Sub': return a - b;
      case 'Mul': return a * b;
      case 'Div': return b === 0 ? undefined : Math.trunc(a / b);
    }
  }
  switch (op) {
    case 'Mul': return multiplyDims(a, b);
    case 'Div': return divideDims(a, b);
    case 'Add': return a === 0 || b === 0 ? addDims(a, b) : undefined;
    case 'Sub': return b === 0 ? a : undefined;
  }
}

/** Add/Sub/Mul/Div: broadcast shapes, and track small integer values through shape arithmetic. */
export function binaryArithmetic(op: BinaryArithmetic): ShapeFunction {
  return (ctx) => {
    const a = ctx.input(0);
    const b = ctx.input(1);
    if (a.dtype !== b.dtype) ctx.fail(`inputs have different element types ${a.dtype} and ${b.dtype}`);
    const shape = broadcastAll(ctx, [ctx.shape(0), ctx.shape(1)]);
    const result: InferredValue = { dtype: a.dtype, shape };
    const va = ctx.values(0);
    const vb = ctx.values(1);
    if (!isIntegerType(a.dtype) || va === undefined || vb === undefined || shape.length > 1) return [result];
    const length = shape.length === 0 ? 1 : shape[0];
    if (typeof length !== 'number') return [result];
    const value: Dim[] = [];
    for (let i = 0; i < length; i++) {
      const combined = combineValues(op, va[va.length === 1 ? 0 : i], vb[vb.length === 1 ? 0 : i]);
      if (combined === undefined) return [result];
      value.push(combined);
    }
    return [{ ...result, value }];
  };
}
