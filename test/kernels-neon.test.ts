// The NEON kernels, cross-built with g++-aarch64-linux-gnu and run under qemu-aarch64: the same
// native kernel tests as on x86 (every kind bit-exact against scalar on odd sizes). CI installs
// both tools; a machine without them fails here with the install command rather than skipping.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { ROOT } from './native-build';

const run = promisify(execFile);

describe('NEON kernels under qemu-aarch64', () => {
  it('match the scalar reference bit for bit', async () => {
    let out = '';
    try {
      const r = await run('bash', [join(ROOT, 'tools', 'test-neon.sh')], { cwd: ROOT, maxBuffer: 64 << 20, env: { ...process.env, JOBS: '2' } });
      out = r.stdout + r.stderr;
    } catch (e) {
      const err = e as { stdout?: string; stderr?: string; message: string };
      out = (err.stdout ?? '') + (err.stderr ?? '') + err.message;
    }
    expect(out, out.slice(-3000)).toMatch(/PASS dispatch: tables here: neon scalar/);
    for (const kind of ['f32', 'q8', 'lowbit', 'dw', 'dw_f32', 'quant', 'threads']) expect(out, out.slice(-3000)).toMatch(new RegExp(`PASS ${kind} neon: \\d+ cases, 0 failed`));
    expect(out).toMatch(/kernel_tests: \d+ passed, 0 failed/);
  }, 1_200_000);
});
