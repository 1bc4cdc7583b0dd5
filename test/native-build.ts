// Builds the native test executable (plain CMake, no Node headers) once per test run, so the
// kernel tests run the same code a user's addon runs. Asynchronous: vitest's worker must keep
// its event loop free while a build or a test binary runs.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

export const ROOT = join(__dirname, '..');
const execFileAsync = promisify(execFile);

export async function buildKernelTests(buildDir = join(ROOT, 'build', 'native-tests'), extra: string[] = []): Promise<string> {
  const exe = join(buildDir, 'kernel_tests');
  await execFileAsync('cmake', ['-S', ROOT, '-B', buildDir, '-DCMAKE_BUILD_TYPE=Release', '-DTERNION_BUILD_TESTS=ON', ...extra]);
  await execFileAsync('cmake', ['--build', buildDir, '--target', 'kernel_tests', '-j', '2'], { maxBuffer: 64 << 20 });
  if (!existsSync(exe)) throw new Error(`kernel_tests was not built in ${buildDir}`);
  return exe;
}

/** Runs a program to its end; never throws on a non-zero exit (the caller asserts on it). */
export async function runProgram(file: string, args: string[], env?: NodeJS.ProcessEnv): Promise<{ code: number; out: string }> {
  try {
    const r = await execFileAsync(file, args, { maxBuffer: 64 << 20, env: env ?? process.env });
    return { code: 0, out: r.stdout + r.stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string; message: string };
    return { code: typeof err.code === 'number' ? err.code : -1, out: (err.stdout ?? '') + (err.stderr ?? '') + err.message };
  }
}
