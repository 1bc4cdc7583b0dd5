// Models quantized by onnxruntime's quantize_dynamic (the `model_quantized.onnx` files published
// for transformers.js): every MatMul with constant weights becomes DynamicQuantizeLinear of its
// input, MatMulInteger against int8 weights, Cast to float and a Mul by the two scales. This
// test writes that form of models/tiny-text-encoder.onnx itself (the rewrite quantize_dynamic
// does, per-tensor int8 weights) and runs it on ternion and onnxruntime-node. Conv nets get
// DynamicQuantizeLinear -> ConvInteger -> Cast -> Mul (test/dynamic-conv-models.ts).
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { InferenceSession, loadNpy, Tensor } from '../lib';
import { fuseMatMulIntegerScaled, optimizeGraph } from '../lib/ir';
import { loadOnnxModel } from '../lib/onnx';
import { ModelProtoType } from '../lib/onnx/proto';
import { importQdq } from '../lib/quantize/import-qdq';
import { dynamicConvQuantized } from './dynamic-conv-models';
import { argmax, correctOf, pixels } from './fashion-mnist-data';
import { rng } from './helpers';
import { ROOT } from './native-build';
import { dynamicQuantized, MODEL, sentences } from './text-encoder-models';

describe("onnxruntime's dynamically quantized models (DynamicQuantizeLinear + MatMulInteger)", () => {
  it('run as onnxruntime-node runs them, on one and two threads', async () => {
    const { bytes, rewritten } = dynamicQuantized();
    expect(rewritten).toBe(12); // q, k, v, output, two FC layers per encoder layer, two layers
    const feeds = sentences(3, 5);
    const o = await ort.InferenceSession.create(bytes);
    const ortFeeds = Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, new ort.Tensor('int64', t.data as BigInt64Array, t.dims)]));
    const want = (await o.run(ortFeeds)).last_hidden_state.data as Float32Array;
    await o.release();
    const fp32 = (await (await InferenceSession.create(MODEL)).run(feeds)).last_hidden_state.data as Float32Array;
    for (const threads of [1, 2]) {
      const s = await InferenceSession.create(bytes, { threads });
      const got = (await s.run(feeds)).last_hidden_state.data as Float32Array;
      await s.release();
      expect(got.length).toBe(want.length);
      // The integer products are exact on both; a value on a rounding tie of the input's
      // quantization (x / scale) may land one step apart, so compare to a small tolerance, and
      // check the quantized model really differs from fp32 (the comparison is not vacuous).
      let diff = 0, fromFp32 = 0, scale = 0;
      for (let i = 0; i < got.length; i++) {
        diff = Math.max(diff, Math.abs(got[i] - want[i]));
        fromFp32 = Math.max(fromFp32, Math.abs(want[i] - fp32[i]));
        scale = Math.max(scale, Math.abs(want[i]));
      }
      expect(diff).toBeLessThan(1e-5 * scale);
      expect(fromFp32).toBeGreaterThan(20 * diff);
    }
  });

  it('fuses each Cast(MatMulInteger) times the scales into one op, bit for bit the separate ops, packed or not', async () => {
    const r = rng(9);
    const K = 37, N = 21;
    // b: int8 with zero point 0 (packed), uint8 around its zero point 128 (packed after
    // subtracting it), uint8 with zero point 0 and values past 127 (not int8 after subtracting:
    // the reference loop); b_scale per column or one, positive or (legal, if odd) negative.
    const variants = [
      { type: 3, zp: 0, values: () => Math.round(r() * 254) - 127, perColumn: true, sign: 1 },
      { type: 2, zp: 128, values: () => 128 + Math.round(r() * 200) - 100, perColumn: false, sign: 1 },
      { type: 2, zp: 0, values: () => Math.round(r() * 255), perColumn: true, sign: 1 },
      { type: 3, zp: 0, values: () => Math.round(r() * 254) - 127, perColumn: false, sign: -1 },
    ];
    for (const v of variants) {
      const b = Array.from({ length: K * N }, v.values);
      const bScale = Array.from({ length: v.perColumn ? N : 1 }, () => v.sign * (0.001 + r() * 0.01));
      const model = (expose: boolean): Uint8Array => ModelProtoType.encode(ModelProtoType.fromObject({
        ir_version: 8, opset_import: [{ domain: '', version: 13 }],
        graph: {
          name: 'dq-matmul',
          node: [
            { op_type: 'DynamicQuantizeLinear', input: ['x'], output: ['xq', 'xs', 'xz'] },
            { op_type: 'MatMulInteger', input: ['xq', 'b', 'xz', 'bz'], output: ['acc'] },
            { op_type: 'Cast', input: ['acc'], output: ['accf'], attribute: [{ name: 'to', type: 2, i: 1 }] },
            { op_type: 'Mul', input: ['bs', 'xs'], output: ['s'] },
            { op_type: 'Mul', input: ['s', 'accf'], output: ['y'] },
          ],
          initializer: [
            v.type === 3 ? { name: 'b', dims: [K, N], data_type: 3, raw_data: new Uint8Array(Int8Array.from(b).buffer) }
              : { name: 'b', dims: [K, N], data_type: 2, raw_data: Uint8Array.from(b) },
            { name: 'bz', dims: [], data_type: v.type, int32_data: [v.zp] },
            { name: 'bs', dims: v.perColumn ? [N] : [], data_type: 1, float_data: bScale },
          ],
          input: [{ name: 'x', type: { tensor_type: { elem_type: 1, shape: { dim: [{ dim_value: 3 }, { dim_value: 5 }, { dim_value: K }] } } } }],
          output: [{ name: 'y', type: { tensor_type: { elem_type: 1 } } }, ...(expose ? [{ name: 'acc', type: { tensor_type: { elem_type: 6 } } }] : [])],
        },
      })).finish();
      const fusedGraph = fuseMatMulIntegerScaled(optimizeGraph(loadOnnxModel(model(false))));
      expect(fusedGraph.nodes.map((n) => n.opType)).toEqual(['DynamicQuantizeLinear', 'TernionMatMulIntegerScaled']);
      expect(fuseMatMulIntegerScaled(optimizeGraph(loadOnnxModel(model(true)))).nodes.map((n) => n.opType))
        .toEqual(['DynamicQuantizeLinear', 'MatMulInteger', 'Cast', 'Mul', 'Mul']);
      const x = new Tensor('float32', Float32Array.from({ length: 3 * 5 * K }, () => r() * 6 - 2), [3, 5, K]);
      for (const threads of [1, 2]) {
        const fused = (await (await InferenceSession.create(model(false), { threads })).run({ x })).y.data as Float32Array;
        const plain = (await (await InferenceSession.create(model(true), { threads })).run({ x })).y.data as Float32Array;
        expect(Array.from(fused).map((f, i) => Object.is(f, plain[i]) ? 0 : 1).reduce((a, c) => a + c, 0)).toBe(0);
        expect(new Set(fused).size).toBeGreaterThan(50);
      }
      // And onnxruntime agrees on the unfused model's values.
      const o = await ort.InferenceSession.create(model(false));
      const want = (await o.run({ x: new ort.Tensor('float32', x.data as Float32Array, x.dims) })).y.data as Float32Array;
      await o.release();
      const got = (await (await InferenceSession.create(model(false))).run({ x })).y.data as Float32Array;
      expect(Array.from(got)).toEqual(Array.from(want));
    }
  });

  it("fuses the layer's bias Add into the same epilogue: within an ulp of the separate ops, packed or not, either scale sign", async () => {
    const r = rng(12);
    const K = 29, N = 17;
    for (const v of [
      { type: 3, values: () => Math.round(r() * 254) - 127, sign: 1, biasDims: [N] }, // packed, the GEMM's epilogue
      { type: 3, values: () => Math.round(r() * 254) - 127, sign: -1, biasDims: [1, 1, N] }, // packed, negative scale: converted after
      { type: 2, values: () => Math.round(r() * 255), sign: 1, biasDims: [1, N] }, // past int8: the reference loop
    ]) {
      const b = Array.from({ length: K * N }, v.values);
      const bias = Array.from({ length: N }, () => r() * 4 - 2);
      const bScale = Array.from({ length: N }, () => v.sign * (0.001 + r() * 0.01));
      const model = (expose: boolean): Uint8Array => ModelProtoType.encode(ModelProtoType.fromObject({
        ir_version: 8, opset_import: [{ domain: '', version: 13 }],
        graph: {
          name: 'dq-matmul-bias',
          node: [
            { op_type: 'DynamicQuantizeLinear', input: ['x'], output: ['xq', 'xs', 'xz'] },
            { op_type: 'MatMulInteger', input: ['xq', 'b', 'xz'], output: ['acc'] },
            { op_type: 'Cast', input: ['acc'], output: ['accf'], attribute: [{ name: 'to', type: 2, i: 1 }] },
            { op_type: 'Mul', input: ['xs', 'bs'], output: ['s'] },
            { op_type: 'Mul', input: ['accf', 's'], output: ['scaled'] },
            { op_type: 'Add', input: ['bias', 'scaled'], output: ['y'] },
          ],
          initializer: [
            v.type === 3 ? { name: 'b', dims: [K, N], data_type: 3, raw_data: new Uint8Array(Int8Array.from(b).buffer) }
              : { name: 'b', dims: [K, N], data_type: 2, raw_data: Uint8Array.from(b) },
            { name: 'bs', dims: [N], data_type: 1, float_data: bScale },
            { name: 'bias', dims: v.biasDims, data_type: 1, float_data: bias },
          ],
          input: [{ name: 'x', type: { tensor_type: { elem_type: 1, shape: { dim: [{ dim_value: 4 }, { dim_value: 3 }, { dim_value: K }] } } } }],
          output: [{ name: 'y', type: { tensor_type: { elem_type: 1 } } }, ...(expose ? [{ name: 'scaled', type: { tensor_type: { elem_type: 1 } } }] : [])],
        },
      })).finish();
      expect(fuseMatMulIntegerScaled(optimizeGraph(loadOnnxModel(model(false)))).nodes.map((n) => n.opType)).toEqual(['DynamicQuantizeLinear', 'TernionMatMulIntegerScaled']);
      // With the product a graph output too, the Add stays apart.
      expect(fuseMatMulIntegerScaled(optimizeGraph(loadOnnxModel(model(true)))).nodes.map((n) => n.opType)).toEqual(['DynamicQuantizeLinear', 'TernionMatMulIntegerScaled', 'Add']);
      const x = new Tensor('float32', Float32Array.from({ length: 4 * 3 * K }, () => r() * 6 - 2), [4, 3, K]);
      const fused = (await (await InferenceSession.create(model(false))).run({ x })).y.data as Float32Array;
      const outputs = await (await InferenceSession.create(model(true))).run({ x });
      const plain = outputs.y.data as Float32Array, scaled = outputs.scaled.data as Float32Array;
      // One rounding instead of two: apart by at most an ulp of the sum's magnitude.
      for (let i = 0; i < fused.length; i++) {
        const ulp = 2 ** -22 * (Math.abs(scaled[i]) + Math.abs(bias[i % N]));
        expect(Math.abs(fused[i] - plain[i])).toBeLessThanOrEqual(ulp);
      }
      expect(new Set(fused).size).toBeGreaterThan(40);
      expect(Math.abs(fused[0] - scaled[0] - bias[0])).toBeLessThan(1e-5); // the bias is in
    }
  });

  it('gives the packed MatMulInteger the reference loop\'s integers: int8 and uint8 A, per-row zero points over batches', async () => {
    const r = rng(4);
    const K = 19, N = 13;
    const b = Int8Array.from({ length: K * N }, () => Math.round(r() * 254) - 127);
    for (const aType of [2, 3] as const) {
      const model = (constantB: boolean): Uint8Array => ModelProtoType.encode(ModelProtoType.fromObject({
        ir_version: 8, opset_import: [{ domain: '', version: 13 }],
        graph: {
          name: 'mmi',
          node: [{ op_type: 'MatMulInteger', input: ['a', 'b', 'az'], output: ['y'] }],
          initializer: [
            ...(constantB ? [{ name: 'b', dims: [K, N], data_type: 3, raw_data: new Uint8Array(b.buffer) }] : []),
            { name: 'az', dims: [3], data_type: aType, int32_data: aType === 2 ? [3, 128, 250] : [-100, 0, 90] },
          ],
          input: [
            { name: 'a', type: { tensor_type: { elem_type: aType, shape: { dim: [{ dim_value: 2 }, { dim_value: 3 }, { dim_value: K }] } } } },
            ...(constantB ? [] : [{ name: 'b', type: { tensor_type: { elem_type: 3, shape: { dim: [{ dim_value: K }, { dim_value: N }] } } } }]),
          ],
          output: [{ name: 'y', type: { tensor_type: { elem_type: 6 } } }],
        },
      })).finish();
      const a = aType === 2 ? new Tensor('uint8', Uint8Array.from({ length: 6 * K }, () => Math.floor(r() * 256)), [2, 3, K])
        : new Tensor('int8', Int8Array.from({ length: 6 * K }, () => Math.floor(r() * 256) - 128), [2, 3, K]);
      const packed = (await (await InferenceSession.create(model(true))).run({ a })).y.data as Int32Array;
      const reference = (await (await InferenceSession.create(model(false))).run({ a, b: new Tensor('int8', b, [K, N]) })).y.data as Int32Array;
      expect(Array.from(packed)).toEqual(Array.from(reference));
      expect(new Set(packed).size).toBeGreaterThan(40);
    }
  });

  it('computes DynamicQuantizeLinear as onnxruntime does: range widened to 0, half-to-even zero point, an all-zero input', async () => {
    const model = (n: number): Uint8Array => ModelProtoType.encode(ModelProtoType.fromObject({
      ir_version: 8, opset_import: [{ domain: '', version: 13 }],
      graph: {
        name: 'dq',
        node: [{ op_type: 'DynamicQuantizeLinear', input: ['x'], output: ['y', 's', 'z'] }],
        input: [{ name: 'x', type: { tensor_type: { elem_type: 1, shape: { dim: [{ dim_value: n }] } } } }],
        output: ['y', 's', 'z'].map((name, i) => ({ name, type: { tensor_type: { elem_type: i === 1 ? 1 : 2 } } })),
      },
    })).finish();
    const cases = [
      [0.5, 1.5, 2.5, 3.5, 255, 254.5], // positive only: min widened to 0
      [-3, -2.25, -1.5, -0.5, -7.7, -0.001], // negative only: max widened to 0
      [-1.3, 0.2, 2.7, -0.65, 1.35, 0], // both signs
      [0, 0, 0, 0, 0, 0], // empty range
    ];
    for (const values of cases) {
      const x = Float32Array.from(values);
      const o = await ort.InferenceSession.create(model(x.length));
      const want = await o.run({ x: new ort.Tensor('float32', x, [x.length]) });
      await o.release();
      const s = await InferenceSession.create(model(x.length));
      const got = await s.run({ x: new Tensor('float32', x, [x.length]) });
      expect(Array.from(got.y.data as Uint8Array)).toEqual(Array.from(want.y.data as Uint8Array));
      expect(got.s.data[0]).toBe(want.s.data[0]);
      expect(got.z.data[0]).toBe(want.z.data[0]);
      expect(got.s.dims).toEqual([]);
    }
  });
});

describe("onnxruntime's dynamically quantized conv nets (DynamicQuantizeLinear + ConvInteger)", () => {
  const COUNT = 1000;
  const images = loadNpy(join(ROOT, 'data', 'fashion-mnist-test-images.npy')).data as Uint8Array;
  const labels = loadNpy(join(ROOT, 'data', 'fashion-mnist-test-labels.npy')).data as Uint8Array;
  const logits = async (run: (x: Float32Array, n: number) => Promise<Float32Array>): Promise<Float32Array> => {
    const out = new Float32Array(COUNT * 10);
    for (let from = 0; from < COUNT; from += 250) out.set(await run(pixels(images, from, 250), 250), from * 10);
    return out;
  };
  const ternion = async (bytes: Uint8Array | string, options = {}): Promise<Float32Array> => {
    const s = await InferenceSession.create(bytes, options);
    try {
      return await logits(async (x, n) => (await s.run({ image: new Tensor('float32', x, [n, 1, 28, 28]) })).logits.data as Float32Array);
    } finally {
      await s.release();
    }
  };
  const onnxruntime = async (bytes: Uint8Array): Promise<Float32Array> => {
    const o = await ort.InferenceSession.create(bytes);
    try {
      return await logits(async (x, n) => (await o.run({ image: new ort.Tensor('float32', x, [n, 1, 28, 28]) })).logits.data as Float32Array);
    } finally {
      await o.release();
    }
  };
  const agreement = (a: Float32Array, b: Float32Array): number => Array.from({ length: COUNT }, (_, i) => argmax(a, i) === argmax(b, i)).filter(Boolean).length / COUNT;
  const maxDiff = (a: Float32Array, b: Float32Array): number => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

  for (const [name, weights, minAgreement, maxTop1Gap] of [
    // int8 symmetric (its default): the model's own codes and scales on the int8 kernels.
    ['fashion-mnist-mobilenet', 'int8', 0.995, 0.003],
    // Its BatchNormalizations follow the Convs: folded, so the weights are re-quantized per channel.
    ['fashion-mnist-resnet', 'int8', 0.98, 0.01],
    // uint8 weights around a zero point: the codes minus it leave int8's range, re-quantized too.
    ['fashion-mnist-resnet', 'uint8', 0.98, 0.01],
  ] as const) {
    it(`${name}, ${weights} weights: every ConvInteger on the int8 conv kernels, predictions as onnxruntime's`, async () => {
      const path = join(ROOT, 'models', `${name}.onnx`);
      const { bytes, convs } = dynamicConvQuantized(path, weights);
      expect(convs).toBeGreaterThan(8);
      const imported = importQdq(loadOnnxModel(bytes));
      const kinds = imported?.nodes.map((n) => n.opType) ?? [];
      expect(kinds.filter((k) => k === 'TernionQConv').length).toBe(convs);
      for (const gone of ['ConvInteger', 'DynamicQuantizeLinear', 'Cast', 'Mul', 'Add', 'Reshape']) expect(kinds).not.toContain(gone);
      const dynamic = imported?.nodes.filter((n) => n.opType === 'TernionQConv').every((n) => n.attributes.act_mode?.value === 'dynamic');
      expect(dynamic).toBe(true);

      const want = await onnxruntime(bytes);
      const got = await ternion(bytes, { threads: 2 });
      const asWritten = await ternion(bytes, { readQdq: false });
      const fp32 = await ternion(path);
      expect(agreement(got, want)).toBeGreaterThanOrEqual(minAgreement);
      expect(Math.abs(correctOf(got, labels) - correctOf(want, labels)) / COUNT).toBeLessThanOrEqual(maxTop1Gap);
      expect(maxDiff(got, fp32)).toBeGreaterThan(1e-3); // quantized for real
      // The ops as written (the ConvInteger reference loop) compute what onnxruntime computes, up
      // to inputs on a rounding tie of DynamicQuantizeLinear (normalized pixels hit ties).
      expect(agreement(asWritten, want)).toBeGreaterThanOrEqual(0.995);
    });
  }

  it('a ConvInteger outside that chain (its int32 output read as it is) stays ConvInteger', () => {
    const model = ModelProtoType.encode(ModelProtoType.fromObject({
      ir_version: 8, opset_import: [{ domain: '', version: 13 }],
      graph: {
        name: 'ci',
        node: [
          { op_type: 'DynamicQuantizeLinear', input: ['x'], output: ['xq', 'xs', 'xz'] },
          { op_type: 'ConvInteger', input: ['xq', 'w', 'xz'], output: ['y'] },
        ],
        initializer: [{ name: 'w', dims: [2, 1, 3, 3], data_type: 3, raw_data: new Uint8Array(Int8Array.from({ length: 18 }, (_, i) => i - 9).buffer) }],
        input: [{ name: 'x', type: { tensor_type: { elem_type: 1, shape: { dim: [1, 1, 5, 5].map((d) => ({ dim_value: d })) } } } }],
        output: [{ name: 'y', type: { tensor_type: { elem_type: 6 } } }],
      },
    })).finish();
    expect(importQdq(loadOnnxModel(model))).toBeUndefined();
  });
});
