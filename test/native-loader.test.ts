// The addon loader and the addon's lifetime: actionable load errors, TERNION_ISA, worker threads,
// and what `npm pack` ships.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { explainLoadFailure } from '../lib/native';
import { ROOT } from './native-build';

const run = promisify(execFile);

async function node(script: string, env: NodeJS.ProcessEnv = {}) {
  const r = await run(process.execPath, ['-e', script], { cwd: ROOT, env: { ...process.env, ...env } });
  return r.stdout.trim();
}

describe('loader errors say what failed and how to fix it', () => {
  it('a missing build', () => {
    const msg = explainLoadFailure(new Error('Could not locate the bindings file. Tried: ...'));
    expect(msg).toMatch(/Could not load the ternion native addon \(Node v\d+/);
    expect(msg).toMatch(/Possible solutions:\n- The addon was never built: run `npm rebuild ternion`/);
  });
  it('an addon built for another Node ABI', () => {
    const msg = explainLoadFailure(new Error('The module was compiled against a different Node.js version using NODE_MODULE_VERSION 93.'));
    expect(msg).toMatch(/built for another Node.js: run `npm rebuild ternion`/);
  });
  it('an addon built for another CPU architecture', () => {
    expect(explainLoadFailure(new Error('ternion.node: wrong ELF class: ELFCLASS32'))).toMatch(/another CPU architecture/);
  });
  it('anything else still gets a fix', () => {
    expect(explainLoadFailure('weird')).toMatch(/Possible solutions:\n- Rebuild the addon from source/);
  });
});

describe('TERNION_ISA', () => {
  it('forces the scalar kernels', async () => {
    const out = await node("console.log(require('./dist').cpuInfo().kernels)", { TERNION_ISA: 'scalar' });
    expect(out).toBe('scalar');
  });
  it('an unknown kernel set is reported, and using the kernels then throws a clear error', async () => {
    const out = await node(
      `const t = require('./dist'); const i = t.cpuInfo(); let e; try { t.PackedMatrix.float32(new Float32Array(1), 1, 1); } catch (x) { e = x; }
       console.log(JSON.stringify({ kernels: i.kernels, error: i.error, code: e && e.code, message: e && e.message }));`,
      { TERNION_ISA: 'sse9' },
    );
    const r = JSON.parse(out);
    expect(r.kernels).toBeNull();
    expect(r.error).toMatch(/TERNION_ISA=sse9 is not a kernel set in this build \(have: .*scalar\)/);
    expect(r.code).toBe('ERR_INVALID_ARGUMENT');
    expect(r.message).toMatch(/sse9/);
  });
});

describe('the shared thread pool', () => {
  it('is one per process, sized by the cores or TERNION_MAX_THREADS, and shared by workers', async () => {
    const workerCode = `const t = require(${JSON.stringify(join(ROOT, 'dist'))}); require('node:worker_threads').parentPort.postMessage(t.cpuInfo().threads);`;
    const script = `
      const { Worker } = require('node:worker_threads');
      const t = require('./dist');
      const w = new Worker(${JSON.stringify(workerCode)}, { eval: true });
      w.on('message', (v) => { console.log(JSON.stringify([t.cpuInfo().threads, v])); w.terminate(); });`;
    expect(JSON.parse(await node(script, { TERNION_MAX_THREADS: '1' }))).toEqual([1, 1]);
    expect(JSON.parse(await node(script, { TERNION_MAX_THREADS: '3' }))).toEqual([3, 3]);
    const cores = JSON.parse(await node(script, { TERNION_MAX_THREADS: '' }));
    expect(cores[0]).toBe(cores[1]);
    expect(cores[0]).toBeGreaterThanOrEqual(1);
  });

  it('spins TERNION_SPIN_MICROS (default 200) before its idle threads sleep', async () => {
    const script = `console.log(require('./dist').cpuInfo().spinMicros)`;
    expect(Number(await node(script, { TERNION_SPIN_MICROS: '' }))).toBe(200);
    expect(Number(await node(script, { TERNION_SPIN_MICROS: '0' }))).toBe(0);
    expect(Number(await node(script, { TERNION_SPIN_MICROS: '50' }))).toBe(50);
    expect(Number(await node(script, { TERNION_SPIN_MICROS: 'lots' }))).toBe(200);
    expect(Number(await node(script, { TERNION_SPIN_MICROS: '-1' }))).toBe(200);
  });

  it('gives the same results with and without spinning, on 1 and 2 threads, sync and async', async () => {
    const script = `
      const { InferenceSession, Tensor } = require('./dist');
      (async () => {
        const out = [];
        for (const threads of [1, 2]) {
          const s = await InferenceSession.create('models/fashion-mnist-resnet.onnx', { threads });
          const x = new Float32Array(4 * 28 * 28).map((_, i) => (i % 97) / 97);
          const feeds = { [s.inputNames[0]]: new Tensor('float32', x, [4, 1, 28, 28]) };
          const a = s.runSync(feeds)[s.outputNames[0]].data, b = (await s.run(feeds))[s.outputNames[0]].data;
          out.push(Array.from(a).map((v) => v.toFixed(4)).join(','), Array.from(b).map((v) => v.toFixed(4)).join(','));
        }
        console.log(JSON.stringify(out));
      })();`;
    const spun = JSON.parse(await node(script, { TERNION_SPIN_MICROS: '' })) as string[];
    const blocked = JSON.parse(await node(script, { TERNION_SPIN_MICROS: '0' })) as string[];
    expect(spun[0].split(',').length).toBe(40);
    expect(new Set([...spun, ...blocked]).size).toBe(1);
  });
});

describe('worker threads', () => {
  it('several workers load the addon at once, compute, and can be terminated mid-run', async () => {
    const out = await node(`
      const { Worker } = require('node:worker_threads');
      const code = \`
        const { parentPort } = require('node:worker_threads');
        const t = require(${JSON.stringify(join(ROOT, 'dist'))});
        const W = new Float32Array(64 * 64).fill(1), A = new Float32Array(8 * 64).fill(2);
        const p = t.PackedMatrix.float32(W, 64, 64);
        p.matmulAsync(A, 8).then((C) => parentPort.postMessage(C[0]));
      \`;
      const results = Promise.all([0, 1, 2].map(() => new Promise((resolve, reject) => {
        const w = new Worker(code, { eval: true });
        w.on('message', (v) => { resolve(v); w.terminate(); });
        w.on('error', reject);
      })));
      // A worker terminated while a large product runs must not take the process down.
      const busy = new Worker(\`
        const t = require(${JSON.stringify(join(ROOT, 'dist'))});
        const p = t.PackedMatrix.float32(new Float32Array(1024 * 1024), 1024, 1024);
        for (let i = 0; i < 50; i++) p.matmulAsync(new Float32Array(256 * 1024), 256);
        require('node:worker_threads').parentPort.postMessage('started');
      \`, { eval: true });
      busy.on('message', () => setTimeout(() => busy.terminate(), 5));
      // Listen for its exit now: it may end before the other workers answer.
      const busyExit = new Promise((r) => busy.on('exit', r));
      Promise.all([results, busyExit]).then(([v]) => console.log(JSON.stringify(v)));
    `);
    expect(JSON.parse(out)).toEqual([128, 128, 128]);
  });

  it('loading the addon twice in one process (via a second path) works', async () => {
    const out = await node(`
      const a = require('./build/Release/ternion.node');
      const copy = require('node:path').join(require('node:os').tmpdir(), 'ternion-copy-' + process.pid + '.node');
      require('node:fs').copyFileSync('./build/Release/ternion.node', copy);
      const b = require(copy);
      console.log(a.cpuInfo().kernels === b.cpuInfo().kernels && a !== b);
    `);
    expect(out).toBe('true');
  });
});

describe('npm pack', () => {
  it('ships the compiled library, the types and the native sources, and no tests or build trees', async () => {
    const { stdout } = await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, maxBuffer: 16 << 20 });
    const files: string[] = JSON.parse(stdout)[0].files.map((f: { path: string }) => f.path);
    expect(files).toEqual(expect.arrayContaining(['dist/index.js', 'dist/index.d.ts', 'CMakeLists.txt', 'native/kernels/kernels.h', 'package.json', 'README.md']));
    expect(files.some((f) => f.startsWith('native/kernels/scalar/'))).toBe(true);
    for (const f of files) expect(f).not.toMatch(/^(test|build|bench|tools|\.ci|native\/tests)\//);
  });
});
