// QDQ models (onnxruntime's static int8 format) run on ternion's int8 layers with the model's own
// scales and zero points (lib/quantize/import-qdq.ts), not as fp32 layers with fake quantization:
// the embedded Fashion-MNIST models made QDQ by the benchmark's tool (lib/bench/qdq.ts, the
// format onnxruntime's quantize_static writes), on the real test images, against onnxruntime
// running the same QDQ file.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { InferenceSession, loadNpy, quantize, Tensor } from '../lib';
import { makeQdqModel } from '../lib/bench/qdq';
import { loadOnnxModel } from '../lib/onnx';
import { ModelProtoType } from '../lib/onnx/proto';
import { importQdq } from '../lib/quantize/import-qdq';
import { argmax, pixels } from './fashion-mnist-data';
import { rng } from './helpers';
import { ROOT } from './native-build';

const COUNT = 1000;
let images: Uint8Array;
let labels: Uint8Array;

beforeAll(() => {
  images = loadNpy(join(ROOT, 'data', 'fashion-mnist-test-images.npy')).data as Uint8Array;
  labels = loadNpy(join(ROOT, 'data', 'fashion-mnist-test-labels.npy')).data as Uint8Array;
});

async function logitsOf(run: (x: Float32Array, n: number) => Promise<Float32Array>): Promise<Float32Array> {
  const out = new Float32Array(COUNT * 10);
  for (let from = 0; from < COUNT; from += 250) out.set(await run(pixels(images, from, 250), 250), from * 10);
  return out;
}

const top1 = (logits: Float32Array): number => Array.from({ length: COUNT }, (_, i) => (argmax(logits, i) === labels[i] ? 1 : 0) as number).reduce((a, b) => a + b, 0) / COUNT;

describe('QDQ models on the int8 layers', () => {
  for (const name of ['fashion-mnist-resnet', 'fashion-mnist-mobilenet']) {
    it(`${name}: every layer quantized with the model's parameters, top-1 as onnxruntime's on the same file`, async () => {
      const fp32Bytes = readFileSync(join(ROOT, 'models', `${name}.onnx`));
      const calibration = new Tensor('float32', pixels(images, 5000, 64), [64, 1, 28, 28]);
      const { bytes } = await makeQdqModel(fp32Bytes, { ort, calibration, weightMax: 127 });
      // The structure read: the layers on the int8 op with the scale and zero point of the pair
      // that fed them; the one pair left quantizes the graph output, as the model asks.
      const graph = loadOnnxModel(bytes);
      const imported = importQdq(graph);
      expect(imported).toBeDefined();
      const ops = (imported as NonNullable<typeof imported>).nodes.map((n) => n.opType);
      const left = (imported as NonNullable<typeof imported>).nodes.filter((n) => n.opType === 'QuantizeLinear' || n.opType === 'DequantizeLinear');
      expect(left.map((n) => n.opType)).toEqual(['QuantizeLinear', 'DequantizeLinear']);
      expect(left[1].outputs).toEqual(['logits']);
      const layers = graph.nodes.filter((n) => n.opType === 'Conv' || n.opType === 'Gemm').length;
      expect(ops.filter((o) => o === 'TernionQConv' || o === 'TernionQGemm').length).toBe(layers);
      const q = (imported as NonNullable<typeof imported>).nodes.find((n) => n.opType === 'TernionQConv');
      const firstQ = graph.nodes.find((n) => n.opType === 'QuantizeLinear');
      const scale = graph.initializers.get(firstQ?.inputs[1] ?? '')?.data[0];
      expect(q?.attributes.act_scale).toEqual({ type: 'float', value: scale });

      const o = await ort.InferenceSession.create(bytes);
      const ortLogits = await logitsOf(async (x, n) => (await o.run({ image: new ort.Tensor('float32', x, [n, 1, 28, 28]) })).logits.data as Float32Array);
      await o.release();
      const run = async (session: InferenceSession) => {
        const l = await logitsOf(async (x, n) => (await session.run({ image: new Tensor('float32', x, [n, 1, 28, 28]) })).logits.data as Float32Array);
        await session.release();
        return l;
      };
      const ours = await run(await InferenceSession.create(bytes));
      const asWritten = await run(await InferenceSession.create(bytes, { readQdq: false }));
      const fp32 = await run(await InferenceSession.create(fp32Bytes));
      // Top-1 within half a point of onnxruntime's on the QDQ file, and of fp32's.
      expect(Math.abs(top1(ours) - top1(ortLogits))).toBeLessThanOrEqual(0.005);
      expect(Math.abs(top1(ours) - top1(fp32))).toBeLessThanOrEqual(0.01);
      // Predictions agree with onnxruntime's on nearly every image; the ops as written follow
      // onnxruntime closer still (fake quantization in fp32 is its QLinear arithmetic to rounding).
      const agree = (a: Float32Array, b: Float32Array) => Array.from({ length: COUNT }, (_, i) => (argmax(a, i) === argmax(b, i) ? 1 : 0) as number).reduce((s, v) => s + v, 0) / COUNT;
      expect(agree(ours, ortLogits)).toBeGreaterThanOrEqual(0.98);
      expect(agree(asWritten, ortLogits)).toBeGreaterThanOrEqual(0.99);
      // Quantized for real: the int8 run differs from fp32 (the comparison is not vacuous).
      expect(Math.max(...Array.from(ours, (v, i) => Math.abs(v - fp32[i])))).toBeGreaterThan(1e-3);
    });
  }

  it('reads int8 activation pairs (zero point z) as the uint8 ones of zero point z + 128: the same model', async () => {
    const fp32Bytes = readFileSync(join(ROOT, 'models', 'fashion-mnist-resnet.onnx'));
    const calibration = new Tensor('float32', pixels(images, 5000, 32), [32, 1, 28, 28]);
    const { bytes } = await makeQdqModel(fp32Bytes, { ort, calibration, weightMax: 127 });
    // The same QDQ model with int8 activations: every uint8 zero point z becomes int8 z - 128.
    const model = ModelProtoType.toObject(ModelProtoType.decode(bytes), { defaults: false }) as {
      graph: { initializer: { name: string; data_type: number; int32_data?: number[]; raw_data?: Uint8Array }[] };
    };
    let changed = 0;
    for (const t of model.graph.initializer) {
      if (t.data_type !== 2 || !t.name.endsWith('zero_point')) continue;
      const values = t.raw_data ? Array.from(t.raw_data) : (t.int32_data ?? []);
      t.data_type = 3;
      t.raw_data = new Uint8Array(Int8Array.from(values, (v) => v - 128).buffer);
      delete t.int32_data;
      changed++;
    }
    expect(changed).toBeGreaterThan(5);
    const signed = ModelProtoType.encode(ModelProtoType.fromObject(model)).finish();
    const a = importQdq(loadOnnxModel(bytes)) as NonNullable<ReturnType<typeof importQdq>>;
    const b = importQdq(loadOnnxModel(signed)) as NonNullable<ReturnType<typeof importQdq>>;
    const params = (g: typeof a) => g.nodes.filter((n) => n.opType === 'TernionQConv').map((n) => [n.attributes.act_scale, n.attributes.act_zero_point]);
    expect(params(b)).toEqual(params(a));
    const x = new Tensor('float32', pixels(images, 0, 64), [64, 1, 28, 28]);
    const ya = (await (await InferenceSession.create(bytes)).run({ image: x })).logits.data as Float32Array;
    const yb = (await (await InferenceSession.create(signed)).run({ image: x })).logits.data as Float32Array;
    // The graph output's own pair dequantizes the same real values from either code range.
    expect(Array.from(yb)).toEqual(Array.from(ya));
  });

  it('runs QOperator layers (QLinearConv, QLinearMatMul) on the int8 layers, as onnxruntime runs them', async () => {
    const r = rng(21);
    const i8 = (n: number) => new Uint8Array(Int8Array.from({ length: n }, () => Math.round(r() * 200) - 100).buffer);
    const f = (name: string, values: number[], dims: number[] = []) => ({ name, dims, data_type: 1, float_data: values });
    const u8 = (name: string, v: number) => ({ name, dims: [], data_type: 2, int32_data: [v] });
    const attr = (name: string, ints: number[]) => ({ name, type: 7, ints });
    // x -> Q -> QLinearConv 3x3 (3 -> 8, per-channel weights, int32 bias) -> QLinearConv 1x1 (8 -> 4)
    // -> DQ -> y; and a -> Q -> QLinearMatMul (16 -> 8, per-column weights) -> DQ -> z.
    const model = ModelProtoType.encode(ModelProtoType.fromObject({
      ir_version: 8, opset_import: [{ domain: '', version: 13 }],
      graph: {
        name: 'qoperator',
        node: [
          { op_type: 'QuantizeLinear', input: ['x', 'xs', 'xz'], output: ['xq'] },
          { op_type: 'QLinearConv', input: ['xq', 'xs', 'xz', 'w1', 'w1s', 'w1z', 'ys1', 'yz1', 'b1'], output: ['y1'], attribute: [attr('pads', [1, 1, 1, 1])] },
          { op_type: 'QLinearConv', input: ['y1', 'ys1', 'yz1', 'w2', 'w2s', 'w2z', 'ys2', 'yz2'], output: ['y2'] },
          { op_type: 'DequantizeLinear', input: ['y2', 'ys2', 'yz2'], output: ['y'] },
          { op_type: 'QuantizeLinear', input: ['a', 'as', 'az'], output: ['aq'] },
          { op_type: 'QLinearMatMul', input: ['aq', 'as', 'az', 'm', 'ms', 'mz', 'zs', 'zz'], output: ['zq'] },
          { op_type: 'DequantizeLinear', input: ['zq', 'zs', 'zz'], output: ['z'] },
        ],
        initializer: [
          f('xs', [0.02]), u8('xz', 128),
          { name: 'w1', dims: [8, 3, 3, 3], data_type: 3, raw_data: i8(8 * 27) }, f('w1s', Array.from({ length: 8 }, () => 0.002 + r() * 0.003), [8]),
          { name: 'w1z', dims: [8], data_type: 3, raw_data: new Uint8Array(8) },
          { name: 'b1', dims: [8], data_type: 6, int32_data: Array.from({ length: 8 }, () => Math.round(r() * 2000) - 1000) },
          f('ys1', [0.03]), u8('yz1', 120),
          { name: 'w2', dims: [4, 8, 1, 1], data_type: 3, raw_data: i8(32) }, f('w2s', [0.004]), { name: 'w2z', dims: [], data_type: 3, int32_data: [0] },
          f('ys2', [0.02]), u8('yz2', 128),
          f('as', [0.015]), u8('az', 100),
          { name: 'm', dims: [16, 8], data_type: 3, raw_data: i8(128) }, f('ms', Array.from({ length: 8 }, () => 0.003 + r() * 0.002), [8]),
          { name: 'mz', dims: [8], data_type: 3, raw_data: new Uint8Array(8) },
          f('zs', [0.05]), u8('zz', 130),
        ],
        input: [
          { name: 'x', type: { tensor_type: { elem_type: 1, shape: { dim: [{ dim_value: 2 }, { dim_value: 3 }, { dim_value: 9 }, { dim_value: 9 }] } } } },
          { name: 'a', type: { tensor_type: { elem_type: 1, shape: { dim: [{ dim_value: 5 }, { dim_value: 16 }] } } } },
        ],
        output: ['y', 'z'].map((name) => ({ name, type: { tensor_type: { elem_type: 1 } } })),
      },
    })).finish();
    const imported = importQdq(loadOnnxModel(model)) as NonNullable<ReturnType<typeof importQdq>>;
    expect(imported.nodes.map((n) => n.opType).filter((o) => o.startsWith('Ternion')).sort()).toEqual(['TernionQConv', 'TernionQConv', 'TernionQGemm']);
    const x = new Float32Array(2 * 3 * 81).map(() => r() * 4 - 2);
    const a = new Float32Array(5 * 16).map(() => r() * 3 - 1);
    const o = await ort.InferenceSession.create(model);
    const want = await o.run({ x: new ort.Tensor('float32', x, [2, 3, 9, 9]), a: new ort.Tensor('float32', a, [5, 16]) });
    await o.release();
    const got = await (await InferenceSession.create(model)).run({ x: new Tensor('float32', x, [2, 3, 9, 9]), a: new Tensor('float32', a, [5, 16]) });
    const asWritten = await (await InferenceSession.create(model, { readQdq: false })).run({ x: new Tensor('float32', x, [2, 3, 9, 9]), a: new Tensor('float32', a, [5, 16]) });
    for (const [name, step] of [['y', 0.02], ['z', 0.05]] as const) {
      const w = want[name].data as Float32Array, g = got[name].data as Float32Array;
      // Outputs are on the output grid; the weights are the model's own codes. Where a value sits
      // on a rounding tie of a requantization (onnxruntime rounds acc * multiplier, ternion
      // acc * scale then its quantization) it may land one step apart: rarely.
      const steps = Array.from(g, (v, i) => Math.round(Math.abs(v - w[i]) / step));
      expect(Math.max(...steps)).toBeLessThanOrEqual(1);
      expect(steps.filter((s) => s > 0).length).toBeLessThan(0.01 * steps.length);
      // The reference loops (the ops as written) give onnxruntime's values exactly.
      expect(Array.from(asWritten[name].data as Float32Array)).toEqual(Array.from(w));
    }
  });

  it('quantize() takes a QDQ model as the fp32 model it stands for (ternary from an int8 file)', async () => {
    const fp32Bytes = readFileSync(join(ROOT, 'models', 'fashion-mnist-resnet.onnx'));
    const calibration = new Tensor('float32', pixels(images, 5000, 64), [64, 1, 28, 28]);
    const { bytes } = await makeQdqModel(fp32Bytes, { ort, calibration, weightMax: 127 });
    const fromQdq = await quantize(bytes, { weights: 'ternary', groupSize: 16, calibration });
    const fromFp32 = await quantize(fp32Bytes, { weights: 'ternary', groupSize: 16, calibration });
    // The same layers; the first conv and the classifier stay int8.
    expect(fromQdq.report.layers.map((l) => l.weights)).toEqual(fromFp32.report.layers.map((l) => l.weights));
    expect(fromQdq.report.layers.filter((l) => l.weights === 'ternary').length).toBeGreaterThan(5);
    const run = async (q: typeof fromQdq) => {
      const s = await q.createSession();
      const l = await logitsOf(async (x, n) => (await s.run({ image: new Tensor('float32', x, [n, 1, 28, 28]) })).logits.data as Float32Array);
      await s.release();
      return l;
    };
    // Its weights are the int8 file's (a grid step off the fp32 ones): top-1 within a point.
    expect(Math.abs(top1(await run(fromQdq)) - top1(await run(fromFp32)))).toBeLessThanOrEqual(0.01);
  });

  it('leaves a model without QDQ pairs alone and checks the option', async () => {
    expect(importQdq(loadOnnxModel(readFileSync(join(ROOT, 'models', 'fashion-mnist-resnet.onnx'))))).toBeUndefined();
    await expect(InferenceSession.create(readFileSync(join(ROOT, 'models', 'fashion-mnist-resnet.onnx')), { readQdq: 'yes' as unknown as boolean }))
      .rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
  });
});
