// The side-by-side measurement of `ternion bench` and `npm run bench`: for one model, batch and
// thread count, each engine's session is created, run once (warm-up), timed, and released, one
// engine at a time in one process. Reported per engine: median latency, images/s, GMAC/s (from
// the model's Conv/Gemm/MatMul MACs), speed-up versus onnxruntime fp32 and int8 of the same run,
// and resident memory (measured in a child process per engine: memory-probe.ts).
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { InferenceSession } from '../session/inference-session';
import type { CalibrationFeeds } from '../quantize/calibration-data';
import type { PreparedEngine } from './engines';
import type { BenchInput } from './model-info';
import { probeMemory, type ProbeInput } from './memory-probe';
import { widenHalfFeeds } from '../session/feeds';
import { requireOrt, type OrtSession } from './ort';
import { timeRuns, type TimingOptions } from './timer';

export interface EngineRow {
  engine: string;
  label: string;
  /** null when the engine failed (see error). */
  medianMs: number | null;
  /** Every timed run, ms. */
  samplesMs: number[];
  imagesPerSecond: number | null;
  gmacPerSecond: number | null;
  /** onnxruntime fp32's median / this one's (same model, batch, threads, run); null without it. */
  vsOrtFp32: number | null;
  vsOrtInt8: number | null;
  /** Memory of the session alone and the peak while loading + one run (memory-probe.ts); null when not probed. */
  rssMB: number | null;
  peakRssMB: number | null;
  /** The benchmark process's own peak RSS so far (monotonic over a run of many engines). */
  processPeakRssMB: number;
  createMs: number | null;
  prepareSeconds: number;
  cached: boolean;
  modelBytes: number;
  /** ternion's kernel set; null for onnxruntime. */
  isa: string | null;
  /** 'benchmark.js 2.1.4' or 'loop' (see timer.ts). */
  timer: string | null;
  error?: string;
}

export interface CompareOptions {
  batch: number;
  threads: number;
  /** One batch of input: a tensor [batch, ...] per model input, by name. */
  inputs: CalibrationFeeds;
  /** What each input holds, for the memory probe's child to make the same kind of input. */
  inputValues?: readonly BenchInput[];
  /** Conv/Gemm/MatMul MACs per sample (null: unknown, no GMAC/s). */
  macsPerSample: number | null;
  timing?: TimingOptions;
  /** Probe each engine's memory in a child process (memory-probe.ts) at this batch and thread count. */
  memory?: boolean;
  /** Called as each engine's row is measured (before the ratios, which need every row, are set). */
  onRow?: (row: EngineRow) => void;
}

let collect: (() => void) | undefined;
/** A full garbage collection: global.gc under --expose-gc, else the same function enabled at run time. */
function gc(): void {
  if (!collect) {
    collect = (globalThis as { gc?: () => void }).gc;
    if (!collect) {
      setFlagsFromString('--expose-gc');
      collect = runInNewContext('gc') as () => void;
    }
  }
  collect();
}

async function settle(): Promise<void> {
  gc();
  await new Promise((r) => setImmediate(r));
}

interface Runner {
  run(): Promise<unknown>;
  release(): Promise<void>;
  isa: string | null;
}


async function open(engine: PreparedEngine, options: CompareOptions): Promise<Runner> {
  if (engine.spec.kind === 'ort') {
    const ort = requireOrt(`the ${engine.spec.id} engine`);
    const session: OrtSession = await ort.InferenceSession.create(engine.source, {
      intraOpNumThreads: options.threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
    });
    const feeds = Object.fromEntries(Object.entries(options.inputs).map(([name, t]) => [name, new ort.Tensor(t.type, t.data, t.dims)]));
    return { run: () => session.run(feeds), release: () => session.release(), isa: null };
  }
  const precision = engine.spec.precision === 'int8-dynamic' ? { precision: 'int8' as const } : engine.spec.precision === 'fp32' ? { precision: 'fp32' as const } : {};
  const session = await InferenceSession.create(engine.source, { threads: options.threads, ...precision });
  const feeds = widenHalfFeeds(session.inputMetadata, options.inputs);
  return { run: () => session.run(feeds), release: () => session.release(), isa: session.isa };
}

/** The batch's inputs as the memory probe makes them in its child: same names, types, dims, and a valid constant. */
function probeInputs(options: CompareOptions): ProbeInput[] {
  return Object.entries(options.inputs).map(([name, t]) => {
    const values = options.inputValues?.find((i) => i.name === name)?.values;
    // 0.5 for floats; 0, a valid id, for index inputs; 1 (a mask's "keep") for other integers.
    const fill = t.type === 'float32' || t.type === 'float16' ? 0.5 : values?.kind === 'index' ? 0 : 1;
    return { name, type: t.type, dims: [...t.dims], fill };
  });
}

function finite(outputs: unknown): boolean {
  for (const t of Object.values(outputs as Record<string, { data: ArrayLike<number> }>)) {
    const d = t.data;
    for (let i = 0; i < d.length; i += Math.max(1, d.length >> 6)) if (!Number.isFinite(Number(d[i]))) return false;
  }
  return true;
}

async function measureEngine(engine: PreparedEngine, options: CompareOptions): Promise<EngineRow> {
  const row: EngineRow = {
    engine: engine.spec.id, label: engine.spec.label, medianMs: null, samplesMs: [], imagesPerSecond: null, gmacPerSecond: null,
    vsOrtFp32: null, vsOrtInt8: null, rssMB: null, peakRssMB: null, processPeakRssMB: 0, createMs: null, prepareSeconds: engine.prepareSeconds,
    cached: engine.cached, modelBytes: engine.modelBytes, isa: null, timer: null,
  };
  await settle();
  let runner: Runner | undefined;
  try {
    const start = process.hrtime.bigint();
    runner = await open(engine, options);
    row.createMs = Number(process.hrtime.bigint() - start) / 1e6;
    row.isa = runner.isa;
    const first = await runner.run(); // warm-up
    if (!finite(first)) throw new Error('the warm-up run produced non-finite outputs');
    const timing = await timeRuns(() => runner!.run(), options.timing);
    row.timer = timing.timer;
    row.samplesMs = timing.samples.map((s) => s * 1e3);
    row.medianMs = timing.median * 1e3;
    row.imagesPerSecond = options.batch / timing.median;
    row.gmacPerSecond = options.macsPerSample === null ? null : (options.macsPerSample * options.batch) / timing.median / 1e9;
  } catch (e) {
    row.error = e instanceof Error ? `${(e as { code?: string }).code ? `${(e as { code?: string }).code}: ` : ''}${e.message}` : String(e);
  } finally {
    await runner?.release();
    row.processPeakRssMB = process.resourceUsage().maxRSS / 1024;
  }
  if (options.memory && !row.error) {
    try {
      const m = await probeMemory(engine, { threads: options.threads, inputs: probeInputs(options) });
      row.rssMB = m.rssMB;
      row.peakRssMB = m.peakRssMB;
    } catch (e) {
      row.error = `memory probe: ${(e as Error).message}`;
    }
  }
  return row;
}

/** Measures every engine on one batch size and thread count; ratios are within this call's rows. */
export async function compareEngines(engines: readonly PreparedEngine[], options: CompareOptions): Promise<EngineRow[]> {
  for (const [name, t] of Object.entries(options.inputs)) {
    // The batch's axis (dim 0 unless the model info says otherwise; none for a sample rate).
    const given = options.inputValues?.find((i) => i.name === name);
    const axis = given ? given.batchAxis : 0;
    if (axis !== null && t.dims[axis] !== options.batch) throw new RangeError(`input "${name}" has dims [${t.dims.join(', ')}]; batch ${options.batch} takes dims[${axis}] = ${options.batch}`);
  }
  const rows: EngineRow[] = [];
  for (const engine of engines) {
    const row = await measureEngine(engine, options);
    rows.push(row);
    options.onRow?.(row);
  }
  const median = (id: string) => rows.find((r) => r.engine === id)?.medianMs ?? null;
  const ortFp32 = median('ort-fp32'), ortInt8 = median('ort-int8');
  for (const r of rows) {
    if (r.medianMs === null) continue;
    r.vsOrtFp32 = ortFp32 === null ? null : ortFp32 / r.medianMs;
    r.vsOrtInt8 = ortInt8 === null ? null : ortInt8 / r.medianMs;
  }
  return rows;
}
