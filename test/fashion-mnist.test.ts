// The embedded Fashion-MNIST model in fp32 on the real test set: ternion's top-1 equals
// PyTorch's (recorded when the model was trained) and its logits match PyTorch's.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InferenceSession, loadNpy, Tensor } from '../lib';
import { ROOT } from './native-build';
import { pixels } from './fashion-mnist-data';

const model = join(ROOT, 'models', 'fashion-mnist-resnet.onnx');
const meta = JSON.parse(readFileSync(join(ROOT, 'models', 'fashion-mnist-resnet.json'), 'utf8'));

describe('embedded Fashion-MNIST model, fp32', () => {
  it('logits of the first 256 test images match PyTorch', async () => {
    const images = loadNpy(join(ROOT, 'data', 'fashion-mnist-test-images.npy')).data as Uint8Array;
    const want = loadNpy(join(ROOT, 'data', 'fashion-mnist-test-logits-256.npy'));
    expect(want.dims).toEqual([256, 10]);
    const session = await InferenceSession.create(model);
    const out = (await session.run({ image: new Tensor('float32', pixels(images, 0, 256), [256, 1, 28, 28]) })).logits;
    let maxDiff = 0, maxAbs = 0;
    const w = want.data as Float32Array, g = out.data as Float32Array;
    for (let i = 0; i < w.length; i++) {
      maxDiff = Math.max(maxDiff, Math.abs(g[i] - w[i]));
      maxAbs = Math.max(maxAbs, Math.abs(w[i]));
    }
    expect(maxDiff).toBeLessThanOrEqual(1e-4 * maxAbs);
    await session.release();
  });

  it('top-1 on the 10,000 test images equals PyTorch top-1 within 0.1%', async () => {
    const images = loadNpy(join(ROOT, 'data', 'fashion-mnist-test-images.npy'));
    const labels = loadNpy(join(ROOT, 'data', 'fashion-mnist-test-labels.npy')).data as Uint8Array;
    expect(images.dims).toEqual([10000, 1, 28, 28]);
    const session = await InferenceSession.create(model);
    let correct = 0;
    for (let from = 0; from < 10000; from += 500) {
      const logits = (await session.run({ image: new Tensor('float32', pixels(images.data as Uint8Array, from, 500), [500, 1, 28, 28]) })).logits.data as Float32Array;
      for (let i = 0; i < 500; i++) {
        let best = 0;
        for (let c = 1; c < 10; c++) if (logits[i * 10 + c] > logits[i * 10 + best]) best = c;
        if (best === labels[from + i]) correct++;
      }
    }
    expect(Math.abs(correct / 10000 - meta.top1_test_pytorch)).toBeLessThanOrEqual(0.001);
    await session.release();
  });
});
