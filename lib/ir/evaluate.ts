// A small reference evaluator for constant folding: the data movement and elementwise ops that
// shape computations are made of. Output dims come from shape inference; this file only computes
// data. Anything not listed here is left for the native executor.

import { intAttribute, intsAttribute } from './attributes';
import { createTensorData, isFloatType, toNumberArray } from './dtype';
import type { StoredDataType, TensorData } from './dtype';
import type { ConstantTensor, Node } from './types';

type Evaluator = (node: Node, inputs: readonly (ConstantTensor | undefined)[], outputDims: readonly number[], outputType: StoredDataType) => TensorData;

function stridesOf(dims: readonly number[]): number[] {
  const strides = new Array<number>(dims.length);
  let stride = 1;
  for (let i = dims.length - 1; i >= 0; i--) {
    strides[i] = stride;
    stride *= dims[i];
  }
  return strides;
}

/** Visit every index of `dims` in row-major order, handing its coordinates to `visit`. */
function forEachIndex(dims: readonly number[], visit: (coords: readonly number[], flat: number) => void): void {
  const total = dims.reduce((a, b) => a * b, 1);
  const coords = new Array<number>(dims.length).fill(0);
  for (let flat = 0; flat < total; flat++) {
    visit(coords, flat);
    for (let axis = dims.length - 1; axis >= 0; axis--) {
      if (++coords[axis] < dims[axis]) break;
      coords[axis] = 0;
    }
  }
}

/** Gather elements of `source` at computed flat offsets into a new array of the same dtype. */
function gatherElements(source: ConstantTensor, outputDims: readonly number[], offsetOf: (coords: readonly number[]) => number): TensorData {
  const count = outputDims.reduce((a, b) => a * b, 1);
  const out = createTensorData(source.dtype, count);
  forEachIndex(outputDims, (coords, flat) => {
    out[flat] = source.data[offsetOf(coords)];
  });
  return out;
}

/**
 * The elements of `source` at base + sum(coords[i] * strides[i]) for each index of `outputDims`,
 * in row-major order: Slice and Transpose. Steps an offset instead of mapping each index (a
 * folded LSTM weight has 64K elements), and copies a row whose last axis is contiguous whole.
 */
function stridedCopy(source: ConstantTensor, outputDims: readonly number[], base: number, strides: readonly number[]): TensorData {
  const count = outputDims.reduce((a, b) => a * b, 1);
  const out = createTensorData(source.dtype, count);
  const rank = outputDims.length;
  if (rank === 0 || count === 0) {
    if (count === 1) out[0] = source.data[base];
    return out;
  }
  const last = rank - 1;
  const [rowLength, step] = [outputDims[last], strides[last]];
  const coords = new Array<number>(rank).fill(0);
  let offset = base;
  for (let flat = 0; flat < count; flat += rowLength) {
    if (step === 1) (out as Float32Array).set((source.data as Float32Array).subarray(offset, offset + rowLength), flat);
    else for (let k = 0; k < rowLength; k++) out[flat + k] = source.data[offset + k * step];
    // The next row: the axes before the last, as an odometer.
    for (let axis = last - 1; axis >= 0; axis--) {
      offset += strides[axis];
      if (++coords[axis] < outputDims[axis]) break;
      offset -= strides[axis] * outputDims[axis];
      coords[axis] = 0;
    }
  }
  return out;
}

/** Same elements, new dims: Reshape, Flatten, Squeeze, Unsqueeze, Identity. */
const copyData: Evaluator = (_node, inputs) => (inputs[0] as ConstantTensor).data.slice();

type Arithmetic = (a: number, b: number) => number;
type BigArithmetic = (a: bigint, b: bigint) => bigint;

/** Visit a and b broadcast to outputDims: f(flat, a element, b element). */
function forEachBroadcast(a: ConstantTensor, b: ConstantTensor, outputDims: readonly number[], f: (flat: number, x: number | bigint, y: number | bigint) => void): void {
  const rank = outputDims.length;
  const offsetFor = (t: ConstantTensor) => {
    const padded = [...new Array<number>(rank - t.dims.length).fill(1), ...t.dims];
    const strides = stridesOf(padded);
    return (coords: readonly number[]) => coords.reduce((acc, c, i) => acc + (padded[i] === 1 ? 0 : c * strides[i]), 0);
  };
  const [offsetA, offsetB] = [offsetFor(a), offsetFor(b)];
  forEachIndex(outputDims, (coords, flat) => f(flat, a.data[offsetA(coords)], b.data[offsetB(coords)]));
}

function broadcastBinary(numberOp: Arithmetic, bigintOp: BigArithmetic, integerDivision = false): Evaluator {
  return (_node, inputs, outputDims) => {
    const [a, b] = inputs as ConstantTensor[];
    const out = createTensorData(a.dtype, outputDims.reduce((x, y) => x * y, 1));
    forEachBroadcast(a, b, outputDims, (flat, x, y) => {
      if (typeof x === 'bigint') out[flat] = bigintOp(x, y as bigint);
      else out[flat] = integerDivision ? Math.trunc(numberOp(x, y as number)) : numberOp(x, y as number);
    });
    return out;
  };
}

/** Comparisons and logic on two operands of one dtype: a bool tensor. */
function broadcastTest(test: (x: number | bigint, y: number | bigint) => boolean): Evaluator {
  return (_node, inputs, outputDims) => {
    const [a, b] = inputs as ConstantTensor[];
    const out = new Uint8Array(outputDims.reduce((x, y) => x * y, 1));
    forEachBroadcast(a, b, outputDims, (flat, x, y) => {
      out[flat] = test(x, y) ? 1 : 0;
    });
    return out;
  };
}

/** Integer ranges of the stored integer types, for saturating float-to-integer casts. */
const INTEGER_RANGE: Partial<Record<StoredDataType, [number, number, number]>> = {
  // [lowest, highest, bits]
  int8: [-128, 127, 8], uint8: [0, 255, 8], int16: [-32768, 32767, 16], uint16: [0, 65535, 16],
  int32: [-2147483648, 2147483647, 32], uint32: [0, 4294967295, 32],
  int64: [-9223372036854775808, 9223372036854775807, 64], uint64: [0, 18446744073709551615, 64],
};

/**
 * Cast as the executor casts (native/exec/ops/cast.cc): float to integer truncates toward zero,
 * NaN becomes 0 and values outside the range saturate; integer narrowing wraps; to bool, nonzero
 * is true.
 */
const cast: Evaluator = (_node, inputs, _dims, to) => {
  const input = inputs[0] as ConstantTensor;
  const out = createTensorData(to, input.data.length);
  const range = INTEGER_RANGE[to];
  const fromFloat = isFloatType(input.dtype);
  for (let i = 0; i < out.length; i++) {
    const v = input.data[i];
    if (to === 'bool') {
      out[i] = (typeof v === 'bigint' ? v !== 0n : v !== 0) ? 1 : 0;
    } else if (range === undefined) {
      out[i] = Number(v);  // to a float type
    } else if (fromFloat) {
      const t = Number.isNaN(v as number) ? 0 : Math.min(Math.max(Math.trunc(v as number), range[0]), range[1]);
      if (range[2] !== 64) out[i] = t;
      else {
        // 2^63 - 1 and 2^64 - 1 are not doubles: saturate in BigInt.
        const [lo, hi] = to === 'int64' ? [-(1n << 63n), (1n << 63n) - 1n] : [0n, (1n << 64n) - 1n];
        const b = BigInt(t);
        out[i] = (b < lo ? lo : b > hi ? hi : b) as never;
      }
    } else {
      // Integer (or bool) to integer: two's complement wrapping at the target's width.
      const big = typeof v === 'bigint' ? v : BigInt(v as number);
      const wrapped = to === 'int64' || to === 'int8' || to === 'int16' || to === 'int32' ? BigInt.asIntN(range[2], big) : BigInt.asUintN(range[2], big);
      out[i] = (range[2] === 64 ? wrapped : Number(wrapped)) as never;
    }
  }
  return out;
};

function unary(op: (x: number) => number): Evaluator {
  return (_node, inputs) => {
    const input = inputs[0] as ConstantTensor;
    const out = createTensorData(input.dtype, input.data.length);
    for (let i = 0; i < out.length; i++) out[i] = op(Number(input.data[i])) as never;
    return out;
  };
}

const gather: Evaluator = (node, inputs, outputDims) => {
  const [data, indices] = inputs as ConstantTensor[];
  const axis = (intAttribute(node, 'axis', 0) + data.dims.length) % Math.max(data.dims.length, 1);
  const strides = stridesOf(data.dims);
  const picks = toNumberArray(indices.data).map((i) => (i < 0 ? i + data.dims[axis] : i));
  const indexRank = indices.dims.length;
  return gatherElements(data, outputDims, (coords) => {
    const before = coords.slice(0, axis);
    const indexCoords = coords.slice(axis, axis + indexRank);
    const after = coords.slice(axis + indexRank);
    const indexFlat = indexCoords.reduce((acc, c, i) => acc * indices.dims[i] + c, 0);
    const full = [...before, picks[indexFlat], ...after];
    return full.reduce((acc, c, i) => acc + c * strides[i], 0);
  });
};

const concat: Evaluator = (node, inputs, outputDims) => {
  const tensors = inputs as ConstantTensor[];
  const rank = outputDims.length;
  const axis = (intAttribute(node, 'axis', 1) + rank) % rank;
  const out = createTensorData(tensors[0].dtype, outputDims.reduce((a, b) => a * b, 1));
  // Row-major: for each index of the axes before `axis`, one contiguous block of each input in turn.
  const outer = outputDims.slice(0, axis).reduce((a, b) => a * b, 1);
  const inner = outputDims.slice(axis + 1).reduce((a, b) => a * b, 1);
  let flat = 0;
  for (let o = 0; o < outer; o++) {
    for (const t of tensors) {
      const block = t.dims[axis] * inner;
      (out as Float32Array).set((t.data as Float32Array).subarray(o * block, (o + 1) * block), flat);
      flat += block;
    }
  }
  return out;
};

const transpose: Evaluator = (node, inputs, outputDims) => {
  const input = inputs[0] as ConstantTensor;
  const perm = intsAttribute(node, 'perm') ?? input.dims.map((_, i) => input.dims.length - 1 - i);
  const strides = stridesOf(input.dims);
  return stridedCopy(input, outputDims, 0, perm.map((axis) => strides[axis]));
};

/** Slice with constant starts/ends/axes/steps (input form) or attributes (opset < 10). */
function sliceEvaluator(opset: number): Evaluator {
  return (node, inputs, outputDims) => {
    const input = inputs[0] as ConstantTensor;
    const rank = input.dims.length;
    const read = (i: number, attribute: string) => (opset < 10 ? intsAttribute(node, attribute) : inputs[i] && toNumberArray(inputs[i]!.data));
    const starts = read(1, 'starts') ?? [];
    const ends = read(2, 'ends') ?? [];
    const axes = (read(3, 'axes') ?? starts.map((_, i) => i)).map((a) => (a < 0 ? a + rank : a));
    const steps = (opset < 10 ? undefined : read(4, 'steps')) ?? starts.map(() => 1);
    const begin = input.dims.map(() => 0);
    const step = input.dims.map(() => 1);
    axes.forEach((axis, i) => {
      const dim = input.dims[axis];
      let s = starts[i] < 0 ? starts[i] + dim : starts[i];
      s = steps[i] > 0 ? Math.min(Math.max(s, 0), dim) : Math.min(Math.max(s, 0), dim - 1);
      begin[axis] = s;
      step[axis] = steps[i];
    });
    const strides = stridesOf(input.dims);
    void ends; // ends only bound the output dims, which shape inference already computed
    const base = begin.reduce((acc, b, i) => acc + b * strides[i], 0);
    return stridedCopy(input, outputDims, base, strides.map((stride, i) => stride * step[i]));
  };
}

const EVALUATORS: Readonly<Record<string, (opset: number) => Evaluator>> = {
  Identity: () => copyData,
  Reshape: () => copyData,
  Flatten: () => copyData,
  Squeeze: () => copyData,
  Unsqueeze: () => copyData,
  Gather: () => gather,
  Concat: () => concat,
  Transpose: () => transpose,
  Slice: sliceEvaluator,
  Add: () => broadcastBinary((a, b) => a + b, (a, b) => a + b),
  Sub: () => broadcastBinary((a, b) => a - b, (a, b) => a - b),
  Mul: () => broadcastBinary((a, b) => a * b, (a, b) => a * b),
  Relu: () => unary((x) => Math.max(x, 0)),
  Sigmoid: () => unary((x) => 1 / (1 + Math.exp(-x))),
  Tanh: () => unary(Math.tanh),
  // Ops whose output type is not their input's: conditions on shapes (an If on a batch size) fold.
  Equal: () => broadcastTest((x, y) => x === y),
  Less: () => broadcastTest((x, y) => x < y),
  Greater: () => broadcastTest((x, y) => x > y),
  LessOrEqual: () => broadcastTest((x, y) => x <= y),
  GreaterOrEqual: () => broadcastTest((x, y) => x >= y),
  And: () => broadcastTest((x, y) => Boolean(x) && Boolean(y)),
  Or: () => broadcastTest((x, y) => Boolean(x) || Boolean(y)),
  Xor: () => broadcastTest((x, y) => Boolean(x) !== Boolean(y)),
  Not: () => unary((x) => (x ? 0 : 1)),
  Cast: () => cast,
};

/** Ops whose folded output takes the type shape inference gives it, not their first input's. */
export const TYPE_CHANGING_EVALUATORS: ReadonlySet<string> = new Set(['Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual', 'Cast']);

function divisionEvaluator(dtype: StoredDataType): Evaluator {
  return broadcastBinary((a, b) => a / b, (a, b) => (b === 0n ? 0n : a / b), !isFloatType(dtype));
}

/** The evaluator for a node, or undefined when constant folding should leave it alone. */
export function findEvaluator(node: Node, opset: number, firstInputType: StoredDataType): Evaluator | undefined {
  if (node.domain !== '') return undefined;
  if (node.opType === 'Div') return divisionEvaluator(firstInputType);
  const unaryFloatOnly = node.opType === 'Relu' || node.opType === 'Sigmoid' || node.opType === 'Tanh';
  if (unaryFloatOnly && !isFloatType(firstInputType)) return undefined;
  return EVALUATORS[node.opType]?.(opset);
}
