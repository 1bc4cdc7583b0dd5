// LayerNorm fusion (lib/ir/passes/fuse-layer-norm.ts): the nine ops PyTorch exports for
// nn.LayerNorm before opset 17 run as one TernionLayerNormChain with the chain's values, bit for
// bit; chains that differ (another axis, an intermediate read elsewhere) stay as they are.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InferenceSession, Tensor } from '../lib';
import { fuseLayerNormChain, optimizeGraph } from '../lib/ir';
import { loadOnnxModel } from '../lib/onnx';
import { ROOT } from './native-build';
import { encodeModel, valueInfo } from './onnx-build-model';

const D = 24;

interface Options {
  /** Mul(d, d) for Pow(d, 2). */
  mulSquare?: boolean;
  /** The commutative ops' operands in the other order. */
  swap?: boolean;
  /** No Mul / Add after the division. */
  plain?: boolean;
  /** The variance is also a graph output (no fusion: the unfused reference). */
  varianceOut?: boolean;
  /** ReduceMean axes (default [-1]). */
  axes?: number[];
  /** opset 18: ReduceMean takes its axes as an input. */
  opset18?: boolean;
}

/** x [N, 3, D] -> LayerNorm chain over the last axis -> y. */
function layerNormModel(o: Options = {}): Uint8Array {
  const axes = o.axes ?? [-1];
  const mean = (name: string, input: string, out: string) => o.opset18
    ? { op: 'ReduceMean', name, inputs: [input, 'axes'], outputs: [out] }
    : { op: 'ReduceMean', name, inputs: [input], outputs: [out], attributes: [{ name: 'axes', type: 7, ints: axes }] };
  const s = (a: string, b: string) => (o.swap ? [b, a] : [a, b]);
  const last = o.plain ? 'y' : 'n';
  return encodeModel({
    ...(o.opset18 ? { opset: 18, irVersion: 8 } : {}),
    nodes: [
      mean('mean', 'x', 'm'),
      { op: 'Sub', name: 'sub', inputs: ['x', 'm'], outputs: ['d'] },
      o.mulSquare ? { op: 'Mul', name: 'sq', inputs: ['d', 'd'], outputs: ['p'] } : { op: 'Pow', name: 'sq', inputs: ['d', 'two'], outputs: ['p'] },
      mean('var', 'p', 'v'),
      { op: 'Add', name: 'eps', inputs: s('v', 'epsilon'), outputs: ['ve'] },
      { op: 'Sqrt', name: 'sqrt', inputs: ['ve'], outputs: ['sd'] },
      { op: 'Div', name: 'div', inputs: ['d', 'sd'], outputs: [last] },
      ...(o.plain ? [] : [
        { op: 'Mul', name: 'scale', inputs: s('n', 'gamma'), outputs: ['g'] },
        { op: 'Add', name: 'shift', inputs: s('g', 'beta'), outputs: ['y'] },
      ]),
    ],
    inputs: [valueInfo('x', ['N', 3, D])],
    outputs: [valueInfo('y', ['N', 3, D]), ...(o.varianceOut ? [valueInfo('v', ['N', 3, 1])] : [])],
    initializers: [
      { name: 'two', dims: [], floatData: [2] },
      { name: 'epsilon', dims: [], floatData: [1e-5] },
      { name: 'gamma', dims: [D], floatData: Array.from({ length: D }, (_, i) => 0.5 + Math.cos(i)) },
      { name: 'beta', dims: [D], floatData: Array.from({ length: D }, (_, i) => Math.sin(i * 1.3)) },
      ...(o.opset18 ? [{ name: 'axes', dims: [1], dataType: 7, int64Data: axes }] : []),
    ],
  });
}

const opTypes = (o: Options) => fuseLayerNormChain(optimizeGraph(loadOnnxModel(layerNormModel(o)))).nodes.map((n) => n.opType);

describe('LayerNorm fusion', () => {
  it('fuses the chain (Pow or Mul square, either operand order, with or without the affine part, opset 18 axes input)', () => {
    for (const o of [{}, { swap: true }, { mulSquare: true }, { opset18: true }, { axes: [2] }]) expect(opTypes(o)).toEqual(['TernionLayerNormChain']);
    const g = fuseLayerNormChain(optimizeGraph(loadOnnxModel(layerNormModel({ swap: true }))));
    expect(g.nodes[0].inputs).toEqual(['x', 'gamma', 'beta']);
    expect(g.nodes[0].outputs).toEqual(['y']);
    expect(g.nodes[0].attributes.epsilon).toEqual({ type: 'float', value: Math.fround(1e-5) });
    const plain = fuseLayerNormChain(optimizeGraph(loadOnnxModel(layerNormModel({ plain: true }))));
    expect(plain.nodes.map((n) => [n.opType, n.inputs])).toEqual([['TernionLayerNormChain', ['x']]]);
  });

  it('leaves chains that are not a last-axis LayerNorm, or whose steps are read elsewhere', () => {
    expect(opTypes({ varianceOut: true })).toContain('ReduceMean');
    expect(opTypes({ axes: [1] })).not.toContain('TernionLayerNormChain');
  });

  it('gives the chain values bit for bit, NaN and infinities included, on 1 and 2 threads', async () => {
    const n = 300;
    const data = Float32Array.from({ length: n * 3 * D }, (_, i) => Math.sin(i * 0.37) * (i % 13 === 0 ? 40 : 2) + (i % 97 === 0 ? 1e4 : 0));
    data[7] = NaN;
    data[3 * D + 2] = Infinity;
    data.fill(0.25, 5 * D, 6 * D); // a constant row: variance 0, the division by sqrt(epsilon)
    const x = new Tensor('float32', data, [n, 3, D]);
    for (const threads of [1, 2]) {
      for (const o of [{}, { swap: true, mulSquare: true }, { plain: true }]) {
        const fused = (await (await InferenceSession.create(layerNormModel(o), { threads })).run({ x })).y.data as Float32Array;
        const plain = (await (await InferenceSession.create(layerNormModel({ ...o, varianceOut: true }), { threads })).run({ x })).y.data as Float32Array;
        const diff = Array.from(fused).map((v, i) => [i, v, plain[i]]).filter(([, a, b]) => !Object.is(a, b));
        expect(diff).toEqual([]);
        expect(fused.some((v) => Number.isNaN(v))).toBe(true);
      }
    }
  });

  it('fuses every LayerNorm of the BERT-style encoder (embeddings and two per layer)', () => {
    const g = fuseLayerNormChain(optimizeGraph(loadOnnxModel(readFileSync(join(ROOT, 'models', 'tiny-text-encoder.onnx')))));
    const ops = g.nodes.map((n) => n.opType);
    expect(ops.filter((op) => op === 'TernionLayerNormChain')).toHaveLength(5);
    expect(ops).not.toContain('ReduceMean');
    expect(ops).not.toContain('Sqrt');
  });
});
