// What the single-op tests against onnxruntime-node share (test/extra-ops.test.ts,
// test/detection-ops.test.ts): attribute and value-info builders, seeded data, running one model
// on both engines with the same feeds, and comparing or expecting errors.
import * as ort from 'onnxruntime-node';
import { expect } from 'vitest';
import { InferenceSession, Tensor } from '../lib';
import type { TensorType } from '../lib/tensor';
import { encodeModel, type ModelSpec } from './onnx-build-model';

/** ONNX element type codes of the feed types. */
export const ELEM: Record<string, number> = { float32: 1, uint8: 2, int8: 3, int32: 6, int64: 7, bool: 9 };

/** A graph output whose shape the model leaves to inference. */
export const anyShape = (name: string, elemType = 1) => ({ name, type: { tensor_type: { elem_type: elemType } } });
export const int = (name: string, i: number) => ({ name, type: 2, i });
export const ints = (name: string, v: number[]) => ({ name, type: 7, ints: v });
export const float = (name: string, f: number) => ({ name, type: 1, f });
export const str = (name: string, v: string) => ({ name, type: 3, s: new TextEncoder().encode(v) });

/** Deterministic values in [-scale, scale). */
export function seeded(n: number, seed: number, scale = 1): Float32Array {
  let s = seed;
  return Float32Array.from({ length: n }, () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return (s / 2147483648 - 0.5) * 2 * scale;
  });
}

export const size = (dims: number[]) => dims.reduce((a, b) => a * b, 1);
export const i64 = (values: number[]) => BigInt64Array.from(values, (v) => BigInt(v));

export interface Feed {
  type: TensorType;
  data: Float32Array | BigInt64Array | Int32Array | Int8Array | Uint8Array;
  dims: number[];
}

const ours = (feeds: Record<string, Feed>) => Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, new Tensor(v.type, v.data as Float32Array, v.dims)]));

/** Runs the model on ternion and onnxruntime with the same feeds; returns both outputs. */
export async function both(spec: ModelSpec, feeds: Record<string, Feed>, threads = 1) {
  return bothOnBytes(encodeModel(spec), feeds, threads);
}

/** The same for a model file's bytes (a fixture, a model fetched from npm). */
export async function bothOnBytes(bytes: Uint8Array, feeds: Record<string, Feed>, threads = 1) {
  const s = await InferenceSession.create(bytes, { threads });
  const o = await ort.InferenceSession.create(bytes);
  try {
    const got = await s.run(ours(feeds));
    const want = await o.run(Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, new ort.Tensor(v.type, v.data as Float32Array, v.dims)])));
    return { got, want };
  } finally {
    await s.release();
  }
}

/** Same dims and type, values within tol (relative to 1 + |want|; NaN matches NaN, integers exact). */
export function expectClose(got: Tensor, want: ort.Tensor, tol = 1e-5, label = '') {
  expect(got.dims, `${label} dims`).toEqual([...want.dims]);
  expect(got.type, `${label} type`).toBe(want.type);
  const a = got.data as ArrayLike<number | bigint>, b = want.data as ArrayLike<number | bigint>;
  expect(a.length).toBe(b.length);
  const bad = Array.prototype.findIndex.call(b, (v: number | bigint, i: number) => {
    const x = a[i];
    if (typeof v !== 'number' || typeof x !== 'number') return x !== v;
    if (Number.isNaN(v) || Number.isNaN(x)) return Number.isNaN(v) !== Number.isNaN(x);
    if (!Number.isFinite(v)) return x !== v;
    return !(Math.abs(x - v) <= tol * (1 + Math.abs(v)));
  });
  expect(bad, bad < 0 ? '' : `${label}[${bad}] ${a[bad]} vs ${b[bad]}`).toBe(-1);
}

/** Compares every output of the model, each of which must hold some data (not all zeros). */
export async function compareAll(spec: ModelSpec, feeds: Record<string, Feed>, tol = 1e-5, threads = 1) {
  const { got, want } = await both(spec, feeds, threads);
  for (const name of Object.keys(want)) {
    expectClose(got[name], want[name], tol, name);
    expect(Array.from(got[name].data as ArrayLike<number | bigint>).some((v) => Number(v) !== 0), `${name} is all zeros`).toBe(true);
  }
  return got;
}

export async function expectRunError(spec: ModelSpec, feeds: Record<string, Feed>, code: string, message: RegExp) {
  const s = await InferenceSession.create(encodeModel(spec), { threads: 1 });
  try {
    await expect(s.run(ours(feeds))).rejects.toMatchObject({ code, message: expect.stringMatching(message) });
  } finally {
    await s.release();
  }
}

export async function expectLoadError(spec: ModelSpec, code: string, message: RegExp) {
  await expect(InferenceSession.create(encodeModel(spec))).rejects.toMatchObject({ code, message: expect.stringMatching(message) });
}
