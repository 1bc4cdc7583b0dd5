// Tensor.fromImage: images decoded by the optional `sharp` into float32 tensors. PNGs are made
// here with sharp from real Fashion-MNIST test images, so the exact pixels are known; the
// embedded model must classify the decoded tensor as it classifies the raw array.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InferenceSession, Tensor, loadNpy } from '../lib';
import { ensureDist } from './ensure-dist';
import { ROOT } from './native-build';

type SharpFn = (input: Buffer, options?: object) => {
  png(): { toBuffer(): Promise<Buffer> };
  resize(w: number, h: number, o?: object): { png(): { toBuffer(): Promise<Buffer> } };
};

function trySharp(): SharpFn | undefined {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require('sharp');
  } catch {
    return undefined;
  }
}
const sharp = trySharp();

/** A PNG of raw interleaved pixels. */
function png(pixels: Uint8Array, h: number, w: number, channels: number): Promise<Buffer> {
  return sharp!(Buffer.from(pixels), { raw: { width: w, height: h, channels } }).png().toBuffer();
}

function argmax(a: ArrayLike<number>, from = 0, n = a.length): number {
  let best = 0;
  for (let i = 1; i < n; i++) if (a[from + i] > a[from + best]) best = i;
  return best;
}

describe.skipIf(!sharp)('Tensor.fromImage (sharp)', () => {
  const COUNT = 16;
  let images: Uint8Array;
  let session: InferenceSession;

  beforeAll(async () => {
    images = loadNpy(join(ROOT, 'data', 'fashion-mnist-test-images.npy')).data.subarray(0, COUNT * 784) as Uint8Array;
    session = await InferenceSession.create(join(ROOT, 'models', 'fashion-mnist-resnet.onnx'), { threads: 1 });
  });
  afterAll(async () => {
    await session?.release();
  });

  it('a grayscale PNG decodes to exactly pixels / 255, and the model classifies it like the raw array', async () => {
    const raw = Float32Array.from(images, (v) => v / 255);
    const rawLogits = (await session.run({ image: new Tensor('float32', raw, [COUNT, 1, 28, 28]) })).logits.data as Float32Array;
    for (let n = 0; n < COUNT; n++) {
      const pixels = images.subarray(n * 784, (n + 1) * 784);
      const t = await Tensor.fromImage(await png(pixels, 28, 28, 1), { size: 28, channels: 1 });
      expect(t.type).toBe('float32');
      expect(t.dims).toEqual([1, 1, 28, 28]);
      expect(t.data).toEqual(raw.subarray(n * 784, (n + 1) * 784));
      const logits = (await session.run({ image: t })).logits.data as Float32Array;
      expect(argmax(logits)).toBe(argmax(rawLogits, n * 10, 10));
    }
  });

  it('a 3-channel PNG, upscaled 2x, read from a path, resized back to 28 x 28 as grayscale keeps the classes', async () => {
    const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(join(tmpdir(), 'ternion-image-'));
    try {
      const raw = Float32Array.from(images, (v) => v / 255);
      const rawLogits = (await session.run({ image: new Tensor('float32', raw, [COUNT, 1, 28, 28]) })).logits.data as Float32Array;
      let agree = 0;
      for (let n = 0; n < COUNT; n++) {
        const gray = images.subarray(n * 784, (n + 1) * 784);
        const rgb = new Uint8Array(784 * 3);
        for (let p = 0; p < 784; p++) rgb.fill(gray[p], p * 3, p * 3 + 3);
        const big = await sharp!(Buffer.from(rgb), { raw: { width: 28, height: 28, channels: 3 } }).resize(56, 56, { kernel: 'nearest' }).png().toBuffer();
        const file = join(dir, `${n}.png`);
        writeFileSync(file, big);
        const t = await Tensor.fromImage(file, { size: [28, 28], channels: 1 });
        expect(t.dims).toEqual([1, 1, 28, 28]);
        // Nearest-neighbour 2x then a 2x (lanczos3) reduction comes back close to the original
        // pixels: small on average, larger only where the kernel rings at sharp edges.
        let sum = 0;
        for (let i = 0; i < 784; i++) sum += Math.abs(t.data[i] - raw[n * 784 + i]);
        expect(sum / 784).toBeLessThan(0.04);
        if (argmax((await session.run({ image: t })).logits.data as Float32Array) === argmax(rawLogits, n * 10, 10)) agree++;
      }
      expect(agree).toBeGreaterThanOrEqual(COUNT - 1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('lays out NCHW and NHWC, normalizes per channel, and keeps the size when none is given', async () => {
    // 2 x 3 RGB image with distinct channel values.
    const rgb = new Uint8Array([0, 51, 102, 153, 204, 255, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120]);
    const buf = await png(rgb, 2, 3, 3);
    const mean = [0.5, 0.25, 0], std = [0.5, 0.25, 2];
    const nchw = await Tensor.fromImage(buf, { mean, std });
    const nhwc = await Tensor.fromImage(new Uint8Array(buf).buffer, { layout: 'nhwc', mean, std });
    expect(nchw.dims).toEqual([1, 3, 2, 3]);
    expect(nhwc.dims).toEqual([1, 2, 3, 3]);
    for (let p = 0; p < 6; p++) {
      for (let c = 0; c < 3; c++) {
        const want = (rgb[p * 3 + c] / 255 - mean[c]) / std[c];
        expect(nchw.data[c * 6 + p]).toBeCloseTo(want, 6);
        expect(nhwc.data[p * 3 + c]).toBeCloseTo(want, 6);
      }
    }
    const square = await Tensor.fromImage(buf, { size: 4, fit: 'fill', channels: 1 });
    expect(square.dims).toEqual([1, 1, 4, 4]);
  });

  it('BAD INPUT - undecodable bytes, a missing file and bad options are TernionErrors with codes', async () => {
    const garbage = Buffer.from('this is not an image');
    await expect(Tensor.fromImage(garbage)).rejects.toMatchObject({ name: 'TernionError', code: 'ERR_INVALID_ARGUMENT', message: /Cannot decode image/ });
    await expect(Tensor.fromImage('/nonexistent/x.png')).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT', message: /x\.png/ });
    const ok = await png(new Uint8Array(4), 2, 2, 1);
    await expect(Tensor.fromImage(ok, { channels: 2 as 1 })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT', message: /options\.channels/ });
    await expect(Tensor.fromImage(ok, { layout: 'chw' as 'nchw' })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT', message: /options\.layout/ });
    await expect(Tensor.fromImage(ok, { size: 0 })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT', message: /options\.size/ });
    await expect(Tensor.fromImage(ok, { std: [1, 0, 1] })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT', message: /options\.std\[1\]/ });
    await expect(Tensor.fromImage(ok, { mean: [0.1, 0.2] })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT', message: /options\.mean/ });
    await expect(Tensor.fromImage(42 as unknown as string)).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
  });
});

describe('Tensor.fromImage without sharp', () => {
  it('MISSING SHARP - rejects with ERR_NATIVE_LOAD saying how to install it', async () => {
    await ensureDist();
    // A fresh process in which resolving "sharp" fails, as where the optional dependency did not install.
    const script = `
      const Module = require('node:module');
      const resolve = Module._resolveFilename;
      Module._resolveFilename = function (request, ...rest) {
        if (request === 'sharp') throw Object.assign(new Error("Cannot find module 'sharp'"), { code: 'MODULE_NOT_FOUND' });
        return resolve.call(this, request, ...rest);
      };
      require(${JSON.stringify(join(ROOT, 'dist'))}).Tensor.fromImage(Buffer.alloc(8)).then(
        () => console.log('resolved'),
        (e) => console.log(JSON.stringify({ name: e.name, code: e.code, message: e.message })));`;
    const { stdout } = await promisify(execFile)(process.execPath, ['-e', script]);
    const err = JSON.parse(stdout);
    expect(err).toMatchObject({ name: 'TernionError', code: 'ERR_NATIVE_LOAD' });
    expect(err.message).toMatch(/optional dependency "sharp".*Cannot find module 'sharp'.*npm install sharp/);
  });
});
