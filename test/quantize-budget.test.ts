// The accuracy budget (issue 8): quantize({ maxAccuracyDrop, validation }) picks per layer among
// ternary N=64/16/4, 4-bit and int8, and the model it returns meets the budget on the
// validation data, measured independently here.
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadNpy, Tensor } from '../lib';
import { quantize } from '../lib/quantize';
import { ROOT } from './native-build';

const modelPath = join(ROOT, 'models', 'fashion-mnist-resnet.onnx');
let calibration: Tensor, val: Tensor, valLabels: Uint8Array;

beforeAll(() => {
  const images = loadNpy(join(ROOT, 'data', 'fashion-mnist-test-images.npy')).data as Uint8Array;
  const labels = loadNpy(join(ROOT, 'data', 'fashion-mnist-test-labels.npy')).data as Uint8Array;
  const calib = loadNpy(join(ROOT, 'data', 'fashion-mnist-calib-images.npy')).data as Uint8Array;
  calibration = new Tensor('float32', Float32Array.from(calib.subarray(0, 128 * 784), (v) => v / 255), [128, 1, 28, 28]);
  // Validation: the last 600 test images (accuracy figures elsewhere use the first ones).
  val = new Tensor('float32', Float32Array.from(images.subarray(9400 * 784), (v) => v / 255), [600, 1, 28, 28]);
  valLabels = labels.subarray(9400);
});

describe('quantize({ maxAccuracyDrop, validation })', () => {
  it('meets a 2-point budget with ternary / 4-bit layers where they fit; the report is the truth', async () => {
    const q = await quantize(modelPath, { calibration, weights: 'ternary', maxAccuracyDrop: 0.02, validation: { inputs: val, labels: valLabels } });
    const b = q.report.budget!;
    console.log(`budget: fp32 ${b.fp32Accuracy}, quantized ${b.accuracy}, ${b.evaluations} runs; plan ${b.plan.map((p) => `${p.weights}${p.groupSize ?? ''}`).join(' ')}`);
    expect(b.met).toBe(true);
    expect(b.fp32Accuracy - b.accuracy).toBeLessThanOrEqual(0.02);
    // Measured again, independently, on the returned model.
    const session = await q.createSession();
    const logits = (await session.run({ image: val })).logits.data as Float32Array;
    await session.release();
    let correct = 0;
    for (let i = 0; i < 600; i++) {
      let best = 0;
      for (let c = 1; c < 10; c++) if (logits[i * 10 + c] > logits[i * 10 + best]) best = c;
      if (best === valLabels[i]) correct++;
    }
    expect(correct / 600).toBe(b.accuracy);
    // The plan is what the report and the graph say; edges stay int8; something was quantized below 8 bits.
    expect(b.plan.map((p) => p.weights)).toEqual(q.report.layers.map((l) => l.weights));
    expect(b.plan[0].weights).toBe('int8');
    expect(b.plan[b.plan.length - 1].weights).toBe('int8');
    expect(b.plan.some((p) => p.weights === 'ternary')).toBe(true);
    expect(q.report.total.multiplicationsRemoved).toBeGreaterThan(0);
    expect(b.evaluations).toBeGreaterThan(q.report.layers.length - 2);
  }, 600_000);

  it('BAD CALL: budget without validation, mismatched labels, out-of-range budget', async () => {
    const bad = (o: object) => quantize(modelPath, { calibration, ...o });
    await expect(bad({ maxAccuracyDrop: 0.01 })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT', message: expect.stringMatching(/needs options\.validation/) });
    await expect(bad({ maxAccuracyDrop: 1.5, validation: { inputs: val, labels: valLabels } })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT', message: expect.stringMatching(/maxAccuracyDrop/) });
    await expect(bad({ maxAccuracyDrop: 0.01, validation: { inputs: val, labels: valLabels.subarray(1) } })).rejects.toMatchObject({ code: 'ERR_SHAPE_MISMATCH', message: expect.stringMatching(/599 entries but inputs has 600/) });
    await expect(bad({ maxAccuracyDrop: 0.01, validation: { inputs: val, labels: Int32Array.from(valLabels, (v, i) => (i === 3 ? -1 : v)) } })).rejects.toMatchObject({ message: expect.stringMatching(/labels\[3\] = -1/) });
  });
});
