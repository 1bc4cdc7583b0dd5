// quantize(): the embedded Fashion-MNIST model with static activations calibrated on real images,
// at int8 / int4 / ternary weights, evaluated on the first 2,000 test images against fp32.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { InferenceSession, loadNpy, Tensor } from '../lib';
import { optimizeGraph, type ConstantTensor } from '../lib/ir';
import { loadOnnxModel } from '../lib/onnx';
import { compareOutputs } from '../lib/quantize/quantize';
import { quantize, type QuantizedModel, type QuantizeOptions } from '../lib/quantize';
import { ROOT } from './native-build';
import { pixels, sessionTop1 } from './fashion-mnist-data';

const modelPath = join(ROOT, 'models', 'fashion-mnist-resnet.onnx');
const EVAL = 2000, BATCH = 500, CALIB = 256;

let testImages: Uint8Array, testLabels: Uint8Array, calibration: Tensor;

const top1 = (session: InferenceSession) => sessionTop1(session, testImages, testLabels, EVAL, BATCH);

async function quantizedTop1(options: Omit<QuantizeOptions, 'calibration'>): Promise<{ acc: number; q: QuantizedModel }> {
  const q = await quantize(modelPath, { ...options, calibration });
  return { acc: await top1(await q.createSession()), q };
}

async function expectInvalid(p: Promise<unknown>, name: RegExp): Promise<void> {
  let caught: (Error & { code?: string }) | undefined;
  try {
    await p;
  } catch (e) {
    caught = e as Error & { code?: string };
  }
  expect(caught, 'expected a rejection').toBeInstanceOf(Error);
  expect(caught!.name).toBe('TernionError');
  expect(caught!.code).toBe('ERR_INVALID_ARGUMENT');
  expect(caught!.message).toMatch(name);
}

let fp32 = 0;

beforeAll(async () => {
  testImages = loadNpy(join(ROOT, 'data', 'fashion-mnist-test-images.npy')).data as Uint8Array;
  testLabels = loadNpy(join(ROOT, 'data', 'fashion-mnist-test-labels.npy')).data as Uint8Array;
  const calib = loadNpy(join(ROOT, 'data', 'fashion-mnist-calib-images.npy'));
  expect(calib.dims).toEqual([512, 1, 28, 28]);
  calibration = new Tensor('float32', pixels(calib.data as Uint8Array, 0, CALIB), [CALIB, 1, 28, 28]);
  fp32 = await top1(await InferenceSession.create(modelPath));
});

describe('quantize(): static activations on the embedded Fashion-MNIST model', () => {
  it('int8 weights: top-1 within 0.5% of fp32', async () => {
    const { acc, q } = await quantizedTop1({ weights: 'int8' });
    console.log(`fp32 top-1 ${fp32.toFixed(4)}, int8 static ${acc.toFixed(4)}`);
    expect(Math.abs(acc - fp32)).toBeLessThanOrEqual(0.005);
    for (const n of q.graph.nodes) {
      if (n.opType.startsWith('TernionQ')) expect(n.attributes.act_mode).toEqual({ type: 'string', value: 'static' });
    }
    expect(q.report.layers.every((l) => l.weights === 'int8' && l.multiplicationsRemoved === 0)).toBe(true);
  });

  it('int4 weights, groupSize 16: top-1 within 1.5% of fp32', async () => {
    const { acc, q } = await quantizedTop1({ weights: 'int4', groupSize: 16 });
    console.log(`int4 N=16 top-1 ${acc.toFixed(4)}, ${q.report.total.bytes} B vs fp32 ${q.report.total.fp32Bytes} B`);
    expect(Math.abs(acc - fp32)).toBeLessThanOrEqual(0.015);
  });

  it('ternary, groupSize 4, exact threshold: well above chance; 75% of multiplications removed in ternary layers', async () => {
    const { acc, q } = await quantizedTop1({ weights: 'ternary', groupSize: 4, threshold: 'exact' });
    const t = q.report.total;
    console.log(`ternary N=4 top-1 ${acc.toFixed(4)}; ${t.bytes} B vs fp32 ${t.fp32Bytes} B; multiplications removed ${t.multiplicationsRemoved.toFixed(4)} (by ${t.multiplicationsWeightedBy})`);
    expect(acc).toBeGreaterThan(0.5);
    const ternary = q.report.layers.filter((l) => l.weights === 'ternary');
    expect(ternary.length).toBeGreaterThan(0);
    for (const l of ternary) {
      // Folded (the default): one multiply per group of 4 and one per output: 0.75 - 1/K, K >= 16.
      expect(l.multiplicationsRemoved).toBeLessThan(0.75);
      expect(l.multiplicationsRemoved).toBeGreaterThanOrEqual(0.75 - 1 / 16);
      expect(l.bitsPerWeight).toBeLessThanOrEqual(2 + 8 / 4 + 32 / 16); // codes, a byte per group, an fp32 per output
      expect(l.groupSize).toBe(4);
      expect(l.relativeError).toBeGreaterThan(0);
      expect(l.relativeError).toBeLessThan(1);
    }
    expect(t.multiplicationsRemoved).toBeGreaterThan(0);
    expect(t.multiplicationsRemoved).toBeLessThan(0.75);
    // The end-to-end check on calibration samples is reported, and consistent with the accuracy.
    const f = q.report.fidelity!;
    console.log(`ternary N=4 fidelity ${JSON.stringify(f)}; warnings ${JSON.stringify(q.report.warnings)}`);
    expect(f.output).toBe('logits');
    expect(f.samples).toBeGreaterThan(0);
    expect(f.samples).toBeLessThanOrEqual(32);
    expect(f.top1Agreement).toBeGreaterThan(0.5);
    expect(f.relativeError).toBeGreaterThan(0);
    expect(q.report.warnings.length).toBe(f.top1Agreement! < 0.9 ? 1 : 0); // classifier: judged by top-1, not logit error
  });

  it('is deterministic: quantizing twice gives byte-identical codes and scales', async () => {
    const a = await quantize(modelPath, { weights: 'ternary', groupSize: 8, calibration, calibrate: 'mse' });
    const b = await quantize(modelPath, { weights: 'ternary', groupSize: 8, calibration, calibrate: 'mse' });
    expect([...a.graph.initializers.keys()]).toEqual([...b.graph.initializers.keys()]);
    const bytes = (t: ConstantTensor) => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    for (const [name, t] of a.graph.initializers) expect(bytes(t).equals(bytes(b.graph.initializers.get(name)!)), name).toBe(true);
    expect(a.graph.nodes).toEqual(b.graph.nodes);
    expect(a.report).toEqual(b.report);
  });

  it('int8 weights are 7-bit codes by default (reduceRange), full 8-bit with reduceRange: false; both accurate', async () => {
    const maxCode = (q: QuantizedModel) => {
      let m = 0;
      for (const n of q.graph.nodes.filter((x) => x.attributes.weight_bits?.value === 8)) {
        for (const v of q.graph.initializers.get(n.inputs[1])!.data as Int8Array) m = Math.max(m, Math.abs(v));
      }
      return m;
    };
    const reduced = await quantize(modelPath, { calibration, weights: 'int8' });
    const full = await quantize(modelPath, { calibration, weights: 'int8', reduceRange: false });
    expect(maxCode(reduced)).toBe(63);
    expect(maxCode(full)).toBe(127);
    for (const q of [reduced, full]) {
      expect(q.report.fidelity!.top1Agreement).toBeGreaterThanOrEqual(0.9);
      expect(q.report.fidelity!.relativeError).toBeLessThan(0.1);
    }
    await expect(quantize(modelPath, { calibration, reduceRange: 1 as unknown as boolean })).rejects.toThrow(/options\.reduceRange/);
  });

  it('edge layers stay int8, every other layer is ternary; the rest of the graph is untouched', async () => {
    const q = await quantize(modelPath, { calibration });
    const fp = optimizeGraph(loadOnnxModel(readFileSync(modelPath)));
    const layers = q.report.layers;
    expect(layers.length).toBe(10);
    const firstConv = fp.nodes.find((n) => n.opType === 'Conv')!.name;
    const gemms = fp.nodes.filter((n) => n.opType === 'Gemm' || n.opType === 'MatMul');
    const lastGemm = gemms[gemms.length - 1].name;
    for (const l of layers) {
      const edge = l.name === firstConv || l.name === lastGemm;
      expect(l.weights, l.name).toBe(edge ? 'int8' : 'ternary');
      expect(l.groupSize).toBe(edge ? null : 4);
      expect(l.activationScale).toBeGreaterThan(0);
    }
    // The first conv is fed through the model's Sub/Div normalization: a signed input, so an
    // asymmetric uint8 with a zero point inside (0, 255). Inputs after a ReLU are unsigned (zp 0).
    expect(fp.nodes[0].opType).toBe('Sub');
    const first = layers.find((l) => l.name === firstConv)!;
    expect(first.activationZeroPoint).toBeGreaterThan(0);
    expect(first.activationZeroPoint).toBeLessThan(255);
    for (const l of layers.filter((x) => x.name !== firstConv)) expect(l.activationZeroPoint, l.name).toBe(0);
    // Nodes that are not quantized layers are the same nodes in the same order.
    const names = new Set(layers.map((l) => l.name));
    const rest = (g: typeof fp) => g.nodes.filter((n) => !names.has(n.name));
    expect(rest(q.graph)).toEqual(rest(fp));
    expect(q.graph.nodes.map((n) => n.name)).toEqual(fp.nodes.map((n) => n.name));
    for (const n of q.graph.nodes) if (names.has(n.name)) expect(n.opType).toMatch(/^TernionQ(Conv|Gemm)$/);
    // Overrides win over the edge rule and the global mode.
    const o = await quantize(modelPath, { calibration, overrides: { [firstConv]: { weights: 'int4', groupSize: 'filter' }, [layers[1].name]: { weights: 'int8' } } });
    expect(o.report.layers[0]).toMatchObject({ weights: 'int4', groupSize: 'filter' });
    expect(o.report.layers[1]).toMatchObject({ weights: 'int8', groupSize: null });
  });

  it('calibration as an array / async iterable of batches, calibrationCount, onProgress: same activation parameters as one Tensor', async () => {
    const whole = await quantize(modelPath, { weights: 'int8', calibration, calibrate: 'max' });
    const per = 784;
    const batches = [0, 100, 200].map((from) => new Tensor('float32', (calibration.data as Float32Array).slice(from * per, Math.min(CALIB, from + 100) * per), [Math.min(CALIB, from + 100) - from, 1, 28, 28]));
    async function* loader() {
      for (const b of batches) yield b;
    }
    const events: { phase: string; done: number; total: number | null }[] = [];
    const streamed = await quantize(modelPath, { weights: 'int8', calibration: loader(), calibrate: 'max', onProgress: (p) => events.push(p) });
    const fromArray = await quantize(modelPath, { weights: 'int8', calibration: batches, calibrate: 'max' });
    const act = (q: QuantizedModel) => q.report.layers.map((l) => [l.activationScale, l.activationZeroPoint]);
    expect(act(streamed)).toEqual(act(whole));
    expect(act(fromArray)).toEqual(act(whole));
    const calib = events.filter((e) => e.phase === 'calibrate');
    expect(calib[calib.length - 1].done).toBe(CALIB);
    expect(calib.every((e) => e.total === null)).toBe(true);
    const layers = events.filter((e) => e.phase === 'quantize');
    expect(layers.map((e) => e.done)).toEqual([...Array(11).keys()]);
    expect(events[events.length - 1].phase).toBe('finish');
    // calibrationCount: the first 100 samples are exactly the first batch.
    const first = await quantize(modelPath, { weights: 'int8', calibration, calibrationCount: 100 });
    const only = await quantize(modelPath, { weights: 'int8', calibration: batches[0] });
    expect(act(first)).toEqual(act(only));
    expect(act(first)).not.toEqual(act(whole));
  });

  it("activationScale 'pow2': every activation scale is a power of two and the model stays accurate", async () => {
    const { acc, q } = await quantizedTop1({ weights: 'int8', activationScale: 'pow2' });
    for (const l of q.report.layers) expect(Number.isInteger(Math.log2(l.activationScale)), `${l.name}: ${l.activationScale}`).toBe(true);
    console.log(`int8 with power-of-two activation scales: top-1 ${acc.toFixed(4)} (fp32 ${fp32.toFixed(4)})`);
    expect(acc).toBeGreaterThan(fp32 - 0.01);
  });

  it('signal: an aborted quantization rejects with ERR_ABORTED (before and during the work)', async () => {
    const before = new AbortController();
    before.abort();
    await expect(quantize(modelPath, { calibration, signal: before.signal })).rejects.toMatchObject({ code: 'ERR_ABORTED' });
    const during = new AbortController();
    const p = quantize(modelPath, { calibration, signal: during.signal, onProgress: (e) => { if (e.phase === 'quantize' && e.done === 3) during.abort(); } });
    await expect(p).rejects.toMatchObject({ name: 'TernionError', code: 'ERR_ABORTED' });
    const reason = new AbortController();
    reason.abort(new Error('shutting down'));
    await expect(quantize(modelPath, { calibration, signal: reason.signal })).rejects.toThrow('shutting down');
  });

  it('BAD CALL: unknown weights mode, missing calibration, bad groupSize, bad options name the option', async () => {
    await expectInvalid(quantize(modelPath, { weights: 'binary' as never, calibration }), /options\.weights/);
    await expectInvalid(quantize(modelPath, {} as QuantizeOptions), /options\.calibration/);
    await expectInvalid(quantize(modelPath, { calibration: 42 as never }), /options\.calibration/);
    await expect(quantize(modelPath, { calibration: new Tensor('uint8', new Uint8Array(784), [1, 1, 28, 28]) }))
      .rejects.toMatchObject({ code: 'ERR_DTYPE', message: expect.stringMatching(/input "image" is a uint8 Tensor; the model expects float32/) });
    await expectInvalid(quantize(modelPath, { groupSize: 12 as never, calibration }), /options\.groupSize/);
    await expectInvalid(quantize(modelPath, { activationBits: 2 as never, calibration }), /options\.activationBits/);
    await expectInvalid(quantize(modelPath, { calibrate: 'kl' as never, calibration }), /options\.calibrate/);
    await expectInvalid(quantize(modelPath, { calibration, weightz: 'int8' } as never), /Unknown option "weightz"/);
    await expectInvalid(quantize(modelPath, { calibration, overrides: { nope: { weights: 'int8' } } }), /options\.overrides names "nope"/);
    await expectInvalid(quantize(modelPath, { calibration, overrides: { x: { groupSize: 3 as never } } }), /options\.overrides\["x"\]\.groupSize/);
    await expectInvalid(quantize(42 as never, { calibration }), /model/);
    await expectInvalid(quantize(modelPath, { calibration, calibrationCount: 0 }), /options\.calibrationCount/);
    await expectInvalid(quantize(modelPath, { calibration, activationScale: 'log' as never }), /options\.activationScale/);
    await expectInvalid(quantize(modelPath, { calibration, signal: {} as never }), /options\.signal/);
    await expectInvalid(quantize(modelPath, { calibration, onProgress: 1 as never }), /options\.onProgress/);
    const mixed = [new Tensor('float32', new Float32Array(784), [1, 1, 28, 28]), new Tensor('float32', new Float32Array(784), [1, 784])];
    await expect(quantize(modelPath, { calibration: mixed })).rejects.toMatchObject({ code: 'ERR_SHAPE_MISMATCH', message: expect.stringMatching(/batch 1: input "image" has samples of shape \[784\]/) });
  });
});

describe('compareOutputs (the report\'s fidelity check)', () => {
  it('measures relative L2 error and, for rank-2 scores, top-1 agreement', () => {
    const f = (data: number[], dims: number[]) => new Tensor('float32', Float32Array.from(data), dims);
    const r = compareOutputs('y', [f([1, 2, 3, 4, 0, 0], [2, 3])], [f([1, 2, 2.5, 4, 5, 0], [2, 3])]);
    expect(r.samples).toBe(2);
    expect(r.top1Agreement).toBe(0.5); // row 0 keeps class 2 (3 vs 2.5 > 2), row 1 moves from 0 to 1
    expect(r.relativeError).toBeCloseTo(Math.sqrt((0.25 + 25) / 30), 12);
    const img = compareOutputs('y', [f([1, 1, 1, 1], [1, 1, 2, 2])], [f([1, 1, 1, 3], [1, 1, 2, 2])]);
    expect(img.top1Agreement).toBeNull(); // not a classifier's scores
    expect(img.relativeError).toBeCloseTo(1, 12);
  });
});

