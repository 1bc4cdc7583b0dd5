// Trained ternary models (TTQ, tools/train_ttq.py): the committed fine-tuned Fashion-MNIST models
// hold exactly ternary weights per group of N input channels (after ternion's BatchNorm fold),
// and quantize() packs them losslessly (shared/fgq.md section 3), so ternion's top-1 equals the
// PyTorch top-1 of the same configuration recorded beside each model (int8 edge layers, uint8
// activations calibrated by 'max' on the same 256 calibration images).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { InferenceSession, loadNpy, Tensor } from '../lib';
import { optimizeGraph, type ConstantTensor, type Graph, type Node } from '../lib/ir';
import { loadOnnxModel } from '../lib/onnx';
import { quantize, type QuantGroupSize } from '../lib/quantize';
import { gemmLayout } from '../lib/quantize/weights';
import { ROOT } from './native-build';
import { pixels, sessionTop1 } from './fashion-mnist-data';

const CALIB = 256, TEST = 10000, BATCH = 500;
const models = readdirSync(join(ROOT, 'models')).filter((f) => /^fashion-mnist-ttq-n(\d+|filter)\.onnx$/.test(f)).sort();

interface Sidecar {
  group_size: number | 'filter';
  top1_test_pytorch: number;
  top1_test_pytorch_fp32_activations: number;
  activation_params: Record<string, { scale: number; zero_point: number }>;
}

let testImages: Uint8Array, testLabels: Uint8Array, calibration: Tensor;

const top1 = (session: InferenceSession) => sessionTop1(session, testImages, testLabels, TEST, BATCH);

const initializer = (g: Graph, name: string): ConstantTensor => {
  const t = g.initializers.get(name);
  if (!t) throw new Error(`no initializer ${name}`);
  return t;
};

/** The weights a ternary group-scaled TernionQConv stands for, in the original [Co, Ci, kh, kw] order. */
function dequantizeNode(g: Graph, node: Node, dims: readonly number[]): Float32Array {
  const codes = initializer(g, node.inputs[1]).data as Int8Array;
  const pos = initializer(g, node.inputs[2]).data as Float32Array;
  const asym = node.attributes.asym?.value === 1;
  const neg = asym ? (initializer(g, node.inputs[5]).data as Float32Array) : pos;
  const G = node.attributes.group_size.value as number;
  const layout = gemmLayout(dims, G);
  const { rows, K, source } = layout;
  const perRow = layout.inputChannels * layout.spatial;
  const out = new Float32Array(rows * perRow);
  for (let r = 0; r < rows; r++) {
    for (let k = 0; k < K; k++) {
      const j = source[k], t = codes[r * K + k], slot = r * (K / G) + Math.floor(k / G);
      if (j < 0) {
        expect(t).toBe(0);
        continue;
      }
      out[r * perRow + j] = t > 0 ? pos[slot] : t < 0 ? -neg[slot] : 0;
    }
  }
  return out;
}

beforeAll(() => {
  testImages = loadNpy(join(ROOT, 'data', 'fashion-mnist-test-images.npy')).data as Uint8Array;
  testLabels = loadNpy(join(ROOT, 'data', 'fashion-mnist-test-labels.npy')).data as Uint8Array;
  const calib = loadNpy(join(ROOT, 'data', 'fashion-mnist-calib-images.npy'));
  calibration = new Tensor('float32', pixels(calib.data as Uint8Array, 0, CALIB), [CALIB, 1, 28, 28]);
});

describe('TTQ fine-tuned models: lossless ternary packing, ternion top-1 = PyTorch top-1', () => {
  it('the N=64 model is committed', () => {
    expect(models).toContain('fashion-mnist-ttq-n64.onnx');
  });

  for (const file of models) {
    const path = join(ROOT, 'models', file);
    const meta = JSON.parse(readFileSync(path.replace(/\.onnx$/, '.json'), 'utf8')) as Sidecar;

    it(`${file}: every inner layer packed losslessly, dequantized weights = BN-folded ONNX weights, top-1 within 0.1% of PyTorch`, async () => {
      const groupSize = meta.group_size as QuantGroupSize;
      const q = await quantize(path, { weights: 'ternary', groupSize, calibration });
      const fp = optimizeGraph(loadOnnxModel(readFileSync(path)));
      const fpNodes = new Map(fp.nodes.map((n) => [n.name, n]));
      const inner = q.report.layers.filter((l) => l.weights === 'ternary');
      expect(inner.length).toBe(8);
      expect(q.report.layers.filter((l) => l.weights === 'int8').length).toBe(2);
      for (const l of inner) {
        expect(l.lossless, l.name).toBe(true);
        expect(l.relativeError, l.name).toBe(0);
        expect(l.groupSize).toBe(groupSize);
        // Bit for bit: the packed codes and scales give back the folded fp32 weights.
        const w = initializer(fp, fpNodes.get(l.name)!.inputs[1]);
        const node = q.graph.nodes.find((n) => n.name === l.name)!;
        expect(node.attributes.form).toEqual({ type: 'string', value: 'group-scaled' });
        const back = dequantizeNode(q.graph, node, w.dims);
        const want = w.data as Float32Array;
        let mismatches = 0;
        for (let i = 0; i < want.length; i++) if (back[i] !== want[i]) mismatches++;
        expect(mismatches, l.name).toBe(0);
      }
      // The configuration the sidecar's PyTorch figure was measured in: same activation ranges.
      for (const l of q.report.layers) {
        const input = fpNodes.get(l.name)!.inputs[0];
        const a = meta.activation_params[input];
        expect(a, input).toBeDefined();
        expect(l.activationZeroPoint, l.name).toBe(a.zero_point);
        expect(Math.abs(l.activationScale - a.scale), l.name).toBeLessThanOrEqual(1e-6 * a.scale);
      }
      const acc = await top1(await q.createSession());
      const fp32Acts = await top1(await InferenceSession.create(path));
      console.log(`${file}: ternion top-1 ${acc.toFixed(4)} (PyTorch ${meta.top1_test_pytorch}); fp32 activations ${fp32Acts.toFixed(4)} (PyTorch ${meta.top1_test_pytorch_fp32_activations}); ${q.report.total.bytes} B, multiplications removed ${q.report.total.multiplicationsRemoved.toFixed(4)}`);
      expect(Math.abs(acc - meta.top1_test_pytorch)).toBeLessThanOrEqual(0.001);
      expect(Math.abs(fp32Acts - meta.top1_test_pytorch_fp32_activations)).toBeLessThanOrEqual(0.001);
    }, 300_000);
  }
});
