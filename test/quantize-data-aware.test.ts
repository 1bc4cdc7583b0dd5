// Data-aware quantization (issue 8): the linear algebra, the layer-input rows the statistics are
// built from (checked against the executor's own convolution), error feedback and scale refit
// against their objective, and the whole method on the embedded Fashion-MNIST model.
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { InferenceSession, loadNpy, Tensor } from '../lib';
import type { Graph } from '../lib/ir';
import { optimizeGraph } from '../lib/ir';
import { quantize, findLayers } from '../lib/quantize';
import {
  choleskyUpper, convGeometry, dampedHessian, expandToLayout, errorFeedbackCodes, inverseCholeskyUpper, inverseSpd, LayerRows, refitScales, solveSpdInPlace,
} from '../lib/quantize/data-aware';
import { feedbackColumnJs, type LayerCodes } from '../lib/quantize/data-aware/error-feedback';
import { gemmLayout, quantizeWeights, toGemmRows, type GroupScaledWeights } from '../lib/quantize/weights';
import { groupScheme } from '../lib/quantize/weights/groups';
import { native } from '../lib/native';
import { refitNormalEquationsJs } from '../lib/quantize/data-aware/refit-scales';
import { expectCode, rng } from './helpers';
import { floatTensor, graph, input, int, ints, node, str } from './ir-build-graph';
import { ROOT } from './native-build';

function randomSpd(n: number, seed: number, extra = 5): Float64Array {
  const r = rng(seed);
  const m = n + extra;
  const X = Float64Array.from({ length: n * m }, () => r() - 0.5);
  const H = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let k = 0; k < m; k++) s += X[i * m + k] * X[j * m + k];
      H[i * n + j] = s + (i === j ? 0.05 : 0);
    }
  }
  return H;
}

function maxRelDiff(a: Float64Array, b: Float64Array): number {
  let d = 0, m = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    m = Math.max(m, Math.abs(a[i]));
  }
  return d / m;
}

describe('data-aware linear algebra', () => {
  it('inverseCholeskyUpper(H) is the upper Cholesky factor of H^-1 (odd sizes)', () => {
    for (const n of [1, 2, 3, 17, 64, 129]) {
      const H = randomSpd(n, n);
      const U = inverseCholeskyUpper(H, n);
      expect(maxRelDiff(choleskyUpper(inverseSpd(H, n), n), U), `n=${n}`).toBeLessThan(1e-9);
      // U^T U H = I
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < n; j++) {
          let s = 0;
          for (let k = 0; k < n; k++) {
            let uu = 0;
            for (let l = 0; l <= Math.min(i, k); l++) uu += U[l * n + i] * U[l * n + k];
            s += uu * H[k * n + j];
          }
          expect(Math.abs(s - (i === j ? 1 : 0)), `n=${n} (${i},${j})`).toBeLessThan(1e-7);
        }
      }
      for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) expect(U[i * n + j]).toBe(0);
    }
  });

  it('native helpers equal their TypeScript references: inverse Cholesky factor, refit normal equations', () => {
    for (const n of [1, 5, 33, 130]) {
      const H = randomSpd(n, 100 + n);
      expect(maxRelDiff(inverseCholeskyUpper(H, n), native().inverseCholeskyUpper(H, n)), `n=${n}`).toBeLessThan(1e-9);
    }
    const r = rng(5);
    for (const [K, G, asym] of [[12, 4, false], [24, 8, true], [9, 9, false], [20, 4, true]] as const) {
      const H = randomSpd(K, K);
      const w = Float32Array.from({ length: K }, () => r() - 0.5);
      const codes = Int8Array.from({ length: K }, () => Math.floor(r() * 3) - 1);
      const m = (K / G) * (asym ? 2 : 1);
      const A = new Float64Array(m * m), c = new Float64Array(m);
      native().refitNormalEquations(w, codes, H, K, G, asym, A, c);
      const ref = refitNormalEquationsJs(w, codes, H, K, G, asym);
      expect(maxRelDiff(ref.A, A)).toBeLessThan(1e-12);
      expect(maxRelDiff(ref.c, c)).toBeLessThan(1e-12);
    }
    // The native entry points validate what they get.
    expectCode(() => native().inverseCholeskyUpper(new Float64Array(3), 2), 'ERR_SHAPE_MISMATCH', /H to have 4 elements/);
    expectCode(() => native().feedbackColumn(new Float64Array(6), new Float64Array(9), 2, 3, 3, new Float64Array(2)), 'ERR_INVALID_ARGUMENT', /for j/);
    expectCode(() => native().feedbackColumn(new Float64Array(5), new Float64Array(9), 2, 3, 0, new Float64Array(2)), 'ERR_SHAPE_MISMATCH', /W to have 6 elements/);
    expectCode(() => native().inverseCholeskyUpper(new Float32Array(4) as never, 2), 'ERR_DTYPE', /Float64Array for H/);
    expectCode(() => native().inverseCholeskyUpper(Float64Array.from([1, 2, 2, 1]), 2), 'ERR_INTERNAL', /not positive definite/);
    expectCode(() => native().refitNormalEquations(new Float32Array(4), new Int8Array(4), new Float64Array(16), 4, 3, false, new Float64Array(1), new Float64Array(1)), 'ERR_INVALID_ARGUMENT', /must divide K/);
    expectCode(() => native().refitNormalEquations(new Float32Array(4), Int8Array.from([0, 9, 0, 0]), new Float64Array(16), 4, 2, false, new Float64Array(4), new Float64Array(2)), 'ERR_INVALID_ARGUMENT', /codes\[1\] = 9/);
  });

  it('solveSpdInPlace solves; a matrix that is not positive definite is an ERR_INTERNAL, not NaNs', () => {
    const n = 31;
    const H = randomSpd(n, 7);
    const x = Float64Array.from({ length: n }, (_, i) => Math.sin(i));
    const b = new Float64Array(n);
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) b[i] += H[i * n + j] * x[j];
    solveSpdInPlace(Float64Array.from(H), b, n);
    expect(maxRelDiff(x, b)).toBeLessThan(1e-8);
    expectCode(() => inverseSpd(Float64Array.from([1, 2, 2, 1]), 2), 'ERR_INTERNAL', /not positive definite/);
  });
});

describe('layer input rows (what H = X^T X is built from)', () => {
  // W_gemm . row + b must equal the executor's own output at that position, for every row.
  async function checkRows(g: Graph, x: Tensor, maxRows = 1 << 30): Promise<number> {
    const opt = optimizeGraph(g);
    const [layer] = findLayers(opt);
    const layout = gemmLayout(layer.dims, 1);
    const sampler = new LayerRows(layer.kind, layout, layer.kind === 'conv' ? convGeometry(layer.node, layer.dims.slice(2)) : null, maxRows);
    const s = InferenceSession.fromGraph(g);
    const y = (await s.run({ x })).y;
    await s.release();
    const { columns, count } = sampler.sample(x);
    const W = toGemmRows(layer.weights, layout);
    const K = layout.K, Co = layout.rows;
    const positions = y.size / (y.dims[0] * Co);
    let checked = 0;
    for (let r = 0; r < count; r++) {
      const n = Math.floor(r / positions), p = r % positions;
      for (let co = 0; co < Co; co++) {
        let v = layer.bias ? layer.bias[co] : (opt.initializers.get(layer.node.inputs[2] ?? '')?.data[co] as number | undefined) ?? 0;
        for (let k = 0; k < K; k++) v += W[co * K + k] * columns[k * count + r];
        const want = layer.kind === 'conv' ? (y.data as Float32Array)[(n * Co + co) * positions + p] : (y.data as Float32Array)[r * Co + co];
        expect(Math.abs(v - want), `row ${r} channel ${co}`).toBeLessThan(1e-4 * (1 + Math.abs(want)));
        checked++;
      }
    }
    return checked;
  }

  function randomInput(dims: number[], seed: number): Tensor {
    const r = rng(seed);
    const n = dims.reduce((a, b) => a * b, 1);
    return new Tensor('float32', Float32Array.from({ length: n }, () => r() * 2 - 1), dims);
  }

  const conv = (attrs: Record<string, ReturnType<typeof ints> | ReturnType<typeof str>>, wDims: number[], xDims: number[]) => graph({
    inputs: [input('x', xDims)],
    outputs: ['y'],
    nodes: [node('Conv', ['x', 'w', 'b'], ['y'], attrs, 'conv')],
    initializers: [floatTensor('w', wDims, Array.from({ length: wDims.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(i * 1.7))), floatTensor('b', [wDims[0]])],
  });

  it('2-D conv: explicit asymmetric pads, stride 2, dilation (odd sizes)', async () => {
    const g = conv({ strides: ints([2, 1]), pads: ints([1, 0, 2, 1]), dilations: ints([1, 2]) }, [5, 3, 3, 2], [2, 3, 9, 7]);
    expect(await checkRows(g, randomInput([2, 3, 9, 7], 1))).toBeGreaterThan(50);
  });

  it('2-D conv: auto_pad SAME_UPPER / SAME_LOWER / VALID', async () => {
    for (const pad of ['SAME_UPPER', 'SAME_LOWER', 'VALID']) {
      const g = conv({ auto_pad: str(pad), strides: ints([2, 2]) }, [4, 2, 3, 3], [1, 2, 8, 7]);
      expect(await checkRows(g, randomInput([1, 2, 8, 7], 2)), pad).toBeGreaterThan(10);
    }
  });

  it('1-D conv and a 1x1 conv', async () => {
    expect(await checkRows(conv({ pads: ints([2, 1]) }, [3, 4, 5], [2, 4, 11]), randomInput([2, 4, 11], 3))).toBeGreaterThan(10);
    expect(await checkRows(conv({}, [6, 5, 1, 1], [1, 5, 3, 3]), randomInput([1, 5, 3, 3], 4))).toBeGreaterThan(10);
  });

  it('Gemm (transB) and MatMul with leading dims', async () => {
    const gemm = graph({
      inputs: [input('x', [3, 7])], outputs: ['y'],
      nodes: [node('Gemm', ['x', 'w', 'b'], ['y'], { transB: int(1) }, 'fc')],
      initializers: [floatTensor('w', [5, 7]), floatTensor('b', [5])],
    });
    expect(await checkRows(gemm, randomInput([3, 7], 5))).toBe(15);
    const matmul = graph({
      inputs: [input('x', [2, 3, 6])], outputs: ['y'],
      nodes: [node('MatMul', ['x', 'w'], ['y'], {}, 'mm')],
      initializers: [floatTensor('w', [6, 4])],
    });
    expect(await checkRows(matmul, randomInput([2, 3, 6], 6))).toBe(24);
  });

  it('subsampling takes an even, deterministic subset of rows', async () => {
    const g = conv({ pads: ints([1, 1, 1, 1]) }, [2, 2, 3, 3], [4, 2, 6, 6]);
    const layer = findLayers(optimizeGraph(g))[0];
    const sampler = new LayerRows('conv', gemmLayout(layer.dims, 1), convGeometry(layer.node, [3, 3]), 10);
    const x = randomInput([4, 2, 6, 6], 9);
    const a = sampler.sample(x), b = sampler.sample(x);
    expect(a.count).toBe(10);
    expect(a.columns).toEqual(b.columns);
  });
});

/** Output error tr((W - Wq) H (W - Wq)^T) of a group-scaled layer. */
function outputError(W: Float32Array, q: LayerCodes, H: Float64Array, K: number, rows: number, G: number): number {
  const slots = K / G;
  let total = 0;
  const d = new Float64Array(K);
  for (let r = 0; r < rows; r++) {
    for (let k = 0; k < K; k++) {
      const c = q.codes[r * K + k];
      const slot = r * slots + Math.floor(k / G);
      const v = c > 0 ? c * q.scalePos[slot] : c < 0 ? c * (q.scaleNeg ? q.scaleNeg[slot] : q.scalePos[slot]) : 0;
      d[k] = W[r * K + k] - v;
    }
    for (let i = 0; i < K; i++) {
      let s = 0;
      for (let j = 0; j < K; j++) s += H[i * K + j] * d[j];
      total += d[i] * s;
    }
  }
  return total;
}

describe('error feedback and scale refit minimise the output error', () => {
  // Correlated inputs (what makes weight error a poor proxy) and Laplacian-ish weights.
  function problem(seed: number, rows: number, cin: number, spatial: number[]) {
    const r = rng(seed);
    const dims = [rows, cin, ...spatial];
    const n = dims.reduce((a, b) => a * b, 1);
    const weights = Float32Array.from({ length: n }, () => Math.log(r() + 1e-3) * (r() < 0.5 ? -1 : 1) * 0.1);
    const layout = gemmLayout(dims, 1);
    const K = layout.K;
    const samples = 4 * K;
    const base = Float64Array.from({ length: samples * K }, () => r() - 0.5);
    const H = new Float64Array(K * K);
    for (let s = 0; s < samples; s++) {
      const x = new Float64Array(K);
      for (let k = 0; k < K; k++) x[k] = base[s * K + k] + 0.8 * base[s * K + ((k + 1) % K)] + (k % 3 === 0 ? 1 : 0);
      for (let i = 0; i < K; i++) for (let j = 0; j < K; j++) H[i * K + j] += x[i] * x[j];
    }
    return { weights, dims, H };
  }

  for (const [label, bits, asym, N] of [['ternary', 2, false, 4], ['ternary-asym', 2, true, 8], ['int4', 4, false, 8], ['ternary filter', 2, false, 'filter']] as const) {
    it(`${label} N=${N}: error feedback beats plain rounding; refit never makes it worse`, () => {
      const { weights, dims, H: Hu } = problem(11, 6, 12, [3]);
      const wopts = { bits, groupSize: N, asymmetric: bits === 2 ? asym : undefined, form: 'group-scaled' } as const;
      const plain = quantizeWeights(weights, dims, wopts) as GroupScaledWeights;
      const layout = plain.layout;
      const scheme = groupScheme(layout, 'channels', N);
      const rows = toGemmRows(weights, layout);
      const H = expandToLayout(Hu, layout); // 12 channels padded to 16 at N = 8
      const pad = new Uint8Array(layout.K);
      layout.source.forEach((s, k) => { if (s < 0) pad[k] = 1; });
      const Hd = dampedHessian(H, layout.K, pad, 0.01);
      const grid = { bits, asym: plain.asym, threshold: 'exact', int4Clipping: 'max' } as const;
      const ef = errorFeedbackCodes(rows, scheme, Hd, grid);
      // The native feedback step is bit-identical to the TypeScript one.
      const efJs = errorFeedbackCodes(rows, scheme, Hd, grid, undefined, feedbackColumnJs);
      expect(Buffer.from(ef.codes.buffer).equals(Buffer.from(efJs.codes.buffer))).toBe(true);
      expect(ef.scalePos).toEqual(efJs.scalePos);
      expect(ef.scaleNeg).toEqual(efJs.scaleNeg);
      const plainCodes: LayerCodes = { codes: plain.codes, scalePos: plain.scalePos, scaleNeg: plain.scaleNeg };
      const ePlain = outputError(rows, plainCodes, H, layout.K, layout.rows, plain.G);
      const eEf = outputError(rows, ef, H, layout.K, layout.rows, plain.G);
      expect(eEf).toBeLessThan(ePlain);
      // codes stay on the grid
      for (const c of ef.codes) expect(bits === 2 ? Math.abs(c) <= 1 : Math.abs(c) <= 7).toBe(true);
      const refit: LayerCodes = { codes: ef.codes, scalePos: ef.scalePos.slice(), scaleNeg: ef.scaleNeg?.slice() ?? null };
      refitScales(rows, scheme, Hd, refit);
      const eRefit = outputError(rows, refit, H, layout.K, layout.rows, plain.G);
      expect(eRefit).toBeLessThanOrEqual(eEf * (1 + 1e-9));
      for (const s of refit.scalePos) expect(s).toBeGreaterThanOrEqual(0);
      // Refit of the plain codes also helps.
      const plainRefit: LayerCodes = { codes: plain.codes, scalePos: plain.scalePos.slice(), scaleNeg: plain.scaleNeg?.slice() ?? null };
      refitScales(rows, scheme, Hd, plainRefit);
      expect(outputError(rows, plainRefit, H, layout.K, layout.rows, plain.G)).toBeLessThanOrEqual(ePlain * (1 + 1e-9));
      console.log(`${label} N=${N}: output error plain ${ePlain.toFixed(4)}, error feedback ${eEf.toFixed(4)}, + refit ${eRefit.toFixed(4)}`);
    });
  }
});

describe('quantize({ dataAware }) on the embedded Fashion-MNIST model', () => {
  const modelPath = join(ROOT, 'models', 'fashion-mnist-resnet.onnx');
  const EVAL = 2000;
  let calibration: Tensor, x: Tensor, labels: Uint8Array, fp32 = 0;

  async function top1(session: InferenceSession): Promise<number> {
    const logits = (await session.run({ image: x })).logits.data as Float32Array;
    await session.release();
    let c = 0;
    for (let i = 0; i < EVAL; i++) {
      let b = 0;
      for (let k = 1; k < 10; k++) if (logits[i * 10 + k] > logits[i * 10 + b]) b = k;
      if (b === labels[i]) c++;
    }
    return c / EVAL;
  }

  beforeAll(async () => {
    const images = loadNpy(join(ROOT, 'data', 'fashion-mnist-test-images.npy')).data as Uint8Array;
    labels = loadNpy(join(ROOT, 'data', 'fashion-mnist-test-labels.npy')).data as Uint8Array;
    const calib = loadNpy(join(ROOT, 'data', 'fashion-mnist-calib-images.npy')).data as Uint8Array;
    calibration = new Tensor('float32', Float32Array.from(calib.subarray(0, 256 * 784), (v) => v / 255), [256, 1, 28, 28]);
    x = new Tensor('float32', Float32Array.from(images.subarray(0, EVAL * 784), (v) => v / 255), [EVAL, 1, 28, 28]);
    fp32 = await top1(await InferenceSession.create(modelPath));
  });

  it('ternary N=16: data-aware recovers what the weight-error thresholds lose; every method is reported; deterministic', async () => {
    const plain = await quantize(modelPath, { weights: 'ternary', groupSize: 16, calibration });
    const da = await quantize(modelPath, { weights: 'ternary', groupSize: 16, calibration, dataAware: true });
    const [aPlain, aDa] = [await top1(await plain.createSession()), await top1(await da.createSession())];
    console.log(`ternary N=16 on ${EVAL} images: fp32 ${fp32}, plain ${aPlain}, data-aware ${aDa}`);
    expect(aDa).toBeGreaterThan(aPlain + 0.2);
    expect(aDa).toBeGreaterThan(fp32 - 0.025);
    for (const l of da.report.layers) {
      if (l.weights === 'int8') expect(l.methods).toEqual(['bias-correction']);
      else expect(l.methods).toEqual(['error-feedback', 'refit-scales', 'bias-correction']);
    }
    expect(plain.report.layers.every((l) => l.methods.length === 0)).toBe(true);
    const again = await quantize(modelPath, { weights: 'ternary', groupSize: 16, calibration, dataAware: true });
    expect(Buffer.from(again.toBuffer()).equals(Buffer.from(da.toBuffer()))).toBe(true);
  }, 300_000);

  it("calibrate: 'auto' picks, per tensor, one of max / percentile / mse (the same parameters that method gives)", async () => {
    const auto = await quantize(modelPath, { weights: 'ternary', groupSize: 16, calibration, calibrate: 'auto' });
    const by = new Map<string, Awaited<ReturnType<typeof quantize>>>();
    for (const m of ['max', 'percentile', 'mse'] as const) by.set(m, await quantize(modelPath, { weights: 'ternary', groupSize: 16, calibration, calibrate: m }));
    const chosen = auto.report.layers.map((l) => l.activationClipping);
    console.log(`auto clipping: ${chosen.join(' ')}`);
    auto.report.layers.forEach((l, i) => {
      expect(['max', 'percentile', 'mse']).toContain(l.activationClipping);
      const same = by.get(l.activationClipping)!.report.layers[i];
      expect([l.activationScale, l.activationZeroPoint]).toEqual([same.activationScale, same.activationZeroPoint]);
    });
    expect(by.get('mse')!.report.layers.every((l) => l.activationClipping === 'mse')).toBe(true);
    const again = await quantize(modelPath, { weights: 'ternary', groupSize: 16, calibration, calibrate: 'auto' });
    expect(again.report.layers.map((l) => l.activationClipping)).toEqual(chosen);
  }, 300_000);

  it('each method alone is an option; dataAware with one method turned off', async () => {
    const only = await quantize(modelPath, { weights: 'int4', groupSize: 16, calibration, refitScales: true });
    expect(only.report.layers.filter((l) => l.weights === 'int4').every((l) => l.methods.join() === 'refit-scales')).toBe(true);
    const noBias = await quantize(modelPath, { weights: 'ternary', groupSize: 64, calibration, dataAware: true, biasCorrection: false, form: 'folded' });
    expect(noBias.report.layers.filter((l) => l.weights === 'ternary').every((l) => l.methods.join() === 'error-feedback,refit-scales')).toBe(true);
    expect(await top1(await noBias.createSession())).toBeGreaterThan(0.8);
    await expect(quantize(modelPath, { calibration, dataAware: 'yes' as never })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT', message: expect.stringMatching(/options\.dataAware/) });
  }, 300_000);
});
