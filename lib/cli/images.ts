// A folder of images as a float32 NCHW batch for `quantize --calib DIR`, decoded by `sharp` (an
// optional dependency: prebuilt binaries from the npm registry, no compiler). Each image is
// resized to the model input's H x W (scaled to cover it, then center-cropped, so the aspect
// ratio is kept), converted to grayscale when C = 1 or to RGB when C = 3, and scaled to [0, 1]
// (`--scale` changes the 1/255; `--mean` / `--std` apply after it).
import { readdirSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { TernionError } from '../errors';
import type { InputMetadata } from '../session/feeds';
import { Tensor } from '../tensor';
import { toModelInput, type Preprocess } from './inputs';

export const IMAGE_EXTENSIONS = ['.png', '.jpg', '.jpeg', '.webp', '.gif', '.tif', '.tiff', '.avif'];

/** The part of sharp's API used here. */
interface SharpPipeline {
  resize(width: number, height: number, options: { fit: string; position: string }): SharpPipeline;
  grayscale(): SharpPipeline;
  removeAlpha(): SharpPipeline;
  toColourspace(space: string): SharpPipeline;
  raw(): SharpPipeline;
  toBuffer(options: { resolveWithObject: true }): Promise<{ data: Buffer; info: { width: number; height: number; channels: number } }>;
}
type Sharp = (input: string, options?: { failOn?: string }) => SharpPipeline;

let cached: Sharp | undefined;

function loadSharp(): Sharp {
  if (cached) return cached;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const mod = require('sharp');
    cached = (mod.default ?? mod) as Sharp;
    return cached;
  } catch (e) {
    throw new TernionError(
      'ERR_NATIVE_LOAD',
      `Reading a folder of images needs the optional dependency "sharp", which could not be loaded (${(e as Error).message.split('\n')[0]}). ` +
        'Install it with `npm install sharp` (prebuilt binaries, no compiler), or pass an .npy file instead',
      { cause: e },
    );
  }
}

/** Image files of a folder, sorted by name (so the first K are always the same). */
export function listImages(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => IMAGE_EXTENSIONS.includes(extname(f).toLowerCase()) && statSync(join(dir, f)).isFile())
    .sort()
    .map((f) => join(dir, f));
}

/** Decodes up to `count` images of `dir` for the model input `meta` (shape [N, C, H, W]). */
export async function loadImageFolder(dir: string, meta: InputMetadata, count: number, pre: Preprocess): Promise<Tensor> {
  const shape = meta.shape;
  const [c, h, w] = shape?.slice(1) ?? [];
  if (!shape || shape.length !== 4 || typeof c !== 'number' || typeof h !== 'number' || typeof w !== 'number' || (c !== 1 && c !== 3)) {
    throw new TernionError(
      'ERR_SHAPE_MISMATCH',
      `A folder of images feeds an NCHW input with 1 or 3 channels and a fixed height and width; model input "${meta.name}" has shape ${shape ? `[${shape.join(', ')}]` : 'unknown'}. Pass an .npy file instead`,
    );
  }
  const files = listImages(dir).slice(0, count);
  if (files.length === 0) throw new TernionError('ERR_INVALID_ARGUMENT', `${dir} holds no images (${IMAGE_EXTENSIONS.join(', ')})`);
  const sharp = loadSharp();
  const pixels = new Uint8Array(files.length * c * h * w);
  for (const [n, file] of files.entries()) {
    let pipeline = sharp(file, { failOn: 'error' }).resize(w, h, { fit: 'cover', position: 'centre' });
    pipeline = c === 1 ? pipeline.grayscale() : pipeline.removeAlpha().toColourspace('srgb');
    let out;
    try {
      out = await pipeline.raw().toBuffer({ resolveWithObject: true });
    } catch (e) {
      throw new TernionError('ERR_INVALID_ARGUMENT', `Cannot decode image ${file}: ${(e as Error).message}`, { cause: e });
    }
    const { data, info } = out;
    if (info.width !== w || info.height !== h || info.channels !== c) {
      throw new TernionError('ERR_INTERNAL', `sharp returned ${info.width}x${info.height}x${info.channels} for ${file}, expected ${w}x${h}x${c}`);
    }
    // Interleaved HWC to planar CHW.
    const base = n * c * h * w;
    for (let p = 0; p < h * w; p++) for (let k = 0; k < c; k++) pixels[base + k * h * w + p] = data[p * c + k];
  }
  // uint8 pixels take the default scale 1/255 without a note: images are always 0..255.
  return toModelInput(new Tensor('uint8', pixels, [files.length, c, h, w]), meta, { ...pre, scale: pre.scale ?? 1 / 255 }, dir, () => undefined);
}
