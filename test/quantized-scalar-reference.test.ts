// The scalar reference executor of a quantized graph: the same graph run on the portable scalar
// kernel table must give bit-identical outputs to the fast (SIMD) kernels this CPU selects, for
// every weight form the quantizer emits (issue 5: "a scalar reference executor of the quantized
// graph, and tests that the fast path gives the same outputs").
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { cpuInfo, loadNpy, Tensor } from '../lib';
import { quantize, type QuantizeOptions } from '../lib/quantize';
import { ROOT } from './native-build';

const modelPath = join(ROOT, 'models', 'fashion-mnist-resnet.onnx');
let calibration: Tensor, x: Tensor;

beforeAll(() => {
  const images = loadNpy(join(ROOT, 'data', 'fashion-mnist-test-images.npy')).data as Uint8Array;
  const calib = loadNpy(join(ROOT, 'data', 'fashion-mnist-calib-images.npy')).data as Uint8Array;
  calibration = new Tensor('float32', Float32Array.from(calib.subarray(0, 128 * 784), (v) => v / 255), [128, 1, 28, 28]);
  // 37 images: an odd batch, so the kernels' row tails are exercised too.
  x = new Tensor('float32', Float32Array.from(images.subarray(0, 37 * 784), (v) => v / 255), [37, 1, 28, 28]);
});

const MODES: [string, Omit<QuantizeOptions, 'calibration'>][] = [
  ['int8 (7-bit codes, the default reduced range)', { weights: 'int8' }],
  ['int8 full range', { weights: 'int8', reduceRange: false }],
  ['ternary N=4 group-scaled', { weights: 'ternary', groupSize: 4 }],
  ['ternary-asym N=16 folded', { weights: 'ternary-asym', groupSize: 16, form: 'folded' }],
  ['ternary-asym N=16 group-scaled (TTQ-like scales)', { weights: 'ternary-asym', groupSize: 16, form: 'group-scaled' }],
  ['ternary N=8, 4-bit activations', { weights: 'ternary', groupSize: 8, activationBits: 4 }],
  ['int4 N=16 folded', { weights: 'int4', groupSize: 16, form: 'folded' }],
  ['int4 N=16 group-scaled (the default form)', { weights: 'int4', groupSize: 16 }],
  ['ternary filter', { weights: 'ternary', groupSize: 'filter' }],
];

describe('quantized graph: scalar reference kernels vs the kernels this CPU selects', () => {
  const fast = cpuInfo().supported[0];
  it.each(MODES)('%s: bit-identical logits', async (_label, options) => {
    const q = await quantize(modelPath, { ...options, calibration });
    const reference = await q.createSession({ isa: 'scalar' });
    const best = await q.createSession();
    expect(reference.isa).toBe('scalar');
    expect(best.isa).toBe(fast);
    const a = (await reference.run({ image: x })).logits.data as Float32Array;
    const b = (await best.run({ image: x })).logits.data as Float32Array;
    await reference.release();
    await best.release();
    expect(a.length).toBe(370);
    expect(a.some((v) => v !== 0)).toBe(true);
    expect(Buffer.from(b.buffer, b.byteOffset, b.byteLength).equals(Buffer.from(a.buffer, a.byteOffset, a.byteLength))).toBe(true);
  });

  // Every other kernel set this CPU runs (an AVX-512 machine also runs the AVX-VNNI and AVX2
  // tables): the same bytes, with two threads.
  const others = cpuInfo().supported.filter((isa) => isa !== fast && isa !== 'scalar');
  it.skipIf(others.length === 0).each(MODES)('%s: the same logits on every other kernel set', async (_label, options) => {
    const q = await quantize(modelPath, { ...options, calibration });
    const reference = await q.createSession({ isa: 'scalar' });
    const a = (await reference.run({ image: x })).logits.data as Float32Array;
    await reference.release();
    for (const isa of others) {
      const s = await q.createSession({ isa: isa as 'avx2', threads: 2 });
      expect(s.isa).toBe(isa);
      const b = (await s.run({ image: x })).logits.data as Float32Array;
      await s.release();
      expect(Buffer.from(b.buffer, b.byteOffset, b.byteLength).equals(Buffer.from(a.buffer, a.byteOffset, a.byteLength)), isa).toBe(true);
    }
  });
});
