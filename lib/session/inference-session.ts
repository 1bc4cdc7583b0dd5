// InferenceSession: the API of onnxruntime-node (create, run, inputNames, outputNames, release),
// over ternion's graph executor. run() executes on a native worker thread and returns a Promise,
// so the event loop stays free; concurrent runs on one session execute in parallel. Runs known
// to be shorter than the hop to a worker and back (options.inlineBelowMs) execute on the
// calling thread when nothing else of the session is in flight, as onnxruntime-node runs them.
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { TernionError, invalidArgument, throwIfAborted } from '../errors';
import { looksLikeTern, readTern } from '../format';
import { fuseAttentionSoftmax, fuseConvSwish, fuseGeluErf, fuseMatMulIntegerScaled, fuseHardSwish, fuseLayerNormChain, fuseQGemmAdd, fuseSilu, moveTransposeBeforeMean, toChannelsLast, optimizeGraph, type Graph } from '../ir';
import { native } from '../native';
import { loadOnnxModel } from '../onnx';
import { narrowToFloat16, widenHalfFloats } from '../onnx/half-float';
import { widenHalf } from '../ir/passes/widen-half';
import { Tensor, type TensorType } from '../tensor';
import { checkFeeds, type InputMetadata } from './feeds';
import { runArguments, type FetchesType, type RunArguments } from './fetches';
import { ONNXRUNTIME_OPTIONS, translateOnnxruntimeOptions, type OnnxruntimeSessionOptions } from './ort-options';
import { compilePlan } from './plan';
import { mapSubgraphs } from '../ir/subgraphs';
import { quantizeGraphInt8 } from './precision-int8';
import { importQdq } from '../quantize/import-qdq';

export interface SessionOptions extends OnnxruntimeSessionOptions {
  /** Threads per run (default: all cores). */
  threads?: number;
  /**
   * 'fp32' runs the model as given; 'int8' runs every Conv/Gemm/MatMul with constant weights
   * on the int8 kernels (per-channel weights, per-run activation ranges). (default: 'fp32')
   */
  precision?: 'fp32' | 'int8';
  /** Force a kernel set (default: the best this CPU supports; TERNION_ISA overrides). */
  isa?: string;
  /** Apply graph optimizations (constant folding, BN folding, fusion). (default: true) */
  optimize?: boolean;
  /**
   * Run convolutions channels-last (NHWC, no transposes) and keep activations uint8 between
   * quantized layers. Quantized and depthwise layers give bit-identical outputs either way; dense
   * fp32 convs sum in another order (fp32 rounding). false is for debugging. (default: true)
   */
  channelsLast?: boolean;
  /**
   * run() executes on the calling thread, as onnxruntime-node runs every inference, when the
   * last run with the same input shapes took less than this many milliseconds and no other run
   * of this session is in flight: handing such a run to a worker thread and back costs more
   * than the run itself (tens of microseconds). Longer runs, and runs while others are in
   * flight, go to a worker thread. 0 sends every run to a worker. (default: 0.25)
   */
  inlineBelowMs?: number;
  /**
   * A QDQ model (onnxruntime's static int8 format: QuantizeLinear / DequantizeLinear pairs around
   * each layer) runs its layers on ternion's int8 kernels with the model's own scales and zero
   * points (true), or its ops as written: fp32 layers with fake quantization between them
   * (false). (default: true)
   */
  readQdq?: boolean;
}

const OPTION_NAMES = ['threads', 'precision', 'isa', 'optimize', 'channelsLast', 'inlineBelowMs', 'readQdq'];
const DEFAULT_INLINE_BELOW_MS = 0.25;

interface NativeTensor { dtype: string; dims: number[]; data: ArrayBufferView }
interface NativeSessionHandle {
  /** Resolves with the outputs; `micros` is how long the graph ran on the worker thread. */
  /** `into`: parallel to the outputs, a tensor to copy each into (pre-allocated fetches), or undefined. */
  run(feeds: NativeTensor[], threads?: number, cancel?: Int32Array, into?: (NativeTensor | undefined)[]): Promise<NativeTensor[] & { micros?: number }>;
  runSync(feeds: NativeTensor[], threads?: number, into?: (NativeTensor | undefined)[]): NativeTensor[];
  release(): void;
  readonly isa: string | null;
  memoryUsage(): { packedBytes: number; constantBytes: number; arenaBytes: number };
}

/** Native memory a session holds (bytes). */
export interface SessionMemoryUsage {
  /** Weights packed for the kernels. */
  packedBytes: number;
  /** Constants kept as they are (biases, shapes, fp32 tensors no kernel packs). */
  constantBytes: number;
  /** Activation and scratch blocks the last run released, kept for the next run. */
  arenaBytes: number;
}

function checkOptions(o: unknown): SessionOptions {
  if (o === undefined) return {};
  if (o === null || typeof o !== 'object') throw invalidArgument('an options object', 'options', o);
  // onnxruntime-node's spellings (intraOpNumThreads, graphOptimizationLevel, ...) first.
  const opts = translateOnnxruntimeOptions(o as Record<string, unknown>);
  for (const key of Object.keys(opts)) {
    if (!OPTION_NAMES.includes(key)) {
      const hint = [...OPTION_NAMES, ...ONNXRUNTIME_OPTIONS].find((n) => n.toLowerCase() === key.toLowerCase());
      throw new TernionError(
        'ERR_INVALID_ARGUMENT',
        `Unknown option "${key}"${hint ? ` (did you mean "${hint}"?)` : ''}; options are ${OPTION_NAMES.join(', ')}, and onnxruntime-node's ${ONNXRUNTIME_OPTIONS.join(', ')}`,
      );
    }
  }
  if (opts.threads !== undefined && (!Number.isInteger(opts.threads) || (opts.threads as number) < 1 || (opts.threads as number) > 1024)) {
    throw invalidArgument('an integer between 1 and 1024', 'options.threads', opts.threads);
  }
  if (opts.precision !== undefined && opts.precision !== 'fp32' && opts.precision !== 'int8') {
    throw invalidArgument('"fp32" or "int8" (ternary and 4-bit models come from ternion.quantize)', 'options.precision', opts.precision);
  }
  if (opts.isa !== undefined && typeof opts.isa !== 'string') throw invalidArgument('a kernel set name', 'options.isa', opts.isa);
  if (opts.optimize !== undefined && typeof opts.optimize !== 'boolean') throw invalidArgument('a boolean', 'options.optimize', opts.optimize);
  if (opts.channelsLast !== undefined && typeof opts.channelsLast !== 'boolean') {
    throw invalidArgument('a boolean', 'options.channelsLast', opts.channelsLast);
  }
  if (opts.readQdq !== undefined && typeof opts.readQdq !== 'boolean') throw invalidArgument('a boolean', 'options.readQdq', opts.readQdq);
  if (opts.inlineBelowMs !== undefined && (typeof opts.inlineBelowMs !== 'number' || !(opts.inlineBelowMs >= 0) || !Number.isFinite(opts.inlineBelowMs))) {
    throw invalidArgument('a finite number of milliseconds >= 0', 'options.inlineBelowMs', opts.inlineBelowMs);
  }
  return opts as SessionOptions;
}

export interface RunOptions {
  /** Aborts the run (between two ops); the promise rejects with ERR_ABORTED or the signal's reason. */
  signal?: AbortSignal;
}

/**
 * The passes that shape a graph for the executor, in subgraphs (If branches, Loop / Scan bodies)
 * too.
 */
function fuseForExecution(graph: Graph, channelsLast: boolean): Graph {
  // SiLU, GELU, HardSwish, written-out LayerNorm and attention-score Softmax chains as one op
  // each: the same values, fewer passes.
  // (A LayerNorm onnxruntime split around a Transpose is made whole first.)
  let g = fuseAttentionSoftmax(fuseLayerNormChain(moveTransposeBeforeMean(fuseHardSwish(fuseGeluErf(fuseSilu(graph))))));
  // A conv's SiLU / HardSwish, and a dynamically quantized MatMul's Cast and scaling, in
  // their epilogues (the same bits).
  g = fuseMatMulIntegerScaled(fuseConvSwish(g));
  // A quantized MatMul layer's bias and residual Adds in its epilogue (values to rounding).
  g = fuseQGemmAdd(g);
  if (channelsLast) g = toChannelsLast(g);
  return mapSubgraphs(g, (sub) => fuseForExecution(sub, channelsLast));
}

export class InferenceSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  readonly inputMetadata: readonly InputMetadata[];
  readonly outputMetadata: readonly InputMetadata[];
  private handle: NativeSessionHandle | null;
  /** Last measured time (ms) of a run, per input shapes: decides which runs execute inline. */
  private readonly lastRunMs = new Map<string, number>();
  private inFlight = 0;

  private constructor(
    graph: Graph,
    handle: NativeSessionHandle,
    private readonly threads?: number,
    private readonly inlineBelowMs = DEFAULT_INLINE_BELOW_MS,
  ) {
    this.inputMetadata = graph.inputs.map((v) => ({ name: v.name, isTensor: true, type: v.dtype, shape: v.shape }));
    this.outputMetadata = graph.outputs.map((v) => ({ name: v.name, isTensor: true, type: v.dtype, shape: graph.valueInfo.get(v.name)?.shape ?? v.shape }));
    this.inputNames = this.inputMetadata.map((m) => m.name);
    this.outputNames = this.outputMetadata.map((m) => m.name);
    this.handle = handle;
  }

  /**
   * Loads a model (.onnx, or a .tern from ternion.quantize) from a path or its bytes; weights are
   * packed once, here. As in onnxruntime-node, an ArrayBuffer may come with the byte offset (and
   * length) of the model inside it: create(buffer, byteOffset, byteLength?, options?).
   */
  static async create(model: string | Uint8Array | ArrayBuffer, options?: SessionOptions): Promise<InferenceSession>;
  static async create(buffer: ArrayBuffer, byteOffset: number, byteLength?: number, options?: SessionOptions): Promise<InferenceSession>;
  static async create(model: string | Uint8Array | ArrayBuffer, arg1?: SessionOptions | number, arg2?: number, arg3?: SessionOptions): Promise<InferenceSession> {
    let options = arg1 as SessionOptions | undefined;
    if (typeof arg1 === 'number') {
      if (!(model instanceof ArrayBuffer)) throw invalidArgument('an ArrayBuffer (a byte offset goes with an ArrayBuffer)', 'model', model);
      const size = model.byteLength;
      if (!Number.isSafeInteger(arg1) || arg1 < 0 || arg1 >= size) throw invalidArgument(`an integer in [0, ${size})`, 'byteOffset', arg1);
      const length = arg2 ?? size - arg1;
      if (!Number.isSafeInteger(length) || length <= 0 || arg1 + length > size) throw invalidArgument(`an integer in (0, ${size - arg1}]`, 'byteLength', arg2);
      model = new Uint8Array(model, arg1, length);
      options = arg3;
    } else if (arg2 !== undefined || arg3 !== undefined) {
      throw invalidArgument('nothing after the options (a byte offset and length go with an ArrayBuffer, before the options)', 'create\'s third argument', arg2 ?? arg3);
    }
    const opts = checkOptions(options);
    let bytes: Uint8Array;
    let basePath: string | undefined;
    if (typeof model === 'string') {
      try {
        bytes = await readFile(model);
      } catch (e) {
        throw new TernionError('ERR_INVALID_ARGUMENT', `Cannot read model file "${model}": ${(e as Error).message}`, { cause: e });
      }
      basePath = dirname(model);
    } else if (model instanceof Uint8Array) {
      bytes = model;
    } else if (model instanceof ArrayBuffer) {
      bytes = new Uint8Array(model);
    } else {
      throw invalidArgument('a path or the bytes of an .onnx or .tern model', 'model', model);
    }
    if (looksLikeTern(bytes)) {
      // A .tern model (recognized by its magic, not its name) is quantized and optimized already.
      if (opts.precision === 'int8') {
        throw new TernionError('ERR_INVALID_ARGUMENT', `options.precision "int8" applies to .onnx models; ${typeof model === 'string' ? `"${model}"` : 'this'} is a .tern model, quantized already`);
      }
      return InferenceSession.fromGraph(readTern(bytes).graph, { ...opts, optimize: false });
    }
    return InferenceSession.fromGraph(loadOnnxModel(bytes, { basePath }), opts);
  }

  /** A session over a graph already in ternion's IR (used by the quantizer and tests). */
  static fromGraph(graph: Graph, options: SessionOptions = {}): InferenceSession {
    // A float16 model computes in float32 (its feeds and outputs converted at the boundary).
    const bf16 = [...graph.inputs, ...graph.outputs].find((v) => v.dtype === 'bfloat16');
    if (bf16) throw new TernionError('ERR_DTYPE', `The model's ${graph.inputs.includes(bf16) ? 'input' : 'output'} "${bf16.name}" is bfloat16; ternion takes and returns float32 or float16 tensors`);
    const wide = widenHalf(graph);
    let optimized = options.optimize === false ? wide : (options.readQdq !== false ? importQdq(wide) : undefined) ?? optimizeGraph(wide);
    if (options.precision === 'int8') optimized = quantizeGraphInt8(optimized);
    optimized = fuseForExecution(optimized, options.channelsLast !== false);
    const plan = compilePlan(optimized);
    const NativeSession = (native() as unknown as { NativeSession: new (plan: unknown, o: unknown) => NativeSessionHandle }).NativeSession;
    const handle = new NativeSession(plan, { isa: options.isa, threads: options.threads });
    return new InferenceSession(graph, handle, options.threads, options.inlineBelowMs ?? DEFAULT_INLINE_BELOW_MS);
  }

  /** The kernel set this session runs on. */
  get isa(): string | null {
    return this.handle?.isa ?? null;
  }

  /** Native memory held: packed weights, other constants, and the activation arena of the last run. */
  memoryUsage(): SessionMemoryUsage {
    const m = this.live().memoryUsage();
    return { packedBytes: m.packedBytes, constantBytes: m.constantBytes, arenaBytes: m.arenaBytes };
  }

  private live(): NativeSessionHandle {
    if (!this.handle) throw new TernionError('ERR_SESSION_RELEASED', 'The session was released; create a new one');
    return this.handle;
  }

  private toNative(feeds: unknown): NativeTensor[] {
    return checkFeeds(feeds, this.inputMetadata).map((t) =>
      // float16 feeds (a half-precision model) go in as float32, which the model computes in.
      t.type === 'float16'
        ? { dtype: 'float32', dims: [...t.dims], data: widenHalfFloats(t.data as Uint16Array, 'float16') }
        : { dtype: t.type, dims: [...t.dims], data: t.data },
    );
  }

  /**
   * The outputs the caller asked for. Those with a pre-allocated Tensor were copied into it by
   * the addon (a float16 output here, from the float32 the model computed in) and are returned
   * as that Tensor.
   */
  private fromNative(outs: NativeTensor[], args?: RunArguments<unknown>): Record<string, Tensor> {
    const result: Record<string, Tensor> = {};
    outs.forEach((o, i) => {
      if (args && !args.wanted[i]) return;
      const name = this.outputNames[i];
      const target = args?.into[i];
      const half = this.outputMetadata[i].type === 'float16' && o.dtype === 'float32';
      if (target && !half) {
        result[name] = target;
        return;
      }
      const t = half ? new Tensor('float16', narrowToFloat16(o.data as Float32Array), o.dims) : new Tensor(o.dtype as TensorType, o.data as Float32Array, o.dims);
      if (target) {
        if (target.dims.length !== t.dims.length || target.dims.some((d, k) => d !== t.dims[k])) {
          throw new TernionError('ERR_SHAPE_MISMATCH', `The tensor given for output '${name}' has dims [${target.dims.join(', ')}] but this run computed [${t.dims.join(', ')}]`);
        }
        (target.data as Uint16Array).set(t.data as Uint16Array);
        result[name] = target;
        return;
      }
      result[name] = t;
    });
    return result;
  }

  /** Pre-allocated outputs the addon copies into (float16 ones are filled by fromNative). */
  private nativeTargets(args: RunArguments<unknown>): (NativeTensor | undefined)[] | undefined {
    if (!args.into.some((t) => t && t.type !== 'float16')) return undefined;
    return args.into.map((t) => (t && t.type !== 'float16' ? { dtype: t.type, dims: [...t.dims], data: t.data } : undefined));
  }

  /**
   * Runs the model on a worker thread (short runs inline: options.inlineBelowMs). Feeds map
   * input names to Tensors. As with onnxruntime-node, a second argument may name the outputs to
   * return (`['logits']`) or map output names to null or to a Tensor the result is written into
   * (its dtype and dims must be the output's: `{ logits: preallocated }`), with the options then
   * third. With `options.signal`, an abort stops the run between two ops, frees its buffers and
   * rejects with ERR_ABORTED (or the signal's reason).
   */
  async run(feeds: Record<string, Tensor>, options?: RunOptions): Promise<Record<string, Tensor>>;
  async run(feeds: Record<string, Tensor>, fetches: FetchesType, options?: RunOptions): Promise<Record<string, Tensor>>;
  async run(feeds: Record<string, Tensor>, fetchesOrOptions?: FetchesType | RunOptions, maybeOptions?: RunOptions): Promise<Record<string, Tensor>> {
    const handle = this.live();
    const args = runArguments<RunOptions>(this.outputMetadata, fetchesOrOptions, maybeOptions);
    const options = args.options ?? {};
    if (options === null || typeof options !== 'object') throw invalidArgument('an options object { signal? }', 'options', options);
    const signal = options.signal;
    if (signal !== undefined && !(signal instanceof AbortSignal)) throw invalidArgument('an AbortSignal', 'options.signal', signal);
    const inputs = this.toNative(feeds);
    const into = this.nativeTargets(args);
    if (signal) throwIfAborted(signal, 'The run');
    const shapes = inputs.map((t) => t.dims.join('x')).join(',');
    const last = this.lastRunMs.get(shapes);
    if (last !== undefined && last < this.inlineBelowMs && this.inFlight === 0) {
      const start = performance.now();
      const outs = handle.runSync(inputs, this.threads, into);
      this.remember(shapes, performance.now() - start);
      return this.fromNative(outs, args);
    }
    this.inFlight++;
    let outs: NativeTensor[] & { micros?: number };
    try {
      if (!signal) {
        outs = await handle.run(inputs, this.threads, undefined, into);
      } else {
        const cancel = new Int32Array(1);
        const onAbort = () => Atomics.store(cancel, 0, 1);
        signal.addEventListener('abort', onAbort, { once: true });
        try {
          outs = await handle.run(inputs, this.threads, cancel, into);
        } catch (e) {
          if ((e as { code?: string }).code === 'ERR_ABORTED') throwIfAborted(signal, 'The run');
          throw e;
        } finally {
          signal.removeEventListener('abort', onAbort);
        }
      }
    } finally {
      this.inFlight--;
    }
    if (outs.micros !== undefined) this.remember(shapes, outs.micros / 1000);
    return this.fromNative(outs, args);
  }

  private remember(shapes: string, ms: number): void {
    if (this.lastRunMs.size >= 64 && !this.lastRunMs.has(shapes)) this.lastRunMs.clear();  // many distinct shapes: start over
    this.lastRunMs.set(shapes, ms);
  }

  /** Runs the model on the calling thread (blocks it; for scripts and benchmarks). `fetches` as for run(). */
  runSync(feeds: Record<string, Tensor>, fetches?: FetchesType): Record<string, Tensor> {
    const handle = this.live();
    const args = runArguments<unknown>(this.outputMetadata, fetches, undefined);
    if (args.options !== undefined) throw invalidArgument('output names or a record of outputs (runSync takes no options)', 'fetches', fetches);
    return this.fromNative(handle.runSync(this.toNative(feeds), this.threads, this.nativeTargets(args)), args);
  }

  /** Frees the native model now (runs in flight finish first). Later calls throw ERR_SESSION_RELEASED. */
  async release(): Promise<void> {
    this.handle?.release();
    this.handle = null;
  }
}

