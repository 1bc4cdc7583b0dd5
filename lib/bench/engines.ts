// The engines a benchmark compares, by id ('ort-fp32', 'ternary-g16', ...), and getting each
// ready to open a session: ternion's quantized models made by quantize() (cached as .tern files
// keyed by the model, the options, the calibration data and the quantizer's own code), and the
// QDQ int8 model onnxruntime runs (given, cached, or made on the fly).
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TernionError } from '../errors';
import { quantize, type QuantGroupSize, type QuantizeOptions, type WeightMode } from '../quantize';
import type { CalibrationFeeds } from '../quantize/calibration-data';
import { Tensor } from '../tensor';
import { requireOrt } from './ort';
import { makeQdqModel } from './qdq';

export type EngineSpec =
  | { id: string; label: string; kind: 'ort'; precision: 'fp32' | 'int8' }
  | { id: string; label: string; kind: 'ternion'; precision: 'fp32' | 'int8-dynamic' }
  | { id: string; label: string; kind: 'ternion'; precision: 'quantized'; weights: WeightMode; groupSize: QuantGroupSize };

/** What `ternion bench` and `npm run bench` compare unless told otherwise. */
export const DEFAULT_ENGINES = ['ort-fp32', 'ort-int8', 'fp32', 'int8', 'ternary-g4', 'ternary-g16', 'ternary-g64', 'int4-g16'] as const;

const ENGINE_FORMS = 'ort-fp32, ort-int8, fp32, int8, int8-dynamic, ternary-gN, ternary-asym-gN, int4-gN (N: 4, 8, 16, 32, 64 or filter)';

/** One engine id to its spec; ERR_INVALID_ARGUMENT names the valid forms. */
export function engineSpec(id: string): EngineSpec {
  if (id === 'ort-fp32' || id === 'ort-int8') return { id, label: `onnxruntime ${id.slice(4)}`, kind: 'ort', precision: id === 'ort-fp32' ? 'fp32' : 'int8' };
  if (id === 'fp32') return { id, label: 'ternion fp32', kind: 'ternion', precision: 'fp32' };
  if (id === 'int8-dynamic') return { id, label: 'ternion int8 dynamic', kind: 'ternion', precision: 'int8-dynamic' };
  if (id === 'int8') return { id, label: 'ternion int8', kind: 'ternion', precision: 'quantized', weights: 'int8', groupSize: 'filter' };
  const m = /^(ternary|ternary-asym|int4)-g(4|8|16|32|64|filter)$/.exec(id);
  if (!m) throw new TernionError('ERR_INVALID_ARGUMENT', `Expected engines among ${ENGINE_FORMS} but received "${id}"`);
  const groupSize = (m[2] === 'filter' ? 'filter' : Number(m[2])) as QuantGroupSize;
  return { id, label: `ternion ${m[1]} N=${m[2]}`, kind: 'ternion', precision: 'quantized', weights: m[1] as WeightMode, groupSize };
}

/** A comma-separated list of engine ids ("fp32,int8,ternary-g16"), each once. */
export function parseEngines(list: string): EngineSpec[] {
  const ids = list.split(',').map((s) => s.trim()).filter(Boolean);
  if (ids.length === 0) throw new TernionError('ERR_INVALID_ARGUMENT', `Expected a comma-separated list of engines (${ENGINE_FORMS}) but received "${list}"`);
  const dup = ids.find((id, i) => ids.indexOf(id) !== i);
  if (dup) throw new TernionError('ERR_INVALID_ARGUMENT', `Engine "${dup}" is listed twice`);
  return ids.map(engineSpec);
}

/** Calibration samples: a Tensor [samples, ...] for a model with one input, or a Tensor per input by name (as quantize() takes them). */
export type BenchCalibration = Tensor | CalibrationFeeds;

export interface PrepareOptions {
  /** The fp32 .onnx model. */
  model: string;
  /** Calibration inputs for quantize() and the QDQ model. */
  calibration: BenchCalibration;
  /** Extra quantize() options (e.g. keepEdgeLayers8bit) for every quantized engine. */
  quantizeOptions?: Partial<Omit<QuantizeOptions, 'weights' | 'groupSize' | 'calibration'>>;
  /** Folder of cached .tern / .qdq.onnx files (none: quantize in memory every time). */
  cacheDir?: string;
  /** A QDQ model for ort-int8 made already (e.g. by tools/make-bench-models.js). */
  qdqModel?: string;
  /** A line per step taken (quantizing, cache hits). */
  log?: (line: string) => void;
}

/** An engine ready to open: what to load, and how long getting it took. */
export interface PreparedEngine {
  spec: EngineSpec;
  /** A file path or the model's bytes. */
  source: string | Uint8Array;
  /** Seconds spent quantizing / making the QDQ model now (0 when cached or not needed). */
  prepareSeconds: number;
  cached: boolean;
  /** Bytes of the model file the engine loads. */
  modelBytes: number;
}

function hashFiles(dir: string, hash: ReturnType<typeof createHash>): void {
  if (!existsSync(dir)) return;
  for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) hashFiles(p, hash);
    else if (entry.name.endsWith('.js')) hash.update(entry.name).update(readFileSync(p));
  }
}

let codeHash: string | undefined;
/** Fingerprint of the code that decides a cached file's contents (quantizer, IR passes, format, QDQ tool). */
function codeFingerprint(): string {
  if (codeHash) return codeHash;
  const hash = createHash('sha1');
  for (const dir of ['quantize', 'ir', 'format', 'onnx']) hashFiles(join(__dirname, '..', dir), hash);
  hash.update(readFileSync(join(__dirname, 'qdq.js')));
  codeHash = hash.digest('hex').slice(0, 12);
  return codeHash;
}

function cacheKey(modelBytes: Uint8Array, what: unknown, calibration: BenchCalibration): string {
  const hash = createHash('sha1').update(modelBytes).update(JSON.stringify(what));
  const entries = calibration instanceof Tensor ? [['', calibration] as const] : Object.entries(calibration).sort(([a], [b]) => a.localeCompare(b));
  for (const [name, t] of entries) {
    const data = t.data as Float32Array;
    hash.update(JSON.stringify([name, t.type, t.dims])).update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  }
  return hash.update(codeFingerprint()).digest('hex').slice(0, 16);
}

function writeAtomic(file: string, bytes: Uint8Array): void {
  writeFileSync(file + '.tmp', bytes);
  renameSync(file + '.tmp', file);
}

/** Gets every engine ready (quantizing, or making the QDQ model, at most once each). */
export async function prepareEngines(engines: readonly EngineSpec[], options: PrepareOptions): Promise<PreparedEngine[]> {
  const log = options.log ?? (() => {});
  let modelBytes: Uint8Array | undefined;
  const bytes = () => (modelBytes ??= readFileSync(options.model));
  const base = (options.model.split(/[\\/]/).pop() ?? 'model').replace(/\.onnx$/i, '');
  if (options.cacheDir) mkdirSync(options.cacheDir, { recursive: true });
  const out: PreparedEngine[] = [];
  for (const spec of engines) {
    if (spec.precision === 'fp32' || spec.precision === 'int8-dynamic') {
      out.push({ spec, source: options.model, prepareSeconds: 0, cached: false, modelBytes: statSync(options.model).size });
      continue;
    }
    if (spec.kind === 'ort' && options.qdqModel) {
      out.push({ spec, source: options.qdqModel, prepareSeconds: 0, cached: true, modelBytes: statSync(options.qdqModel).size });
      continue;
    }
    const what = spec.precision === 'quantized' ? { weights: spec.weights, groupSize: spec.groupSize, ...options.quantizeOptions } : { qdq: true };
    const file = options.cacheDir ? join(options.cacheDir, `${base}.${spec.id}.${cacheKey(bytes(), what, options.calibration)}.${spec.kind === 'ort' ? 'qdq.onnx' : 'tern'}`) : undefined;
    if (file && existsSync(file)) {
      log(`${base} ${spec.id}: cached ${file}`);
      out.push({ spec, source: file, prepareSeconds: 0, cached: true, modelBytes: statSync(file).size });
      continue;
    }
    const start = process.hrtime.bigint();
    let made: Uint8Array;
    if (spec.kind === 'ort') {
      log(`${base} ${spec.id}: making the QDQ int8 model for onnxruntime`);
      made = (await makeQdqModel(bytes(), { ort: requireOrt('the ort-int8 engine'), calibration: options.calibration })).bytes;
    } else {
      if (spec.precision !== 'quantized') throw new TernionError('ERR_INTERNAL', `engine ${spec.id} needs no preparation`);
      log(`${base} ${spec.id}: quantizing (${spec.weights}${spec.weights === 'int8' ? '' : `, N=${spec.groupSize}`})`);
      const q = await quantize(bytes(), { ...options.quantizeOptions, weights: spec.weights, groupSize: spec.groupSize, calibration: options.calibration });
      made = q.toBuffer();
    }
    const prepareSeconds = Number(process.hrtime.bigint() - start) / 1e9;
    if (file) writeAtomic(file, made);
    out.push({ spec, source: file ?? made, prepareSeconds, cached: false, modelBytes: made.byteLength });
  }
  return out;
}
