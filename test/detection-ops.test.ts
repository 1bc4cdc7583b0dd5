// The detection and spatial-transformer ops (lib/ir/shapes/detection.ts; native
// non-max-suppression.cc, roi-align.cc, grid-sample.cc, max-unpool.cc) against onnxruntime-node on
// models built here: NonMaxSuppression over several batches and classes in both box formats with
// flipped corners, ties, thresholds present and absent and feeding a Gather; RoiAlign in both modes
// and coordinate transformations with regions partly outside the map; GridSample in every mode,
// padding and align_corners with points outside [-1, 1]; MaxUnpool fed by MaxPool's indices. Then
// the errors a bad model or feed gets. Their ONNX conformance cases run in test/conformance.test.ts.
import { describe, expect, it } from 'vitest';
import { inferShapes } from '../lib/ir';
import { loadOnnxModel } from '../lib/onnx';
import { INT64, encodeModel, valueInfo, type ModelSpec, type NodeSpec, type TensorSpec } from './onnx-build-model';
import { anyShape, both, compareAll, ELEM, expectClose, expectLoadError, expectRunError, float, i64, int, ints, seeded, size, str, type Feed } from './ort-compare';

const f32 = (dims: number[], data: ArrayLike<number>): Feed => ({ type: 'float32', data: Float32Array.from(data), dims });

function model(nodes: NodeSpec[], feeds: Record<string, Feed | (number | string)[]>, outputs: Record<string, unknown>[], opset = 16, initializers: TensorSpec[] = []): ModelSpec {
  return {
    opset,
    irVersion: opset >= 19 ? 9 : 8,
    nodes,
    inputs: Object.entries(feeds).map(([name, f]) => (Array.isArray(f) ? valueInfo(name, f) : valueInfo(name, f.dims, ELEM[f.type]))),
    outputs,
    initializers,
  };
}

// ------------------------------------------------------------------ NonMaxSuppression

/**
 * Boxes that overlap a lot: centers on a coarse grid, sizes around its spacing. Corner boxes have
 * every other box's y or x corners swapped (onnxruntime takes min / max of each pair).
 */
function detectionBoxes(batches: number, count: number, seed: number, center: boolean): Float32Array {
  const r = seeded(batches * count * 4, seed);
  const out = new Float32Array(batches * count * 4);
  for (let i = 0; i < batches * count; i++) {
    const cx = Math.round((r[i * 4] + 1) * 4) * 2, cy = Math.round((r[i * 4 + 1] + 1) * 3) * 2;
    const w = 3 + Math.abs(r[i * 4 + 2]) * 4, h = 3 + Math.abs(r[i * 4 + 3]) * 4;
    if (center) {
      out.set([cx, cy, w, h], i * 4);
    } else {
      const [y1, x1, y2, x2] = [cy - h / 2, cx - w / 2, cy + h / 2, cx + w / 2];
      out.set(i % 3 === 1 ? [y2, x1, y1, x2] : i % 3 === 2 ? [y1, x2, y2, x1] : [y1, x1, y2, x2], i * 4);
    }
  }
  return out;
}

/** Scores in [0, 1] rounded to tenths: many ties, broken by box index. */
const tiedScores = (n: number, seed: number) => seeded(n, seed).map((v) => Math.round((v + 1) * 5) / 10);

const nms = (inputs: string[], attributes: Record<string, unknown>[] = []): NodeSpec => ({ op: 'NonMaxSuppression', name: 'nms', inputs, outputs: ['selected'], attributes });

describe('NonMaxSuppression, against onnxruntime', () => {
  const [B, C, N] = [3, 4, 40];

  for (const center of [false, true]) {
    it(`${center ? 'center (center_point_box 1)' : 'corner boxes with flipped corners'}: batches, classes, ties, both thresholds`, async () => {
      const feeds = {
        boxes: f32([B, N, 4], detectionBoxes(B, N, 3, center)),
        scores: f32([B, C, N], tiedScores(B * C * N, 5)),
        max: { type: 'int64', data: i64([15]), dims: [1] } as Feed,
        iou: f32([1], [0.3]),
        score: f32([1], [0.35]),
      };
      const spec = model([nms(['boxes', 'scores', 'max', 'iou', 'score'], center ? [int('center_point_box', 1)] : [])], feeds, [anyShape('selected', INT64)], 11);
      const got = await compareAll(spec, feeds);
      const rows = got.selected.dims[0];
      // Both thresholds bite: fewer than max per (batch, class), but some in each batch.
      expect(rows).toBeGreaterThan(B * C);
      expect(rows).toBeLessThan(B * C * 15);
    });
  }

  it('thresholds absent (IoU 0: any overlap suppresses), max larger than the box count, max 0 and max absent', async () => {
    const feeds = { boxes: f32([B, N, 4], detectionBoxes(B, N, 7, false)), scores: f32([B, C, N], tiedScores(B * C * N, 9)) };
    const initializers: TensorSpec[] = [
      { name: 'big', dataType: INT64, dims: [], int64Data: [1000] },
      { name: 'zero', dataType: INT64, dims: [1], int64Data: [0] },
      { name: 'high_iou', dims: [], floatData: [0.99] },
    ];
    const nodes: NodeSpec[] = [
      { ...nms(['boxes', 'scores', 'big']), name: 'a', outputs: ['no_thresholds'] },
      { ...nms(['boxes', 'scores', 'big', 'high_iou']), name: 'b', outputs: ['nearly_all'] },
      { ...nms(['boxes', 'scores', 'zero', 'high_iou']), name: 'c', outputs: ['max_zero'] },
      { ...nms(['boxes', 'scores']), name: 'd', outputs: ['max_absent'] },
    ];
    const spec = model(nodes, feeds, ['no_thresholds', 'nearly_all', 'max_zero', 'max_absent'].map((n) => anyShape(n, INT64)), 11, initializers);
    const { got, want } = await both(spec, feeds);
    for (const name of Object.keys(want)) expectClose(got[name], want[name], 1e-5, name);
    expect(got.no_thresholds.dims[0]).toBeGreaterThan(B * C);
    expect(got.nearly_all.dims[0]).toBeGreaterThan(B * C * N * 0.9);
    expect(got.no_thresholds.dims[0]).toBeLessThan(got.nearly_all.dims[0]);
    expect(got.max_zero.dims).toEqual([0, 3]);
    expect(got.max_absent.dims).toEqual([0, 3]);
  });

  it('identical boxes and scores keep the lowest index; IoU equal to the threshold is kept; a score equal to score_threshold is dropped', async () => {
    // Boxes 0-2 identical; box 3 overlaps box 4 with IoU exactly 1/3 (area 2 each, intersection 1).
    const boxes = f32([1, 6, 4], [0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 5, 5, 7, 6, 6, 5, 8, 6, 10, 10, 11, 11]);
    const scores = f32([1, 2, 6], [0.5, 0.5, 0.5, 0.9, 0.8, 0.25, 0.25, 0.7, 0.7, 0.6, 0.6, 0.5]);
    const feeds = { boxes, scores, iou: f32([], [1 / 3]), score: f32([], [0.25]) };
    const initializers: TensorSpec[] = [{ name: 'max', dataType: INT64, dims: [], int64Data: [10] }];
    const spec = model([nms(['boxes', 'scores', 'max', 'iou', 'score'])], feeds, [anyShape('selected', INT64)], 11, initializers);
    const got = await compareAll(spec, feeds);
    expect(Array.from(got.selected.data as BigInt64Array, Number)).toEqual([0, 0, 3, 0, 0, 4, 0, 0, 0, 0, 1, 1, 0, 1, 3, 0, 1, 4, 0, 1, 5]);
  });

  it('every input constant: the row count is known at load and matches the run', async () => {
    const boxes = detectionBoxes(2, 25, 11, false), scores = tiedScores(2 * 3 * 25, 13);
    const initializers: TensorSpec[] = [
      { name: 'boxes', dims: [2, 25, 4], floatData: Array.from(boxes) },
      { name: 'scores', dims: [2, 3, 25], floatData: Array.from(scores) },
      { name: 'max', dataType: INT64, dims: [1], int64Data: [4] },
      { name: 'iou', dims: [1], floatData: [0.2] },
      { name: 'score', dims: [1], floatData: [0.3] },
    ];
    const spec: ModelSpec = {
      opset: 11,
      nodes: [nms(['boxes', 'scores', 'max', 'iou', 'score']), { op: 'Add', inputs: ['selected', 'zero'], outputs: ['y'] }],
      inputs: [valueInfo('zero', [1], INT64)],
      outputs: [anyShape('y', INT64)],
      initializers,
    };
    const feeds = { zero: { type: 'int64', data: i64([0]), dims: [1] } as Feed };
    const got = await compareAll(spec, feeds);
    const shape = inferShapes(loadOnnxModel(encodeModel(spec))).valueInfo.get('selected')?.shape;
    expect(shape).toEqual([got.y.dims[0], 3]);
    expect(got.y.dims[0]).toBeGreaterThan(6);
  });

  it('selected indices feed a Gather of the chosen boxes (a run-time sized dim carried on)', async () => {
    const boxes = detectionBoxes(1, 30, 17, false), scores = tiedScores(2 * 30, 19);
    const feeds = { boxes: f32([1, 30, 4], boxes), scores: f32([1, 2, 30], scores), iou: f32([1], [0.4]) };
    const spec = model([
      nms(['boxes', 'scores', 'max', 'iou']),
      { op: 'Gather', inputs: ['selected', 'two'], outputs: ['box_index'], attributes: [int('axis', 1)] },
      { op: 'Squeeze', inputs: ['boxes', 'zero'], outputs: ['box_list'] },
      { op: 'Gather', inputs: ['box_list', 'box_index'], outputs: ['chosen'] },
    ], feeds, [anyShape('chosen')], 13, [
      { name: 'max', dataType: INT64, dims: [1], int64Data: [5] },
      { name: 'two', dataType: INT64, dims: [], int64Data: [2] },
      { name: 'zero', dataType: INT64, dims: [1], int64Data: [0] },
    ]);
    const got = await compareAll(spec, feeds);
    expect(got.chosen.dims[1]).toBe(4);
    expect(got.chosen.dims[0]).toBeGreaterThan(2);
    const shape = inferShapes(loadOnnxModel(encodeModel(spec))).valueInfo.get('chosen')?.shape;
    expect(shape?.[1]).toBe(4);
    expect(typeof shape?.[0]).toBe('string');
  });
});

// ------------------------------------------------------------------ RoiAlign

describe('RoiAlign, against onnxruntime', () => {
  const x = f32([2, 3, 10, 12], seeded(2 * 3 * 10 * 12, 23, 2));
  // x1, y1, x2, y2 at spatial_scale 0.5: inside, partly left / above, partly right / below, a
  // sliver, a region larger than the map, a reversed one.
  const rois = f32([7, 4], [2, 3, 15, 14, -6, -4, 8, 9, 14, 10, 30, 26, 5, 5, 5.6, 12, -10, -8, 40, 30, 3, 2, 20, 17, 16, 12, 4, 3]);
  const batchIndices: Feed = { type: 'int64', data: i64([0, 1, 1, 0, 1, 0, 1]), dims: [7] };
  const feeds = { x, rois, batch_indices: batchIndices };

  const roiNode = (name: string, attributes: Record<string, unknown>[]): NodeSpec => ({
    op: 'RoiAlign', name, inputs: ['x', 'rois', 'batch_indices'], outputs: [name],
    attributes: [int('output_height', 3), int('output_width', 4), float('spatial_scale', 0.5), ...attributes],
  });

  it('opset 16: avg and max, half_pixel (default) and output_half_pixel, sampling_ratio 0 (adaptive) and 2', async () => {
    const nodes: NodeSpec[] = [];
    for (const mode of ['avg', 'max'])
      for (const transform of ['default', 'half_pixel', 'output_half_pixel'])
        for (const ratio of [0, 2]) {
          const attributes = [str('mode', mode), int('sampling_ratio', ratio), ...(transform === 'default' ? [] : [str('coordinate_transformation_mode', transform)])];
          nodes.push(roiNode(`${mode}_${transform}_${ratio}`, attributes));
        }
    const got = await compareAll(model(nodes, feeds, nodes.map((n) => anyShape(n.outputs[0]))), feeds, 1e-5, 2);
    expect(got.avg_default_0.dims).toEqual([7, 3, 3, 4]);
    // The shift by half a pixel and the modes each change the result.
    expect(Array.from(got.avg_half_pixel_2.data as Float32Array)).not.toEqual(Array.from(got.avg_output_half_pixel_2.data as Float32Array));
    expect(Array.from(got.avg_default_0.data as Float32Array)).toEqual(Array.from(got.avg_half_pixel_0.data as Float32Array));
    expect(Array.from(got.max_half_pixel_0.data as Float32Array)).not.toEqual(Array.from(got.avg_half_pixel_0.data as Float32Array));
  });

  it('opset 10: no shift by default (output_half_pixel), avg and max', async () => {
    const nodes = [roiNode('avg', []), roiNode('max', [str('mode', 'max'), int('sampling_ratio', 3)])];
    const got = await compareAll(model(nodes, feeds, nodes.map((n) => anyShape(n.outputs[0])), 10), feeds);
    const shifted = await compareAll(model([roiNode('half', [str('coordinate_transformation_mode', 'half_pixel')])], feeds, [anyShape('half')], 16), feeds);
    expect(Array.from(got.avg.data as Float32Array)).not.toEqual(Array.from(shifted.half.data as Float32Array));
  });
});

// ------------------------------------------------------------------ GridSample

describe('GridSample, against onnxruntime', () => {
  // Width 8: a grid x of 0 or 0.25 lands on a half pixel (3.5, 4.5) without align_corners, where
  // nearest rounds to even.
  const x = f32([2, 3, 5, 8], seeded(2 * 3 * 5 * 8, 29, 2));
  const grid = f32([2, 4, 6, 2], seeded(2 * 4 * 6 * 2, 31, 1.4));
  // Exact corners and centers, points far outside (several reflections), half pixels.
  (grid.data as Float32Array).set([-1, -1, 1, 1, 0, 0, 0.25, 0.25, -3.7, 2.9, 5.3, -4.4, 1, -1, -1.05, 1.02], 0);

  it('opset 16: every mode x padding_mode x align_corners, points outside [-1, 1]', async () => {
    const nodes: NodeSpec[] = [];
    for (const mode of ['bilinear', 'nearest', 'bicubic'])
      for (const padding of ['zeros', 'border', 'reflection'])
        for (const align of [0, 1]) {
          const name = `${mode}_${padding}_${align}`;
          nodes.push({ op: 'GridSample', name, inputs: ['x', 'grid'], outputs: [name], attributes: [str('mode', mode), str('padding_mode', padding), int('align_corners', align)] });
        }
    nodes.push({ op: 'GridSample', name: 'defaults', inputs: ['x', 'grid'], outputs: ['defaults'] });
    const feeds = { x, grid };
    const got = await compareAll(model(nodes, feeds, nodes.map((n) => anyShape(n.outputs[0]))), feeds, 1e-5, 2);
    expect(got.defaults.dims).toEqual([2, 3, 4, 6]);
    expect(Array.from(got.defaults.data as Float32Array)).toEqual(Array.from(got.bilinear_zeros_0.data as Float32Array));
    // Points outside: zeros reads 0 there, border and reflection do not.
    const far = 4;  // grid point (n 0, h 0, w 4): (-3.7, 2.9)
    expect((got.bicubic_zeros_0.data as Float32Array)[far]).toBe(0);
    expect((got.bicubic_border_0.data as Float32Array)[far]).not.toBe(0);
    expect((got.bicubic_reflection_0.data as Float32Array)[far]).not.toBe(0);
  });

  it('opset 20 names: linear, nearest, cubic', async () => {
    const nodes: NodeSpec[] = ['linear', 'nearest', 'cubic'].map((mode) => ({
      op: 'GridSample', name: mode, inputs: ['x', 'grid'], outputs: [mode], attributes: [str('mode', mode), str('padding_mode', 'reflection')],
    }));
    const feeds = { x, grid };
    await compareAll(model(nodes, feeds, nodes.map((n) => anyShape(n.outputs[0])), 20), feeds);
  });
});

// ------------------------------------------------------------------ MaxUnpool

describe('MaxUnpool, against onnxruntime', () => {
  const even = f32([2, 3, 6, 8], seeded(2 * 3 * 6 * 8, 37, 3));
  const odd = f32([2, 3, 7, 9], seeded(2 * 3 * 7 * 9, 41, 3));

  for (const opset of [9, 11]) {
    it(`opset ${opset}: after MaxPool, without output_shape, with overlapping padded windows, and (opset 11) with the pooled input's shape`, async () => {
      const k2 = [ints('kernel_shape', [2, 2]), ints('strides', [2, 2])];
      const k3 = [ints('kernel_shape', [3, 3]), ints('strides', [2, 2]), ints('pads', [1, 1, 1, 1])];
      const nodes: NodeSpec[] = [
        { op: 'MaxPool', inputs: ['even'], outputs: ['pooled', 'indices'], attributes: k2 },
        { op: 'MaxUnpool', name: 'plain', inputs: ['pooled', 'indices'], outputs: ['plain'], attributes: k2 },
        { op: 'MaxPool', inputs: ['odd'], outputs: ['pooled3', 'indices3'], attributes: k3 },
        { op: 'MaxUnpool', name: 'padded', inputs: ['pooled3', 'indices3'], outputs: ['padded'], attributes: k3 },
        ...(opset >= 11 ? [
          // Pooling drops the odd input's last row and column; its shape restores them.
          { op: 'MaxPool', inputs: ['odd'], outputs: ['pooled_odd', 'indices_odd'], attributes: k2 },
          { op: 'Shape', inputs: ['odd'], outputs: ['odd_shape'] },
          { op: 'MaxUnpool', name: 'shaped', inputs: ['pooled_odd', 'indices_odd', 'odd_shape'], outputs: ['shaped'], attributes: k2 },
        ] : []),
      ];
      const outputs = ['plain', 'padded', ...(opset >= 11 ? ['shaped'] : [])];
      const feeds = { even, odd };
      const spec = model(nodes, feeds, outputs.map((n) => anyShape(n)), opset);
      const got = await compareAll(spec, feeds);
      expect(got.plain.dims).toEqual([2, 3, 6, 8]);
      expect(got.padded.dims).toEqual([2, 3, 7, 9]);
      if (opset >= 11) {
        expect(got.shaped.dims).toEqual([2, 3, 7, 9]);
        expect(inferShapes(loadOnnxModel(encodeModel(spec))).valueInfo.get('shaped')?.shape).toEqual([2, 3, 7, 9]);
      }
    });
  }
});

// ------------------------------------------------------------------ errors

describe('detection ops: errors', () => {
  const i64Feed = (values: number[], dims: number[]): Feed => ({ type: 'int64', data: i64(values), dims });

  it('NonMaxSuppression: boxes and scores that disagree (at load and at run), an IoU threshold outside [0, 1], int32 boxes', async () => {
    const staticBad = model([nms(['boxes', 'scores'])], { boxes: [1, 5, 4], scores: [1, 2, 6] }, [anyShape('selected', INT64)], 11);
    await expectLoadError(staticBad, 'ERR_SHAPE_MISMATCH', /"nms" \(NonMaxSuppression\): boxes \[1,5,4\] and scores \[1,2,6\] disagree/);
    const symbolic = model([nms(['boxes', 'scores', 'max', 'iou'])], { boxes: ['B', 'N', 4], scores: ['B', 'C', 'M'], max: [1], iou: [1] }, [anyShape('selected', INT64)], 11);
    symbolic.inputs[2] = valueInfo('max', [1], INT64);
    const feeds = { boxes: f32([1, 5, 4], seeded(20, 1)), scores: f32([1, 2, 6], seeded(12, 2)), max: i64Feed([3], [1]), iou: f32([1], [0.5]) };
    await expectRunError(symbolic, feeds, 'ERR_SHAPE_MISMATCH', /NonMaxSuppression node 'nms'.*boxes \[1, ?5, ?4\] and scores \[1, ?2, ?6\] disagree/);
    await expectRunError(symbolic, { ...feeds, scores: f32([1, 2, 5], seeded(10, 2)), iou: f32([1], [1.5]) }, 'ERR_INVALID_ARGUMENT', /iou_threshold must be in \[0, 1\]/);
    const int32Boxes = model([nms(['boxes', 'scores'])], { scores: [1, 2, 5] }, [anyShape('selected', INT64)], 11);
    int32Boxes.inputs.unshift(valueInfo('boxes', [1, 5, 4], 6));
    await expectLoadError(int32Boxes, 'ERR_DTYPE', /"nms" \(NonMaxSuppression\): boxes is int32/);
  });

  it('RoiAlign: a batch index out of range, rois and batch_indices of different lengths, an unknown mode', async () => {
    const node: NodeSpec = { op: 'RoiAlign', name: 'roi', inputs: ['x', 'rois', 'batch_indices'], outputs: ['y'], attributes: [int('output_height', 2), int('output_width', 2)] };
    const spec = model([node], { x: ['N', 2, 6, 6], rois: ['R', 4] }, [anyShape('y')]);
    spec.inputs.push(valueInfo('batch_indices', ['K'], INT64));
    const feeds = { x: f32([2, 2, 6, 6], seeded(144, 3)), rois: f32([3, 4], [0, 0, 3, 3, 1, 1, 4, 5, 2, 0, 5, 2]), batch_indices: i64Feed([0, 1, 2], [3]) };
    await expectRunError(spec, feeds, 'ERR_INVALID_ARGUMENT', /RoiAlign node 'roi'.*batch_indices\[2\] = 2 is out of range for X with batch size 2/);
    await expectRunError(spec, { ...feeds, batch_indices: i64Feed([0, 1], [2]) }, 'ERR_SHAPE_MISMATCH', /batch_indices \[2\] must be \[3\], one per row of rois/);
    await expectLoadError(model([{ ...node, attributes: [str('mode', 'sum')] }], { x: [1, 2, 6, 6], rois: [3, 4], batch_indices: [3] }, [anyShape('y')]),
      'ERR_DTYPE', /batch_indices is float32/);
    const badMode = model([{ ...node, attributes: [str('mode', 'sum')] }], { x: [1, 2, 6, 6], rois: [3, 4] }, [anyShape('y')]);
    badMode.inputs.push(valueInfo('batch_indices', [3], INT64));
    await expectLoadError(badMode, 'ERR_MODEL_FORMAT', /"roi" \(RoiAlign\): mode 'sum' is not one of avg, max/);
  });

  it('GridSample: a grid whose last dim is not 2, batch sizes that differ, 5-D input, opset 16 names at opset 20', async () => {
    const node: NodeSpec = { op: 'GridSample', name: 'gs', inputs: ['x', 'grid'], outputs: ['y'] };
    const spec = model([node], { x: ['N', 2, 4, 4], grid: ['M', 3, 3, 'T'] }, [anyShape('y')]);
    const feeds = { x: f32([1, 2, 4, 4], seeded(32, 4)), grid: f32([1, 3, 3, 3], seeded(27, 5)) };
    await expectRunError(spec, feeds, 'ERR_SHAPE_MISMATCH', /GridSample node 'gs'.*grid must be \[N, H_out, W_out, 2\]/);
    await expectRunError(spec, { ...feeds, grid: f32([2, 3, 3, 2], seeded(36, 5)) }, 'ERR_SHAPE_MISMATCH', /differ in batch size/);
    await expectLoadError(model([node], { x: [1, 2, 3, 4, 4], grid: [1, 3, 3, 3, 3] }, [anyShape('y')], 20), 'ERR_SHAPE_MISMATCH', /"gs" \(GridSample\): X must be 4-D/);
    await expectLoadError(model([{ ...node, attributes: [str('mode', 'bicubic')] }], { x: [1, 2, 4, 4], grid: [1, 3, 3, 2] }, [anyShape('y')], 20),
      'ERR_MODEL_FORMAT', /mode 'bicubic' is not one of linear, nearest, cubic/);
  });

  it('MaxUnpool: an index outside the output, an output_shape of the wrong length, indices of another shape', async () => {
    const node: NodeSpec = { op: 'MaxUnpool', name: 'unpool', inputs: ['x', 'i', 'shape'], outputs: ['y'], attributes: [ints('kernel_shape', [2, 2]), ints('strides', [2, 2])] };
    const spec = model([node], { x: [1, 1, 2, 2] }, [anyShape('y')], 11);
    spec.inputs.push(valueInfo('i', [1, 1, 2, 2], INT64), valueInfo('shape', ['S'], INT64));
    const feeds = { x: f32([1, 1, 2, 2], [1, 2, 3, 4]), i: i64Feed([0, 3, 9, 16], [1, 1, 2, 2]), shape: i64Feed([1, 1, 4, 4], [4]) };
    await expectRunError(spec, feeds, 'ERR_INVALID_ARGUMENT', /MaxUnpool node 'unpool'.*I\[3\] = 16 is outside the output \[1, ?1, ?4, ?4\] of 16 elements/);
    await expectRunError(spec, { ...feeds, shape: i64Feed([1, 4, 4], [3]) }, 'ERR_SHAPE_MISMATCH', /output_shape \[1, ?4, ?4\] must have one value per dim of X/);
    const other = model([{ ...node, inputs: ['x', 'i'] }], { x: [1, 1, 2, 2] }, [anyShape('y')], 11);
    other.inputs.push(valueInfo('i', [1, 1, 2, 3], INT64));
    await expectLoadError(other, 'ERR_SHAPE_MISMATCH', /"unpool" \(MaxUnpool\): I \[1,1,2,3\] must have X's shape \[1,1,2,2\]/);
  });
});
