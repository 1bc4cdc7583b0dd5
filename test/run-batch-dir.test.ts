// `ternion run MODEL --batch-dir DIR` as a user runs it (node dist/cli/main.js): a folder of
// .npy files (one sample with or without the batch dim, several samples, uint8 and float32),
// PNG images (when sharp loads) and a bad file, over 2 piscina workers; every line checked
// against direct session.run calls, in file order.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InferenceSession, Tensor, loadNpy } from '../lib';
import { saveNpy } from '../lib/data/npy';
import { ensureDist, runCli } from './ensure-dist';
import { ROOT } from './native-build';
import { encodeModel, valueInfo } from './onnx-build-model';

const MODEL = join(ROOT, 'models', 'fashion-mnist-resnet.onnx');


const cli = runCli;

function trySharp(): any { // eslint-disable-line @typescript-eslint/no-explicit-any
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require('sharp');
  } catch {
    return undefined;
  }
}

let tmp: string;
let dir: string;
let images: Uint8Array;
let logits: Float32Array; // direct run of each of the first 16 test images
/** file name -> the test images it holds, in order (undefined: a bad file). */
const expected = new Map<string, number[] | undefined>();
const sharp = trySharp();

function argmax(a: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[best]) best = i;
  return best;
}

beforeAll(async () => {
  await ensureDist();
  tmp = mkdtempSync(join(tmpdir(), 'ternion-batch-dir-'));
  dir = join(tmp, 'in');
  const { mkdirSync } = await import('node:fs');
  mkdirSync(dir);
  images = (loadNpy(join(ROOT, 'data', 'fashion-mnist-test-images.npy')).data as Uint8Array).slice(0, 16 * 784);
  const session = await InferenceSession.create(MODEL, { threads: 1 });
  const x = Float32Array.from(images, (v) => v / 255);
  logits = (await session.run({ image: new Tensor('float32', x, [16, 1, 28, 28]) })).logits.data as Float32Array;
  await session.release();
  const img = (i: number) => x.slice(i * 784, (i + 1) * 784);
  // Names sort in this order: a*, b*, c*, ...
  for (let i = 0; i < 8; i++) {
    const name = `a${i}.npy`;
    saveNpy(join(dir, name), new Tensor('float32', img(i), i % 2 ? [1, 28, 28] : [28, 28]));
    expected.set(name, [i]);
  }
  saveNpy(join(dir, 'b-three.npy'), new Tensor('uint8', images.slice(8 * 784, 11 * 784), [3, 1, 28, 28]));
  expected.set('b-three.npy', [8, 9, 10]);
  saveNpy(join(dir, 'c-bad.npy'), new Tensor('float32', new Float32Array(10), [10]));
  expected.set('c-bad.npy', undefined);
  writeFileSync(join(dir, 'notes.txt'), 'not an input');
  if (sharp) {
    for (const i of [11, 12]) {
      await sharp(Buffer.from(images.subarray(i * 784, (i + 1) * 784)), { raw: { width: 28, height: 28, channels: 1 } }).png().toFile(join(dir, `d${i}.png`));
      expected.set(`d${i}.png`, [i]);
    }
  }
});

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('ternion run --batch-dir', () => {
  it('writes one JSON line per sample, in file order, matching direct runs; a bad file gets an error line and exit 1', async () => {
    const out = join(tmp, 'out.jsonl');
    const r = await cli(['run', MODEL, '--batch-dir', dir, '-o', out, '--workers', '2', '--batch', '3']);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stdout).toBe('');
    const lineCount = [...expected.values()].reduce((a, list) => a + (list?.length ?? 1), 0);
    expect(r.stderr).toMatch(new RegExp(`${expected.size} files, ${lineCount} lines to .*out\\.jsonl, 1 failed; 2 workers x 1 thread`));
    expect(r.stderr).toMatch(/1 of \d+ files could not be run/);
    expect(r.stderr).toMatch(/b-three\.npy is uint8; fed to the model as value\/255/);
    const lines = readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const want: { file: string; image?: number; index?: number }[] = [];
    for (const [file, list] of [...expected.entries()].sort(([a], [b]) => (a < b ? -1 : 1))) {
      if (!list) want.push({ file });
      else list.forEach((image, index) => want.push({ file, image, ...(list.length > 1 ? { index } : {}) }));
    }
    expect(lines.map((l) => [l.file, l.index])).toEqual(want.map((w) => [w.file, w.index]));
    lines.forEach((line, k) => {
      const w = want[k];
      if (w.image === undefined) {
        expect(line.error.code).toBe('ERR_SHAPE_MISMATCH');
        expect(line.outputs).toBeUndefined();
        return;
      }
      const ref = logits.subarray(w.image * 10, (w.image + 1) * 10);
      expect(line.outputs.logits).toHaveLength(10);
      line.outputs.logits.forEach((v: number, c: number) => expect(v).toBeCloseTo(ref[c], 4));
      expect(line.top1).toBe(argmax(ref));
    });
  });

  it('--top1 writes the classes only, to stdout without -o; one worker gives the same classes', async () => {
    const r = await cli(['run', MODEL, '--batch-dir', dir, '--workers', '1', '--top1', '--batch', '16']);
    expect(r.code).toBe(1); // the bad file
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    const ok = lines.filter((l) => !l.error);
    expect(ok.every((l) => l.outputs === undefined && Number.isInteger(l.top1))).toBe(true);
    expect(ok.find((l) => l.file === 'a3.npy').top1).toBe(argmax(logits.subarray(30, 40)));
    expect(lines.filter((l) => l.file === 'b-three.npy').map((l) => l.top1)).toEqual([8, 9, 10].map((i) => argmax(logits.subarray(i * 10, i * 10 + 10))));
  });

  it('BAD CALLS - usage errors (exit 2), an empty folder and a model with two inputs (exit 1)', async () => {
    const both = await cli(['run', MODEL, '--batch-dir', dir, '--input', join(dir, 'a0.npy')]);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/--input and --batch-dir exclude each other/);
    const workers = await cli(['run', MODEL, '--input', join(dir, 'a1.npy'), '--workers', '2']);
    expect(workers.code).toBe(2);
    expect(workers.stderr).toMatch(/--workers goes with --batch-dir/);
    const none = await cli(['run', MODEL]);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/ternion run: missing --input \(or --batch-dir DIR\)/);
    const zero = await cli(['run', MODEL, '--batch-dir', dir, '--workers', '0']);
    expect(zero.code).toBe(1);
    expect(zero.stderr).toMatch(/ERR_INVALID_ARGUMENT: Expected a positive integer for --workers/);
    const emptyDir = join(tmp, 'empty');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(emptyDir);
    const empty = await cli(['run', MODEL, '--batch-dir', emptyDir]);
    expect(empty.code).toBe(1);
    expect(empty.stderr).toMatch(/ERR_INVALID_ARGUMENT: --batch-dir .*empty holds no inputs/);
    const twoInputs = join(tmp, 'add.onnx');
    writeFileSync(twoInputs, encodeModel({
      nodes: [{ op: 'Add', inputs: ['x', 'z'], outputs: ['y'], name: 'add' }],
      inputs: [valueInfo('x', ['N', 3]), valueInfo('z', ['N', 3])],
      outputs: [valueInfo('y', ['N', 3])],
    }));
    const two = await cli(['run', twoInputs, '--batch-dir', dir, '--workers', '1']);
    expect(two.code).toBe(1);
    expect(two.stderr).toMatch(/ERR_INPUT_NAME: --batch-dir feeds models with one input; .*add\.onnx has 2 \(x, z\)/);
  });

  it('the plain `run --input` is unchanged', async () => {
    const r = await cli(['run', MODEL, '--input', join(dir, 'b-three.npy')]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^logits: float32 \[3, 10\]/);
  });
});
