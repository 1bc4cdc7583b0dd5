// Shapes of the detection and spatial-transformer ops: NonMaxSuppression, RoiAlign, GridSample
// (4-D input only) and MaxUnpool. The executor computes them in float32 with int64 indices, so
// other element types are refused here with ERR_DTYPE, and attributes out of their allowed values
// with ERR_MODEL_FORMAT, both at load. NonMaxSuppression's row count depends on the data: it is
// worked out here when every input it reads is a constant (the same float32 arithmetic as
// native/exec/ops/non-max-suppression.cc), 0 when max_output_boxes_per_class is absent or not
// positive, and otherwise an opaque symbol named after the output ("(selected[0])").

import { TernionError } from '../../errors';
import { floatAttribute, intAttribute, intsAttribute, stringAttribute } from '../attributes';
import { toNumberArray } from '../dtype';
import type { ShapeContext, ShapeFunction } from '../shape-context';
import { formatShape, numericValues } from '../shape-context';
import { opaqueDim } from '../symbolic-dims';
import type { Dim, Shape } from '../types';
import { requireInputType } from './extra-ops';

function modelError(ctx: ShapeContext, message: string): never {
  throw new TernionError('ERR_MODEL_FORMAT', `Node "${ctx.node.name}" (${ctx.node.opType}): ${message}`);
}

/** A string attribute that must be one of `allowed`. */
function choice(ctx: ShapeContext, name: string, fallback: string, allowed: readonly string[]): string {
  const value = stringAttribute(ctx.node, name, fallback);
  if (!allowed.includes(value)) modelError(ctx, `${name} '${value}' is not one of ${allowed.join(', ')}`);
  return value;
}

/** Two dims that must agree when both are known. */
function requireSameDim(ctx: ShapeContext, a: Dim, b: Dim, message: string): void {
  if (typeof a === 'number' && typeof b === 'number' && a !== b) ctx.fail(message);
}

const f32 = Math.fround;

/** One box as float32 corners (min / max of either diagonal, or from its center and size). */
function boxCorners(b: ArrayLike<number>, at: number, centerPointBox: boolean): [number, number, number, number] {
  if (centerPointBox) {
    const halfW = f32(b[at + 2] / 2), halfH = f32(b[at + 3] / 2);
    return [f32(b[at + 1] - halfH), f32(b[at] - halfW), f32(b[at + 1] + halfH), f32(b[at] + halfW)];
  }
  return [Math.min(b[at], b[at + 2]), Math.min(b[at + 1], b[at + 3]), Math.max(b[at], b[at + 2]), Math.max(b[at + 1], b[at + 3])];
}

/** Whether box a is suppressed by selected box b: float32 IoU strictly above the threshold. */
function suppressedBy(a: number[], b: number[], iouThreshold: number): boolean {
  const [ay0, ax0, ay1, ax1] = a, [by0, bx0, by1, bx1] = b;
  const ix0 = Math.max(ax0, bx0), ix1 = Math.min(ax1, bx1);
  if (ix1 <= ix0) return false;
  const iy0 = Math.max(ay0, by0), iy1 = Math.min(ay1, by1);
  if (iy1 <= iy0) return false;
  const intersection = f32(f32(ix1 - ix0) * f32(iy1 - iy0));
  const areaA = f32(f32(ax1 - ax0) * f32(ay1 - ay0)), areaB = f32(f32(bx1 - bx0) * f32(by1 - by0));
  const union = f32(f32(areaA + areaB) - intersection);
  if (intersection <= 0 || areaA <= 0 || areaB <= 0 || union <= 0) return false;
  return f32(intersection / union) > iouThreshold;
}

/** The number of boxes NonMaxSuppression selects from constant inputs (see the native op). */
export function countSelectedBoxes(
  boxes: ArrayLike<number>, scores: ArrayLike<number>, batches: number, classes: number, count: number,
  maxPerClass: number, iouThreshold: number, scoreThreshold: number | undefined, centerPointBox: boolean,
): number {
  let selected = 0;
  for (let b = 0; b < batches; b++) {
    const corners = Array.from({ length: count }, (_, i) => boxCorners(boxes, (b * count + i) * 4, centerPointBox));
    for (let c = 0; c < classes; c++) {
      const base = (b * classes + c) * count;
      const order = Array.from({ length: count }, (_, i) => i)
        .filter((i) => scoreThreshold === undefined || scores[base + i] > scoreThreshold)
        .sort((i, j) => {
          const si = scores[base + i], sj = scores[base + j];
          if (Number.isNaN(si) || Number.isNaN(sj)) return Number(Number.isNaN(si)) - Number(Number.isNaN(sj)) || i - j;
          return sj - si || i - j;
        });
      const chosen: number[] = [];
      for (const i of order) {
        if (chosen.length >= maxPerClass) break;
        if (!chosen.some((j) => suppressedBy(corners[i], corners[j], iouThreshold))) chosen.push(i);
      }
      selected += chosen.length;
    }
  }
  return selected;
}

/** Input i's single numeric value when it is a constant (floats included), else undefined. */
function constantScalar(ctx: ShapeContext, i: number, what: string): number | undefined {
  const c = ctx.constant(i);
  const values = c !== undefined ? toNumberArray(c.data) : numericValues(ctx, i);
  if (values === undefined) return undefined;
  if (values.length !== 1) ctx.fail(`${what} must hold one value, got ${values.length}`);
  return values[0];
}

/** NonMaxSuppression: int64 [num_selected, 3] rows of (batch, class, box). */
export const nonMaxSuppressionShapeFn: ShapeFunction = (ctx) => {
  requireInputType(ctx, 0, ['float32'], 'boxes');
  requireInputType(ctx, 1, ['float32'], 'scores');
  if (ctx.hasInput(2)) requireInputType(ctx, 2, ['int64'], 'max_output_boxes_per_class');
  if (ctx.hasInput(3)) requireInputType(ctx, 3, ['float32'], 'iou_threshold');
  if (ctx.hasInput(4)) requireInputType(ctx, 4, ['float32'], 'score_threshold');
  const centerPointBox = intAttribute(ctx.node, 'center_point_box', 0);
  if (centerPointBox !== 0 && centerPointBox !== 1) modelError(ctx, `center_point_box must be 0 or 1, got ${centerPointBox}`);
  const boxes = ctx.shape(0), scores = ctx.shape(1);
  if (boxes.length !== 3 || (typeof boxes[2] === 'number' && boxes[2] !== 4)) ctx.fail(`boxes must be [batch, boxes, 4], got ${formatShape(boxes)}`);
  if (scores.length !== 3) ctx.fail(`scores must be [batch, classes, boxes], got ${formatShape(scores)}`);
  const disagree = `boxes ${formatShape(boxes)} and scores ${formatShape(scores)} disagree: expected scores [${boxes[0]}, classes, ${boxes[1]}]`;
  requireSameDim(ctx, boxes[0], scores[0], disagree);
  requireSameDim(ctx, boxes[1], scores[2], disagree);

  const maxPerClass = ctx.hasInput(2) ? constantScalar(ctx, 2, 'max_output_boxes_per_class') : 0;
  const iou = ctx.hasInput(3) ? constantScalar(ctx, 3, 'iou_threshold') : 0;
  const scoreThreshold = ctx.hasInput(4) ? constantScalar(ctx, 4, 'score_threshold') : undefined;
  if (iou !== undefined && !(iou >= 0 && iou <= 1)) {
    throw new TernionError('ERR_INVALID_ARGUMENT', `Node "${ctx.node.name}" (NonMaxSuppression): iou_threshold must be in [0, 1], got ${iou}`);
  }
  let count: Dim = opaqueDim(`${ctx.node.outputs[0]}[0]`);
  const boxData = ctx.constant(0), scoreData = ctx.constant(1);
  const [batches, n] = boxes, classes = scores[1];
  if (maxPerClass !== undefined && maxPerClass <= 0) {
    count = 0;
  } else if (maxPerClass !== undefined && iou !== undefined && (scoreThreshold !== undefined || !ctx.hasInput(4)) &&
             boxData !== undefined && scoreData !== undefined &&
             typeof batches === 'number' && typeof n === 'number' && typeof classes === 'number') {
    count = countSelectedBoxes(toNumberArray(boxData.data), toNumberArray(scoreData.data), batches, classes, n, maxPerClass, iou, scoreThreshold, centerPointBox === 1);
  }
  return [{ dtype: 'int64', shape: [count, 3] }];
};

/** RoiAlign: [num_rois, C, output_height, output_width]. */
export const roiAlignShapeFn: ShapeFunction = (ctx) => {
  requireInputType(ctx, 0, ['float32'], 'X');
  requireInputType(ctx, 1, ['float32'], 'rois');
  requireInputType(ctx, 2, ['int64'], 'batch_indices');
  choice(ctx, 'mode', 'avg', ['avg', 'max']);
  choice(ctx, 'coordinate_transformation_mode', ctx.opset >= 16 ? 'half_pixel' : 'output_half_pixel', ['half_pixel', 'output_half_pixel']);
  const outH = intAttribute(ctx.node, 'output_height', 1), outW = intAttribute(ctx.node, 'output_width', 1);
  if (outH < 1 || outW < 1) modelError(ctx, `output_height and output_width must be positive, got ${outH} and ${outW}`);
  const samplingRatio = intAttribute(ctx.node, 'sampling_ratio', 0);
  if (samplingRatio < 0) modelError(ctx, `sampling_ratio must not be negative, got ${samplingRatio}`);
  if (!Number.isFinite(floatAttribute(ctx.node, 'spatial_scale', 1))) modelError(ctx, 'spatial_scale must be a finite number');
  const x = ctx.shape(0), rois = ctx.shape(1), batchIndices = ctx.shape(2);
  if (x.length !== 4) ctx.fail(`X must be 4-D [N, C, H, W], got ${formatShape(x)}`);
  if (rois.length !== 2 || (typeof rois[1] === 'number' && rois[1] !== 4)) ctx.fail(`rois must be [num_rois, 4], got ${formatShape(rois)}`);
  if (batchIndices.length !== 1) ctx.fail(`batch_indices must be 1-D [num_rois], got ${formatShape(batchIndices)}`);
  requireSameDim(ctx, rois[0], batchIndices[0], `batch_indices ${formatShape(batchIndices)} must hold one index per row of rois ${formatShape(rois)}`);
  const numRois = typeof rois[0] === 'number' ? rois[0] : batchIndices[0];
  return [{ dtype: 'float32', shape: [numRois, x[1], outH, outW] }];
};

/** GridSample (4-D): [N, C, H_out, W_out] for grid [N, H_out, W_out, 2]. */
export const gridSampleShapeFn: ShapeFunction = (ctx) => {
  requireInputType(ctx, 0, ['float32'], 'X');
  requireInputType(ctx, 1, ['float32'], 'grid');
  // Opset 20 renamed bilinear / bicubic to linear / cubic.
  choice(ctx, 'mode', ctx.opset >= 20 ? 'linear' : 'bilinear', ctx.opset >= 20 ? ['linear', 'nearest', 'cubic'] : ['bilinear', 'nearest', 'bicubic']);
  choice(ctx, 'padding_mode', 'zeros', ['zeros', 'border', 'reflection']);
  const x = ctx.shape(0), grid = ctx.shape(1);
  if (x.length !== 4) ctx.fail(`X must be 4-D [N, C, H, W] (ternion samples 2-D images only), got ${formatShape(x)}`);
  if (grid.length !== 4 || (typeof grid[3] === 'number' && grid[3] !== 2)) ctx.fail(`grid must be [N, H_out, W_out, 2], got ${formatShape(grid)}`);
  requireSameDim(ctx, x[0], grid[0], `grid ${formatShape(grid)} and X ${formatShape(x)} differ in batch size`);
  return [{ dtype: 'float32', shape: [x[0], x[1], grid[1], grid[2]] }];
};

/** MaxUnpool: output_shape's values when given, else each spatial dim un-pooled. */
export const maxUnpoolShapeFn: ShapeFunction = (ctx) => {
  requireInputType(ctx, 0, ['float32'], 'X');
  requireInputType(ctx, 1, ['int64'], 'I');
  const kernel = intsAttribute(ctx.node, 'kernel_shape');
  if (kernel === undefined || kernel.length === 0) modelError(ctx, 'attribute kernel_shape is required');
  const nd = kernel.length;
  const strides = intsAttribute(ctx.node, 'strides') ?? kernel.map(() => 1);
  const pads = intsAttribute(ctx.node, 'pads') ?? [...kernel, ...kernel].map(() => 0);
  if (strides.length !== nd || pads.length !== nd * 2) {
    modelError(ctx, `kernel_shape [${kernel.join(',')}], strides [${strides.join(',')}] and pads [${pads.join(',')}] disagree in their number of spatial dims`);
  }
  if (kernel.some((k) => k < 1) || strides.some((s) => s < 1) || pads.some((p) => p < 0)) {
    modelError(ctx, 'kernel_shape and strides must be positive and pads not negative');
  }
  const x = ctx.shape(0), indices = ctx.shape(1);
  if (x.length !== nd + 2) ctx.fail(`X ${formatShape(x)} must be [N, C] and ${nd} spatial dims, as kernel_shape has`);
  if (indices.length !== x.length) ctx.fail(`I ${formatShape(indices)} must have X's shape ${formatShape(x)}`);
  x.forEach((d, i) => requireSameDim(ctx, d, indices[i], `I ${formatShape(indices)} must have X's shape ${formatShape(x)}`));
  if (ctx.hasInput(2)) {
    requireInputType(ctx, 2, ['int64'], 'output_shape');
    const given = ctx.shape(2);
    if (given.length !== 1 || (typeof given[0] === 'number' && given[0] !== x.length)) {
      ctx.fail(`output_shape ${formatShape(given)} must be 1-D with one value per dim of X ${formatShape(x)}`);
    }
    const values = ctx.values(2);
    if (values !== undefined) {
      if (values.length !== x.length) ctx.fail(`output_shape [${values.join(',')}] must have one value per dim of X ${formatShape(x)}`);
      if (values.some((v) => typeof v === 'number' && v < 0)) ctx.fail(`output_shape [${values.join(',')}] has a negative dim`);
      return [{ dtype: 'float32', shape: [...values] }];
    }
    return [{ dtype: 'float32', shape: x.map((_, i) => opaqueDim(`${ctx.node.outputs[0]}[${i}]`)) }];
  }
  const shape: Shape = [x[0], x[1], ...kernel.map((k, i): Dim => {
    const d = x[i + 2];
    if (typeof d !== 'number') return opaqueDim(`${ctx.node.outputs[0]}[${i + 2}]`);
    const out = (d - 1) * strides[i] + k - pads[i] - pads[i + nd];
    if (out < 1) ctx.fail(`X ${formatShape(x)} un-pools to output dim ${out} on spatial axis ${i}`);
    return out;
  })];
  return [{ dtype: 'float32', shape }];
};
