// ternion quantize / eval / run / inspect as a user runs them (node dist/cli/main.js), on the
// embedded model and .npy slices of its test set written to a temp folder; plus the argument
// parser, the progress bar and the .npy writer in-process.
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InferenceSession, Tensor } from '../lib';
import { parseArgs, type CommandSpec } from '../lib/cli/args';
import { Progress } from '../lib/cli/progress';
import { formatNpy, loadNpy, parseNpy, saveNpy } from '../lib/data/npy';
import { ROOT } from './native-build';
import { readTern } from '../lib/format';

const execFileAsync = promisify(execFile);
const CLI = join(ROOT, 'dist', 'cli', 'main.js');
const MODEL = join(ROOT, 'models', 'fashion-mnist-resnet.onnx');
const COUNT = 300;

interface Result { code: number | null; signal: string | null; stdout: string; stderr: string }

async function cli(args: string[], options: { nodeArgs?: string[] } = {}): Promise<Result> {
  try {
    const r = await execFileAsync(process.execPath, [...(options.nodeArgs ?? []), CLI, ...args], { cwd: ROOT, maxBuffer: 64 << 20 });
    return { code: 0, signal: null, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code?: number; signal?: string; stdout?: string; stderr?: string };
    return { code: typeof err.code === 'number' ? err.code : null, signal: err.signal ?? null, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}

/** Newest modification time of the TypeScript sources under lib/. */
function newestSource(dir = join(ROOT, 'lib')): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestSource(p) : entry.name.endsWith('.ts') ? statSync(p).mtimeMs : 0);
  }
  return newest;
}

let tmp: string;
let images: Uint8Array;
let labels: Uint8Array;
let tern: string;

function argmaxRows(logits: Float32Array, classes: number): Int32Array {
  const out = new Int32Array(logits.length / classes);
  for (let i = 0; i < out.length; i++) {
    let best = 0;
    for (let c = 1; c < classes; c++) if (logits[i * classes + c] > logits[i * classes + best]) best = c;
    out[i] = best;
  }
  return out;
}

/** The logits of the API over the same data, in the same batches as the CLI (default 100). */
async function apiLogits(model: string, batch = 100): Promise<Float32Array> {
  const session = await InferenceSession.create(model);
  const out = new Float32Array(COUNT * 10);
  for (let from = 0; from < COUNT; from += batch) {
    const n = Math.min(batch, COUNT - from);
    const x = Float32Array.from(images.subarray(from * 784, (from + n) * 784), (v) => v / 255);
    out.set((await session.run({ image: new Tensor('float32', x, [n, 1, 28, 28]) })).logits.data as Float32Array, from * 10);
  }
  await session.release();
  return out;
}

beforeAll(async () => {
  const main = join(ROOT, 'dist', 'cli', 'main.js');
  if (!existsSync(main) || statSync(main).mtimeMs < newestSource()) {
    // tsc emits even when a file being edited elsewhere has a type error; the tests then tell.
    await execFileAsync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', ROOT]).catch((e) => console.warn(`tsc: ${e.stdout ?? e}`));
  }
  tmp = mkdtempSync(join(tmpdir(), 'ternion-cli-'));
  images = (loadNpy(join(ROOT, 'data', 'fashion-mnist-test-images.npy')).data as Uint8Array).slice(0, COUNT * 784);
  labels = (loadNpy(join(ROOT, 'data', 'fashion-mnist-test-labels.npy')).data as Uint8Array).slice(0, COUNT);
  saveNpy(join(tmp, 'x.npy'), new Tensor('uint8', images, [COUNT, 1, 28, 28]));
  saveNpy(join(tmp, 'y.npy'), new Tensor('int64', BigInt64Array.from(labels, (v) => BigInt(v)), [COUNT]));
  // float32 pixels in [0, 1] without the channel dim: [300, 28, 28] feeds [batch, 1, 28, 28].
  saveNpy(join(tmp, 'xf.npy'), new Tensor('float32', Float32Array.from(images, (v) => v / 255), [COUNT, 28, 28]));
  saveNpy(join(tmp, 'x-wrong.npy'), new Tensor('float32', new Float32Array(10 * 27 * 28), [10, 27, 28]));
  saveNpy(join(tmp, 'y-float.npy'), new Tensor('float32', new Float32Array(COUNT), [COUNT]));
  saveNpy(join(tmp, 'y-short.npy'), new Tensor('uint8', labels.slice(0, 100), [100]));
  // A float64 .npy, as NumPy writes by default (header written by hand).
  const header = "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 784), }";
  const f64 = formatNpy(new Tensor('float32', new Float32Array(2 * 784 * 2), [2, 784 * 2]));
  const text = new TextDecoder().decode(f64.subarray(10, 10 + f64[8]));
  f64.set(new TextEncoder().encode(header.padEnd(text.length - 1) + '\n'), 10);
  writeFileSync(join(tmp, 'x-f64.npy'), f64);
  tern = join(tmp, 'model.tern');
}, 120_000);

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('ternion quantize / eval / run / inspect', () => {
  it('quantize writes a .tern, the report and a summary of every layer', async () => {
    const report = join(tmp, 'report.json');
    const r = await cli(['quantize', MODEL, '-o', tern, '--calib', join(tmp, 'x.npy'), '--calib-count', '200', '--weights=ternary', '--group', '4', '--report', report]);
    expect(r.stderr).not.toMatch(/ERR_/);
    expect(r.code).toBe(0);
    const q = JSON.parse(readFileSync(report, 'utf8'));
    expect(q.layers).toHaveLength(10);
    for (const l of q.layers) expect(r.stdout).toContain(l.name);
    expect(r.stdout).toMatch(/^total +\d+\.\d\d +[\d,]+ +1,226,880 +\d+%$/m);
    expect(r.stdout).toMatch(/wrote .*model\.tern .* calibrated on 200 samples/);
    // stderr is no TTY here: plain lines, no bar redraws; stdout has no progress.
    expect(r.stderr).toMatch(/^note: .*x\.npy is uint8; fed to the model as value\/255/m);
    expect(r.stderr).not.toContain('\r');
    expect(r.stdout).not.toMatch(/calibrating/);
    expect(readFileSync(tern).subarray(0, 4).toString('latin1')).toBe('TERN');
  });

  it('quantize --weights int8: 7-bit codes by default, 8-bit with --full-range (recorded in the file)', async () => {
    const maxCodeOf = (file: string) => {
      const m = readTern(readFileSync(file));
      let max = 0;
      for (const n of m.graph.nodes.filter((x) => x.attributes.weight_bits?.value === 8)) {
        for (const v of m.graph.initializers.get(n.inputs[1])!.data as Int8Array) max = Math.max(max, Math.abs(v));
      }
      return { max, reduceRange: m.quantization?.options.reduceRange };
    };
    for (const [flags, want] of [[[], { max: 63, reduceRange: true }], [['--full-range'], { max: 127, reduceRange: false }]] as const) {
      const out = join(tmp, `int8${flags.length}.tern`);
      const r = await cli(['quantize', MODEL, '-o', out, '--calib', join(tmp, 'x.npy'), '--calib-count', '32', '--weights', 'int8', ...flags]);
      expect(r.code, r.stderr).toBe(0);
      expect(maxCodeOf(out)).toEqual(want);
    }
  });

  it('quantize --data-aware, and --max-drop with --validate (the accuracy budget)', async () => {
    const report = join(tmp, 'report-da.json');
    const da = await cli(['quantize', MODEL, '-o', join(tmp, 'da.tern'), '--calib', join(tmp, 'x.npy'), '--calib-count', '64', '--group', '16', '--data-aware', '--report', report]);
    expect(da.stderr).not.toMatch(/ERR_/);
    expect(da.code).toBe(0);
    const layers = JSON.parse(readFileSync(report, 'utf8')).layers;
    expect(layers.filter((l: { weights: string }) => l.weights === 'ternary').every((l: { methods: string[] }) => l.methods.join() === 'error-feedback,refit-scales,bias-correction')).toBe(true);
    const budget = await cli(['quantize', MODEL, '-o', join(tmp, 'budget.tern'), '--calib', join(tmp, 'x.npy'), '--calib-count', '64', '--max-drop', '0.05', '--validate', join(tmp, 'x.npy'), join(tmp, 'y.npy')]);
    expect(budget.stderr).not.toMatch(/ERR_/);
    expect(budget.code).toBe(0);
    expect(budget.stdout).toMatch(/^accuracy budget: fp32 top-1 \d+\.\d\d%, quantized \d+\.\d\d% \(drop -?\d+\.\d\d points, budget 5\.00\): met; \d+ validation runs$/m);
    const noValidate = await cli(['quantize', MODEL, '-o', join(tmp, 'q.tern'), '--max-drop', '0.01']);
    expect(noValidate.code).toBe(2);
    expect(noValidate.stderr).toMatch(/--max-drop needs --validate X\.npy Y\.npy/);
    const oneValue = await cli(['quantize', MODEL, '-o', join(tmp, 'q.tern'), '--validate', join(tmp, 'x.npy')]);
    expect(oneValue.code).toBe(2);
    expect(oneValue.stderr).toMatch(/--validate needs 2 values/);
    const badDrop = await cli(['quantize', MODEL, '-o', join(tmp, 'q.tern'), '--max-drop', '5', '--validate', join(tmp, 'x.npy'), join(tmp, 'y.npy')]);
    expect(badDrop.code).toBe(1);
    expect(badDrop.stderr).toMatch(/ERR_INVALID_ARGUMENT: Expected a fraction in \[0, 1\) for --max-drop/);
  }, 600_000);

  it('eval --json on the .tern gives the top-1 the API computes on the same data', async () => {
    const r = await cli(['eval', tern, '--inputs', join(tmp, 'x.npy'), '--labels', join(tmp, 'y.npy'), '--json']);
    expect(r.code).toBe(0);
    const result = JSON.parse(r.stdout);
    expect(result.count).toBe(COUNT);
    expect(result.top1).toBeGreaterThan(0.7);
    expect(result.top1).toBeLessThanOrEqual(1);
    expect(result.top5).toBeGreaterThanOrEqual(result.top1);
    expect(result.imagesPerSecond).toBeGreaterThan(0);
    const predictions = argmaxRows(await apiLogits(tern), 10);
    const correct = predictions.filter((p, i) => p === labels[i]).length;
    expect(result.top1).toBe(correct / COUNT);
  });

  it('eval of the .onnx in fp32 and int8 prints top-1 and top-5', async () => {
    const fp32 = await cli(['eval', MODEL, '--inputs', join(tmp, 'xf.npy'), '--labels', join(tmp, 'y.npy'), '--json', '--batch', '128']);
    expect(fp32.code).toBe(0);
    const a = JSON.parse(fp32.stdout);
    const correct = argmaxRows(await apiLogits(MODEL), 10).filter((p, i) => p === labels[i]).length;
    expect(a.top1).toBe(correct / COUNT);
    const int8 = await cli(['eval', MODEL, '--inputs', join(tmp, 'x.npy'), '--labels', join(tmp, 'y.npy'), '--precision', 'int8', '--count', '200']);
    expect(int8.code).toBe(0);
    expect(int8.stdout).toMatch(/\(int8\): top-1 \d+\.\d\d% \(\d+\/200\)  top-5 \d+\.\d\d%  \d+ images\/s/);
  });

  it('run -o writes the outputs session.run gives', async () => {
    const out = join(tmp, 'logits.npy');
    const r = await cli(['run', tern, '--input', `image=${join(tmp, 'x.npy')}`, '-o', out]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/wrote logits float32 \[300, 10\]/);
    const got = loadNpy(out);
    expect(got.type).toBe('float32');
    expect(got.dims).toEqual([COUNT, 10]);
    expect(Array.from(got.data as Float32Array)).toEqual(Array.from(await apiLogits(tern)));
    // NAME may be left out for a one-input model; without -o it prints shape and first values.
    const p = await cli(['run', MODEL, '--input', join(tmp, 'xf.npy'), '--batch', '300']);
    expect(p.code).toBe(0);
    const fp32 = await apiLogits(MODEL, 300);
    expect(p.stdout).toContain(`logits: float32 [300, 10]  ${fp32[0].toPrecision(6)}`);
  });

  it('inspect shows every layer of the .onnx and of the .tern, with bits and activation parameters', async () => {
    const q = JSON.parse(readFileSync(join(tmp, 'report.json'), 'utf8'));
    const onnx = await cli(['inspect', MODEL]);
    expect(onnx.code).toBe(0);
    expect(onnx.stdout).toMatch(/image: float32 \[batch, 1, 28, 28\]/);
    expect(onnx.stdout).toMatch(/Conv 9/);
    for (const l of q.layers) expect(onnx.stdout).toContain(l.name);
    const t = await cli(['inspect', tern]);
    expect(t.code).toBe(0);
    for (const l of q.layers) expect(t.stdout).toMatch(new RegExp(`${l.name.replace(/[/.]/g, '\\$&')} +TernionQ(Conv|Gemm) +(int8|ternary) +(8|2) `));
    const j = JSON.parse((await cli(['inspect', tern, '--json'])).stdout);
    expect(j.format).toBe('tern');
    expect(j.layers.map((l: { name: string }) => l.name)).toEqual(q.layers.map((l: { name: string }) => l.name));
    const inner = j.layers[1];
    expect(inner).toMatchObject({ weightBits: 2, groupSize: 4, activation: { mode: 'static', bits: 8 } });
    expect(inner.activation.scale).toBeCloseTo(q.layers[1].activationScale, 6);
  });

  it('quantize calibrates on a folder of images through sharp', async () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const sharp = require('sharp');
    const dir = join(tmp, 'images');
    mkdirSync(dir);
    for (let i = 0; i < 5; i++) {
      const w = 40 + 8 * i, h = 30 + 4 * i;
      const rgb = Buffer.alloc(w * h * 3);
      for (let j = 0; j < rgb.length; j++) rgb[j] = (j * 7 + i * 31) & 255;
      await sharp(rgb, { raw: { width: w, height: h, channels: 3 } }).png().toFile(join(dir, `img${i}.png`));
    }
    writeFileSync(join(dir, 'notes.txt'), 'not an image');
    const r = await cli(['quantize', MODEL, '-o', join(tmp, 'images.tern'), '--calib', dir, '--weights', 'int4', '--group', '16', '--calib-count', '4']);
    expect(r.stderr).not.toMatch(/ERR_/);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/calibrated on 4 samples/);
    // Without sharp: a clear error naming the fix.
    const preload = join(tmp, 'no-sharp.js');
    writeFileSync(preload, `const M = require('module'); const load = M._load; M._load = function (r, ...a) { if (r === 'sharp') throw new Error("Cannot find module 'sharp'"); return load.call(this, r, ...a); };`);
    const missing = await cli(['quantize', MODEL, '-o', join(tmp, 'x.tern'), '--calib', dir], { nodeArgs: ['--require', preload] });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/ternion: ERR_NATIVE_LOAD: .*optional dependency "sharp".*npm install sharp/);
  });

  it('Ctrl-C during quantize aborts it: exit 130, no file written', async () => {
    const out = join(tmp, 'interrupted.tern');
    const child = spawn(process.execPath, [CLI, 'quantize', MODEL, '-o', out, '--calib', join(ROOT, 'data', 'fashion-mnist-calib-images.npy'), '--calib-count', '512', '--calibrate', 'mse'], { cwd: ROOT });
    let stderr = '';
    const code = await new Promise<number | null>((resolve) => {
      child.stderr.on('data', (d) => {
        stderr += d;
        // The note is printed once the Ctrl-C handler is in place, before calibration starts.
        if (stderr.includes('note:') && !child.killed) child.kill('SIGINT');
      });
      child.on('exit', (c) => resolve(c));
    });
    expect(stderr).toMatch(/ternion quantize: interrupted/);
    expect(code).toBe(130);
    expect(existsSync(out)).toBe(false);
  });

  it('--help prints the usage of each command', async () => {
    for (const cmd of ['quantize', 'run']) {
      const r = await cli([cmd, '--help']);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^usage: ternion ${cmd} `));
    }
    const top = await cli([]);
    expect(top.code).toBe(0);
    expect(top.stdout).toMatch(/quantize IN\.onnx -o OUT\.tern/);
  });

  it('BAD CALL - usage errors exit 2 with the message and the command usage', async () => {
    const unknown = await cli(['eval', MODEL, '--inputs', 'x.npy', '--labels', 'y.npy', '--top', '3']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/^ternion eval: unknown flag --top; its flags are --inputs, --labels/);
    expect(unknown.stderr).toMatch(/usage: ternion eval MODEL --inputs X\.npy --labels Y\.npy/);
    const missing = await cli(['eval', MODEL, '--inputs', join(tmp, 'x.npy')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/ternion eval: missing --labels/);
    const noOut = await cli(['quantize', MODEL]);
    expect(noOut.code).toBe(2);
    expect(noOut.stderr).toMatch(/ternion quantize: missing --output \(-o\)/);
    const other = join(tmp, 'other.onnx');
    writeFileSync(other, readFileSync(MODEL));
    const noCalib = await cli(['quantize', other, '-o', join(tmp, 'q.tern')]);
    expect(noCalib.code).toBe(2);
    expect(noCalib.stderr).toMatch(/ternion quantize: missing --calib/);
    const noValue = await cli(['run', MODEL, '--input']);
    expect(noValue.code).toBe(2);
    expect(noValue.stderr).toMatch(/ternion run: --input needs a value/);
    const command = await cli(['quantise']);
    expect(command.code).toBe(2);
    expect(command.stderr).toMatch(/unknown command "quantise"/);
  });

  it('EXPECTED FAILURE - bad values, missing files, wrong shapes and dtypes exit 1 with their code', async () => {
    const cases: [string[], RegExp][] = [
      [['quantize', MODEL, '-o', join(tmp, 'q.tern'), '--weights', 'binary', '--calib', join(tmp, 'x.npy')], /ERR_INVALID_ARGUMENT: Expected one of ternary, ternary-asym, int4, int8 for --weights but received "binary"/],
      [['quantize', MODEL, '-o', join(tmp, 'q.tern'), '--group', '5', '--calib', join(tmp, 'x.npy')], /ERR_INVALID_ARGUMENT: Expected one of 4, 8, 16, 32, 64, filter for --group but received "5"/],
      [['quantize', join(tmp, 'x.npy'), '-o', join(tmp, 'q.tern'), '--calib', join(tmp, 'x.npy')], /ERR_MODEL_FORMAT/],
      [['quantize', MODEL, '-o', join(tmp, 'no-such-dir', 'q.tern'), '--calib', join(tmp, 'x.npy')], /ERR_INVALID_ARGUMENT: Cannot write .*no-such-dir/],
      [['quantize', MODEL, '-o', join(tmp, 'q.tern'), '--calib', join(tmp, 'x-wrong.npy')], /ERR_SHAPE_MISMATCH: .*x-wrong\.npy has shape \[10, 27, 28\]: 10 samples of \[27, 28\], but model input "image" takes samples of \[1, 28, 28\]/],
      [['eval', join(tmp, 'missing.onnx'), '--inputs', join(tmp, 'x.npy'), '--labels', join(tmp, 'y.npy')], /ERR_INVALID_ARGUMENT: Cannot read model file .*missing\.onnx/],
      [['eval', MODEL, '--inputs', join(tmp, 'missing.npy'), '--labels', join(tmp, 'y.npy')], /ERR_INVALID_ARGUMENT: Cannot read .*missing\.npy/],
      [['eval', MODEL, '--inputs', join(tmp, 'x-f64.npy'), '--labels', join(tmp, 'y.npy')], /ERR_DTYPE: .*x-f64\.npy holds f8 data \(float64: save it with x\.astype\(numpy\.float32\)\)/],
      [['eval', MODEL, '--inputs', join(tmp, 'x.npy'), '--labels', join(tmp, 'y-float.npy')], /ERR_DTYPE: .*y-float\.npy holds float32 data; labels are class indices/],
      [['eval', MODEL, '--inputs', join(tmp, 'x.npy'), '--labels', join(tmp, 'y-short.npy')], /ERR_SHAPE_MISMATCH: .*y-short\.npy holds 100 labels for 300 samples/],
      [['eval', MODEL, '--inputs', join(tmp, 'x.npy'), '--labels', join(tmp, 'y.npy'), '--batch', '0'], /ERR_INVALID_ARGUMENT: Expected a positive integer for --batch but received "0"/],
      [['eval', tern, '--inputs', join(tmp, 'x.npy'), '--labels', join(tmp, 'y.npy'), '--precision', 'int8'], /ERR_INVALID_ARGUMENT: --precision applies to \.onnx models/],
      [['run', MODEL, '--input', `pixels=${join(tmp, 'x.npy')}`], /ERR_INPUT_NAME: The model has no input "pixels" \(its inputs: "image"\)/],
      [['run', MODEL, '--input', join(tmp, 'x-wrong.npy')], /ERR_SHAPE_MISMATCH/],
      [['run', MODEL, '--input', join(tmp, 'x.npy'), '--scale', 'half'], /ERR_INVALID_ARGUMENT: Expected a number \(or a fraction such as 1\/255\) for --scale but received "half"/],
    ];
    // Two at a time (the machine has two cores); each case is a process start and a quick failure.
    const results: Result[] = new Array(cases.length);
    let next = 0;
    const worker = async () => {
      while (next < cases.length) {
        const i = next++;
        results[i] = await cli(cases[i][0]);
      }
    };
    await Promise.all([worker(), worker()]);
    cases.forEach(([args, want], i) => {
      expect(results[i].stderr, args.join(' ')).toMatch(want);
      expect(results[i].code, args.join(' ')).toBe(1);
    });
  });
});

describe('CLI building blocks', () => {
  const spec: CommandSpec = {
    name: 'demo-cmd',
    usage: 'usage: ternion demo-cmd X',
    positionals: ['X'],
    flags: [{ name: 'output', alias: 'o', required: true }, { name: 'input', repeat: true }, { name: 'json', switch: true }, { name: 'mean' }],
  };

  it('parseArgs: --flag value, --flag=value, -o, repeated flags, switches, values starting with a dash', () => {
    const a = parseArgs(['m.onnx', '-o', 'out.npy', '--input=a=x.npy', '--input', 'b=y.npy', '--json', '--mean', '-0.5'], spec);
    expect(a.positionals).toEqual(['m.onnx']);
    expect(a.values.get('output')).toBe('out.npy');
    expect(a.lists.get('input')).toEqual(['a=x.npy', 'b=y.npy']);
    expect(a.values.get('json')).toBe('true');
    expect(a.values.get('mean')).toBe('-0.5');
    expect(parseArgs(['--help'], spec).help).toBe(true);
  });

  it('BAD CALL - parseArgs names the flag and carries the usage', () => {
    const bad = (argv: string[]) => {
      try {
        parseArgs(argv, spec);
      } catch (e) {
        return e as Error & { code: string; usage: string };
      }
      throw new Error('no throw');
    };
    const e = bad(['m', '-o', 'x', '--jsn']);
    expect(e.name).toBe('UsageError');
    expect(e.code).toBe('ERR_INVALID_ARGUMENT');
    expect(e.message).toBe('ternion demo-cmd: unknown flag --jsn; its flags are --output, --input, --json, --mean');
    expect(e.usage).toBe(spec.usage);
    expect(bad(['m', '-o', 'x', '--json=1']).message).toMatch(/--json takes no value/);
    expect(bad(['m']).message).toMatch(/missing --output \(-o\)/);
    expect(bad(['m', '-o', 'x', '-o', 'y']).message).toMatch(/--output is given twice/);
    expect(bad(['m', 'n', '-o', 'x']).message).toMatch(/unexpected argument "n"/);
  });

  it('Progress draws one \\r line on a TTY and plain lines otherwise', () => {
    const chunks: string[] = [];
    const stream = { write: (c: string) => chunks.push(c) > 0, columns: 60 };
    const tty = new Progress({ stream, tty: true });
    tty.update('eval', 100, 100);
    expect(chunks.join('')).toBe('\reval [########################] 100/100\x1b[K\n');
    chunks.length = 0;
    const plain = new Progress({ stream, tty: false, intervalMs: 1e9 });
    for (let i = 1; i <= 10; i++) plain.update('quantizing layers', i, 10, `layer${i}`);
    plain.update('calibrating', 3, null);
    expect(chunks).toEqual(['quantizing layers: 10/10 done\n']);
  });

  it('formatNpy writes what parseNpy (npyjs) reads back, every dtype, header padded to 64 bytes', () => {
    const tensors = [
      new Tensor('float32', [1.5, -2, 3.25, 0, 1e-8, 7], [2, 3]),
      new Tensor('uint8', [0, 255, 7], [3]),
      new Tensor('int8', [-128, 127], [2, 1]),
      new Tensor('int32', [-5, 1 << 30], [2]),
      new Tensor('int64', [-1n, 1n << 40n, 3n], [3, 1, 1]),
      new Tensor('float32', [42], []),
    ];
    for (const t of tensors) {
      const bytes = formatNpy(t);
      const headerLength = bytes[8] | (bytes[9] << 8);
      expect((10 + headerLength) % 64).toBe(0);
      const back = parseNpy(bytes);
      expect(back.type).toBe(t.type);
      expect(back.dims).toEqual(t.dims);
      expect(Array.from(back.data as ArrayLike<number>)).toEqual(Array.from(t.data as ArrayLike<number>));
    }
  });

  it('EXPECTED FAILURE - a truncated .npy is ERR_MODEL_FORMAT', () => {
    const bytes = formatNpy(new Tensor('float32', new Float32Array(16), [4, 4]));
    expect(() => parseNpy(bytes.subarray(0, bytes.length - 8), 'cut.npy')).toThrow(/cut\.npy is truncated: shape \[4, 4\] needs 16 values but the file holds 14/);
  });
});
