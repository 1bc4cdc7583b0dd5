// What a shape function sees: the node, its opset, its inputs' types, and what is known of their
// values. Shape functions live next to the op table (ops.ts) and are pure.

import { TernionError } from '../errors';
import type { DataType } from './dtype';
import type { ConstantTensor, Dim, Node, Shape } from './types';

/**
 * The inferred type of one value, plus its contents when they are small integers known at load
 * time, possibly symbolically: Shape(x) of x:[N,3,224,224] has value [N,3,224,224]. This is what
 * lets Reshape(x, Concat(Gather(Shape(x), 0), [-1])) keep the batch dim symbolic.
 */
export interface InferredValue {
  readonly dtype: DataType;
  readonly shape?: Shape;
  /** Row-major contents of an integer tensor of rank 0 or 1, when known. */
  readonly value?: readonly Dim[];
}

export interface ShapeContext {
  readonly node: Node;
  /** The opset version of the node's domain imported by the model. */
  readonly opset: number;
  /** Number of present inputs, counting absent optional ones ('') in between. */
  readonly inputCount: number;
  /** Whether input i is given (not '' and within the input list). */
  hasInput(i: number): boolean;
  /** The type of input i; throws if the input is absent. */
  input(i: number): InferredValue;
  /** The shape of input i; when its rank is unknown, the node's outputs get unknown shapes. */
  shape(i: number): Shape;
  /** The data of input i when it is an initializer (after folding, also folded constants). */
  constant(i: number): ConstantTensor | undefined;
  /** Input i's known integer contents (from a constant or symbolic value tracking), if any. */
  values(i: number): readonly Dim[] | undefined;
  /** A shape error naming this node. */
  fail(message: string): never;
}

/** Thrown by ShapeContext.shape() when a rank is unknown; inferShapes catches it. */
export class UnknownRankSignal {
  constructor(readonly inputIndex: number) {}
}

export type ShapeFunction = (ctx: ShapeContext) => InferredValue[];

export function shapeError(node: Node, message: string): TernionError {
  return new TernionError('ERR_SHAPE_MISMATCH', `Node "${node.name}" (${node.opType}): ${message}`);
}

/** Normalize a possibly negative axis against a rank, failing the node when out of range. */
export function normalizeAxis(ctx: ShapeContext, axis: number, rank: number, what = 'axis'): number {
  if (!Number.isInteger(axis) || axis < -rank || axis >= rank) {
    ctx.fail(`${what} ${axis} is out of range for a tensor of rank ${rank}`);
  }
  return axis < 0 ? axis + rank : axis;
}

/** Known integer values of an input as plain numbers, or undefined unless every one is known. */
export function numericValues(ctx: ShapeContext, i: number): number[] | undefined {
  const values = ctx.values(i);
  if (values === undefined || values.some((v) => typeof v !== 'number')) return undefined;
  return values as number[];
}

export function formatShape(shape: Shape | undefined): string {
  return shape === undefined ? '[?]' : `[${shape.join(',')}]`;
}
