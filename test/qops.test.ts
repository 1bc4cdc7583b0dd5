// The quantized layer ops TernionQConv / TernionQGemm (native/exec/ops/qconv.cc, qgemm.cc,
// quant-common.h), run as one-node plans through the addon's NativeSession.
//
// Reference: the same activation quantization computed here in fp32 arithmetic (it is exact
// and must match the native q bit for bit), dequantized activations s_x * (q - zp), the
// layer's dequantized weights in the ORIGINAL weight layout (lib/quantize/weights), and a
// plain direct convolution / matrix product in double. The native result may differ only by
// fp32 rounding: |got - ref| <= 1e-6 * (sum of |terms| + |bias| + |residual|) + 1e-7, far below
// what one misplaced column or one wrongly quantized activation would cost.
import { describe, expect, it } from 'vitest';
import { native } from '../lib/native';
import { quantizeWeights } from '../lib/quantize/weights';
import type { QuantizedWeights, WeightQuantOptions } from '../lib/quantize/weights';
import { expectCode, rng } from './helpers';

const f32 = Math.fround;

// ---------------------------------------------------------------- plans

interface TensorIn {
  dtype: 'float32' | 'int8' | 'uint8';
  dims: number[];
  data: Float32Array | Int8Array | Uint8Array;
  constant?: boolean;
}
type AttrValue = number | string | number[];
type Attrs = Record<string, AttrValue | { type: string; value: AttrValue }>;

function attrOf(key: string, v: AttrValue | { type: string; value: AttrValue }) {
  if (typeof v === 'object' && !Array.isArray(v)) return v;
  if (typeof v === 'string') return { type: 'string', value: v };
  if (Array.isArray(v)) return { type: 'ints', value: v };
  const floats = ['act_scale'];
  return { type: floats.includes(key) ? 'float' : 'int', value: v };
}

interface NativeSessionLike {
  runSync(feeds: unknown[]): { dtype: string; dims: number[]; data: Float32Array }[];
}

function session(op: string, attrs: Attrs, inputs: (TensorIn | null | undefined)[], opts: { threads?: number; isa?: string } = {}) {
  const values: { name: string; dtype: string }[] = [];
  const constants: unknown[] = [];
  const graphInputs: number[] = [];
  const feeds: unknown[] = [];
  const ids = inputs.map((t, i) => {
    if (!t) return -1;
    const id = values.length;
    values.push({ name: `in${i}`, dtype: t.dtype });
    if (t.constant) constants.push({ id, dtype: t.dtype, dims: t.dims, data: t.data });
    else {
      graphInputs.push(id);
      feeds.push({ dtype: t.dtype, dims: t.dims, data: t.data });
    }
    return id;
  });
  const out = values.length;
  values.push({ name: 'y', dtype: 'float32' });
  const a: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(attrs)) a[k] = attrOf(k, v);
  const plan = {
    values, constants, inputs: graphInputs, outputs: [out],
    nodes: [{ op, name: 'q', opset: 13, attrs: a, inputs: ids, outputs: [out] }],
  };
  const NativeSession = (native() as unknown as { NativeSession: new (p: unknown, o: unknown) => NativeSessionLike }).NativeSession;
  const s = new NativeSession(plan, { threads: opts.threads ?? 1, ...(opts.isa ? { isa: opts.isa } : {}) });
  return { run: () => s.runSync(feeds)[0] };
}

// ---------------------------------------------------------------- weights as node inputs

/** Attributes and inputs 1, 2, 5, 6 of a quantized layer (the op contract). */
function weightInputs(layer: QuantizedWeights): { attrs: Attrs; inputs: Record<number, TensorIn> } {
  const { rows: Co, K, G } = layer;
  const codes: TensorIn = { dtype: 'int8', dims: [Co, K], data: layer.codes, constant: true };
  const slots = [Co, K / G];
  if (layer.form === 'per-channel') {
    return {
      attrs: { weight_bits: 8, form: 'per-channel' },
      inputs: { 1: codes, 2: { dtype: 'float32', dims: [Co], data: layer.channelScale, constant: true } },
    };
  }
  const attrs: Attrs = { weight_bits: layer.bits, group_size: G, form: layer.form, asym: layer.asym ? 1 : 0 };
  if (layer.form === 'group-scaled') {
    const inputs: Record<number, TensorIn> = { 1: codes, 2: { dtype: 'float32', dims: slots, data: layer.scalePos, constant: true } };
    if (layer.scaleNeg) inputs[5] = { dtype: 'float32', dims: slots, data: layer.scaleNeg, constant: true };
    return { attrs, inputs };
  }
  const inputs: Record<number, TensorIn> = {
    1: codes,
    2: { dtype: 'int8', dims: slots, data: layer.multPos, constant: true },
    6: { dtype: 'float32', dims: [Co], data: layer.channelScale, constant: true },
  };
  if (layer.multNeg) inputs[5] = { dtype: 'int8', dims: slots, data: layer.multNeg, constant: true };
  return { attrs, inputs };
}

function inputList(n: number, byIndex: Record<number, TensorIn | undefined>): (TensorIn | null)[] {
  const list: (TensorIn | null)[] = [];
  for (let i = 0; i < n; i++) list.push(byIndex[i] ?? null);
  while (list.length && list[list.length - 1] === null) list.pop();
  return list;
}

// ---------------------------------------------------------------- activation quantization

function roundHalfEven(v: number): number {
  const f = Math.floor(v), d = v - f;
  if (d < 0.5) return f;
  if (d > 0.5) return f + 1;
  return f % 2 === 0 ? f : f + 1;
}

interface ActQ { scale: number; zp: number; qmax: number }

function actParams(x: Float32Array, bits: number, fixed?: { scale: number; zp: number }): ActQ {
  const qmax = (1 << bits) - 1;
  if (fixed) return { scale: f32(fixed.scale), zp: fixed.zp, qmax };
  let lo = 0, hi = 0;
  for (const v of x) { if (v < lo) lo = v; if (v > hi) hi = v; }
  if (hi === lo) return { scale: 1, zp: 0, qmax };
  const scale = f32(f32(hi - lo) / qmax);
  const zp = Math.min(Math.max(roundHalfEven(f32(-lo / scale)), 0), qmax);
  return { scale, zp, qmax };
}

const f32Bits = new Float32Array(1), i32Bits = new Int32Array(f32Bits.buffer);
/** The float32 next to finite float32 v, towards +inf (up) or -inf. */
function nextFloat32(v: number, up: boolean): number {
  if (v === 0) return up ? 1.401298464324817e-45 : -1.401298464324817e-45;
  f32Bits[0] = v;
  i32Bits[0] += (v > 0) === up ? 1 : -1;
  return f32Bits[0];
}

/** fmaf(a, b, c) on float32 values, rounded once: a * b is exact in float64 (48 bits), the sum's
 *  rounding error is recovered exactly (TwoSum), and where the float64 sum landed on a midpoint
 *  between two float32 values, the error says which side the exact sum lies on. */
function fmaf(a: number, b: number, c: number): number {
  const p = a * b, s = p + c;
  const r = f32(s);
  if (!Number.isFinite(s) || r === s) return r;
  const bb = s - p, e = (p - (s - bb)) + (c - bb);
  if (e === 0) return r;
  const other = nextFloat32(r, s > r);
  if ((r + other) / 2 !== s) return r;  // not a midpoint: one rounding gives the same float32
  return e > 0 ? Math.max(r, other) : Math.min(r, other);
}

/** s_x * (q - zp) for every element: the activations the integer GEMM sees, dequantized. The
 *  quantization of kernels.h: q = round_half_even(clamp(fmaf(x, 1 / scale, zp), 0, qmax)). */
function fakeQuant(x: Float32Array, a: ActQ): Float64Array {
  const out = new Float64Array(x.length);
  const r = f32(1 / a.scale);
  for (let i = 0; i < x.length; i++) {
    const q = roundHalfEven(Math.min(Math.max(fmaf(x[i], r, a.zp), 0), a.qmax));
    out[i] = a.scale * (q - a.zp);
  }
  return out;
}

// ---------------------------------------------------------------- references

type Act = { kind: 'none' } | { kind: 'relu' } | { kind: 'clip'; lo: number; hi: number } | { kind: 'leaky'; alpha: number };
function applyAct(v: number, act: Act): number {
  switch (act.kind) {
    case 'relu': return v < 0 ? 0 : v;
    case 'clip': return Math.min(Math.max(v, act.lo), act.hi);
    case 'leaky': return v < 0 ? v * f32(act.alpha) : v;
    default: return v;
  }
}
function actAttrs(act: Act): Attrs {
  switch (act.kind) {
    case 'relu': return { activation: 'Relu' };
    case 'clip': return { activation: 'Clip', activation_params: { type: 'floats', value: [act.lo, act.hi] } };
    case 'leaky': return { fused_activation: 3, fused_alpha: { type: 'float', value: act.alpha } };
    default: return {};
  }
}

interface ConvCase {
  N: number; Cin: number; Co: number; H: number; W: number; kh: number; kw: number;
  strides?: number[]; pads?: number[]; dilations?: number[]; group?: number; autoPad?: string;
  oneD?: boolean;  // a 1-D conv over W (H must be 1, kh 1)
  weights: WeightQuantOptions;
  bias?: boolean; biasInput?: boolean; residual?: boolean; act?: Act;
  /** The op quantizes the residual with these parameters (residual_scale ...) before adding it. */
  residualQuant?: { scale: number; zp: number };
  actBits?: number; actStatic?: { scale: number; zp: number };
  threads?: number; seed?: number;
}

interface RefResult { y: Float64Array; mag: Float64Array; dims: number[] }

function gaussian(r: () => number, n: number, sigma = 1, mean = 0): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = r() || 1e-12, v = r();
    a[i] = mean + sigma * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
  return a;
}

function convGeometry(c: ConvCase) {
  const sh = c.oneD ? 1 : c.strides?.[0] ?? 1, sw = c.strides?.[c.oneD ? 0 : 1] ?? 1;
  const dh = c.oneD ? 1 : c.dilations?.[0] ?? 1, dw = c.dilations?.[c.oneD ? 0 : 1] ?? 1;
  let pt = 0, pl = 0, pb = 0, pr = 0;
  if (c.pads) {
    if (c.oneD) [pl, pr] = c.pads;
    else [pt, pl, pb, pr] = c.pads;
  }
  let OH: number, OW: number;
  if (c.autoPad === 'SAME_UPPER') {
    OH = Math.ceil(c.H / sh); OW = Math.ceil(c.W / sw);
    const th = Math.max(0, (OH - 1) * sh + (c.kh - 1) * dh + 1 - c.H), tw = Math.max(0, (OW - 1) * sw + (c.kw - 1) * dw + 1 - c.W);
    pt = Math.floor(th / 2); pb = th - pt; pl = Math.floor(tw / 2); pr = tw - pl;
  } else {
    OH = Math.floor((c.H + pt + pb - ((c.kh - 1) * dh + 1)) / sh) + 1;
    OW = Math.floor((c.W + pl + pr - ((c.kw - 1) * dw + 1)) / sw) + 1;
  }
  return { sh, sw, dh, dw, pt, pl, OH, OW };
}

function convReference(c: ConvCase, xq: Float64Array, w: Float32Array, bias: Float32Array | null, res: Float32Array | null): RefResult {
  const { N, Cin, Co, H, W, kh: KH, kw: KW } = c;
  const group = c.group ?? 1, Cg = Cin / group, Mg = Co / group;
  const g = convGeometry(c);
  const y = new Float64Array(N * Co * g.OH * g.OW), mag = new Float64Array(y.length);
  for (let n = 0; n < N; n++) for (let co = 0; co < Co; co++) {
    const gi = Math.floor(co / Mg);
    for (let oh = 0; oh < g.OH; oh++) for (let ow = 0; ow < g.OW; ow++) {
      let s = bias ? bias[co] : 0, m = Math.abs(s);
      for (let ci = 0; ci < Cg; ci++) for (let kh = 0; kh < KH; kh++) for (let kw = 0; kw < KW; kw++) {
        const ih = oh * g.sh - g.pt + kh * g.dh, iw = ow * g.sw - g.pl + kw * g.dw;
        if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
        const t = w[((co * Cg + ci) * KH + kh) * KW + kw] * xq[((n * Cin + gi * Cg + ci) * H + ih) * W + iw];
        s += t; m += Math.abs(t);
      }
      const o = ((n * Co + co) * g.OH + oh) * g.OW + ow;
      if (res) { s += res[o]; m += Math.abs(res[o]); }
      y[o] = applyAct(s, c.act ?? { kind: 'none' });
      mag[o] = m;
    }
  }
  return { y, mag, dims: c.oneD ? [N, Co, g.OW] : [N, Co, g.OH, g.OW] };
}

function expectClose(got: { dims: number[]; data: Float32Array }, ref: RefResult, label: string) {
  expect(got.dims).toEqual(ref.dims);
  let worst = 0, at = -1;
  for (let i = 0; i < ref.y.length; i++) {
    const err = Math.abs(got.data[i] - ref.y[i]) / (1e-6 * ref.mag[i] + 1e-7);
    if (!(err <= worst)) { worst = err; at = i; }
  }
  expect(worst, `${label}: worst at ${at}: got ${got.data[at]}, want ${ref.y[at]} (mag ${ref.mag[at]})`).toBeLessThanOrEqual(1);
}

interface Built {
  attrs: Attrs; inputs: (TensorIn | null)[]; x: Float32Array; ref: RefResult; layer: QuantizedWeights;
}

function buildConv(c: ConvCase): Built {
  const r = rng(c.seed ?? 1);
  const group = c.group ?? 1, Cg = c.Cin / group;
  const wdims = c.oneD ? [c.Co, Cg, c.kw] : [c.Co, Cg, c.kh, c.kw];
  const layer = quantizeWeights(gaussian(r, c.Co * Cg * c.kh * c.kw, 0.2), wdims, c.weights);
  const x = gaussian(r, c.N * c.Cin * c.H * c.W, 1, 0.3);
  const bias = c.bias ? gaussian(r, c.Co, 0.5) : null;
  const g = convGeometry(c);
  const res = c.residual ? gaussian(r, c.N * c.Co * g.OH * g.OW) : null;
  const a = actParams(x, c.actBits ?? 8, c.actStatic);
  const resAdded = res && c.residualQuant ? Float32Array.from(fakeQuant(res, actParams(res, 8, c.residualQuant))) : res;
  const ref = convReference(c, fakeQuant(x, a), layer.dequantized(), bias, resAdded);
  const w = weightInputs(layer);
  const attrs: Attrs = {
    ...w.attrs, ...actAttrs(c.act ?? { kind: 'none' }),
    kernel_shape: c.oneD ? [c.kw] : [c.kh, c.kw],
    in_channels: Cg, padded_channels: layer.layout.paddedInputChannels,
  };
  if (c.strides) attrs.strides = c.strides;
  if (c.pads) attrs.pads = c.pads;
  if (c.dilations) attrs.dilations = c.dilations;
  if (c.group) attrs.group = c.group;
  if (c.autoPad) attrs.auto_pad = c.autoPad;
  if (c.actBits) attrs.act_bits = c.actBits;
  if (c.residualQuant) {
    attrs.residual_scale = { type: 'float', value: c.residualQuant.scale };
    attrs.residual_zero_point = c.residualQuant.zp;
  }
  if (c.actStatic) {
    attrs.act_mode = 'static';
    attrs.act_scale = { type: 'float', value: c.actStatic.scale };
    attrs.act_zero_point = c.actStatic.zp;
  }
  const xdims = c.oneD ? [c.N, c.Cin, c.W] : [c.N, c.Cin, c.H, c.W];
  const byIndex: Record<number, TensorIn | undefined> = {
    ...w.inputs,
    0: { dtype: 'float32', dims: xdims, data: x },
    3: bias ? { dtype: 'float32', dims: [c.Co], data: bias, constant: !c.biasInput } : undefined,
    4: res ? { dtype: 'float32', dims: ref.dims, data: res } : undefined,
  };
  return { attrs, inputs: inputList(7, byIndex), x, ref, layer };
}

function checkConv(label: string, c: ConvCase) {
  const b = buildConv(c);
  const got = session('TernionQConv', b.attrs, b.inputs, { threads: c.threads ?? 1 }).run();
  expectClose(got, b.ref, label);
  return { b, got };
}

// ---------------------------------------------------------------- conv cases

const base = { N: 1, Cin: 6, Co: 5, H: 6, W: 5, kh: 3, kw: 3, pads: [1, 1, 1, 1], bias: true };

describe('TernionQConv matches the dequantized reference', () => {
  it('int8 per-channel weights, 3x3 pad 1', () => {
    checkConv('int8', { ...base, weights: { bits: 8 } });
  });
  it('ternary group-scaled symmetric, G = 4, Cin 6 padded to 8, stride 2, uneven pads', () => {
    checkConv('tern gs G4', { ...base, H: 7, W: 8, strides: [2, 2], pads: [1, 0, 2, 1], weights: { bits: 2, groupSize: 4 } });
  });
  it('ternary group-scaled asymmetric, G = 16, Cin 20 padded to 32, dilation 2', () => {
    checkConv('tern gs asym G16', { ...base, Cin: 20, Co: 9, H: 8, W: 7, dilations: [2, 2], pads: [2, 2, 1, 1], weights: { bits: 2, groupSize: 16, asymmetric: true } });
  });
  it('ternary folded symmetric G = 4 and asymmetric G = 64 (Cin 70 padded to 128)', () => {
    checkConv('tern folded G4', { ...base, Cin: 7, weights: { bits: 2, groupSize: 4, form: 'folded' } });
    checkConv('tern folded asym G64', { ...base, Cin: 70, Co: 6, H: 4, W: 4, weights: { bits: 2, groupSize: 64, form: 'folded', asymmetric: true } });
  });
  it('4-bit group-scaled G = 16 and folded G = 4', () => {
    checkConv('int4 gs G16', { ...base, Cin: 16, Co: 17, weights: { bits: 4, groupSize: 16 } });
    checkConv('int4 folded G4', { ...base, Cin: 9, weights: { bits: 4, groupSize: 4, form: 'folded' } });
  });
  it('group size "filter" (G = K, no channel padding)', () => {
    const { b } = checkConv('tern filter', { ...base, Cin: 5, weights: { bits: 2, groupSize: 'filter' } });
    expect(b.layer.G).toBe(b.layer.K);
    checkConv('int4 filter folded', { ...base, Cin: 3, weights: { bits: 4, groupSize: 'filter', form: 'folded' } });
  });
  it('a 3-channel image input (an RGB stem): planes staged pixel-major, unpadded (int8) and padded to 4 (G = 4)', () => {
    const rgb = { ...base, Cin: 3, Co: 7, H: 9, W: 11, strides: [2, 2], pads: [1, 1, 1, 1] };
    expect(checkConv('rgb int8', { ...rgb, weights: { bits: 8 } }).b.layer.layout.paddedInputChannels).toBe(3);
    expect(checkConv('rgb int8 2 threads', { ...rgb, N: 2, H: 31, W: 29, threads: 2, weights: { bits: 8 } }).b.layer.layout.paddedInputChannels).toBe(3);
    expect(checkConv('rgb tern G4', { ...rgb, N: 2, threads: 2, weights: { bits: 2, groupSize: 4 } }).b.layer.layout.paddedInputChannels).toBe(4);
  });
  it('pointwise 1x1 (no im2col) with padded channels, and 1x1 stride 2', () => {
    checkConv('1x1', { ...base, Cin: 10, Co: 20, kh: 1, kw: 1, pads: undefined, weights: { bits: 2, groupSize: 4 } });
    checkConv('1x1 s2', { ...base, Cin: 10, Co: 6, H: 7, W: 7, kh: 1, kw: 1, pads: undefined, strides: [2, 2], weights: { bits: 2, groupSize: 4, form: 'folded' } });
  });
  it('batch 2, residual + ReLU, 2 threads; bias as a run-time input', () => {
    checkConv('res relu', { ...base, N: 2, Cin: 12, Co: 19, H: 9, W: 9, residual: true, act: { kind: 'relu' }, threads: 2, weights: { bits: 2, groupSize: 4 } });
    // A quantized residual: the op adds (q - zp) * scale of its codes. The range of the gaussian
    // residual (about +-4) is clipped at +-2.4, so the reference's clamping shows too.
    const rq = { scale: 4.8 / 255, zp: 128 };
    const { b, got } = checkConv('res quantized', { ...base, N: 2, Cin: 12, Co: 19, H: 9, W: 9, residual: true, residualQuant: rq, act: { kind: 'relu' }, threads: 2, weights: { bits: 8 } });
    const plain = session('TernionQConv', Object.fromEntries(Object.entries(b.attrs).filter(([k]) => !k.startsWith('residual_'))), b.inputs, { threads: 2 }).run();
    expect(Array.from(got.data)).not.toEqual(Array.from(plain.data));
    checkConv('relu in epilogue', { ...base, N: 2, Cin: 12, Co: 19, act: { kind: 'relu' }, biasInput: true, threads: 2, weights: { bits: 4, groupSize: 4 } });
  });
  it('Clip and LeakyRelu activations, no bias', () => {
    checkConv('clip', { ...base, bias: false, act: { kind: 'clip', lo: -0.5, hi: 0.75 }, weights: { bits: 2, groupSize: 4 } });
    checkConv('leaky', { ...base, bias: false, act: { kind: 'leaky', alpha: 0.1 }, residual: true, weights: { bits: 8 } });
  });
  it('static activation quantization (calibrated scale and zero point, saturating)', () => {
    checkConv('static', { ...base, actStatic: { scale: 0.011, zp: 37 }, weights: { bits: 2, groupSize: 4, asymmetric: true } });
  });
  it('4-bit activations, dynamic and static', () => {
    checkConv('a4 dynamic', { ...base, actBits: 4, weights: { bits: 2, groupSize: 4 } });
    checkConv('a4 static', { ...base, actBits: 4, actStatic: { scale: 0.2, zp: 3 }, weights: { bits: 4, groupSize: 4, form: 'folded' } });
  });
  it('low-bit weights drop their padded channels: the same integers as running the padding as zero-point channels', () => {
    const cases: [string, number, WeightQuantOptions, boolean][] = [
      ['N > Cin (one group per position)', 20, { bits: 2, groupSize: 64 }, true],
      ['folded, groups cut to gcd(Cin, N)', 20, { bits: 2, groupSize: 16, form: 'folded' }, true],
      ['4-bit folded, Cin 6 of 8', 6, { bits: 4, groupSize: 4, form: 'folded' }, true],
      ['group-scaled, groups cut to gcd(Cin, N)', 20, { bits: 2, groupSize: 16, asymmetric: true }, false],
    ];
    for (const [label, Cin, weights, exact] of cases) {
      const b = buildConv({ ...base, Cin, Co: 7, actStatic: { scale: 0.02, zp: 100 }, weights });
      const P = b.attrs.padded_channels as number;
      expect(P, label).toBeGreaterThan(Cin);
      // The padding as real input channels holding 0, which quantizes to the zero point.
      const { H, W } = base;
      const xP = new Float32Array(P * H * W);
      xP.set(b.x);
      const inputs = [...b.inputs];
      inputs[0] = { dtype: 'float32', dims: [1, P, H, W], data: xP };
      const padded = session('TernionQConv', { ...b.attrs, in_channels: P }, inputs).run();
      const got = session('TernionQConv', b.attrs, b.inputs).run();
      expect(got.dims).toEqual(padded.dims);
      if (exact) expect(Array.from(got.data), label).toEqual(Array.from(padded.data));
      else for (let i = 0; i < got.data.length; i++) expect(Math.abs(got.data[i] - padded.data[i]), label).toBeLessThanOrEqual(1e-5 * (Math.abs(padded.data[i]) + 1));
      expectClose(got, b.ref, label);
    }
  });
  it('grouped conv (group 2), auto_pad SAME_UPPER and a 1-D conv', () => {
    checkConv('group 2', { ...base, Cin: 10, Co: 6, group: 2, weights: { bits: 2, groupSize: 4 } });
    checkConv('group 3 int8', { ...base, Cin: 6, Co: 9, group: 3, weights: { bits: 8 } });
    checkConv('same upper', { ...base, pads: undefined, autoPad: 'SAME_UPPER', strides: [2, 2], H: 7, W: 6, weights: { bits: 2, groupSize: 4, form: 'folded' } });
    checkConv('1-D', { ...base, oneD: true, H: 1, kh: 1, kw: 3, W: 11, pads: [2, 1], strides: [2], weights: { bits: 2, groupSize: 4 } });
  });
  it('larger layer: chunked pixels, threads 1 and 2 and the scalar kernels agree bit for bit', () => {
    const c: ConvCase = { ...base, N: 2, Cin: 24, Co: 33, H: 20, W: 18, weights: { bits: 2, groupSize: 8 }, residual: true, act: { kind: 'relu' } };
    const b = buildConv(c);
    const one = session('TernionQConv', b.attrs, b.inputs, { threads: 1 }).run();
    const two = session('TernionQConv', b.attrs, b.inputs, { threads: 2 }).run();
    const scalar = session('TernionQConv', b.attrs, b.inputs, { threads: 2, isa: 'scalar' }).run();
    expectClose(one, b.ref, 'big');
    expect(Array.from(two.data)).toEqual(Array.from(one.data));
    expect(Array.from(scalar.data)).toEqual(Array.from(one.data));
  });
  it('an all-zero input quantizes with scale 1, zero point 0', () => {
    const b = buildConv({ ...base, weights: { bits: 2, groupSize: 4 } });
    (b.inputs[0] as TensorIn).data = new Float32Array(b.x.length);
    const got = session('TernionQConv', b.attrs, b.inputs).run();
    const bias = b.inputs[3]!.data as Float32Array;
    const plane = got.data.length / 5;
    for (let i = 0; i < got.data.length; i++) expect(got.data[i]).toBe(bias[Math.floor(i / plane)]);
  });
});

// ---------------------------------------------------------------- gemm

interface GemmCase {
  xdims: number[]; Co: number; weights: WeightQuantOptions;
  bias?: boolean; residual?: boolean; act?: Act; actBits?: number; actStatic?: { scale: number; zp: number };
  threads?: number; seed?: number;
}

function buildGemm(c: GemmCase) {
  const r = rng(c.seed ?? 7);
  const Cin = c.xdims[c.xdims.length - 1];
  const M = c.xdims.reduce((a, b) => a * b, 1) / Cin;
  const layer = quantizeWeights(gaussian(r, c.Co * Cin, 0.2), [c.Co, Cin], c.weights);
  const x = gaussian(r, M * Cin, 1, 0.2);
  const bias = c.bias ? gaussian(r, c.Co, 0.5) : null;
  const res = c.residual ? gaussian(r, M * c.Co) : null;
  const a = actParams(x, c.actBits ?? 8, c.actStatic);
  const xq = fakeQuant(x, a);
  const w = layer.dequantized();
  const y = new Float64Array(M * c.Co), mag = new Float64Array(y.length);
  for (let m = 0; m < M; m++) for (let n = 0; n < c.Co; n++) {
    let s = bias ? bias[n] : 0, g = Math.abs(s);
    for (let k = 0; k < Cin; k++) { const t = w[n * Cin + k] * xq[m * Cin + k]; s += t; g += Math.abs(t); }
    if (res) { s += res[m * c.Co + n]; g += Math.abs(res[m * c.Co + n]); }
    y[m * c.Co + n] = applyAct(s, c.act ?? { kind: 'none' });
    mag[m * c.Co + n] = g;
  }
  const wi = weightInputs(layer);
  const attrs: Attrs = { ...wi.attrs, ...actAttrs(c.act ?? { kind: 'none' }), in_channels: Cin, padded_channels: layer.K };
  if (c.actBits) attrs.act_bits = c.actBits;
  if (c.actStatic) {
    attrs.act_mode = 'static';
    attrs.act_scale = { type: 'float', value: c.actStatic.scale };
    attrs.act_zero_point = c.actStatic.zp;
  }
  const ydims = [...c.xdims.slice(0, -1), c.Co];
  const inputs = inputList(7, {
    ...wi.inputs,
    0: { dtype: 'float32', dims: c.xdims, data: x },
    3: bias ? { dtype: 'float32', dims: [c.Co], data: bias, constant: true } : undefined,
    4: res ? { dtype: 'float32', dims: ydims, data: res } : undefined,
  });
  return { attrs, inputs, ref: { y, mag, dims: ydims } as RefResult, layer };
}

function checkGemm(label: string, c: GemmCase) {
  const b = buildGemm(c);
  expectClose(session('TernionQGemm', b.attrs, b.inputs, { threads: c.threads ?? 1 }).run(), b.ref, label);
  return b;
}

// A depthwise conv (one input and one output channel per group) with int8 weights runs on the
// depthwise kernel (table dw_q8) instead of one GEMM per channel.
describe('TernionQConv depthwise int8', () => {
  const dw = (c: Partial<ConvCase>): ConvCase => ({ ...base, Cin: 19, Co: 19, group: 19, H: 9, W: 7, weights: { bits: 8 }, ...c });
  it('matches the dequantized reference: strides, uneven pads, dilation, 1-D, 5x5', () => {
    checkConv('dw 3x3', dw({}));
    checkConv('dw s2', dw({ strides: [2, 2], pads: [1, 0, 2, 1] }));
    checkConv('dw dil2', dw({ Cin: 33, Co: 33, group: 33, dilations: [2, 2], pads: [2, 2, 2, 2] }));
    checkConv('dw 5x5 no pad', dw({ kh: 5, kw: 5, pads: undefined, H: 8, W: 8 }));
    checkConv('dw 1-D', dw({ oneD: true, H: 1, kh: 1, kw: 3, W: 13, pads: [1, 1] }));
  });
  it('batch 2, residual + ReLU6, static activations, 2 threads', () => {
    checkConv('dw res clip', dw({ N: 2, residual: true, act: { kind: 'clip', lo: 0, hi: 6 }, threads: 2 }));
    checkConv('dw static relu', dw({ N: 2, act: { kind: 'relu' }, actStatic: { scale: 0.02, zp: 40 }, threads: 2 }));
  });
  it('is bit-identical to the per-channel GEMM path, with threads 1 and 2 and the scalar kernels', () => {
    const c = dw({ N: 2, Cin: 40, Co: 40, group: 40, H: 23, W: 21, strides: [2, 1], act: { kind: 'relu' }, residual: true });
    const b = buildConv(c);
    const fast = session('TernionQConv', b.attrs, b.inputs, { threads: 1 }).run();
    expectClose(fast, b.ref, 'dw big');
    expect(Array.from(session('TernionQConv', b.attrs, b.inputs, { threads: 2 }).run().data)).toEqual(Array.from(fast.data));
    expect(Array.from(session('TernionQConv', b.attrs, b.inputs, { threads: 2, isa: 'scalar' }).run().data)).toEqual(Array.from(fast.data));
    // padded_channels 2 (a zero code beside each real one) sends the same layer down the GEMM path.
    const codes = b.inputs[1] as TensorIn, K = codes.dims[1];
    const wide = new Int8Array(codes.dims[0] * K * 2);
    for (let i = 0; i < codes.dims[0] * K; i++) wide[2 * i] = (codes.data as Int8Array)[i];
    const inputs = [...b.inputs];
    inputs[1] = { ...codes, dims: [codes.dims[0], 2 * K], data: wide };
    const gemm = session('TernionQConv', { ...b.attrs, padded_channels: 2 }, inputs, { threads: 1 }).run();
    expect(Array.from(gemm.data)).toEqual(Array.from(fast.data));
  });
});

describe('TernionQGemm matches the dequantized reference', () => {
  it('int8 per-channel, [M, K]', () => {
    checkGemm('int8', { xdims: [3, 20], Co: 9, weights: { bits: 8 }, bias: true });
  });
  it('ternary G = 16 with K 20 padded to 32, rank-3 input, ReLU, 2 threads', () => {
    const b = checkGemm('tern', { xdims: [2, 3, 20], Co: 11, weights: { bits: 2, groupSize: 16 }, bias: true, act: { kind: 'relu' }, threads: 2 });
    expect(b.layer.K).toBe(32);
  });
  it('ternary folded asymmetric G = 64, 4-bit group-scaled G = 4 with residual', () => {
    checkGemm('folded asym', { xdims: [5, 100], Co: 7, weights: { bits: 2, groupSize: 64, form: 'folded', asymmetric: true } });
    checkGemm('int4 res', { xdims: [4, 12], Co: 6, weights: { bits: 4, groupSize: 4 }, residual: true, act: { kind: 'relu' }, bias: true });
  });
  it('static and 4-bit activations, 1-D input', () => {
    checkGemm('static', { xdims: [3, 16], Co: 5, weights: { bits: 4, groupSize: 4, form: 'folded' }, actStatic: { scale: 0.02, zp: 100 } });
    checkGemm('a4', { xdims: [16], Co: 5, weights: { bits: 2, groupSize: 'filter' }, actBits: 4 });
  });
  it('larger M: threads 1 and 2 and scalar kernels agree bit for bit', () => {
    const b = buildGemm({ xdims: [70, 96], Co: 40, weights: { bits: 2, groupSize: 32, asymmetric: true }, bias: true });
    const one = session('TernionQGemm', b.attrs, b.inputs, { threads: 1 }).run();
    const two = session('TernionQGemm', b.attrs, b.inputs, { threads: 2 }).run();
    const scalar = session('TernionQGemm', b.attrs, b.inputs, { isa: 'scalar' }).run();
    expectClose(one, b.ref, 'big gemm');
    expect(Array.from(two.data)).toEqual(Array.from(one.data));
    expect(Array.from(scalar.data)).toEqual(Array.from(one.data));
  });
});

// ---------------------------------------------------------------- bad calls

describe('TernionQConv / TernionQGemm reject bad layers', () => {
  const good = () => buildConv({ ...base, Cin: 6, weights: { bits: 2, groupSize: 4, form: 'group-scaled' } });
  const make = (b: { attrs: Attrs; inputs: (TensorIn | null)[] }, op = 'TernionQConv') => () => session(op, b.attrs, b.inputs);
  const run = (b: { attrs: Attrs; inputs: (TensorIn | null)[] }, op = 'TernionQConv') => () => session(op, b.attrs, b.inputs).run();
  const withInput = (b: Built, i: number, t: TensorIn | null) => {
    const inputs = b.inputs.slice();
    while (inputs.length <= i) inputs.push(null);
    inputs[i] = t;
    return { attrs: b.attrs, inputs };
  };

  it('attributes', () => {
    const b = good();
    const { in_channels: _drop, ...noCin } = b.attrs;
    expectCode(make({ ...b, attrs: noCin }), 'ERR_MODEL_FORMAT', /in_channels is required/);
    const { kernel_shape: _k, ...noKernel } = b.attrs;
    expectCode(make({ ...b, attrs: noKernel }), 'ERR_MODEL_FORMAT', /kernel_shape is required/);
    expectCode(make({ ...b, attrs: { ...b.attrs, padded_channels: 12 } }), 'ERR_SHAPE_MISMATCH', /K = 72 columns but kernel_shape \[3, 3\] and padded_channels 12 give K = 108/);
    expectCode(make({ ...b, attrs: { ...b.attrs, in_channels: 9 } }), 'ERR_SHAPE_MISMATCH', /padded_channels 8 must be at least in_channels 9/);
    expectCode(make({ ...b, attrs: { ...b.attrs, weight_bits: 3 } }), 'ERR_MODEL_FORMAT', /weight_bits must be 8, 4 or 2/);
    expectCode(make({ ...b, attrs: { ...b.attrs, group_size: 5 } }), 'ERR_SHAPE_MISMATCH', /group_size 5 must divide K = 72/);
    expectCode(make({ ...b, attrs: { ...b.attrs, group_size: 3 } }), 'ERR_SHAPE_MISMATCH', /padded_channels 8 must be a multiple of group_size 3/);
    expectCode(make({ ...b, attrs: { ...b.attrs, form: 'blocked' } }), 'ERR_MODEL_FORMAT', /form must be/);
    expectCode(make({ ...b, attrs: { ...b.attrs, act_mode: 'percentile' } }), 'ERR_MODEL_FORMAT', /act_mode/);
    expectCode(make({ ...b, attrs: { ...b.attrs, act_bits: 2 } }), 'ERR_UNSUPPORTED_OP', /act_bits must be 8 or 4/);
    expectCode(make({ ...b, attrs: { ...b.attrs, act_mode: 'static' } }), 'ERR_MODEL_FORMAT', /needs the float attribute act_scale/);
    expectCode(make({ ...b, attrs: { ...b.attrs, act_mode: 'static', act_scale: { type: 'float', value: 0 } } }), 'ERR_MODEL_FORMAT', /act_scale 0\S* must be a positive/);
    expectCode(make({ ...b, attrs: { ...b.attrs, act_mode: 'static', act_bits: 4, act_scale: { type: 'float', value: 0.1 }, act_zero_point: 16 } }),
      'ERR_MODEL_FORMAT', /act_zero_point 16 is outside \[0, 15\]/);
    expectCode(make({ ...b, attrs: { ...b.attrs, asym: 1, weight_bits: 4 } }), 'ERR_MODEL_FORMAT', /asym applies to ternary/);
    expectCode(make({ ...b, attrs: { ...b.attrs, activation: 'Gelu' } }), 'ERR_UNSUPPORTED_OP', /unknown fused activation/);
    expectCode(make({ ...b, attrs: { ...b.attrs, residual_scale: { type: 'float', value: 0 } } }), 'ERR_MODEL_FORMAT', /residual_scale 0\S* must be a positive/);
    expectCode(make({ ...b, attrs: { ...b.attrs, residual_scale: { type: 'float', value: 0.1 }, residual_zero_point: 256 } }), 'ERR_MODEL_FORMAT', /residual_zero_point 256 is outside \[0, 255\]/);
    expectCode(make({ ...b, attrs: { ...b.attrs, residual_zero_point: 3 } }), 'ERR_MODEL_FORMAT', /residual_zero_point \/ residual_bits need residual_scale/);
    expectCode(make({ ...b, attrs: { ...b.attrs, residual_scale: { type: 'float', value: 0.1 }, residual_bits: 2 } }), 'ERR_MODEL_FORMAT', /residual_bits must be 8 or 4, got 2/);
  });

  it('weight tensors: dtypes, lengths, code and multiplier ranges, constness, K limit', () => {
    const b = good();
    const codes = b.inputs[1]!;
    const bad = Int8Array.from(codes.data as Int8Array); bad[13] = 2;
    expectCode(make(withInput(b, 1, { ...codes, data: bad })), 'ERR_MODEL_FORMAT', /weight codes\[13\] = 2 is outside \[-1, 1\]/);
    expectCode(make(withInput(b, 1, { ...codes, dtype: 'uint8', data: new Uint8Array(codes.data.length) })), 'ERR_DTYPE', /weight codes must be int8/);
    expectCode(make(withInput(b, 1, { ...codes, dims: [codes.data.length] })), 'ERR_SHAPE_MISMATCH', /must be 2-D \[Co, K\]/);
    expectCode(make(withInput(b, 1, { ...codes, constant: false })), 'ERR_UNSUPPORTED_OP', /must be a constant/);
    const sp = b.inputs[2]!;
    expectCode(make(withInput(b, 2, { ...sp, dims: [sp.data.length - 1], data: (sp.data as Float32Array).slice(1) })), 'ERR_SHAPE_MISMATCH', /scale_pos \[89\] must hold Co \* K \/ group_size = 90 values/);
    const nan = Float32Array.from(sp.data as Float32Array); nan[4] = NaN;
    expectCode(make(withInput(b, 2, { ...sp, data: nan })), 'ERR_MODEL_FORMAT', /scale_pos\[4\] = -?nan is not finite/);
    expectCode(make(withInput(b, 2, null)), 'ERR_MODEL_FORMAT', /missing input 2 \(scale_pos\)/);
    expectCode(make(withInput(b, 5, sp)), 'ERR_MODEL_FORMAT', /input 5 \(scale_neg \(asym = 0\)\) is not used/);
    expectCode(make({ ...b, attrs: { ...b.attrs, asym: 1 } }), 'ERR_MODEL_FORMAT', /missing input 5 \(scale_neg\)/);

    const f = buildConv({ ...base, Cin: 6, weights: { bits: 4, groupSize: 4, form: 'folded' } });
    const mp = f.inputs[2]!;
    const big = Int8Array.from(mp.data as Int8Array); big[0] = 19;
    expectCode(make(withInput(f, 2, { ...mp, data: big })), 'ERR_MODEL_FORMAT', /mult_pos\[0\] = 19 is outside \[1, 18\]/);
    const zero = Int8Array.from(mp.data as Int8Array); zero[3] = 0;
    expectCode(make(withInput(f, 2, { ...mp, data: zero })), 'ERR_MODEL_FORMAT', /mult_pos\[3\] = 0 is outside \[1, 18\]/);
    expectCode(make(withInput(f, 2, { ...mp, dtype: 'float32', data: new Float32Array(mp.data.length) })), 'ERR_DTYPE', /mult_pos must be int8/);
    expectCode(make(withInput(f, 6, null)), 'ERR_MODEL_FORMAT', /missing input 6 \(channel_scale\)/);
    const codes4 = Int8Array.from(f.inputs[1]!.data as Int8Array); codes4[1] = -8;
    expectCode(make(withInput(f, 1, { ...f.inputs[1]!, data: codes4 })), 'ERR_MODEL_FORMAT', /weight codes\[1\] = -8 is outside \[-7, 7\]/);

    const i8 = buildConv({ ...base, weights: { bits: 8 } });
    expectCode(make(withInput(i8, 2, { ...i8.inputs[2]!, dims: [4], data: new Float32Array(4) })), 'ERR_SHAPE_MISMATCH', /channel_scale \[4\] must hold Co = 5/);
    expectCode(make({ ...i8, attrs: { ...i8.attrs, group_size: 9 } }), 'ERR_MODEL_FORMAT', /group_size must be K = 54/);

    const K = 65537;
    const huge = { attrs: { weight_bits: 2, group_size: K, in_channels: K }, inputs: [
      { dtype: 'float32', dims: [1, K], data: new Float32Array(K) } as TensorIn,
      { dtype: 'int8', dims: [1, K], data: new Int8Array(K), constant: true } as TensorIn,
      { dtype: 'float32', dims: [1], data: new Float32Array(1), constant: true } as TensorIn,
    ] };
    expectCode(make(huge, 'TernionQGemm'), 'ERR_SHAPE_MISMATCH', /K = 65537 exceeds the integer kernels' limit of 65536/);
  });

  it('run-time shapes: input channels, rank, bias, residual', () => {
    const b = good();
    const x = b.inputs[0]!;
    expectCode(run(withInput(b, 0, { ...x, dims: [1, 5, 6, 6], data: new Float32Array(180) })), 'ERR_SHAPE_MISMATCH', /has 5 channels but group 1 \* in_channels 6 = 6/);
    expectCode(run(withInput(b, 0, { ...x, dims: [6, 6, 5], data: new Float32Array(180) })), 'ERR_SHAPE_MISMATCH', /must have rank 4/);
    expectCode(run(withInput(b, 3, { dtype: 'float32', dims: [4], data: new Float32Array(4) })), 'ERR_SHAPE_MISMATCH', /bias \[4\] must be \[5\]/);
    expectCode(run(withInput(b, 3, { dtype: 'float32', dims: [4], data: new Float32Array(4), constant: true })), 'ERR_SHAPE_MISMATCH', /bias \[4\] must be \[5\]/);
    expectCode(run(withInput(b, 4, { dtype: 'float32', dims: [1, 5, 6, 4], data: new Float32Array(120) })), 'ERR_SHAPE_MISMATCH', /residual \[1, 5, 6, 4\] must have the output shape \[1, 5, 6, 5\]/);
    // uint8 residual codes only with residual parameters and a pixel-major output.
    const codes = { dtype: 'uint8', dims: [1, 5, 6, 5], data: new Uint8Array(150) } as TensorIn;
    expectCode(run(withInput(b, 4, codes)), 'ERR_DTYPE', /a uint8 residual needs residual_scale and output_layout "nhwc"/);
    expectCode(run({ ...withInput(b, 4, codes), attrs: { ...b.attrs, residual_scale: { type: 'float', value: 0.1 } } }), 'ERR_DTYPE', /a uint8 residual needs residual_scale and output_layout "nhwc"/);
    const g = buildGemm({ xdims: [3, 20], Co: 9, weights: { bits: 2, groupSize: 4 } });
    expectCode(run({ attrs: g.attrs, inputs: [{ dtype: 'float32', dims: [3, 21], data: new Float32Array(63) }, ...g.inputs.slice(1)] }, 'TernionQGemm'),
      'ERR_SHAPE_MISMATCH', /must have in_channels = 20 as its last dim/);
    expectCode(make({ attrs: { ...g.attrs, padded_channels: 24 }, inputs: g.inputs }, 'TernionQGemm'), 'ERR_SHAPE_MISMATCH', /padded_channels 24 must equal K = 20/);
    expectCode(make({ attrs: { ...g.attrs, transB: 1 }, inputs: g.inputs }, 'TernionQGemm'), 'ERR_MODEL_FORMAT', /transB is not supported/);
  });
});
