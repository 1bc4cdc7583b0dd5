// Whole real models against onnxruntime-node (the reference): ResNet-18, ResNet-50 and
// MobileNetV2 with seeded random weights (made by tools/export_torchvision_models.py; .ci/run
// generates them) and the embedded Fashion-MNIST model. Same top-1 for every image, and
// max |logit difference| <= 1e-4 relative to the largest logit.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { InferenceSession, Tensor } from '../lib';
import { rng } from './helpers';
import { ROOT } from './native-build';

const MODELS = [
  { file: join(ROOT, 'models', 'fashion-mnist-resnet.onnx'), input: 'image', dims: [4, 1, 28, 28], make: 'python3 tools/train_fashion_mnist.py' },
  { file: join(ROOT, 'build', 'models', 'resnet18.onnx'), input: 'image', dims: [2, 3, 224, 224], make: 'python3 tools/export_torchvision_models.py' },
  { file: join(ROOT, 'build', 'models', 'resnet50.onnx'), input: 'image', dims: [2, 3, 224, 224], make: 'python3 tools/export_torchvision_models.py' },
  { file: join(ROOT, 'build', 'models', 'mobilenet_v2.onnx'), input: 'image', dims: [2, 3, 224, 224], make: 'python3 tools/export_torchvision_models.py' },
];

function argmaxRows(data: Float32Array, rows: number): number[] {
  const cols = data.length / rows;
  return Array.from({ length: rows }, (_, r) => {
    let best = 0;
    for (let c = 1; c < cols; c++) if (data[r * cols + c] > data[r * cols + best]) best = c;
    return best;
  });
}

describe('whole models match onnxruntime-node', () => {
  for (const m of MODELS) {
    const name = m.file.split('/').pop()!;
    it(name, async () => {
      expect(existsSync(m.file), `${m.file} is missing: run \`${m.make}\``).toBe(true);
      const r = rng(7);
      const n = m.dims.reduce((a, b) => a * b, 1);
      const x = Float32Array.from({ length: n }, () => r());
      const ours = await InferenceSession.create(m.file, { threads: 2 });
      const theirs = await ort.InferenceSession.create(m.file, { intraOpNumThreads: 2 });
      const got = (await ours.run({ [m.input]: new Tensor('float32', x, m.dims) }))[ours.outputNames[0]];
      const want = (await theirs.run({ [m.input]: new ort.Tensor('float32', x, m.dims) }))[theirs.outputNames[0]];
      expect(got.dims).toEqual([...want.dims]);
      const a = got.data as Float32Array, b = want.data as Float32Array;
      let maxDiff = 0, maxAbs = 0;
      for (let i = 0; i < b.length; i++) {
        maxDiff = Math.max(maxDiff, Math.abs(a[i] - b[i]));
        maxAbs = Math.max(maxAbs, Math.abs(b[i]));
      }
      expect(argmaxRows(a, m.dims[0])).toEqual(argmaxRows(b, m.dims[0]));
      expect(maxDiff, `max |diff| ${maxDiff} vs max |logit| ${maxAbs}`).toBeLessThanOrEqual(1e-4 * maxAbs);
      await ours.release();
      await theirs.release();
    }, 300_000);
  }
});
