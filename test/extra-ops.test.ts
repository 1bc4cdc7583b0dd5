// The less common ops (lib/ir/shapes/extra-ops.ts, einsum.ts; native math.cc, reduce.cc,
// softmax.cc, mean-variance-normalization.cc, eye-like.cc, gather-nd.cc, scatter-elements.cc,
// one-hot.cc, select.cc, reverse-sequence.cc, einsum.cc) against onnxruntime-node on models built
// here: odd sizes, attribute variants, negative indices, float and integer data, NonZero and
// Compress feeding later ops, and the errors a bad model or feed gets. Their single-op ONNX
// conformance cases run in test/conformance.test.ts; the Einsum ones there are float64, which
// ternion does not hold, so they are rerun here in float32 against the same expected outputs.
import { describe, expect, it } from 'vitest';
import { InferenceSession, Tensor } from '../lib';
import type { TensorType } from '../lib/tensor';
import { inferShapes } from '../lib/ir';
import { loadOnnxModel } from '../lib/onnx';
import { INT64, encodeModel, valueInfo, type ModelSpec, type NodeSpec } from './onnx-build-model';
import { nodeTestDir, readModelBytes, readTestTensors } from './onnx-testdata';
import { anyShape, both, compareAll, ELEM, expectClose, expectRunError, float, i64, int, ints, seeded, size, str, type Feed } from './ort-compare';

const INT32 = 6, BOOL = 9;

const f32 = (dims: number[], seed: number, scale = 1): Feed => ({ type: 'float32', data: seeded(size(dims), seed, scale), dims });

/** One single-node model: inputs typed by their feeds, outputs' shapes left to inference. */
function singleOp(node: NodeSpec, feeds: Record<string, Feed>, outputType = 1, opset = 13, initializers: ModelSpec['initializers'] = []): ModelSpec {
  return {
    opset,
    irVersion: opset >= 19 ? 9 : 8,
    nodes: [node],
    inputs: Object.entries(feeds).map(([name, f]) => valueInfo(name, f.dims, ELEM[f.type])),
    outputs: node.outputs.map((o) => anyShape(o, outputType)),
    initializers,
  };
}

describe('unary float math, against onnxruntime', () => {
  it('Tan, Asin, Acos, Atan, Sinh, Cosh, Asinh, Acosh, Atanh (NaN outside their domains)', async () => {
    const ops = ['Tan', 'Asin', 'Acos', 'Atan', 'Sinh', 'Cosh', 'Asinh', 'Acosh', 'Atanh'];
    const x = f32([3, 37], 5, 3);  // [-3, 3]: outside asin/acos/atanh's domains and below acosh's
    x.data[0] = 1;
    x.data[1] = -1;
    const spec: ModelSpec = {
      opset: 13,
      nodes: ops.map((op) => ({ op, inputs: ['x'], outputs: [op.toLowerCase()] })),
      inputs: [valueInfo('x', [3, 37])],
      outputs: ops.map((op) => anyShape(op.toLowerCase())),
    };
    const got = await compareAll(spec, { x }, 1e-5);
    expect(Array.from(got.asin.data as Float32Array).filter(Number.isNaN).length).toBeGreaterThan(10);
    expect((got.atanh.data as Float32Array)[0]).toBe(Infinity);
  });

  it('IsNaN and IsInf (both signs, one sign each)', async () => {
    const x = f32([5, 7], 9, 4);
    [0, 6, 11, 20].forEach((i) => { x.data[i] = NaN; });
    [1, 13].forEach((i) => { x.data[i] = Infinity; });
    [2, 30].forEach((i) => { x.data[i] = -Infinity; });
    const spec: ModelSpec = {
      opset: 13,
      nodes: [
        { op: 'IsNaN', inputs: ['x'], outputs: ['nan'] },
        { op: 'IsInf', inputs: ['x'], outputs: ['inf'] },
        { op: 'IsInf', inputs: ['x'], outputs: ['pos'], attributes: [int('detect_negative', 0)] },
        { op: 'IsInf', inputs: ['x'], outputs: ['neg'], attributes: [int('detect_positive', 0)] },
      ],
      inputs: [valueInfo('x', [5, 7])],
      outputs: ['nan', 'inf', 'pos', 'neg'].map((n) => anyShape(n, BOOL)),
    };
    const got = await compareAll(spec, { x });
    const count = (name: string) => Array.from(got[name].data as Uint8Array).filter((v) => v === 1).length;
    expect([count('nan'), count('inf'), count('pos'), count('neg')]).toEqual([4, 4, 2, 2]);
  });

  it('Shrink: hard, soft, default attributes, and int32 / int8 (truncated)', async () => {
    const x = f32([4, 11], 13, 3);
    const spec: ModelSpec = {
      opset: 13,
      nodes: [
        { op: 'Shrink', inputs: ['x'], outputs: ['hard'], attributes: [float('lambd', 1.5)] },
        { op: 'Shrink', inputs: ['x'], outputs: ['soft'], attributes: [float('lambd', 1.2), float('bias', 1.2)] },
        { op: 'Shrink', inputs: ['x'], outputs: ['dflt'] },
        { op: 'Cast', inputs: ['x'], outputs: ['xi'], attributes: [int('to', INT32)] },
        { op: 'Shrink', inputs: ['xi'], outputs: ['int'], attributes: [float('lambd', 1.5), float('bias', 0.7)] },
        { op: 'Cast', inputs: ['x'], outputs: ['x8'], attributes: [int('to', 3)] },
        { op: 'Shrink', inputs: ['x8'], outputs: ['i8'], attributes: [float('lambd', 0.5), float('bias', 0.25)] },
      ],
      inputs: [valueInfo('x', [4, 11])],
      outputs: [anyShape('hard'), anyShape('soft'), anyShape('dflt'), anyShape('int', INT32), anyShape('i8', 3)],
    };
    await compareAll(spec, { x });
  });
});

describe('Hardmax, ReduceLogSum, MeanVarianceNormalization, EyeLike, against onnxruntime', () => {
  it('Hardmax: opset 11 coerces to 2-D at axis, opset 13 takes one axis; ties pick the first', async () => {
    // Values rounded to halves: many ties in every line.
    const x: Feed = { type: 'float32', data: seeded(2 * 3 * 5 * 7, 17, 2).map((v) => Math.round(v * 2) / 2), dims: [2, 3, 5, 7] };
    for (const [opset, axes] of [[11, [0, 1, 2, 3, -1, -3]], [13, [0, 1, 2, -1, -4]]] as const) {
      const spec: ModelSpec = {
        opset,
        nodes: [
          { op: 'Hardmax', inputs: ['x'], outputs: ['dflt'] },
          ...axes.map((a, i) => ({ op: 'Hardmax', inputs: ['x'], outputs: [`a${i}`], attributes: [int('axis', a)] })),
        ],
        inputs: [valueInfo('x', x.dims)],
        outputs: [anyShape('dflt'), ...axes.map((_, i) => anyShape(`a${i}`))],
      };
      const got = await compareAll(spec, { x });
      // One 1 per line: opset 13's default axis (-1) has 2*3*5 lines.
      if (opset === 13) expect(Array.from(got.dflt.data as Float32Array).filter((v) => v === 1).length).toBe(30);
    }
  });

  it('ReduceLogSum: axes attribute (opset 13) and input (opset 18), keepdims, noop_with_empty_axes', async () => {
    const x: Feed = { type: 'float32', data: seeded(3 * 4 * 5 * 2, 19, 2).map((v) => Math.abs(v) + 0.05), dims: [3, 4, 5, 2] };
    const spec13: ModelSpec = {
      opset: 13,
      nodes: [
        { op: 'ReduceLogSum', inputs: ['x'], outputs: ['all'] },
        { op: 'ReduceLogSum', inputs: ['x'], outputs: ['a12'], attributes: [ints('axes', [1, 2]), int('keepdims', 0)] },
        { op: 'ReduceLogSum', inputs: ['x'], outputs: ['last'], attributes: [ints('axes', [-1])] },
        { op: 'ReduceLogSum', inputs: ['x'], outputs: ['a02'], attributes: [ints('axes', [2, 0])] },
      ],
      inputs: [valueInfo('x', x.dims)],
      outputs: ['all', 'a12', 'last', 'a02'].map((n) => anyShape(n)),
    };
    await compareAll(spec13, { x });
    const spec18: ModelSpec = {
      opset: 18,
      irVersion: 8,
      nodes: [
        { op: 'ReduceLogSum', inputs: ['x', 'axes'], outputs: ['a3'], attributes: [int('keepdims', 0)] },
        { op: 'ReduceLogSum', inputs: ['x'], outputs: ['all'] },
        { op: 'ReduceLogSum', inputs: ['x', ''], outputs: ['noop'], attributes: [int('noop_with_empty_axes', 1)] },
      ],
      inputs: [valueInfo('x', x.dims)],
      outputs: ['a3', 'all', 'noop'].map((n) => anyShape(n)),
      initializers: [{ name: 'axes', dataType: INT64, dims: [2], int64Data: [3, -3] }],
    };
    const got = await compareAll(spec18, { x });
    expect(got.noop.dims).toEqual([3, 4, 5, 2]);
    expect(got.a3.dims).toEqual([3, 5]);
  });

  it('MeanVarianceNormalization: default axes [0, 2, 3], chosen and negative axes, opset 9 and 13', async () => {
    const x: Feed = { type: 'float32', data: seeded(2 * 3 * 5 * 7, 23, 4).map((v, i) => v + (i % 7)), dims: [2, 3, 5, 7] };
    for (const opset of [9, 13]) {
      const spec: ModelSpec = {
        opset,
        nodes: [
          { op: 'MeanVarianceNormalization', inputs: ['x'], outputs: ['dflt'] },
          { op: 'MeanVarianceNormalization', inputs: ['x'], outputs: ['last'], attributes: [ints('axes', [-1])] },
          { op: 'MeanVarianceNormalization', inputs: ['x'], outputs: ['a13'], attributes: [ints('axes', [1, 3])] },
        ],
        inputs: [valueInfo('x', x.dims)],
        outputs: ['dflt', 'last', 'a13'].map((n) => anyShape(n)),
      };
      await compareAll(spec, { x }, 1e-4);
    }
  });

  it('EyeLike: k on and off the diagonal (past the edge too), dtype or the input type', async () => {
    const x: Feed = { type: 'int32', data: new Int32Array(15), dims: [3, 5] };
    const spec: ModelSpec = {
      opset: 13,
      nodes: [
        { op: 'EyeLike', inputs: ['x'], outputs: ['same'] },
        { op: 'EyeLike', inputs: ['x'], outputs: ['up'], attributes: [int('k', 2), int('dtype', 1)] },
        { op: 'EyeLike', inputs: ['x'], outputs: ['down'], attributes: [int('k', -1), int('dtype', 7)] },
        { op: 'EyeLike', inputs: ['x'], outputs: ['edge'], attributes: [int('k', 4)] },
        { op: 'EyeLike', inputs: ['t'], outputs: ['tall'], attributes: [int('k', -3)] },
      ],
      inputs: [valueInfo('x', [3, 5], INT32), valueInfo('t', [6, 2])],
      outputs: [anyShape('same', INT32), anyShape('up'), anyShape('down', INT64), anyShape('edge', INT32), anyShape('tall')],
    };
    const got = await compareAll(spec, { x, t: f32([6, 2], 1) });
    expect(Array.from(got.up.data as Float32Array)).toEqual([0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 1]);
    // k beyond the columns gives all zeros; bool output (onnxruntime has no bool EyeLike).
    const run = async (k: number, dtype: number) => {
      const s = await InferenceSession.create(encodeModel(singleOp({ op: 'EyeLike', inputs: ['x'], outputs: ['y'], attributes: [int('k', k), int('dtype', dtype)] }, { x }, dtype)));
      const y = (await s.run({ x: new Tensor('int32', x.data as Int32Array, x.dims) })).y;
      await s.release();
      return y;
    };
    expect(Array.from((await run(5, INT32)).data as Int32Array).every((v) => v === 0)).toBe(true);
    const b = await run(-2, BOOL);
    expect(b.type).toBe('bool');
    expect(Array.from(b.data as Uint8Array)).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]);
  });
});

describe('GatherND, ScatterElements, Scatter, OneHot, ReverseSequence, against onnxruntime', () => {
  it('GatherND: whole tuples, partial tuples, batch_dims 1 and 2, negative indices, float and int64 data', async () => {
    const data = f32([3, 4, 5, 2], 29);
    const di: Feed = { type: 'int64', data: i64(Array.from(data.data as Float32Array, (v) => Math.round(v * 1000))), dims: data.dims };
    const spec: ModelSpec = {
      opset: 13,
      nodes: [
        { op: 'GatherND', inputs: ['d', 'full'], outputs: ['g_full'] },
        { op: 'GatherND', inputs: ['d', 'pair'], outputs: ['g_pair'] },
        { op: 'GatherND', inputs: ['di', 'pair'], outputs: ['gi_pair'] },
        { op: 'GatherND', inputs: ['d', 'b1'], outputs: ['g_b1'], attributes: [int('batch_dims', 1)] },
        { op: 'GatherND', inputs: ['di', 'b2'], outputs: ['gi_b2'], attributes: [int('batch_dims', 2)] },
      ],
      inputs: [valueInfo('d', data.dims), valueInfo('di', data.dims, INT64)],
      outputs: [anyShape('g_full'), anyShape('g_pair'), anyShape('gi_pair', INT64), anyShape('g_b1'), anyShape('gi_b2', INT64)],
      initializers: [
        // [2, 4]: whole tuples pick single elements.
        { name: 'full', dataType: INT64, dims: [2, 4], int64Data: [2, -1, 4, 1, -3, 0, -5, 0] },
        // [3, 1, 2]: pairs pick [5, 2] slices.
        { name: 'pair', dataType: INT64, dims: [3, 1, 2], int64Data: [0, 3, -1, -4, 1, 2] },
        // batch_dims 1: per batch entry of 3, [2, 2] tuples into [4, 5, 2].
        { name: 'b1', dataType: INT64, dims: [3, 2, 2], int64Data: [0, 1, 3, -1, 2, 2, -4, 0, 1, 1, 3, 4] },
        // batch_dims 2: per [3, 4] entry, one index into [5, 2]'s first axis.
        { name: 'b2', dataType: INT64, dims: [3, 4, 1], int64Data: [0, 1, 2, 3, 4, -1, -2, -3, -4, -5, 0, 2] },
      ],
    };
    const got = await compareAll(spec, { d: data, di });
    expect(got.g_pair.dims).toEqual([3, 1, 5, 2]);
    expect(got.gi_b2.dims).toEqual([3, 4, 2]);
  });

  it('ScatterElements: axes 0, 1, -1; reductions none, add, mul (opset 16), max, min (opset 18); int64 and bool data; Scatter (opset 10)', async () => {
    const data = f32([4, 6], 31, 3);
    const upd = f32([3, 6], 37, 3);
    const dataI: Feed = { type: 'int64', data: i64(Array.from(data.data as Float32Array, (v) => Math.round(v * 10))), dims: [4, 6] };
    // Rows picked per column (axis 0), with repeats and negative values; every column distinct.
    const idx0 = [0, 1, 2, 3, -1, -2, 3, 2, 1, 0, -4, -3, 1, 1, -1, 2, 0, 3];
    // Columns picked per row (axis 1 / -1), shape [4, 3].
    const idx1 = [5, 0, -1, 2, 2, -6, 4, 1, 3, 0, 0, 5];
    const nodes = (opset: number): NodeSpec[] => {
      const list: NodeSpec[] = [
        { op: 'ScatterElements', inputs: ['d', 'i0', 'u'], outputs: ['none0'] },
        { op: 'ScatterElements', inputs: ['d', 'i1', 'u1'], outputs: ['none1'], attributes: [int('axis', 1)] },
        { op: 'ScatterElements', inputs: ['di', 'i1', 'u1i'], outputs: ['inone1'], attributes: [int('axis', -1)] },
      ];
      for (const r of opset >= 18 ? ['add', 'mul', 'max', 'min'] : ['add', 'mul']) {
        list.push({ op: 'ScatterElements', inputs: ['d', 'i0', 'u'], outputs: [`${r}0`], attributes: [str('reduction', r)] });
        list.push({ op: 'ScatterElements', inputs: ['di', 'i1', 'u1i'], outputs: [`i${r}1`], attributes: [int('axis', 1), str('reduction', r)] });
      }
      return list;
    };
    for (const opset of [16, 18]) {
      const list = nodes(opset);
      const spec: ModelSpec = {
        opset,
        irVersion: 8,
        nodes: [
          { op: 'Slice', inputs: ['d', 'zero', 'three', 'one'], outputs: ['u1'] },  // [4, 3] updates for axis 1
          { op: 'Slice', inputs: ['di', 'zero', 'three', 'one'], outputs: ['u1i'] },
          ...list,
        ],
        inputs: [valueInfo('d', [4, 6]), valueInfo('i0', [3, 6], INT64), valueInfo('u', [3, 6]), valueInfo('di', [4, 6], INT64), valueInfo('i1', [4, 3], INT64)],
        outputs: list.map((n) => anyShape(n.outputs[0], n.inputs[0] === 'di' ? INT64 : 1)),
        initializers: [
          { name: 'zero', dataType: INT64, dims: [1], int64Data: [0] },
          { name: 'three', dataType: INT64, dims: [1], int64Data: [3] },
          { name: 'one', dataType: INT64, dims: [1], int64Data: [1] },
        ],
      };
      const feeds = { d: data, i0: { type: 'int64' as const, data: i64(idx0), dims: [3, 6] }, u: upd, di: dataI, i1: { type: 'int64' as const, data: i64(idx1), dims: [4, 3] } };
      await compareAll(spec, feeds);
    }
    // Scatter (opsets 9-10) is ScatterElements without reduction; bool data too.
    const scatter: ModelSpec = {
      opset: 10,
      nodes: [
        { op: 'Scatter', inputs: ['d', 'i0', 'u'], outputs: ['s0'] },
        { op: 'Scatter', inputs: ['b', 'i0', 'ub'], outputs: ['sb'] },
      ],
      inputs: [valueInfo('d', [4, 6]), valueInfo('i0', [3, 6], INT64), valueInfo('u', [3, 6]), valueInfo('b', [4, 6], BOOL), valueInfo('ub', [3, 6], BOOL)],
      outputs: [anyShape('s0'), anyShape('sb', BOOL)],
    };
    const bools = (n: number, seed: number) => Uint8Array.from(seeded(n, seed), (v) => (v > 0 ? 1 : 0));
    await compareAll(scatter, { d: data, i0: { type: 'int64', data: i64(idx0), dims: [3, 6] }, u: upd, b: { type: 'bool', data: bools(24, 3), dims: [4, 6] }, ub: { type: 'bool', data: bools(18, 4), dims: [3, 6] } });
  });

  it('OneHot: default, first and negative axes; negative and out-of-range indices; float indices and depth; int64 values', async () => {
    // Float indices here are whole numbers: onnxruntime matches a fractional one to no class,
    // where ONNX says it is cast to int64 (ternion does; checked below).
    const spec: ModelSpec = {
      opset: 11,
      nodes: [
        { op: 'OneHot', inputs: ['idx', 'depth', 'vals'], outputs: ['last'] },
        { op: 'OneHot', inputs: ['idx', 'depth', 'vals'], outputs: ['first'], attributes: [int('axis', 0)] },
        { op: 'OneHot', inputs: ['idx', 'depth', 'ivals'], outputs: ['mid'], attributes: [int('axis', -2)] },
        { op: 'OneHot', inputs: ['fidx', 'fdepth', 'vals'], outputs: ['fl'], attributes: [int('axis', 1)] },
      ],
      inputs: [valueInfo('idx', [3, 4], INT64), valueInfo('fidx', [5])],
      outputs: [anyShape('last'), anyShape('first'), anyShape('mid', INT64), anyShape('fl')],
      initializers: [
        { name: 'depth', dataType: INT64, dims: [], int64Data: [5] },
        { name: 'fdepth', dims: [1], floatData: [4.7] },
        { name: 'vals', dims: [2], floatData: [-0.5, 3] },
        { name: 'ivals', dataType: INT64, dims: [2], int64Data: [7, -9] },
      ],
    };
    const got = await compareAll(spec, {
      idx: { type: 'int64', data: i64([0, 4, -1, -5, 5, -6, 2, 3, 1, 99, -2, 0]), dims: [3, 4] },
      fidx: { type: 'float32', data: Float32Array.from([1, -1, 3, 4, -4]), dims: [5] },
    });
    expect(got.last.dims).toEqual([3, 4, 5]);
    expect(got.mid.dims).toEqual([3, 5, 4]);
    expect(got.fl.dims).toEqual([5, 4]);
    const s = await InferenceSession.create(encodeModel(spec));
    const fl = (await s.run({ idx: new Tensor('int64', i64(new Array(12).fill(0)), [3, 4]), fidx: new Tensor('float32', [1.9, -1.2, 3.99, 4.5, -4.7], [5]) })).fl;
    await s.release();
    // depth 4.7 -> 4 classes; 1.9 -> 1, -1.2 -> -1 (class 3), 3.99 -> 3, 4.5 -> 4 (out of range), -4.7 -> -4 (class 0).
    const hot = Array.from({ length: 5 }, (_, i) => Array.from(fl.data as Float32Array).slice(i * 4, i * 4 + 4).indexOf(3));
    expect(hot).toEqual([1, 3, 3, -1, 0]);
  });

  it('every element type ternion holds: GatherND, ScatterElements, Compress, ReverseSequence, NonZero on int32, int8, uint8 and bool', async () => {
    const types: [string, number][] = [['int32', INT32], ['int8', 3], ['uint8', 2], ['bool', BOOL]];
    const nodes: NodeSpec[] = [];
    const outputs: Record<string, unknown>[] = [];
    for (const [t, code] of types) {
      nodes.push(
        { op: 'Cast', inputs: ['x'], outputs: [`x_${t}`], attributes: [int('to', code)] },
        { op: 'Cast', inputs: ['u'], outputs: [`u_${t}`], attributes: [int('to', code)] },
        { op: 'GatherND', inputs: [`x_${t}`, 'pairs'], outputs: [`gnd_${t}`] },
        { op: 'ScatterElements', inputs: [`x_${t}`, 'cols', `u_${t}`], outputs: [`sct_${t}`], attributes: [int('axis', 1)] },
        { op: 'Compress', inputs: [`x_${t}`, 'keep'], outputs: [`cmp_${t}`], attributes: [int('axis', 1)] },
        { op: 'ReverseSequence', inputs: [`x_${t}`, 'lens'], outputs: [`rev_${t}`], attributes: [int('batch_axis', 0), int('time_axis', 1)] },
      );
      outputs.push(...['gnd', 'sct', 'cmp', 'rev'].map((o) => anyShape(`${o}_${t}`, code)));
      // onnxruntime has no int8 NonZero.
      if (t !== 'int8') {
        nodes.push({ op: 'NonZero', inputs: [`x_${t}`], outputs: [`nz_${t}`] });
        outputs.push(anyShape(`nz_${t}`, INT64));
      }
    }
    const spec: ModelSpec = {
      opset: 13,
      nodes,
      inputs: [valueInfo('x', [4, 6]), valueInfo('u', [4, 2])],
      outputs,
      initializers: [
        { name: 'pairs', dataType: INT64, dims: [3, 2], int64Data: [0, 5, -1, 0, 2, -3] },
        { name: 'cols', dataType: INT64, dims: [4, 2], int64Data: [0, 5, -1, 2, 3, 3, 1, -6] },
        { name: 'keep', dataType: BOOL, dims: [6], rawData: Uint8Array.from([1, 0, 1, 1, 0, 1]) },
        { name: 'lens', dataType: INT64, dims: [4], int64Data: [6, 3, 0, 2] },
      ],
    };
    // Whole numbers in [0, 120] (every cast exact) with some zeros for NonZero.
    const x = seeded(24, 53, 120).map((v, i) => (i % 5 === 0 ? 0 : Math.round(Math.abs(v))));
    await compareAll(spec, { x: { type: 'float32', data: x, dims: [4, 6] }, u: { type: 'float32', data: seeded(8, 59, 100).map((v) => Math.round(Math.abs(v))), dims: [4, 2] } });
  });

  it('ReverseSequence: batch axis 0 and 1, float and int64 data, lengths 0 to the full time axis', async () => {
    const spec: ModelSpec = {
      opset: 10,
      nodes: [
        { op: 'ReverseSequence', inputs: ['x', 'lens4'], outputs: ['bt'], attributes: [int('batch_axis', 0), int('time_axis', 1)] },
        { op: 'ReverseSequence', inputs: ['xt', 'lens5'], outputs: ['tb'] },
        { op: 'Cast', inputs: ['x'], outputs: ['xi'], attributes: [int('to', 7)] },
        { op: 'ReverseSequence', inputs: ['xi', 'lens4'], outputs: ['bti'], attributes: [int('batch_axis', 0), int('time_axis', 1)] },
      ],
      inputs: [valueInfo('x', [4, 5, 3]), valueInfo('xt', [4, 5, 3])],
      outputs: [anyShape('bt'), anyShape('tb'), anyShape('bti', INT64)],
      initializers: [
        { name: 'lens4', dataType: INT64, dims: [4], int64Data: [5, 0, 2, 3] },
        { name: 'lens5', dataType: INT64, dims: [5], int64Data: [1, 4, 3, 0, 2] },
      ],
    };
    await compareAll(spec, { x: f32([4, 5, 3], 41, 9), xt: f32([4, 5, 3], 43, 9) });
  });
});

describe('NonZero and Compress: sizes known only at run time', () => {
  // NonZero(x) -> Transpose -> GatherND picks the nonzero values; Compress(x, x > 0) along
  // axis 1 and flattened, then ops that read those tensors (Relu, ReduceSum, Shape, Concat).
  const spec: ModelSpec = {
    opset: 13,
    nodes: [
      { op: 'Relu', inputs: ['x'], outputs: ['r'] },
      { op: 'NonZero', inputs: ['r'], outputs: ['nz'] },
      { op: 'Transpose', inputs: ['nz'], outputs: ['coords'], attributes: [ints('perm', [1, 0])] },
      { op: 'GatherND', inputs: ['r', 'coords'], outputs: ['picked'] },
      { op: 'ReduceSum', inputs: ['picked'], outputs: ['total'], attributes: [int('keepdims', 0)] },
      { op: 'Greater', inputs: ['col', 'zero'], outputs: ['keep'] },
      { op: 'Compress', inputs: ['x', 'keep'], outputs: ['cols'], attributes: [int('axis', 1)] },
      { op: 'Compress', inputs: ['x', 'keepflat'], outputs: ['flat'] },
      { op: 'Compress', inputs: ['x', 'keepneg'], outputs: ['rows'], attributes: [int('axis', -3)] },
      { op: 'Shape', inputs: ['cols'], outputs: ['colsShape'] },
      { op: 'Mul', inputs: ['cols', 'cols'], outputs: ['sq'] },
      { op: 'ReduceMax', inputs: ['sq'], outputs: ['peak'], attributes: [ints('axes', [1]), int('keepdims', 0)] },
      { op: 'NonZero', inputs: ['b'], outputs: ['nzb'] },
      { op: 'Cast', inputs: ['x'], outputs: ['xi'], attributes: [int('to', 7)] },
      { op: 'NonZero', inputs: ['xi'], outputs: ['nzi'] },
    ],
    inputs: [valueInfo('x', [2, 6, 3]), valueInfo('col', [6]), valueInfo('keepflat', [9], BOOL), valueInfo('keepneg', [2], BOOL), valueInfo('b', [3, 4], BOOL)],
    outputs: [
      anyShape('nz', INT64), anyShape('picked'), anyShape('total'), anyShape('cols'), anyShape('flat'), anyShape('rows'), anyShape('colsShape', INT64),
      anyShape('peak'), anyShape('nzb', INT64), anyShape('nzi', INT64),
    ],
    initializers: [{ name: 'zero', dims: [], floatData: [0] }],
  };
  const feeds = (seed: number): Record<string, Feed> => ({
    x: f32([2, 6, 3], seed, 2),
    col: f32([6], seed + 1),
    keepflat: { type: 'bool', data: Uint8Array.from([1, 0, 0, 1, 1, 0, 1, 0, 1]), dims: [9] },
    keepneg: { type: 'bool', data: Uint8Array.from([0, 1]), dims: [2] },
    b: { type: 'bool', data: Uint8Array.from([1, 0, 0, 1, 0, 0, 0, 0, 1, 1, 0, 1]), dims: [3, 4] },
  });

  it('loads with symbolic dims for the data-dependent sizes', () => {
    const graph = inferShapes(loadOnnxModel(encodeModel(spec)));
    const shape = (name: string) => graph.valueInfo.get(name)?.shape;
    expect(shape('nz')).toEqual([3, '(nz[1])']);
    expect(shape('coords')).toEqual(['(nz[1])', 3]);
    expect(shape('picked')).toEqual(['(nz[1])']);
    expect(shape('cols')).toEqual([2, '(cols[1])', 3]);
    expect(shape('flat')).toEqual(['(flat[0])']);
    expect(shape('colsShape')).toEqual([3]);
    expect(shape('nzb')).toEqual([2, '(nzb[1])']);
  });

  it('runs, and later ops read the results, on inputs with different counts', async () => {
    for (const seed of [3, 8, 21]) {
      const { got, want } = await both(spec, feeds(seed));
      for (const name of Object.keys(want)) expectClose(got[name], want[name]);
      expect(got.nz.dims[1]).toBeGreaterThan(0);
      expect(got.nz.dims[1]).toBeLessThan(36);
    }
    // A compressed axis may end up empty, and the ops after it still run.
    const none = { ...feeds(3), col: { type: 'float32' as const, data: new Float32Array(6).fill(-1), dims: [6] } };
    const { got, want } = await both(spec, none);
    expect(got.cols.dims).toEqual([2, 0, 3]);
    expectClose(got.colsShape, want.colsShape);
  });

  it('Compress with a constant condition has a known size; a condition longer than the axis is read up to it', async () => {
    const compress: ModelSpec = {
      opset: 11,
      nodes: [{ op: 'Compress', inputs: ['x', 'c'], outputs: ['y'], attributes: [int('axis', 0)] }],
      inputs: [valueInfo('x', [3, 2])],
      outputs: [anyShape('y')],
      initializers: [{ name: 'c', dataType: BOOL, dims: [5], rawData: Uint8Array.from([1, 0, 1, 1, 1]) }],
    };
    expect(inferShapes(loadOnnxModel(encodeModel(compress))).outputs[0].shape).toEqual([2, 2]);
    await compareAll(compress, { x: f32([3, 2], 47) });
  });

  it('NonZero of a scalar is [1, count]', async () => {
    const s = await InferenceSession.create(encodeModel(singleOp({ op: 'NonZero', inputs: ['x'], outputs: ['y'] }, { x: { type: 'float32', data: new Float32Array(1), dims: [] } }, INT64)));
    expect((await s.run({ x: new Tensor('float32', [2.5], []) })).y.dims).toEqual([1, 1]);
    expect((await s.run({ x: new Tensor('float32', [0], []) })).y.dims).toEqual([1, 0]);
    await s.release();
  });
});

describe('shape inference keeps what is known', () => {
  const shapes = (spec: ModelSpec) => {
    const graph = inferShapes(loadOnnxModel(encodeModel(spec)));
    return (name: string) => graph.valueInfo.get(name)?.shape;
  };

  it('Einsum with symbolic dims, broadcast 1s and an ellipsis', () => {
    const shape = shapes({
      opset: 12,
      nodes: [
        { op: 'Einsum', inputs: ['q', 'k'], outputs: ['scores'], attributes: [str('equation', 'bhqd,bhkd->bhqk')] },
        { op: 'Einsum', inputs: ['a', 'b'], outputs: ['mm'], attributes: [str('equation', '...ij,...jk')] },
        { op: 'Einsum', inputs: ['q'], outputs: ['diag'], attributes: [str('equation', 'bhdd->hdb')] },
      ],
      inputs: [valueInfo('q', ['N', 12, 'S', 64]), valueInfo('k', ['N', 12, 'T', 64]), valueInfo('a', [1, 'B', 3, 4]), valueInfo('b', [7, 1, 4, 5])],
      outputs: [anyShape('scores'), anyShape('mm'), anyShape('diag')],
    });
    expect(shape('scores')).toEqual(['N', 12, 'S', 'T']);
    expect(shape('mm')).toEqual([7, 'B', 3, 5]);
    expect(shape('diag')).toEqual([12, 64, 'N']);  // d is 'S' once and 64 once: 64
  });

  it('OneHot with a constant or run-time depth, GatherND, EyeLike', () => {
    const shape = shapes({
      opset: 13,
      nodes: [
        { op: 'OneHot', inputs: ['i', 'depth', 'v'], outputs: ['known'], attributes: [int('axis', 1)] },
        { op: 'OneHot', inputs: ['i', 'd', 'v'], outputs: ['later'] },
        { op: 'GatherND', inputs: ['x', 'i3'], outputs: ['g'], attributes: [int('batch_dims', 1)] },
        { op: 'EyeLike', inputs: ['e'], outputs: ['eye'], attributes: [int('dtype', 7)] },
      ],
      inputs: [valueInfo('i', ['N', 3], INT64), valueInfo('d', [], INT64), valueInfo('x', ['N', 5, 6, 7]), valueInfo('i3', ['N', 4, 2], INT64), valueInfo('e', ['R', 4])],
      outputs: [anyShape('known'), anyShape('later'), anyShape('g'), anyShape('eye', INT64)],
      initializers: [{ name: 'depth', dims: [], floatData: [10] }, { name: 'v', dims: [2], floatData: [0, 1] }],
    });
    expect(shape('known')).toEqual(['N', 10, 3]);
    expect(shape('later')).toEqual(['N', 3, '(later[2])']);
    expect(shape('g')).toEqual(['N', 4, 7]);
    expect(shape('eye')).toEqual(['R', 4]);
  });
});

describe('Einsum, against onnxruntime', () => {
  const einsum = (equation: string, shapes: number[][], type: TensorType = 'float32', seed = 1): [ModelSpec, Record<string, Feed>] => {
    const names = shapes.map((_, i) => `x${i}`);
    const feeds: Record<string, Feed> = {};
    shapes.forEach((dims, i) => {
      const data = seeded(size(dims), seed + 7 * i, 2);
      feeds[names[i]] = type === 'float32' ? { type, data, dims }
        : type === 'int64' ? { type, data: i64(Array.from(data, (v) => Math.round(v * 5))), dims }
        : { type: 'int32', data: Int32Array.from(data, (v) => Math.round(v * 5)), dims };
    });
    return [singleOp({ op: 'Einsum', inputs: names, outputs: ['y'], attributes: [str('equation', equation)] }, feeds, ELEM[type], 12), feeds];
  };
  const cases: [string, number[][]][] = [
    ['ij,jk->ik', [[7, 9], [9, 5]]],
    ['ij,jk->ik', [[70, 90], [90, 50]]],  // one GEMM
    ['bij,bjk->bik', [[3, 17, 19], [3, 19, 13]]],
    ['bij,bjk->bik', [[2, 200, 150], [2, 150, 160]]],  // products large enough to split over threads
    ['bhqd,bhkd->bhqk', [[2, 3, 37, 19], [2, 3, 29, 19]]],
    ['bhqk,bhkd->bhqd', [[2, 3, 37, 29], [2, 3, 29, 19]]],
    ['bij,jk->bik', [[4, 21, 33], [33, 23]]],
    ['ji,jk->ik', [[33, 21], [33, 23]]],  // A gathered: K is not A's inner axis
    ['ij,kj->ik', [[21, 33], [23, 33]]],  // B as [N][K] rows
    ['ij,kjl->ikl', [[21, 33], [5, 33, 7]]],  // B gathered
    ['ixj,jxl->xil', [[20, 3, 30], [30, 3, 25]]],  // rows of A and of B further apart than K and N
    ['ij,jk->ki', [[21, 33], [33, 23]]],  // transposed output: A and B trade places
    ['ij,jk->ik', [[40, 30], [1, 50]]],  // B broadcasts along K
    ['ij,jk->ik', [[40, 1], [30, 50]]],  // A broadcasts along K
    ['ij->ji', [[5, 7]]],
    ['ij->', [[5, 7]]],
    ['ij->i', [[5, 7]]],
    ['ii->i', [[6, 6]]],
    ['ii->', [[6, 6]]],
    ['ii', [[6, 6]]],  // implicit: the trace
    ['iij->j', [[4, 4, 3]]],
    ['i,j->ij', [[5], [7]]],
    ['i,i', [[9], [9]]],
    ['i,i->i', [[9], [9]]],
    ['...ij,...jk->...ik', [[2, 1, 3, 4], [1, 5, 4, 2]]],
    ['...ij,...jk->...ik', [[2, 3, 30, 40], [2, 3, 40, 20]]],
    ['...ij,jk->...ik', [[2, 3, 4], [4, 5]]],
    ['...ii->...i', [[3, 5, 5]]],
    ['i...,i...->...', [[4, 3, 2], [4, 3, 2]]],
    ['a...,...b', [[2, 3], [3, 4]]],  // implicit with an ellipsis: its dims first
    ['ij,jk,kl->il', [[3, 4], [4, 5], [5, 2]]],
    ['ij,jk,kl->il', [[30, 40], [40, 50], [50, 20]]],
    ['ab,bc,cd,de->ae', [[3, 4], [4, 5], [5, 6], [6, 2]]],
    ['ij,jk', [[4, 5], [5, 6]]],  // implicit matmul
    ['ba', [[3, 4]]],  // implicit transpose (ASCII order)
    ['Ij,jK->IK', [[3, 4], [4, 2]]],
    [' bij , bjk -> bik ', [[2, 3, 4], [2, 4, 5]]],
    ['ij,ij->ij', [[3, 1], [3, 4]]],  // a letter of size 1 broadcasts
    ['bn,anm,bm->ba', [[2, 3], [4, 3, 5], [2, 5]]],  // bilinear
    ['ij,jk->k', [[6, 7], [7, 5]]],  // i only in the first operand: summed before the product
    ['ij,kl->jl', [[4, 5], [3, 6]]],  // i and k each summed on their own side
    ['abc,cd->abd', [[0, 3, 4], [4, 5]]],  // empty batch
  ];
  for (const [equation, shapes] of cases) {
    it(`"${equation}" on ${shapes.map((s) => `[${s}]`).join(' x ')}`, async () => {
      const [spec, feeds] = einsum(equation, shapes);
      const { got, want } = await both(spec, feeds, 2);
      expectClose(got.y, want.y, 1e-4);
      if (got.y.data.length > 0) expect(Array.from(got.y.data as Float32Array).some((v) => v !== 0)).toBe(true);
    });
  }

  it('int32 and int64 operands', async () => {
    for (const type of ['int32', 'int64'] as const) {
      for (const [equation, shapes] of [['bij,bjk->bik', [[2, 5, 7], [2, 7, 3]]], ['ii->i', [[5, 5]]], ['i,j->ij', [[4], [3]]], ['ij->', [[4, 6]]]] as [string, number[][]][]) {
        const [spec, feeds] = einsum(equation, shapes, type, 5);
        const { got, want } = await both(spec, feeds);
        expectClose(got.y, want.y);
      }
    }
  });

  it('ONNX conformance cases (float64 there) in float32 give the expected outputs', async () => {
    for (const name of ['test_einsum_batch_diagonal', 'test_einsum_batch_matmul', 'test_einsum_inner_prod', 'test_einsum_sum', 'test_einsum_transpose']) {
      const dir = nodeTestDir(name);
      const equation = loadOnnxModel(readModelBytes(dir)).nodes[0].attributes.equation;
      expect(equation?.type).toBe('string');
      const inputs = readTestTensors(dir, 'input');
      const [want] = readTestTensors(dir, 'output');
      const feeds = Object.fromEntries(inputs.map((t, i) => [`x${i}`, { type: 'float32' as const, data: Float32Array.from(t.data as Float64Array), dims: [...t.dims] }]));
      const spec = singleOp({ op: 'Einsum', inputs: Object.keys(feeds), outputs: ['y'], attributes: [str('equation', equation!.value as string)] }, feeds, 1, 12);
      const s = await InferenceSession.create(encodeModel(spec));
      const y = (await s.run(Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, new Tensor('float32', v.data, v.dims)])))).y;
      await s.release();
      expect(y.dims).toEqual([...want.dims]);
      const w = want.data as Float64Array;
      (y.data as Float32Array).forEach((v, i) => expect(Math.abs(v - w[i]), `${name}[${i}]`).toBeLessThanOrEqual(1e-5 * (1 + Math.abs(w[i]))));
    }
  });

  it('attention scores run on the GEMM: the same bits as MatMul on the same product', async () => {
    // bhqd,bhkd->bhqk against MatMul(Q, K^T) with K^T fed as it is (no transpose node). Both
    // reach the fp32 GEMM (float FMA chains): equal bits show the Einsum took it, not its strided
    // loop (about 20x slower), which sums in double and rounds once. A check of the path, not of
    // time (speed belongs to bench/).
    const [b, h, q, k, d] = [1, 3, 37, 29, 64];
    const [spec, feeds] = einsum('bhqd,bhkd->bhqk', [[b, h, q, d], [b, h, k, d]]);
    const kt = new Float32Array(b * h * d * k);
    const kd = feeds.x1.data as Float32Array;
    for (let i = 0; i < b * h; i++) for (let j = 0; j < k; j++) for (let e = 0; e < d; e++) kt[(i * d + e) * k + j] = kd[(i * k + j) * d + e];
    const matmul = singleOp({ op: 'MatMul', inputs: ['x0', 'kt'], outputs: ['y'] }, { x0: feeds.x0, kt: { data: kt, dims: [b, h, d, k] } as Feed });
    const run = async (model: ModelSpec, inputs: Record<string, Feed>) => {
      const s = await InferenceSession.create(encodeModel(model), { threads: 2 });
      const t = Object.fromEntries(Object.entries(inputs).map(([n, v]) => [n, new Tensor('float32', v.data as Float32Array, v.dims)]));
      const y = (await s.run(t)).y;
      await s.release();
      return y;
    };
    const viaEinsum = await run(spec, feeds);
    const viaMatMul = await run(matmul, { x0: feeds.x0, kt: { data: kt, dims: [b, h, d, k] } as Feed });
    expect(viaEinsum.dims).toEqual([b, h, q, k]);
    expect(Array.from(viaEinsum.data as Float32Array)).toEqual(Array.from(viaMatMul.data as Float32Array));
    // And not the strided loop's bits: it sums in double (as this loop does, exactly) and rounds once.
    const x0 = feeds.x0.data as Float32Array;
    let differ = 0;
    for (let i = 0; i < b * h; i++) {
      for (let r = 0; r < q; r++) {
        for (let c = 0; c < k; c++) {
          let acc = 0;
          for (let e = 0; e < d; e++) acc += x0[(i * q + r) * d + e] * kd[(i * k + c) * d + e];
          if (Math.fround(acc) !== (viaEinsum.data as Float32Array)[(i * q + r) * k + c]) differ++;
        }
      }
    }
    expect(differ).toBeGreaterThan(100);
  });
});

describe('errors name the problem', () => {
  it('an out-of-range index fails the run with ERR_INVALID_ARGUMENT, never reading outside', async () => {
    const data = f32([3, 4], 51);
    await expectRunError(singleOp({ op: 'GatherND', inputs: ['d', 'i'], outputs: ['y'] }, { d: data, i: { type: 'int64', data: i64([0]), dims: [1, 2] } }),
      { d: data, i: { type: 'int64', data: i64([1, 4]), dims: [1, 2] } }, 'ERR_INVALID_ARGUMENT', /GatherND.*index value 4 .*out of range \[-4, 3\] for axis 1 of size 4/);
    await expectRunError(singleOp({ op: 'GatherND', inputs: ['d', 'i'], outputs: ['y'] }, { d: data, i: { type: 'int64', data: i64([0]), dims: [2, 1] } }),
      { d: data, i: { type: 'int64', data: i64([0, -4]), dims: [2, 1] } }, 'ERR_INVALID_ARGUMENT', /index value -4 .*out of range \[-3, 2\] for axis 0/);
    const idx = { type: 'int32' as const, data: Int32Array.from([0, 1, 2, 1, 2, 1, 0, 7]), dims: [2, 4] };
    await expectRunError(singleOp({ op: 'ScatterElements', inputs: ['d', 'i', 'u'], outputs: ['y'] }, { d: f32([3, 4], 1), i: idx, u: f32([2, 4], 2) }, 1, 16),
      { d: data, i: idx, u: f32([2, 4], 2) }, 'ERR_INVALID_ARGUMENT', /ScatterElements.*index value 7 \(at position 7\) is out of range \[-3, 2\] for axis 0 of size 3/);
    const lens = { type: 'int64' as const, data: i64([2, 5, 1]), dims: [3] };
    await expectRunError(singleOp({ op: 'ReverseSequence', inputs: ['x', 'l'], outputs: ['y'], attributes: [int('batch_axis', 0), int('time_axis', 1)] }, { x: f32([3, 4], 1), l: lens }, 1, 10),
      { x: f32([3, 4], 1), l: lens }, 'ERR_INVALID_ARGUMENT', /sequence_lens\[1\] is 5, outside \[0, 4\]/);
    const depth = { type: 'int64' as const, data: i64([0]), dims: [] };
    const vals = { type: 'float32' as const, data: Float32Array.from([0, 1]), dims: [2] };
    const ohIdx = { type: 'int64' as const, data: i64([1, 2]), dims: [2] };
    await expectRunError(singleOp({ op: 'OneHot', inputs: ['i', 'd', 'v'], outputs: ['y'] }, { i: ohIdx, d: depth, v: vals }, 1, 11),
      { i: ohIdx, d: depth, v: vals }, 'ERR_INVALID_ARGUMENT', /OneHot.*depth 0 must be a positive number of classes/);
  });

  it('a malformed equation, operand count or shape fails at load', async () => {
    const x: Feed = f32([3, 4], 1);
    const bad = async (equation: string, message: RegExp, code = 'ERR_MODEL_FORMAT', feeds: Record<string, Feed> = { x }) => {
      const spec = singleOp({ op: 'Einsum', inputs: Object.keys(feeds), outputs: ['y'], attributes: [str('equation', equation)] }, feeds, 1, 12);
      await expect(InferenceSession.create(encodeModel(spec))).rejects.toMatchObject({ code, message: expect.stringMatching(message) });
    };
    await bad('ij->i3', /equation "ij->i3" has '3', which is not a letter/);
    await bad('i.j->i', /'\.' that is not part of "\.\.\."/);
    await bad('ij->ii', /names 'i' twice in its output/);
    await bad('ij->k', /has 'k' in its output but in no input/);
    await bad('ij,jk->ik', /has 2 operand terms but the node has 1 inputs/);
    await bad('ij->i->j', /more than one "->"/);
    await bad('ijk->i', /operand 0 \[3,4\] has rank 2 but its term names 3 dims/, 'ERR_SHAPE_MISMATCH');
    await bad('...ij->ij', /"\.\.\." covers 1 dims of the inputs but the output does not name it/, 'ERR_SHAPE_MISMATCH', { x: f32([2, 3, 4], 1) });
    await bad('ij,jk->ik', /dim 0 of size 5 where the same letter elsewhere has size 4/, 'ERR_SHAPE_MISMATCH', { a: x, b: f32([5, 2], 2) });
  });

  it('a wrong element type fails at load with ERR_DTYPE', async () => {
    const xi: Feed = { type: 'int32', data: new Int32Array(6), dims: [2, 3] };
    const load = (spec: ModelSpec) => InferenceSession.create(encodeModel(spec));
    await expect(load(singleOp({ op: 'Tan', inputs: ['x'], outputs: ['y'] }, { x: xi }, INT32))).rejects.toMatchObject({
      code: 'ERR_DTYPE', message: expect.stringMatching(/Tan.*input 0 is int32, but Tan takes float32/),
    });
    await expect(load(singleOp({ op: 'IsNaN', inputs: ['x'], outputs: ['y'] }, { x: xi }, BOOL))).rejects.toMatchObject({ code: 'ERR_DTYPE' });
    await expect(load(singleOp({ op: 'Einsum', inputs: ['a', 'b'], outputs: ['y'], attributes: [str('equation', 'ij,jk')] }, { a: f32([2, 3], 1), b: { ...xi, dims: [3, 2] } }, 1, 12)))
      .rejects.toMatchObject({ code: 'ERR_DTYPE', message: expect.stringMatching(/Einsum.*input 1 is int32 but input 0 is float32/) });
    await expect(load(singleOp({ op: 'GatherND', inputs: ['d', 'i'], outputs: ['y'] }, { d: f32([2, 3], 1), i: f32([1, 2], 2) })))
      .rejects.toMatchObject({ code: 'ERR_DTYPE', message: expect.stringMatching(/GatherND.*indices is float32, but GatherND takes int64 or int32/) });
    await expect(load(singleOp({ op: 'EyeLike', inputs: ['x'], outputs: ['y'], attributes: [int('dtype', 11)] }, { x: xi }, 11)))
      .rejects.toMatchObject({ code: 'ERR_DTYPE', message: expect.stringMatching(/EyeLike.*dtype 11 is not supported/) });
    await expect(load(singleOp({ op: 'Compress', inputs: ['x', 'c'], outputs: ['y'] }, { x: f32([2, 3], 1), c: xi }, 1, 11)))
      .rejects.toMatchObject({ code: 'ERR_DTYPE', message: expect.stringMatching(/condition is int32, but Compress takes bool/) });
  });

  it('a reduction newer than the model\'s opset is refused', async () => {
    const feeds = { d: f32([3, 4], 1), i: { type: 'int64' as const, data: i64([0]), dims: [1, 4] }, u: f32([1, 4], 2) };
    const spec = singleOp({ op: 'ScatterElements', inputs: ['d', 'i', 'u'], outputs: ['y'], attributes: [str('reduction', 'max')] }, feeds, 1, 16);
    await expect(InferenceSession.create(encodeModel(spec))).rejects.toMatchObject({ code: 'ERR_MODEL_FORMAT', message: expect.stringMatching(/reduction 'max' needs opset 18/) });
  });
});
