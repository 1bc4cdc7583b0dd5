// Conv taps that only ever read padding (lib/ir/passes/trim-conv-taps.ts): trimmed off where the
// input size is known, the outputs the untrimmed conv's (the sums lose only zero terms) and
// onnxruntime's; convs over a symbolic size stay as they are.
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { InferenceSession, Tensor, quantize } from '../lib';
import { optimizeGraph, trimConvTaps } from '../lib/ir';
import { loadOnnxModel } from '../lib/onnx';
import { encodeModel, valueInfo } from './onnx-build-model';

interface ConvCase {
  H: number | string;
  W: number | string;
  k: [number, number];
  d: [number, number];
  s?: [number, number];
  pads: [number, number, number, number];
}

const C = 5, M = 7;

function convModel(c: ConvCase): Uint8Array {
  const weights = Array.from({ length: M * C * c.k[0] * c.k[1] }, (_, i) => Math.sin(i * 0.37) * 0.5);
  return encodeModel({
    nodes: [{
      op: 'Conv', name: 'conv', inputs: ['x', 'w', 'b'], outputs: ['y'],
      attributes: [
        { name: 'dilations', type: 7, ints: c.d }, { name: 'pads', type: 7, ints: c.pads }, { name: 'strides', type: 7, ints: c.s ?? [1, 1] },
        { name: 'kernel_shape', type: 7, ints: c.k },
      ],
    }],
    inputs: [valueInfo('x', ['N', C, c.H, c.W])],
    outputs: [valueInfo('y', ['N', M, 'OH', 'OW'])],
    initializers: [
      { name: 'w', dims: [M, C, ...c.k], floatData: weights },
      { name: 'b', dims: [M], floatData: Array.from({ length: M }, (_, i) => i * 0.1 - 0.3) },
    ],
  });
}

const kernelOf = (bytes: Uint8Array) => {
  const conv = trimConvTaps(loadOnnxModel(bytes)).nodes[0];
  const k = conv.attributes.kernel_shape;
  return { kernel: k?.type === 'ints' ? k.value : undefined, pads: conv.attributes.pads?.type === 'ints' ? conv.attributes.pads.value : undefined };
};

const cases: [string, ConvCase, number[], number[]][] = [
  // name, conv, trimmed kernel, trimmed pads
  ['ASPP-like 3x3 dilated by 6 over 5x5 (only the centre reaches)', { H: 5, W: 5, k: [3, 3], d: [6, 6], pads: [6, 6, 6, 6] }, [1, 1], [0, 0, 0, 0]],
  ['5x5 dilated by 2 over 2x3 with pads 4: one tap down, three across', { H: 2, W: 3, k: [5, 5], d: [2, 2], pads: [4, 4, 4, 4] }, [1, 3], [0, 2, 0, 2]],
  ['stride 2, uneven pads, one axis trimmed', { H: 6, W: 3, k: [3, 3], d: [1, 4], s: [2, 2], pads: [1, 4, 1, 4] }, [3, 1], [1, 0, 1, 0]],
];

describe('trimming Conv taps that read only padding', () => {
  it('shrinks the kernel and the pads to the taps that reach the input', () => {
    for (const [, c, kernel, pads] of cases) expect(kernelOf(convModel(c))).toEqual({ kernel, pads });
    // Every tap reaches the input, or the size is symbolic: unchanged.
    expect(kernelOf(convModel({ H: 8, W: 8, k: [3, 3], d: [2, 2], pads: [2, 2, 2, 2] })).kernel).toEqual([3, 3]);
    expect(kernelOf(convModel({ H: 'H', W: 'W', k: [3, 3], d: [6, 6], pads: [6, 6, 6, 6] })).kernel).toEqual([3, 3]);
  });

  it('gives the untrimmed outputs (to the sign of zero) and onnxruntime\'s, in fp32 and after int8 quantization', async () => {
    for (const [name, c] of cases) {
      const bytes = convModel(c);
      const dims = [2, C, c.H as number, c.W as number];
      const x = Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, (_, i) => Math.cos(i * 0.91));
      const trimmed = await (await InferenceSession.create(bytes)).run({ x: new Tensor('float32', x, dims) });
      const full = await InferenceSession.fromGraph(optimizeGraph(loadOnnxModel(bytes), { trimConvTaps: false }), { optimize: false })
        .run({ x: new Tensor('float32', x, dims) });
      const a = trimmed.y.data as Float32Array, b = full.y.data as Float32Array;
      expect(trimmed.y.dims, name).toEqual(full.y.dims);
      expect(Array.from(a).findIndex((v, i) => v !== b[i]), name).toBe(-1);
      const o = await ort.InferenceSession.create(bytes);
      const want = (await o.run({ x: new ort.Tensor('float32', x, dims) })).y.data as Float32Array;
      expect(Array.from(a).findIndex((v, i) => !(Math.abs(v - want[i]) <= 1e-5)), name).toBe(-1);
      // The quantizer sees the trimmed conv: its int8 model runs and follows fp32.
      const q = await quantize(bytes, { weights: 'int8', calibration: new Tensor('float32', x, dims), keepEdgeLayers8bit: false });
      const y8 = (await (await InferenceSession.create(q.toBuffer())).run({ x: new Tensor('float32', x, dims) })).y.data as Float32Array;
      const scale = Math.max(...Array.from(a, Math.abs));
      expect(Array.from(y8).findIndex((v, i) => !(Math.abs(v - a[i]) <= 0.05 * scale)), name).toBe(-1);
    }
  });
});
