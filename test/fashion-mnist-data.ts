// The Fashion-MNIST helpers the real-data tests share: images as model input, and top-1
// accuracy of logits [count, 10] or of a session run over the test images in batches.
import type { InferenceSession } from '../lib';
import { Tensor } from '../lib';

/** `count` images from index `from` as float32 pixels in [0, 1] ([count * 784], NCHW with C = 1). */
export function pixels(images: Uint8Array, from: number, count: number): Float32Array {
  const x = new Float32Array(count * 784);
  for (let i = 0; i < x.length; i++) x[i] = images[from * 784 + i] / 255;
  return x;
}

/** The class with the highest score in row `row` of [rows, 10] logits (the first on ties). */
export function argmax(logits: Float32Array, row: number): number {
  let best = 0;
  for (let c = 1; c < 10; c++) if (logits[row * 10 + c] > logits[row * 10 + best]) best = c;
  return best;
}

/** Correct predictions among [count, 10] logits, against labels[from ...]. */
export function correctOf(logits: Float32Array, labels: Uint8Array, from = 0): number {
  let correct = 0;
  for (let i = 0; i < logits.length / 10; i++) if (argmax(logits, i) === labels[from + i]) correct++;
  return correct;
}

/**
 * Top-1 of a session (input "image", output "logits") over the first `count` images, in batches
 * of `batch`; the session is released afterwards.
 */
export async function sessionTop1(session: InferenceSession, images: Uint8Array, labels: Uint8Array, count: number, batch: number): Promise<number> {
  let correct = 0;
  try {
    for (let from = 0; from < count; from += batch) {
      const n = Math.min(batch, count - from);
      const out = await session.run({ image: new Tensor('float32', pixels(images, from, n), [n, 1, 28, 28]) });
      correct += correctOf(out.logits.data as Float32Array, labels, from);
    }
  } finally {
    await session.release();
  }
  return correct / count;
}
