// What a quantized layer stands for, weight by weight, as float32 (what the kernels multiply by,
// up to the order of their fp32 operations):
//   group-scaled: t * scalePos[g]  (asymmetric, t = -1: -scaleNeg[g]);  4-bit: fround(q * scale[g])
//   folded:       fround(q * m[g] * channelScale[row])                  (asymmetric as above)
//   per-channel:  fround(q * channelScale[row])
import { fromGemmRows } from './layout';
import type { QuantizedWeights } from './types';

/** Dequantized weights in the GEMM row layout [rows][K] (zeros at padding). */
export function dequantizeRows(layer: QuantizedWeights): Float32Array {
  const { rows, K, G, codes } = layer;
  const out = new Float32Array(rows * K);
  const slots = K / G;
  for (let r = 0; r < rows; r++) {
    for (let g = 0; g < slots; g++) {
      const slot = r * slots + g;
      let pos: number, neg: number;
      if (layer.form === 'group-scaled') {
        pos = layer.scalePos[slot];
        neg = layer.scaleNeg ? layer.scaleNeg[slot] : pos;
      } else if (layer.form === 'folded') {
        const s = layer.channelScale[r];
        pos = layer.multPos[slot] * s;
        neg = (layer.multNeg ? layer.multNeg[slot] : layer.multPos[slot]) * s;
      } else {
        pos = neg = layer.channelScale[r];
      }
      const start = r * K + g * G, end = start + G;
      for (let i = start; i < end; i++) {
        const q = codes[i];
        out[i] = q > 0 ? q * pos : q < 0 ? q * neg : 0;
      }
    }
  }
  return out;
}

/** Dequantized weights in the original layout and dims. */
export function dequantize(layer: QuantizedWeights): Float32Array {
  return fromGemmRows(dequantizeRows(layer), layer.layout);
}
