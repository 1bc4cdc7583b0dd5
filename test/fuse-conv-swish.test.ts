// SiLU and HardSwish as an fp32 Conv's activation (lib/ir/passes/fuse-conv-swish.ts): the conv
// applies the ops' own code to its finished output, so the values are bit for bit those of the
// separate ops, in planar and pixel-major layouts, dense and depthwise, after a fused residual,
// on one and two threads; and as a quantized conv's (TernionQConv), whose chained uint8 output
// is then quantized from the activated values.
import { describe, expect, it } from 'vitest';
import { InferenceSession, quantize, Tensor } from '../lib';
import { fuseConvSwish, fuseHardSwish, fuseSilu, optimizeGraph, toChannelsLast, type Graph } from '../lib/ir';
import { loadOnnxModel } from '../lib/onnx';
import { rng } from './helpers';
import { encodeModel, valueInfo, type NodeSpec } from './onnx-build-model';

type Gate = 'silu' | 'hardswish';

/**
 * x [N, 4, 9, 11] -> conv 3x3 (8) -> gate (g1) -> depthwise 3x3 -> gate -> conv 1x1 (8) + g1 (residual)
 * -> gate -> conv 1x1 (3) -> y.
 * `blocked` puts a Mul by 1 between each conv and its gate: the same values and layouts, but the
 * gate then reads a Mul, so it stays a separate op.
 */
function chainModel(gate: Gate, blocked: boolean): Uint8Array {
  const r = rng(11);
  const weights = (n: number, scale: number): number[] => Array.from({ length: n }, () => (r() * 2 - 1) * scale);
  const nodes: NodeSpec[] = [];
  const gated = (input: string, out: string, tag: string): void => {
    let v = input;
    if (blocked) {
      nodes.push({ op: 'Mul', name: `one${tag}`, inputs: [v, 'one'], outputs: [`${v}_1`] });
      v = `${v}_1`;
    }
    if (gate === 'silu') {
      nodes.push({ op: 'Sigmoid', name: `s${tag}`, inputs: [v], outputs: [`${v}_s`] });
      nodes.push({ op: 'Mul', name: `m${tag}`, inputs: [v, `${v}_s`], outputs: [out] });
    } else {
      nodes.push({ op: 'HardSigmoid', name: `h${tag}`, inputs: [v], outputs: [`${v}_h`],
                   attributes: [{ name: 'alpha', type: 1, f: 1 / 6 }, { name: 'beta', type: 1, f: 0.5 }] });
      nodes.push({ op: 'Mul', name: `m${tag}`, inputs: [v, `${v}_h`], outputs: [out] });
    }
  };
  const pads = { name: 'pads', type: 7, ints: [1, 1, 1, 1] };
  nodes.push({ op: 'Conv', name: 'c1', inputs: ['x', 'w1', 'b1'], outputs: ['a1'], attributes: [pads] });
  gated('a1', 'g1', '1');
  nodes.push({ op: 'Conv', name: 'c2', inputs: ['g1', 'w2'], outputs: ['a2'], attributes: [pads, { name: 'group', type: 2, i: 8 }] });
  gated('a2', 'g2', '2');
  nodes.push({ op: 'Conv', name: 'c3', inputs: ['g2', 'w3'], outputs: ['a3'] });
  nodes.push({ op: 'Add', name: 'res', inputs: ['a3', 'g1'], outputs: ['a3r'] });
  gated('a3r', 'g3', '3');
  nodes.push({ op: 'Conv', name: 'c4', inputs: ['g3', 'w4'], outputs: ['y'] });
  return encodeModel({
    nodes,
    inputs: [valueInfo('x', ['N', 4, 9, 11])],
    outputs: [valueInfo('y', ['N', 3, 9, 11])],
    initializers: [
      // Large weights push values past the Sigmoid's clamp and HardSwish's saturation both ways.
      { name: 'w1', dims: [8, 4, 3, 3], floatData: weights(8 * 4 * 9, 6) },
      { name: 'b1', dims: [8], floatData: weights(8, 1) },
      { name: 'w2', dims: [8, 1, 3, 3], floatData: weights(8 * 9, 2) },
      { name: 'w3', dims: [8, 8, 1, 1], floatData: weights(64, 3) },
      { name: 'w4', dims: [3, 8, 1, 1], floatData: weights(24, 0.5) },
      { name: 'one', dims: [], floatData: [1] },
    ],
  });
}

/** The graph as a session builds it (the passes of InferenceSession.fromGraph that matter here). */
function sessionGraph(model: Uint8Array): Graph {
  return toChannelsLast(fuseConvSwish(fuseHardSwish(fuseSilu(optimizeGraph(loadOnnxModel(model))))));
}

function input(): Tensor {
  const n = 2 * 4 * 9 * 11;
  const data = Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.53) * (i % 5 === 0 ? 20 : 1));
  data[7] = NaN;
  data[40] = Infinity;
  data[81] = -Infinity;
  data[100] = 1e-30;
  data[130] = -0;
  return new Tensor('float32', data, [2, 4, 9, 11]);
}

describe('SiLU / HardSwish in the Conv epilogue', () => {
  for (const gate of ['silu', 'hardswish'] as const) {
    it(`${gate}: every conv takes its gate; the Mul-blocked twin keeps the ops and the same layouts`, () => {
      const fused = sessionGraph(chainModel(gate, false));
      const kind = gate === 'silu' ? 'Silu' : 'HardSwish';
      const convs = fused.nodes.filter((n) => n.opType === 'Conv');
      expect(convs.map((n) => n.attributes.activation)).toEqual([...[1, 2, 3].map(() => ({ type: 'string', value: kind })), undefined]);
      expect(fused.nodes.some((n) => n.opType === 'TernionSilu' || n.opType === 'HardSwish')).toBe(false);
      // A fused conv writes the gate's output.
      expect(convs[2].outputs).toEqual(['g3']);
      const blocked = sessionGraph(chainModel(gate, true));
      expect(blocked.nodes.filter((n) => n.opType === (gate === 'silu' ? 'TernionSilu' : 'HardSwish'))).toHaveLength(3);
      const layouts = (g: Graph): unknown[] => g.nodes.filter((n) => n.opType === 'Conv').map((n) => [n.attributes.input_layout, n.attributes.output_layout]);
      expect(layouts(fused)).toEqual(layouts(blocked));
      // The chain runs pixel-major inside, the last conv writes planes: the comparison below
      // covers both layouts' epilogues.
      const nhwc = { type: 'string', value: 'nhwc' };
      expect(layouts(fused)).toEqual([[undefined, nhwc], [nhwc, nhwc], [nhwc, nhwc], [nhwc, undefined]]);
    });

    it(`${gate}: bit for bit the separate ops, NaN and infinities included, 1 and 2 threads`, async () => {
      const x = input();
      for (const threads of [1, 2]) {
        const fused = (await (await InferenceSession.create(chainModel(gate, false), { threads })).run({ x })).y.data as Float32Array;
        const plain = (await (await InferenceSession.create(chainModel(gate, true), { threads })).run({ x })).y.data as Float32Array;
        const diff = Array.from(fused).map((v, i) => [i, v, plain[i]]).filter(([, a, b]) => !Object.is(a, b) && !(Number.isNaN(a) && Number.isNaN(b)));
        expect(diff).toEqual([]);
        expect(fused.some((v) => Number.isNaN(v))).toBe(true);
        expect(fused.some((v) => Math.abs(v) > 10)).toBe(true);
      }
    });
  }

  it('leaves a gate whose input has other readers, is a graph output, or comes from a MatMul', () => {
    const r = rng(3);
    const model = encodeModel({
      nodes: [
        { op: 'Conv', name: 'c', inputs: ['x', 'w'], outputs: ['a'] },
        { op: 'Sigmoid', name: 's', inputs: ['a'], outputs: ['sa'] },
        { op: 'Mul', name: 'm', inputs: ['a', 'sa'], outputs: ['g'] },
        { op: 'MatMul', name: 'mm', inputs: ['g', 'k'], outputs: ['b'] },
        { op: 'Sigmoid', name: 's2', inputs: ['b'], outputs: ['sb'] },
        { op: 'Mul', name: 'm2', inputs: ['b', 'sb'], outputs: ['y'] },
      ],
      inputs: [valueInfo('x', [1, 2, 3, 5])],
      outputs: [valueInfo('y', [1, 4, 3, 5]), valueInfo('a', [1, 4, 3, 5])],
      initializers: [
        { name: 'w', dims: [4, 2, 1, 1], floatData: Array.from({ length: 8 }, () => r() - 0.5) },
        { name: 'k', dims: [5, 5], floatData: Array.from({ length: 25 }, () => r() - 0.5) },
      ],
    });
    const g = fuseConvSwish(fuseSilu(optimizeGraph(loadOnnxModel(model))));
    expect(g.nodes.map((n) => n.opType)).toEqual(['Conv', 'TernionSilu', 'MatMul', 'TernionSilu']);
    expect(g.nodes[0].attributes.activation).toBeUndefined();
  });
});

describe('SiLU / HardSwish in the quantized conv epilogue', () => {
  for (const gate of ['silu', 'hardswish'] as const) {
    it(`${gate}: each TernionQConv takes its gate, bit for bit the separate ops (int8, ternary; 1 and 2 threads)`, async () => {
      const r = rng(5);
      const calibration = new Tensor('float32', Float32Array.from({ length: 6 * 4 * 9 * 11 }, () => r() * 4 - 2), [6, 4, 9, 11]);
      const x = new Tensor('float32', Float32Array.from({ length: 2 * 4 * 9 * 11 }, (_, i) => Math.sin(i * 0.53) * 2), [2, 4, 9, 11]);
      const kind = gate === 'silu' ? 'Silu' : 'HardSwish';
      for (const weights of ['int8', 'ternary'] as const) {
        const options = { weights, groupSize: 4 as const, calibration, depthwise: 'int8' as const };
        const fused = await quantize(chainModel(gate, false), options);
        const blocked = await quantize(chainModel(gate, true), options);
        const graph = toChannelsLast(fuseConvSwish(fuseHardSwish(fuseSilu(fused.graph))));
        const qconvs = graph.nodes.filter((n) => n.opType === 'TernionQConv');
        expect(qconvs.map((n) => n.attributes.activation?.value)).toEqual([kind, kind, kind, undefined]);
        expect(graph.nodes.some((n) => n.opType === 'TernionSilu' || n.opType === 'HardSwish')).toBe(false);
        // Chained: the gated convs store the next layer's uint8 input.
        expect(qconvs.slice(0, 3).every((n) => n.attributes.output_layout?.value === 'nhwc')).toBe(true);
        for (const threads of [1, 2]) {
          const a = (await (await fused.createSession({ threads })).run({ x })).y.data as Float32Array;
          const b = (await (await blocked.createSession({ threads })).run({ x })).y.data as Float32Array;
          expect(Array.from(a).map((v, i) => (Object.is(v, b[i]) ? 0 : 1)).reduce((s, d) => s + d, 0)).toBe(0);
          expect(new Set(a).size).toBeGreaterThan(100);
        }
      }
    });
  }
});
