// Models with several inputs, none of them float: a BERT-style text encoder (models/tiny-text-
// encoder.onnx, made by tools/export_text_encoder.py: int64 input_ids, attention_mask and
// token_type_ids, a masked softmax, exact GELU, LayerNorm) run against onnxruntime-node, quantized
// with calibration given by input name (library and CLI), and benchmarked by `ternion bench`
// with generated token ids that stay inside the embedding table.
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InferenceSession, Tensor, quantize } from '../lib';
import { makeQdqModel } from '../lib/bench/qdq';
import { generatedInputs, modelInfo } from '../lib/bench/model-info';
import { saveNpy } from '../lib/data/npy';
import { ensureDist, runCli } from './ensure-dist';
import { rng } from './helpers';
import { ROOT } from './native-build';

const MODEL = join(ROOT, 'models', 'tiny-text-encoder.onnx');
const VOCAB = 512;
const S = 20;
let tmp: string;

/** n sentences of S tokens: random ids, sentence i padded after S - 2i tokens (mask 0), second half segment 1. */
function sentences(n: number, seed: number): Record<string, Tensor> {
  const r = rng(seed);
  const ids = BigInt64Array.from({ length: n * S }, () => BigInt(Math.floor(r() * VOCAB)));
  const mask = BigInt64Array.from({ length: n * S }, (_, i) => ((i % S) < S - 2 * (Math.floor(i / S) % 6) ? 1n : 0n));
  const seg = BigInt64Array.from({ length: n * S }, (_, i) => ((i % S) >= S / 2 ? 1n : 0n));
  return {
    input_ids: new Tensor('int64', ids, [n, S]),
    attention_mask: new Tensor('int64', mask, [n, S]),
    token_type_ids: new Tensor('int64', seg, [n, S]),
  };
}

function toOrt(feeds: Record<string, Tensor>): Record<string, ort.Tensor> {
  return Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, new ort.Tensor(t.type, t.data as BigInt64Array, t.dims)]));
}

function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0, x = 0, y = 0;
  for (let i = 0; i < a.length; i++) {
    d += a[i] * b[i];
    x += a[i] * a[i];
    y += b[i] * b[i];
  }
  return d / Math.sqrt(x * y);
}

const cli = runCli;

const test = sentences(6, 11);
let reference: Float32Array;

beforeAll(async () => {
  await ensureDist();
  tmp = mkdtempSync(join(tmpdir(), 'ternion-text-'));
  const o = await ort.InferenceSession.create(MODEL);
  reference = (await o.run(toOrt(test))).last_hidden_state.data as Float32Array;
  await o.release();
});

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

async function hidden(model: string | Uint8Array, feeds = test): Promise<Float32Array> {
  const s = await InferenceSession.create(model);
  try {
    return (await s.run(feeds)).last_hidden_state.data as Float32Array;
  } finally {
    await s.release();
  }
}

describe('a BERT-style text encoder (three int64 inputs)', () => {
  it('runs in fp32 as onnxruntime-node does, padding masked', async () => {
    const got = await hidden(MODEL);
    expect(got.length).toBe(6 * S * 64);
    let diff = 0;
    for (let i = 0; i < got.length; i++) diff = Math.max(diff, Math.abs(got[i] - reference[i]));
    expect(diff).toBeLessThan(2e-5);
  });

  it('quantizes with calibration by input name: one record, an array of records and an async loader give the same quantized model', async () => {
    const calibration = sentences(24, 3);
    const one = await quantize(MODEL, { weights: 'ternary', groupSize: 16, calibration });
    // The twelve MatMuls of the two layers are the layers; the last stays int8.
    expect(one.report.layers.map((l) => l.weights)).toEqual([...Array(11).fill('ternary'), 'int8']);
    expect(one.report.fidelity).toMatchObject({ output: 'last_hidden_state', samples: 24 });
    const halves = [0, 12].map((from) => Object.fromEntries(Object.entries(calibration).map(([k, t]) => [k, new Tensor('int64', (t.data as BigInt64Array).slice(from * S, (from + 12) * S), [12, S])])));
    const fromArray = await quantize(MODEL, { weights: 'ternary', groupSize: 16, calibration: halves });
    async function* loader() {
      for (const h of halves) yield h;
    }
    const fromLoader = await quantize(MODEL, { weights: 'ternary', groupSize: 16, calibration: loader() });
    // The same weights and activation grids (the file also records how the data came: batch dims).
    expect(fromArray.report).toEqual(one.report);
    const q = await hidden(one.toBuffer());
    expect(await hidden(fromArray.toBuffer())).toEqual(q);
    expect(await hidden(fromLoader.toBuffer())).toEqual(q);
    expect(cosine(q, reference)).toBeGreaterThan(0.999);
  });

  it('int8, and data-aware ternary (which replays the calibration records layer by layer), track fp32', async () => {
    const calibration = sentences(16, 5);
    const int8 = await quantize(MODEL, { weights: 'int8', calibration });
    expect(cosine(await hidden(int8.toBuffer()), reference)).toBeGreaterThan(0.9999);
    const plain = await quantize(MODEL, { weights: 'ternary', groupSize: 64, calibration });
    const aware = await quantize(MODEL, { weights: 'ternary', groupSize: 64, calibration, dataAware: true });
    expect(aware.report.fidelity!.relativeError).toBeLessThan(plain.report.fidelity!.relativeError);
    expect(cosine(await hidden(aware.toBuffer()), reference)).toBeGreaterThan(0.999);
  });

  it('BAD CALL: calibration that does not fit the inputs is refused with the input named', async () => {
    const good = sentences(4, 9);
    const reject = (calibration: unknown, code: string, message: RegExp) =>
      expect(quantize(MODEL, { weights: 'int8', calibration: calibration as Tensor })).rejects.toMatchObject({ code, message: expect.stringMatching(message) });
    await reject(good.input_ids, 'ERR_INPUT_NAME', /single Tensor but the model has 3 inputs .*record \{ input_ids: Tensor, attention_mask: Tensor, token_type_ids: Tensor \}/);
    await reject({ input_ids: good.input_ids, attention_mask: good.attention_mask }, 'ERR_INPUT_NAME', /no tensor for input "token_type_ids"/);
    await reject({ ...good, segment_ids: good.token_type_ids }, 'ERR_INPUT_NAME', /"segment_ids", which is not an input/);
    await reject({ ...good, attention_mask: new Tensor('int32', new Int32Array(4 * S), [4, S]) }, 'ERR_DTYPE', /input "attention_mask" is a int32 Tensor; the model expects int64/);
    await reject({ ...good, token_type_ids: new Tensor('int64', new BigInt64Array(3 * S), [3, S]) }, 'ERR_SHAPE_MISMATCH', /"token_type_ids" holds 3 samples but "attention_mask" holds 4/);
    await reject([good, sentences(4, 10)].map((f, i) => (i ? { ...f, input_ids: new Tensor('int64', new BigInt64Array(4 * 8), [4, 8]) } : f)), 'ERR_SHAPE_MISMATCH', /batch 1: input "input_ids" has samples of shape \[8\]; the first batch had \[20\]/);
    await reject({ input_ids: new Tensor('int64', new BigInt64Array(0), [0, S]) }, 'ERR_INVALID_ARGUMENT', /options\.calibration\.input_ids/);
    await expect(quantize(MODEL, { weights: 'int8', calibration: good, maxAccuracyDrop: 0.01, validation: { inputs: good.input_ids as never, labels: [0, 0, 0, 0] } }))
      .rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
  });
});

describe('the benchmark tools on a model with integer inputs', () => {
  it('generate token ids inside the table each input indexes, and ones for the mask', () => {
    const info = modelInfo(MODEL, { shape: [S] });
    expect(info.inputs.map((i) => [i.name, i.dtype, i.sampleDims, i.values])).toEqual([
      ['input_ids', 'int64', [S], { kind: 'index', bound: VOCAB }],
      ['attention_mask', 'int64', [S], { kind: 'ones' }],
      ['token_type_ids', 'int64', [S], { kind: 'index', bound: 2 }],
    ]);
    expect(info.macsPerSample).toBe(2 * S * (4 * 64 * 64 + 2 * 64 * 128) + 2 * 4 * S * S * 16 * 2);
    const feeds = generatedInputs(info.inputs, 5);
    const ids = [...(feeds.input_ids.data as BigInt64Array)].map(Number);
    expect(Math.max(...ids)).toBeLessThan(VOCAB);
    expect(Math.min(...ids)).toBeGreaterThanOrEqual(0);
    expect(new Set(ids).size).toBeGreaterThan(50); // spread over the table, not one id
    expect(new Set((feeds.token_type_ids.data as BigInt64Array)).size).toBe(2);
    expect([...(feeds.attention_mask.data as BigInt64Array)].every((v) => v === 1n)).toBe(true);
  });

  it('the QDQ tool calibrates a model with several inputs, and onnxruntime runs its int8 model close to fp32', async () => {
    const { readFileSync } = await import('node:fs');
    const { bytes, report } = await makeQdqModel(readFileSync(MODEL), { ort, calibration: sentences(16, 4) });
    expect(report.calibrationSamples).toBe(16);
    expect(report.quantizedWeights).toBe(12);
    const s = await ort.InferenceSession.create(bytes);
    const y = (await s.run(toOrt(test))).last_hidden_state.data as Float32Array;
    await s.release();
    expect(cosine(y, reference)).toBeGreaterThan(0.999);
  });

  it('ternion bench compares every engine on generated sentences (--shape for the sequence)', async () => {
    const r = await cli(['bench', MODEL, '--shape', String(S), '--batch', '2', '--compare', 'ort-fp32,ort-int8,fp32,int8,ternary-g16', '--json', '--max-time', '0.1', '--no-memory']);
    expect(r.stderr).not.toMatch(/ERR_/);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.inputs).toEqual(['input_ids', 'attention_mask', 'token_type_ids'].map((name) => ({ name, type: 'int64', dims: [2, S] })));
    for (const row of out.rows) {
      expect(row.error).toBeUndefined();
      expect(row.medianMs).toBeGreaterThan(0);
    }
    const missing = await cli(['bench', MODEL, '--compare', 'fp32', '--json']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/dim 1 \("sequence"\) of input "input_ids" \[batch, sequence\] is symbolic; pass --shape/);
  });

  it('ternion quantize and ternion bench take --calib NAME=X.npy per input; the memory probe feeds int64 inputs', async () => {
    const calib = sentences(8, 21);
    const args: string[] = [];
    for (const [name, t] of Object.entries(calib)) {
      const file = join(tmp, `${name}.npy`);
      saveNpy(file, t);
      args.push('--calib', `${name}=${file}`);
    }
    const out = join(tmp, 'tiny.tern');
    const q = await cli(['quantize', MODEL, '-o', out, '--weights', 'ternary', '--group', '16', ...args]);
    expect(q.stderr).not.toMatch(/ERR_/);
    expect(q.code).toBe(0);
    expect(q.stdout).toMatch(/calibrated on 8 samples/);
    expect(existsSync(out) && statSync(out).size).toBeGreaterThan(0);
    expect(cosine(await hidden(out), reference)).toBeGreaterThan(0.999);
    const one = await cli(['quantize', MODEL, '-o', out, args[1].split('=')[1] ? '--calib' : '', args[1].split('=')[1]].filter(Boolean));
    expect(one.code).toBe(1);
    expect(one.stderr).toMatch(/ERR_INPUT_NAME: --calib .* names no input; the model has 3/);
    const b = await cli(['bench', MODEL, '--shape', String(S), '--compare', 'fp32,int8', '--json', '--max-time', '0', ...args]);
    expect(b.stderr).not.toMatch(/ERR_/);
    expect(b.code).toBe(0);
    const rows = JSON.parse(b.stdout).rows;
    for (const row of rows) expect(row.rssMB).toEqual(expect.any(Number));
  });
});
