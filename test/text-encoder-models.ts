// The tiny BERT-style text encoder (models/tiny-text-encoder.onnx) and its forms for tests:
// seeded sentences, and the model as onnxruntime's quantize_dynamic writes it.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tensor } from '../lib';
import { ModelProtoType } from '../lib/onnx/proto';
import { rng } from './helpers';
import { ROOT } from './native-build';

export const MODEL = join(ROOT, 'models', 'tiny-text-encoder.onnx');
export const S = 16;

export interface TensorObject { name: string; dims: number[]; data_type: number; raw_data?: Uint8Array; float_data?: number[]; int32_data?: number[] }
export interface NodeObject { name?: string; op_type: string; input: string[]; output: string[]; attribute?: Record<string, unknown>[] }

/** An fp32 initializer's values, from float_data or raw_data. */
export function floatsOf(t: TensorObject): Float32Array {
  if (t.float_data && t.float_data.length > 0) return Float32Array.from(t.float_data);
  const raw = t.raw_data as Uint8Array;
  return new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
}

/**
 * The text encoder as quantize_dynamic writes it (each MatMul with constant weights:
 * DynamicQuantizeLinear of its input, MatMulInteger against per-tensor int8 weights, Cast, Mul by
 * the two scales); also returns how many MatMuls it rewrote.
 */
export function dynamicQuantized(): { bytes: Uint8Array; rewritten: number } {
  const model = ModelProtoType.toObject(ModelProtoType.decode(readFileSync(MODEL)), { defaults: false }) as {
    graph: { node: NodeObject[]; initializer: TensorObject[] };
  };
  const inits = new Map(model.graph.initializer.map((t) => [t.name, t]));
  const nodes: NodeObject[] = [];
  let rewritten = 0;
  for (const n of model.graph.node) {
    const w = n.op_type === 'MatMul' ? inits.get(n.input[1]) : undefined;
    if (!w || w.dims.length !== 2 || w.data_type !== 1) {
      nodes.push(n);
      continue;
    }
    const k = `dq${rewritten++}`;
    const values = floatsOf(w);
    const wScale = Math.max(...Array.from(values, Math.abs)) / 127;
    const q = Int8Array.from(values, (v) => Math.max(-127, Math.min(127, Math.round(v / wScale))));
    model.graph.initializer.push(
      { name: `${k}_w`, dims: w.dims, data_type: 3, raw_data: new Uint8Array(q.buffer) },
      { name: `${k}_w_scale`, dims: [], data_type: 1, float_data: [wScale] },
      { name: `${k}_w_zp`, dims: [], data_type: 3, int32_data: [0] },
    );
    nodes.push(
      { name: `${k}_quant`, op_type: 'DynamicQuantizeLinear', input: [n.input[0]], output: [`${k}_a`, `${k}_a_scale`, `${k}_a_zp`] },
      { name: `${k}_mm`, op_type: 'MatMulInteger', input: [`${k}_a`, `${k}_w`, `${k}_a_zp`, `${k}_w_zp`], output: [`${k}_acc`] },
      { name: `${k}_cast`, op_type: 'Cast', input: [`${k}_acc`], output: [`${k}_accf`], attribute: [{ name: 'to', type: 2, i: 1 }] },
      { name: `${k}_scale`, op_type: 'Mul', input: [`${k}_a_scale`, `${k}_w_scale`], output: [`${k}_s`] },
      { name: `${k}_out`, op_type: 'Mul', input: [`${k}_accf`, `${k}_s`], output: n.output },
    );
  }
  model.graph.node = nodes;
  const message = ModelProtoType.fromObject(model);
  return { bytes: ModelProtoType.encode(message).finish(), rewritten };
}

export function sentences(n: number, seed: number): Record<string, Tensor> {
  const r = rng(seed);
  const ids = BigInt64Array.from({ length: n * S }, () => BigInt(Math.floor(r() * 512)));
  const mask = BigInt64Array.from({ length: n * S }, (_, i) => ((i % S) < S - 3 * (Math.floor(i / S) % 3) ? 1n : 0n));
  const seg = new BigInt64Array(n * S);
  return {
    input_ids: new Tensor('int64', ids, [n, S]),
    attention_mask: new Tensor('int64', mask, [n, S]),
    token_type_ids: new Tensor('int64', seg, [n, S]),
  };
}

