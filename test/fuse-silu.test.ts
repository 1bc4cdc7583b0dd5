// SiLU fusion (lib/ir/passes/fuse-silu.ts): Mul(x, Sigmoid(x)) runs as one TernionSilu pass,
// bit-identical to the two ops; Sigmoids with other readers, or that are graph outputs, stay.
import { describe, expect, it } from 'vitest';
import { InferenceSession, Tensor } from '../lib';
import { fuseSilu, optimizeGraph } from '../lib/ir';
import { loadOnnxModel } from '../lib/onnx';
import { rng } from './helpers';
import { encodeModel, valueInfo } from './onnx-build-model';

/** x -> conv -> SiLU (operands in either order) -> y; `alsoOut` makes the Sigmoid a graph output too. */
function siluModel(order: 'xs' | 'sx', alsoOut: boolean): Uint8Array {
  const r = rng(5);
  return encodeModel({
    nodes: [
      { op: 'Conv', name: 'c', inputs: ['x', 'w'], outputs: ['a'] },
      { op: 'Sigmoid', name: 's', inputs: ['a'], outputs: ['sa'] },
      { op: 'Mul', name: 'm', inputs: order === 'xs' ? ['a', 'sa'] : ['sa', 'a'], outputs: ['y'] },
    ],
    inputs: [valueInfo('x', ['N', 3, 5, 7])],
    outputs: [valueInfo('y', ['N', 6, 5, 7]), ...(alsoOut ? [valueInfo('sa', ['N', 6, 5, 7])] : [])],
    initializers: [{ name: 'w', dims: [6, 3, 1, 1], floatData: Array.from({ length: 18 }, () => r() * 40 - 20) }],
  });
}

describe('SiLU fusion', () => {
  it('fuses Mul(x, Sigmoid(x)) in either operand order, and nothing else', () => {
    for (const order of ['xs', 'sx'] as const) {
      const g = fuseSilu(optimizeGraph(loadOnnxModel(siluModel(order, false))));
      expect(g.nodes.map((n) => n.opType)).toEqual(['Conv', 'TernionSilu']);
      expect(g.nodes[1].inputs).toEqual(['a']);
      expect(g.nodes[1].outputs).toEqual(['y']);
      expect(g.valueInfo.has('sa')).toBe(false);
    }
    // The Sigmoid is a graph output: kept.
    const kept = fuseSilu(optimizeGraph(loadOnnxModel(siluModel('xs', true))));
    expect(kept.nodes.map((n) => n.opType)).toEqual(['Conv', 'Sigmoid', 'Mul']);
  });

  it('gives the values of Sigmoid then Mul bit for bit, NaN, infinities and both tails included', async () => {
    // Large weights push the conv outputs past the Sigmoid's clamp (|x| > 87) on both sides.
    const n = 2 * 3 * 5 * 7;
    const data = Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37) * (i % 7 === 0 ? 30 : 1));
    data[3] = NaN;
    data[10] = Infinity;
    data[17] = -Infinity;
    data[24] = 1e-30;
    const x = new Tensor('float32', data, [2, 3, 5, 7]);
    for (const threads of [1, 2]) {
      const fused = (await (await InferenceSession.create(siluModel('sx', false), { threads })).run({ x })).y.data as Float32Array;
      const plain = (await (await InferenceSession.create(siluModel('sx', true), { threads })).run({ x })).y.data as Float32Array;
      // Every number bit for bit (Object.is tells -0 from 0); a NaN stays NaN (its sign and
      // payload follow the operand order the compiler picks for a product, in Mul too).
      const diff = Array.from(fused).map((v, i) => [i, v, plain[i]]).filter(([, a, b]) => !Object.is(a, b));
      expect(diff).toEqual([]);
      expect(fused.some((v) => Number.isNaN(v))).toBe(true);
      expect(fused.some((v) => v > 50)).toBe(true);
    }
  });
});
