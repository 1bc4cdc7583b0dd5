// GELU fusion (lib/ir/passes/fuse-gelu.ts): Div, Erf, Add, Mul, Mul as PyTorch exports nn.GELU
// runs as one TernionGeluErf pass with the chain's values; other shapes of the chain stay.
import { describe, expect, it } from 'vitest';
import { InferenceSession, Tensor } from '../lib';
import { fuseGeluErf, optimizeGraph } from '../lib/ir';
import { loadOnnxModel } from '../lib/onnx';
import { encodeModel, valueInfo } from './onnx-build-model';

/** x -> MatMul -> GELU chain -> y. `erfOut`: the Erf's output is also a graph output (no fusion);
 *  `swap`: the commutative ops' operands in the other order; `addend`: the Add's constant. */
function geluModel(o: { erfOut?: boolean; swap?: boolean; addend?: number } = {}): Uint8Array {
  const w = Array.from({ length: 6 * 8 }, (_, i) => Math.sin(i * 0.61) * 3);
  return encodeModel({
    nodes: [
      { op: 'MatMul', name: 'mm', inputs: ['x', 'w'], outputs: ['h'] },
      { op: 'Div', name: 'div', inputs: ['h', 'sqrt2'], outputs: ['d'] },
      { op: 'Erf', name: 'erf', inputs: ['d'], outputs: ['e'] },
      { op: 'Add', name: 'add', inputs: o.swap ? ['one', 'e'] : ['e', 'one'], outputs: ['a'] },
      { op: 'Mul', name: 'mul', inputs: o.swap ? ['a', 'h'] : ['h', 'a'], outputs: ['m'] },
      { op: 'Mul', name: 'half', inputs: o.swap ? ['c05', 'm'] : ['m', 'c05'], outputs: ['y'] },
    ],
    inputs: [valueInfo('x', ['N', 6])],
    outputs: [valueInfo('y', ['N', 8]), ...(o.erfOut ? [valueInfo('e', ['N', 8])] : [])],
    initializers: [
      { name: 'w', dims: [6, 8], floatData: w },
      { name: 'sqrt2', dims: [], floatData: [1.4142135381698608] },
      { name: 'one', dims: [], floatData: [o.addend ?? 1] },
      { name: 'c05', dims: [], floatData: [0.5] },
    ],
  });
}

describe('GELU fusion', () => {
  it('fuses the chain in either operand order, keeping its constants, and not when a step has another reader', () => {
    for (const swap of [false, true]) {
      const g = fuseGeluErf(optimizeGraph(loadOnnxModel(geluModel({ swap, addend: 1.25 }))));
      expect(g.nodes.map((n) => n.opType)).toEqual(['MatMul', 'TernionGeluErf']);
      const f = g.nodes[1];
      expect(f.inputs).toEqual(['h']);
      expect(f.outputs).toEqual(['y']);
      expect([f.attributes.divisor, f.attributes.addend, f.attributes.scale].map((a) => a?.type === 'float' && a.value))
        .toEqual([Math.fround(Math.SQRT2), 1.25, 0.5]);
    }
    const kept = fuseGeluErf(optimizeGraph(loadOnnxModel(geluModel({ erfOut: true }))));
    expect(kept.nodes.map((n) => n.opType)).toEqual(['MatMul', 'Div', 'Erf', 'Add', 'Mul', 'Mul']);
  });

  it('gives the chain values, NaN and infinities included, on 1 and 2 threads', async () => {
    const n = 4000;
    const data = Float32Array.from({ length: n * 6 }, (_, i) => Math.sin(i * 0.37) * (i % 11 === 0 ? 20 : 1.5));
    data[5] = NaN;
    data[13] = Infinity;
    data[20] = -Infinity;
    const x = new Tensor('float32', data, [n, 6]);
    for (const threads of [1, 2]) {
      for (const swap of [false, true]) {
        const fused = (await (await InferenceSession.create(geluModel({ swap }), { threads })).run({ x })).y.data as Float32Array;
        const plain = (await (await InferenceSession.create(geluModel({ swap, erfOut: true }), { threads })).run({ x })).y.data as Float32Array;
        const diff = Array.from(fused).map((v, i) => [i, v, plain[i]]).filter(([, a, b]) => !Object.is(a, b));
        expect(diff).toEqual([]);
        expect(fused.some((v) => Number.isNaN(v))).toBe(true);
      }
    }
  });
});
