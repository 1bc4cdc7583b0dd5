// The rows a quantized layer's GEMM multiplies its weights with: for a Conv, the im2col rows of
// its input in the GEMM column order of weights/layout.ts (k = s * P + ci, zeros at padding
// channels and outside the image); for a Gemm / MatMul, the input's rows. The data-aware
// quantizer takes its statistics (H = X^T X, column means) from these rows.
import { TernionError } from '../../errors';
import type { Node } from '../../ir';
import type { Tensor } from '../../tensor';
import type { GemmLayout } from '../weights';

interface ConvGeometry {
  kernel: number[];
  strides: number[];
  dilations: number[];
  autoPad: string;
  pads: number[];
}

function ints(node: Node, key: string, fallback: number[]): number[] {
  const a = node.attributes[key];
  return a && a.type === 'ints' ? [...a.value] : fallback;
}

export function convGeometry(node: Node, kernel: readonly number[]): ConvGeometry {
  const d = kernel.length;
  const a = node.attributes.auto_pad;
  return {
    kernel: [...kernel],
    strides: ints(node, 'strides', Array(d).fill(1)),
    dilations: ints(node, 'dilations', Array(d).fill(1)),
    autoPad: a && a.type === 'string' ? a.value : 'NOTSET',
    pads: ints(node, 'pads', Array(2 * d).fill(0)),
  };
}

/** A sampler of GEMM rows from one layer's input batches. */
export class LayerRows {
  readonly K: number;
  private readonly spatialDims: number;

  /**
   * `maxRowsPerBatch` bounds the rows taken from one batch: when a batch has more output
   * positions, an evenly strided deterministic subset is taken.
   */
  constructor(
    private readonly kind: 'conv' | 'gemm',
    private readonly layout: GemmLayout,
    private readonly geometry: ConvGeometry | null,
    private readonly maxRowsPerBatch: number,
  ) {
    this.K = layout.K;
    this.spatialDims = geometry ? geometry.kernel.length : 0;
  }

  /**
   * The sampled rows of one input batch, column-major ([K][R], what the Hessian product takes)
   * and their count R.
   */
  sample(input: Tensor): { columns: Float32Array; count: number } {
    const x = input.data as Float32Array;
    const dims = input.dims;
    const { K } = this;
    if (this.kind === 'gemm') {
      const cin = this.layout.inputChannels;
      if (dims[dims.length - 1] !== cin) throw new TernionError('ERR_INTERNAL', `Layer input has ${dims[dims.length - 1]} features; its weights expect ${cin}`);
      const total = x.length / cin;
      const { picks, count } = this.pick(total);
      const cols = new Float32Array(K * count);
      for (let r = 0; r < count; r++) {
        const src = picks[r] * cin;
        for (let k = 0; k < cin; k++) cols[k * count + r] = x[src + k];
      }
      return { columns: cols, count };
    }
    const g = this.geometry!;
    const d = this.spatialDims;
    if (dims.length !== d + 2) throw new TernionError('ERR_INTERNAL', `Conv input of rank ${dims.length}; its kernel has ${d} spatial dims`);
    const batch = dims[0], channels = dims[1];
    const cin = this.layout.inputChannels, P = this.layout.paddedInputChannels;
    if (channels !== cin) throw new TernionError('ERR_INTERNAL', `Conv input has ${channels} channels; its weights expect ${cin}`);
    const inSize = dims.slice(2);
    const begin: number[] = [], outSize: number[] = [];
    for (let i = 0; i < d; i++) {
      const span = (g.kernel[i] - 1) * g.dilations[i] + 1;
      let pb: number, pe: number;
      if (g.autoPad === 'SAME_UPPER' || g.autoPad === 'SAME_LOWER') {
        const out = Math.ceil(inSize[i] / g.strides[i]);
        const total = Math.max(0, (out - 1) * g.strides[i] + span - inSize[i]);
        pb = g.autoPad === 'SAME_UPPER' ? Math.floor(total / 2) : Math.ceil(total / 2);
        pe = total - pb;
      } else if (g.autoPad === 'VALID') {
        pb = pe = 0;
      } else {
        pb = g.pads[i];
        pe = g.pads[i + d];
      }
      begin.push(pb);
      outSize.push(Math.floor((inSize[i] + pb + pe - span) / g.strides[i]) + 1);
    }
    const positions = outSize.reduce((a, b) => a * b, 1);
    const plane = inSize.reduce((a, b) => a * b, 1);
    const S = this.layout.spatial;
    const { picks, count } = this.pick(batch * positions);
    const cols = new Float32Array(K * count);
    const outIdx = new Array<number>(d), kIdx = new Array<number>(d);
    for (let r = 0; r < count; r++) {
      const n = Math.floor(picks[r] / positions);
      let p = picks[r] - n * positions;
      for (let i = d - 1; i >= 0; i--) {
        outIdx[i] = p % outSize[i];
        p = Math.floor(p / outSize[i]);
      }
      for (let s = 0; s < S; s++) {
        let t = s, offset = 0, inside = true;
        for (let i = d - 1; i >= 0; i--) {
          kIdx[i] = t % g.kernel[i];
          t = Math.floor(t / g.kernel[i]);
        }
        for (let i = 0; i < d; i++) {
          const c = outIdx[i] * g.strides[i] - begin[i] + kIdx[i] * g.dilations[i];
          if (c < 0 || c >= inSize[i]) {
            inside = false;
            break;
          }
          offset = offset * inSize[i] + c;
        }
        if (!inside) continue;
        const base = n * channels * plane + offset;
        const k0 = s * P;
        for (let ci = 0; ci < cin; ci++) cols[(k0 + ci) * count + r] = x[base + ci * plane];
      }
    }
    return { columns: cols, count };
  }

  private pick(total: number): { picks: Int32Array; count: number } {
    const count = Math.min(total, this.maxRowsPerBatch);
    const picks = new Int32Array(count);
    const step = total / count;
    for (let i = 0; i < count; i++) picks[i] = Math.floor((i + 0.5) * step);
    return { picks, count };
  }
}
