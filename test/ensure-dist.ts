// The example server, its load test and `ternion run --batch-dir` run the compiled package
// (dist/), as a user's project would: compile it first when a TypeScript source is newer.
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from './native-build';

const execFileAsync = promisify(execFile);

function newestSource(dir = join(ROOT, 'lib')): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestSource(p) : entry.name.endsWith('.ts') ? statSync(p).mtimeMs : 0);
  }
  return newest;
}

export async function ensureDist(): Promise<void> {
  const index = join(ROOT, 'dist', 'index.js');
  if (!existsSync(index) || statSync(index).mtimeMs < newestSource()) {
    // tsc emits even when a file being edited elsewhere has a type error; the tests then tell.
    await execFileAsync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', ROOT]).catch((e) => console.warn(`tsc: ${e.stdout ?? e}`));
  }
}

/** Node's own require (not vitest's module graph), so the example and dist load once, as in production. */
export const nodeRequire = createRequire(join(ROOT, 'package.json'));

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the compiled CLI (dist/cli/main.js) as a user would; a failing exit is a result, not a throw. */
export async function runCli(args: string[]): Promise<CliResult> {
  try {
    const r = await execFileAsync(process.execPath, [join(ROOT, 'dist', 'cli', 'main.js'), ...args], { cwd: ROOT, maxBuffer: 64 << 20 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof err.code === 'number' ? err.code : -1, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
  }
}
