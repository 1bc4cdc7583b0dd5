// Soak test: many inferences while sessions are created, released, and sometimes dropped for the
// garbage collector to finalize. Resident memory must stop growing: after a warm-up, growth
// stays under 20 MB. Run by .ci/run:
//
//   node --expose-gc node_modules/.bin/vite-node test/soak/soak.ts [count=100000]
import { InferenceSession, Tensor, quantize } from '../../lib';
import { encodeModel, valueInfo } from '../onnx-build-model';

// A seeded generator (test/helpers.ts imports vitest, which a plain script cannot).
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

const count = Number(process.argv[2] ?? 100_000);
const LIMIT_MB = 20;

function tinyModel(): Uint8Array {
  const r = rng(11);
  const w = (n: number) => Array.from({ length: n }, () => r() - 0.5);
  return encodeModel({
    nodes: [
      { op: 'Conv', name: 'conv', inputs: ['x', 'w', 'b'], outputs: ['c'], attributes: [{ name: 'pads', type: 7, ints: [1, 1, 1, 1] }] },
      { op: 'Relu', name: 'relu', inputs: ['c'], outputs: ['r'] },
      { op: 'Flatten', name: 'flat', inputs: ['r'], outputs: ['f'] },
      { op: 'Gemm', name: 'fc', inputs: ['f', 'wf'], outputs: ['y'], attributes: [{ name: 'transB', type: 2, i: 1 }] },
    ],
    inputs: [valueInfo('x', ['N', 4, 8, 8])],
    outputs: [valueInfo('y', ['N', 10])],
    initializers: [
      { name: 'w', dims: [8, 4, 3, 3], floatData: w(288) },
      { name: 'b', dims: [8], floatData: w(8) },
      { name: 'wf', dims: [10, 512], floatData: w(5120) },
    ],
  });
}

const rssMB = () => process.memoryUsage().rss / 2 ** 20;
const gc = (globalThis as { gc?: () => void }).gc ?? (() => undefined);

async function main() {
  const model = tinyModel();
  const r = rng(5);
  const x = new Tensor('float32', Float32Array.from({ length: 2 * 256 }, () => r()), [2, 4, 8, 8]);
  const q = await quantize(model, { weights: 'ternary', groupSize: 4, calibration: x, keepEdgeLayers8bit: false });
  const tern = q.toBuffer();
  const perSession = 500;
  let session: InferenceSession | null = null;
  let sessions = 0;
  let warm = 0;
  const warmAt = Math.min(10_000, Math.floor(count / 5));
  const start = Date.now();
  for (let i = 0; i < count; i++) {
    if (i % perSession === 0) {
      // Every third session is dropped without release(): the finalizer must free it.
      if (session && sessions % 3 !== 0) session.release();
      session = await InferenceSession.create(sessions % 2 ? tern : model, { threads: 1 });
      sessions++;
    }
    const out = await (session as InferenceSession).run({ x });
    if (out.y.dims[1] !== 10) throw new Error('bad output');
    if (i === warmAt) {
      gc();
      warm = rssMB();
    }
  }
  session?.release();
  gc();
  await new Promise((resolve) => setTimeout(resolve, 100));
  gc();
  const end = rssMB();
  const growth = end - warm;
  const result = { inferences: count, sessions, seconds: (Date.now() - start) / 1000, rssAfterWarmupMB: +warm.toFixed(1), rssEndMB: +end.toFixed(1), growthMB: +growth.toFixed(1), limitMB: LIMIT_MB };
  console.log(`soak: ${JSON.stringify(result)}`);
  if (!(growth < LIMIT_MB)) {
    console.error(`soak: resident memory grew by ${growth.toFixed(1)} MB (limit ${LIMIT_MB} MB)`);
    process.exit(1);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
