// The float activations and Softmax run whole vectors through lane-by-lane copies of their
// scalar functions (native/exec/ops/vector-math.h: Lanes<V>, one function per vector width
// picked by the CPU) and the last few values of a span through the scalar functions themselves.
// Both must give the same bits, or a value's result would depend on where it falls in a tensor.
// Each op here gets the same values once in one long tensor (vector lanes) and again in
// tensors of 15 values (the scalar tail), and the bits are compared (any NaN equal to any NaN);
// special values included. And every width this CPU has (TERNION_ISA=avx2 / scalar pick the
// narrower ones, in a child process) gives the same bits as the widest.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { cpuInfo, InferenceSession, Tensor } from '../lib';
import { ensureDist } from './ensure-dist';
import { rng } from './helpers';
import { ROOT } from './native-build';
import { encodeModel, type NodeSpec, type TensorSpec, valueInfo } from './onnx-build-model';

const r = rng(77);
const specials = [
  0, -0, Infinity, -Infinity, NaN, 1e-45, -1e-45, 1e-38, -1e-38, 1e-12, -1e-12, 0.625, -0.625, 1, -1, 4, -4, 9.1, -9.1, 87, -87, 88, -88,
  87.3365, -87.3365, 100, -100, 3.4e38, -3.4e38, 2.5, -2.5, 0.5, -0.5,
];
// 960 values: a multiple of every vector width, and of 15 after padding.
const values = Float32Array.from({ length: 960 }, (_, i) => (i < specials.length ? specials[i] : (r() * 2 - 1) * 10 ** (r() * 6 - 3)));

function model(nodes: NodeSpec[], initializers: TensorSpec[] = []): Uint8Array {
  return encodeModel({ nodes, inputs: [valueInfo('x', ['N'])], outputs: [valueInfo('y', ['N'])], initializers });
}
const scalar = (name: string, v: number): TensorSpec => ({ name, dims: [], floatData: [v] });

const CASES: Record<string, Uint8Array> = {
  Sigmoid: model([{ op: 'Sigmoid', inputs: ['x'], outputs: ['y'] }]),
  'SiLU (fused Mul(x, Sigmoid(x)))': model([
    { op: 'Sigmoid', inputs: ['x'], outputs: ['s'] },
    { op: 'Mul', inputs: ['x', 's'], outputs: ['y'] },
  ]),
  Tanh: model([{ op: 'Tanh', inputs: ['x'], outputs: ['y'] }]),
  Erf: model([{ op: 'Erf', inputs: ['x'], outputs: ['y'] }]),
  'GELU (the fused erf chain)': model(
    [
      { op: 'Div', inputs: ['x', 'c'], outputs: ['d'] },
      { op: 'Erf', inputs: ['d'], outputs: ['e'] },
      { op: 'Add', inputs: ['e', 'one'], outputs: ['a'] },
      { op: 'Mul', inputs: ['x', 'a'], outputs: ['m'] },
      { op: 'Mul', inputs: ['m', 'half'], outputs: ['y'] },
    ],
    [scalar('c', Math.SQRT2), scalar('one', 1), scalar('half', 0.5)],
  ),
};

// Also checked across widths (not against the tail: a row's values share its maximum and sum).
const ACROSS_WIDTHS: Record<string, Uint8Array> = {
  ...CASES,
  'Softmax over one row': model([{ op: 'Softmax', inputs: ['x'], outputs: ['y'], attributes: [{ name: 'axis', type: 2, i: -1 }] }]),
  'attention Softmax (scores / c + mask)': encodeModel({
    nodes: [
      { op: 'Reshape', inputs: ['x', 'shape'], outputs: ['x2'] },
      { op: 'Div', inputs: ['x2', 'c'], outputs: ['d'] },
      { op: 'Add', inputs: ['d', 'mask'], outputs: ['a'] },
      { op: 'Softmax', inputs: ['a'], outputs: ['s'], attributes: [{ name: 'axis', type: 2, i: -1 }] },
      { op: 'Reshape', inputs: ['s', 'flat'], outputs: ['y'] },
    ],
    inputs: [valueInfo('x', ['N'])], outputs: [valueInfo('y', ['N'])],
    initializers: [
      { name: 'shape', dataType: 7, dims: [2], int64Data: [-1, 40] }, { name: 'flat', dataType: 7, dims: [1], int64Data: [-1] },
      scalar('c', 8), { name: 'mask', dims: [40], floatData: Array.from({ length: 40 }, (_, j) => (j % 7 === 6 ? -10000 : 0)) },
    ],
  }),
};

const bitsOf = (a: Float32Array): Uint32Array => new Uint32Array(a.buffer, a.byteOffset, a.length);
/** NaN is NaN: which of two NaN operands a product passes on (its sign, its payload) is the CPU's choice. */
const canonicalNaN = (a: Float32Array): Float32Array => a.map((v) => (Number.isNaN(v) ? NaN : v));

describe('vector lanes give the scalar functions\' bits', () => {
  for (const [name, bytes] of Object.entries(CASES)) {
    it(name, async () => {
      const s = await InferenceSession.create(bytes);
      const whole = (await s.run({ x: new Tensor('float32', values, [values.length]) })).y.data as Float32Array;
      const tail = new Float32Array(values.length);
      for (let i = 0; i < values.length; i += 15) {
        const part = values.slice(i, i + 15);
        tail.set((await s.run({ x: new Tensor('float32', part, [part.length]) })).y.data as Float32Array, i);
      }
      await s.release();
      expect(bitsOf(canonicalNaN(whole))).toEqual(bitsOf(canonicalNaN(tail)));
      expect(new Set(whole).size).toBeGreaterThan(100); // not a constant
    });
  }

  it('Softmax: a row whose second half repeats its first (vector lanes, then the scalar tail)', async () => {
    // Rows of 31: values 0..15 run as one vector of 16 lanes (or two of 8), 16..30 repeat values
    // 0..14 in the tail; same max and sum, so the repeated values' results must be the same bits.
    const rows = 40, n = 31;
    const x = new Float32Array(rows * n);
    for (let row = 0; row < rows; row++) {
      for (let j = 0; j < 16; j++) x[row * n + j] = (r() * 2 - 1) * (row % 4 === 3 ? 90 : 8);
      for (let j = 0; j < 15; j++) x[row * n + 16 + j] = x[row * n + j];
    }
    x[5] = -Infinity; // a masked score
    x[16 + 5] = -Infinity;
    const bytes = encodeModel({
      nodes: [{ op: 'Softmax', inputs: ['x'], outputs: ['y'], attributes: [{ name: 'axis', type: 2, i: -1 }] }],
      inputs: [valueInfo('x', ['R', n])], outputs: [valueInfo('y', ['R', n])],
    });
    const s = await InferenceSession.create(bytes);
    const y = (await s.run({ x: new Tensor('float32', x, [rows, n]) })).y.data as Float32Array;
    await s.release();
    for (let row = 0; row < rows; row++) {
      const head = bitsOf(y.slice(row * n, row * n + 15)), again = bitsOf(y.slice(row * n + 16, row * n + 31));
      expect(again).toEqual(head);
    }
    expect(y[5]).toBe(0);
  });

  it('the attention Softmax (scores / c + mask, fused): the same repeated-row check', async () => {
    const rows = 24, n = 31;
    const x = new Float32Array(rows * n), mask = new Float32Array(n);
    for (let j = 0; j < 16; j++) mask[j] = j % 5 === 4 ? -1e9 : 0;
    for (let j = 0; j < 15; j++) mask[16 + j] = mask[j];
    for (let row = 0; row < rows; row++) {
      for (let j = 0; j < 16; j++) x[row * n + j] = (r() * 2 - 1) * 20;
      for (let j = 0; j < 15; j++) x[row * n + 16 + j] = x[row * n + j];
    }
    const bytes = encodeModel({
      nodes: [
        { op: 'Div', inputs: ['x', 'c'], outputs: ['d'] },
        { op: 'Add', inputs: ['d', 'mask'], outputs: ['a'] },
        { op: 'Softmax', inputs: ['a'], outputs: ['y'], attributes: [{ name: 'axis', type: 2, i: -1 }] },
      ],
      inputs: [valueInfo('x', ['R', n])], outputs: [valueInfo('y', ['R', n])],
      initializers: [scalar('c', Math.sqrt(32)), { name: 'mask', dims: [n], floatData: Array.from(mask) }],
    });
    const s = await InferenceSession.create(bytes);
    const y = (await s.run({ x: new Tensor('float32', x, [rows, n]) })).y.data as Float32Array;
    await s.release();
    for (let row = 0; row < rows; row++) expect(bitsOf(y.slice(row * n + 16, row * n + 31))).toEqual(bitsOf(y.slice(row * n, row * n + 15)));
    expect(y[4]).toBe(0);
  });

  it('every vector width gives the same bits (AVX-512, AVX2, SSE: TERNION_ISA in a child process)', async () => {
    await ensureDist();
    const dir = mkdtempSync(join(tmpdir(), 'ternion-lanes-'));
    try {
      const files = Object.entries(ACROSS_WIDTHS).map(([name, bytes], i) => {
        const file = join(dir, `case${i}.onnx`);
        writeFileSync(file, bytes);
        // Softmax rows without the special values (a NaN or infinity makes a whole row NaN).
        return { name, file, from: name in CASES ? 0 : 40 };
      });
      writeFileSync(join(dir, 'values.bin'), values);
      const script = `
        const t = require(${JSON.stringify(join(ROOT, 'dist', 'index.js'))});
        const fs = require('fs');
        (async () => {
          const raw = fs.readFileSync(${JSON.stringify(join(dir, 'values.bin'))});
          const v = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
          const out = [];
          for (const f of ${JSON.stringify(files)}) {
            const s = await t.InferenceSession.create(f.file);
            const x = v.subarray(f.from);
            const y = (await s.run({ x: new t.Tensor('float32', x, [x.length]) })).y.data;
            out.push(Buffer.from(y.buffer, y.byteOffset, y.byteLength).toString('base64'));
          }
          process.stdout.write(JSON.stringify(out));
        })();`;
      const run = async (isa: string): Promise<Float32Array[]> => {
        const { stdout } = await promisify(execFile)(process.execPath, ['-e', script], { env: { ...process.env, TERNION_ISA: isa } });
        return (JSON.parse(stdout) as string[]).map((b) => {
          const buf = Buffer.from(b, 'base64');
          return new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
        });
      };
      const widest = await run('');
      for (const y of widest) expect(y.some((v) => Number.isFinite(v) && v !== 0)).toBe(true);
      for (const isa of ['avx2', 'scalar'].filter((i) => cpuInfo().supported.includes(i))) {
        const got = await run(isa);
        got.forEach((y, i) => expect(bitsOf(canonicalNaN(y)), `${files[i].name} with TERNION_ISA=${isa}`).toEqual(bitsOf(canonicalNaN(widest[i]))));
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
