// The reductions, Cast, comparisons, Where, Mod, ScatterND and the shape-built ops (Range,
// Expand, ConstantOfShape), checked against onnxruntime-node on graphs written the way
// exporters write them (LayerNorm spelled out at opset 13, an attention mask built from the
// batch's shape), with a symbolic batch so the shape ops run at run time. Their single-op ONNX
// conformance cases run in test/conformance.test.ts; Cast has none there for the types
// ternion holds, so its numbers are checked against their definition here.
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { InferenceSession, Tensor } from '../lib';
import { INT64, encodeModel, valueInfo, type ModelSpec } from './onnx-build-model';

const BOOL = 9;
/** A graph output whose shape the model leaves to inference (exporters often do). */
const anyShape = (name: string, elemType = 1) => ({ name, type: { tensor_type: { elem_type: elemType } } });

function seeded(n: number, seed: number, scale = 1): Float32Array {
  let s = seed;
  return Float32Array.from({ length: n }, () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return (s / 2147483648 - 0.5) * 2 * scale;
  });
}

/** Runs one model on ternion and onnxruntime with the same float32 feeds; returns both outputs. */
async function both(spec: ModelSpec, feeds: Record<string, { data: Float32Array; dims: number[] }>) {
  const bytes = encodeModel(spec);
  const s = await InferenceSession.create(bytes, { threads: 1 });
  const o = await ort.InferenceSession.create(bytes);
  const got = await s.run(Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, new Tensor('float32', v.data, v.dims)])));
  const want = await o.run(Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, new ort.Tensor('float32', v.data, v.dims)])));
  await s.release();
  return { got, want };
}

function expectClose(got: Tensor, want: ort.Tensor, tol = 1e-5) {
  expect(got.dims).toEqual([...want.dims]);
  expect(got.type).toBe(want.type);
  const a = got.data as ArrayLike<number | bigint>, b = want.data as ArrayLike<number | bigint>;
  expect(a.length).toBe(b.length);
  expect(a.length).toBeGreaterThan(0);
  // The first index out of tolerance (one expect per tensor: a million per-value expects take seconds).
  const bad = Array.prototype.findIndex.call(b, (v: number | bigint, i: number) =>
    typeof v === 'number' ? !(Math.abs((a[i] as number) - v) <= tol * (1 + Math.abs(v))) : a[i] !== v);
  expect(bad, bad < 0 ? '' : `[${bad}] ${a[bad]} vs ${b[bad]}`).toBe(-1);
}

const ints = (name: string, values: number[]) => ({ name, dataType: INT64, dims: [values.length], int64Data: values });

describe('ops exporters write, against onnxruntime', () => {
  it('LayerNorm spelled out (ReduceMean, Sub, Pow, Sqrt, Div) on a symbolic batch', async () => {
    const D = 24;
    const spec: ModelSpec = {
      opset: 13,
      nodes: [
        { op: 'ReduceMean', inputs: ['x'], outputs: ['mean'], attributes: [{ name: 'axes', type: 7, ints: [-1] }] },
        { op: 'Sub', inputs: ['x', 'mean'], outputs: ['d'] },
        { op: 'Pow', inputs: ['d', 'two'], outputs: ['sq'] },
        { op: 'ReduceMean', inputs: ['sq'], outputs: ['var'], attributes: [{ name: 'axes', type: 7, ints: [-1] }] },
        { op: 'Add', inputs: ['var', 'eps'], outputs: ['ve'] },
        { op: 'Sqrt', inputs: ['ve'], outputs: ['sd'] },
        { op: 'Div', inputs: ['d', 'sd'], outputs: ['n'] },
        { op: 'Exp', inputs: ['n'], outputs: ['e'] },
        { op: 'Log', inputs: ['e'], outputs: ['l'] },
        { op: 'Neg', inputs: ['l'], outputs: ['ng'] },
        { op: 'Abs', inputs: ['ng'], outputs: ['ab'] },
        { op: 'Reciprocal', inputs: ['ve'], outputs: ['rv'] },
        // Statistics over other axes, without keepdims, and the max/min/sum family.
        { op: 'ReduceSum', inputs: ['x', 'axes01'], outputs: ['s01'], attributes: [{ name: 'keepdims', type: 2, i: 0 }] },
        { op: 'ReduceMax', inputs: ['x'], outputs: ['mx'], attributes: [{ name: 'axes', type: 7, ints: [1] }] },
        { op: 'ReduceMin', inputs: ['x'], outputs: ['mn'], attributes: [{ name: 'axes', type: 7, ints: [0, 2] }, { name: 'keepdims', type: 2, i: 0 }] },
        { op: 'ReduceMean', inputs: ['x'], outputs: ['all'] },
      ],
      inputs: [valueInfo('x', ['N', 5, D])],
      outputs: ['n', 'ab', 'rv', 's01', 'mx', 'mn', 'all'].map((name) => anyShape(name)),
      initializers: [
        { name: 'two', dims: [], floatData: [2] },
        { name: 'eps', dims: [], floatData: [1e-5] },
        ints('axes01', [0, 1]),
      ],
    };
    for (const N of [1, 3]) {
      const { got, want } = await both(spec, { x: { data: seeded(N * 5 * D, 7 + N, 3), dims: [N, 5, D] } });
      for (const name of ['n', 'ab', 'rv', 's01', 'mx', 'mn', 'all']) expectClose(got[name], want[name], 1e-4);
    }
  });

  it('an attention mask from the batch shape (Shape, ConstantOfShape, Range, Expand, Equal, Where, Cast, Not)', async () => {
    const spec: ModelSpec = {
      opset: 13,
      nodes: [
        { op: 'Shape', inputs: ['x'], outputs: ['shape'] },
        { op: 'Gather', inputs: ['shape', 'one'], outputs: ['len'], attributes: [{ name: 'axis', type: 2, i: 0 }] },
        { op: 'Range', inputs: ['zero', 'len', 'step'], outputs: ['pos'] },
        { op: 'Unsqueeze', inputs: ['pos', 'axis0'], outputs: ['row'] },
        { op: 'Unsqueeze', inputs: ['pos', 'axis1'], outputs: ['col'] },
        { op: 'Less', inputs: ['row', 'col'], outputs: ['future'] },
        { op: 'Not', inputs: ['future'], outputs: ['allowed'] },
        { op: 'Cast', inputs: ['allowed'], outputs: ['allowedf'], attributes: [{ name: 'to', type: 2, i: 1 }] },
        { op: 'Concat', inputs: ['len', 'len'], outputs: ['sq'], attributes: [{ name: 'axis', type: 2, i: 0 }] },
        { op: 'ConstantOfShape', inputs: ['sq'], outputs: ['neg'], attributes: [{ name: 'value', type: 4, t: { data_type: 1, dims: [1], float_data: [-1e9] } }] },
        { op: 'Where', inputs: ['future', 'neg', 'x2'], outputs: ['masked'] },
        { op: 'Expand', inputs: ['allowedf', 'shape3'], outputs: ['big'] },
        { op: 'Equal', inputs: ['masked', 'x2'], outputs: ['same'] },
        { op: 'Cast', inputs: ['same'], outputs: ['samei'], attributes: [{ name: 'to', type: 2, i: 7 }] },
        { op: 'GreaterOrEqual', inputs: ['x2', 'masked'], outputs: ['ge'] },
      ],
      inputs: [valueInfo('x', [1, 'T']), valueInfo('x2', ['T', 'T'])],
      outputs: [anyShape('masked'), anyShape('big'), anyShape('samei', INT64), anyShape('ge', BOOL), anyShape('allowedf')],
      initializers: [
        ints('one', [1]), { name: 'zero', dataType: INT64, dims: [], int64Data: [0] }, { name: 'step', dataType: INT64, dims: [], int64Data: [1] },
        ints('axis0', [0]), ints('axis1', [1]), ints('shape3', [2, 1, 1]),
      ],
    };
    for (const T of [1, 4, 7]) {
      const { got, want } = await both(spec, { x: { data: seeded(T, 3), dims: [1, T] }, x2: { data: seeded(T * T, 5 + T), dims: [T, T] } });
      for (const name of ['masked', 'big', 'samei', 'ge', 'allowedf']) expectClose(got[name], want[name]);
      // Not a trivial mask: some entries were replaced, some kept (for T > 1).
      if (T > 1) expect(Array.from(got.masked.data as Float32Array).filter((v) => v === -1e9).length).toBe((T * (T - 1)) / 2);
    }
  });

  it('Mod (integer, Python sign and fmod) and ScatterND (none and add)', async () => {
    const spec: ModelSpec = {
      opset: 16,
      nodes: [
        { op: 'Cast', inputs: ['x'], outputs: ['xi'], attributes: [{ name: 'to', type: 2, i: 7 }] },
        { op: 'Mod', inputs: ['xi', 'div'], outputs: ['m'] },
        { op: 'Mod', inputs: ['xi', 'div'], outputs: ['mf'], attributes: [{ name: 'fmod', type: 2, i: 1 }] },
        { op: 'Mod', inputs: ['x', 'divf'], outputs: ['ff'], attributes: [{ name: 'fmod', type: 2, i: 1 }] },
        { op: 'ScatterND', inputs: ['x', 'idx', 'upd'], outputs: ['sc'] },
        { op: 'ScatterND', inputs: ['x', 'idx', 'upd'], outputs: ['sa'], attributes: [{ name: 'reduction', type: 3, s: new TextEncoder().encode('add') }] },
      ],
      inputs: [valueInfo('x', [4, 6])],
      outputs: [valueInfo('m', [4, 6], INT64), valueInfo('mf', [4, 6], INT64), valueInfo('ff', [4, 6]), valueInfo('sc', [4, 6]), valueInfo('sa', [4, 6])],
      initializers: [
        { name: 'div', dataType: INT64, dims: [6], int64Data: [3, -3, 5, -5, 7, 2] },
        { name: 'divf', dims: [6], floatData: [3, -3, 2.5, -2.5, 7, 0.75] },
        { name: 'idx', dataType: INT64, dims: [2, 1], int64Data: [2, -4] },
        { name: 'upd', dims: [2, 6], floatData: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12] },
      ],
    };
    const { got, want } = await both(spec, { x: { data: seeded(24, 11, 20), dims: [4, 6] } });
    for (const name of ['m', 'mf', 'ff', 'sc', 'sa']) expectClose(got[name], want[name]);
    expect(Array.from(got.m.data as BigInt64Array).some((v) => v < 0n)).toBe(true);
  });
});

describe('activations, variadic ops and ArgMax, against onnxruntime', () => {
  it('Elu, Selu, Celu, Softplus, Softsign, ThresholdedRelu, PRelu, Sign, Floor, Ceil, Round, Sin, Cos, Min/Max/Sum/Mean, ArgMax/ArgMin', async () => {
    const unary = ['Elu', 'Selu', 'Celu', 'Softplus', 'Softsign', 'ThresholdedRelu', 'Sign', 'Floor', 'Ceil', 'Round', 'Sin', 'Cos'];
    const spec: ModelSpec = {
      opset: 13,
      nodes: [
        ...unary.map((op) => ({ op, inputs: ['x'], outputs: [op.toLowerCase()] })),
        { op: 'PRelu', inputs: ['x', 'slope'], outputs: ['prelu'] },
        { op: 'Max', inputs: ['x', 'row', 'col'], outputs: ['max'] },
        { op: 'Min', inputs: ['x', 'row'], outputs: ['min'] },
        { op: 'Sum', inputs: ['x', 'col', 'row'], outputs: ['sum'] },
        { op: 'Mean', inputs: ['x', 'row'], outputs: ['mean'] },
        { op: 'ArgMax', inputs: ['x'], outputs: ['argmax'], attributes: [{ name: 'axis', type: 2, i: 1 }, { name: 'keepdims', type: 2, i: 0 }] },
        { op: 'ArgMin', inputs: ['x'], outputs: ['argmin'], attributes: [{ name: 'axis', type: 2, i: -1 }] },
      ],
      inputs: [valueInfo('x', ['N', 3, 4, 5])],
      outputs: [...unary.map((op) => anyShape(op.toLowerCase())), ...['prelu', 'max', 'min', 'sum', 'mean'].map((n) => anyShape(n)), anyShape('argmax', INT64), anyShape('argmin', INT64)],
      initializers: [
        { name: 'slope', dims: [3, 1, 1], floatData: [0.1, -0.5, 2] },
        { name: 'row', dims: [5], floatData: Array.from(seeded(5, 21, 2)) },
        { name: 'col', dims: [4, 1], floatData: Array.from(seeded(4, 22, 2)) },
      ],
    };
    const { got, want } = await both(spec, { x: { data: seeded(2 * 60, 23, 3), dims: [2, 3, 4, 5] } });
    for (const name of Object.keys(want)) expectClose(got[name], want[name], 1e-5);
  });
});

describe('data movement, TopK, CumSum and local normalizations, against onnxruntime', () => {
  it('Tile, DepthToSpace (DCR, CRD), SpaceToDepth, Trilu, GatherElements, TopK, CumSum, Size, InstanceNormalization, LRN, ReduceL2/LogSumExp/Prod, And/Or/Xor', async () => {
    const str = (name: string, v: string) => ({ name, type: 3, s: new TextEncoder().encode(v) });
    const int = (name: string, i: number) => ({ name, type: 2, i });
    const spec: ModelSpec = {
      opset: 14,
      nodes: [
        { op: 'Tile', inputs: ['x', 'reps'], outputs: ['tile'] },
        { op: 'DepthToSpace', inputs: ['x'], outputs: ['d2s'], attributes: [int('blocksize', 2)] },
        { op: 'DepthToSpace', inputs: ['x'], outputs: ['d2s_crd'], attributes: [int('blocksize', 2), str('mode', 'CRD')] },
        { op: 'SpaceToDepth', inputs: ['x'], outputs: ['s2d'], attributes: [int('blocksize', 2)] },
        { op: 'Trilu', inputs: ['x', 'k'], outputs: ['triu'] },
        { op: 'Trilu', inputs: ['x'], outputs: ['tril'], attributes: [int('upper', 0)] },
        { op: 'GatherElements', inputs: ['x', 'gidx'], outputs: ['gel'], attributes: [int('axis', 3)] },
        { op: 'TopK', inputs: ['x', 'topk'], outputs: ['topv', 'topi'], attributes: [int('axis', 1)] },
        { op: 'TopK', inputs: ['x', 'topk'], outputs: ['lowv', 'lowi'], attributes: [int('largest', 0)] },
        { op: 'CumSum', inputs: ['x', 'caxis'], outputs: ['cum'], attributes: [int('exclusive', 1), int('reverse', 1)] },
        { op: 'Size', inputs: ['x'], outputs: ['size'] },
        { op: 'InstanceNormalization', inputs: ['x', 'iscale', 'ibias'], outputs: ['inorm'] },
        { op: 'LRN', inputs: ['x'], outputs: ['lrn'], attributes: [int('size', 3), { name: 'alpha', type: 1, f: 0.01 }] },
        { op: 'ReduceL2', inputs: ['x'], outputs: ['l2'], attributes: [{ name: 'axes', type: 7, ints: [2, 3] }] },
        { op: 'ReduceLogSumExp', inputs: ['x'], outputs: ['lse'], attributes: [{ name: 'axes', type: 7, ints: [1] }] },
        { op: 'ReduceProd', inputs: ['x'], outputs: ['prod'], attributes: [{ name: 'axes', type: 7, ints: [3] }, int('keepdims', 0)] },
        { op: 'Greater', inputs: ['x', 'zero'], outputs: ['pos'] },
        { op: 'Less', inputs: ['x', 'half'], outputs: ['small'] },
        { op: 'And', inputs: ['pos', 'small'], outputs: ['and'] },
        { op: 'Or', inputs: ['pos', 'small'], outputs: ['or'] },
        { op: 'Xor', inputs: ['pos', 'small'], outputs: ['xor'] },
      ],
      inputs: [valueInfo('x', [2, 8, 4, 6])],
      outputs: [
        ...['tile', 'd2s', 'd2s_crd', 's2d', 'triu', 'tril', 'gel', 'topv', 'lowv', 'cum', 'inorm', 'lrn', 'l2', 'lse', 'prod'].map((n) => anyShape(n)),
        anyShape('topi', INT64), anyShape('lowi', INT64), anyShape('size', INT64), anyShape('and', BOOL), anyShape('or', BOOL), anyShape('xor', BOOL),
      ],
      initializers: [
        ints('reps', [1, 2, 1, 3]), { name: 'k', dataType: INT64, dims: [], int64Data: [-1] }, ints('topk', [3]),
        { name: 'gidx', dataType: INT64, dims: [2, 8, 4, 2], int64Data: Array.from({ length: 128 }, (_, i) => ((i * 7) % 12) - 6) },
        { name: 'caxis', dataType: INT64, dims: [], int64Data: [2] },
        { name: 'iscale', dims: [8], floatData: Array.from(seeded(8, 31, 2)) }, { name: 'ibias', dims: [8], floatData: Array.from(seeded(8, 32)) },
        { name: 'zero', dims: [], floatData: [0] }, { name: 'half', dims: [], floatData: [0.5] },
      ],
    };
    const { got, want } = await both(spec, { x: { data: seeded(2 * 8 * 4 * 6, 33, 1.5), dims: [2, 8, 4, 6] } });
    for (const name of Object.keys(want)) expectClose(got[name], want[name], 1e-5);
  });
});

describe('empty batches', () => {
  // onnxruntime itself fails on some of these (it crashed the test process), so the expected
  // shapes are written out.
  it('the new ops take a batch of 0 and give empty outputs of the right shapes, without crashing', async () => {
    const int = (name: string, i: number) => ({ name, type: 2, i });
    const spec: ModelSpec = {
      opset: 14,
      nodes: [
        { op: 'InstanceNormalization', inputs: ['x', 'sc', 'b'], outputs: ['inorm'] },
        { op: 'LRN', inputs: ['x'], outputs: ['lrn'], attributes: [int('size', 3)] },
        { op: 'ReduceMean', inputs: ['x'], outputs: ['mean'], attributes: [{ name: 'axes', type: 7, ints: [0] }] },
        { op: 'ReduceMax', inputs: ['x'], outputs: ['max'], attributes: [{ name: 'axes', type: 7, ints: [2] }] },
        { op: 'TopK', inputs: ['x', 'k'], outputs: ['tv', 'ti'] },
        { op: 'Tile', inputs: ['x', 'reps'], outputs: ['tile'] },
        { op: 'ArgMax', inputs: ['x'], outputs: ['am'], attributes: [int('axis', 1)] },
        { op: 'CumSum', inputs: ['x', 'axis'], outputs: ['cum'] },
        { op: 'Cast', inputs: ['x'], outputs: ['xi'], attributes: [int('to', 7)] },
        { op: 'Greater', inputs: ['x', 'x'], outputs: ['xb'] },
        { op: 'Where', inputs: ['xb', 'x', 'x'], outputs: ['wh'] },
        { op: 'Resize', inputs: ['x', '', 'scales'], outputs: ['rs'] },
        { op: 'DepthToSpace', inputs: ['x'], outputs: ['d2s'], attributes: [int('blocksize', 2)] },
      ],
      inputs: [valueInfo('x', ['N', 4, 2, 5])],
      outputs: [...['inorm', 'lrn', 'mean', 'max', 'tv', 'tile', 'cum', 'wh', 'rs', 'd2s'].map((n) => anyShape(n)), anyShape('ti', INT64), anyShape('am', INT64), anyShape('xi', INT64)],
      initializers: [
        { name: 'sc', dims: [4], floatData: [1, 2, 3, 4] }, { name: 'b', dims: [4], floatData: [0, 0, 1, 1] },
        ints('k', [2]), ints('reps', [2, 1, 1, 2]), { name: 'axis', dataType: INT64, dims: [], int64Data: [2] },
        { name: 'scales', dims: [4], floatData: [1, 1, 2, 2] },
      ],
    };
    const s = await InferenceSession.create(encodeModel(spec));
    const got = await s.run({ x: new Tensor('float32', new Float32Array(0), [0, 4, 2, 5]) });
    const want: Record<string, number[]> = {
      inorm: [0, 4, 2, 5], lrn: [0, 4, 2, 5], mean: [1, 4, 2, 5], max: [0, 4, 1, 5], tv: [0, 4, 2, 2], ti: [0, 4, 2, 2], tile: [0, 4, 2, 10],
      am: [0, 1, 2, 5], cum: [0, 4, 2, 5], xi: [0, 4, 2, 5], wh: [0, 4, 2, 5], rs: [0, 4, 4, 10], d2s: [0, 1, 4, 10],
    };
    for (const [name, dims] of Object.entries(want)) expect(got[name].dims, name).toEqual(dims);
    // A mean over an empty axis is NaN (0 / 0), as numpy gives.
    expect(got.mean.data.length).toBe(40);
    expect(Array.from(got.mean.data as Float32Array).every(Number.isNaN)).toBe(true);
    await s.release();
  });
});

describe('Resize between convolutions, as FPN / U-Net decoders use it', () => {
  it('nearest x2 from scales and bilinear to sizes from Shape, matching onnxruntime', async () => {
    const C = 4;
    const w = (name: string, seed: number) => ({ name, dims: [C, C, 3, 3], floatData: Array.from(seeded(C * C * 9, seed, 0.3)) });
    const pads = { name: 'pads', type: 7, ints: [1, 1, 1, 1] };
    const spec: ModelSpec = {
      opset: 13,
      nodes: [
        { op: 'Conv', inputs: ['x', 'w1'], outputs: ['c1'], attributes: [pads] },
        { op: 'Relu', inputs: ['c1'], outputs: ['r1'] },
        { op: 'Resize', inputs: ['r1', '', 'scales'], outputs: ['up'], attributes: [{ name: 'mode', type: 3, s: new TextEncoder().encode('nearest') }] },
        { op: 'Conv', inputs: ['up', 'w2'], outputs: ['c2'], attributes: [pads] },
        { op: 'Shape', inputs: ['x'], outputs: ['xs'] },
        { op: 'Slice', inputs: ['xs', 'two', 'four'], outputs: ['hw'] },
        { op: 'Mul', inputs: ['hw', 'three'], outputs: ['hw3'] },
        { op: 'Concat', inputs: ['nc', 'hw3'], outputs: ['sizes'], attributes: [{ name: 'axis', type: 2, i: 0 }] },
        { op: 'Resize', inputs: ['c2', '', '', 'sizes'], outputs: ['bi'], attributes: [{ name: 'mode', type: 3, s: new TextEncoder().encode('linear') }] },
        { op: 'Conv', inputs: ['bi', 'w3'], outputs: ['y'], attributes: [pads] },
      ],
      inputs: [valueInfo('x', ['N', C, 'H', 'W'])],
      outputs: [anyShape('y'), anyShape('up')],
      initializers: [
        w('w1', 1), w('w2', 2), w('w3', 3),
        { name: 'scales', dims: [4], floatData: [1, 1, 2, 2] },
        ints('two', [2]), ints('four', [4]), ints('three', [3]),
        { name: 'nc', dataType: INT64, dims: [2], int64Data: [0, C] },
      ],
    };
    // sizes' batch entry must be the batch: build it from Shape too.
    spec.nodes.splice(7, 1,
      { op: 'Slice', inputs: ['xs', 'zero1', 'two'], outputs: ['ncs'] },
      { op: 'Concat', inputs: ['ncs', 'hw3'], outputs: ['sizes'], attributes: [{ name: 'axis', type: 2, i: 0 }] });
    spec.initializers!.push(ints('zero1', [0]));
    for (const [N, H, W] of [[1, 5, 7], [2, 8, 6]]) {
      const { got, want } = await both(spec, { x: { data: seeded(N * C * H * W, H * W, 1), dims: [N, C, H, W] } });
      expect(got.y.dims).toEqual([N, C, 3 * H, 3 * W]);
      expectClose(got.up, want.up);
      expectClose(got.y, want.y, 1e-4);
    }
  });
});

describe('Resize as a segmentation head upsamples', () => {
  it('bilinear and nearest 28x28 -> 224x224 over 21 classes match onnxruntime, and 1 and 2 threads agree bit for bit', async () => {
    const [C, H] = [21, 28];
    for (const [mode, transform] of [['linear', 'half_pixel'], ['linear', 'align_corners'], ['nearest', 'asymmetric']]) {
      const spec: ModelSpec = {
        opset: 13,
        nodes: [{
          op: 'Resize', inputs: ['x', '', '', 'sizes'], outputs: ['y'],
          attributes: [{ name: 'mode', type: 3, s: new TextEncoder().encode(mode) }, { name: 'coordinate_transformation_mode', type: 3, s: new TextEncoder().encode(transform) }],
        }],
        inputs: [valueInfo('x', [1, C, H, H])],
        outputs: [anyShape('y')],
        initializers: [{ name: 'sizes', dataType: INT64, dims: [4], int64Data: [1, C, 8 * H, 8 * H] }],
      };
      const x = seeded(C * H * H, 5, 3);
      const { got, want } = await both(spec, { x: { data: x, dims: [1, C, H, H] } });
      expectClose(got.y, want.y);
      const two = await InferenceSession.create(encodeModel(spec), { threads: 2 });
      const y2 = (await two.run({ x: new Tensor('float32', x, [1, C, H, H]) })).y.data as Float32Array;
      expect(Buffer.from(y2.buffer).equals(Buffer.from((got.y.data as Float32Array).buffer))).toBe(true);
      await two.release();
    }
  });
});

describe('batched MatMul as attention runs it', () => {
  it('12 heads of [128, 32] x [32, 128] (a run-time right operand) match onnxruntime, and 1 and 2 threads agree bit for bit', async () => {
    const spec: ModelSpec = {
      opset: 13,
      nodes: [{ op: 'MatMul', inputs: ['q', 'k'], outputs: ['s'] }],
      inputs: [valueInfo('q', [1, 12, 128, 32]), valueInfo('k', [1, 12, 32, 128])],
      outputs: [anyShape('s')],
    };
    const q = seeded(12 * 128 * 32, 3, 1), k = seeded(12 * 32 * 128, 4, 1);
    const { got, want } = await both(spec, { q: { data: q, dims: [1, 12, 128, 32] }, k: { data: k, dims: [1, 12, 32, 128] } });
    expectClose(got.s, want.s, 1e-4);
    const two = await InferenceSession.create(encodeModel(spec), { threads: 2 });
    const s2 = (await two.run({ q: new Tensor('float32', q, [1, 12, 128, 32]), k: new Tensor('float32', k, [1, 12, 32, 128]) })).s.data as Float32Array;
    expect(Buffer.from(s2.buffer).equals(Buffer.from((got.s.data as Float32Array).buffer))).toBe(true);
    await two.release();
  });
});

describe('Cast', () => {
  it('truncates toward zero, saturates, maps NaN to 0 and nonzero to true', async () => {
    const x = Float32Array.from([0, -0.5, 1.9, -1.9, 300, -300, 3e10, -3e10, Number.NaN, 0.25]);
    const targets: [number, string][] = [[6, 'int32'], [7, 'int64'], [2, 'uint8'], [3, 'int8'], [9, 'bool']];
    const spec: ModelSpec = {
      opset: 13,
      nodes: targets.map(([to, name]) => ({ op: 'Cast', inputs: ['x'], outputs: [name], attributes: [{ name: 'to', type: 2, i: to }] })),
      inputs: [valueInfo('x', [x.length])],
      outputs: targets.map(([to, name]) => valueInfo(name, [x.length], to)),
    };
    const s = await InferenceSession.create(encodeModel(spec));
    const out = await s.run({ x: new Tensor('float32', x, [x.length]) });
    expect(Array.from(out.int32.data as Int32Array)).toEqual([0, 0, 1, -1, 300, -300, 2147483647, -2147483648, 0, 0]);
    expect(Array.from(out.int64.data as BigInt64Array)).toEqual([0n, 0n, 1n, -1n, 300n, -300n, 30000001024n, -30000001024n, 0n, 0n]);
    expect(Array.from(out.uint8.data as Uint8Array)).toEqual([0, 0, 1, 0, 255, 0, 255, 0, 0, 0]);
    expect(Array.from(out.int8.data as Int8Array)).toEqual([0, 0, 1, -1, 127, -128, 127, -128, 0, 0]);
    expect(out.bool.type).toBe('bool');
    expect(Array.from(out.bool.data as Uint8Array)).toEqual([0, 1, 1, 1, 1, 1, 1, 1, 1, 1]);
    await s.release();
  });

  it('CastLike (opset 15) takes the type of its second input, as onnxruntime does', async () => {
    const x = Float32Array.from([0, -0.5, 1.9, -1.9, 300, -300, 0.25, 7]);
    const spec: ModelSpec = {
      opset: 15,
      nodes: [
        { op: 'CastLike', inputs: ['x', 'like_i64'], outputs: ['xi'] },
        { op: 'Mul', inputs: ['xi', 'like_i64'], outputs: ['yi'] },
        { op: 'CastLike', inputs: ['yi', 'x'], outputs: ['y'] },
        { op: 'CastLike', inputs: ['x', 'like_bool'], outputs: ['b'] },
      ],
      inputs: [valueInfo('x', ['N'])],
      outputs: [valueInfo('xi', ['N'], INT64), valueInfo('y', ['N']), valueInfo('b', ['N'], 9)],
      initializers: [{ ...ints('like_i64', [3]), dims: [] }, { name: 'like_bool', dataType: 9, dims: [1], int32Data: [1] }],
    };
    const { got, want } = await both(spec, { x: { data: x, dims: [x.length] } });
    for (const name of ['xi', 'y', 'b']) expectClose(got[name], want[name], 0);
    expect(Array.from(got.y.data as Float32Array)).toEqual([0, 0, 3, -3, 900, -900, 0, 21]);
  });

  it('names an element type it does not hold', async () => {
    const spec: ModelSpec = {
      opset: 13,
      nodes: [{ op: 'Cast', inputs: ['x'], outputs: ['y'], name: 'to_double', attributes: [{ name: 'to', type: 2, i: 11 }] }],
      inputs: [valueInfo('x', [3])],
      outputs: [valueInfo('y', [3], 11)],
    };
    await expect(InferenceSession.create(encodeModel(spec))).rejects.toMatchObject({ code: 'ERR_DTYPE', message: expect.stringContaining('"to_double" (Cast): casting to ONNX element type 11') });
  });
});
