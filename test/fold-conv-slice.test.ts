// A Slice of a Conv's output along spatial axes folded into the conv's pads
// (lib/ir/passes/fold-conv-slice.ts): causal 1-D convs as PyTorch writes them, 2-D crops of
// strided convs; the outputs bit for bit those of the unfolded graph and close to onnxruntime's on
// the model as written; Slices it must not fold stay.
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { InferenceSession, Tensor, quantize } from '../lib';
import { optimizeGraph, type Graph } from '../lib/ir';
import { loadOnnxModel } from '../lib/onnx';
import { encodeModel, INT64, valueInfo } from './onnx-build-model';

const ints = (name: string, v: number[]) => ({ name, type: 7, ints: v });
const i64 = (name: string, v: number[]) => ({ name, dataType: INT64, dims: [v.length], int64Data: v });

interface SliceCase {
  name: string;
  x: number[];
  k: number[];
  conv: Record<string, unknown>[];
  starts: number[];
  ends: number[];
  axes: number[];
  steps?: number[];
  /** A Relu after the Slice (fused into the conv once the Slice is folded). */
  relu?: boolean;
}

function model(c: SliceCase): Uint8Array {
  const C = c.x[1], M = 6;
  const weights = Array.from({ length: M * C * c.k.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(i * 0.37) * 0.5);
  const sliceInputs = ['full', 'starts', 'ends', 'axes', ...(c.steps ? ['steps'] : [])];
  return encodeModel({
    nodes: [
      { op: 'Conv', name: 'conv', inputs: ['x', 'w', 'b'], outputs: ['full'], attributes: c.conv },
      { op: 'Slice', name: 'trim', inputs: sliceInputs, outputs: [c.relu ? 'cut' : 'y'] },
      ...(c.relu ? [{ op: 'Relu', name: 'relu', inputs: ['cut'], outputs: ['y'] }] : []),
    ],
    inputs: [valueInfo('x', ['N', ...c.x.slice(1)])],
    outputs: [valueInfo('y', ['N', 'C', ...c.x.slice(2).map((_, i) => `s${i}`)])],
    initializers: [
      { name: 'w', dims: [M, C, ...c.k], floatData: weights },
      { name: 'b', dims: [M], floatData: Array.from({ length: M }, (_, i) => i * 0.1 - 0.3) },
      i64('starts', c.starts), i64('ends', c.ends), i64('axes', c.axes), ...(c.steps ? [i64('steps', c.steps)] : []),
    ],
  });
}

const FOLDED: SliceCase[] = [
  // conv(x)[..., :-4] of a conv padded 4 on both sides, dilated by 2: causal.
  { name: 'causal 1-D, dilated', x: [2, 5, 23], k: [3], conv: [ints('pads', [4, 4]), ints('dilations', [2])], starts: [0], ends: [-4], axes: [-1], relu: true },
  // A crop of both spatial axes of a stride-2 conv: rows 1..-1, columns 2..end.
  { name: '2-D crop, strided', x: [1, 3, 17, 15], k: [3, 3], conv: [ints('pads', [2, 3, 2, 3]), ints('strides', [2, 2])], starts: [1, 1], ends: [-1, 1000], axes: [2, 3] },
];

const KEPT: SliceCase[] = [
  { name: 'a channel slice', x: [1, 3, 9, 9], k: [3, 3], conv: [ints('pads', [1, 1, 1, 1])], starts: [1], ends: [4], axes: [1] },
  { name: 'a step of 2', x: [1, 3, 9, 9], k: [3, 3], conv: [ints('pads', [1, 1, 1, 1])], starts: [0], ends: [9], axes: [2], steps: [2] },
  // Starting past the padding would need a negative pad.
  { name: 'a start past the pads', x: [1, 3, 9], k: [3], conv: [ints('pads', [1, 1])], starts: [3], ends: [9], axes: [2] },
];

const ops = (g: Graph) => g.nodes.map((n) => n.opType);

async function outputs(bytes: Uint8Array, x: Tensor, optimizeOff?: boolean): Promise<Float32Array> {
  const graph = optimizeGraph(loadOnnxModel(bytes), optimizeOff ? { foldConvSlices: false } : {});
  const s = InferenceSession.fromGraph(graph, { optimize: false });
  const y = (await s.run({ x })).y.data as Float32Array;
  await s.release();
  return y;
}

function input(dims: number[]): Tensor {
  return new Tensor('float32', Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, (_, i) => Math.cos(i * 0.7)), dims);
}

describe('Slices of conv outputs folded into the pads', () => {
  for (const c of FOLDED) {
    it(`${c.name}: no Slice left, the unfolded graph's bits and onnxruntime's values`, async () => {
      const bytes = model(c);
      const g = optimizeGraph(loadOnnxModel(bytes));
      expect(ops(g)).toEqual(['Conv']);
      if (c.relu) expect(g.nodes[0].attributes.activation).toEqual({ type: 'string', value: 'Relu' });
      const x = input(c.x);
      const folded = await outputs(bytes, x);
      expect(Array.from(folded)).toEqual(Array.from(await outputs(bytes, x, true)));
      const s = await ort.InferenceSession.create(bytes);
      const want = (await s.run({ x: new ort.Tensor('float32', x.data as Float32Array, x.dims) })).y;
      await s.release();
      expect(folded.length).toBe(want.data.length);
      const w = want.data as Float32Array;
      for (let i = 0; i < w.length; i++) expect(folded[i]).toBeCloseTo(w[i], 5);
    });
  }

  it('the causal conv folded: pads [4, 0]; quantized models get it too', async () => {
    const bytes = model(FOLDED[0]);
    const g = optimizeGraph(loadOnnxModel(bytes));
    expect(g.nodes[0].attributes.pads).toEqual({ type: 'ints', value: [4, 0] });
    const q = await quantize(bytes, { weights: 'int8', calibration: input([4, 5, 23]) });
    expect(q.graph.nodes.some((n) => n.opType === 'Slice')).toBe(false);
    const x = input(FOLDED[0].x);
    const s = await q.createSession();
    const y = (await s.run({ x })).y.data as Float32Array;
    const fp = await outputs(bytes, x);
    const big = Math.max(...Array.from(fp, Math.abs));
    for (let i = 0; i < fp.length; i++) expect(Math.abs(y[i] - fp[i])).toBeLessThan(0.05 * big);
  });

  for (const c of KEPT) {
    it(`keeps ${c.name}`, async () => {
      const bytes = model(c);
      expect(ops(optimizeGraph(loadOnnxModel(bytes)))).toEqual(['Conv', 'Slice']);
      const x = input(c.x);
      const s = await ort.InferenceSession.create(bytes);
      const want = (await s.run({ x: new ort.Tensor('float32', x.data as Float32Array, x.dims) })).y.data as Float32Array;
      await s.release();
      const got = await outputs(bytes, x);
      for (let i = 0; i < want.length; i++) expect(got[i]).toBeCloseTo(want[i], 5);
    });
  }

  it('keeps a Slice of a conv output that something else reads too', () => {
    const bytes = encodeModel({
      nodes: [
        { op: 'Conv', name: 'conv', inputs: ['x', 'w'], outputs: ['full'], attributes: [ints('pads', [2, 2])] },
        { op: 'Slice', name: 'trim', inputs: ['full', 'starts', 'ends', 'axes'], outputs: ['y'] },
        { op: 'Relu', name: 'other', inputs: ['full'], outputs: ['z'] },
      ],
      inputs: [valueInfo('x', [1, 2, 10])],
      outputs: [valueInfo('y', [1, 3, 'L']), valueInfo('z', [1, 3, 'M'])],
      initializers: [{ name: 'w', dims: [3, 2, 3], floatData: Array.from({ length: 18 }, (_, i) => i * 0.1) }, i64('starts', [0]), i64('ends', [-2]), i64('axes', [2])],
    });
    expect(ops(optimizeGraph(loadOnnxModel(bytes)))).toContain('Slice');
  });
});
