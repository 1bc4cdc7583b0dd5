// Channels-last layout and integer chaining (lib/ir/passes/channels-last.ts): convs pass
// pixel-major activations, uint8 between quantized layers. Quantized graphs must give
// bit-identical outputs to the planar graph, for every weight mode, 4-bit activations, padded
// channels, MaxPool, residuals, grouped, depthwise and strided convs, batch > 1 and 1 or 2
// threads; fp32 graphs agree to rounding; values the pass cannot chain stay as they were.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InferenceSession, Tensor, quantize } from '../lib';
import { optimizeGraph, toChannelsLast, type Graph, type Node } from '../lib/ir';
import { loadOnnxModel } from '../lib/onnx';
import { loadNpy } from '../lib/data/npy';
import { rng } from './helpers';
import { encodeModel, valueInfo, type TensorSpec } from './onnx-build-model';

const INTS = 7;
const INT = 2;
const ints = (name: string, v: number[]) => ({ name, type: INTS, ints: v });
const int = (name: string, v: number) => ({ name, type: INT, i: v });

function weights(r: () => number, name: string, dims: number[]): TensorSpec {
  const n = dims.reduce((a, b) => a * b, 1);
  const fanIn = n / dims[0];
  return { name, dims, floatData: Array.from({ length: n }, () => (r() * 2 - 1) * Math.sqrt(3 / fanIn)) };
}

/** A small network with every shape the pass handles: MaxPool, residuals, a grouped conv, GAP, and a graph output in the middle. */
function testModel(): Uint8Array {
  const r = rng(7);
  const conv = (name: string, x: string, w: string, y: string, attrs: Record<string, unknown>[] = []) =>
    ({ op: 'Conv', name, inputs: [x, w, `${w}_b`], outputs: [y], attributes: attrs });
  const bias = (name: string, n: number): TensorSpec => ({ name, dims: [n], floatData: Array.from({ length: n }, () => r() * 0.2 - 0.1) });
  return encodeModel({
    nodes: [
      conv('c0', 'x', 'w0', 'a0', [ints('pads', [1, 1, 1, 1])]),
      { op: 'Relu', name: 'r0', inputs: ['a0'], outputs: ['a'] },
      { op: 'MaxPool', name: 'pool', inputs: ['a'], outputs: ['m'], attributes: [ints('kernel_shape', [3, 3]), ints('strides', [2, 2]), ints('pads', [1, 1, 1, 1])] },
      conv('c1', 'm', 'w1', 'b0', [ints('pads', [1, 1, 1, 1])]),
      { op: 'Relu', name: 'r1', inputs: ['b0'], outputs: ['b'] },
      conv('c2', 'b', 'w2', 'c'),
      { op: 'Add', name: 'add1', inputs: ['c', 'm'], outputs: ['d0'] },
      { op: 'Relu', name: 'r2', inputs: ['d0'], outputs: ['d1'] },
      conv('dw', 'd1', 'wd', 'd2', [ints('pads', [1, 0, 1, 2]), int('group', 24)]), // depthwise: int8 when quantized (fp32 with depthwise: 'float32')
      { op: 'Relu', name: 'rd', inputs: ['d2'], outputs: ['d'] },
      conv('c3', 'd', 'w3', 'e0', [ints('strides', [2, 2])]),
      { op: 'Relu', name: 'r3', inputs: ['e0'], outputs: ['e'] },
      conv('c4', 'e', 'w4', 'f', [ints('pads', [1, 1, 1, 1]), int('group', 2)]),
      { op: 'Add', name: 'add2', inputs: ['f', 'e'], outputs: ['g0'] },
      { op: 'Relu', name: 'r4', inputs: ['g0'], outputs: ['g'] },
      conv('c5', 'g', 'w5', 'h0', [ints('pads', [1, 1, 1, 1])]),
      { op: 'Relu', name: 'r5', inputs: ['h0'], outputs: ['h'] },
      { op: 'GlobalAveragePool', name: 'gap', inputs: ['h'], outputs: ['p'] },
      { op: 'Flatten', name: 'flat', inputs: ['p'], outputs: ['q'] },
      { op: 'Gemm', name: 'fc', inputs: ['q', 'wf', 'wf_b'], outputs: ['y'], attributes: [int('transB', 1)] },
    ],
    inputs: [valueInfo('x', ['N', 3, 17, 15])],
    outputs: [valueInfo('y', ['N', 5]), valueInfo('b', ['N', 24, 9, 8])],
    initializers: [
      weights(r, 'w0', [24, 3, 3, 3]), bias('w0_b', 24),
      weights(r, 'w1', [24, 24, 3, 3]), bias('w1_b', 24),
      weights(r, 'w2', [24, 24, 1, 1]), bias('w2_b', 24),
      weights(r, 'wd', [24, 1, 3, 3]), bias('wd_b', 24),
      weights(r, 'w3', [40, 24, 3, 3]), bias('w3_b', 40),
      weights(r, 'w4', [40, 20, 3, 3]), bias('w4_b', 40),
      weights(r, 'w5', [32, 40, 3, 3]), bias('w5_b', 32),
      weights(r, 'wf', [5, 32]), bias('wf_b', 5),
    ],
  });
}

function randomInput(seed: number, dims: number[]): Tensor<'float32'> {
  const r = rng(seed);
  const n = dims.reduce((a, b) => a * b, 1);
  return new Tensor('float32', Float32Array.from({ length: n }, () => r() * 2 - 0.5), dims);
}

/** `model` channels-last and planar on each thread count: output y of the same dims, values to fp32 rounding (1e-5 of the largest). */
async function expectPlanarValues(model: Uint8Array, x: Tensor, threadCounts: readonly number[] = [1, 2]): Promise<Tensor> {
  let last: Tensor | undefined;
  for (const threads of threadCounts) {
    const a = await (await InferenceSession.create(model, { threads })).run({ x });
    const b = await (await InferenceSession.create(model, { threads, channelsLast: false })).run({ x });
    const u = a.y.data as Float32Array, v = b.y.data as Float32Array;
    expect(a.y.dims).toEqual(b.y.dims);
    const scale = Math.max(...Array.from(v, Math.abs));
    for (let i = 0; i < v.length; i++) expect(Math.abs(u[i] - v[i])).toBeLessThanOrEqual(1e-5 * scale);
    last = a.y;
  }
  return last as Tensor;
}

/** A quantized model channels-last and planar on 1 and 2 threads: output y bit for bit. */
async function expectPlanarBits(q: { createSession(o: { threads: number; channelsLast?: boolean }): Promise<InferenceSession> }, x: Tensor): Promise<void> {
  for (const threads of [1, 2]) {
    const c = await (await q.createSession({ threads })).run({ x });
    const d = await (await q.createSession({ threads, channelsLast: false })).run({ x });
    expect(Array.from(c.y.data as Float32Array)).toEqual(Array.from(d.y.data as Float32Array));
  }
}

function byOp(g: Graph, op: string): Node[] {
  return g.nodes.filter((n) => n.opType === op);
}

const MODES = [
  { weights: 'int8' },
  { weights: 'ternary', groupSize: 4 },
  { weights: 'ternary', groupSize: 16 }, // 24 input channels pad to 32: readers quantize the fp32 form
  { weights: 'ternary-asym', groupSize: 8 },
  { weights: 'ternary', groupSize: 'filter' },
  { weights: 'int4', groupSize: 8 },
  { weights: 'ternary', groupSize: 4, activationBits: 4 },
  { weights: 'ternary', groupSize: 4, form: 'folded' },
  // fp32 residuals (the modes above quantize them): the float32 and 'both' forms.
  { weights: 'int8', quantizeResiduals: false },
  { weights: 'ternary', groupSize: 4, activationBits: 4, quantizeResiduals: false },
] as const;

describe('channels-last layout and integer chaining', () => {
  const model = testModel();
  const calibration = randomInput(1, [4, 3, 17, 15]);

  it('rewrites the graph: uint8 between layers, NHWC pooling, graph outputs untouched', async () => {
    const q = await quantize(model, { weights: 'ternary', groupSize: 4, calibration, quantizeResiduals: false });
    const g = toChannelsLast(q.graph);
    const convs = new Map(byOp(g, 'TernionQConv').map((n) => [n.name, n]));
    const attr = (n: Node | undefined, k: string) => (n?.attributes[k] as { value: unknown } | undefined)?.value;
    // c0 feeds the MaxPool only: uint8 NHWC with c1's activation parameters (the MaxPool passes them through).
    expect(attr(convs.get('c0'), 'output_layout')).toBe('nhwc');
    // m is read by c1 (uint8) and by c2's residual (fp32): so the MaxPool runs in fp32 NHWC.
    expect(byOp(g, 'TernionMaxPoolNhwc')).toHaveLength(1);
    expect(byOp(g, 'MaxPool')).toHaveLength(0);
    expect(g.valueInfo.get('m')?.dtype).toBe('float32');
    // b is a graph output: c1 keeps NCHW fp32 output, c2 reads it as before.
    expect(attr(convs.get('c1'), 'output_layout')).toBeUndefined();
    expect(attr(convs.get('c2'), 'input_layout')).toBeUndefined();
    expect(g.outputs.map((o) => o.name)).toEqual(['y', 'b']);
    // e is read by c4 (uint8) and by add2's residual (fp32): both forms, the conv has two outputs.
    expect(convs.get('c3')?.outputs).toHaveLength(2);
    expect(attr(convs.get('c3'), 'output_quant')).toBe(1);
    expect(convs.get('c4')?.inputs[0]).toBe(convs.get('c3')?.outputs[0]);
    expect(convs.get('c4')?.inputs[4]).toBe(convs.get('c3')?.outputs[1]);
    // The depthwise conv is int8 (per channel) and hands c3 its output as uint8 NHWC.
    const dw = convs.get('dw');
    expect(attr(dw, 'weight_bits')).toBe(8);
    expect(attr(dw, 'group')).toBe(24);
    expect(attr(dw, 'output_quant')).toBe(1);
    expect(convs.get('c3')?.inputs[0]).toBe(dw?.outputs[0]);
    // h feeds the global pool only: fp32 NHWC.
    expect(attr(convs.get('c5'), 'output_quant')).toBeUndefined();
    expect(byOp(g, 'TernionGlobalAveragePoolNhwc')).toHaveLength(1);
    // depthwise: 'float32' keeps it an fp32 Conv, run channels-last between quantized layers.
    const kept = toChannelsLast((await quantize(model, { weights: 'ternary', groupSize: 4, calibration, depthwise: 'float32' })).graph);
    const fdw = kept.nodes.find((n) => n.name === 'dw');
    expect(fdw?.opType).toBe('Conv');
    expect(attr(fdw, 'input_layout')).toBe('nhwc');
    expect(attr(fdw, 'output_layout')).toBe('nhwc');
  });

  it('passes quantized residuals as uint8 codes (quantizeResiduals, the default)', async () => {
    const q = await quantize(model, { weights: 'ternary', groupSize: 4, calibration });
    const attr = (n: Node | undefined, k: string) => (n?.attributes[k] as { value: unknown } | undefined)?.value;
    const planar = new Map(byOp(q.graph, 'TernionQConv').map((n) => [n.name, n]));
    // A residual that is also a layer's input is quantized with that layer's parameters.
    for (const [conv, reader] of [['c2', 'c1'], ['c4', 'c4']]) {
      expect(attr(planar.get(conv), 'residual_scale'), conv).toBe(attr(planar.get(reader), 'act_scale'));
      expect(attr(planar.get(conv), 'residual_zero_point'), conv).toBe(attr(planar.get(reader), 'act_zero_point'));
    }
    const g = toChannelsLast(q.graph);
    const convs = new Map(byOp(g, 'TernionQConv').map((n) => [n.name, n]));
    // e is read by c4 as its input and its residual: one uint8 tensor serves both, no fp32 copy.
    expect(convs.get('c3')?.outputs).toHaveLength(1);
    expect(convs.get('c4')?.inputs[4]).toBe('e');
    expect(convs.get('c4')?.inputs[0]).toBe('e');
    expect(g.valueInfo.get('e')?.dtype).toBe('uint8');
    // m (the MaxPool's output) is read by c1 and as c2's residual: now pooled in uint8.
    expect(g.valueInfo.get('m')?.dtype).toBe('uint8');
    expect(convs.get('c2')?.inputs[4]).toBe('m');
  });

  it('runs fp32 models channels-last: the same outputs as planar to fp32 rounding, depthwise exactly, whole images per thread too', async () => {
    const graph = optimizeGraph(loadOnnxModel(model));
    const g = toChannelsLast(graph);
    const convs = g.nodes.filter((n) => n.opType === 'Conv');
    expect(convs.filter((n) => n.attributes.output_layout).map((n) => n.name).sort()).toEqual(['c0', 'c2', 'c3', 'c4', 'c5', 'dw']);
    // Batch 4 on 2 threads: each thread takes whole images (batch 3 splits each image).
    for (const [threads, batch] of [[1, 3], [2, 3], [2, 4]]) {
      const x = randomInput(20 + threads + batch, [batch, 3, 17, 15]);
      const a = await (await InferenceSession.create(model, { threads })).run({ x });
      const b = await (await InferenceSession.create(model, { threads, channelsLast: false })).run({ x });
      for (const name of ['y', 'b']) {
        const u = a[name].data as Float32Array, v = b[name].data as Float32Array;
        expect(a[name].dims).toEqual(b[name].dims);
        const scale = Math.max(...Array.from(v, Math.abs));
        for (let i = 0; i < v.length; i++) expect(Math.abs(u[i] - v[i])).toBeLessThanOrEqual(1e-5 * scale);
      }
    }
  });

  it('a planar fp32 1x1 expansion (16 -> 96 channels, Clip) over more pixels than one chunk: the definition\'s values, 1 and 2 threads alike', async () => {
    const r = rng(31);
    const expansion = encodeModel({
      nodes: [{ op: 'Conv', name: 'expand', inputs: ['x', 'w', 'b'], outputs: ['c'] }, { op: 'Clip', name: 'relu6', inputs: ['c', 'lo', 'hi'], outputs: ['y'] }],
      inputs: [valueInfo('x', [1, 16, 41, 37])],
      outputs: [valueInfo('y', [1, 96, 41, 37])],
      initializers: [weights(r, 'w', [96, 16, 1, 1]), weights(r, 'b', [96]), { name: 'lo', dims: [], floatData: [0] }, { name: 'hi', dims: [], floatData: [6] }],
    });
    // Its output is a graph output, so planar: computed in chunks of pixels through a buffer the
    // transpose reads back. Checked against the definition (double sums) and on two threads.
    const x = randomInput(77, [1, 16, 41, 37]);
    const P = 41 * 37;
    const model = loadOnnxModel(expansion);
    const w = model.initializers.get('w')!.data as Float32Array, b = model.initializers.get('b')!.data as Float32Array;
    const xs = x.data as Float32Array;
    const want = new Float64Array(96 * P);
    for (let m = 0; m < 96; m++)
      for (let p = 0; p < P; p++) {
        let sum = b[m];
        for (let k = 0; k < 16; k++) sum += w[m * 16 + k] * xs[k * P + p];
        want[m * P + p] = Math.min(6, Math.max(0, sum));
      }
    const one = (await (await InferenceSession.create(expansion, { threads: 1 })).run({ x })).y.data as Float32Array;
    const two = (await (await InferenceSession.create(expansion, { threads: 2 })).run({ x })).y.data as Float32Array;
    expect(one.length).toBe(96 * P);
    for (let i = 0; i < want.length; i++) expect(Math.abs(one[i] - want[i])).toBeLessThanOrEqual(1e-5 * (1 + Math.abs(want[i])));
    expect(Array.from(two)).toEqual(Array.from(one));
    expect(new Set(one).size).toBeGreaterThan(1000);
  });

  it('keeps SiLU and squeeze-and-excitation blocks pixel-major (elementwise ops, a per-channel scale), fp32 to rounding and quantized bit-identically', async () => {
    const r = rng(11);
    const bias = (name: string, n: number): TensorSpec => ({ name, dims: [n], floatData: Array.from({ length: n }, () => r() * 0.2 - 0.1) });
    const se = encodeModel({
      nodes: [
        { op: 'Conv', name: 'c0', inputs: ['x', 'w0', 'w0_b'], outputs: ['a'], attributes: [ints('pads', [1, 1, 1, 1])] },
        { op: 'Sigmoid', name: 'silu_s', inputs: ['a'], outputs: ['as'] },
        { op: 'Mul', name: 'silu_m', inputs: ['a', 'as'], outputs: ['h'] },
        { op: 'Conv', name: 'dw', inputs: ['h', 'wd', 'wd_b'], outputs: ['d'], attributes: [ints('pads', [1, 1, 1, 1]), int('group', 16)] },
        { op: 'HardSwish', name: 'hs', inputs: ['d'], outputs: ['e'] },
        { op: 'GlobalAveragePool', name: 'gap', inputs: ['e'], outputs: ['g'] },
        { op: 'Conv', name: 'f1', inputs: ['g', 'wf1', 'wf1_b'], outputs: ['f'] },
        { op: 'Sigmoid', name: 'f1_s', inputs: ['f'], outputs: ['fs'] },
        { op: 'Mul', name: 'f1_m', inputs: ['f', 'fs'], outputs: ['fr'] },
        { op: 'Conv', name: 'f2', inputs: ['fr', 'wf2', 'wf2_b'], outputs: ['s'] },
        { op: 'HardSigmoid', name: 'hsig', inputs: ['s'], outputs: ['sc'] },
        { op: 'Mul', name: 'excite', inputs: ['e', 'sc'], outputs: ['se'] },
        // A constant per-channel scale and a scalar: planar operands the pass lays out or leaves.
        { op: 'Mul', name: 'chan', inputs: ['se', 'k'], outputs: ['sk'] },
        { op: 'Add', name: 'shift', inputs: ['sk', 'one'], outputs: ['sh'] },
        { op: 'Conv', name: 'c1', inputs: ['sh', 'w1', 'w1_b'], outputs: ['y'] },
      ],
      opset: 14, // HardSwish
      inputs: [valueInfo('x', ['N', 3, 13, 12])],
      outputs: [valueInfo('y', ['N', 8, 13, 12])],
      initializers: [
        weights(r, 'w0', [16, 3, 3, 3]), bias('w0_b', 16), weights(r, 'wd', [16, 1, 3, 3]), bias('wd_b', 16),
        weights(r, 'wf1', [4, 16, 1, 1]), bias('wf1_b', 4), weights(r, 'wf2', [16, 4, 1, 1]), bias('wf2_b', 16),
        weights(r, 'w1', [8, 16, 1, 1]), bias('w1_b', 8),
        { name: 'k', dims: [1, 16, 1, 1], floatData: Array.from({ length: 16 }, () => 0.5 + r()) },
        { name: 'one', dims: [1], floatData: [0.25] },
      ],
    });
    const g = toChannelsLast(optimizeGraph(loadOnnxModel(se)));
    const nhwc = g.nodes.filter((n) => n.attributes.output_layout).map((n) => n.name).sort();
    expect(nhwc).toEqual(['c0', 'dw', 'f1', 'f2']);
    expect(byOp(g, 'TernionGlobalAveragePoolNhwc')).toHaveLength(1);
    expect(g.nodes.find((n) => n.name === 'c1')?.attributes.input_layout).toEqual({ type: 'string', value: 'nhwc' });
    // The constant [1, C, 1, 1] scale goes through one Transpose to [1, 1, 1, C]; the scalar as it is.
    const tr = byOp(g, 'Transpose');
    expect(tr).toHaveLength(1);
    expect(tr[0].inputs).toEqual(['k']);
    expect(g.nodes.find((n) => n.name === 'shift')?.inputs[1]).toBe('one');
    for (const batch of [1, 3]) {
      const x = randomInput(30 + batch, [batch, 3, 13, 12]);
      const a = await (await InferenceSession.create(se)).run({ x });
      const b = await (await InferenceSession.create(se, { channelsLast: false })).run({ x });
      const u = a.y.data as Float32Array, v = b.y.data as Float32Array;
      expect(a.y.dims).toEqual(b.y.dims);
      const scale = Math.max(...Array.from(v, Math.abs));
      for (let i = 0; i < v.length; i++) expect(Math.abs(u[i] - v[i])).toBeLessThanOrEqual(1e-5 * scale);
      const q = await quantize(se, { weights: 'ternary', groupSize: 4, calibration: x });
      const c = await (await q.createSession()).run({ x });
      const d = await (await q.createSession({ channelsLast: false })).run({ x });
      expect(Array.from(c.y.data as Float32Array)).toEqual(Array.from(d.y.data as Float32Array));
    }
  });

  it('keeps U-Net upsampling pixel-major: Resize by scales and by sizes (linear, nearest) between convs, the same values as planar', async () => {
    const r = rng(21);
    const bias = (name: string, n: number): TensorSpec => ({ name, dims: [n], floatData: Array.from({ length: n }, () => r() * 0.2 - 0.1) });
    const unet = encodeModel({
      nodes: [
        { op: 'Conv', name: 'enc', inputs: ['x', 'w0', 'w0_b'], outputs: ['e'], attributes: [ints('pads', [1, 1, 1, 1]), ints('strides', [2, 2])] },
        { op: 'Relu', name: 'enc_r', inputs: ['e'], outputs: ['er'] },
        // x2 by scales, bilinear (half_pixel), then to the skip's size by sizes, nearest.
        { op: 'Resize', name: 'up_scales', inputs: ['er', '', 'scales'], outputs: ['u'], attributes: [{ name: 'mode', type: 3, s: new TextEncoder().encode('linear') }] },
        { op: 'Conv', name: 'mid', inputs: ['u', 'w1', 'w1_b'], outputs: ['m'], attributes: [ints('pads', [1, 1, 1, 1]), ints('strides', [2, 2])] },
        { op: 'Resize', name: 'up_sizes', inputs: ['m', '', '', 'sizes'], outputs: ['v'], attributes: [{ name: 'mode', type: 3, s: new TextEncoder().encode('nearest') }] },
        { op: 'Conv', name: 'lateral', inputs: ['x', 'wl', 'wl_b'], outputs: ['l'] },
        { op: 'Concat', name: 'skip', inputs: ['v', 'l'], outputs: ['j'], attributes: [int('axis', 1)] },
        { op: 'Conv', name: 'dec', inputs: ['j', 'w2', 'w2_b'], outputs: ['y'], attributes: [ints('pads', [1, 1, 1, 1])] },
      ],
      opset: 13,
      inputs: [valueInfo('x', [2, 3, 13, 15])],
      outputs: [valueInfo('y', [2, 4, 13, 15])],
      initializers: [
        weights(r, 'w0', [8, 3, 3, 3]), bias('w0_b', 8), weights(r, 'w1', [6, 8, 3, 3]), bias('w1_b', 6), weights(r, 'w2', [4, 9, 3, 3]), bias('w2_b', 4),
        weights(r, 'wl', [3, 3, 1, 1]), bias('wl_b', 3),
        { name: 'scales', dims: [4], floatData: [1, 1, 2, 2] },
        { name: 'sizes', dataType: 7, dims: [4], int64Data: [2, 6, 13, 15] },
      ],
    });
    const g = toChannelsLast(optimizeGraph(loadOnnxModel(unet)));
    // Every conv reads and writes pixels, but the last (its output is the graph's).
    expect(g.nodes.filter((n) => n.attributes.output_layout).map((n) => n.name).sort()).toEqual(['enc', 'lateral', 'mid']);
    expect(g.nodes.filter((n) => n.attributes.input_layout).map((n) => n.name).sort()).toEqual(['dec', 'mid']);
    // The Resizes take their factors in [N, H, W, C] order.
    const factors = (name: string) => Array.from(g.initializers.get(g.nodes.find((n) => n.name === name)!.inputs.find((i) => i.endsWith('/nhwc'))!)!.data as ArrayLike<number | bigint>, Number);
    expect(factors('up_scales')).toEqual([1, 2, 2, 1]);
    expect(factors('up_sizes')).toEqual([2, 13, 15, 6]);
    const x = randomInput(5, [2, 3, 13, 15]);
    await expectPlanarValues(unet, x);
  });

  it('keeps a U-Net decoder pixel-major through ConvTranspose (strided, overlapping, grouped) and float joins of quantized and fp32 pieces', async () => {
    const r = rng(31);
    const bias = (name: string, n: number): TensorSpec => ({ name, dims: [n], floatData: Array.from({ length: n }, () => r() * 0.2 - 0.1) });
    const model = encodeModel({
      nodes: [
        { op: 'Conv', name: 'enc', inputs: ['x', 'w0', 'w0_b'], outputs: ['e'], attributes: [ints('pads', [1, 1, 1, 1]), ints('strides', [2, 2])] },
        { op: 'Relu', name: 'enc_r', inputs: ['e'], outputs: ['er'] },
        // 2x2 stride 2 (each output pixel from one input pixel), and 3x3 stride 2 with pads,
        // output_padding and 2 groups (overlapping windows).
        { op: 'ConvTranspose', name: 'up_a', inputs: ['er', 'wa', 'wa_b'], outputs: ['ua'], attributes: [ints('strides', [2, 2])] },
        { op: 'ConvTranspose', name: 'up_b', inputs: ['er', 'wb', 'wb_b'], outputs: ['ub'],
          attributes: [ints('strides', [2, 2]), ints('pads', [1, 1, 1, 1]), ints('output_padding', [1, 1]), int('group', 2)] },
        { op: 'Resize', name: 'up_r', inputs: ['er', '', 'scales'], outputs: ['ur'], attributes: [{ name: 'mode', type: 3, s: new TextEncoder().encode('linear') }] },
        { op: 'Conv', name: 'skip', inputs: ['x', 'ws', 'ws_b'], outputs: ['sk0'], attributes: [ints('pads', [1, 1, 1, 1])] },
        { op: 'Relu', name: 'skip_r', inputs: ['sk0'], outputs: ['sk'] },
        { op: 'Concat', name: 'join', inputs: ['ua', 'ub', 'ur', 'sk'], outputs: ['j'], attributes: [int('axis', 1)] },
        { op: 'Conv', name: 'dec', inputs: ['j', 'w2', 'w2_b'], outputs: ['d0'], attributes: [ints('pads', [1, 1, 1, 1])] },
        { op: 'Relu', name: 'dec_r', inputs: ['d0'], outputs: ['d'] },
        { op: 'Conv', name: 'head', inputs: ['d', 'wh', 'wh_b'], outputs: ['y'] },
      ],
      opset: 13,
      inputs: [valueInfo('x', ['N', 3, 14, 16])],
      outputs: [valueInfo('y', ['N', 2, 14, 16])],
      initializers: [
        weights(r, 'w0', [8, 3, 3, 3]), bias('w0_b', 8),
        { ...weights(r, 'wa', [6, 8, 2, 2]), name: 'wa', dims: [8, 6, 2, 2] }, bias('wa_b', 6),
        { ...weights(r, 'wb', [5, 8, 3, 3]), name: 'wb', dims: [8, 5, 3, 3] }, bias('wb_b', 10),
        weights(r, 'ws', [4, 3, 3, 3]), bias('ws_b', 4),
        weights(r, 'w2', [12, 28, 3, 3]), bias('w2_b', 12),
        weights(r, 'wh', [2, 12, 1, 1]), bias('wh_b', 2),
        { name: 'scales', dims: [4], floatData: [1, 1, 2, 2] },
      ],
    });
    const attr = (g: Graph, name: string, k: string) => (g.nodes.find((n) => n.name === name)?.attributes[k] as { value: unknown } | undefined)?.value;
    const g = toChannelsLast(optimizeGraph(loadOnnxModel(model)));
    for (const up of ['up_a', 'up_b']) {
      expect(attr(g, up, 'input_layout')).toBe('nhwc');
      expect(attr(g, up, 'output_layout')).toBe('nhwc');
    }
    expect(attr(g, 'join', 'axis')).toBe(3);
    const x = randomInput(32, [2, 3, 14, 16]);
    await expectPlanarValues(model, x);
    // Quantized: the join of uint8-capable convs and fp32 pieces stays chained in float32 (the
    // reader quantizes the pixels), and the outputs are the planar graph's, bit for bit.
    for (const mode of [{ weights: 'int8' }, { weights: 'ternary', groupSize: 4 }] as const) {
      const q = await quantize(model, { ...mode, calibration: randomInput(33, [4, 3, 14, 16]) });
      const qg = toChannelsLast(q.graph);
      expect(attr(qg, 'join', 'axis')).toBe(3);
      expect(qg.valueInfo.get('j')?.dtype).toBe('float32');
      expect(attr(qg, 'dec', 'input_layout')).toBe('nhwc');
      expect(attr(qg, 'up_a', 'input_layout')).toBe('nhwc');
      await expectPlanarBits(q, x);
    }
  });

  it('runs 1-D and 3-D ConvTranspose pixel-major (dilations, output_shape, SAME_UPPER) with the planar values', async () => {
    const r = rng(34);
    const bias = (name: string, n: number): TensorSpec => ({ name, dims: [n], floatData: Array.from({ length: n }, () => r() * 0.2 - 0.1) });
    const cases = [
      { nd: 1, x: [2, 3, 11], k: [4], attrs: [ints('strides', [3]), ints('dilations', [2]), ints('output_shape', [36])] },
      { nd: 3, x: [1, 3, 3, 4, 5], k: [2, 3, 2], attrs: [ints('strides', [2, 1, 2]), { name: 'auto_pad', type: 3, s: new TextEncoder().encode('SAME_UPPER') }] },
    ];
    for (const c of cases) {
      const ones = <T,>(v: T): T[] => Array(c.nd).fill(v);
      const model = encodeModel({
        nodes: [
          { op: 'Conv', name: 'a', inputs: ['x', 'w0', 'w0_b'], outputs: ['p'], attributes: [ints('pads', [...ones(1), ...ones(1)])] },
          { op: 'ConvTranspose', name: 'up', inputs: ['p', 'wt', 'wt_b'], outputs: ['u'], attributes: c.attrs },
          { op: 'Conv', name: 'b', inputs: ['u', 'w1', 'w1_b'], outputs: ['y'] },
        ],
        opset: 13,
        inputs: [valueInfo('x', c.x)],
        outputs: [valueInfo('y', ['N', 3, ...ones('s')])],
        initializers: [
          weights(r, 'w0', [7, 3, ...ones(3)]), bias('w0_b', 7),
          { ...weights(r, 'wt', [5, 7, ...c.k]), name: 'wt', dims: [7, 5, ...c.k] }, bias('wt_b', 5),
          weights(r, 'w1', [3, 5, ...ones(1)]), bias('w1_b', 3),
        ],
      });
      const g = toChannelsLast(optimizeGraph(loadOnnxModel(model)));
      const up = g.nodes.find((n) => n.name === 'up') as Node;
      expect([up.attributes.input_layout, up.attributes.output_layout].map((a) => (a as { value: string }).value)).toEqual(['nhwc', 'nhwc']);
      await expectPlanarValues(model, randomInput(35, c.x), [1]);
    }
  });

  it('keeps a WaveNet-style 1-D stack pixel-major: causal trims (Slice), gates, residual Adds, a channel Concat and a MaxPool of 1-D convs', async () => {
    const r = rng(36);
    const bias = (name: string, n: number): TensorSpec => ({ name, dims: [n], floatData: Array.from({ length: n }, () => r() * 0.2 - 0.1) });
    const C = 12, L = 37;
    const conv = (name: string, x: string, w: string, y: string, dilation: number) =>
      ({ op: 'Conv', name, inputs: [x, w, `${w}_b`], outputs: [y], attributes: [ints('pads', [dilation, dilation]), ints('dilations', [dilation])] });
    // x[..., :-dilation]: drops the right padding's outputs (PyTorch's causal trim). Right after
    // the conv it folds into the conv's pads (fold-conv-slice.ts); after the Tanh it stays a Slice.
    const trim = (name: string, x: string, y: string) => ({ op: 'Slice', name, inputs: [x, 'zero', 'minus_2', 'last'], outputs: [y] });
    const model = encodeModel({
      nodes: [
        { op: 'Conv', name: 'inp', inputs: ['x', 'wi', 'wi_b'], outputs: ['h0'] },
        conv('filt', 'h0', 'wf', 'f', 2), conv('gate', 'h0', 'wg', 'g_full', 2), trim('gate_trim', 'g_full', 'g'),
        { op: 'Tanh', name: 'tanh', inputs: ['f'], outputs: ['ft_full'] }, trim('filt_trim', 'ft_full', 'ft'),
        { op: 'Sigmoid', name: 'sig', inputs: ['g'], outputs: ['gs'] },
        { op: 'Mul', name: 'gated', inputs: ['ft', 'gs'], outputs: ['z'] },
        { op: 'Conv', name: 'res', inputs: ['z', 'wr', 'wr_b'], outputs: ['rz'] },
        { op: 'Add', name: 'skip', inputs: ['rz', 'h0'], outputs: ['h1'] },
        { op: 'Conv', name: 'side', inputs: ['h1', 'ws', 'ws_b'], outputs: ['s0'], attributes: [ints('pads', [1, 1])] },
        { op: 'Relu', name: 'side_r', inputs: ['s0'], outputs: ['s'] },
        { op: 'Concat', name: 'join', inputs: ['h1', 's'], outputs: ['j'], attributes: [int('axis', -2)] },
        { op: 'MaxPool', name: 'pool', inputs: ['j'], outputs: ['jp'], attributes: [ints('kernel_shape', [3]), ints('pads', [1, 1])] },
        { op: 'Conv', name: 'out', inputs: ['jp', 'wo', 'wo_b'], outputs: ['y'] },
      ],
      opset: 13,
      inputs: [valueInfo('x', ['N', 2, L])],
      outputs: [valueInfo('y', ['N', 3, L])],
      initializers: [
        weights(r, 'wi', [C, 2, 1]), bias('wi_b', C), weights(r, 'wf', [C, C, 2]), bias('wf_b', C), weights(r, 'wg', [C, C, 2]), bias('wg_b', C),
        weights(r, 'wr', [C, C, 1]), bias('wr_b', C), weights(r, 'ws', [8, C, 3]), bias('ws_b', 8), weights(r, 'wo', [3, C + 8, 1]), bias('wo_b', 3),
        { name: 'zero', dataType: 7, dims: [1], int64Data: [0] }, { name: 'minus_2', dataType: 7, dims: [1], int64Data: [-2] },
        { name: 'last', dataType: 7, dims: [1], int64Data: [-1] },
      ],
    });
    const attr = (g: Graph, name: string, k: string) => (g.nodes.find((n) => n.name === name)?.attributes[k] as { value: unknown } | undefined)?.value;
    const g = toChannelsLast(optimizeGraph(loadOnnxModel(model)));
    for (const conv of ['inp', 'filt', 'gate', 'res', 'side']) expect(attr(g, conv, 'output_layout')).toBe('nhwc');
    // The trim slices the time axis of [N, L, C]: axis 1; the join is along C: axis 2.
    const axes = (name: string) => Array.from(g.initializers.get(g.nodes.find((n) => n.name === name)!.inputs[3])!.data as BigInt64Array, Number);
    expect(axes('filt_trim')).toEqual([1]);
    expect(g.nodes.some((n) => n.name === 'gate_trim')).toBe(false);
    expect(g.nodes.find((n) => n.name === 'pool')?.opType).toBe('TernionMaxPoolNhwc');
    expect(attr(g, 'join', 'axis')).toBe(2);
    const x = randomInput(37, [2, 2, L]);
    expect((await expectPlanarValues(model, x)).dims).toEqual([2, 3, L]);
    for (const mode of [{ weights: 'int8' }, { weights: 'ternary', groupSize: 4 }] as const) {
      const q = await quantize(model, { ...mode, calibration: randomInput(38, [4, 2, L]) });
      const qg = toChannelsLast(q.graph);
      expect(attr(qg, 'filt', 'output_layout')).toBe('nhwc');
      expect(attr(qg, 'join', 'axis')).toBe(2);
      await expectPlanarBits(q, x);
    }
  });

  it('keeps a CSP block pixel-major: its channel split written as Slices (PyTorch\'s chunk) runs on NHWC values, the planar values', async () => {
    const r = rng(23);
    const bias = (name: string, n: number): TensorSpec => ({ name, dims: [n], floatData: Array.from({ length: n }, () => r() * 0.2 - 0.1) });
    const i64 = (name: string, v: number[]): TensorSpec => ({ name, dataType: 7, dims: [v.length], int64Data: v });
    const csp = encodeModel({
      nodes: [
        { op: 'Conv', name: 'cv1', inputs: ['x', 'w0', 'w0_b'], outputs: ['a'], attributes: [ints('pads', [1, 1, 1, 1])] },
        { op: 'Slice', name: 'half0', inputs: ['a', 'zero', 'eight', 'one'], outputs: ['a0'] },
        { op: 'Slice', name: 'half1', inputs: ['a', 'eight', 'big', 'one'], outputs: ['a1'] },
        { op: 'Conv', name: 'blk', inputs: ['a1', 'w1', 'w1_b'], outputs: ['b'], attributes: [ints('pads', [1, 1, 1, 1])] },
        // A spatial crop too: a Slice on H and W with a step, negative start.
        { op: 'Slice', name: 'crop', inputs: ['b', 'crop_s', 'crop_e', 'crop_a', 'crop_st'], outputs: ['bc'] },
        { op: 'Slice', name: 'crop0', inputs: ['a0', 'crop_s', 'crop_e', 'crop_a', 'crop_st'], outputs: ['a0c'] },
        { op: 'Concat', name: 'join', inputs: ['a0c', 'bc'], outputs: ['j'], attributes: [int('axis', 1)] },
        { op: 'Conv', name: 'cv2', inputs: ['j', 'w2', 'w2_b'], outputs: ['y'] },
      ],
      opset: 13,
      inputs: [valueInfo('x', [2, 3, 12, 11])],
      outputs: [valueInfo('y', [2, 5, 6, 5])],
      initializers: [
        weights(r, 'w0', [16, 3, 3, 3]), bias('w0_b', 16), weights(r, 'w1', [8, 8, 3, 3]), bias('w1_b', 8), weights(r, 'w2', [5, 16, 1, 1]), bias('w2_b', 5),
        i64('zero', [0]), i64('eight', [8]), i64('big', [1 << 30]), i64('one', [1]),
        i64('crop_s', [-11, 1]), i64('crop_e', [12, 11]), i64('crop_a', [2, 3]), i64('crop_st', [2, 2]),
      ],
    });
    const g = toChannelsLast(optimizeGraph(loadOnnxModel(csp)));
    expect(g.nodes.filter((n) => n.attributes.output_layout).map((n) => n.name).sort()).toEqual(['blk', 'cv1']);
    expect(g.nodes.filter((n) => n.attributes.input_layout).map((n) => n.name).sort()).toEqual(['blk', 'cv2']);
    // The Slices take their axes in [N, H, W, C] order: channels 1 -> 3, H 2 -> 1, W 3 -> 2.
    const axesOf = (name: string) => Array.from(g.initializers.get(g.nodes.find((n) => n.name === name)!.inputs[3])!.data as BigInt64Array, Number);
    expect(axesOf('half0')).toEqual([3]);
    expect(axesOf('crop')).toEqual([1, 2]);
    const x = randomInput(9, [2, 3, 12, 11]);
    expect((await expectPlanarValues(csp, x)).dims).toEqual([2, 5, 6, 5]);
  });

  it('turns layout transposes into views: a ConvNeXt block (dw conv, permute, MLP, permute back, layer scale, residual) stays pixel-major', async () => {
    const r = rng(13);
    const C = 8;
    const bias = (name: string, n: number): TensorSpec => ({ name, dims: [n], floatData: Array.from({ length: n }, () => r() * 0.2 - 0.1) });
    const block = (i: number, x: string, y: string) => [
      { op: 'Conv', name: `dw${i}`, inputs: [x, `wd${i}`, `wd${i}_b`], outputs: [`d${i}`], attributes: [ints('pads', [3, 3, 3, 3]), int('group', C)] },
      { op: 'Transpose', name: `p${i}`, inputs: [`d${i}`], outputs: [`t${i}`], attributes: [ints('perm', [0, 2, 3, 1])] },
      { op: 'MatMul', name: `fc${i}`, inputs: [`t${i}`, `wf${i}`], outputs: [`f${i}`] },
      { op: 'Relu', name: `act${i}`, inputs: [`f${i}`], outputs: [`g${i}`] },
      { op: 'Transpose', name: `q${i}`, inputs: [`g${i}`], outputs: [`u${i}`], attributes: [ints('perm', [0, 3, 1, 2])] },
      { op: 'Mul', name: `ls${i}`, inputs: [`u${i}`, `gamma${i}`], outputs: [`s${i}`] },
      { op: 'Add', name: `res${i}`, inputs: [x, `s${i}`], outputs: [y] },
    ];
    const init = (i: number): TensorSpec[] => [
      weights(r, `wd${i}`, [C, 1, 7, 7]), bias(`wd${i}_b`, C), weights(r, `wf${i}`, [C, C]),
      { name: `gamma${i}`, dims: [C, 1, 1], floatData: Array.from({ length: C }, () => 0.5 + r()) },
    ];
    const cnx = encodeModel({
      nodes: [
        { op: 'Conv', name: 'stem', inputs: ['x', 'ws', 'ws_b'], outputs: ['h0'], attributes: [ints('strides', [2, 2])] },
        ...block(1, 'h0', 'h1'), ...block(2, 'h1', 'h2'),
        { op: 'Conv', name: 'head', inputs: ['h2', 'wh', 'wh_b'], outputs: ['y'] },
      ],
      inputs: [valueInfo('x', ['N', 3, 16, 14])],
      outputs: [valueInfo('y', ['N', 4, 'H', 'W'])],
      initializers: [weights(r, 'ws', [C, 3, 2, 2]), bias('ws_b', C), ...init(1), ...init(2), weights(r, 'wh', [4, C, 1, 1]), bias('wh_b', 4)],
    });
    const g = toChannelsLast(optimizeGraph(loadOnnxModel(cnx)));
    expect(byOp(g, 'Transpose').map((n) => n.name)).toEqual(['ls1/to_nhwc', 'ls2/to_nhwc']); // only the layer scales' [C, 1, 1] -> [1, 1, C]
    expect(byOp(g, 'Identity').map((n) => n.name).sort()).toEqual(['p1', 'p2', 'q1', 'q2']);
    expect(g.nodes.filter((n) => n.attributes.output_layout).map((n) => n.name).sort()).toEqual(['dw1', 'dw2', 'stem']);
    for (const batch of [1, 2]) {
      const x = randomInput(40 + batch, [batch, 3, 16, 14]);
      const a = await (await InferenceSession.create(cnx, { threads: 2 })).run({ x });
      const b = await (await InferenceSession.create(cnx, { channelsLast: false })).run({ x });
      const u = a.y.data as Float32Array, v = b.y.data as Float32Array;
      expect(a.y.dims).toEqual(b.y.dims);
      const scale = Math.max(...Array.from(v, Math.abs));
      for (let i = 0; i < v.length; i++) expect(Math.abs(u[i] - v[i])).toBeLessThanOrEqual(1e-5 * scale);
      const q = await quantize(cnx, { weights: 'int8', calibration: x });
      const c = await (await q.createSession()).run({ x });
      const d = await (await q.createSession({ channelsLast: false })).run({ x });
      expect(Array.from(c.y.data as Float32Array)).toEqual(Array.from(d.y.data as Float32Array));
    }
  });

  it('keeps a depthwise conv exact and rejects pixel-major depthwise with a channel multiplier', async () => {
    const r = rng(3);
    const dwModel = (mult: number, k = 3, strides = [2, 1]) => encodeModel({
      nodes: [
        { op: 'Conv', name: 'pw', inputs: ['x', 'w0'], outputs: ['a'] },
        { op: 'Conv', name: 'dw', inputs: ['a', 'w1'], outputs: ['b'], attributes: [int('group', 8), ints('strides', strides), ints('pads', [2, k - 2, 0, k - 2]), ints('dilations', [1, k > 3 ? 1 : 2])] },
        { op: 'Conv', name: 'pw2', inputs: ['b', 'w2'], outputs: ['y'] },
      ],
      inputs: [valueInfo('x', ['N', 5, 11, 13])],
      outputs: [valueInfo('y', ['N', 3, 'H', 'W'])],
      initializers: [weights(r, 'w0', [8, 5, 1, 1]), weights(r, 'w1', [8 * mult, 1, k, k]), weights(r, 'w2', [3, 8 * mult, 1, 1])],
    });
    const one = dwModel(1);
    expect(toChannelsLast(optimizeGraph(loadOnnxModel(one))).nodes.every((n) => n.attributes.output_layout || n.name === 'pw2')).toBe(true);
    const x = randomInput(4, [2, 5, 11, 13]);
    const a = await (await InferenceSession.create(one)).run({ x });
    const b = await (await InferenceSession.create(one, { channelsLast: false })).run({ x });
    // Pointwise convs and the depthwise loop sum in the same order in both layouts.
    expect(Array.from(a.y.data as Float32Array)).toEqual(Array.from(b.y.data as Float32Array));
    // Along a row, a window inside the image takes the previous pixel's tap pointers moved by
    // the stride (TapPointers::fill_pixels): a horizontal stride of 2 and 3.
    for (const sw of [2, 3]) {
      const strided = dwModel(1, 3, [1, sw]);
      const g = await (await InferenceSession.create(strided)).run({ x });
      const h = await (await InferenceSession.create(strided, { channelsLast: false })).run({ x });
      expect(Array.from(g.y.data as Float32Array)).toEqual(Array.from(h.y.data as Float32Array));
    }
    // A 9x9 kernel (81 taps) takes the tap-by-tap loop instead of the register-blocked one.
    const large = dwModel(1, 9);
    const e = await (await InferenceSession.create(large)).run({ x });
    const f = await (await InferenceSession.create(large, { channelsLast: false })).run({ x });
    expect(Array.from(e.y.data as Float32Array)).toEqual(Array.from(f.y.data as Float32Array));
    // With a channel multiplier the depthwise conv stays planar, and so do its neighbours' links to it.
    const withMultiplier = dwModel(2);
    const two = toChannelsLast(optimizeGraph(loadOnnxModel(withMultiplier)));
    expect(two.nodes.find((n) => n.name === 'dw')?.attributes.input_layout).toBeUndefined();
    const c = await (await InferenceSession.create(withMultiplier)).run({ x });
    const d = await (await InferenceSession.create(withMultiplier, { channelsLast: false })).run({ x });
    expect(Array.from(c.y.data as Float32Array)).toEqual(Array.from(d.y.data as Float32Array));
  });

  it('stages a planar input of a depthwise conv (a ShuffleNet-style concat) pixel-major, exactly, on 1 and 2 threads', async () => {
    const r = rng(8);
    const C = 10;
    const bias = (name: string, n: number): TensorSpec => ({ name, dims: [n], floatData: Array.from({ length: n }, () => r() * 0.2 - 0.1) });
    const model = encodeModel({
      nodes: [
        // The Concat keeps planes (the chain does not follow it): the depthwise conv reads planes
        // and writes pixels for the pointwise conv after it.
        { op: 'Concat', name: 'cat', inputs: ['x', 'x2'], outputs: ['a'], attributes: [int('axis', 1)] },
        { op: 'Conv', name: 'dw', inputs: ['a', 'w1', 'b1'], outputs: ['b'], attributes: [int('group', C), ints('strides', [2, 2]), ints('pads', [1, 1, 1, 1])] },
        { op: 'Relu', name: 'relu', inputs: ['b'], outputs: ['c'] },
        { op: 'Conv', name: 'pw', inputs: ['c', 'w2'], outputs: ['y'] },
      ],
      inputs: [valueInfo('x', ['N', 4, 13, 17]), valueInfo('x2', ['N', 6, 13, 17])],
      outputs: [valueInfo('y', ['N', 3, 7, 9])],
      initializers: [weights(r, 'w1', [C, 1, 3, 3]), bias('b1', C), weights(r, 'w2', [3, C, 1, 1])],
    });
    const g = toChannelsLast(optimizeGraph(loadOnnxModel(model)));
    const dw = g.nodes.find((n) => n.name === 'dw');
    expect(dw?.attributes.input_layout).toBeUndefined();
    expect(dw?.attributes.output_layout).toEqual({ type: 'string', value: 'nhwc' });
    const feeds = { x: randomInput(5, [3, 4, 13, 17]), x2: randomInput(6, [3, 6, 13, 17]) };
    for (const threads of [1, 2]) {
      const a = await (await InferenceSession.create(model, { threads })).run(feeds);
      const b = await (await InferenceSession.create(model, { threads, channelsLast: false })).run(feeds);
      // The pixel-major depthwise kernel sums as the planar loop; pointwise convs sum in order.
      expect(Array.from(a.y.data as Float32Array)).toEqual(Array.from(b.y.data as Float32Array));
    }
  });

  it('chains a one-channel (grayscale) stem: the embedded model runs pixel-major from its first conv, to fp32 rounding', async () => {
    const bytes = readFileSync(join(__dirname, '..', 'models', 'fashion-mnist-resnet.onnx'));
    const g = toChannelsLast(optimizeGraph(loadOnnxModel(bytes)));
    const convs = g.nodes.filter((n) => n.opType === 'Conv');
    // Its stem has weights [32, 1, 3, 3] and group 1: a dense conv with K = 9, not a depthwise one.
    expect(convs[0].inputs[0]).toBe('/norm/Div_output_0');
    expect(convs.every((n) => n.attributes.output_layout)).toBe(true);
    expect(byOp(g, 'TernionMaxPoolNhwc')).toHaveLength(1);
    const x = randomInput(13, [3, 1, 28, 28]);
    const a = await (await InferenceSession.create(bytes)).run({ image: x });
    const b = await (await InferenceSession.create(bytes, { channelsLast: false })).run({ image: x });
    const out = Object.keys(a)[0];
    const ya = a[out].data as Float32Array, yb = b[out].data as Float32Array;
    expect(ya.length).toBe(30);
    for (let i = 0; i < ya.length; i++) expect(Math.abs(ya[i] - yb[i])).toBeLessThan(1e-4 * (1 + Math.abs(yb[i])));
    // A one-channel value between two convs: the second reads it pixel-major (im2col of one channel).
    const r = rng(14);
    const narrow = encodeModel({
      nodes: [
        { op: 'Conv', name: 'c0', inputs: ['x', 'w0'], outputs: ['a'], attributes: [ints('pads', [1, 1, 1, 1])] },
        { op: 'Conv', name: 'c1', inputs: ['a', 'w1'], outputs: ['y'], attributes: [ints('pads', [1, 0, 1, 2]), ints('strides', [2, 1])] },
      ],
      inputs: [valueInfo('x', ['N', 3, 9, 10])],
      outputs: [valueInfo('y', ['N', 4, 'H', 'W'])],
      initializers: [weights(r, 'w0', [1, 3, 3, 3]), weights(r, 'w1', [4, 1, 3, 3])],
    });
    const gn = toChannelsLast(optimizeGraph(loadOnnxModel(narrow)));
    expect(gn.nodes.map((n) => [n.name, n.attributes.input_layout?.value, n.attributes.output_layout?.value])).toEqual([['c0', undefined, 'nhwc'], ['c1', 'nhwc', undefined]]);
    const xn = randomInput(15, [2, 3, 9, 10]);
    const c = (await (await InferenceSession.create(narrow)).run({ x: xn })).y.data as Float32Array;
    const d = (await (await InferenceSession.create(narrow, { channelsLast: false })).run({ x: xn })).y.data as Float32Array;
    expect(c.length).toBe(2 * 4 * 5 * 10);
    for (let i = 0; i < c.length; i++) expect(Math.abs(c[i] - d[i])).toBeLessThan(1e-5 * (1 + Math.abs(d[i])));
  });

  it('keeps depthwise exact with a fused ReLU6 or LeakyRelu, a residual, and a kernel of more taps than one kernel call takes', async () => {
    const r = rng(11);
    // pw -> dw [-> + a] -> activation -> pw2 (the fusions fold the Add and the activation into
    // dw); kw taps along the width, padded to keep the width.
    const model = (act: 'Clip' | 'LeakyRelu', kw: number, residual: boolean) => encodeModel({
      nodes: [
        { op: 'Conv', name: 'pw', inputs: ['x', 'w0'], outputs: ['a'] },
        { op: 'Conv', name: 'dw', inputs: ['a', 'w1', 'b1'], outputs: ['d'], attributes: [int('group', 8), ints('pads', [1, (kw - 1) >> 1, 1, kw >> 1])] },
        ...(residual ? [{ op: 'Add', name: 'res', inputs: ['d', 'a'], outputs: ['s'] }] : []),
        act === 'Clip'
          ? { op: 'Clip', name: 'act', inputs: [residual ? 's' : 'd', 'lo', 'hi'], outputs: ['e'] }
          : { op: 'LeakyRelu', name: 'act', inputs: [residual ? 's' : 'd'], outputs: ['e'], attributes: [{ name: 'alpha', type: 1, f: 0.1 }] },
        { op: 'Conv', name: 'pw2', inputs: ['e', 'w2'], outputs: ['y'] },
      ],
      inputs: [valueInfo('x', ['N', 5, 11, 13])],
      outputs: [valueInfo('y', ['N', 3, 11, 13])],
      initializers: [
        weights(r, 'w0', [8, 5, 1, 1]), weights(r, 'w1', [8, 1, 3, kw]), weights(r, 'w2', [3, 8, 1, 1]),
        { name: 'b1', dims: [8], floatData: Array.from({ length: 8 }, (_, i) => (i === 0 ? -0 : r() - 0.5)) },
        { name: 'lo', dims: [], floatData: [0] }, { name: 'hi', dims: [], floatData: [0.5] },
      ],
    });
    const x = randomInput(12, [2, 5, 11, 13]);
    // 3 x 701 = 2103 taps: more than the 2048 tap pointers one call takes, so each pixel runs in slices.
    for (const [act, kw, residual] of [['Clip', 3, false], ['LeakyRelu', 3, false], ['Clip', 5, true], ['Clip', 701, false]] as const) {
      const m = model(act, kw, residual);
      const g = toChannelsLast(optimizeGraph(loadOnnxModel(m)));
      const dw = g.nodes.find((n) => n.name === 'dw');
      expect(dw?.attributes.input_layout, `${act} ${kw} ${residual}: ${g.nodes.map((n) => n.name).join(' ')}`).toEqual({ type: 'string', value: 'nhwc' });
      expect(g.nodes.map((n) => n.name)).toEqual(['pw', 'dw', 'pw2']);  // the Add and the activation fused into dw
      const a = await (await InferenceSession.create(m)).run({ x });
      const b = await (await InferenceSession.create(m, { channelsLast: false })).run({ x });
      expect(Array.from(a.y.data as Float32Array), `${act} ${kw} ${residual}`).toEqual(Array.from(b.y.data as Float32Array));
    }
  });

  it('pools pixel-major exactly, in fp32 and uint8, with small and large (over 64 taps) windows and any channel count', async () => {
    const r = rng(6);
    // c0 is pointwise: a dense conv on a planar input is staged pixel-major and sums its K in
    // another order (fp32 rounding, tested above), so the pool's input is identical only then.
    // c channels: 20 = one fp32 block of 16 + one vector of 4 / one uint8 vector of 16 + 4 alone;
    // 84 = 64-byte uint8 blocks, a vector and a tail.
    const poolModel = (k: number, c: number) => encodeModel({
      nodes: [
        { op: 'Conv', name: 'c0', inputs: ['x', 'w0'], outputs: ['a0'] },
        { op: 'Relu', name: 'r0', inputs: ['a0'], outputs: ['a'] },
        { op: 'MaxPool', name: 'pool', inputs: ['a'], outputs: ['m'], attributes: [ints('kernel_shape', [k, k]), ints('strides', [2, 1]), ints('pads', [k >> 1, k >> 1, k >> 1, 1])] },
        { op: 'Conv', name: 'c1', inputs: ['m', 'w1'], outputs: ['y'] },
      ],
      inputs: [valueInfo('x', ['N', 3, 13, 12])],
      outputs: [valueInfo('y', ['N', 4, 'H', 'W'])],
      initializers: [weights(r, 'w0', [c, 3, 1, 1]), weights(r, 'w1', [4, c, 1, 1])],
    });
    const x = randomInput(7, [2, 3, 13, 12]);
    for (const [k, ch] of [[3, 20], [9, 20], [3, 84]]) {
      const m = poolModel(k, ch);
      const g = toChannelsLast(optimizeGraph(loadOnnxModel(m)));
      expect(byOp(g, 'TernionMaxPoolNhwc')).toHaveLength(1);
      const a = await (await InferenceSession.create(m)).run({ x });
      const b = await (await InferenceSession.create(m, { channelsLast: false })).run({ x });
      expect(Array.from(a.y.data as Float32Array)).toEqual(Array.from(b.y.data as Float32Array));
      const q = await quantize(m, { weights: 'ternary', groupSize: 4, calibration: x, keepEdgeLayers8bit: false });
      expect(byOp(toChannelsLast(q.graph), 'TernionMaxPoolNhwc')).toHaveLength(1);
      const c = await (await q.createSession()).run({ x });
      const d = await (await q.createSession({ channelsLast: false })).run({ x });
      expect(Array.from(c.y.data as Float32Array)).toEqual(Array.from(d.y.data as Float32Array));
    }
  });

  it('joins Inception branches pixel-major: a channel Concat in uint8 (quantized) or float32, bit-identical to planar', async () => {
    const r = rng(12);
    const bias = (name: string, n: number): TensorSpec => ({ name, dims: [n], floatData: Array.from({ length: n }, () => r() * 0.2 - 0.1) });
    const conv = (name: string, x: string, w: string, y: string, attrs: Record<string, unknown>[] = []) =>
      ({ op: 'Conv', name, inputs: [x, w, `${w}_b`], outputs: [y], attributes: attrs });
    const pool3 = (name: string, x: string, y: string, stride: number) =>
      ({ op: 'MaxPool', name, inputs: [x], outputs: [y], attributes: [ints('kernel_shape', [3, 3]), ints('strides', [stride, stride]), ints('pads', [1, 1, 1, 1])] });
    // stem -> {1x1, 1x1 -> 3x3, pool -> 1x1} -> Concat -> pool -> {1x1, 3x3} -> Concat (with the
    // graph input's pooled copy: a piece the chain cannot give) -> conv -> y.
    const model = encodeModel({
      nodes: [
        conv('stem', 'x', 'w0', 's0', [ints('pads', [1, 1, 1, 1])]), { op: 'Relu', name: 'rs', inputs: ['s0'], outputs: ['s'] },
        conv('b1', 's', 'w1', 'b1o0'), { op: 'Relu', name: 'rb1', inputs: ['b1o0'], outputs: ['b1o'] },
        conv('b2a', 's', 'w2a', 'b2a0'), { op: 'Relu', name: 'rb2a', inputs: ['b2a0'], outputs: ['b2a'] },
        conv('b2b', 'b2a', 'w2b', 'b2o0', [ints('pads', [1, 1, 1, 1])]), { op: 'Relu', name: 'rb2b', inputs: ['b2o0'], outputs: ['b2o'] },
        pool3('b3p', 's', 'b3p', 1),
        conv('b3', 'b3p', 'w3', 'b3o0'), { op: 'Relu', name: 'rb3', inputs: ['b3o0'], outputs: ['b3o'] },
        { op: 'Concat', name: 'cat1', inputs: ['b1o', 'b2o', 'b3o'], outputs: ['j'], attributes: [int('axis', 1)] },
        pool3('p1', 'j', 'jp', 2),
        conv('c1', 'jp', 'w4', 'k0'), { op: 'Relu', name: 'rk', inputs: ['k0'], outputs: ['k'] },
        conv('c2', 'jp', 'w5', 'l0', [ints('pads', [1, 1, 1, 1])]), { op: 'Relu', name: 'rl', inputs: ['l0'], outputs: ['l'] },
        pool3('xp', 'x', 'xp0', 2),
        { op: 'Concat', name: 'cat2', inputs: ['k', 'l', 'xp0'], outputs: ['m'], attributes: [int('axis', -3)] },
        conv('head', 'm', 'w6', 'y'),
      ],
      inputs: [valueInfo('x', ['N', 3, 13, 11])],
      outputs: [valueInfo('y', ['N', 4, 7, 6])],
      initializers: [
        weights(r, 'w0', [16, 3, 3, 3]), bias('w0_b', 16),
        weights(r, 'w1', [8, 16, 1, 1]), bias('w1_b', 8),
        weights(r, 'w2a', [12, 16, 1, 1]), bias('w2a_b', 12),
        weights(r, 'w2b', [20, 12, 3, 3]), bias('w2b_b', 20),
        weights(r, 'w3', [4, 16, 1, 1]), bias('w3_b', 4),
        weights(r, 'w4', [8, 32, 1, 1]), bias('w4_b', 8),
        weights(r, 'w5', [16, 32, 3, 3]), bias('w5_b', 16),
        weights(r, 'w6', [4, 27, 1, 1]), bias('w6_b', 4),
      ],
    });
    const nhwc = (g: Graph, name: string) => g.nodes.find((n) => n.name === name);
    const x = randomInput(13, [3, 3, 13, 11]);
    // fp32: the first join is chained (axis 3 on [N, H, W, C]), the second keeps planes.
    const g = toChannelsLast(optimizeGraph(loadOnnxModel(model)));
    expect(nhwc(g, 'cat1')?.attributes.axis).toEqual({ type: 'int', value: 3 });
    expect(nhwc(g, 'cat2')?.attributes.axis).toEqual({ type: 'int', value: -3 });
    expect(byOp(g, 'TernionMaxPoolNhwc').map((n) => n.name).sort()).toEqual(['b3p', 'p1']);
    const a = await (await InferenceSession.create(model)).run({ x });
    const b = await (await InferenceSession.create(model, { channelsLast: false })).run({ x });
    // Dense convs sum K in another order pixel-major: equal to fp32 rounding.
    const u = a.y.data as Float32Array, v = b.y.data as Float32Array;
    expect(a.y.dims).toEqual(b.y.dims);
    expect(Math.max(...Array.from(u, (e, i) => Math.abs(e - v[i])))).toBeLessThanOrEqual(1e-5 * Math.max(...Array.from(v, Math.abs)));
    // Quantized: the pieces reach the join as uint8 codes of its readers' parameters.
    for (const mode of [{ weights: 'int8' }, { weights: 'ternary', groupSize: 4 }] as const) {
      const q = await quantize(model, { ...mode, calibration: x });
      const qg = toChannelsLast(q.graph);
      const cat = nhwc(qg, 'cat1') as Node;
      expect(cat.attributes.axis).toEqual({ type: 'int', value: 3 });
      expect([cat.outputs[0], ...cat.inputs].map((v) => qg.valueInfo.get(v)?.dtype)).toEqual(['uint8', 'uint8', 'uint8', 'uint8']);
      await expectPlanarBits(q, x);
    }
  });

  it('chains layers with dynamic activation ranges through the fp32 NHWC form (precision int8), bit-identically', async () => {
    const x = randomInput(5, [2, 3, 17, 15]);
    const a = await (await InferenceSession.create(model, { precision: 'int8' })).run({ x });
    const b = await (await InferenceSession.create(model, { precision: 'int8', channelsLast: false })).run({ x });
    for (const name of ['y', 'b']) expect(Array.from(a[name].data as Float32Array)).toEqual(Array.from(b[name].data as Float32Array));
  });

  for (const mode of MODES) {
    it(`gives bit-identical outputs to the unchained graph: ${JSON.stringify(mode)}`, async () => {
      const q = await quantize(model, { ...mode, calibration } as Parameters<typeof quantize>[1]);
      for (const threads of [1, 2]) {
        const chained = await q.createSession({ threads });
        const plain = await q.createSession({ threads, channelsLast: false });
        const x = randomInput(threads + 10, [3, 3, 17, 15]);
        const a = await chained.run({ x });
        const b = await plain.run({ x });
        for (const name of ['y', 'b']) {
          expect(a[name].dims).toEqual(b[name].dims);
          expect(Array.from(a[name].data as Float32Array)).toEqual(Array.from(b[name].data as Float32Array));
        }
        // And the outputs are not degenerate (a chained bug writing zeros would fail here).
        expect(new Set(a.y.data as Float32Array).size).toBeGreaterThan(5);
      }
    });
  }

  it('is bit-identical on the embedded Fashion-MNIST model over 200 real images', async () => {
    const images = loadNpy('data/fashion-mnist-test-images.npy');
    const count = 200;
    const px = new Float32Array(count * 784);
    for (let i = 0; i < px.length; i++) px[i] = (images.data as Uint8Array)[i] / 255;
    const x = new Tensor('float32', px, [count, 1, 28, 28]);
    const q = await quantize('models/fashion-mnist-resnet.onnx', { weights: 'ternary', groupSize: 16, calibration: new Tensor('float32', px.slice(0, 32 * 784), [32, 1, 28, 28]) });
    const g = toChannelsLast(q.graph);
    expect(byOp(g, 'TernionQConv').filter((n) => n.attributes.input_layout).length).toBeGreaterThan(3);
    const a = await (await q.createSession()).run({ [q.graph.inputs[0].name]: x });
    const b = await (await q.createSession({ channelsLast: false })).run({ [q.graph.inputs[0].name]: x });
    const name = q.graph.outputs[0].name;
    expect(Array.from(a[name].data as Float32Array)).toEqual(Array.from(b[name].data as Float32Array));
  });
});
