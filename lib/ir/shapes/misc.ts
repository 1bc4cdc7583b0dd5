// Shapes of the remaining ops: normalization, quantization, Constant, Dropout.

import { intAttribute } from '../attributes';
import { constantNodeTensor } from '../constant-node';
import { isIntegerType, toNumberArray } from '../dtype';
import type { ShapeFunction } from '../shape-context';
import { normalizeAxis } from '../shape-context';

/** Contents up to this many elements are tracked as values (shape tensors are tiny). */
export const MAX_TRACKED_VALUES = 64;

export const constantShapeFn: ShapeFunction = (ctx) => {
  const tensor = constantNodeTensor(ctx.node);
  const trackable = isIntegerType(tensor.dtype) && tensor.dims.length <= 1 && tensor.data.length <= MAX_TRACKED_VALUES;
  return [{ dtype: tensor.dtype, shape: tensor.dims, ...(trackable ? { value: toNumberArray(tensor.data) } : {}) }];
};

/** Identity passes values through, so shape arithmetic survives it. */
export const identityShapeFn: ShapeFunction = (ctx) => {
  const values = ctx.values(0);
  return [{ dtype: ctx.input(0).dtype, shape: ctx.shape(0), ...(values ? { value: values } : {}) }];
};

/** Dropout: output like the input, optional mask of bools. */
export const dropoutShapeFn: ShapeFunction = (ctx) => {
  const shape = ctx.shape(0);
  const outputs = [{ dtype: ctx.input(0).dtype, shape }];
  if (ctx.node.outputs.length > 1) outputs.push({ dtype: ctx.opset >= 10 ? 'bool' : ctx.input(0).dtype, shape });
  return outputs;
};

/** BatchNormalization: Y like X; training-mode outputs (running mean/var, ...) are per channel. */
export const batchNormShapeFn: ShapeFunction = (ctx) => {
  const x = ctx.shape(0);
  if (x.length < 2) ctx.fail(`input must have rank >= 2 (N, C, ...)`);
  const dtype = ctx.input(0).dtype;
  const outputs = [{ dtype, shape: x }];
  for (let i = 1; i < ctx.node.outputs.length; i++) outputs.push({ dtype: ctx.input(i === 1 || i === 3 ? 3 : 4).dtype, shape: [x[1]] });
  return outputs;
};

/** LayerNormalization: Y like X; Mean and InvStdDev keep the leading dims and 1s after axis. */
export const layerNormShapeFn: ShapeFunction = (ctx) => {
  const x = ctx.shape(0);
  const axis = normalizeAxis(ctx, intAttribute(ctx.node, 'axis', -1), x.length);
  const stashType = intAttribute(ctx.node, 'stash_type', 1);
  if (stashType !== 1) ctx.fail(`stash_type ${stashType} is not supported (only 1, float32)`);
  const reduced = x.map((d, i) => (i < axis ? d : 1));
  const outputs = [{ dtype: ctx.input(0).dtype, shape: x }];
  for (let i = 1; i < ctx.node.outputs.length; i++) outputs.push({ dtype: 'float32', shape: reduced });
  return outputs;
};

/** QuantizeLinear(x, scale, zero_point?): the zero point's type, uint8 without one. */
export const quantizeLinearShapeFn: ShapeFunction = (ctx) => [
  { dtype: ctx.hasInput(2) ? ctx.input(2).dtype : 'uint8', shape: ctx.shape(0) },
];

/** DynamicQuantizeLinear(x): uint8 y of x's shape, and the float32 scale and uint8 zero point it used (scalars). */
export const dynamicQuantizeLinearShapeFn: ShapeFunction = (ctx) => {
  if (ctx.input(0).dtype !== 'float32') ctx.fail(`input x must be float32, got ${ctx.input(0).dtype}`);
  return [
    { dtype: 'uint8', shape: ctx.shape(0) },
    { dtype: 'float32', shape: [] },
    { dtype: 'uint8', shape: [] },
  ];
};

/** DequantizeLinear(x, scale, zero_point?): the scale's type (float32 in practice). */
export const dequantizeLinearShapeFn: ShapeFunction = (ctx) => [{ dtype: ctx.input(1).dtype, shape: ctx.shape(0) }];
