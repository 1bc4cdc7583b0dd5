// The `ternion` command as a user runs it (node dist/cli/main.js).
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { ROOT } from './native-build';

const run = promisify(execFile);
const CLI = join(ROOT, 'dist', 'cli', 'main.js');

describe('ternion CLI', () => {
  it('demo --json evaluates the embedded model in fp32, int8, 4-bit and ternary', async () => {
    const { stdout } = await run(process.execPath, [CLI, 'demo', '--count', '500', '--json'], { cwd: ROOT });
    const r = JSON.parse(stdout);
    const engines = r.rows.map((x: { engine: string }) => x.engine);
    expect(engines).toEqual(['fp32', 'int8 (dynamic activations)', 'int8 (calibrated activations)', 'int4 N=16', 'ternary N=4', 'ternary-asym N=4', 'ternary N=16', 'ternary N=64', 'ternary N=16 data-aware', 'ternary-asym N=64 data-aware']);
    expect(r.rows[0].top1).toBeGreaterThan(0.85);
    expect(r.rows[0].agreesWithFp32).toBe(1);
    expect(Math.abs(r.rows[1].top1 - r.rows[0].top1)).toBeLessThanOrEqual(0.01);
    const t4 = r.rows[4];
    expect(t4.multiplicationsRemoved).toBeGreaterThan(0.7);
    expect(t4.weightBytes).toBeLessThan(r.rows[2].weightBytes * 1.5);
    // Data-aware N=16 recovers most of what the weight-error thresholds lose at N=16.
    expect(r.rows[8].top1).toBeGreaterThan(r.rows[6].top1 + 0.1);
    expect(r.rows[8].top1).toBeGreaterThan(r.rows[0].top1 - 0.03);
  }, 600_000);

  it('info reports the kernel set and CPU features', async () => {
    const { stdout } = await run(process.execPath, [CLI, 'info'], { cwd: ROOT });
    const r = JSON.parse(stdout);
    expect(r.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(r.supported.at(-1)).toBe('scalar');
    expect(r.kernels).toBe(r.supported[0]);
  });

  it('BAD CALL - a bad flag value is a clear error with a non-zero exit', async () => {
    const e = await run(process.execPath, [CLI, 'demo', '--count', 'many'], { cwd: ROOT }).then(() => null, (x) => x);
    expect(e.code).toBe(1);
    expect(e.stderr).toMatch(/ERR_INVALID_ARGUMENT: Expected a positive integer for --count but received "many"/);
  });
});
