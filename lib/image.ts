// Tensor.fromImage: a JPEG / PNG / WebP / ... (a path or its bytes) decoded by `sharp`, an
// optional dependency loaded on first use, into a float32 tensor ready for a vision model:
// resized to the size asked for, converted to 1 (grayscale) or 3 (sRGB) channels, scaled to
// [0, 1], normalized per channel ((v - mean[c]) / std[c]) and laid out NCHW or NHWC with a
// leading batch dim of 1. `Tensor.fromImage` is attached to the Tensor class when this module
// loads (lib/index.ts loads it), so `require('ternion').Tensor.fromImage` always exists.
import { TernionError, describe, invalidArgument, oneOf } from './errors';
import { Tensor } from './tensor';

/** A path, or the encoded bytes of an image (a Buffer is a Uint8Array). */
export type ImageInput = string | Uint8Array | ArrayBuffer;

export interface FromImageOptions {
  /**
   * Output height and width: `[h, w]`, or one number for a square. Without it the image keeps
   * its own size.
   */
  size?: number | readonly [number, number];
  /** How the image fills `size` (default 'cover': scale to cover it, crop the centre). */
  fit?: 'cover' | 'contain' | 'fill';
  /** 1: grayscale, 3: sRGB (default 3). An alpha channel is dropped. */
  channels?: 1 | 3;
  /** 'nchw' ([1, C, H, W], default) or 'nhwc' ([1, H, W, C]). */
  layout?: 'nchw' | 'nhwc';
  /** Subtracted after scaling to [0, 1]: one value, or one per channel (default 0). */
  mean?: number | readonly number[];
  /** Divides after the mean: one value, or one per channel (default 1). */
  std?: number | readonly number[];
}

/** The part of sharp's API used here. */
interface SharpPipeline {
  resize(options: { width: number; height: number; fit: string; position: string }): SharpPipeline;
  grayscale(): SharpPipeline;
  removeAlpha(): SharpPipeline;
  toColourspace(space: string): SharpPipeline;
  raw(): SharpPipeline;
  toBuffer(options: { resolveWithObject: true }): Promise<{ data: Buffer; info: { width: number; height: number; channels: number } }>;
}
type Sharp = (input: string | Buffer, options?: { failOn?: string }) => SharpPipeline;

let sharpModule: Sharp | undefined;

/** sharp, loaded on first use; a TernionError (ERR_NATIVE_LOAD) saying how to get it otherwise. */
export function loadSharp(): Sharp {
  if (sharpModule) return sharpModule;
  let mod: { default?: Sharp } & Sharp;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    mod = require('sharp');
  } catch (e) {
    throw new TernionError(
      'ERR_NATIVE_LOAD',
      `Tensor.fromImage needs the optional dependency "sharp", which could not be loaded (${(e as Error).message.split('\n')[0]}). ` +
        'Install it with `npm install sharp` (prebuilt binaries, no compiler), or decode the image yourself and use new Tensor(...)',
      { cause: e },
    );
  }
  sharpModule = mod.default ?? mod;
  return sharpModule;
}

function positiveInt(v: unknown, name: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 65535) throw invalidArgument('an integer from 1 to 65535', name, v);
  return v;
}

function perChannel(v: unknown, channels: number, name: string, fallback: number, nonZero: boolean): Float32Array {
  const out = new Float32Array(channels).fill(fallback);
  if (v === undefined) return out;
  const list = typeof v === 'number' ? [v] : v;
  if (!Array.isArray(list) || (list.length !== 1 && list.length !== channels)) {
    throw invalidArgument(`a number or an array of 1 or ${channels} numbers`, name, v);
  }
  list.forEach((x, i) => {
    if (typeof x !== 'number' || !Number.isFinite(x) || (nonZero && x === 0)) {
      throw invalidArgument(nonZero ? 'finite non-zero numbers' : 'finite numbers', `${name}[${i}]`, x);
    }
  });
  if (list.length === 1) out.fill(list[0]);
  else out.set(list);
  return out;
}

interface Decoded {
  /** Interleaved HWC pixels, 0..255. */
  pixels: Buffer;
  height: number;
  width: number;
  channels: 1 | 3;
}

/** Decodes an image to interleaved 8-bit pixels of `channels` channels, resized as asked. */
export async function decodeImage(input: ImageInput, options: Pick<FromImageOptions, 'size' | 'fit' | 'channels'> = {}): Promise<Decoded> {
  let source: string | Buffer;
  if (typeof input === 'string') source = input;
  else if (input instanceof Uint8Array) source = Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  else if (input instanceof ArrayBuffer) source = Buffer.from(input);
  else throw invalidArgument('a path, or the bytes of an image as a Buffer, Uint8Array or ArrayBuffer', 'image', input);
  const channels = oneOf(options.channels, [1, 3] as const, 'options.channels', 3);
  const fit = oneOf(options.fit, ['cover', 'contain', 'fill'] as const, 'options.fit', 'cover');
  let size: [number, number] | undefined;
  if (typeof options.size === 'number') size = [positiveInt(options.size, 'options.size'), options.size];
  else if (Array.isArray(options.size) && options.size.length === 2) size = [positiveInt(options.size[0], 'options.size[0]'), positiveInt(options.size[1], 'options.size[1]')];
  else if (options.size !== undefined) throw invalidArgument('a number or [height, width]', 'options.size', options.size);

  const sharp = loadSharp();
  const what = typeof input === 'string' ? `image "${input}"` : `image (${describe(input)})`;
  let out;
  try {
    let p = sharp(source, { failOn: 'error' });
    if (size) p = p.resize({ width: size[1], height: size[0], fit, position: 'centre' });
    p = channels === 1 ? p.grayscale().removeAlpha() : p.removeAlpha().toColourspace('srgb');
    out = await p.raw().toBuffer({ resolveWithObject: true });
  } catch (e) {
    throw new TernionError('ERR_INVALID_ARGUMENT', `Cannot decode ${what}: ${(e as Error).message}`, { cause: e });
  }
  const { data, info } = out;
  if (info.channels !== channels || (size && (info.height !== size[0] || info.width !== size[1]))) {
    throw new TernionError('ERR_INTERNAL', `sharp returned ${info.height}x${info.width}x${info.channels} pixels for ${what}, expected ${size ? size.join('x') : 'HxW'}x${channels}`);
  }
  return { pixels: data, height: info.height, width: info.width, channels };
}

/**
 * Decodes an image into a float32 tensor [1, C, H, W] (or [1, H, W, C] with layout 'nhwc'):
 * pixels / 255, then (v - mean[c]) / std[c].
 */
export async function fromImage(input: ImageInput, options: FromImageOptions = {}): Promise<Tensor<'float32'>> {
  if (options === null || typeof options !== 'object') throw invalidArgument('an options object', 'options', options);
  const layout = oneOf(options.layout, ['nchw', 'nhwc'] as const, 'options.layout', 'nchw');
  const c = oneOf(options.channels, [1, 3] as const, 'options.channels', 3);
  const mean = perChannel(options.mean, c, 'options.mean', 0, false);
  const std = perChannel(options.std, c, 'options.std', 1, true);
  const { pixels, height: h, width: w } = await decodeImage(input, options);
  const hw = h * w;
  const out = new Float32Array(hw * c);
  for (let k = 0; k < c; k++) {
    const m = mean[k], s = std[k];
    for (let p = 0; p < hw; p++) {
      const v = (pixels[p * c + k] / 255 - m) / s;
      out[layout === 'nchw' ? k * hw + p : p * c + k] = v;
    }
  }
  return new Tensor('float32', out, layout === 'nchw' ? [1, c, h, w] : [1, h, w, c]);
}

Tensor.fromImage = fromImage;
