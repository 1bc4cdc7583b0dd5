// Resident memory of one engine, measured in a fresh child process. A first session of the model
// is created, run and released, so the baseline holds what the process pays once (code paged in,
// worker threads); the session measured is the next one. Measuring in the benchmark's own process
// does not work: memory freed by an earlier engine's session stays with the allocator and the next
// session reuses it, so its RSS barely moves.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { numberToFloat16Bits } from '../onnx/half-float';
import type { TensorType } from '../tensor';
import type { PreparedEngine } from './engines';
import { widenHalfFeeds } from '../session/feeds';

export const MEMORY_METHOD =
  'Measured per engine in a fresh child process (node + ternion + onnxruntime-node loaded). ' +
  'The engine loads and runs the model once and releases it, so what the process pays once (code paged in, worker threads, compiled JavaScript) is in the baseline; ' +
  'node runs with --max-semi-space-size=1, so V8 does not keep up to 16 MB of young-generation pages (the garbage of parsing the model) resident; ' +
  'then a session of the same model is created and run once. RSS is read after full garbage collections until it stops falling (V8 frees collected buffers in the background) ' +
  'and after the C allocator returns its cached free pages (malloc_trim), both for the baseline and after the run. ' +
  'rssMB = that RSS minus the baseline (what the session keeps); firstRssMB = the same for the first session, counted from before anything was loaded; ' +
  'peakRssMB = the peak RSS (VmHWM, reset after the baseline) minus the baseline, over reading the model file, creating the session and one run; ' +
  'heldMB (ternion) = what the session reports holding (session.memoryUsage(): packed weights, other constants, activation arena).';

/** One input of the probe's run: every value `fill` (the child makes it; nothing large crosses the process boundary). */
export interface ProbeInput {
  name: string;
  type: TensorType;
  dims: number[];
  fill: number;
}

export interface MemoryProbe {
  kind: 'ort' | 'ternion';
  source: string;
  precision?: 'fp32' | 'int8';
  threads: number;
  inputs: ProbeInput[];
}

export interface MemoryResult {
  baselineMB: number;
  rssMB: number;
  /** The first session's RSS over the process before anything was loaded (includes one-time costs). */
  firstRssMB: number;
  peakRssMB: number;
  /** ternion: packed weights + other constants + activation arena, as the session reports them. */
  heldMB?: number;
}

const MB = 1024 * 1024;

function collectGarbage(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

/**
 * Peak RSS since the last reset, in bytes: VmHWM of /proc/self/status, whose peak is reset by
 * writing 5 to /proc/self/clear_refs (Linux); elsewhere getrusage's maxRSS (never reset).
 */
function peakRss(): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) * 1024;
  } catch {
    // not Linux
  }
  return process.resourceUsage().maxRSS * 1024;
}

function resetPeakRss(): void {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
  } catch {
    // not Linux: the peak then includes start-up
  }
}

/** RSS once garbage is collected and freed pages are back with the OS. */
async function settledRss(trim: () => void): Promise<number> {
  // V8 frees the backing stores of collected ArrayBuffers (the model file, the weights parsed from
  // it) on a background thread after the collection: RSS read right after gc() can still hold
  // them. Collect until neither RSS nor the ArrayBuffer total has fallen for two rounds; then
  // malloc_trim, since freed heap pages stay resident until trimmed.
  let rss = Infinity, buffers = Infinity, quiet = 0;
  for (let i = 0; i < 20 && quiet < 2; i++) {
    collectGarbage();
    await new Promise((r) => setTimeout(r, 100));
    const m = process.memoryUsage();
    quiet = m.rss >= rss - 256 * 1024 && m.arrayBuffers >= buffers ? quiet + 1 : 0;
    rss = Math.min(rss, m.rss);
    buffers = Math.min(buffers, m.arrayBuffers);
  }
  trim();
  return process.memoryUsage().rss;
}

/** The child's side: argv[2] is a MemoryProbe as JSON; prints a MemoryResult as JSON. */
async function child(probe: MemoryProbe): Promise<MemoryResult> {
  /* eslint-disable @typescript-eslint/no-require-imports */
  const ternion = require('../index') as typeof import('../index');
  const { native } = require('../native') as typeof import('../native');
  const { loadOrt } = require('./ort') as typeof import('./ort');
  /* eslint-enable @typescript-eslint/no-require-imports */
  const ort = loadOrt().ort;
  // Each input as its type's typed array, every value the probe's fill.
  const arrays = probe.inputs.map((i) => {
    const n = i.dims.reduce((a, b) => a * b, 1);
    switch (i.type) {
      case 'float32': return new Float32Array(n).fill(i.fill);
      case 'float16': return new Uint16Array(n).fill(numberToFloat16Bits(i.fill));
      case 'int64': return new BigInt64Array(n).fill(BigInt(i.fill));
      case 'int32': return new Int32Array(n).fill(i.fill);
      case 'int8': return new Int8Array(n).fill(i.fill);
      default: return new Uint8Array(n).fill(i.fill); // uint8, bool
    }
  });
  const feeds = <T>(make: (type: TensorType, data: (typeof arrays)[number], dims: number[]) => T) =>
    Object.fromEntries(probe.inputs.map((i, k) => [i.name, make(i.type, arrays[k], i.dims)]));
  ternion.cpuInfo(); // loads the addon
  const trim = () => native().trimFreedMemory();

  // One session: created, run once; returns what it reports holding and how to release it.
  async function session(): Promise<{ held?: number; release: () => Promise<void> }> {
    if (probe.kind === 'ort') {
      if (!ort) throw new Error('onnxruntime-node could not be loaded');
      const s = await ort.InferenceSession.create(probe.source, { intraOpNumThreads: probe.threads, interOpNumThreads: 1, executionMode: 'sequential' });
      await s.run(feeds((type, data, dims) => new ort.Tensor(type, data, dims)));
      return { release: () => s.release() };
    }
    const s = await ternion.InferenceSession.create(probe.source, { threads: probe.threads, ...(probe.precision ? { precision: probe.precision } : {}) });
    await s.run(widenHalfFeeds(s.inputMetadata, feeds((type, data, dims) => new ternion.Tensor(type, data, dims))));
    const m = s.memoryUsage();
    return { held: m.packedBytes + m.constantBytes + m.arenaBytes, release: () => s.release() };
  }

  const start = await settledRss(trim);
  const first = await session();
  const firstRss = await settledRss(trim);
  await first.release();
  const baseline = await settledRss(trim);
  resetPeakRss();
  const s = await session();
  const peak = peakRss();
  const rss = await settledRss(trim);
  await s.release();
  const r: MemoryResult = { baselineMB: baseline / MB, rssMB: (rss - baseline) / MB, firstRssMB: (firstRss - start) / MB, peakRssMB: (peak - baseline) / MB };
  if (s.held !== undefined) r.heldMB = s.held / MB;
  return r;
}

/** Runs the probe of one engine in a child process (a temporary file holds in-memory models). */
export async function probeMemory(engine: PreparedEngine, options: { threads: number; inputs: ProbeInput[] }): Promise<MemoryResult> {
  let dir: string | undefined;
  let source = engine.source;
  if (typeof source !== 'string') {
    dir = mkdtempSync(join(tmpdir(), 'ternion-mem-'));
    const file = join(dir, engine.spec.kind === 'ort' ? 'model.onnx' : 'model.tern');
    writeFileSync(file, source);
    source = file;
  }
  const precision = engine.spec.precision === 'fp32' ? 'fp32' : engine.spec.precision === 'int8-dynamic' ? 'int8' : undefined;
  const probe: MemoryProbe = { kind: engine.spec.kind, source, precision: engine.spec.kind === 'ternion' ? precision : undefined, ...options };
  try {
    const out = await new Promise<string>((resolve, reject) => {
      // A 1 MB young generation: V8 otherwise keeps up to 16 MB of nursery pages resident after
      // a collection (the garbage of parsing the model), which is not the session's memory.
      const p = spawn(process.execPath, ['--max-semi-space-size=1', __filename, JSON.stringify(probe)], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '', stderr = '';
      p.stdout.on('data', (d) => (stdout += d));
      p.stderr.on('data', (d) => (stderr += d));
      p.on('error', reject);
      p.on('close', (code) => (code === 0 ? resolve(stdout) : reject(new Error(`memory probe exited with ${code}: ${stderr.trim().split('\n').pop()}`))));
    });
    return JSON.parse(out) as MemoryResult;
  } finally {
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}

if (require.main === module) {
  child(JSON.parse(process.argv[2]) as MemoryProbe).then(
    (r) => process.stdout.write(JSON.stringify(r)),
    (e) => {
      process.stderr.write(`${(e as Error).stack ?? e}\n`);
      process.exit(1);
    },
  );
}
