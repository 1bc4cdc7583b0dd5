// Shapes of the recurrent ops LSTM, GRU and RNN (opsets 7 to 21; `layout` from 14), and the
// checks of their attributes and inputs that a load can make: the executor (native
// exec/ops/recurrent.cc) repeats the shape checks at run time, when symbolic dims are known.
//
// Layout 0: X [seq, batch, input], Y [seq, directions, batch, hidden], Y_h / Y_c and the initial
// states [directions, batch, hidden]. Layout 1: X [batch, seq, input], Y [batch, seq, directions,
// hidden], states [batch, directions, hidden].

import { TernionError } from '../../errors';
import { floatAttribute, hasAttribute, intAttribute, stringAttribute, stringsAttribute } from '../attributes';
import { isFloatType } from '../dtype';
import type { ShapeContext, ShapeFunction } from '../shape-context';
import { formatShape } from '../shape-context';
import type { Dim } from '../types';

export type RecurrentCell = 'LSTM' | 'GRU' | 'RNN';

interface CellSpec {
  /** Gate blocks stacked in W and R (LSTM i, o, f, c; GRU z, r, h; RNN one). */
  readonly gates: number;
  /** Activation functions per direction (LSTM f, g, h; GRU f, g; RNN f). */
  readonly activations: number;
  readonly inputs: number;
  readonly outputs: number;
  /** The optional initial-state inputs, from input 5 on. */
  readonly stateInputs: readonly string[];
}

const CELLS: Record<RecurrentCell, CellSpec> = {
  LSTM: { gates: 4, activations: 3, inputs: 8, outputs: 3, stateInputs: ['initial_h', 'initial_c'] },
  GRU: { gates: 3, activations: 2, inputs: 6, outputs: 2, stateInputs: ['initial_h'] },
  RNN: { gates: 1, activations: 1, inputs: 6, outputs: 2, stateInputs: ['initial_h'] },
};

/** The activation functions the spec lists for these ops (matched ignoring case, as onnxruntime's LSTM and GRU do). */
export const RECURRENT_ACTIVATIONS = [
  'Relu', 'Tanh', 'Sigmoid', 'Affine', 'LeakyRelu', 'ThresholdedRelu', 'ScaledTanh', 'HardSigmoid', 'Elu', 'Softsign', 'Softplus',
] as const;

const DIRECTIONS = ['forward', 'reverse', 'bidirectional'];

function attributeError(ctx: ShapeContext, message: string): never {
  throw new TernionError('ERR_MODEL_FORMAT', `Node "${ctx.node.name}" (${ctx.node.opType}): ${message}`);
}

/** Fails unless every known dim of `shape` equals the expected one (undefined: not checked). */
function expectShape(ctx: ShapeContext, what: string, shape: readonly Dim[], expected: readonly (Dim | undefined)[], meaning: string): void {
  const agrees = shape.length === expected.length && shape.every((d, i) => {
    const e = expected[i];
    return typeof d !== 'number' || typeof e !== 'number' || d === e;
  });
  if (!agrees) ctx.fail(`${what} ${formatShape(shape)} must be ${meaning}, here ${formatShape(expected.map((d) => d ?? '?'))}`);
}

function requireType(ctx: ShapeContext, i: number, what: string, want: string): void {
  const dtype = ctx.input(i).dtype;
  if (dtype !== want) throw new TernionError('ERR_DTYPE', `Node "${ctx.node.name}" (${ctx.node.opType}): ${what} is ${dtype}, expected ${want}`);
}

/** The attributes every recurrent op reads, checked. */
function readAttributes(ctx: ShapeContext, cell: CellSpec): { directions: number; layout: number; hiddenSize?: number } {
  const node = ctx.node;
  const direction = stringAttribute(node, 'direction', 'forward');
  if (!DIRECTIONS.includes(direction)) attributeError(ctx, `direction "${direction}" is not one of ${DIRECTIONS.join(', ')}`);
  const directions = direction === 'bidirectional' ? 2 : 1;
  if (ctx.opset < 14 && hasAttribute(node, 'layout')) attributeError(ctx, `the layout attribute exists from opset 14 (the model imports opset ${ctx.opset})`);
  const layout = intAttribute(node, 'layout', 0);
  if (layout !== 0 && layout !== 1) attributeError(ctx, `layout ${layout} is not 0 or 1`);
  const activations = stringsAttribute(node, 'activations');
  if (activations !== undefined) {
    if (activations.length !== cell.activations * directions) {
      attributeError(ctx, `activations lists ${activations.length} functions, expected ${cell.activations * directions} (${cell.activations} per direction)`);
    }
    for (const name of activations) {
      if (!RECURRENT_ACTIVATIONS.some((a) => a.toLowerCase() === name.toLowerCase())) {
        attributeError(ctx, `unknown activation "${name}" (expected one of ${RECURRENT_ACTIVATIONS.join(', ')})`);
      }
    }
  }
  if (hasAttribute(node, 'clip') && !(floatAttribute(node, 'clip') > 0)) attributeError(ctx, `clip ${floatAttribute(node, 'clip')} must be positive`);
  const hiddenSize = hasAttribute(node, 'hidden_size') ? intAttribute(node, 'hidden_size') : undefined;
  if (hiddenSize !== undefined && !(hiddenSize > 0)) attributeError(ctx, `hidden_size ${hiddenSize} must be positive`);
  if (ctx.inputCount > cell.inputs) attributeError(ctx, `has ${ctx.inputCount} inputs, at most ${cell.inputs}`);
  if (node.outputs.length > cell.outputs) attributeError(ctx, `has ${node.outputs.length} outputs, at most ${cell.outputs}`);
  return { directions, layout, hiddenSize };
}

/**
 * LSTM, GRU and RNN: Y, Y_h (and LSTM's Y_c) of X's type. hidden_size comes from the attribute,
 * else from R's last dim (the spec makes the attribute optional).
 */
export function recurrentShapeFn(op: RecurrentCell): ShapeFunction {
  const cell = CELLS[op];
  return (ctx) => {
    const { directions, layout, hiddenSize } = readAttributes(ctx, cell);
    const dtype = ctx.input(0).dtype;
    if (!isFloatType(dtype)) throw new TernionError('ERR_DTYPE', `Node "${ctx.node.name}" (${op}): X is ${dtype}, expected a float type`);
    const x = ctx.shape(0);
    if (x.length !== 3) ctx.fail(`X ${formatShape(x)} must be 3-D (${layout === 0 ? '[seq_length, batch_size, input_size]' : '[batch_size, seq_length, input_size]'})`);
    const [seq, batch] = layout === 0 ? [x[0], x[1]] : [x[1], x[0]];
    requireType(ctx, 1, 'W', dtype);
    requireType(ctx, 2, 'R', dtype);
    const w = ctx.shape(1), r = ctx.shape(2);
    const rows = `${cell.gates} * hidden_size`;
    if (r.length !== 3) ctx.fail(`R ${formatShape(r)} must be 3-D [num_directions, ${rows}, hidden_size]`);
    const hidden: Dim = hiddenSize ?? r[2];
    const gateRows = typeof hidden === 'number' ? cell.gates * hidden : undefined;
    expectShape(ctx, 'W', w, [directions, gateRows, x[2]], `[num_directions, ${rows}, input_size]`);
    expectShape(ctx, 'R', r, [directions, gateRows, hidden], `[num_directions, ${rows}, hidden_size]`);
    if (ctx.hasInput(3)) {
      requireType(ctx, 3, 'B', dtype);
      expectShape(ctx, 'B', ctx.shape(3), [directions, gateRows === undefined ? undefined : 2 * gateRows], `[num_directions, 2 * ${rows}]`);
    }
    if (ctx.hasInput(4)) {
      requireType(ctx, 4, 'sequence_lens', 'int32');
      expectShape(ctx, 'sequence_lens', ctx.shape(4), [batch], '[batch_size]');
    }
    const state: Dim[] = layout === 0 ? [directions, batch, hidden] : [batch, directions, hidden];
    const stateMeaning = layout === 0 ? '[num_directions, batch_size, hidden_size]' : '[batch_size, num_directions, hidden_size]';
    cell.stateInputs.forEach((name, k) => {
      if (!ctx.hasInput(5 + k)) return;
      requireType(ctx, 5 + k, name, dtype);
      expectShape(ctx, name, ctx.shape(5 + k), state, stateMeaning);
    });
    if (op === 'LSTM' && ctx.hasInput(7)) {
      requireType(ctx, 7, 'P', dtype);
      expectShape(ctx, 'P', ctx.shape(7), [directions, typeof hidden === 'number' ? 3 * hidden : undefined], '[num_directions, 3 * hidden_size]');
    }
    const y = layout === 0 ? [seq, directions, batch, hidden] : [batch, seq, directions, hidden];
    return Array.from({ length: ctx.node.outputs.length }, (_, i) => ({ dtype, shape: i === 0 ? y : state }));
  };
}
