// Bias and residual Adds after a quantized MatMul layer (lib/ir/passes/fuse-qgemm-add.ts): taken
// into TernionQGemm's epilogue when they fit its contract (a constant [Co] bias, a residual of
// the output's shape, no activation in between), with the unfused values to rounding.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InferenceSession, Tensor, quantize, readTern } from '../lib';
import { fuseQGemmAdd, type Graph } from '../lib/ir';
import { rng } from './helpers';
import { ROOT } from './native-build';
import { encodeModel, valueInfo } from './onnx-build-model';

const TEXT = join(ROOT, 'models', 'tiny-text-encoder.onnx');

function sentences(n: number, seed: number): Record<string, Tensor> {
  const r = rng(seed), S = 16;
  return {
    input_ids: new Tensor('int64', BigInt64Array.from({ length: n * S }, () => BigInt(Math.floor(r() * 512))), [n, S]),
    attention_mask: new Tensor('int64', BigInt64Array.from({ length: n * S }, (_, i) => (i % S < S - (i / S | 0) ? 1n : 0n)), [n, S]),
    token_type_ids: new Tensor('int64', new BigInt64Array(n * S), [n, S]),
  };
}

/** The graph with every TernionQGemm output also a graph output: nothing can be fused. */
function unfusable(g: Graph): Graph {
  const extra = g.nodes.filter((n) => n.opType === 'TernionQGemm').map((n) => ({ name: n.outputs[0], dtype: 'float32' as const, shape: g.valueInfo.get(n.outputs[0])?.shape }));
  return { ...g, outputs: [...g.outputs, ...extra] };
}

describe('TernionQGemm bias and residual fusion', () => {
  it('takes every Linear bias and the two residual Adds per layer of the quantized text encoder, the outputs as unfused to rounding', async () => {
    const q = await quantize(TEXT, { weights: 'int8', calibration: sentences(12, 1) });
    const g = readTern(q.toBuffer()).graph;
    const f = fuseQGemmAdd(g);
    const layers = f.nodes.filter((n) => n.opType === 'TernionQGemm');
    expect(layers).toHaveLength(12);
    expect(layers.filter((n) => n.inputs[3])).toHaveLength(12);
    expect(layers.filter((n) => n.inputs[4]).map((n) => n.name)).toEqual(['/layers.0/o/MatMul', '/layers.0/down/MatMul', '/layers.1/o/MatMul', '/layers.1/down/MatMul']);
    expect(g.nodes.filter((n) => n.opType === 'Add').length - f.nodes.filter((n) => n.opType === 'Add').length).toBe(16);
    // No Add reads a layer's output any more.
    const qOut = new Set(layers.map((n) => n.outputs[0]));
    expect(f.nodes.filter((n) => n.opType === 'Add' && n.inputs.some((i) => qOut.has(i)))).toEqual([]);

    const feeds = sentences(5, 2);
    const fused = (await (await InferenceSession.create(q.toBuffer())).run(feeds)).last_hidden_state.data as Float32Array;
    const plainSession = InferenceSession.fromGraph(unfusable(g), { optimize: false });
    const plain = (await plainSession.run(feeds)).last_hidden_state.data as Float32Array;
    let diff = 0;
    for (let i = 0; i < fused.length; i++) diff = Math.max(diff, Math.abs(fused[i] - plain[i]));
    expect(diff).toBeGreaterThan(0); // rounded once, not twice: not the same bits
    expect(diff).toBeLessThan(1e-4);
  });

  it('leaves Adds that do not fit: after an activation, a broadcast operand, a bias of another shape', async () => {
    const w = Array.from({ length: 8 * 6 }, (_, i) => Math.sin(i * 0.7));
    const model = encodeModel({
      nodes: [
        { op: 'MatMul', name: 'a', inputs: ['x', 'w'], outputs: ['ya'] },
        { op: 'Relu', name: 'relu', inputs: ['ya'], outputs: ['ra'] },
        { op: 'Add', name: 'after_relu', inputs: ['ra', 'b6'], outputs: ['za'] },
        // Four different weights: identical MatMuls would be merged into one (merge-duplicate-nodes).
        { op: 'MatMul', name: 'b', inputs: ['x', 'wb'], outputs: ['yb'] },
        { op: 'Add', name: 'broadcast', inputs: ['yb', 'col'], outputs: ['zb'] },
        { op: 'MatMul', name: 'c', inputs: ['x', 'wc'], outputs: ['yc'] },
        { op: 'Add', name: 'row_bias', inputs: ['yc', 'b16'], outputs: ['zc'] },
        { op: 'MatMul', name: 'd', inputs: ['x', 'wd'], outputs: ['yd'] },
        { op: 'Add', name: 'bias', inputs: ['b6', 'yd'], outputs: ['zd'] },
      ],
      inputs: [valueInfo('x', ['N', 8]), valueInfo('col', ['N', 1])],
      outputs: ['za', 'zb', 'zc', 'zd'].map((n) => valueInfo(n, ['N', 6])),
      initializers: [
        { name: 'w', dims: [8, 6], floatData: w },
        ...['wb', 'wc', 'wd'].map((name, k) => ({ name, dims: [8, 6], floatData: w.map((v) => v * (k + 2)) })),
        { name: 'b6', dims: [6], floatData: [0.1, -0.2, 0.3, 0.4, -0.5, 0.6] },
        { name: 'b16', dims: [1, 6], floatData: [0.1, -0.2, 0.3, 0.4, -0.5, 0.6] },
      ],
    });
    const calibration = { x: new Tensor('float32', Float32Array.from({ length: 32 * 8 }, (_, i) => Math.cos(i)), [32, 8]), col: new Tensor('float32', new Float32Array(32).fill(0.5), [32, 1]) };
    const q = await quantize(model, { weights: 'int8', calibration, keepEdgeLayers8bit: false });
    const f = fuseQGemmAdd(readTern(q.toBuffer()).graph);
    const byOut = new Map(f.nodes.map((n) => [n.outputs[0], n]));
    expect(byOut.get('za')!.opType).toBe('Add');
    expect(byOut.get('zb')!.opType).toBe('Add');
    expect(byOut.get('zc')!.opType).toBe('Add');
    expect(byOut.get('zd')!.opType).toBe('TernionQGemm');
    expect(byOut.get('zd')!.inputs[3]).toBe('b6');
    // And the session runs them all.
    const s = await InferenceSession.create(q.toBuffer());
    const out = await s.run({ x: new Tensor('float32', Float32Array.from({ length: 8 }, (_, i) => i / 8), [1, 8]), col: new Tensor('float32', Float32Array.of(2), [1, 1]) });
    expect(out.zd.dims).toEqual([1, 6]);
  });

  it('an Add of two layers\' outputs goes into one of them (the other output stays), as unfused to rounding', async () => {
    const w = Array.from({ length: 8 * 6 }, (_, i) => Math.sin(i * 0.7));
    const model = encodeModel({
      nodes: [
        { op: 'MatMul', name: 'a', inputs: ['x', 'wa'], outputs: ['ya'] },
        { op: 'MatMul', name: 'b', inputs: ['x', 'wb'], outputs: ['yb'] },
        { op: 'Add', name: 'sum', inputs: ['ya', 'yb'], outputs: ['z'] },
      ],
      inputs: [valueInfo('x', ['N', 8])],
      outputs: [valueInfo('z', ['N', 6])],
      initializers: [{ name: 'wa', dims: [8, 6], floatData: w }, { name: 'wb', dims: [8, 6], floatData: w.map((v, i) => v * (i % 3) - 0.2) }],
    });
    const calibration = new Tensor('float32', Float32Array.from({ length: 32 * 8 }, (_, i) => Math.cos(i)), [32, 8]);
    const q = await quantize(model, { weights: 'int8', calibration, keepEdgeLayers8bit: false });
    const g = readTern(q.toBuffer()).graph;
    const f = fuseQGemmAdd(g);
    expect(f.nodes.map((n) => n.opType)).toEqual(['TernionQGemm', 'TernionQGemm']);
    const [first, second] = f.nodes;
    expect(second.inputs[4]).toBe(first.outputs[0]); // the second layer adds the first's output
    expect(second.outputs).toEqual(['z']);
    const x = new Tensor('float32', Float32Array.from({ length: 3 * 8 }, (_, i) => Math.sin(i) * 2), [3, 8]);
    const fused = (await (await InferenceSession.create(q.toBuffer())).run({ x })).z.data as Float32Array;
    const plain = (await InferenceSession.fromGraph(unfusable(g), { optimize: false }).run({ x })).z.data as Float32Array;
    expect(fused.length).toBe(18);
    fused.forEach((v, i) => expect(v).toBeCloseTo(plain[i], 5));
  });
});
