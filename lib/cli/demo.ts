// `ternion demo`: the embedded Fashion-MNIST model on its 10,000 test images, in every precision
// ternion offers, side by side: top-1, agreement with fp32, model size, and throughput.
import { join } from 'node:path';
import { quantize, type QuantizeOptions } from '../quantize';
import { InferenceSession } from '../session/inference-session';
import { loadNpy } from '../data/npy';
import { Tensor } from '../tensor';

export const PACKAGE_ROOT = join(__dirname, '..', '..');
export const EMBEDDED_MODEL = join(PACKAGE_ROOT, 'models', 'fashion-mnist-resnet.onnx');

export interface DemoRow {
  engine: string;
  /** Bytes of the weights of the quantized layers (fp32: 4 per weight). */
  weightBytes: number | null;
  /** Fraction of the multiplications FGQ removes (weighted by MACs), for the FGQ engines. */
  multiplicationsRemoved: number | null;
  top1: number;
  agreesWithFp32: number;
  imagesPerSecond: number;
  seconds: number;
}

export interface DemoOptions {
  count?: number;
  batch?: number;
  threads?: number;
  log?: (line: string) => void;
}

/** Runs every engine over the test set and returns one row each. */
export async function runDemo(options: DemoOptions = {}): Promise<DemoRow[]> {
  const log = options.log ?? (() => undefined);
  const images = loadNpy(join(PACKAGE_ROOT, 'data', 'fashion-mnist-test-images.npy')).data as Uint8Array;
  const labels = loadNpy(join(PACKAGE_ROOT, 'data', 'fashion-mnist-test-labels.npy')).data as Uint8Array;
  const count = Math.min(options.count ?? labels.length, labels.length);
  const batch = options.batch ?? 100;
  // Calibration: 256 training images (never test images).
  const calib = loadNpy(join(PACKAGE_ROOT, 'data', 'fashion-mnist-calib-images.npy')).data as Uint8Array;
  const calibration = new Tensor('float32', Float32Array.from(calib.subarray(0, 256 * 784), (v) => v / 255), [256, 1, 28, 28]);
  type Engine = { name: string; make: () => Promise<{ session: InferenceSession; bytes: number | null; removed: number | null }> };
  const fgq = (name: string, q: Omit<QuantizeOptions, 'calibration'>): Engine => ({
    name,
    make: async () => {
      const model = await quantize(EMBEDDED_MODEL, { ...q, calibration });
      const session = await model.createSession({ threads: options.threads });
      return { session, bytes: model.report.total.bytes, removed: model.report.total.multiplicationsRemoved };
    },
  });
  const engines: Engine[] = [
    { name: 'fp32', make: async () => ({ session: await InferenceSession.create(EMBEDDED_MODEL, { threads: options.threads }), bytes: null, removed: null }) },
    { name: 'int8 (dynamic activations)', make: async () => ({ session: await InferenceSession.create(EMBEDDED_MODEL, { precision: 'int8', threads: options.threads }), bytes: null, removed: null }) },
    fgq('int8 (calibrated activations)', { weights: 'int8' }),
    fgq('int4 N=16', { weights: 'int4', groupSize: 16 }),
    fgq('ternary N=4', { weights: 'ternary', groupSize: 4 }),
    fgq('ternary-asym N=4', { weights: 'ternary-asym', groupSize: 4 }),
    fgq('ternary N=16', { weights: 'ternary', groupSize: 16 }),
    fgq('ternary N=64', { weights: 'ternary', groupSize: 64 }),
    // Data-aware (codes and scales fitted to each layer's output on the calibration images).
    fgq('ternary N=16 data-aware', { weights: 'ternary', groupSize: 16, dataAware: true }),
    fgq('ternary-asym N=64 data-aware', { weights: 'ternary-asym', groupSize: 64, dataAware: true }),
  ];
  const rows: DemoRow[] = [];
  let reference: Int32Array | undefined;
  for (const engine of engines) {
    const name = engine.name;
    const { session, bytes, removed } = await engine.make();
    const predictions = new Int32Array(count);
    const start = process.hrtime.bigint();
    for (let from = 0; from < count; from += batch) {
      const n = Math.min(batch, count - from);
      const x = new Float32Array(n * 784);
      for (let i = 0; i < x.length; i++) x[i] = images[from * 784 + i] / 255;
      const logits = (await session.run({ image: new Tensor('float32', x, [n, 1, 28, 28]) })).logits.data as Float32Array;
      for (let i = 0; i < n; i++) {
        let best = 0;
        for (let c = 1; c < 10; c++) if (logits[i * 10 + c] > logits[i * 10 + best]) best = c;
        predictions[from + i] = best;
      }
    }
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    await session.release();
    reference ??= predictions;
    let correct = 0, agree = 0;
    for (let i = 0; i < count; i++) {
      if (predictions[i] === labels[i]) correct++;
      if (predictions[i] === reference[i]) agree++;
    }
    const row = { engine: name, weightBytes: bytes, multiplicationsRemoved: removed, top1: correct / count, agreesWithFp32: agree / count, imagesPerSecond: count / seconds, seconds };
    rows.push(row);
    const size = bytes === null ? '' : `  weights ${(bytes / 1024).toFixed(0)} KiB`;
    const mults = removed === null ? '' : `  mults removed ${(removed * 100).toFixed(0)}%`;
    log(`${name.padEnd(30)} top-1 ${(row.top1 * 100).toFixed(2)}%  agrees with fp32 ${(row.agreesWithFp32 * 100).toFixed(2)}%  ${row.imagesPerSecond.toFixed(0).padStart(5)} images/s${size}${mults}`);
  }
  return rows;
}
