// ONNX conformance: every node test of Debian's libonnx-testdata whose model ternion accepts runs
// through InferenceSession, and its outputs must match within the ONNX backend tests' tolerance
// (fp32: |got - want| <= 1e-7 + 1e-3 * |want|; integers exact). A test whose model uses an op or
// attribute ternion rejects at load (ERR_UNSUPPORTED_OP / ERR_DTYPE) is counted as unsupported,
// never as passed. The per-op summary is written to build/conformance-summary.json.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { InferenceSession, Tensor } from '../lib';
import type { ConstantTensor } from '../lib/ir/types';
import { loadOnnxModel } from '../lib/onnx';
import { float16BitsToNumber, narrowToFloat16 } from '../lib/onnx/half-float';
import { listNodeTests, nodeTestDir, readModelBytes, readTestTensors, requireTestdataRoot } from './onnx-testdata';

type Outcome = 'passed' | 'failed' | 'unsupported' | 'diverged';
const summary = new Map<string, Record<Outcome, string[]>>();

function record(op: string, test: string, outcome: Outcome) {
  if (!summary.has(op)) summary.set(op, { passed: [], failed: [], unsupported: [], diverged: [] });
  summary.get(op)![outcome].push(test);
}

/**
 * Tests whose expected output ternion does not give, on purpose: where the spec is ambiguous
 * and onnxruntime (what users compare with) reads it otherwise, ternion follows onnxruntime
 * (checked against it in the op's own tests). Each must still run and differ from the test's
 * expectation, so a change of behaviour shows here.
 */
const FOLLOWS_ONNXRUNTIME: Record<string, string> = {
  // MaxUnpool with output_shape: the indices address the given output shape (onnxruntime, so
  // that MaxUnpool(MaxPool(x), Shape(x)) restores an odd-sized x); the test pads a 4x4 result.
  test_maxunpool_export_with_output_shape: 'test/detection-ops.test.ts',
};

function toTensor(t: ConstantTensor): Tensor {
  return new Tensor(t.dtype as 'float32', t.data as Float32Array, t.dims);
}

function compare(name: string, result: Tensor, want: ConstantTensor): string | null {
  // A float16 output (half bits) against the test's data, which the loader widens to float32.
  const got = result.type === 'float16' ? new Tensor('float32', Float32Array.from(result.data as Uint16Array, float16BitsToNumber), result.dims) : result;
  if (got.dims.join(',') !== want.dims.join(',')) return `${name}: dims [${got.dims}] vs expected [${want.dims}]`;
  if (got.type !== want.dtype) return `${name}: dtype ${got.type} vs expected ${want.dtype}`;
  const a = got.data, b = want.data;
  for (let i = 0; i < b.length; i++) {
    if (want.dtype === 'float32') {
      const x = a[i] as number, y = b[i] as number;
      if (Number.isNaN(y) ? !Number.isNaN(x) : !(Math.abs(x - y) <= 1e-7 + 1e-3 * Math.abs(y))) return `${name}[${i}] = ${x}, expected ${y}`;
    } else if (a[i] !== b[i]) {
      return `${name}[${i}] = ${a[i]}, expected ${b[i]}`;
    }
  }
  return null;
}

const root = requireTestdataRoot();
const tests = listNodeTests();

describe('ONNX node conformance (libonnx-testdata)', () => {
  it('finds the test data', () => {
    expect(root).toBeTruthy();
    expect(tests.length).toBeGreaterThan(500);
  });

  for (const name of tests) {
    it(name, async () => {
      const dir = nodeTestDir(name);
      let session: InferenceSession;
      let op = name.replace(/^test_/, '');
      try {
        op = loadOnnxModel(readModelBytes(dir)).nodes[0]?.opType ?? op;
      } catch {
        // the create() below reports it
      }
      try {
        session = await InferenceSession.create(readModelBytes(dir), { threads: 1 });
      } catch (e) {
        const err = e as { code?: string; message: string };
        // An op in the loader's table that the executor lacks is a failure, not "unsupported".
        const unimplemented = /not implemented by ternion/.test(err.message);
        if (!unimplemented && (err.code === 'ERR_UNSUPPORTED_OP' || err.code === 'ERR_DTYPE')) {
          record(op, name, 'unsupported');
          return;
        }
        record(op, name, 'failed');
        throw e;
      }
      try {
        for (let set = 0; ; set++) {
          const inputs = readTestTensors(dir, 'input', set);
          const wants = readTestTensors(dir, 'output', set);
          if (wants.length === 0) break;
          const feeds: Record<string, Tensor> = {};
          session.inputNames.forEach((n, i) => {
            // float16 inputs (widened by the loader) as the half bits the session takes.
            const t = inputs[i];
            feeds[n] = session.inputMetadata[i].type === 'float16' ? new Tensor('float16', narrowToFloat16(t.data as Float32Array), t.dims) : toTensor(t);
          });
          const outs = await session.run(feeds);
          const problems = session.outputNames.map((n, i) => compare(n, outs[n], wants[i]));
          if (name in FOLLOWS_ONNXRUNTIME) {
            expect(problems.some((p) => p !== null), `${name} now gives the test's expected output`).toBe(true);
            record(op, name, 'diverged');
            return;
          }
          for (const problem of problems) expect(problem, problem ?? '').toBeNull();
        }
        record(op, name, 'passed');
      } catch (e) {
        const err = e as { code?: string };
        if (err.code === 'ERR_UNSUPPORTED_OP' || err.code === 'ERR_DTYPE') {
          record(op, name, 'unsupported');
          return;
        }
        record(op, name, 'failed');
        throw e;
      } finally {
        await session.release();
      }
    });
  }

  afterAll(() => {
    mkdirSync(join(__dirname, '..', 'build'), { recursive: true });
    const out = Object.fromEntries([...summary.entries()].sort());
    writeFileSync(join(__dirname, '..', 'build', 'conformance-summary.json'), JSON.stringify(out, null, 1));
  });
});
