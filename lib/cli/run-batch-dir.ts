// `ternion run MODEL --batch-dir DIR [-o OUT.jsonl] [--workers N] [--batch B]`: offline batch
// inference over a folder of inputs (.npy files, and images when the optional `sharp` loads),
// spread over a piscina pool of worker threads. Each worker holds one session (`--threads`,
// default 1: the workers are the parallelism); the files go out in tasks of B (their samples
// share runs) and the results come back in file-name order as JSON lines:
//
//   {"file":"a.npy","top1":3,"outputs":{"logits":[...]}}
//
// one line per sample ("index" is added for files holding several samples). A file that cannot
// be used gets {"file":..., "error":{"code","message"}} and the exit status is 1.
import { createWriteStream, readdirSync, statSync, type WriteStream } from 'node:fs';
import { availableParallelism } from 'node:os';
import { extname, join } from 'node:path';
import { TernionError } from '../errors';
import { loadSharp } from '../image';
import { UsageError, choiceValue, intValue, type ParsedArgs } from './args';
import type { BatchTask, FileResult, TaskResult } from './batch-worker';
import { IMAGE_EXTENSIONS } from './images';
import { preprocessOf } from './inputs';
import type { Io } from './io';

/** The .npy files and images of a folder, sorted by name. */
export function listInputs(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (e) {
    throw new TernionError('ERR_INVALID_ARGUMENT', `Cannot read --batch-dir ${dir}: ${(e as Error).message}`, { cause: e });
  }
  return names
    .filter((f) => {
      const ext = extname(f).toLowerCase();
      return (ext === '.npy' || IMAGE_EXTENSIONS.includes(ext)) && statSync(join(dir, f)).isFile();
    })
    .sort();
}

function jsonValues(data: ArrayLike<number | bigint>): number[] {
  return Array.from(data as ArrayLike<number>, (v) => Number(v));
}

/** The JSON lines of one file's result. */
export function resultLines(name: string, r: FileResult, top1Only: boolean): string[] {
  if (r.error) return [JSON.stringify({ file: name, error: r.error })];
  const several = r.samples!.length > 1;
  return r.samples!.map((s, index) => {
    const line: Record<string, unknown> = { file: name };
    if (several) line.index = index;
    if (s.top1 !== undefined) line.top1 = s.top1;
    if (!top1Only || s.top1 === undefined) line.outputs = Object.fromEntries(Object.entries(s.outputs).map(([k, v]) => [k, jsonValues(v)]));
    return JSON.stringify(line);
  });
}

function write(stream: WriteStream, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    if (stream.write(text)) resolve();
    else stream.once('drain', resolve).once('error', reject);
  });
}

export async function runBatchDir(args: ParsedArgs, io: Io): Promise<number> {
  const started = Date.now();
  const dir = args.values.get('batch-dir')!;
  const model = args.positionals[0];
  const output = args.values.get('output');
  const top1Only = args.values.has('top1');
  const workers = intValue(args, 'workers') ?? availableParallelism();
  const batch = intValue(args, 'batch') ?? 8;
  const threads = intValue(args, 'threads') ?? 1;
  const precision = choiceValue(args, 'precision', ['fp32', 'int8'] as const);
  const pre = preprocessOf(args);
  const names = listInputs(dir);
  if (names.length === 0) throw new TernionError('ERR_INVALID_ARGUMENT', `--batch-dir ${dir} holds no inputs (.npy, ${IMAGE_EXTENSIONS.join(', ')})`);
  // sharp is loaded here first (it must be, before worker threads load it) and fails early.
  if (names.some((n) => IMAGE_EXTENSIONS.includes(extname(n).toLowerCase()))) loadSharp();

  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { Piscina } = require('piscina') as typeof import('piscina');
  const pool = new Piscina({ filename: join(__dirname, 'batch-worker.js'), maxThreads: workers, minThreads: Math.min(workers, 1), idleTimeout: 1000 });
  const stream = output === undefined ? undefined : createWriteStream(output);
  const opened = stream ? new Promise<void>((resolve, reject) => stream.once('open', () => resolve()).once('error', reject)) : Promise.resolve();
  const tasks: Promise<TaskResult>[] = [];
  for (let i = 0; i < names.length; i += batch) {
    const task: BatchTask = { model, precision, threads, batch, pre, files: names.slice(i, i + batch).map((n) => join(dir, n)) };
    const pending = pool.run(task, { name: 'runFiles' }) as Promise<TaskResult>;
    pending.catch(() => undefined); // awaited in order below; a failure before that is not unhandled
    tasks.push(pending);
  }
  let lines = 0, failed = 0;
  const notes: string[] = [];
  try {
    await opened;
    for (const [t, pending] of tasks.entries()) {
      const result = await pending;
      if (result.fatal) throw new TernionError(result.fatal.code as TernionError['code'], result.fatal.message);
      notes.push(...result.notes);
      let text = '';
      for (const [k, r] of result.files.entries()) {
        if (r.error) failed++;
        for (const line of resultLines(names[t * batch + k], r, top1Only)) {
          lines++;
          if (stream) text += line + '\n';
          else io.out(line);
        }
      }
      if (stream && text) await write(stream, text);
    }
  } finally {
    // Let every task in flight finish before destroying the pool: a worker's answer arriving after
    // destroy() is an 'error' event on the pool, which would crash the process instead of the
    // clean error this function throws.
    await Promise.allSettled(tasks);
    await pool.destroy();
    if (stream) await new Promise<void>((resolve) => stream.end(resolve));
  }
  if (notes.length) io.err(notes[0] + (notes.length > 1 ? ` (and ${notes.length - 1} more files)` : ''));
  const seconds = (Date.now() - started) / 1000;
  io.err(`${names.length} files, ${lines} lines${output ? ` to ${output}` : ''}, ${failed} failed; ${workers} worker${workers === 1 ? '' : 's'} x ${threads} thread${threads === 1 ? '' : 's'}, ${seconds.toFixed(2)} s`);
  if (failed > 0) {
    io.err(`ternion run: ${failed} of ${names.length} files could not be run (their lines carry the error)`);
    return 1;
  }
  return 0;
}

/** Checks the flags --batch-dir cannot be combined with. */
export function checkBatchDirArgs(args: ParsedArgs, usage: string): void {
  if (args.lists.get('input')?.length) throw new UsageError('ternion run: --input and --batch-dir exclude each other', usage);
}
