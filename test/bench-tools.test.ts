// The whole-model benchmark's tools, with real onnxruntime-node and real models: the MLP
// generator (a small one, same code), the QDQ int8 model of the embedded model (fused by
// onnxruntime, close to fp32 on real test images), `ternion bench` as a user runs it, the MAC
// count, and the README / SVG renderer on a small fixture.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InferenceSession, Tensor, loadNpy, quantize } from '../lib';
import { engineSpec, parseEngines } from '../lib/bench/engines';
import { modelInfo } from '../lib/bench/model-info';
import { makeQdqModel, quantizeWeightPerChannel } from '../lib/bench/qdq';
import { median } from '../lib/bench/timer';
import { ModelProtoType, int64ToNumber, type ModelProtoMessage } from '../lib/onnx/proto';
import { expectCode } from './helpers';
import { runCli } from './ensure-dist';
import { ROOT } from './native-build';
import { encodeModel, valueInfo } from './onnx-build-model';

/* eslint-disable @typescript-eslint/no-require-imports */
const tools = require('../tools/make-bench-models.js') as {
  mlpModelBytes(o: { layers?: number; width?: number; seed?: number }): Uint8Array;
  calibrationFor(name: string, dims: number[], count: number): { data: Float32Array; dims: number[] };
  uniformData(count: number, seed: number): Float32Array;
};
const render = require('../bench/render-models.js') as {
  renderMarkdown(r: unknown): string;
  renderSvg(r: unknown): string;
  updateReadme(text: string, block: string): string;
};
type ProbeResult = {
  skipped?: string;
  isas: string[];
  compute: { name: string; gmacPerSecond: number }[];
  memory: { gbPerSecond: number };
  scaling?: Record<string, number>;
};
const peakProbe = require('../bench/peak-probe.js') as { runPeakProbe(o: { memMiB?: number; seconds?: number; threads?: number }): ProbeResult };
/* eslint-enable @typescript-eslint/no-require-imports */

const execFileAsync = promisify(execFile);
const CLI = join(ROOT, 'dist', 'cli', 'main.js');
const MODEL = join(ROOT, 'models', 'fashion-mnist-resnet.onnx');
let tmp: string;

function newestSource(dir = join(ROOT, 'lib')): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestSource(p) : entry.name.endsWith('.ts') ? statSync(p).mtimeMs : 0);
  }
  return newest;
}

const cli = runCli;

/** The tools run from dist/ and make dist's Tensor: the same data as this module's Tensor class. */
function fromDist(t: { data: Float32Array; dims: number[] }): Tensor {
  return new Tensor('float32', t.data, t.dims);
}

function opCounts(bytes: Uint8Array): Record<string, number> {
  const m = ModelProtoType.decode(bytes) as unknown as ModelProtoMessage;
  const counts: Record<string, number> = {};
  for (const n of m.graph!.node) counts[n.op_type] = (counts[n.op_type] ?? 0) + 1;
  return counts;
}

function argmax(data: Float32Array, row: number, classes: number): number {
  let best = 0;
  for (let c = 1; c < classes; c++) if (data[row * classes + c] > data[row * classes + best]) best = c;
  return best;
}

beforeAll(async () => {
  // The tools and the CLI run from dist/: rebuild it when lib/ is newer.
  if (!existsSync(CLI) || statSync(CLI).mtimeMs < newestSource()) {
    await execFileAsync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', ROOT]).catch((e) => console.warn(`tsc: ${e.stdout ?? e}`));
  }
  tmp = mkdtempSync(join(tmpdir(), 'ternion-bench-'));
}, 120_000);

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('tools/make-bench-models.js: the MLP', () => {
  it('is four Gemm layers with ReLU between, seeded He-scaled weights, a symbolic batch dim', () => {
    const bytes = tools.mlpModelBytes({ layers: 4, width: 256, seed: 7 });
    const m = ModelProtoType.decode(bytes) as unknown as ModelProtoMessage;
    const g = m.graph!;
    expect(g.node.map((n) => n.op_type)).toEqual(['Gemm', 'Relu', 'Gemm', 'Relu', 'Gemm', 'Relu', 'Gemm']);
    expect(g.input[0].type!.tensor_type!.shape!.dim[0].dim_param).toBe('batch');
    expect(int64ToNumber(g.input[0].type!.tensor_type!.shape!.dim[1].dim_value!)).toBe(256);
    const w = g.initializer.find((t) => t.name === 'fc2.weight')!;
    expect(w.dims.map(int64ToNumber)).toEqual([256, 256]);
    const values = new Float32Array(new Uint8Array(w.raw_data).buffer);
    const variance = values.reduce((a, v) => a + v * v, 0) / values.length;
    expect(variance).toBeGreaterThan((2 / 256) * 0.95);
    expect(variance).toBeLessThan((2 / 256) * 1.05);
    // Deterministic per seed.
    expect(Buffer.from(tools.mlpModelBytes({ layers: 4, width: 256, seed: 7 })).equals(Buffer.from(bytes))).toBe(true);
    expect(Buffer.from(tools.mlpModelBytes({ layers: 4, width: 256, seed: 8 })).equals(Buffer.from(bytes))).toBe(false);
  });

  it('loads in ternion and in onnxruntime-node, and both compute the same outputs', async () => {
    const bytes = tools.mlpModelBytes({ layers: 4, width: 256, seed: 3 });
    const x = tools.uniformData(5 * 256, 11);
    const t = await InferenceSession.create(bytes, { threads: 1 });
    const o = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1 });
    const a = (await t.run({ x: new Tensor('float32', x, [5, 256]) })).y.data as Float32Array;
    const b = (await o.run({ x: new ort.Tensor('float32', x, [5, 256]) })).y.data as Float32Array;
    await t.release();
    await o.release();
    expect(a.length).toBe(5 * 256);
    const scale = Math.max(...Array.from(b, Math.abs));
    expect(scale).toBeGreaterThan(0.1); // a signal went through the four layers
    let worst = 0;
    for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
    expect(worst / scale).toBeLessThan(1e-4);
  });
});

describe('the QDQ int8 model for onnxruntime', () => {
  it('quantizes weights per channel, symmetric, to the largest code', () => {
    const w = Float32Array.from([0.5, -1, 0.25, 2, 0, 0, -0.1, 0.1]);
    const { codes, scales } = quantizeWeightPerChannel(w, [4, 2], 0, 127);
    expect(Array.from(scales)).toEqual([1 / 127, 2 / 127, 1, 0.1 / 127].map(Math.fround));
    expect(Array.from(codes)).toEqual([64, -127, 16, 127, 0, 0, -127, 127]);
    // Along axis 1 (MatMul's [K, N]): channels are columns.
    expect(Array.from(quantizeWeightPerChannel(Float32Array.from([1, 4, -3, 1]), [2, 2], 1, 63).codes)).toEqual([21, 63, -63, 16]);
  });

  it('of the embedded model is fused by onnxruntime and agrees with fp32 on 1,000 real test images', async () => {
    const calibration = fromDist(tools.calibrationFor('fashion-mnist-resnet', [1, 28, 28], 256));
    const { bytes, report } = await makeQdqModel(readFileSync(MODEL), { ort, calibration });
    expect(report).toMatchObject({ foldedBatchNorms: 9, quantizedWeights: 10, calibrationSamples: 256 });
    const qdq = opCounts(bytes);
    expect(qdq.BatchNormalization).toBeUndefined();
    expect(qdq.DequantizeLinear).toBeGreaterThan(20);
    // What onnxruntime makes of it: every layer and residual add in int8, no fp32 Conv or Gemm left.
    const optimized = join(tmp, 'fashion.qdq.optimized.onnx');
    const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, optimizedModelFilePath: optimized });
    const fused = opCounts(readFileSync(optimized));
    expect(fused.QLinearConv).toBe(9);
    expect(fused.QLinearAdd).toBe(3);
    expect(fused.QGemm).toBe(1);
    expect(fused.Conv ?? 0).toBe(0);
    expect(fused.Gemm ?? 0).toBe(0);
    const fp32 = await ort.InferenceSession.create(MODEL, { intraOpNumThreads: 1 });
    const N = 1000;
    const images = loadNpy(join(ROOT, 'data', 'fashion-mnist-test-images.npy'));
    const labels = loadNpy(join(ROOT, 'data', 'fashion-mnist-test-labels.npy')).data as Uint8Array;
    const x = Float32Array.from((images.data as Uint8Array).subarray(0, N * 784), (v) => v / 255);
    const feeds = { image: new ort.Tensor('float32', x, [N, 1, 28, 28]) };
    const q = (await session.run(feeds)).logits.data as Float32Array;
    const f = (await fp32.run(feeds)).logits.data as Float32Array;
    await session.release();
    await fp32.release();
    let agree = 0, rightQ = 0, rightF = 0;
    for (let i = 0; i < N; i++) {
      const a = argmax(q, i, 10), b = argmax(f, i, 10);
      agree += a === b ? 1 : 0;
      rightQ += a === labels[i] ? 1 : 0;
      rightF += b === labels[i] ? 1 : 0;
    }
    expect(agree / N).toBeGreaterThanOrEqual(0.98);
    expect(rightQ / N).toBeGreaterThan(rightF / N - 0.015);
  });
});

describe('the QDQ tool on shape arithmetic', () => {
  it('quantizes float activations only: an Add of int64 Constant-node values (ShuffleNet\'s channel split) stays as it is', async () => {
    const c = (name: string, v: number[], dims: number[]) => ({ op: 'Constant', inputs: [], outputs: [name], attributes: [{ name: 'value', type: 4, t: { data_type: 7, dims, int64_data: v } }] });
    const r = (n: number) => Array.from({ length: n }, (_, i) => Math.sin(i * 1.7) * 0.5);
    const bytes = encodeModel({
      nodes: [
        { op: 'Conv', name: 'c0', inputs: ['x', 'w0', 'b0'], outputs: ['a'] },
        { op: 'Relu', name: 'r0', inputs: ['a'], outputs: ['ar'] },
        { op: 'Shape', name: 'shape', inputs: ['ar'], outputs: ['sh'] },
        c('i0', [0], []), c('zero', [0], []),
        { op: 'Gather', name: 'gather', inputs: ['sh', 'i0'], outputs: ['n0'], attributes: [{ name: 'axis', type: 2, i: 0 }] },
        { op: 'Add', name: 'shape_add', inputs: ['n0', 'zero'], outputs: ['n1'] },
        c('ax', [0], [1]),
        { op: 'Unsqueeze', name: 'unsq', inputs: ['n1', 'ax'], outputs: ['n1u'] },
        c('rest', [-1], [1]),
        { op: 'Concat', name: 'cat', inputs: ['n1u', 'rest'], outputs: ['shp'], attributes: [{ name: 'axis', type: 2, i: 0 }] },
        { op: 'Reshape', name: 'flat', inputs: ['ar', 'shp'], outputs: ['f'] },
        { op: 'Gemm', name: 'fc', inputs: ['f', 'wf', 'bf'], outputs: ['y'], attributes: [{ name: 'transB', type: 2, i: 1 }] },
      ],
      inputs: [valueInfo('x', ['N', 4, 6, 6])],
      outputs: [valueInfo('y', ['N', 5])],
      initializers: [
        { name: 'w0', dims: [8, 4, 1, 1], floatData: r(32) }, { name: 'b0', dims: [8], floatData: r(8) },
        { name: 'wf', dims: [5, 288], floatData: r(5 * 288) }, { name: 'bf', dims: [5], floatData: r(5) },
      ],
    });
    const calibration = new Tensor('float32', Float32Array.from({ length: 4 * 144 }, (_, i) => Math.cos(i) * 0.5 + 0.5), [4, 4, 6, 6]);
    const { bytes: qdq, report } = await makeQdqModel(bytes, { ort, calibration });
    expect(report.quantizedWeights).toBe(2);
    const counts = opCounts(qdq);
    expect(counts.QuantizeLinear).toBeGreaterThanOrEqual(3); // x, the conv's output (after Relu), y
    // No QuantizeLinear reads the shape arithmetic; onnxruntime loads and runs the model.
    const m = ModelProtoType.decode(qdq) as unknown as ModelProtoMessage;
    const quantized = m.graph!.node.filter((n) => n.op_type === 'QuantizeLinear').map((n) => n.input[0]);
    for (const t of ['sh', 'n0', 'n1', 'n1u', 'shp', 'zero']) expect(quantized).not.toContain(t);
    const session = await ort.InferenceSession.create(qdq);
    const out = await session.run({ x: new ort.Tensor('float32', (calibration.data as Float32Array).subarray(0, 144), [1, 4, 6, 6]) });
    expect(out.y.dims).toEqual([1, 5]);
    await session.release();
    // `ternion bench` on the QDQ file says what its engines run.
    const file = join(tmp, 'already-quantized.onnx');
    writeFileSync(file, qdq);
    const run = await cli(['bench', file, '--compare', 'ort-fp32,fp32', '--max-time', '0', '--no-memory']);
    expect(run.code).toBe(0);
    expect(run.stderr).toMatch(/is quantized already \((QuantizeLinear|DequantizeLinear) nodes\)/);
    expect((await cli(['bench', MODEL, '--compare', 'fp32', '--max-time', '0', '--no-memory'])).stderr).not.toMatch(/quantized already/);
  });
});

describe('MACs from the shapes', () => {
  it('equal the quantizer\'s own count of the embedded model\'s layers', async () => {
    const info = modelInfo(MODEL, { batch: 1 });
    expect(info.inputs).toEqual([{ name: 'image', dtype: 'float32', declared: ['batch', 1, 28, 28], batchAxis: 0, sampleDims: [1, 28, 28], values: { kind: 'uniform' } }]);
    const calibration = fromDist(tools.calibrationFor('fashion-mnist-resnet', [1, 28, 28], 32));
    const q = await quantize(MODEL, { weights: 'int8', calibration });
    expect(q.report.layers).toHaveLength(10);
    expect(info.macsPerSample).toBe(q.report.layers.reduce((a, l) => a + (l.macs ?? NaN), 0));
  });

  it('of the MLP are layers x width^2', () => {
    const file = join(tmp, 'mlp.onnx');
    writeFileSync(file, tools.mlpModelBytes({ layers: 4, width: 128, seed: 1 }));
    expect(modelInfo(file).macsPerSample).toBe(4 * 128 * 128);
  });
});

describe('ternion bench', () => {
  it('prints JSON with a row per engine and positive latencies (embedded model, batch 1, 1 thread)', async () => {
    const r = await cli(['bench', MODEL, '--batch', '1', '--threads', '1', '--compare', 'fp32,int8,ternary-g16', '--json', '--max-time', '0.2']);
    expect(r.stderr).not.toMatch(/ERR_/);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.inputs).toEqual([{ name: 'image', type: 'float32', dims: [1, 1, 28, 28] }]);
    expect(out.batch).toBe(1);
    expect(out.threads).toBe(1);
    expect(out.macsPerSample).toBe(modelInfo(MODEL).macsPerSample);
    expect(out.rows.map((row: { engine: string }) => row.engine)).toEqual(['fp32', 'int8', 'ternary-g16']);
    expect(out.rows.map((row: { label: string }) => row.label)).toEqual(['ternion fp32', 'ternion int8', 'ternion ternary N=16']);
    for (const row of out.rows) {
      expect(row.error).toBeUndefined();
      expect(row.medianMs).toBeGreaterThan(0);
      expect(row.samplesMs.length).toBeGreaterThanOrEqual(3);
      expect(row.medianMs).toBeCloseTo(median(row.samplesMs), 9);
      expect(row.imagesPerSecond).toBeCloseTo(1000 / row.medianMs, 6);
      expect(row.gmacPerSecond).toBeGreaterThan(0);
      // No onnxruntime engine asked for: no ratios to it.
      expect(row.vsOrtFp32).toBeNull();
      expect(row.peakRssMB).toBeGreaterThan(0);
      expect(row.isa).toBe(out.kernels);
    }
    // The quantized files are smaller than the fp32 model's.
    expect(out.rows[2].modelBytes).toBeLessThan(out.rows[1].modelBytes);
    expect(out.rows[1].modelBytes).toBeLessThan(out.rows[0].modelBytes);
  });

  it('compares with onnxruntime-node: ratios are medians divided', async () => {
    const r = await cli(['bench', MODEL, '--compare', 'ort-fp32,ort-int8,int8', '--json', '--max-time', '0.2', '--no-memory']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    const [f, q, t] = out.rows;
    expect(f.vsOrtFp32).toBe(1);
    expect(q.vsOrtInt8).toBe(1);
    expect(t.vsOrtFp32).toBeCloseTo(f.medianMs / t.medianMs, 9);
    expect(t.vsOrtInt8).toBeCloseTo(q.medianMs / t.medianMs, 9);
    expect(t.rssMB).toBeNull();
    expect(out.onnxruntime).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('EXPECTED FAILURE - a symbolic dim other than the batch needs --shape', async () => {
    const file = join(tmp, 'symbolic.onnx');
    writeFileSync(file, encodeModel({
      nodes: [{ op: 'Relu', inputs: ['x'], outputs: ['y'], name: 'relu' }],
      inputs: [valueInfo('x', ['N', 'C'])],
      outputs: [valueInfo('y', ['N', 'C'])],
    }));
    expectCode(() => modelInfo(file), 'ERR_SHAPE_MISMATCH', /dim 1 \("C"\) of input "x" \[N, C\] is symbolic; pass --shape/);
    const bad = await cli(['bench', file, '--compare', 'fp32', '--json']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/ternion: ERR_SHAPE_MISMATCH: dim 1 \("C"\)/);
    const good = await cli(['bench', file, '--compare', 'fp32', '--shape', '16', '--json', '--max-time', '0', '--no-memory']);
    expect(good.code).toBe(0);
    expect(JSON.parse(good.stdout).inputs[0].dims).toEqual([1, 16]);
  });

  it('BAD CALL - unknown engines and .tern models are refused', async () => {
    expectCode(() => parseEngines('fp32,ternary-g5'), 'ERR_INVALID_ARGUMENT', /ternary-gN.*received "ternary-g5"/);
    expectCode(() => parseEngines('int8,int8'), 'ERR_INVALID_ARGUMENT', /listed twice/);
    expect(engineSpec('ternary-asym-g64')).toMatchObject({ kind: 'ternion', weights: 'ternary-asym', groupSize: 64 });
    const r = await cli(['bench', MODEL, '--compare', 'fp16']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/ERR_INVALID_ARGUMENT: Expected engines among .* but received "fp16"/);
  });
});

describe('bench/peak-probe', () => {
  it.runIf(process.arch === 'x64')('measures one core and the 1 -> 2 thread scaling of the same loops', () => {
    const r = peakProbe.runPeakProbe({ memMiB: 64, seconds: 0.02, threads: 2 });
    expect(r.skipped).toBeUndefined();
    expect(r.memory.gbPerSecond).toBeGreaterThan(0);
    if (!r.isas.includes('avx2')) return;
    expect(r.compute.map((c) => c.name)).toContain('u8s8 vpmaddubsw avx2');
    for (const c of r.compute) expect(c.gmacPerSecond).toBeGreaterThan(0);
    const { threads, ...ratios } = r.scaling ?? {};
    expect(threads).toBe(2);
    expect(Object.keys(ratios)).toEqual(expect.arrayContaining(['u8s8 vpmaddubsw avx2', 'streaming read']));
    // Two threads each doing one thread's work: the aggregate is more than none and at most ~2x.
    // (Only a sanity range: on a shared machine a contended run measured 0.29.)
    for (const v of Object.values(ratios)) {
      expect(v).toBeGreaterThan(0.05);
      expect(v).toBeLessThan(2.6);
    }
  }, 60_000);

  // Each loop counts twelve (or eight) multiplies per iteration; it must execute that many. An
  // intrinsics version once compiled to one FMA per iteration, so the fp32 "peak" was 1.5x the
  // real one and every fp32 kernel looked far from its limit.
  it.runIf(process.arch === 'x64')('runs, in the built binary, every multiply its loops count', async () => {
    peakProbe.runPeakProbe({ memMiB: 16, seconds: 0.01 });
    const { stdout } = await promisify(execFile)('objdump', ['-d', '--no-show-raw-insn', join(ROOT, 'build', 'bench', 'peak-probe')], { maxBuffer: 64 << 20 });
    const counts = new Map<string, Map<string, number>>();
    let fn = '';
    for (const line of stdout.split('\n')) {
      const head = /^[0-9a-f]+ <(.*)>:$/.exec(line);
      if (head) fn = head[1];
      const op = /\t(?:\{vex\} )?(vfmadd231ps|vpdpbusd|vpmaddubsw|vpmaddwd)\s/.exec(line);
      if (!op || !fn) continue;
      const ops = counts.get(fn) ?? new Map<string, number>();
      ops.set(op[1], (ops.get(op[1]) ?? 0) + 1);
      counts.set(fn, ops);
    }
    const find = (name: string) => [...counts.entries()].find(([f]) => f.includes(name))?.[1];
    expect(find('fma_avx2')?.get('vfmadd231ps')).toBe(12);
    expect(find('fma_avx512')?.get('vfmadd231ps')).toBe(12);
    expect(find('dpbusd_avx512')?.get('vpdpbusd')).toBe(12);
    expect(find('dpbusd_avxvnni')?.get('vpdpbusd')).toBe(12);
    expect(find('madd16_avx2')?.get('vpmaddwd')).toBe(8);
    expect(find('maddubs_avx2')?.get('vpmaddubsw')).toBe(8);
  }, 60_000);
});

describe('bench/render-models.js', () => {
  const row = (model: string, batch: number, threads: number, engine: string, medianMs: number, ortFp32: number, ortInt8: number) => ({
    model, batch, threads, engine, label: engine, medianMs, samplesMs: [medianMs], imagesPerSecond: (1000 * batch) / medianMs,
    gmacPerSecond: 1, vsOrtFp32: ortFp32 / medianMs, vsOrtInt8: ortInt8 / medianMs, fractionOfLimit: 0.25,
  });
  const engines = ['ort-fp32', 'ort-int8', 'fp32', 'int8', 'ternary-g4', 'ternary-g64'];
  const ms: Record<string, number> = { 'ort-fp32': 40, 'ort-int8': 20, fp32: 50, int8: 16, 'ternary-g4': 25, 'ternary-g64': 10 };
  const fixture = {
    date: '2026-01-02T03:04:05.000Z',
    host: { cpuModel: 'Test CPU', cores: 2, cpuFeatures: ['avx2', 'fma'], kernels: 'avx2' },
    node: 'v20.0.0', onnxruntime: '1.30.0', benchmarkJs: '2.1.4',
    loadAverage: { start: [1, 1, 1], end: [2, 2, 2] },
    settings: { quick: false, engines, skipped: [], memory: 'per engine at batch 1, 1 thread' },
    methods: { memory: 'fixture memory method.' },
    peak: { isas: ['avx2', 'fma'], compute: [{ name: 'fp32 FMA avx2', instruction: 'vfmadd231ps ymm', kind: 'fp32', gmacPerSecond: 50 }], memory: { name: 'streaming read, one core', bufferMiB: 1024, gbPerSecond: 9 } },
    models: [{ key: 'resnet18', engines: Object.fromEntries(engines.map((e) => [e, { modelBytes: 1e6 }])), memory: { int8: { rssMB: 12.4, peakRssMB: 20.6 } } }],
    results: [
      ...engines.map((e) => row('resnet18', 1, 1, e, ms[e], 40, 20)),
      ...engines.map((e) => row('resnet18', 64, 2, e, ms[e] * 64, 40 * 64, 20 * 64)),
    ],
  };

  it('writes the table between the markers, with every engine and the ratios', () => {
    const block = render.renderMarkdown(fixture);
    expect(block.startsWith('<!-- models-bench:start -->')).toBe(true);
    expect(block.endsWith('<!-- models-bench:end -->')).toBe(true);
    expect(block).toContain('| model | ORT fp32 | ORT int8 | ternion fp32 | ternion int8 | ternary N=4 | ternary N=64 |');
    // ternion int8: 16 ms, 40/16 = 2.50x ORT fp32, 20/16 = 1.25x ORT int8.
    expect(block).toContain('| ResNet-18 | 40.0 ms | 20.0 ms (2.00x) | 50.0 ms (0.80x / 0.40x) | 16.0 ms (2.50x / 1.25x) | 25.0 ms (1.60x / 0.80x) | 10.0 ms (4.00x / 2.00x) |');
    expect(block).toContain('ternion int8 >= onnxruntime int8: **met** (ResNet-18 1.25x)');
    expect(block).toContain('FGQ ternary N=4 >= 1.2x onnxruntime int8: **not met** (ResNet-18 0.80x)');
    expect(block).toContain('ternion fp32 >= 0.8x onnxruntime fp32: **met** (ResNet-18 0.80x)');
    expect(block).toMatch(/Batch 64, 2 threads.*\*\*2 of 3 met\*\*/);
    expect(block).toContain('| ResNet-18: RSS (peak) MB | - | - | - | 12 (21) | - | - |');
    expect(block).toContain('fp32 FMA avx2 (vfmadd231ps ymm) 50.0 GMAC/s');
    const readme = render.updateReadme('intro\n<!-- models-bench:start -->\nold\n<!-- models-bench:end -->\nrest\n', block);
    expect(readme).toBe(`intro\n${block}\nrest\n`);
    expect(() => render.updateReadme('no markers', block)).toThrow(/no <!-- models-bench:start -->/);
  });

  it('checks batch 16: thresholds with 2 threads, and 2 threads against one', () => {
    const b16 = { ...fixture, results: [
      ...fixture.results.filter((x) => x.batch === 1),
      row('resnet18', 16, 1, 'ort-int8', 320, 640, 320), row('resnet18', 16, 2, 'ort-int8', 200, 400, 200),
      row('resnet18', 16, 1, 'int8', 100, 640, 320), row('resnet18', 16, 2, 'int8', 70, 400, 200),
      row('resnet18', 16, 1, 'ternary-g64', 100, 640, 320), row('resnet18', 16, 2, 'ternary-g64', 55, 400, 200),
    ] };
    const block = render.renderMarkdown(b16);
    expect(block).toContain('- Batch 16, 2 threads, the same thresholds within 20%: **2 of 2 met** (ResNet-18 ternion int8 2.86x vs 0.80x needed, ResNet-18 ternary N=64 3.64x vs 0.96x needed).');
    expect(block).toContain('- Batch 16, 2 threads >= 1.7x one thread: **1 of 2 met** (ResNet-18 ternion int8 1.43x, ResNet-18 ternary N=64 1.82x).');
    expect(block).toContain('  - onnxruntime in the same run, for comparison: ResNet-18 ORT int8 1.60x.');
    expect(block).not.toContain("This machine's own 1 -> 2 thread scaling");
    const probed = { ...b16, peak: { ...b16.peak, scaling: { threads: 2, 'fp32 FMA avx2': 1.93, 'streaming read': 1.41 } } };
    expect(render.renderMarkdown(probed)).toContain('median of 7 rounds): fp32 FMA avx2 1.93x, streaming read 1.41x.');
  });

  it('checks the memory target against what each session reports holding', () => {
    const withHeld = { ...fixture, models: [{ ...fixture.models[0], memory: { int8: { rssMB: 12.4, peakRssMB: 20.6, heldMB: 10, firstRssMB: 14.2 }, 'ternary-g64': { rssMB: 5, peakRssMB: 6, heldMB: 4.8, firstRssMB: 7.25 } } }] };
    const block = render.renderMarkdown(withHeld);
    expect(block).toContain('| ResNet-18: RSS (peak) MB | - | - | - | 12 (21) | - | 5.0 (6.0) |');
    expect(block).toContain("| ResNet-18: first session's RSS MB | - | - | - | 14 | - | 7.3 |");
    expect(block).toContain('| ResNet-18: held MB (RSS / held) | - | - | - | 10 (1.24x) | - | 4.8 (1.04x) |');
    expect(block).toContain('packed weights + activation arena + 10%: **1 of 2 met** (over: ResNet-18 ternion int8 1.24x)');
    const ok = { ...fixture, models: [{ ...fixture.models[0], memory: { int8: { rssMB: 10.5, peakRssMB: 20.6, heldMB: 10 } } }] };
    expect(render.renderMarkdown(ok)).toContain('packed weights + activation arena + 10%: **met**');
  });

  it('draws one bar per model and engine (but onnxruntime fp32, the baseline), deterministically', () => {
    const svg = render.renderSvg(fixture);
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    const bars = [...svg.matchAll(/<rect [^>]*><title>([^<]+)<\/title><\/rect>/g)].map((m) => m[1]);
    expect(bars).toEqual(['ResNet-18, ORT int8: 2.00x', 'ResNet-18, ternion fp32: 0.80x', 'ResNet-18, ternion int8: 2.50x', 'ResNet-18, ternary N=4: 1.60x', 'ResNet-18, ternary N=64: 4.00x']);
    expect(svg).toContain('>ternary N=64</text>');
    expect(render.renderSvg(fixture)).toBe(svg);
  });
});
