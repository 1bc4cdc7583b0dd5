// Shapes of sliding-window ops: Conv, ConvTranspose, the quantized convs, and pooling.

import { intAttribute, intsAttribute, stringAttribute } from '../attributes';
import { opaqueDim, multiplyDims } from '../symbolic-dims';
import type { ShapeContext, ShapeFunction } from '../shape-context';
import { formatShape } from '../shape-context';
import type { DataType } from '../dtype';
import type { Dim, Shape } from '../types';

export type AutoPad = 'NOTSET' | 'SAME_UPPER' | 'SAME_LOWER' | 'VALID';

/** The window parameters shared by Conv and pooling, with ONNX defaults filled in. */
export interface WindowParams {
  autoPad: AutoPad;
  kernel: number[];
  strides: number[];
  dilations: number[];
  /** [begin_0, ..., begin_n-1, end_0, ..., end_n-1], as in ONNX. */
  pads: number[];
}

export function readAutoPad(ctx: ShapeContext): AutoPad {
  const autoPad = stringAttribute(ctx.node, 'auto_pad', 'NOTSET');
  if (autoPad !== 'NOTSET' && autoPad !== 'SAME_UPPER' && autoPad !== 'SAME_LOWER' && autoPad !== 'VALID') {
    ctx.fail(`unknown auto_pad "${autoPad}"`);
  }
  return autoPad;
}

function listAttribute(ctx: ShapeContext, name: string, length: number, fallback: number): number[] {
  const values = intsAttribute(ctx.node, name);
  if (values === undefined) return new Array<number>(length).fill(fallback);
  if (values.length !== length) ctx.fail(`attribute ${name} has ${values.length} values, expected ${length}`);
  return [...values];
}

export function readWindowParams(ctx: ShapeContext, spatialRank: number, kernelFromWeights?: Shape): WindowParams {
  let kernel = intsAttribute(ctx.node, 'kernel_shape');
  if (kernel === undefined) {
    if (kernelFromWeights === undefined) ctx.fail('attribute kernel_shape is required');
    if (kernelFromWeights.some((d) => typeof d !== 'number')) ctx.fail(`weights have a symbolic kernel ${formatShape(kernelFromWeights)}`);
    kernel = kernelFromWeights as number[];
  }
  if (kernel.length !== spatialRank) ctx.fail(`kernel_shape has ${kernel.length} dims but the input has ${spatialRank} spatial dims`);
  const params: WindowParams = {
    autoPad: readAutoPad(ctx),
    kernel: [...kernel],
    strides: listAttribute(ctx, 'strides', spatialRank, 1),
    dilations: listAttribute(ctx, 'dilations', spatialRank, 1),
    pads: listAttribute(ctx, 'pads', spatialRank * 2, 0),
  };
  if (params.strides.some((s) => s < 1) || params.dilations.some((d) => d < 1) || params.kernel.some((k) => k < 1)) {
    ctx.fail('kernel_shape, strides and dilations must be positive');
  }
  if (params.pads.some((p) => p < 0)) ctx.fail('pads must not be negative');
  return params;
}

/** Output size of one spatial axis of a conv or pool (ONNX formulas, incl. ceil_mode). */
export function windowOutputDim(input: Dim, axis: number, p: WindowParams, ceilMode = false): Dim {
  const span = (p.kernel[axis] - 1) * p.dilations[axis] + 1;
  const stride = p.strides[axis];
  const padTotal = p.pads[axis] + p.pads[axis + p.kernel.length];
  if (typeof input !== 'number') {
    const formula = p.autoPad === 'SAME_UPPER' || p.autoPad === 'SAME_LOWER'
      ? `ceil(${input}/${stride})`
      : `window(${input},span=${span},stride=${stride},pad=${p.autoPad === 'VALID' ? 0 : padTotal},ceil=${ceilMode ? 1 : 0})`;
    return stride === 1 && span === 1 && padTotal === 0 ? input : opaqueDim(formula);
  }
  if (p.autoPad === 'SAME_UPPER' || p.autoPad === 'SAME_LOWER') return Math.ceil(input / stride);
  const padded = input + (p.autoPad === 'VALID' ? 0 : padTotal) - span;
  if (padded < 0) return -1;
  if (!ceilMode) return Math.floor(padded / stride) + 1;
  let out = Math.ceil(padded / stride) + 1;
  // The last window must start inside the input or its begin padding (same rule as PyTorch/ORT).
  if ((out - 1) * stride >= input + p.pads[axis]) out--;
  return out;
}

function spatialOutput(ctx: ShapeContext, x: Shape, p: WindowParams, ceilMode = false): Dim[] {
  return x.slice(2).map((d, axis) => {
    const out = windowOutputDim(d, axis, p, ceilMode);
    if (out === -1) ctx.fail(`the window (kernel ${p.kernel[axis]}, dilation ${p.dilations[axis]}) is larger than the padded input ${d} on spatial axis ${axis}`);
    return out;
  });
}

/** Conv-like: input x at index xIndex, weights at wIndex, output element type outDtype. */
function convShape(xIndex: number, wIndex: number, outDtype: (ctx: ShapeContext) => DataType): ShapeFunction {
  return (ctx) => {
    const x = ctx.shape(xIndex);
    const w = ctx.shape(wIndex);
    if (x.length < 3) ctx.fail(`input ${formatShape(x)} must have rank >= 3 (N, C, spatial...)`);
    if (w.length !== x.length) ctx.fail(`weights ${formatShape(w)} must have the rank of the input ${formatShape(x)}`);
    const group = intAttribute(ctx.node, 'group', 1);
    const channels = x[1];
    const weightChannels = w[1];
    if (typeof channels === 'number' && typeof weightChannels === 'number' && channels !== weightChannels * group) {
      ctx.fail(`input has ${channels} channels but weights ${formatShape(w)} with group ${group} expect ${multiplyDims(weightChannels, group)}`);
    }
    const params = readWindowParams(ctx, x.length - 2, w.slice(2));
    return [{ dtype: outDtype(ctx), shape: [x[0], w[0], ...spatialOutput(ctx, x, params)] }];
  };
}

export const convShapeFn = convShape(0, 1, (ctx) => ctx.input(0).dtype);
export const convIntegerShapeFn = convShape(0, 1, () => 'int32');
/** QLinearConv(x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp, B): y has y_zero_point's type. */
export const qlinearConvShapeFn = convShape(0, 3, (ctx) => ctx.input(7).dtype);

export const convTransposeShapeFn: ShapeFunction = (ctx) => {
  const x = ctx.shape(0);
  const w = ctx.shape(1);
  if (x.length < 3 || w.length !== x.length) ctx.fail(`input ${formatShape(x)} and weights ${formatShape(w)} must have the same rank >= 3`);
  const spatialRank = x.length - 2;
  const group = intAttribute(ctx.node, 'group', 1);
  const params = readWindowParams(ctx, spatialRank, w.slice(2));
  const outputPadding = listAttribute(ctx, 'output_padding', spatialRank, 0);
  const outputShape = intsAttribute(ctx.node, 'output_shape');
  const spatial: Dim[] = x.slice(2).map((d, axis) => {
    if (outputShape !== undefined) return outputShape[outputShape.length - spatialRank + axis];
    const stride = params.strides[axis];
    if (typeof d !== 'number') return opaqueDim(`convtranspose(${d},stride=${stride})`);
    if (params.autoPad === 'SAME_UPPER' || params.autoPad === 'SAME_LOWER') return d * stride;
    const span = (params.kernel[axis] - 1) * params.dilations[axis] + 1;
    const pads = params.autoPad === 'VALID' ? 0 : params.pads[axis] + params.pads[axis + spatialRank];
    return stride * (d - 1) + outputPadding[axis] + span - pads;
  });
  return [{ dtype: ctx.input(0).dtype, shape: [x[0], multiplyDims(w[1], group), ...spatial] }];
};

/** MaxPool/AveragePool; MaxPool's optional second output holds int64 indices. */
export const poolShapeFn: ShapeFunction = (ctx) => {
  const x = ctx.shape(0);
  if (x.length < 3) ctx.fail(`input ${formatShape(x)} must have rank >= 3 (N, C, spatial...)`);
  const params = readWindowParams(ctx, x.length - 2);
  const ceilMode = intAttribute(ctx.node, 'ceil_mode', 0) !== 0;
  const shape = [x[0], x[1], ...spatialOutput(ctx, x, params, ceilMode)];
  const outputs = [{ dtype: ctx.input(0).dtype, shape }];
  if (ctx.node.outputs.length > 1) outputs.push({ dtype: 'int64', shape });
  return outputs;
};

export const globalPoolShapeFn: ShapeFunction = (ctx) => {
  const x = ctx.shape(0);
  if (x.length < 3) ctx.fail(`input ${formatShape(x)} must have rank >= 3 (N, C, spatial...)`);
  return [{ dtype: ctx.input(0).dtype, shape: [x[0], x[1], ...x.slice(2).map(() => 1)] }];
};
