// Shapes of GroupNormalization (opsets 18 and 21), the bitwise ops (BitwiseAnd / Or / Xor / Not,
// opset 18) and BitShift (opset 11). Each is refused at load, naming the node, where the native
// op (group-norm.cc, bitwise.cc) would refuse it at run: element types it does not compute in,
// channels not divisible by num_groups, scale and bias not of the length the opset gives them
// (one per group at 18, one per channel at 21), operands that do not broadcast.

import { TernionError } from '../../errors';
import { hasAttribute, intAttribute, stringAttribute } from '../attributes';
import type { DataType } from '../dtype';
import type { ShapeFunction } from '../shape-context';
import { formatShape } from '../shape-context';
import { broadcastAll } from './elementwise';
import { requireInputType } from './extra-ops';

const BITWISE_TYPES: readonly DataType[] = ['int8', 'uint8', 'int32', 'int64'];
// The unsigned types ternion holds; ONNX's uint16 / uint32 / uint64 are refused when the model loads.
const SHIFT_TYPES: readonly DataType[] = ['uint8'];

/** GroupNormalization: X [N, C, ...] of rank >= 3 kept; scale and bias [num_groups] at opset 18, [C] from 21. */
export const groupNormShapeFn: ShapeFunction = (ctx) => {
  requireInputType(ctx, 0, ['float32'], 'X');
  requireInputType(ctx, 1, ['float32'], 'scale');
  requireInputType(ctx, 2, ['float32'], 'bias');
  if (!hasAttribute(ctx.node, 'num_groups')) {
    throw new TernionError('ERR_MODEL_FORMAT', `Node "${ctx.node.name}" (GroupNormalization): attribute num_groups is required`);
  }
  const groups = intAttribute(ctx.node, 'num_groups');
  if (!(groups >= 1)) throw new TernionError('ERR_MODEL_FORMAT', `Node "${ctx.node.name}" (GroupNormalization): num_groups ${groups} must be positive`);
  const stash = intAttribute(ctx.node, 'stash_type', 1);
  if (stash !== 1) {
    throw new TernionError('ERR_UNSUPPORTED_OP', `Node "${ctx.node.name}" (GroupNormalization): stash_type ${stash} is not supported (1, float32, is)`);
  }
  const x = ctx.shape(0);
  if (x.length < 3) ctx.fail(`X must be [N, C, D1, ...] (rank >= 3), got ${formatShape(x)}`);
  const channels = x[1];
  if (typeof channels === 'number' && channels % groups !== 0) ctx.fail(`${channels} channels of X ${formatShape(x)} are not divisible by num_groups ${groups}`);
  const perChannel = ctx.opset >= 21;
  const want = perChannel ? channels : groups;
  for (const [i, what] of [[1, 'scale'], [2, 'bias']] as const) {
    const s = ctx.shape(i);
    if (s.length !== 1 || (typeof s[0] === 'number' && typeof want === 'number' && s[0] !== want)) {
      ctx.fail(`${what} ${formatShape(s)} must be [${want}], one value per ${perChannel ? 'channel (opset 21)' : 'group (opset 18)'}`);
    }
  }
  return [{ dtype: 'float32', shape: x }];
};

/** BitwiseAnd / BitwiseOr / BitwiseXor: two integers of one type, broadcast. */
export const bitwiseBinaryShapeFn: ShapeFunction = (ctx) => {
  const dtype = requireInputType(ctx, 0, BITWISE_TYPES, 'A');
  if (ctx.input(1).dtype !== dtype) ctx.fail(`A is ${dtype} but B is ${ctx.input(1).dtype}`);
  return [{ dtype, shape: broadcastAll(ctx, [ctx.shape(0), ctx.shape(1)]) }];
};

/** BitwiseNot: an integer tensor, kept. */
export const bitwiseNotShapeFn: ShapeFunction = (ctx) => [{ dtype: requireInputType(ctx, 0, BITWISE_TYPES, 'X'), shape: ctx.shape(0) }];

/** BitShift: unsigned X and Y of one type, broadcast; direction LEFT or RIGHT. */
export const bitShiftShapeFn: ShapeFunction = (ctx) => {
  const direction = stringAttribute(ctx.node, 'direction', '');
  if (direction !== 'LEFT' && direction !== 'RIGHT') {
    throw new TernionError('ERR_MODEL_FORMAT', `Node "${ctx.node.name}" (BitShift): direction "${direction}" must be LEFT or RIGHT`);
  }
  const dtype = requireInputType(ctx, 0, SHIFT_TYPES, 'X');
  if (ctx.input(1).dtype !== dtype) ctx.fail(`X is ${dtype} but Y is ${ctx.input(1).dtype}`);
  return [{ dtype, shape: broadcastAll(ctx, [ctx.shape(0), ctx.shape(1)]) }];
};
