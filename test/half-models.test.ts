// float16 models (`model_fp16.onnx`, written by onnxconverter-common's float16 converter; here by
// test/half-models.ts from the repository's models) load and run: computed in float32
// (lib/ir/passes/widen-half.ts), float16 feeds and outputs converted at the session's boundary,
// against onnxruntime-node running the same float16 file.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { InferenceSession, loadNpy, quantize, Tensor } from '../lib';
import { float16BitsToNumber, narrowToFloat16, numberToFloat16Bits } from '../lib/onnx/half-float';
import { runCli } from './ensure-dist';
import { argmax, pixels } from './fashion-mnist-data';
import { toFloat16Model } from './half-models';
import { loadOnnxModel } from '../lib/onnx';
import { widenHalf } from '../lib/ir/passes/widen-half';
import { ROOT } from './native-build';
import { encodeModel, valueInfo } from './onnx-build-model';
import { sentences } from './text-encoder-models';

let images: Uint8Array;
beforeAll(() => {
  images = loadNpy(join(ROOT, 'data', 'fashion-mnist-test-images.npy')).data as Uint8Array;
});

const halves = (values: Float32Array): Float32Array => Float32Array.from(narrowToFloat16(values), float16BitsToNumber);

describe('float16 <-> float32', () => {
  it('every half converts to its float32 value and back to the same bits', () => {
    for (let bits = 0; bits < 0x10000; bits++) {
      const v = float16BitsToNumber(bits);
      if (Number.isNaN(v)) expect(Number.isNaN(float16BitsToNumber(numberToFloat16Bits(v)))).toBe(true);
      else expect(numberToFloat16Bits(v)).toBe(bits);
    }
  });

  it('rounds to nearest, ties to even, overflow to infinity, underflow through the subnormals to zero', () => {
    expect(numberToFloat16Bits(1 + 2 ** -11)).toBe(0x3c00); // tie between 1 and 1 + 2^-10: even (1)
    expect(numberToFloat16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie: even (1 + 2^-9)
    expect(numberToFloat16Bits(1 + 2 ** -11 + 2 ** -20)).toBe(0x3c01); // above the tie
    expect(numberToFloat16Bits(65504)).toBe(0x7bff);
    expect(numberToFloat16Bits(65520)).toBe(0x7c00); // rounds up past the largest half
    expect(numberToFloat16Bits(-1e6)).toBe(0xfc00);
    expect(numberToFloat16Bits(2 ** -24)).toBe(0x0001); // smallest subnormal
    expect(numberToFloat16Bits(2 ** -25)).toBe(0x0000); // tie with 0: even
    expect(numberToFloat16Bits(3 * 2 ** -26)).toBe(0x0001);
    expect(numberToFloat16Bits(-0)).toBe(0x8000);
    expect(numberToFloat16Bits(2 ** -14 - 2 ** -25)).toBe(0x0400); // rounds up into the normals
  });
});

describe('float16 models, computed in float32', () => {
  it('the embedded model in float16: float16 feeds and logits, predictions as onnxruntime on the same file', async () => {
    const bytes = toFloat16Model(readFileSync(join(ROOT, 'models', 'fashion-mnist-resnet.onnx')));
    const s = await InferenceSession.create(bytes);
    expect(s.inputMetadata[0].type).toBe('float16');
    expect(s.outputMetadata[0].type).toBe('float16');
    const o = await ort.InferenceSession.create(bytes);
    const n = 500;
    const x = narrowToFloat16(pixels(images, 0, n));
    const ours = (await s.run({ image: new Tensor('float16', x, [n, 1, 28, 28]) })).logits;
    const theirs = (await o.run({ image: new ort.Tensor('float16', x, [n, 1, 28, 28]) })).logits;
    await o.release();
    expect(ours.type).toBe('float16');
    expect(ours.dims).toEqual([n, 10]);
    const a = Float32Array.from(ours.data as Uint16Array, float16BitsToNumber);
    const b = Float32Array.from(theirs.data as Uint16Array, float16BitsToNumber);
    // onnxruntime rounds every intermediate to half; ternion keeps float32 inside: the logits
    // agree to about the half rounding of values this size, and the predictions nearly all.
    let agree = 0, worst = 0, scale = 0;
    for (let i = 0; i < n; i++) agree += argmax(a, i) === argmax(b, i) ? 1 : 0;
    for (let i = 0; i < a.length; i++) {
      worst = Math.max(worst, Math.abs(a[i] - b[i]));
      scale = Math.max(scale, Math.abs(b[i]));
    }
    expect(agree / n).toBeGreaterThanOrEqual(0.99);
    expect(worst).toBeLessThan(0.02 * scale);
    // And they are the float32 model's logits, rounded to half.
    const fp32 = await InferenceSession.create(join(ROOT, 'models', 'fashion-mnist-resnet.onnx'));
    const want = (await fp32.run({ image: new Tensor('float32', Float32Array.from(x, float16BitsToNumber), [n, 1, 28, 28]) })).logits.data as Float32Array;
    await fp32.release();
    let fromFp32 = 0;
    const rounded = halves(want);
    for (let i = 0; i < a.length; i++) fromFp32 = Math.max(fromFp32, Math.abs(a[i] - rounded[i]));
    expect(fromFp32).toBeLessThan(0.01 * scale); // weights rounded to half move them a little
    await expect(s.run({ image: new Tensor('float32', new Float32Array(784), [1, 1, 28, 28]) })).rejects.toMatchObject({
      code: 'ERR_DTYPE', message: expect.stringMatching(/float32 but the model expects float16/),
    });
    await s.release();
  });

  it('the text encoder in float16 (its mask constant clamped to the half range) matches onnxruntime', async () => {
    const bytes = toFloat16Model(readFileSync(join(ROOT, 'models', 'tiny-text-encoder.onnx')));
    const feeds = sentences(2, 3);
    const s = await InferenceSession.create(bytes);
    const got = (await s.run(feeds)).last_hidden_state;
    await s.release();
    const o = await ort.InferenceSession.create(bytes);
    const want = (await o.run(Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, new ort.Tensor('int64', t.data as BigInt64Array, t.dims)])))).last_hidden_state;
    await o.release();
    expect(got.type).toBe('float16');
    const a = Float32Array.from(got.data as Uint16Array, float16BitsToNumber);
    const b = Float32Array.from(want.data as Uint16Array, float16BitsToNumber);
    let dot = 0, na = 0, nb = 0;
    for (let i = 0; i < a.length; i++) {
      dot += a[i] * b[i];
      na += a[i] * a[i];
      nb += b[i] * b[i];
    }
    expect(dot / Math.sqrt(na * nb)).toBeGreaterThan(0.9999);
  });

  it('quantize() takes a float16 model (the quantized model takes float32 feeds)', async () => {
    const bytes = toFloat16Model(readFileSync(join(ROOT, 'models', 'fashion-mnist-resnet.onnx')));
    const calibration = new Tensor('float32', pixels(images, 5000, 32), [32, 1, 28, 28]);
    const q = await quantize(bytes, { weights: 'int8', calibration });
    const s = await q.createSession();
    expect(s.inputMetadata[0].type).toBe('float32');
    const fp32 = await InferenceSession.create(join(ROOT, 'models', 'fashion-mnist-resnet.onnx'));
    const x = new Tensor('float32', pixels(images, 0, 200), [200, 1, 28, 28]);
    const a = (await s.run({ image: x })).logits.data as Float32Array;
    const b = (await fp32.run({ image: x })).logits.data as Float32Array;
    await s.release();
    await fp32.release();
    let agree = 0;
    for (let i = 0; i < 200; i++) agree += argmax(a, i) === argmax(b, i) ? 1 : 0;
    expect(agree / 200).toBeGreaterThanOrEqual(0.97);
  });

  it('the Casts a float16 model wraps around ops become Identity once it computes in float32; an integer Cast stays', async () => {
    const model = encodeModel({
      nodes: [
        { op: 'Cast', inputs: ['x'], outputs: ['xh'], attributes: [{ name: 'to', type: 2, i: 10 }] },
        { op: 'Relu', inputs: ['xh'], outputs: ['r'] },
        { op: 'Cast', inputs: ['r'], outputs: ['rf'], attributes: [{ name: 'to', type: 2, i: 1 }] },
        { op: 'Cast', inputs: ['n'], outputs: ['nf'], attributes: [{ name: 'to', type: 2, i: 1 }] },
        { op: 'Add', inputs: ['rf', 'nf'], outputs: ['s'] },
        { op: 'Add', inputs: ['s', 'half'], outputs: ['y'] },
      ],
      inputs: [valueInfo('x', [4]), valueInfo('n', [4], 7)],
      outputs: [valueInfo('y', [4])],
      initializers: [{ name: 'half', dims: [1], floatData: [0.5] }],
    });
    const widened = widenHalf(loadOnnxModel(toFloat16Model(model)));
    expect(widened.nodes.map((n) => n.opType)).toEqual(['Identity', 'Relu', 'Identity', 'Cast', 'Add', 'Add']);
    const s = await InferenceSession.create(toFloat16Model(model));
    try {
      const y = await s.run({ x: new Tensor('float16', Uint16Array.from([-1, 0.5, 2, -3], numberToFloat16Bits), [4]), n: new Tensor('int64', BigInt64Array.of(1n, 2n, 3n, 4n), [4]) });
      expect(Array.from(y.y.data as Uint16Array, float16BitsToNumber)).toEqual([1.5, 3, 5.5, 4.5]);
    } finally {
      await s.release();
    }
  });

  it('a Cast to float16 inside a float32 model rounds at the output; bfloat16 inputs and outputs are refused by name', async () => {
    const cast = encodeModel({
      nodes: [{ op: 'Cast', inputs: ['x'], outputs: ['y'], name: 'to_half', attributes: [{ name: 'to', type: 2, i: 10 }] }],
      inputs: [valueInfo('x', [4])],
      outputs: [valueInfo('y', [4], 10)],
    });
    const s = await InferenceSession.create(cast);
    const x = Float32Array.of(1 + 2 ** -11, 70000, -(2 ** -25), 0.1);
    const y = (await s.run({ x: new Tensor('float32', x, [4]) })).y;
    await s.release();
    expect(y.type).toBe('float16');
    expect(Array.from(y.data as Uint16Array)).toEqual(Array.from(x, numberToFloat16Bits));
    const bf16 = encodeModel({ nodes: [{ op: 'Identity', inputs: ['x'], outputs: ['y'] }], inputs: [valueInfo('x', [4], 16)], outputs: [valueInfo('y', [4], 16)] });
    await expect(InferenceSession.create(bf16)).rejects.toMatchObject({ code: 'ERR_DTYPE', message: expect.stringMatching(/input "x" is bfloat16/) });
  });

  it('ternion bench runs a float16 model on every engine (float16 feeds; the quantized ones widen them)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ternion-half-'));
    try {
      const file = join(dir, 'resnet.fp16.onnx');
      writeFileSync(file, toFloat16Model(readFileSync(join(ROOT, 'models', 'fashion-mnist-resnet.onnx'))));
      const r = await runCli(['bench', file, '--compare', 'ort-fp32,fp32,int8,ternary-g16', '--json', '--max-time', '0']);
      expect(r.stderr).not.toMatch(/ERR_/);
      expect(r.code).toBe(0);
      const out = JSON.parse(r.stdout);
      expect(out.inputs).toEqual([{ name: 'image', type: 'float16', dims: [1, 1, 28, 28] }]);
      expect(out.rows.map((row: { engine: string }) => row.engine)).toEqual(['ort-fp32', 'fp32', 'int8', 'ternary-g16']);
      for (const row of out.rows) {
        expect(row.error).toBeUndefined();
        expect(row.medianMs).toBeGreaterThan(0);
        expect(row.rssMB).toEqual(expect.any(Number)); // the memory probe feeds float16 too
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
