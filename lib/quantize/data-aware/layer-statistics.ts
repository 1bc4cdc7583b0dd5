// What the data-aware quantizer knows about one layer's inputs: H = sum of x x^T over the
// sampled GEMM rows x (weights/layout.ts column order) and the mean row. H is accumulated in
// float64 from per-batch float32 products computed by the native fp32 GEMM (X^T X per batch),
// which is what keeps this affordable on large layers.
import { PackedMatrix } from '../../kernels';
import type { Tensor } from '../../tensor';
import type { LayerRows } from './layer-inputs';

export class LayerStatistics {
  readonly K: number;
  /** sum over rows of x x^T, [K][K] row-major. */
  readonly H: Float64Array;
  /** sum over rows of x, [K]. */
  readonly sum: Float64Array;
  rows = 0;

  /** Without `withHessian` only the mean is kept (bias correction alone needs no H). */
  constructor(private readonly sampler: LayerRows, readonly withHessian = true) {
    this.K = sampler.K;
    this.H = new Float64Array(withHessian ? this.K * this.K : 0);
    this.sum = new Float64Array(this.K);
  }

  observe(input: Tensor): void {
    const { columns, count } = this.sampler.sample(input);
    if (count === 0) return;
    const K = this.K;
    if (this.withHessian) this.accumulateProduct(columns, count);
    for (let k = 0; k < K; k++) {
      let s = 0;
      const row = k * count;
      for (let r = 0; r < count; r++) s += columns[row + r];
      this.sum[k] += s;
    }
    this.rows += count;
  }

  private accumulateProduct(columns: Float32Array, count: number): void {
    const K = this.K;
    // X^T is [K][count]: as "weights" [N = K][K' = count] times A = X^T gives X^T X.
    const packed = PackedMatrix.float32(columns, K, count);
    try {
      const product = packed.matmul(columns, K) as Float32Array;
      for (let i = 0; i < product.length; i++) this.H[i] += product[i];
    } finally {
      packed.release();
    }
  }

  /** The mean GEMM row (zeros when nothing was observed). */
  mean(): Float64Array {
    const m = new Float64Array(this.K);
    if (this.rows > 0) for (let k = 0; k < this.K; k++) m[k] = this.sum[k] / this.rows;
    return m;
  }
}
