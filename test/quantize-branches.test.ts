// quantize() on layers inside If branches: each branch a calibration batch takes is quantized as
// a model of its own on the values it reads; a branch none takes stays float32 (bit for bit),
// and the If still chooses at run time.
import { describe, expect, it } from 'vitest';
import { InferenceSession, Tensor, quantize } from '../lib';
import { optimizeGraph } from '../lib/ir';
import { loadOnnxModel } from '../lib/onnx';
import type { CalibrationFeeds } from '../lib/quantize/calibration-data';
import { IfBranches } from '../lib/quantize/quantize-branches';
import { rng } from './helpers';
import { encodeModel, graphAttr, valueInfo } from './onnx-build-model';

/**
 * y = rate > 10000 ? fc2(relu(fc1(x))) : fc_else(x), for x [batch, 16] and a scalar rate (fed
 * whole to every run, like a sample rate choosing between two encoders).
 */
function branchyModel(): Uint8Array {
  const r = rng(11);
  const w = (n: number, scale: number) => Array.from({ length: n }, () => (r() * 2 - 1) * scale);
  return encodeModel({
    nodes: [
      { op: 'Greater', inputs: ['rate', 'threshold'], outputs: ['wide'], name: 'is_wide' },
      {
        op: 'If', inputs: ['wide'], outputs: ['y'], name: 'pick',
        attributes: [
          graphAttr('then_branch', {
            nodes: [
              { op: 'Gemm', inputs: ['x', 'w1', 'b1'], outputs: ['h'], name: 'fc1' },
              { op: 'Relu', inputs: ['h'], outputs: ['a'], name: 'relu' },
              { op: 'Gemm', inputs: ['a', 'w2', 'b2'], outputs: ['yt'], name: 'fc2' },
            ],
            outputs: [valueInfo('yt', ['batch', 8])],
            initializers: [
              { name: 'w1', dims: [16, 32], floatData: w(16 * 32, 0.4) },
              { name: 'b1', dims: [32], floatData: w(32, 0.1) },
              { name: 'w2', dims: [32, 8], floatData: w(32 * 8, 0.3) },
              { name: 'b2', dims: [8], floatData: w(8, 0.1) },
            ],
          }),
          graphAttr('else_branch', {
            nodes: [{ op: 'Gemm', inputs: ['x', 'w3', 'b3'], outputs: ['ye'], name: 'fc_else' }],
            outputs: [valueInfo('ye', ['batch', 8])],
            initializers: [
              { name: 'w3', dims: [16, 8], floatData: w(16 * 8, 0.4) },
              { name: 'b3', dims: [8], floatData: w(8, 0.1) },
            ],
          }),
        ],
      },
    ],
    inputs: [valueInfo('x', ['batch', 16]), valueInfo('rate', [])],
    outputs: [valueInfo('y', ['batch', 8])],
    initializers: [{ name: 'threshold', dims: [], floatData: [10000] }],
  });
}

function feeds(count: number, rate: number, seed: number): CalibrationFeeds {
  const r = rng(seed);
  return {
    x: new Tensor('float32', Float32Array.from({ length: count * 16 }, () => r() * 2 - 1), [count, 16]),
    rate: new Tensor('float32', Float32Array.of(rate), []),
  };
}

async function outputOf(source: Uint8Array, f: CalibrationFeeds): Promise<Float32Array> {
  const s = await InferenceSession.create(source);
  const y = (await s.run(f)).y.data as Float32Array;
  await s.release();
  return y;
}

function relativeError(got: Float32Array, want: Float32Array): number {
  let num = 0, den = 0;
  for (let i = 0; i < want.length; i++) {
    num += (got[i] - want[i]) ** 2;
    den += want[i] ** 2;
  }
  return Math.sqrt(num / den);
}

describe('quantize() inside If branches', () => {
  it('quantizes the branch the calibration data takes and leaves the other float32, bit for bit', async () => {
    const model = branchyModel();
    const q = await quantize(model, { weights: 'int8', calibration: feeds(40, 16000, 1) });
    expect(q.report.layers.map((l) => l.name)).toEqual(['fc1', 'fc2']);
    expect(q.report.warnings.join('\n')).toMatch(/1 Conv \/ Gemm \/ MatMul layer inside subgraphs \("fc_else"\) stay float32: .*If branches no calibration batch took/);
    const bytes = q.toBuffer();
    const wide = feeds(5, 16000, 7), narrow = feeds(5, 8000, 7);
    const [fpWide, fpNarrow] = [await outputOf(model, wide), await outputOf(model, narrow)];
    const [qWide, qNarrow] = [await outputOf(bytes, wide), await outputOf(bytes, narrow)];
    // The quantized branch: int8 values, near fp32 but not its bits.
    expect(relativeError(qWide, fpWide)).toBeLessThan(0.03);
    expect([...qWide]).not.toEqual([...fpWide]);
    // The other branch, still chosen at run time: float32 as before.
    expect([...qNarrow]).toEqual([...fpNarrow]);
    // The session quantize() hands back runs the same graph as the saved file.
    const s = await q.createSession();
    expect([...((await s.run(wide)).y.data as Float32Array)]).toEqual([...qWide]);
    await s.release();
  });

  it('quantizes both branches when the batches take both, from one pass over a one-shot generator', async () => {
    const model = branchyModel();
    async function* batches() {
      yield feeds(24, 16000, 2);
      yield feeds(24, 8000, 3);
      yield feeds(24, 16000, 4);
    }
    const q = await quantize(model, { weights: 'ternary', groupSize: 4, keepEdgeLayers8bit: false, calibration: batches() });
    expect(q.report.layers.map((l) => [l.name, l.weights])).toEqual([['fc1', 'ternary'], ['fc2', 'ternary'], ['fc_else', 'ternary']]);
    expect(q.report.warnings.some((w) => /stay float32/.test(w))).toBe(false);
    const bytes = q.toBuffer();
    for (const rate of [16000, 8000]) {
      const f = feeds(6, rate, 9);
      const [want, got] = [await outputOf(model, f), await outputOf(bytes, f)];
      expect([...got]).not.toEqual([...want]);
      expect(relativeError(got, want)).toBeLessThan(0.35); // ternary N=4 on 16-32 inputs per output
    }
  });

  it('leaves a branch float32 when quantizing it fails, with the reason; a cancel still cancels', async () => {
    const graph = optimizeGraph(loadOnnxModel(branchyModel()));
    const branches = new IfBranches(graph);
    expect(branches.names).toEqual(['wide', 'x']);
    const f = feeds(4, 16000, 1);
    branches.collect(new Map([['wide', new Tensor('bool', Uint8Array.of(1), [])], ['x', f.x]]));
    const failing = await branches.quantize(graph, async () => {
      throw new Error('values that do not split into samples');
    });
    expect(failing.graph).toBe(graph);
    expect(failing.failed).toEqual([{ where: "If node 'pick', then_branch", message: 'values that do not split into samples' }]);
    const abort = Object.assign(new Error('stop'), { code: 'ERR_ABORTED' });
    await expect(branches.quantize(graph, async () => { throw abort; })).rejects.toBe(abort);
  });

  it('keeps the captured values of a branch within a byte budget: the first batch always, then while they fit', async () => {
    const graph = optimizeGraph(loadOnnxModel(branchyModel()));
    const branches = new IfBranches(graph, 3 * 40 * 16 * 4); // three batches of 40 samples
    const seen: number[] = [];
    const wide = new Tensor('bool', Uint8Array.of(1), []);
    for (let b = 0; b < 5; b++) branches.collect(new Map([['wide', wide], ['x', feeds(40, 16000, b).x]]));
    await branches.quantize(graph, async (branch, batches) => {
      seen.push(batches.length);
      return { graph: branch, report: null };
    });
    expect(seen).toEqual([3]);
    const tiny = new IfBranches(graph, 1);
    for (let b = 0; b < 2; b++) tiny.collect(new Map([['wide', wide], ['x', feeds(40, 16000, b).x]]));
    await tiny.quantize(graph, async (branch, batches) => {
      seen.push(batches.length);
      return { graph: branch, report: null };
    });
    expect(seen).toEqual([3, 1]);
  });
});
