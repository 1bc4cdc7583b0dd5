// precision: 'int8': the Conv/Gemm/MatMul layers move to the int8 kernels, and the models stay
// accurate: the embedded Fashion-MNIST model within 0.3% top-1 of its fp32, ResNet-18 logits
// close to fp32.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InferenceSession, loadNpy, Tensor } from '../lib';
import { optimizeGraph } from '../lib/ir';
import { loadOnnxModel } from '../lib/onnx';
import { quantizeGraphInt8 } from '../lib/session/precision-int8';
import { rng } from './helpers';
import { ROOT } from './native-build';
import { correctOf } from './fashion-mnist-data';

const fashion = join(ROOT, 'models', 'fashion-mnist-resnet.onnx');

const top1 = correctOf;

describe("precision: 'int8'", () => {
  it('rewrites every Conv and Gemm of the embedded model to the int8 ops', () => {
    const g = quantizeGraphInt8(optimizeGraph(loadOnnxModel(readFileSync(fashion))));
    const ops = g.nodes.map((n) => n.opType);
    expect(ops).not.toContain('Conv');
    expect(ops).not.toContain('Gemm');
    expect(ops.filter((o) => o === 'TernionQConv').length).toBe(9);
    expect(ops.filter((o) => o === 'TernionQGemm').length).toBe(1);
  });

  it('Fashion-MNIST top-1 within 0.3% of fp32 on the 10,000 test images', async () => {
    const images = loadNpy(join(ROOT, 'data', 'fashion-mnist-test-images.npy')).data as Uint8Array;
    const labels = loadNpy(join(ROOT, 'data', 'fashion-mnist-test-labels.npy')).data as Uint8Array;
    const fp32 = await InferenceSession.create(fashion);
    const int8 = await InferenceSession.create(fashion, { precision: 'int8' });
    let c32 = 0, c8 = 0;
    for (let from = 0; from < 10000; from += 1000) {
      const x = new Float32Array(1000 * 784);
      for (let i = 0; i < x.length; i++) x[i] = images[from * 784 + i] / 255;
      const feeds = { image: new Tensor('float32', x, [1000, 1, 28, 28]) };
      c32 += top1((await fp32.run(feeds)).logits.data as Float32Array, labels, from);
      c8 += top1((await int8.run(feeds)).logits.data as Float32Array, labels, from);
    }
    expect(Math.abs(c8 - c32) / 10000).toBeLessThanOrEqual(0.003);
  }, 300_000);

  it('ResNet-18 int8 logits stay close to fp32', async () => {
    const file = join(ROOT, 'build', 'models', 'resnet18.onnx');
    expect(existsSync(file), `${file} is missing: run python3 tools/export_torchvision_models.py`).toBe(true);
    const r = rng(11);
    const x = new Tensor('float32', Float32Array.from({ length: 3 * 224 * 224 }, () => r()), [1, 3, 224, 224]);
    const a = (await (await InferenceSession.create(file)).run({ image: x })).logits.data as Float32Array;
    const b = (await (await InferenceSession.create(file, { precision: 'int8' })).run({ image: x })).logits.data as Float32Array;
    let dot = 0, na = 0, nb = 0;
    for (let i = 0; i < a.length; i++) { dot += a[i] * b[i]; na += a[i] * a[i]; nb += b[i] * b[i]; }
    expect(dot / Math.sqrt(na * nb)).toBeGreaterThan(0.99);
  }, 300_000);
});
