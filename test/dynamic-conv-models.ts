// Conv nets as onnxruntime's quantize_dynamic writes them (its default op types include Conv):
// each Conv with constant weights becomes DynamicQuantizeLinear of its input, ConvInteger against
// per-tensor 8-bit weights, Cast to float, a Mul by the product of the two scales, and the bias
// (if any) reshaped to [1, -1, 1, ...] and added (its ConvInteger operator class and add_bias).
// Weights: int8 symmetric (scale max|w| / 127, zero point 0: its default) or uint8 asymmetric
// (scale (max - min) / 255 over a range holding 0, zero point round(-min / scale)).
import { readFileSync } from 'node:fs';
import { ModelProtoType } from '../lib/onnx/proto';
import { floatsOf, type NodeObject, type TensorObject } from './text-encoder-models';

export interface DynamicConvModel {
  bytes: Uint8Array;
  /** Convs rewritten. */
  convs: number;
}

export function dynamicConvQuantized(path: string, weights: 'int8' | 'uint8' = 'int8'): DynamicConvModel {
  const model = ModelProtoType.toObject(ModelProtoType.decode(readFileSync(path)), { defaults: false }) as {
    graph: { node: NodeObject[]; initializer: (TensorObject & { int64_data?: number[] })[] };
  };
  const inits = new Map(model.graph.initializer.map((t) => [t.name, t]));
  const nodes: NodeObject[] = [];
  let convs = 0;
  for (const n of model.graph.node) {
    const w = n.op_type === 'Conv' ? inits.get(n.input[1]) : undefined;
    if (!w || w.data_type !== 1) {
      nodes.push(n);
      continue;
    }
    const k = `dyn${convs++}`;
    const values = floatsOf(w);
    let q: Uint8Array, scale: number, zeroPoint: number;
    if (weights === 'int8') {
      scale = values.reduce((m, v) => Math.max(m, Math.abs(v)), 0) / 127;
      q = new Uint8Array(Int8Array.from(values, (v) => Math.max(-127, Math.min(127, Math.round(v / scale)))).buffer);
      zeroPoint = 0;
    } else {
      const lo = values.reduce((m, v) => Math.min(m, v), 0), hi = values.reduce((m, v) => Math.max(m, v), 0);
      scale = (hi - lo) / 255;
      zeroPoint = Math.round(-lo / scale);
      q = Uint8Array.from(values, (v) => Math.max(0, Math.min(255, Math.round(v / scale) + zeroPoint)));
    }
    const type = weights === 'int8' ? 3 : 2;
    model.graph.initializer.push(
      { name: `${k}_w`, dims: w.dims, data_type: type, raw_data: q },
      { name: `${k}_w_scale`, dims: [], data_type: 1, float_data: [scale] },
      { name: `${k}_w_zp`, dims: [], data_type: type, int32_data: [zeroPoint] },
    );
    const hasBias = n.input.length > 2 && n.input[2] !== '';
    const scaled = hasBias ? `${k}_scaled` : n.output[0];
    nodes.push(
      { name: `${k}_quant`, op_type: 'DynamicQuantizeLinear', input: [n.input[0]], output: [`${k}_x`, `${k}_x_scale`, `${k}_x_zp`] },
      { name: `${k}_conv`, op_type: 'ConvInteger', input: [`${k}_x`, `${k}_w`, `${k}_x_zp`, `${k}_w_zp`], output: [`${k}_acc`], attribute: n.attribute },
      { name: `${k}_cast`, op_type: 'Cast', input: [`${k}_acc`], output: [`${k}_accf`], attribute: [{ name: 'to', type: 2, i: 1 }] },
      { name: `${k}_scales`, op_type: 'Mul', input: [`${k}_x_scale`, `${k}_w_scale`], output: [`${k}_s`] },
      { name: `${k}_out`, op_type: 'Mul', input: [`${k}_accf`, `${k}_s`], output: [scaled] },
    );
    if (hasBias) {
      const shape = new Array<number>(w.dims.length).fill(1);
      shape[1] = -1;
      model.graph.initializer.push({ name: `${k}_bias_shape`, dims: [shape.length], data_type: 7, int64_data: shape });
      nodes.push(
        { name: `${k}_bias_reshape`, op_type: 'Reshape', input: [n.input[2], `${k}_bias_shape`], output: [`${k}_bias`] },
        { name: `${k}_bias_add`, op_type: 'Add', input: [scaled, `${k}_bias`], output: [n.output[0]] },
      );
    }
  }
  model.graph.node = nodes;
  return { bytes: ModelProtoType.encode(ModelProtoType.fromObject(model)).finish(), convs };
}
