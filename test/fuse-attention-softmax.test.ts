// Attention-score fusion (lib/ir/passes/fuse-attention-softmax.ts): Softmax(Add(Div(S, c), mask))
// over the last axis, as BERT exports write it (and the Mul, scale-only and mask-only forms), runs
// as one TernionScaledMaskedSoftmax with the chain's values bit for bit; other chains stay.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InferenceSession, Tensor } from '../lib';
import { fuseAttentionSoftmax, optimizeGraph } from '../lib/ir';
import { loadOnnxModel } from '../lib/onnx';
import { ROOT } from './native-build';
import { encodeModel, valueInfo } from './onnx-build-model';

const [B, H, S] = [2, 3, 12];

interface Options {
  /** 'div' (S / c), 'mul' (c * S), or none. */
  scale?: 'div' | 'mul' | 'none';
  /** mask: a [B, 1, 1, S] input, a causal [1, 1, S, S] constant, or none. */
  mask?: 'padding' | 'causal' | 'none';
  /** Add(mask, scaled) instead of Add(scaled, mask). */
  swap?: boolean;
  /** The scaled and masked scores are also graph outputs (no fusion: the reference). */
  expose?: boolean;
  /** Softmax over axis 1 (no fusion). */
  axis1?: boolean;
  /** Scores [B, H, 1, S] widened by a [B, 1, S, S] mask. */
  widen?: boolean;
}

function attentionModel(o: Options = {}): Uint8Array {
  const scale = o.scale ?? 'div', mask = o.mask ?? 'padding';
  const q = o.widen ? 1 : S;
  const nodes = [];
  let v = 's';
  if (scale !== 'none') {
    nodes.push(scale === 'div' ? { op: 'Div', name: 'div', inputs: ['s', 'c'], outputs: ['scaled'] } : { op: 'Mul', name: 'mul', inputs: ['c', 's'], outputs: ['scaled'] });
    v = 'scaled';
  }
  if (mask !== 'none') {
    const m = mask === 'padding' ? 'pad_mask' : 'causal';
    nodes.push({ op: 'Add', name: 'add', inputs: o.swap ? [m, v] : [v, m], outputs: ['masked'] });
    v = 'masked';
  }
  nodes.push({ op: 'Softmax', name: 'softmax', inputs: [v], outputs: ['p'], attributes: [{ name: 'axis', type: 2, i: o.axis1 ? 1 : -1 }] });
  const causal = Array.from({ length: S * S }, (_, i) => (i % S <= Math.floor(i / S) ? 0 : -Infinity));
  return encodeModel({
    nodes,
    inputs: [valueInfo('s', [B, H, q, S]), ...(mask === 'padding' ? [valueInfo('pad_mask', [B, 1, o.widen ? S : 1, S])] : [])],
    outputs: [
      valueInfo('p', [B, H, S, S]),
      ...(o.expose && scale !== 'none' ? [valueInfo('scaled', [B, H, q, S])] : []),
      ...(o.expose && mask !== 'none' ? [valueInfo('masked', [B, H, S, S])] : []),
    ],
    initializers: [
      { name: 'c', dims: [], floatData: [Math.fround(Math.sqrt(32))] },
      ...(mask === 'causal' ? [{ name: 'causal', dims: [1, 1, S, S], floatData: causal }] : []),
    ],
  });
}

const fusedOps = (o: Options) => fuseAttentionSoftmax(optimizeGraph(loadOnnxModel(attentionModel(o)))).nodes.map((n) => n.opType);

function feeds(o: Options): Record<string, Tensor> {
  const q = o.widen ? 1 : S;
  const s = Float32Array.from({ length: B * H * q * S }, (_, i) => Math.sin(i * 0.7) * 9);
  s[5] = NaN;
  const out: Record<string, Tensor> = { s: new Tensor('float32', s, [B, H, q, S]) };
  if ((o.mask ?? 'padding') === 'padding') {
    const rows = o.widen ? S : 1;
    // Sentence 0 keeps every token; sentence 1 masks its last four with -1e9, one with -inf.
    const m = Float32Array.from({ length: B * rows * S }, (_, i) => (Math.floor(i / (rows * S)) === 1 && i % S >= S - 4 ? (i % S === S - 1 ? -Infinity : -1e9) : 0));
    out.pad_mask = new Tensor('float32', m, [B, 1, rows, S]);
  }
  return out;
}

describe('attention-score Softmax fusion', () => {
  it('fuses Div / Mul by a scalar and the mask Add, in either order, or either alone', () => {
    for (const o of [{}, { swap: true }, { scale: 'mul' as const }, { mask: 'causal' as const }, { mask: 'none' as const }, { scale: 'none' as const }]) {
      expect(fusedOps(o), JSON.stringify(o)).toEqual(['TernionScaledMaskedSoftmax']);
    }
    const g = fuseAttentionSoftmax(optimizeGraph(loadOnnxModel(attentionModel({ swap: true }))));
    expect(g.nodes[0].inputs).toEqual(['s', 'pad_mask']);
    expect(g.nodes[0].attributes).toEqual({ scale_op: { type: 'string', value: 'div' }, scale: { type: 'float', value: Math.fround(Math.sqrt(32)) } });
  });

  it('leaves a Softmax over another axis, and a chain whose step is read elsewhere', () => {
    expect(fusedOps({ axis1: true })).toEqual(['Div', 'Add', 'Softmax']);
    expect(fusedOps({ expose: true })).toEqual(['Div', 'Add', 'Softmax']);
  });

  it('gives the chain values bit for bit (masks of 0, -1e9 and -inf, a NaN score, a mask that widens the scores) on 1 and 2 threads', async () => {
    for (const threads of [1, 2]) {
      for (const o of [{}, { swap: true, scale: 'mul' as const }, { mask: 'causal' as const }, { widen: true }]) {
        const x = feeds(o);
        const fused = (await (await InferenceSession.create(attentionModel(o), { threads })).run(x)).p;
        const plain = (await (await InferenceSession.create(attentionModel({ ...o, expose: true }), { threads })).run(x)).p;
        expect(fused.dims).toEqual([B, H, S, S]);
        const a = fused.data as Float32Array, b = plain.data as Float32Array;
        expect(Array.from(a).findIndex((v, i) => !Object.is(v, b[i])), JSON.stringify(o)).toBe(-1);
        expect(a.some((v) => v === 0)).toBe(true); // masked keys get exactly 0
      }
    }
  });

  it('fuses both layers\' scores in the BERT-style encoder', () => {
    const g = fuseAttentionSoftmax(optimizeGraph(loadOnnxModel(readFileSync(join(ROOT, 'models', 'tiny-text-encoder.onnx')))));
    expect(g.nodes.filter((n) => n.opType === 'TernionScaledMaskedSoftmax')).toHaveLength(2);
    expect(g.nodes.filter((n) => n.opType === 'Softmax')).toHaveLength(0);
  });
});
