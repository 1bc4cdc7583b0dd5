// LSTM, GRU and RNN (lib/ir/shapes/recurrent.ts, native/exec/ops/recurrent.cc) against
// onnxruntime-node: every cell in each direction and layout, with and without each optional input
// (B, ragged sequence_lens, initial states, peepholes), clip, input_forget, linear_before_reset,
// each activation function with its alpha / beta, W and R as initializers and as graph inputs,
// some outputs omitted; the stacked layers PyTorch exports (test/fixtures, from
// tools/export_recurrent_models.py); and the errors a malformed node gets, at load and at run.
// onnxruntime's CPU kernels refuse layout 1, which the spec defines as layout 0 with X, the
// states and the outputs transposed: a layout-1 case is checked against onnxruntime running its
// layout-0 twin (the same weights) on the transposed inputs, outputs transposed back.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { InferenceSession, Tensor } from '../lib';
import { countMacs } from '../lib/bench/macs';
import { inferShapes } from '../lib/ir';
import { loadOnnxModel } from '../lib/onnx';
import { float16BitsToNumber, narrowToFloat16 } from '../lib/onnx/half-float';
import { expectRejection, rng } from './helpers';
import { encodeModel, FLOAT, FLOAT16, type TensorSpec, valueInfo } from './onnx-build-model';

const INT32 = 6, INT64 = 7;
const FIXTURES = join(__dirname, 'fixtures');

type Op = 'LSTM' | 'GRU' | 'RNN';
type OutputName = 'Y' | 'Y_h' | 'Y_c';
const GATES: Record<Op, number> = { LSTM: 4, GRU: 3, RNN: 1 };

interface Case {
  op: Op;
  direction?: 'forward' | 'reverse' | 'bidirectional';
  layout?: 0 | 1;
  seq?: number;
  batch?: number;
  input?: number;
  hidden?: number;
  bias?: boolean;
  lens?: number[];
  initialH?: boolean;
  initialC?: boolean;
  peepholes?: boolean;
  clip?: number;
  inputForget?: boolean;
  linearBeforeReset?: boolean;
  activations?: string[];
  alpha?: number[];
  beta?: number[];
  /** W, R, B and P as graph inputs (fed at run) instead of initializers. */
  weightsAsInputs?: boolean;
  /** The outputs the node writes (others '' or left off); all of the cell's by default. */
  outputs?: OutputName[];
  opset?: number;
  /** Weights are uniform in +-weightScale / sqrt(hidden) (PyTorch's initialization at 1). */
  weightScale?: number;
  /** Leave hidden_size off the node (it then comes from R's shape). */
  omitHiddenSize?: boolean;
  /** Every float value rounded to float16 ('values'), and also stored and declared float16 ('types'). */
  half?: 'values' | 'types';
  seed?: number;
}

const text = (s: string) => new TextEncoder().encode(s);
const strAttr = (name: string, v: string) => ({ name, type: 3, s: text(v) });
const intAttr = (name: string, v: number) => ({ name, type: 2, i: v });
const floatAttr = (name: string, v: number) => ({ name, type: 1, f: v });
const floatsAttr = (name: string, v: number[]) => ({ name, type: 6, floats: v });
const stringsAttr = (name: string, v: string[]) => ({ name, type: 8, strings: v.map(text) });

interface Feed {
  type: 'float32' | 'float16' | 'int32';
  data: Float32Array | Uint16Array | Int32Array;
  dims: number[];
}

interface Built {
  bytes: Uint8Array;
  feeds: Record<string, Feed>;
  outputs: OutputName[];
}

/** A one-node model of the case, its feeds, and the outputs it declares. */
function build(c: Case): Built {
  const { op, direction = 'forward', layout = 0, seq = 5, batch = 3, input = 4, hidden = 7 } = c;
  const D = direction === 'bidirectional' ? 2 : 1;
  const G = GATES[op];
  const random = rng(c.seed ?? 1234);
  const toHalf = (v: number) => float16BitsToNumber(narrowToFloat16(Float32Array.of(v))[0]);
  const uniform = (n: number, scale: number) => Float32Array.from({ length: n }, () => (c.half ? toHalf : Number)((random() * 2 - 1) * scale));
  const halfTypes = c.half === 'types';
  const floatFeed = (data: Float32Array, dims: number[]): Feed => (halfTypes ? { type: 'float16', data: narrowToFloat16(data), dims } : { type: 'float32', data, dims });
  const k = (c.weightScale ?? 1) / Math.sqrt(hidden);
  const state = layout === 0 ? [D, batch, hidden] : [batch, D, hidden];
  const xDims = layout === 0 ? [seq, batch, input] : [batch, seq, input];

  const feeds: Built['feeds'] = { X: floatFeed(uniform(seq * batch * input, 1), xDims) };
  const initializers: TensorSpec[] = [];
  const weight = (name: string, dims: number[], data: Float32Array) => {
    if (c.weightsAsInputs) feeds[name] = floatFeed(data, dims);
    else if (halfTypes) initializers.push({ name, dims, dataType: FLOAT16, rawData: new Uint8Array(narrowToFloat16(data).buffer) });
    else initializers.push({ name, dims, floatData: Array.from(data) });
    return name;
  };
  const inputs = ['X', weight('W', [D, G * hidden, input], uniform(D * G * hidden * input, k)), weight('R', [D, G * hidden, hidden], uniform(D * G * hidden * hidden, k))];
  inputs.push(c.bias ? weight('B', [D, 2 * G * hidden], uniform(D * 2 * G * hidden, k)) : '');
  if (c.lens) feeds.sequence_lens = { type: 'int32', data: Int32Array.from(c.lens), dims: [batch] };
  inputs.push(c.lens ? 'sequence_lens' : '');
  if (c.initialH) feeds.initial_h = floatFeed(uniform(D * batch * hidden, 1), state);
  inputs.push(c.initialH ? 'initial_h' : '');
  if (op === 'LSTM') {
    if (c.initialC) feeds.initial_c = floatFeed(uniform(D * batch * hidden, 1), state);
    inputs.push(c.initialC ? 'initial_c' : '');
    inputs.push(c.peepholes ? weight('P', [D, 3 * hidden], uniform(D * 3 * hidden, 1)) : '');
  }
  while (inputs[inputs.length - 1] === '') inputs.pop();

  const all: OutputName[] = op === 'LSTM' ? ['Y', 'Y_h', 'Y_c'] : ['Y', 'Y_h'];
  const wanted = c.outputs ?? all;
  const nodeOutputs = all.map((o) => (wanted.includes(o) ? o : ''));
  while (nodeOutputs[nodeOutputs.length - 1] === '') nodeOutputs.pop();

  const attributes: Record<string, unknown>[] = [strAttr('direction', direction)];
  if (!c.omitHiddenSize) attributes.push(intAttr('hidden_size', hidden));
  if ((c.opset ?? 14) >= 14) attributes.push(intAttr('layout', layout));
  if (c.clip !== undefined) attributes.push(floatAttr('clip', c.clip));
  if (c.inputForget) attributes.push(intAttr('input_forget', 1));
  if (c.linearBeforeReset !== undefined) attributes.push(intAttr('linear_before_reset', c.linearBeforeReset ? 1 : 0));
  if (c.activations) attributes.push(stringsAttr('activations', c.activations));
  if (c.alpha) attributes.push(floatsAttr('activation_alpha', c.alpha));
  if (c.beta) attributes.push(floatsAttr('activation_beta', c.beta));

  const outDims: Record<OutputName, number[]> = { Y: layout === 0 ? [seq, D, batch, hidden] : [batch, seq, D, hidden], Y_h: state, Y_c: state };
  const bytes = encodeModel({
    opset: c.opset ?? 14,
    nodes: [{ op, name: 'cell', inputs, outputs: nodeOutputs, attributes }],
    inputs: Object.entries(feeds).map(([name, f]) => valueInfo(name, f.dims, f.type === 'int32' ? INT32 : f.type === 'float16' ? FLOAT16 : FLOAT)),
    outputs: wanted.map((o) => valueInfo(o, outDims[o], halfTypes ? FLOAT16 : FLOAT)),
    initializers,
  });
  return { bytes, feeds, outputs: wanted };
}

type Outputs = Record<string, { data: Float32Array; dims: readonly number[] }>;

async function runOrt(bytes: Uint8Array, feeds: Built['feeds']): Promise<Outputs> {
  const session = await ort.InferenceSession.create(bytes);
  const out = await session.run(Object.fromEntries(Object.entries(feeds).map(([n, f]) => [n, new ort.Tensor(f.type, f.data, f.dims)])));
  await session.release();
  return Object.fromEntries(Object.entries(out).map(([n, t]) => [n, { data: t.data as Float32Array, dims: t.dims }]));
}

/** Row-major data of `dims` with its axes permuted (output axis i is input axis perm[i]). */
function permute(data: Float32Array, dims: readonly number[], perm: readonly number[]): { data: Float32Array; dims: number[] } {
  const outDims = perm.map((p) => dims[p]);
  const strides = dims.map((_, i) => dims.slice(i + 1).reduce((a, b) => a * b, 1));
  const out = new Float32Array(data.length);
  const index = new Array<number>(outDims.length).fill(0);
  for (let o = 0; o < out.length; o++) {
    out[o] = data[index.reduce((at, v, i) => at + v * strides[perm[i]], 0)];
    for (let a = outDims.length - 1; a >= 0 && ++index[a] === outDims[a]; a--) index[a] = 0;
  }
  return { data: out, dims: outDims };
}

/** onnxruntime's outputs for feeds in `layout`, from the model's layout-0 form (see the header). */
async function runOrtInLayout(layout0Bytes: Uint8Array, feeds: Built['feeds'], layout: 0 | 1): Promise<Outputs> {
  if (layout === 0) return runOrt(layout0Bytes, feeds);
  const twinFeeds = { ...feeds };
  for (const name of ['X', 'initial_h', 'initial_c']) {
    const f = feeds[name];
    if (f) twinFeeds[name] = { type: 'float32', ...permute(f.data as Float32Array, f.dims, [1, 0, 2]) };
  }
  const out = await runOrt(layout0Bytes, twinFeeds);
  // Y [seq, directions, batch, hidden] -> [batch, seq, directions, hidden]; states swap their first two axes.
  return Object.fromEntries(Object.entries(out).map(([n, t]) => [n, permute(t.data, t.dims, t.dims.length === 4 ? [2, 0, 1, 3] : [1, 0, 2])]));
}

async function runTernion(bytes: Uint8Array, feeds: Built['feeds'], threads?: number): Promise<Outputs> {
  const session = await InferenceSession.create(bytes, threads ? { threads } : {});
  try {
    const out = await session.run(Object.fromEntries(Object.entries(feeds).map(([n, f]) => [n, new Tensor(f.type, f.data, f.dims)])));
    // float16 outputs (of a float16 model) widened, to compare as float32.
    const widened = (t: Tensor) => (t.type === 'float16' ? Float32Array.from(t.data as Uint16Array, float16BitsToNumber) : (t.data as Float32Array));
    return Object.fromEntries(Object.entries(out).map(([n, t]) => [n, { data: widened(t), dims: t.dims }]));
  } finally {
    await session.release();
  }
}

const maxAbs = (a: ArrayLike<number>): number => Array.from(a).reduce((m, v) => Math.max(m, Math.abs(v)), 0);
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
};

/** Same dims, and every value within 1e-5 of the output's scale (both compute in float32). */
function expectClose(name: string, got: Outputs[string], want: Outputs[string]): void {
  expect([...got.dims], name).toEqual([...want.dims]);
  const scale = maxAbs(want.data);
  expect(scale, `${name} is all zeros: the comparison would prove nothing`).toBeGreaterThan(0.01);
  expect(maxDiff(got.data, want.data), name).toBeLessThanOrEqual(1e-5 * scale);
}

/** The case on both engines, every declared output compared. */
async function matchesOnnxruntime(c: Case): Promise<Outputs> {
  const { bytes, feeds, outputs } = build(c);
  const want = await runOrtInLayout(c.layout === 1 ? build({ ...c, layout: 0 }).bytes : bytes, feeds, c.layout ?? 0);
  const got = await runTernion(bytes, feeds);
  expect(Object.keys(got).sort()).toEqual([...outputs].sort());
  for (const name of outputs) expectClose(name, got[name], want[name]);
  return got;
}


const CELLS: { label: string; op: Op; linearBeforeReset?: boolean }[] = [
  { label: 'LSTM', op: 'LSTM' },
  { label: 'GRU', op: 'GRU', linearBeforeReset: false },
  { label: 'GRU linear_before_reset', op: 'GRU', linearBeforeReset: true },
  { label: 'RNN', op: 'RNN' },
];
const DIRECTIONS = ['forward', 'reverse', 'bidirectional'] as const;

describe('recurrent ops against onnxruntime: every cell, direction and layout', () => {
  for (const cell of CELLS) {
    for (const direction of DIRECTIONS) {
      for (const layout of [0, 1] as const) {
        it(`${cell.label} ${direction} layout ${layout}: B, ragged sequence_lens (full, short, none), initial states${cell.op === 'LSTM' ? ', peepholes' : ''}; batch 3, hidden 7`, async () => {
          const got = await matchesOnnxruntime({
            ...cell, direction, layout, bias: true, lens: [5, 2, 0], initialH: true, initialC: true, peepholes: true, seed: 11 + layout,
          });
          // Past each sequence's end Y is zero; an empty sequence's final state is zero.
          const y = got.Y.data, H = 7, D = direction === 'bidirectional' ? 2 : 1;
          const at = (t: number, b: number) => (layout === 0 ? (t * D * 3 + b) * H : (b * 5 + t) * D * H);
          expect(maxAbs(y.subarray(at(2, 1), at(2, 1) + H))).toBe(0);
          expect(maxAbs(y.subarray(at(1, 1), at(1, 1) + H))).toBeGreaterThan(0);
          const hRow = (b: number) => (layout === 0 ? b * H : b * D * H);
          expect(maxAbs(got.Y_h.data.subarray(hRow(2), hRow(2) + H))).toBe(0);
        });
        it(`${cell.label} ${direction} layout ${layout}: no optional input, W and R graph inputs; batch 1, hidden 33`, async () => {
          await matchesOnnxruntime({ ...cell, direction, layout, batch: 1, hidden: 33, input: 9, seq: 6, weightsAsInputs: true, seed: 21 + layout });
        });
      }
    }
  }
});

describe('recurrent ops against onnxruntime: attributes', () => {
  it('clip bounds every gate input (LSTM with peepholes, GRU both ways, RNN); it changes the results', async () => {
    const cases: Case[] = [
      { op: 'LSTM', direction: 'bidirectional', bias: true, peepholes: true, initialC: true },
      { op: 'GRU', linearBeforeReset: false, bias: true, initialH: true },
      { op: 'GRU', linearBeforeReset: true, direction: 'reverse', bias: true },
      { op: 'RNN', bias: true, initialH: true },
    ];
    for (const c of cases) {
      const clipped = { ...c, clip: 0.75, weightScale: 6, seed: 5 };
      await matchesOnnxruntime(clipped);
      const free = build({ ...clipped, clip: undefined });
      const on = build(clipped);
      expect(maxDiff((await runOrt(on.bytes, on.feeds)).Y.data, (await runOrt(free.bytes, free.feeds)).Y.data), c.op).toBeGreaterThan(0.05);
    }
  });

  it('LSTM input_forget (the forget gate is 1 - the input gate), with and without peepholes', async () => {
    await matchesOnnxruntime({ op: 'LSTM', inputForget: true, bias: true, initialH: true, initialC: true });
    await matchesOnnxruntime({ op: 'LSTM', direction: 'bidirectional', inputForget: true, peepholes: true, bias: true, initialC: true, layout: 1 });
  });

  it('linear_before_reset changes a GRU (the comparison can fail)', async () => {
    const lbr = build({ op: 'GRU', linearBeforeReset: true, bias: true, initialH: true, weightScale: 3 });
    const plain = build({ op: 'GRU', linearBeforeReset: false, bias: true, initialH: true, weightScale: 3 });
    const ours = await runTernion(lbr.bytes, lbr.feeds);
    const theirs = await runOrt(plain.bytes, plain.feeds);
    expect(maxDiff(ours.Y.data, theirs.Y.data)).toBeGreaterThan(1e-5 * maxAbs(theirs.Y.data) * 100);
  });

  // Each function of the spec once, in an RNN, with explicit alpha / beta where it takes them.
  const ALPHA_BETA: [string, number[]?, number[]?][] = [
    ['Relu'], ['Tanh'], ['Sigmoid'], ['Affine', [0.7], [0.2]], ['LeakyRelu', [0.2]], ['ThresholdedRelu', [0.1]],
    ['ScaledTanh', [1.5], [0.6]], ['HardSigmoid', [0.3], [0.4]], ['Elu', [0.8]], ['Softsign'], ['Softplus'],
  ];
  for (const [name, alpha, beta] of ALPHA_BETA) {
    it(`RNN activation ${name}${alpha ? ` alpha ${alpha}` : ''}${beta ? ` beta ${beta}` : ''}`, async () => {
      await matchesOnnxruntime({ op: 'RNN', direction: 'bidirectional', bias: true, initialH: true, activations: [name, name], alpha: alpha && [...alpha, ...alpha], beta: beta && [...beta, ...beta], weightScale: 2 });
    });
  }

  it("LeakyRelu, HardSigmoid and Elu without alpha / beta take their ONNX ops' defaults", async () => {
    await matchesOnnxruntime({ op: 'RNN', direction: 'bidirectional', activations: ['LeakyRelu', 'Elu'], weightScale: 2 });
    await matchesOnnxruntime({ op: 'GRU', activations: ['HardSigmoid', 'LeakyRelu'], weightScale: 2 });
  });

  // onnxruntime takes 0 for every default its table lacks (ThresholdedRelu's alpha, Affine's and
  // ScaledTanh's): Affine is then constant, and not what the spec's "the same as of
  // corresponding ONNX operators" says. ternion follows the spec: compared with explicit values.
  it("ThresholdedRelu, Affine and ScaledTanh without alpha / beta take the spec's defaults (ThresholdedRelu 1, Affine 1 and 0, ScaledTanh 1 and 1)", async () => {
    for (const [name, alpha, beta] of [['ThresholdedRelu', [1], undefined], ['Affine', [1], [0]], ['ScaledTanh', [1], [1]]] as const) {
      const implicit = build({ op: 'RNN', activations: [name], weightScale: 3 });
      const explicit = build({ op: 'RNN', activations: [name], weightScale: 3, alpha: [...alpha], beta: beta && [...beta] });
      const a = await runTernion(implicit.bytes, implicit.feeds), b = await runTernion(explicit.bytes, explicit.feeds);
      expect(maxAbs(b.Y.data), name).toBeGreaterThan(0.1);
      expect(Array.from(a.Y.data), name).toEqual(Array.from(b.Y.data));
    }
    const scaled = build({ op: 'RNN', activations: ['ScaledTanh'], weightScale: 3 }), tanh = build({ op: 'RNN', activations: ['Tanh'], weightScale: 3 });
    expect(maxDiff((await runTernion(scaled.bytes, scaled.feeds)).Y.data, (await runOrt(tanh.bytes, tanh.feeds)).Y.data)).toBeLessThanOrEqual(1e-5);
  });

  it('alpha and beta are consumed in order by the functions that take them (LSTM and GRU, both directions)', async () => {
    await matchesOnnxruntime({
      op: 'LSTM', direction: 'bidirectional', bias: true, initialH: true, initialC: true, peepholes: true,
      activations: ['HardSigmoid', 'LeakyRelu', 'Softsign', 'Sigmoid', 'ScaledTanh', 'Elu'], alpha: [0.25, 0.1, 0.9, 0.7], beta: [0.45, 1.2],
    });
    await matchesOnnxruntime({
      op: 'GRU', direction: 'bidirectional', linearBeforeReset: true, bias: true, layout: 1,
      activations: ['Sigmoid', 'Affine', 'HardSigmoid', 'Softplus'], alpha: [0.5, 0.2], beta: [0.1, 0.5],
    });
    // Activation names are matched ignoring case, as onnxruntime's LSTM does.
    await matchesOnnxruntime({ op: 'LSTM', activations: ['sigmoid', 'TANH', 'Relu'] });
  });
});

describe('recurrent ops against onnxruntime: inputs, outputs and opsets', () => {
  it('only some outputs: Y_h alone, Y_c alone, Y and Y_c with Y_h omitted', async () => {
    await matchesOnnxruntime({ op: 'LSTM', direction: 'bidirectional', lens: [3, 5, 1], outputs: ['Y_h'], bias: true });
    await matchesOnnxruntime({ op: 'LSTM', direction: 'reverse', lens: [3, 5, 1], outputs: ['Y_c'], initialC: true, layout: 1 });
    await matchesOnnxruntime({ op: 'LSTM', outputs: ['Y', 'Y_c'], initialH: true, initialC: true });
    await matchesOnnxruntime({ op: 'GRU', direction: 'bidirectional', outputs: ['Y_h'], lens: [4, 5, 2] });
    await matchesOnnxruntime({ op: 'RNN', direction: 'reverse', outputs: ['Y'], initialH: true });
  });

  it('W, R, B and P as graph inputs with every optional input, batch 3', async () => {
    await matchesOnnxruntime({ op: 'LSTM', direction: 'bidirectional', weightsAsInputs: true, bias: true, peepholes: true, lens: [5, 4, 1], initialH: true, initialC: true, layout: 1 });
    await matchesOnnxruntime({ op: 'GRU', direction: 'bidirectional', weightsAsInputs: true, bias: true, lens: [2, 5, 3], initialH: true });
    await matchesOnnxruntime({ op: 'GRU', linearBeforeReset: true, direction: 'reverse', weightsAsInputs: true, bias: true, lens: [2, 5, 3], initialH: true });
  });

  it('opset 7 (no layout attribute) and opset 21', async () => {
    for (const op of ['LSTM', 'GRU', 'RNN'] as Op[]) {
      await matchesOnnxruntime({ op, opset: 7, direction: 'bidirectional', bias: true, lens: [5, 3, 4], initialH: true, initialC: true });
      await matchesOnnxruntime({ op, opset: 21, direction: 'reverse', bias: true, layout: 1, initialH: true });
    }
  });

  // On 2 threads a bidirectional layer runs its directions at once, and a step of 2^20
  // multiply-adds or more (batch 8 x 4 * 192 x 192 here) is split over the threads.
  it('wider layers and longer sequences on 1 and 2 threads: directions at once, steps split', async () => {
    const cases: Case[] = [
      { op: 'LSTM', direction: 'bidirectional', hidden: 64, input: 24, seq: 40, batch: 2, bias: true, lens: [40, 17] },
      { op: 'LSTM', hidden: 192, input: 24, seq: 12, batch: 8, bias: true, lens: [12, 3, 12, 7, 1, 12, 9, 12], initialH: true, initialC: true },
      { op: 'GRU', linearBeforeReset: true, direction: 'reverse', hidden: 224, input: 16, seq: 10, batch: 8, bias: true, lens: [10, 4, 10, 10, 2, 6, 10, 8] },
    ];
    for (const c of cases) {
      const { bytes, feeds, outputs } = build(c);
      const want = await runOrt(bytes, feeds);
      for (const threads of [1, 2]) {
        const got = await runTernion(bytes, feeds, threads);
        for (const name of outputs) expectClose(`${c.op} ${name} (${threads} threads)`, got[name], want[name]);
      }
    }
  });

  it('a float16 model runs widened to float32: as the float32 model of the same values, to half precision', async () => {
    const c: Case = { op: 'LSTM', direction: 'bidirectional', bias: true, peepholes: true, initialH: true, initialC: true, lens: [5, 2, 4], weightScale: 2 };
    const half = build({ ...c, half: 'types' }), float = build({ ...c, half: 'values' });
    const got = await runTernion(half.bytes, half.feeds), want = await runOrt(float.bytes, float.feeds);
    for (const name of ['Y', 'Y_h', 'Y_c']) {
      expect(maxDiff(got[name].data, want[name].data), name).toBeLessThanOrEqual(1e-3 * maxAbs(want[name].data));
      expect(maxAbs(want[name].data)).toBeGreaterThan(0.05);
    }
  });

  it('hidden_size left off the node comes from R (onnxruntime needs the attribute: compared with the same node that has it)', async () => {
    const c: Case = { op: 'GRU', direction: 'bidirectional', bias: true, initialH: true, lens: [5, 2, 3] };
    const withIt = build(c), without = build({ ...c, omitHiddenSize: true });
    const a = await runTernion(withIt.bytes, withIt.feeds), b = await runTernion(without.bytes, without.feeds);
    for (const name of ['Y', 'Y_h']) expect(Array.from(b[name].data)).toEqual(Array.from(a[name].data));
  });
});

describe('recurrent ops: shapes', () => {
  it('symbolic seq and batch flow to Y, Y_h and Y_c in both layouts, and runs at two sizes match onnxruntime', async () => {
    const H = 5, I = 3;
    const random = rng(7);
    const weights = (n: number) => Array.from({ length: n }, () => random() - 0.5);
    const initializers: TensorSpec[] = [
      { name: 'W', dims: [2, 4 * H, I], floatData: weights(2 * 4 * H * I) },
      { name: 'R', dims: [2, 4 * H, H], floatData: weights(2 * 4 * H * H) },
      { name: 'B', dims: [2, 8 * H], floatData: weights(2 * 8 * H) },
    ];
    const model = (layout: 0 | 1) => encodeModel({
      opset: 14,
      nodes: [{ op: 'LSTM', name: 'lstm', inputs: ['X', 'W', 'R', 'B'], outputs: ['Y', 'Y_h', 'Y_c'], attributes: [strAttr('direction', 'bidirectional'), intAttr('hidden_size', H), intAttr('layout', layout)] }],
      inputs: [valueInfo('X', layout === 0 ? ['seq', 'N', I] : ['N', 'seq', I])],
      outputs: [valueInfo('Y', ['?a', '?b', '?c', '?d']), valueInfo('Y_h', ['?e', '?f', '?g']), valueInfo('Y_c', ['?h', '?i', '?j'])],
      initializers,
    });
    for (const layout of [0, 1] as const) {
      const bytes = model(layout);
      const shapes = inferShapes(loadOnnxModel(bytes)).valueInfo;
      expect(shapes.get('Y')?.shape).toEqual(layout === 0 ? ['seq', 2, 'N', H] : ['N', 'seq', 2, H]);
      expect(shapes.get('Y_h')?.shape).toEqual(layout === 0 ? [2, 'N', H] : ['N', 2, H]);
      expect(shapes.get('Y_c')?.shape).toEqual(layout === 0 ? [2, 'N', H] : ['N', 2, H]);
      for (const [seq, batch] of [[4, 2], [9, 1]]) {
        const dims = layout === 0 ? [seq, batch, I] : [batch, seq, I];
        const feeds: Built['feeds'] = { X: { type: 'float32', data: Float32Array.from({ length: seq * batch * I }, (_, i) => Math.sin(i)), dims } };
        const want = await runOrtInLayout(model(0), feeds, layout), got = await runTernion(bytes, feeds);
        for (const name of ['Y', 'Y_h', 'Y_c']) expectClose(`${name} at seq ${seq} batch ${batch}`, got[name], want[name]);
      }
    }
  });

  it('bench counts a recurrent layer: seq * directions * gates * hidden * (input + hidden) MACs per sample', () => {
    const { bytes } = build({ op: 'GRU', direction: 'bidirectional', seq: 5, input: 4, hidden: 7 });
    expect(countMacs(loadOnnxModel(bytes)).perSample).toBe(5 * 2 * 3 * 7 * (4 + 7));
  });
});

describe('recurrent models as PyTorch exports them', () => {
  const fixtures: { file: string; feeds: (batch: number, seq: number) => Built['feeds']; outputs: string[] }[] = [
    {
      file: 'torch-lstm-2layer-bidirectional.onnx',
      outputs: ['y', 'h', 'c'],
      feeds: (batch, seq) => ({
        x: { type: 'float32', data: Float32Array.from({ length: batch * seq * 10 }, (_, i) => Math.sin(i * 0.7)), dims: [batch, seq, 10] },
        h0: { type: 'float32', data: Float32Array.from({ length: 4 * batch * 16 }, (_, i) => 0.5 * Math.cos(i)), dims: [4, batch, 16] },
        c0: { type: 'float32', data: Float32Array.from({ length: 4 * batch * 16 }, (_, i) => Math.sin(i * 0.3)), dims: [4, batch, 16] },
      }),
    },
    {
      file: 'torch-gru-2layer.onnx',
      outputs: ['y', 'h'],
      feeds: (batch, seq) => ({ x: { type: 'float32', data: Float32Array.from({ length: seq * batch * 10 }, (_, i) => Math.cos(i * 1.3)), dims: [seq, batch, 10] } }),
    },
    {
      file: 'torch-rnn-relu-bidirectional.onnx',
      outputs: ['y', 'h'],
      feeds: (batch, seq) => ({
        x: { type: 'float32', data: Float32Array.from({ length: seq * batch * 10 }, (_, i) => Math.sin(i * 0.9)), dims: [seq, batch, 10] },
        h0: { type: 'float32', data: Float32Array.from({ length: 2 * batch * 9 }, (_, i) => 0.3 * Math.sin(i)), dims: [2, batch, 9] },
      }),
    },
  ];
  for (const f of fixtures) {
    it(`${f.file} at two batch sizes and lengths`, async () => {
      const bytes = readFileSync(join(FIXTURES, f.file));
      const ops = loadOnnxModel(bytes).nodes.map((n) => n.opType);
      expect(ops.filter((o) => ['LSTM', 'GRU', 'RNN'].includes(o)).length).toBe(f.file.includes('rnn-relu') ? 1 : 2);
      for (const [batch, seq] of [[3, 6], [1, 11]]) {
        const feeds = f.feeds(batch, seq);
        const want = await runOrt(bytes, feeds), got = await runTernion(bytes, feeds);
        for (const name of f.outputs) expectClose(`${name} at batch ${batch} seq ${seq}`, got[name], want[name]);
      }
    });
  }
});

describe('recurrent ops: malformed nodes are refused, naming the node and the problem', () => {
  const create = (c: Case) => InferenceSession.create(build(c).bytes);

  it('hidden_size that W and R do not have (at load)', async () => {
    const wrong = encodeModel({
      opset: 14,
      nodes: [{ op: 'LSTM', name: 'cell', inputs: ['X', 'W', 'R'], outputs: ['Y'], attributes: [intAttr('hidden_size', 8)] }],
      inputs: [valueInfo('X', [5, 3, 5])],
      outputs: [valueInfo('Y', [5, 1, 3, 8])],
      initializers: [{ name: 'W', dims: [1, 28, 5], floatData: new Array(140).fill(0.1) }, { name: 'R', dims: [1, 28, 7], floatData: new Array(196).fill(0.1) }],
    });
    await expectRejection(InferenceSession.create(wrong), 'ERR_SHAPE_MISMATCH', /Node "cell" \(LSTM\): W \[1,28,5\] must be \[num_directions, 4 \* hidden_size, input_size\], here \[1,32,5\]/);
  });

  it('hidden_size that a W fed at run does not have (the executor checks)', async () => {
    const bytes = encodeModel({
      opset: 14,
      nodes: [{ op: 'GRU', name: 'gru', inputs: ['X', 'W', 'R'], outputs: ['Y'], attributes: [intAttr('hidden_size', 4)] }],
      inputs: [valueInfo('X', [2, 1, 3]), valueInfo('W', ['a', 'b', 'c']), valueInfo('R', ['d', 'e', 'f'])],
      outputs: [valueInfo('Y', [2, 1, 1, 4])],
    });
    const session = await InferenceSession.create(bytes);
    const x = new Tensor('float32', new Float32Array(6), [2, 1, 3]);
    await expectRejection(
      session.run({ X: x, W: new Tensor('float32', new Float32Array(45), [1, 15, 3]), R: new Tensor('float32', new Float32Array(48), [1, 12, 4]) }),
      'ERR_SHAPE_MISMATCH', /GRU node 'gru': W \[1, 15, 3\] must be \[num_directions, 3 \* hidden_size, input_size\] = \[1, 12, 3\]/,
    );
    await session.release();
  });

  it('an unknown activation, a wrong activation count, an unknown direction, layout before opset 14', async () => {
    await expectRejection(create({ op: 'LSTM', activations: ['Sigmoid', 'Swish', 'Tanh'] }), 'ERR_MODEL_FORMAT', /Node "cell" \(LSTM\): unknown activation "Swish" \(expected one of Relu, Tanh, Sigmoid, Affine/);
    await expectRejection(create({ op: 'GRU', direction: 'bidirectional', activations: ['Sigmoid', 'Tanh'] }), 'ERR_MODEL_FORMAT', /Node "cell" \(GRU\): activations lists 2 functions, expected 4 \(2 per direction\)/);
    const model = encodeModel({
      opset: 14,
      nodes: [{ op: 'RNN', name: 'rnn', inputs: ['X', 'W', 'R'], outputs: ['Y'], attributes: [intAttr('hidden_size', 7), strAttr('direction', 'sideways')] }],
      inputs: [valueInfo('X', [5, 3, 4])],
      outputs: [valueInfo('Y', [5, 1, 3, 7])],
      initializers: [{ name: 'W', dims: [1, 7, 4], floatData: new Array(28).fill(0.1) }, { name: 'R', dims: [1, 7, 7], floatData: new Array(49).fill(0.1) }],
    });
    await expectRejection(InferenceSession.create(model), 'ERR_MODEL_FORMAT', /Node "rnn" \(RNN\): direction "sideways" is not one of forward, reverse, bidirectional/);
    const layout = encodeModel({
      opset: 13,
      nodes: [{ op: 'RNN', name: 'rnn', inputs: ['X', 'W', 'R'], outputs: ['Y'], attributes: [intAttr('hidden_size', 7), intAttr('layout', 1)] }],
      inputs: [valueInfo('X', [5, 3, 4])],
      outputs: [valueInfo('Y', [5, 1, 3, 7])],
      initializers: [{ name: 'W', dims: [1, 7, 4], floatData: new Array(28).fill(0.1) }, { name: 'R', dims: [1, 7, 7], floatData: new Array(49).fill(0.1) }],
    });
    await expectRejection(InferenceSession.create(layout), 'ERR_MODEL_FORMAT', /the layout attribute exists from opset 14 \(the model imports opset 13\)/);
  });

  it('sequence_lens of the wrong type (at load) or out of range (at run)', async () => {
    const int64Lens = encodeModel({
      opset: 14,
      nodes: [{ op: 'LSTM', name: 'cell', inputs: ['X', 'W', 'R', '', 'lens'], outputs: ['Y'], attributes: [intAttr('hidden_size', 7)] }],
      inputs: [valueInfo('X', [5, 3, 4]), valueInfo('lens', [3], INT64)],
      outputs: [valueInfo('Y', [5, 1, 3, 7])],
      initializers: [{ name: 'W', dims: [1, 28, 4], floatData: new Array(112).fill(0.1) }, { name: 'R', dims: [1, 28, 7], floatData: new Array(196).fill(0.1) }],
    });
    await expectRejection(InferenceSession.create(int64Lens), 'ERR_DTYPE', /Node "cell" \(LSTM\): sequence_lens is int64, expected int32/);

    const { bytes, feeds } = build({ op: 'GRU', lens: [5, 2, 3] });
    const session = await InferenceSession.create(bytes);
    const tensors = Object.fromEntries(Object.entries(feeds).map(([n, f]) => [n, new Tensor(f.type, f.data, f.dims)]));
    for (const [lens, bad] of [[[5, 6, 3], /sequence_lens\[1\] = 6 is outside \[0, seq_length = 5\]/], [[5, 2, -1], /sequence_lens\[2\] = -1 is outside \[0, seq_length = 5\]/]] as const) {
      const run = session.run({ ...tensors, sequence_lens: new Tensor('int32', Int32Array.from(lens), [3]) });
      await expectRejection(run, 'ERR_SHAPE_MISMATCH', new RegExp(`GRU node 'cell': ${bad.source}`));
    }
    await session.release();
  });
});
