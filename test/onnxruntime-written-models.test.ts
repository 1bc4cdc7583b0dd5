// Models onnxruntime wrote, with its own operators (domain com.microsoft): its QOperator
// quantization (QLinearAdd, QLinearGlobalAveragePool, QGemm, ...), and sessions saved with
// `optimizedModelFilePath` (FusedConv, FusedMatMul, BiasGelu, MatMulIntegerToFloat, ...). ternion
// writes each out as the standard ops it stands for at load (lib/onnx/lower-contrib-ops.ts). The
// files here are made by onnxruntime-node itself from the repository's models, then run on both
// engines; each op is also checked alone against onnxruntime, attribute by attribute.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InferenceSession, loadNpy, Tensor } from '../lib';
import { modelInfo } from '../lib/bench/model-info';
import { makeQdqModel } from '../lib/bench/qdq';
import { fuseLayerNormChain, moveTransposeBeforeMean, optimizeGraph } from '../lib/ir';
import { loadOnnxModel } from '../lib/onnx';
import { ModelProtoType } from '../lib/onnx/proto';
import { importQdq, readQdq } from '../lib/quantize/import-qdq';
import { argmax, pixels } from './fashion-mnist-data';
import { expectCode, rng } from './helpers';
import { ROOT } from './native-build';
import { encodeModel, FLOAT, type NodeSpec, type TensorSpec, valueInfo } from './onnx-build-model';
import { dynamicQuantized, MODEL as TEXT_ENCODER, sentences } from './text-encoder-models';

const UINT8 = 2, INT8 = 3, INT32 = 6, BOOL = 9;
const MS = [{ domain: 'com.microsoft', version: 1 }];
const COUNT = 1000;
let images: Uint8Array;
let labels: Uint8Array;
let dir: string;

beforeAll(() => {
  images = loadNpy(join(ROOT, 'data', 'fashion-mnist-test-images.npy')).data as Uint8Array;
  labels = loadNpy(join(ROOT, 'data', 'fashion-mnist-test-labels.npy')).data as Uint8Array;
  dir = mkdtempSync(join(tmpdir(), 'ternion-ort-written-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The model as onnxruntime saves it after its graph optimizations (level 'extended': portable). */
async function savedByOnnxruntime(bytes: Uint8Array, name: string): Promise<Uint8Array> {
  const path = join(dir, `${name}.onnx`);
  const s = await ort.InferenceSession.create(bytes, { graphOptimizationLevel: 'extended', optimizedModelFilePath: path });
  await s.release();
  return readFileSync(path);
}

/** "domain:op" of every node in the file, as written. */
function opsIn(bytes: Uint8Array): string[] {
  const m = ModelProtoType.decode(bytes) as unknown as { graph: { node: { domain: string; op_type: string }[] } };
  return m.graph.node.map((n) => `${n.domain}:${n.op_type}`);
}

async function logitsOf(run: (x: Float32Array, n: number) => Promise<Float32Array>): Promise<Float32Array> {
  const out = new Float32Array(COUNT * 10);
  for (let from = 0; from < COUNT; from += 250) out.set(await run(pixels(images, from, 250), 250), from * 10);
  return out;
}
const ternionLogits = async (bytes: Uint8Array, options = {}): Promise<Float32Array> => {
  const s = await InferenceSession.create(bytes, options);
  const l = await logitsOf(async (x, n) => (await s.run({ image: new Tensor('float32', x, [n, 1, 28, 28]) })).logits.data as Float32Array);
  await s.release();
  return l;
};
const ortLogits = async (bytes: Uint8Array): Promise<Float32Array> => {
  const o = await ort.InferenceSession.create(bytes);
  const l = await logitsOf(async (x, n) => (await o.run({ image: new ort.Tensor('float32', x, [n, 1, 28, 28]) })).logits.data as Float32Array);
  await o.release();
  return l;
};
const top1 = (logits: Float32Array): number => Array.from({ length: COUNT }, (_, i) => (argmax(logits, i) === labels[i] ? 1 : 0) as number).reduce((a, b) => a + b, 0) / COUNT;
const agreement = (a: Float32Array, b: Float32Array): number =>
  Array.from({ length: COUNT }, (_, i) => (argmax(a, i) === argmax(b, i) ? 1 : 0) as number).reduce((s, v) => s + v, 0) / COUNT;
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
};
const maxAbs = (a: ArrayLike<number>): number => Array.from(a).reduce((m, v) => Math.max(m, Math.abs(v)), 0);

describe("onnxruntime's QOperator models (its quantization, saved after its fusions)", () => {
  for (const name of ['fashion-mnist-resnet', 'fashion-mnist-mobilenet']) {
    it(`${name}: QLinearAdd, QLinearGlobalAveragePool and QGemm load, every layer on the int8 kernels, top-1 as onnxruntime's`, async () => {
      const fp32Bytes = readFileSync(join(ROOT, 'models', `${name}.onnx`));
      const calibration = new Tensor('float32', pixels(images, 5000, 64), [64, 1, 28, 28]);
      const { bytes: qdq } = await makeQdqModel(fp32Bytes, { ort, calibration, weightMax: 127 });
      const bytes = await savedByOnnxruntime(qdq, `${name}.qoperator`);
      const ops = opsIn(bytes);
      for (const op of ['com.microsoft:QLinearAdd', 'com.microsoft:QLinearGlobalAveragePool', 'com.microsoft:QGemm', ':QLinearConv']) expect(ops).toContain(op);
      expect(ops).not.toContain(':Relu'); // onnxruntime folds each ReLU into its output's quantization
      // ternion bench counts the QLinearConv / QGemm layers' MACs as the fp32 model's.
      expect(modelInfo(join(dir, `${name}.qoperator.onnx`)).macsPerSample).toBe(modelInfo(join(ROOT, 'models', `${name}.onnx`)).macsPerSample);

      // Every QLinearConv and the QGemm become int8 layers with the model's parameters; the
      // ReLUs the quantization implied are back, fused into their layers (no Clip left alone).
      const imported = importQdq(loadOnnxModel(bytes));
      expect(imported).toBeDefined();
      const kinds = (imported as NonNullable<typeof imported>).nodes.map((n) => n.opType);
      const layers = ops.filter((o) => o === ':QLinearConv' || o === 'com.microsoft:QGemm').length;
      expect(kinds.filter((k) => k === 'TernionQConv' || k === 'TernionQGemm').length).toBe(layers);
      expect(kinds).not.toContain('Clip');
      expect(kinds).not.toContain('Conv');

      const want = await ortLogits(bytes);
      const ours = await ternionLogits(bytes);
      const asWritten = await ternionLogits(bytes, { readQdq: false });
      const fp32 = await ternionLogits(fp32Bytes);
      expect(Math.abs(top1(ours) - top1(want))).toBeLessThanOrEqual(0.005);
      expect(Math.abs(top1(ours) - top1(fp32))).toBeLessThanOrEqual(0.01);
      expect(agreement(ours, want)).toBeGreaterThanOrEqual(0.98);
      // The ops as written (dequantize, op, quantize) follow onnxruntime's integer kernels closer still.
      expect(agreement(asWritten, want)).toBeGreaterThanOrEqual(0.99);
      // The same model as the QDQ file it came from, read the same way.
      expect(agreement(ours, await ternionLogits(qdq))).toBeGreaterThanOrEqual(0.99);
      expect(maxDiff(ours, fp32)).toBeGreaterThan(1e-3); // quantized for real
    });
  }

  it("a QDQ model whose ReLUs the quantization implies (onnxruntime's quantizer drops them): the ReLUs come back", async () => {
    const fp32Bytes = readFileSync(join(ROOT, 'models', 'fashion-mnist-resnet.onnx'));
    const calibration = new Tensor('float32', pixels(images, 5000, 64), [64, 1, 28, 28]);
    const { bytes: qdq } = await makeQdqModel(fp32Bytes, { ort, calibration, weightMax: 127 });
    // Drop every Relu read only by a QuantizeLinear with zero point 0, as onnxruntime does.
    const model = ModelProtoType.toObject(ModelProtoType.decode(qdq), { defaults: false }) as {
      graph: { node: { op_type: string; input: string[]; output: string[] }[]; initializer: { name: string; int32_data?: number[]; raw_data?: Uint8Array }[] };
    };
    const zeroPointIsZero = (name: string): boolean => {
      const t = model.graph.initializer.find((i) => i.name === name);
      return !!t && (t.raw_data ? t.raw_data.every((b) => b === 0) : (t.int32_data ?? [0]).every((v) => v === 0));
    };
    const readers = (v: string) => model.graph.node.filter((n) => n.input.includes(v));
    const dropped = model.graph.node.filter((n) => n.op_type === 'Relu' && readers(n.output[0]).every((r) => r.op_type === 'QuantizeLinear' && zeroPointIsZero(r.input[2])));
    expect(dropped.length).toBeGreaterThanOrEqual(5);
    for (const relu of dropped) for (const r of readers(relu.output[0])) r.input = r.input.map((v) => (v === relu.output[0] ? relu.input[0] : v));
    model.graph.node = model.graph.node.filter((n) => !dropped.includes(n));
    const implied = ModelProtoType.encode(ModelProtoType.fromObject(model)).finish();

    // The residual Adds read the dropped ReLUs' inputs: without the implied ReLU they would add
    // negative values the model clamps. The fp32 graph read from the file has them back.
    const structure = readQdq(loadOnnxModel(implied));
    expect(structure?.fp32.nodes.filter((n) => n.opType === 'Clip').length).toBe(dropped.length);
    const want = await ortLogits(implied);
    const ours = await ternionLogits(implied);
    expect(agreement(ours, want)).toBeGreaterThanOrEqual(0.98);
    expect(Math.abs(top1(ours) - top1(want))).toBeLessThanOrEqual(0.005);
    expect(agreement(ours, await ternionLogits(qdq))).toBeGreaterThanOrEqual(0.99);
  });
});

describe('the ReLU a quantization pair implies', () => {
  it('is put back after an Add (values below 0 exist), not after a Sigmoid or a Relu (none do)', () => {
    const pair = (x: string, out: string): NodeSpec[] => [
      { op: 'QuantizeLinear', inputs: [x, 's', 'z'], outputs: [`${x}_q`], name: `${x}_quantize` },
      { op: 'DequantizeLinear', inputs: [`${x}_q`, 's', 'z'], outputs: [out], name: `${x}_dequantize` },
    ];
    const bytes = encodeModel({
      nodes: [
        { op: 'Add', inputs: ['x', 'x'], outputs: ['sum'], name: 'add' },
        ...pair('sum', 'sum_dq'),
        { op: 'Sigmoid', inputs: ['x'], outputs: ['gate'], name: 'sigmoid' },
        ...pair('gate', 'gate_dq'),
        { op: 'Relu', inputs: ['x'], outputs: ['relu'], name: 'relu' },
        ...pair('relu', 'relu_dq'),
        { op: 'Mul', inputs: ['sum_dq', 'gate_dq'], outputs: ['m'], name: 'mul' },
        { op: 'Add', inputs: ['m', 'relu_dq'], outputs: ['y'], name: 'out' },
      ],
      inputs: [valueInfo('x', [4])], outputs: [valueInfo('y', [4])],
      initializers: [f('s', 0.02), u8('z', 0)],
    });
    const read = readQdq(loadOnnxModel(bytes));
    const clips = read?.fp32.nodes.filter((n) => n.opType === 'Clip') ?? [];
    expect(clips.map((n) => n.inputs[0])).toEqual(['sum']);
    expect(read?.act.get(clips[0].outputs[0])).toMatchObject({ scale: Math.fround(0.02), zeroPoint: 0 });
  });
});

describe('a LayerNorm onnxruntime split around a Transpose (ConvNeXt as it saves it)', () => {
  it('runs as one fused LayerNorm over the last axis, with the values onnxruntime gives', async () => {
    const C = 8, H = 3, W = 5;
    const bytes = encodeModel({
      nodes: [
        { op: 'ReduceMean', inputs: ['x'], outputs: ['m'], name: 'mean', attributes: [attrInts('axes', [1])] },
        { op: 'Sub', inputs: ['x', 'm'], outputs: ['d'], name: 'sub' },
        { op: 'Transpose', inputs: ['d'], outputs: ['t'], name: 'to_nhwc', attributes: [attrInts('perm', [0, 2, 3, 1])] },
        { op: 'SimplifiedLayerNormalization', inputs: ['t', 'g'], outputs: ['n'], name: 'rms', attributes: [attrInt('axis', -1), attrFloat('epsilon', 1e-6)] },
        { op: 'Add', inputs: ['n', 'b'], outputs: ['y'], name: 'bias' },
      ],
      inputs: [valueInfo('x', [1, C, H, W])], outputs: [valueInfo('y', [1, H, W, C])],
      initializers: [{ name: 'g', dims: [C], floatData: floats(C) }, { name: 'b', dims: [C], floatData: floats(C) }],
    });
    const fused = fuseLayerNormChain(moveTransposeBeforeMean(optimizeGraph(loadOnnxModel(bytes))));
    expect(fused.nodes.map((n) => n.opType)).toEqual(['Transpose', 'TernionLayerNormChain']);
    const x = Float32Array.from(floats(C * H * W, 3));
    const o = await ort.InferenceSession.create(bytes);
    const want = (await o.run({ x: new ort.Tensor('float32', x, [1, C, H, W]) })).y.data as Float32Array;
    await o.release();
    const s = await InferenceSession.create(bytes);
    const got = (await s.run({ x: new Tensor('float32', x, [1, C, H, W]) })).y.data as Float32Array;
    await s.release();
    expect(maxDiff(got, want)).toBeLessThan(1e-5 * Math.max(1, maxAbs(want)));
  });
});

describe('fp32 and dynamically quantized models saved by onnxruntime', () => {
  it('the embedded models with FusedConv (Conv + Relu / + residual) match onnxruntime', async () => {
    for (const name of ['fashion-mnist-resnet', 'fashion-mnist-mobilenet']) {
      const bytes = await savedByOnnxruntime(readFileSync(join(ROOT, 'models', `${name}.onnx`)), `${name}.fp32`);
      expect(opsIn(bytes)).toContain('com.microsoft:FusedConv');
      const want = await ortLogits(bytes);
      const ours = await ternionLogits(bytes);
      expect(maxDiff(ours, want)).toBeLessThan(1e-4 * maxAbs(want));
    }
  });

  it('the text encoder with FusedMatMul, BiasGelu and LayerNormalization at opset 14 matches onnxruntime', async () => {
    const bytes = await savedByOnnxruntime(readFileSync(TEXT_ENCODER), 'text.fp32');
    const ops = opsIn(bytes);
    for (const op of ['com.microsoft:FusedMatMul', 'com.microsoft:BiasGelu', ':LayerNormalization']) expect(ops).toContain(op);
    await expectSameAsOnnxruntime(bytes, 1e-5);
  });

  it('the dynamically quantized text encoder with MatMulIntegerToFloat and DynamicQuantizeMatMul matches onnxruntime', async () => {
    const bytes = await savedByOnnxruntime(dynamicQuantized().bytes, 'text.dynamic');
    const ops = opsIn(bytes);
    expect(ops.some((o) => o === 'com.microsoft:MatMulIntegerToFloat' || o === 'com.microsoft:DynamicQuantizeMatMul')).toBe(true);
    await expectSameAsOnnxruntime(bytes, 1e-5);
  });
});

async function expectSameAsOnnxruntime(bytes: Uint8Array, tolerance: number): Promise<void> {
  const feeds = sentences(3, 11);
  const o = await ort.InferenceSession.create(bytes);
  const want = (await o.run(Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, new ort.Tensor('int64', t.data as BigInt64Array, t.dims)])))).last_hidden_state
    .data as Float32Array;
  await o.release();
  const s = await InferenceSession.create(bytes);
  const got = (await s.run(feeds)).last_hidden_state.data as Float32Array;
  await s.release();
  expect(got.length).toBe(want.length);
  expect(maxDiff(got, want)).toBeLessThan(tolerance * maxAbs(want));
}

// ---- each op alone, against onnxruntime ----

interface Case {
  title: string;
  node: NodeSpec;
  inputs: { name: string; type: number; dims: number[] }[];
  initializers?: TensorSpec[];
  output: { type: number; dims: number[] };
  /** Quantized outputs may land one step apart (rounding in a different order). */
  steps?: number;
  opset?: number;
}

const r = rng(21);
const bytesOf = (n: number, lo = 0, hi = 255) => Array.from({ length: n }, () => lo + Math.floor(r() * (hi - lo + 1)));
const floats = (n: number, scale = 1) => Array.from({ length: n }, () => (r() * 2 - 1) * scale);
const f = (name: string, value: number): TensorSpec => ({ name, dims: [], floatData: [value] });
const u8 = (name: string, value: number): TensorSpec => ({ name, dataType: UINT8, dims: [], rawData: Uint8Array.of(value) });
const i8 = (name: string, value: number): TensorSpec => ({ name, dataType: INT8, dims: [], rawData: Uint8Array.of(value & 255) });
const attrInt = (name: string, i: number) => ({ name, type: 2, i });
const attrFloat = (name: string, value: number) => ({ name, type: 1, f: value });
const attrInts = (name: string, ints: number[]) => ({ name, type: 7, ints });
const attrFloats = (name: string, values: number[]) => ({ name, type: 6, floats: values });
const attrString = (name: string, s: string) => ({ name, type: 3, s: new TextEncoder().encode(s) });
const node = (op: string, inputs: string[], attributes: Record<string, unknown>[] = []): NodeSpec => ({ op, domain: 'com.microsoft', inputs, outputs: ['y'], name: op, attributes });
const qScales = [f('xs', 0.02), u8('xz', 120), f('ys', 0.015), u8('yz', 100)];

const CASES: Case[] = [
  {
    title: 'QLinearAdd, uint8, broadcast',
    node: node('QLinearAdd', ['a', 'as', 'az', 'b', 'bs', 'bz', 'cs', 'cz']),
    inputs: [{ name: 'a', type: UINT8, dims: [4, 6, 8] }],
    initializers: [f('as', 0.03), u8('az', 128), { name: 'b', dataType: UINT8, dims: [8], rawData: Uint8Array.from(bytesOf(8)) }, f('bs', 0.05), u8('bz', 10), f('cs', 0.04), u8('cz', 90)],
    output: { type: UINT8, dims: [4, 6, 8] },
    steps: 1,
  },
  {
    title: 'QLinearMul, int8, no output zero point',
    node: node('QLinearMul', ['a', 'as', 'az', 'b', 'bs', 'bz', 'cs']),
    inputs: [{ name: 'a', type: INT8, dims: [6, 20] }, { name: 'b', type: INT8, dims: [6, 20] }],
    initializers: [f('as', 0.03), i8('az', -5), f('bs', 0.05), i8('bz', 7), f('cs', 0.2)],
    output: { type: INT8, dims: [6, 20] },
    steps: 1,
  },
  {
    title: 'QLinearSigmoid without input zero point',
    node: node('QLinearSigmoid', ['x', 'xs', '', 'ys', 'yz']),
    inputs: [{ name: 'x', type: UINT8, dims: [2, 7] }],
    initializers: [f('xs', 0.05), f('ys', 1 / 255), u8('yz', 0)],
    output: { type: UINT8, dims: [2, 7] },
    steps: 1,
  },
  {
    title: 'QLinearLeakyRelu, int8, alpha 0.2',
    node: node('QLinearLeakyRelu', ['x', 'xs', 'xz', 'ys', 'yz'], [attrFloat('alpha', 0.2)]),
    inputs: [{ name: 'x', type: INT8, dims: [4, 6] }],
    initializers: [f('xs', 0.05), i8('xz', 3), f('ys', 0.04), i8('yz', -20)],
    output: { type: INT8, dims: [4, 6] },
    steps: 1,
  },
  {
    title: 'QLinearGlobalAveragePool, channels first',
    node: node('QLinearGlobalAveragePool', ['x', 'xs', 'xz', 'ys', 'yz']),
    inputs: [{ name: 'x', type: UINT8, dims: [2, 3, 5, 4] }],
    initializers: qScales,
    output: { type: UINT8, dims: [2, 3, 1, 1] },
    steps: 1,
  },
  {
    title: 'QLinearGlobalAveragePool, channels last',
    node: node('QLinearGlobalAveragePool', ['x', 'xs', 'xz', 'ys', 'yz'], [attrInt('channels_last', 1)]),
    inputs: [{ name: 'x', type: UINT8, dims: [2, 5, 4, 3] }],
    initializers: qScales,
    output: { type: UINT8, dims: [2, 1, 1, 3] },
    steps: 1,
  },
  {
    title: 'QLinearAveragePool 3x3 stride 2, padded, pads not counted',
    node: node('QLinearAveragePool', ['x', 'xs', 'xz', 'ys', 'yz'], [attrInts('kernel_shape', [3, 3]), attrInts('strides', [2, 2]), attrInts('pads', [1, 1, 1, 1])]),
    inputs: [{ name: 'x', type: UINT8, dims: [1, 3, 7, 6] }],
    initializers: qScales,
    output: { type: UINT8, dims: [1, 3, 4, 3] },
    steps: 1,
  },
  {
    title: 'QLinearAveragePool, channels last, pads counted',
    node: node('QLinearAveragePool', ['x', 'xs', 'xz', 'ys', 'yz'], [attrInts('kernel_shape', [2, 2]), attrInts('pads', [1, 0, 0, 1]), attrInt('count_include_pad', 1), attrInt('channels_last', 1)]),
    inputs: [{ name: 'x', type: UINT8, dims: [1, 5, 4, 3] }],
    initializers: qScales,
    output: { type: UINT8, dims: [1, 5, 4, 3] },
    steps: 1,
  },
  {
    title: 'QLinearConcat of two tensors at their own scales',
    node: node('QLinearConcat', ['ys', 'yz', 'a', 'as', 'az', 'b', 'bs', 'bz'], [attrInt('axis', 1)]),
    inputs: [{ name: 'a', type: UINT8, dims: [2, 3, 4] }, { name: 'b', type: UINT8, dims: [2, 2, 4] }],
    initializers: [f('ys', 0.03), u8('yz', 128), f('as', 0.02), u8('az', 110), f('bs', 0.05), u8('bz', 140)],
    output: { type: UINT8, dims: [2, 5, 4] },
    steps: 1,
  },
  {
    title: 'QLinearSoftmax, opset-13 semantics (one axis)',
    node: node('QLinearSoftmax', ['x', 'xs', 'xz', 'ys', 'yz'], [attrInt('axis', -1), attrInt('opset', 13)]),
    inputs: [{ name: 'x', type: UINT8, dims: [2, 3, 6] }],
    initializers: [f('xs', 0.05), u8('xz', 128), f('ys', 1 / 256), u8('yz', 0)],
    output: { type: UINT8, dims: [2, 3, 6] },
    steps: 1,
  },
  {
    title: 'QLinearSoftmax, opset-12 semantics (rows flattened at axis 1) on an opset-13 model',
    node: node('QLinearSoftmax', ['x', 'xs', 'xz', 'ys', 'yz'], [attrInt('axis', 1), attrInt('opset', 12)]),
    inputs: [{ name: 'x', type: UINT8, dims: [2, 3, 4] }],
    initializers: [f('xs', 0.05), u8('xz', 128), f('ys', 1 / 256), u8('yz', 0)],
    output: { type: UINT8, dims: [2, 3, 4] },
    steps: 1,
  },
  {
    title: 'QGemm: per-column int8 weights, int32 bias, alpha, transB, uint8 output',
    node: node('QGemm', ['a', 'as', 'az', 'b', 'bs', 'bz', 'c', 'ys', 'yz'], [attrInt('transB', 1), attrFloat('alpha', 0.5)]),
    inputs: [{ name: 'a', type: UINT8, dims: [3, 8] }],
    initializers: [
      f('as', 0.02), u8('az', 120),
      { name: 'b', dataType: INT8, dims: [5, 8], rawData: Uint8Array.from(bytesOf(40, -127, 127), (v) => v & 255) },
      { name: 'bs', dims: [5], floatData: [0.01, 0.02, 0.015, 0.03, 0.005] },
      { name: 'bz', dataType: INT8, dims: [5], rawData: new Uint8Array(5) },
      { name: 'c', dataType: INT32, dims: [5], int32Data: [100, -2000, 30, 0, 5000] },
      f('ys', 0.05), u8('yz', 128),
    ],
    output: { type: UINT8, dims: [3, 5] },
    steps: 1,
  },
  {
    title: 'QGemm with a float output (no y_scale) and one weight scale',
    node: node('QGemm', ['a', 'as', 'az', 'b', 'bs', 'bz']),
    inputs: [{ name: 'a', type: UINT8, dims: [2, 6] }],
    initializers: [f('as', 0.02), u8('az', 120), { name: 'b', dataType: INT8, dims: [6, 4], rawData: Uint8Array.from(bytesOf(24, -127, 127), (v) => v & 255) }, f('bs', 0.01), i8('bz', 0)],
    output: { type: FLOAT, dims: [2, 4] },
  },
  {
    title: 'MatMulIntegerToFloat with zero points and bias',
    node: node('MatMulIntegerToFloat', ['a', 'b', 'as', 'bs', 'az', 'bz', 'bias']),
    inputs: [{ name: 'a', type: UINT8, dims: [2, 3, 5] }],
    initializers: [
      { name: 'b', dataType: INT8, dims: [5, 4], rawData: Uint8Array.from(bytesOf(20, -127, 127), (v) => v & 255) },
      f('as', 0.02), { name: 'bs', dims: [4], floatData: [0.01, 0.02, 0.03, 0.04] }, u8('az', 100), i8('bz', 0), { name: 'bias', dims: [4], floatData: floats(4) },
    ],
    output: { type: FLOAT, dims: [2, 3, 4] },
  },
  {
    title: 'DynamicQuantizeMatMul with per-column scales and bias',
    node: node('DynamicQuantizeMatMul', ['a', 'b', 'bs', '', 'bias']),
    inputs: [{ name: 'a', type: FLOAT, dims: [3, 6] }],
    initializers: [
      { name: 'b', dataType: INT8, dims: [6, 5], rawData: Uint8Array.from(bytesOf(30, -127, 127), (v) => v & 255) },
      { name: 'bs', dims: [5], floatData: [0.01, 0.02, 0.03, 0.04, 0.05] }, { name: 'bias', dims: [5], floatData: floats(5) },
    ],
    output: { type: FLOAT, dims: [3, 5] },
  },
  ...[
    { bits: 4, K: 40, N: 6, block: 16, zeros: true, bias: true },
    { bits: 4, K: 64, N: 5, block: 32, zeros: false, bias: false },
    { bits: 8, K: 48, N: 3, block: 16, zeros: true, bias: true },
  ].map(({ bits, K, N, block, zeros, bias }): Case => {
    const blocks = Math.ceil(K / block), blob = (block * bits) / 8, zeroBytes = Math.ceil((blocks * bits) / 8);
    return {
      title: `MatMulNBits, ${bits}-bit codes in blocks of ${block} along K = ${K}${zeros ? ', packed zero points' : ''}${bias ? ', bias' : ''}`,
      node: node('MatMulNBits', ['a', 'b', 's', zeros ? 'z' : '', '', bias ? 'bias' : ''], [attrInt('K', K), attrInt('N', N), attrInt('bits', bits), attrInt('block_size', block)]),
      inputs: [{ name: 'a', type: FLOAT, dims: [2, 3, K] }],
      initializers: [
        { name: 'b', dataType: UINT8, dims: [N, blocks, blob], rawData: Uint8Array.from(bytesOf(N * blocks * blob)) },
        { name: 's', dims: [N * blocks], floatData: floats(N * blocks, 0.05) },
        ...(zeros ? [{ name: 'z', dataType: UINT8, dims: [N * zeroBytes], rawData: Uint8Array.from(bytesOf(N * zeroBytes)) }] : []),
        ...(bias ? [{ name: 'bias', dims: [N], floatData: floats(N) }] : []),
      ],
      output: { type: FLOAT, dims: [2, 3, N] },
    };
  }),
  { title: 'Gelu', node: node('Gelu', ['x']), inputs: [{ name: 'x', type: FLOAT, dims: [3, 17] }], output: { type: FLOAT, dims: [3, 17] } },
  {
    title: 'BiasGelu',
    node: node('BiasGelu', ['x', 'b']),
    inputs: [{ name: 'x', type: FLOAT, dims: [2, 9] }],
    initializers: [{ name: 'b', dims: [9], floatData: floats(9) }],
    output: { type: FLOAT, dims: [2, 9] },
  },
  {
    title: 'FastGelu with bias',
    node: node('FastGelu', ['x', 'b']),
    inputs: [{ name: 'x', type: FLOAT, dims: [2, 9] }],
    initializers: [{ name: 'b', dims: [9], floatData: floats(9) }],
    output: { type: FLOAT, dims: [2, 9] },
  },
  { title: 'QuickGelu, default alpha', node: node('QuickGelu', ['x']), inputs: [{ name: 'x', type: FLOAT, dims: [4, 5] }], output: { type: FLOAT, dims: [4, 5] } },
  { title: 'QuickGelu, alpha 1 (SiLU)', node: node('QuickGelu', ['x'], [attrFloat('alpha', 1)]), inputs: [{ name: 'x', type: FLOAT, dims: [4, 5] }], output: { type: FLOAT, dims: [4, 5] } },
  {
    title: 'SkipLayerNormalization with beta and bias',
    node: node('SkipLayerNormalization', ['x', 's', 'g', 'be', 'bi'], [attrFloat('epsilon', 1e-5)]),
    inputs: [{ name: 'x', type: FLOAT, dims: [2, 3, 8] }, { name: 's', type: FLOAT, dims: [2, 3, 8] }],
    initializers: [{ name: 'g', dims: [8], floatData: floats(8) }, { name: 'be', dims: [8], floatData: floats(8) }, { name: 'bi', dims: [8], floatData: floats(8) }],
    output: { type: FLOAT, dims: [2, 3, 8] },
  },
  {
    title: 'SkipSimplifiedLayerNormalization (RMS) with bias and the sum output',
    node: { ...node('SkipSimplifiedLayerNormalization', ['x', 's', 'g', 'bi'], [attrFloat('epsilon', 1e-6)]), outputs: ['y', '', '', 'sum'] },
    inputs: [{ name: 'x', type: FLOAT, dims: [2, 3, 8] }, { name: 's', type: FLOAT, dims: [2, 3, 8] }],
    initializers: [{ name: 'g', dims: [8], floatData: floats(8) }, { name: 'bi', dims: [8], floatData: floats(8) }],
    output: { type: FLOAT, dims: [2, 3, 8] },
  },
  {
    title: 'SimplifiedLayerNormalization (RMS; onnxruntime writes it in ai.onnx) over the last two axes',
    node: { op: 'SimplifiedLayerNormalization', inputs: ['x', 'g'], outputs: ['y'], name: 'rms', attributes: [attrInt('axis', 1), attrFloat('epsilon', 1e-5)] },
    inputs: [{ name: 'x', type: FLOAT, dims: [2, 3, 8] }],
    initializers: [{ name: 'g', dims: [3, 8], floatData: floats(24) }],
    output: { type: FLOAT, dims: [2, 3, 8] },
  },
  ...(['Relu', 'LeakyRelu', 'Clip', 'HardSigmoid', 'Sigmoid', 'Tanh'] as const).map((activation): Case => ({
    title: `FusedConv with a residual Z and ${activation}`,
    node: node('FusedConv', ['x', 'w', 'b', 'z'], [
      attrString('activation', activation),
      ...(activation === 'LeakyRelu' ? [attrFloats('activation_params', [0.3])] : activation === 'Clip' ? [attrFloats('activation_params', [-0.5, 0.8])] : activation === 'HardSigmoid' ? [attrFloats('activation_params', [0.3, 0.4])] : []),
      attrInts('kernel_shape', [3, 3]), attrInts('pads', [1, 1, 1, 1]),
    ]),
    inputs: [{ name: 'x', type: FLOAT, dims: [1, 3, 6, 5] }, { name: 'z', type: FLOAT, dims: [1, 4, 6, 5] }],
    initializers: [{ name: 'w', dims: [4, 3, 3, 3], floatData: floats(108, 0.3) }, { name: 'b', dims: [4], floatData: floats(4) }],
    output: { type: FLOAT, dims: [1, 4, 6, 5] },
  })),
  {
    title: 'FusedMatMul with transA, transB and alpha on 3-D operands',
    node: node('FusedMatMul', ['a', 'b'], [attrInt('transA', 1), attrInt('transB', 1), attrFloat('alpha', 0.125)]),
    inputs: [{ name: 'a', type: FLOAT, dims: [2, 5, 3] }, { name: 'b', type: FLOAT, dims: [2, 4, 5] }],
    output: { type: FLOAT, dims: [2, 3, 4] },
  },
];

function feedsFor(c: Case): { ours: Record<string, Tensor>; theirs: Record<string, ort.Tensor> } {
  const ours: Record<string, Tensor> = {}, theirs: Record<string, ort.Tensor> = {};
  for (const input of c.inputs) {
    const n = input.dims.reduce((a, b) => a * b, 1);
    if (input.type === FLOAT) {
      const data = Float32Array.from(floats(n, 3));
      ours[input.name] = new Tensor('float32', data, input.dims);
      theirs[input.name] = new ort.Tensor('float32', data, input.dims);
    } else if (input.type === UINT8) {
      const data = Uint8Array.from(bytesOf(n));
      ours[input.name] = new Tensor('uint8', data, input.dims);
      theirs[input.name] = new ort.Tensor('uint8', data, input.dims);
    } else {
      const data = Int8Array.from(bytesOf(n, -128, 127));
      ours[input.name] = new Tensor('int8', data, input.dims);
      theirs[input.name] = new ort.Tensor('int8', data, input.dims);
    }
  }
  return { ours, theirs };
}

describe('each com.microsoft op written out as standard ops, against onnxruntime', () => {
  for (const c of CASES) {
    it(c.title, async () => {
      const bytes = encodeModel({
        nodes: [c.node],
        inputs: c.inputs.map((i) => valueInfo(i.name, i.dims, i.type)),
        outputs: [valueInfo('y', c.output.dims, c.output.type)],
        initializers: c.initializers,
        opset: c.opset ?? 13,
        domains: MS,
      });
      const { ours, theirs } = feedsFor(c);
      const o = await ort.InferenceSession.create(bytes);
      const want = (await o.run(theirs)).y;
      await o.release();
      // As written (readQdq: false: the lowered DequantizeLinear -> op -> QuantizeLinear run as such).
      const s = await InferenceSession.create(bytes, { readQdq: false });
      const got = (await s.run(ours)).y;
      await s.release();
      expect(got.dims).toEqual(want.dims);
      expect(got.type).toBe(want.type);
      const a = Array.from(got.data as ArrayLike<number>), b = Array.from(want.data as ArrayLike<number>);
      if (c.output.type === FLOAT) {
        expect(maxDiff(a, b)).toBeLessThanOrEqual(1e-5 * Math.max(1, maxAbs(b)));
      } else {
        expect(maxDiff(a, b)).toBeLessThanOrEqual(c.steps ?? 0);
        // Most values exactly equal (one step apart where onnxruntime's fixed-point requantization
        // rounds the other way).
        expect(a.filter((v, i) => v === b[i]).length).toBeGreaterThanOrEqual(0.75 * a.length);
      }
      expect(maxAbs(b)).toBeGreaterThan(0); // not all zeros
    });
  }

  // Attention and EmbedLayerNormalization: several inputs of several types and outputs, so their
  // own harness; each case against onnxruntime on the same one-node model.
  const B = 2, S = 5, Din = 12;
  const attentionModel = (opts: { heads: number; sizes?: number[]; mask?: 'end' | 'raw' | 'raw3' | 'none'; causal?: boolean; scale?: number; bias?: boolean; filter?: number }) => {
    const sizes = opts.sizes ?? [12, 12, 12];
    const width = sizes[0] + sizes[1] + sizes[2];
    const inputs = [valueInfo('x', [B, S, Din])];
    const maskDims = opts.mask === 'end' ? [B] : opts.mask === 'raw' ? [B, S] : opts.mask === 'raw3' ? [B, S, S] : undefined;
    if (maskDims) inputs.push(valueInfo('m', maskDims, INT32));
    if (opts.bias) inputs.push(valueInfo('ab', [1, opts.heads, S, S]));
    const attributes: Record<string, unknown>[] = [attrInt('num_heads', opts.heads)];
    if (opts.sizes) attributes.push(attrInts('qkv_hidden_sizes', sizes));
    if (opts.causal) attributes.push(attrInt('unidirectional', 1));
    if (opts.scale !== undefined) attributes.push(attrFloat('scale', opts.scale));
    if (opts.filter !== undefined) attributes.push(attrFloat('mask_filter_value', opts.filter));
    return encodeModel({
      nodes: [node('Attention', ['x', 'w', 'b', maskDims ? 'm' : '', '', opts.bias ? 'ab' : ''], attributes)],
      inputs, outputs: [valueInfo('y', [B, S, sizes[2]])], domains: MS,
      initializers: [{ name: 'w', dims: [Din, width], floatData: floats(Din * width, 0.5) }, { name: 'b', dims: [width], floatData: floats(width, 0.2) }],
    });
  };
  const attentionCases: [string, Parameters<typeof attentionModel>[0]][] = [
    ['no mask, 3 heads', { heads: 3 }],
    ['end positions per batch (1-D mask_index)', { heads: 2, mask: 'end' }],
    ['a raw 0/1 mask [batch, keys], its own filter value', { heads: 4, mask: 'raw', filter: -1e4 * 3 }],
    ['a 3-D mask [batch, queries, keys]', { heads: 2, mask: 'raw3' }],
    ['unidirectional (causal) with a raw mask and a scale', { heads: 3, mask: 'raw', causal: true, scale: 0.3 }],
    ['qkv_hidden_sizes with a narrower V, attention_bias', { heads: 2, sizes: [8, 8, 4], bias: true }],
  ];
  for (const [title, opts] of attentionCases) {
    it(`Attention: ${title}`, async () => {
      const bytes = attentionModel(opts);
      const x = Float32Array.from(floats(B * S * Din, 2));
      const feeds: Record<string, Tensor> = { x: new Tensor('float32', x, [B, S, Din]) };
      const theirs: Record<string, ort.Tensor> = { x: new ort.Tensor('float32', x, [B, S, Din]) };
      if (opts.mask && opts.mask !== 'none') {
        const m = opts.mask === 'end' ? Int32Array.of(3, 5) : Int32Array.from({ length: opts.mask === 'raw' ? B * S : B * S * S }, (_, i) => (i % 4 === 3 ? 0 : 1));
        feeds.m = new Tensor('int32', m, opts.mask === 'end' ? [B] : opts.mask === 'raw' ? [B, S] : [B, S, S]);
        theirs.m = new ort.Tensor('int32', m, feeds.m.dims as number[]);
      }
      if (opts.bias) {
        const ab = Float32Array.from(floats(opts.heads * S * S));
        feeds.ab = new Tensor('float32', ab, [1, opts.heads, S, S]);
        theirs.ab = new ort.Tensor('float32', ab, [1, opts.heads, S, S]);
      }
      const o = await ort.InferenceSession.create(bytes);
      const want = (await o.run(theirs)).y.data as Float32Array;
      await o.release();
      const s = await InferenceSession.create(bytes);
      const got = (await s.run(feeds)).y.data as Float32Array;
      await s.release();
      expect(got.length).toBe(want.length);
      expect(maxDiff(got, want)).toBeLessThan(1e-5 * Math.max(1, maxAbs(want)));
    });
  }

  for (const variant of ['segments and a mask', 'position ids, no segment ids (row 0 of the table), no mask'] as const) {
    it(`EmbedLayerNormalization: ${variant}; output, mask_index and embedding_sum`, async () => {
      const V = 11, P = 8, G = 2, hid = 6;
      const withSegments = variant === 'segments and a mask';
      const inputs = [valueInfo('ids', [B, S], INT32)];
      if (withSegments) inputs.push(valueInfo('seg', [B, S], INT32), valueInfo('mask', [B, S], INT32));
      else inputs.push(valueInfo('pos', [1, S], INT32));
      const bytes = encodeModel({
        nodes: [{ ...node('EmbedLayerNormalization', ['ids', withSegments ? 'seg' : '', 'we', 'pe', 'se', 'g', 'be', withSegments ? 'mask' : '', withSegments ? '' : 'pos'], [attrFloat('epsilon', 1e-5)]), outputs: ['y', 'mi', 'sum'] }],
        inputs,
        outputs: [valueInfo('y', [B, S, hid]), valueInfo('mi', [B], INT32), valueInfo('sum', [B, S, hid])],
        initializers: [
          { name: 'we', dims: [V, hid], floatData: floats(V * hid) }, { name: 'pe', dims: [P, hid], floatData: floats(P * hid) },
          { name: 'se', dims: [G, hid], floatData: floats(G * hid) }, { name: 'g', dims: [hid], floatData: floats(hid) }, { name: 'be', dims: [hid], floatData: floats(hid) },
        ],
        domains: MS,
      });
      const ids = Int32Array.from({ length: B * S }, (_, i) => (i * 7) % V);
      const extra: [string, Int32Array, number[]][] = withSegments
        ? [['seg', Int32Array.from({ length: B * S }, (_, i) => i % 2), [B, S]], ['mask', Int32Array.of(1, 1, 1, 0, 0, 1, 1, 1, 1, 1), [B, S]]]
        : [['pos', Int32Array.of(4, 3, 2, 1, 0), [1, S]]];
      const feeds: Record<string, Tensor> = { ids: new Tensor('int32', ids, [B, S]) };
      const theirs: Record<string, ort.Tensor> = { ids: new ort.Tensor('int32', ids, [B, S]) };
      for (const [name, data, dims] of extra) {
        feeds[name] = new Tensor('int32', data, dims);
        theirs[name] = new ort.Tensor('int32', data, dims);
      }
      const o = await ort.InferenceSession.create(bytes);
      const want = await o.run(theirs);
      await o.release();
      const s = await InferenceSession.create(bytes);
      const got = await s.run(feeds);
      await s.release();
      expect(maxDiff(got.y.data as Float32Array, want.y.data as Float32Array)).toBeLessThan(1e-5);
      expect(maxDiff(got.sum.data as Float32Array, want.sum.data as Float32Array)).toBeLessThan(1e-6);
      expect(Array.from(got.mi.data as Int32Array)).toEqual(Array.from(want.mi.data as Int32Array));
      expect(got.mi.type).toBe('int32');
      if (withSegments) expect(Array.from(got.mi.data as Int32Array)).toEqual([3, 5]);
    });
  }

  it('QLinearWhere, QLinearReduceMean and BiasAdd (no onnxruntime CPU kernel to compare with): their definitions', async () => {
    const bytes = encodeModel({
      nodes: [
        { op: 'QLinearWhere', domain: 'com.microsoft', inputs: ['c', 'x', 'xs', 'xz', 'x2', 'xs2', 'xz2', 'ys', 'yz'], outputs: ['w'], name: 'where' },
        { op: 'QLinearReduceMean', domain: 'com.microsoft', inputs: ['x', 'xs', 'xz', 'ys', 'yz'], outputs: ['m'], name: 'mean', attributes: [attrInts('axes', [1]), attrInt('keepdims', 0)] },
        { op: 'BiasAdd', domain: 'com.microsoft', inputs: ['v', 'bias', 'skip'], outputs: ['sum'], name: 'bias_add' },
      ],
      inputs: [valueInfo('c', [2, 3], BOOL), valueInfo('x', [2, 3], UINT8), valueInfo('x2', [2, 3], UINT8), valueInfo('v', [1, 2, 3]), valueInfo('skip', [1, 2, 3])],
      outputs: [valueInfo('w', [2, 3], UINT8), valueInfo('m', [2], UINT8), valueInfo('sum', [1, 2, 3])],
      initializers: [f('xs', 0.1), u8('xz', 100), f('xs2', 0.2), u8('xz2', 50), f('ys', 0.05), u8('yz', 10), { name: 'bias', dims: [3], floatData: [0.5, -1, 2] }],
      domains: MS,
    });
    const s = await InferenceSession.create(bytes, { readQdq: false });
    const x = Uint8Array.of(100, 110, 120, 130, 140, 0), x2 = Uint8Array.of(50, 60, 70, 80, 90, 255), c = Uint8Array.of(1, 0, 1, 0, 1, 0);
    const v = Float32Array.of(1, 2, 3, 4, 5, 6), skip = Float32Array.of(0.25, 0.5, 0.75, -1, -2, -3);
    const out = await s.run({
      c: new Tensor('bool', c, [2, 3]), x: new Tensor('uint8', x, [2, 3]), x2: new Tensor('uint8', x2, [2, 3]),
      v: new Tensor('float32', v, [1, 2, 3]), skip: new Tensor('float32', skip, [1, 2, 3]),
    });
    await s.release();
    const q = (v: number) => Math.min(255, Math.max(0, Math.round(v / 0.05) + 10));
    const want = Array.from(c, (k, i) => q(k ? (x[i] - 100) * 0.1 : (x2[i] - 50) * 0.2));
    expect(Array.from(out.w.data as Uint8Array)).toEqual(want);
    const means = [0, 1].map((row) => q(((x[row * 3] + x[row * 3 + 1] + x[row * 3 + 2]) / 3 - 100) * 0.1));
    expect(Array.from(out.m.data as Uint8Array)).toEqual(means);
    expect(Array.from(out.sum.data as Float32Array)).toEqual([1.75, 1.5, 5.75, 3.5, 2, 5]);
  });

  it('refuses what it cannot write out, naming the op and why', async () => {
    const model = (n: NodeSpec, inputs = [valueInfo('a', [2, 3, 4]), valueInfo('b', [2, 4, 5])]) =>
      encodeModel({ nodes: [n], inputs, outputs: [valueInfo('y', [2, 3, 5])], domains: MS });
    await expect(InferenceSession.create(model(node('FusedMatMul', ['a', 'b'], [attrInt('transBatchA', 1)])))).rejects.toMatchObject({
      code: 'ERR_UNSUPPORTED_OP', message: expect.stringMatching(/FusedMatMul.*transBatchA/),
    });
    await expect(InferenceSession.create(model(node('GroupQueryAttention', ['a', 'b'])))).rejects.toMatchObject({
      code: 'ERR_UNSUPPORTED_OP', message: expect.stringMatching(/GroupQueryAttention \(domain com\.microsoft/),
    });
    const conv = encodeModel({
      nodes: [node('FusedConv', ['x', 'w'], [attrString('activation', 'Softplus'), attrInts('kernel_shape', [1, 1])])],
      inputs: [valueInfo('x', [1, 1, 2, 2])], outputs: [valueInfo('y', [1, 1, 2, 2])], initializers: [{ name: 'w', dims: [1, 1, 1, 1], floatData: [1] }], domains: MS,
    });
    expectCode(() => loadOnnxModel(conv), 'ERR_UNSUPPORTED_OP', /FusedConv.*Softplus/);
    const nbits = (extra: TensorSpec[], inputs: string[], attrs: Record<string, unknown>[]) =>
      encodeModel({
        nodes: [node('MatMulNBits', inputs, attrs)], inputs: [valueInfo('a', [1, 32])], outputs: [valueInfo('y', [1, 2])], domains: MS,
        initializers: [{ name: 'b', dataType: UINT8, dims: [2, 1, 16], rawData: new Uint8Array(32) }, { name: 's', dims: [2], floatData: [1, 1] }, ...extra],
      });
    const attrs = [attrInt('K', 32), attrInt('N', 2), attrInt('block_size', 32)];
    expectCode(() => loadOnnxModel(nbits([], ['a', 'b', 's'], [...attrs, attrInt('bits', 3)])), 'ERR_UNSUPPORTED_OP', /MatMulNBits.*bits = 3/);
    expectCode(() => loadOnnxModel(nbits([{ name: 'g', dataType: INT32, dims: [32], int32Data: new Array(32).fill(0) }], ['a', 'b', 's', '', 'g'], attrs)), 'ERR_UNSUPPORTED_OP', /g_idx/);
    expectCode(() => loadOnnxModel(nbits([], ['a', 'b', 's'], [attrInt('K', 64), attrInt('N', 2), attrInt('block_size', 32)])), 'ERR_UNSUPPORTED_OP', /B must be uint8 \[2, 2, 16\]/);
  });
});
