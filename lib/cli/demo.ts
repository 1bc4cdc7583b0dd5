// `ternion demo`: the embedded Fashion-MNIST model on its 10,000 test images, in every precision
// ternion offers, side by side: top-1, agreement with fp32, model size, and throughput.
import { join } from 'node:path';
import { InferenceSession } from '../session/inference-session';
import { loadNpy } from '../data/npy';
import { Tensor } from '../tensor';

export const PACKAGE_ROOT = join(__dirname, '..', '..');
export const EMBEDDED_MODEL = join(PACKAGE_ROOT, 'models', 'fashion-mnist-resnet.onnx');

export interface DemoRow {
  engine: string;
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
  const engines: [string, Parameters<typeof InferenceSession.create>[1]][] = [
    ['fp32', { precision: 'fp32' }],
    ['int8 (per-channel weights, dynamic activations)', { precision: 'int8' }],
  ];
  const rows: DemoRow[] = [];
  let reference: Int32Array | undefined;
  for (const [name, opts] of engines) {
    const session = await InferenceSession.create(EMBEDDED_MODEL, { ...opts, threads: options.threads });
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
    const row = { engine: name, top1: correct / count, agreesWithFp32: agree / count, imagesPerSecond: count / seconds, seconds };
    rows.push(row);
    log(`${name.padEnd(50)} top-1 ${(row.top1 * 100).toFixed(2)}%  agrees with fp32 ${(row.agreesWithFp32 * 100).toFixed(2)}%  ${row.imagesPerSecond.toFixed(0)} images/s`);
  }
  return rows;
}
