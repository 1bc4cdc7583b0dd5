'use strict';
// Dynamic batching in front of one ternion InferenceSession, independent of HTTP.
//
// Requests wait in a bounded FIFO queue. A batch leaves the queue when its oldest request has
// waited `windowMs`, or as soon as `maxBatch` samples are waiting, and only while fewer than
// `concurrency` runs are in flight; its requests' inputs are stacked along the batch dim into
// one `session.run`, and each output is split back into one slice per request. Requests are
// stacked only when every model input has the same symbolic first dim (the batch) and every
// output starts with that dim; otherwise, or with `windowMs: 0`, each request runs alone.
//
// Backpressure: past `maxQueue` waiting samples, `infer` rejects at once with ERR_QUEUE_FULL
// (and a retry-after estimate) instead of holding more memory. `close()` refuses new requests
// and resolves once the queue has drained and the last run has finished.
const { performance } = require('node:perf_hooks');
const { ternion } = require('./ternion');

/** An error of the service itself (not of ternion), with the HTTP status it maps to. */
class ServiceError extends Error {
  /**
   * @param {string} code stable code, e.g. ERR_QUEUE_FULL
   * @param {string} message
   * @param {number} statusCode
   * @param {{ retryAfterSeconds?: number }} [extra]
   */
  constructor(code, message, statusCode, extra = {}) {
    super(message);
    this.name = 'ServiceError';
    this.code = code;
    this.statusCode = statusCode;
    if (extra.retryAfterSeconds !== undefined) this.retryAfterSeconds = extra.retryAfterSeconds;
  }
}

/**
 * The symbolic batch dim shared by every input and output of the session, or null when the
 * model cannot be batched by stacking (a fixed first dim, unknown shapes, different symbols).
 * @param {{ inputMetadata: readonly any[], outputMetadata?: readonly any[] }} session
 * @returns {string | null}
 */
function batchSymbol(session) {
  const inputs = session.inputMetadata;
  const outputs = session.outputMetadata ?? [];
  if (inputs.length === 0 || outputs.length === 0) return null;
  const first = inputs[0].shape?.[0];
  if (typeof first !== 'string') return null;
  const same = (m) => Array.isArray(m.shape) && m.shape.length > 0 && m.shape[0] === first && m.shape.indexOf(first, 1) < 0;
  return inputs.every(same) && outputs.every(same) ? first : null;
}

/**
 * Checks feeds against the model's inputs before they are queued, so one bad request never
 * fails a batch: names (ERR_INPUT_NAME), dtypes (ERR_DTYPE), dims (ERR_SHAPE_MISMATCH, a
 * symbolic dim takes any size, the same size wherever it repeats).
 * @param {Record<string, any>} feeds name -> Tensor
 * @param {readonly { name: string, type: string, shape?: readonly (number|string)[] }[]} inputs
 * @param {string | null} symbol the batch dim, when requests are stacked along it
 * @returns {{ samples: number, key: string }} samples along the batch dim (1 when not batched)
 *   and a key equal for requests whose feeds can be stacked together
 */
function checkFeeds(feeds, inputs, symbol) {
  const { TernionError, Tensor } = ternion();
  if (feeds === null || typeof feeds !== 'object' || Array.isArray(feeds)) {
    throw new TernionError('ERR_INVALID_ARGUMENT', 'Expected an object mapping input names to tensors');
  }
  const names = inputs.map((m) => `"${m.name}"`).join(', ');
  for (const name of Object.keys(feeds)) {
    if (!inputs.some((m) => m.name === name)) throw new TernionError('ERR_INPUT_NAME', `The model has no input "${name}" (its inputs: ${names})`);
  }
  const bound = new Map();
  const keys = [];
  for (const meta of inputs) {
    const t = feeds[meta.name];
    if (t === undefined) throw new TernionError('ERR_INPUT_NAME', `Missing input "${meta.name}" (the model's inputs: ${names})`);
    if (!(t instanceof Tensor)) throw new TernionError('ERR_INVALID_ARGUMENT', `Input "${meta.name}" is not a Tensor`);
    if (t.type !== meta.type) throw new TernionError('ERR_DTYPE', `Input "${meta.name}" is ${t.type} but the model takes ${meta.type}`);
    const shape = meta.shape;
    if (shape) {
      const mismatch = () => new TernionError('ERR_SHAPE_MISMATCH', `Input "${meta.name}" has dims [${t.dims.join(', ')}] but the model takes [${shape.join(', ')}]`);
      if (t.dims.length !== shape.length) throw mismatch();
      shape.forEach((d, i) => {
        const got = t.dims[i];
        if (typeof d === 'number') {
          if (d !== got) throw mismatch();
          return;
        }
        if (got < 1) throw new TernionError('ERR_SHAPE_MISMATCH', `Input "${meta.name}" dim ${i} ("${d}") is ${got}; it must be at least 1`);
        const prev = bound.get(d);
        if (prev !== undefined && prev !== got) {
          throw new TernionError('ERR_SHAPE_MISMATCH', `Input "${meta.name}" dim ${i} ("${d}") is ${got}, but another input sets "${d}" to ${prev}`);
        }
        bound.set(d, got);
      });
    }
    keys.push(t.dims.slice(symbol ? 1 : 0).join('x'));
  }
  return { samples: symbol ? bound.get(symbol) : 1, key: keys.join('|') };
}

/** Rows [from, from + count) of a tensor along dim 0, copied. */
function sliceRows(Tensor, t, from, count) {
  const per = t.dims.slice(1).reduce((a, b) => a * b, 1);
  return new Tensor(t.type, t.data.slice(from * per, (from + count) * per), [count, ...t.dims.slice(1)]);
}

/** Tensors stacked along dim 0 (same type and trailing dims). */
function stackRows(Tensor, parts) {
  const first = parts[0];
  const total = parts.reduce((a, t) => a + t.dims[0], 0);
  const data = new first.data.constructor(parts.reduce((a, t) => a + t.size, 0));
  let at = 0;
  for (const t of parts) {
    data.set(t.data, at);
    at += t.size;
  }
  return new Tensor(first.type, data, [total, ...first.dims.slice(1)]);
}

/**
 * @typedef {object} BatcherOptions
 * @property {number} [windowMs=2] how long the oldest request waits for others (0: no batching)
 * @property {number} [maxBatch=32] most samples per run
 * @property {number} [maxQueue=256] most samples waiting; past it, ERR_QUEUE_FULL
 * @property {number} [concurrency=1] most runs in flight on the session at once
 * @property {(b: { size: number, requests: number, runMs: number }) => void} [onBatch] after each run
 *
 * @typedef {object} InferResult
 * @property {Record<string, any>} outputs this request's rows of every output
 * @property {number} batchSize samples in the run this request was part of
 * @property {number} requests requests in that run
 * @property {number} queueMs time spent waiting in the queue
 * @property {number} runMs duration of the run
 */

class Batcher {
  /**
   * @param {import('../../dist').InferenceSession} session
   * @param {BatcherOptions} [options]
   */
  constructor(session, options = {}) {
    const int = (v, name, min, dflt) => {
      if (v === undefined) return dflt;
      if (!Number.isInteger(v) || v < min) throw new RangeError(`${name} must be an integer >= ${min}, got ${v}`);
      return v;
    };
    this.session = session;
    this.windowMs = options.windowMs ?? 2;
    if (!(typeof this.windowMs === 'number' && this.windowMs >= 0 && Number.isFinite(this.windowMs))) throw new RangeError(`windowMs must be a number >= 0, got ${options.windowMs}`);
    this.maxBatch = int(options.maxBatch, 'maxBatch', 1, 32);
    this.maxQueue = int(options.maxQueue, 'maxQueue', 1, 256);
    this.concurrency = int(options.concurrency, 'concurrency', 1, 1);
    this.onBatch = options.onBatch;
    /** The batch dim requests are stacked along, or null: every request runs alone. */
    this.symbol = this.windowMs > 0 ? batchSymbol(session) : null;
    this.queue = [];
    this.queued = 0;
    this.running = 0;
    this.timer = null;
    this.closed = false;
    this.idle = [];
    this.msPerSample = undefined;
  }

  /** Whether requests are stacked into shared runs. */
  get batching() {
    return this.symbol !== null;
  }

  /** Samples waiting in the queue (not yet running). */
  get depth() {
    return this.queued;
  }

  /** Runs in flight. */
  get inFlight() {
    return this.running;
  }

  /** Seconds until a request refused now is likely to be served (at least 1). */
  retryAfterSeconds() {
    const per = this.msPerSample ?? 10;
    return Math.max(1, Math.ceil(((this.queued + this.running * this.maxBatch) * per) / 1000));
  }

  /**
   * Queues one request (its feeds may hold several samples along the batch dim) and resolves
   * with its own outputs once the run that carried it has finished.
   * @param {Record<string, any>} feeds input name -> Tensor
   * @param {{ signal?: AbortSignal }} [options] an abort while queued takes the request out
   * @returns {Promise<InferResult>}
   */
  async infer(feeds, options = {}) {
    if (this.closed) throw new ServiceError('ERR_SHUTTING_DOWN', 'The server is shutting down', 503, { retryAfterSeconds: 1 });
    const { samples, key } = checkFeeds(feeds, this.session.inputMetadata, this.symbol);
    if (samples > this.maxQueue) {
      throw new ServiceError('ERR_PAYLOAD_TOO_LARGE', `The request holds ${samples} samples; at most ${this.maxQueue} (the queue bound) are accepted`, 413);
    }
    if (this.queued + samples > this.maxQueue) {
      throw new ServiceError('ERR_QUEUE_FULL', `${this.queued} samples are waiting (bound ${this.maxQueue}); retry later`, 503, { retryAfterSeconds: this.retryAfterSeconds() });
    }
    const signal = options.signal;
    if (signal?.aborted) throw abortError(signal);
    return new Promise((resolve, reject) => {
      const entry = { feeds, samples, key, resolve, reject, enqueuedAt: performance.now(), signal, onAbort: null };
      if (signal) {
        entry.onAbort = () => {
          const i = this.queue.indexOf(entry);
          if (i < 0) return; // already running: the run finishes, its result is dropped
          this.queue.splice(i, 1);
          this.queued -= entry.samples;
          reject(abortError(signal));
          this.settleIdle();
        };
        signal.addEventListener('abort', entry.onAbort, { once: true });
      }
      this.queue.push(entry);
      this.queued += samples;
      this.pump();
    });
  }

  /** Starts the batches that are due while run slots are free; arms the window timer otherwise. */
  pump() {
    while (this.running < this.concurrency && this.queue.length > 0) {
      if (this.batching && this.queued < this.maxBatch) {
        const waitMs = this.queue[0].enqueuedAt + this.windowMs - performance.now();
        if (waitMs > 0) {
          if (!this.timer) {
            this.timer = setTimeout(() => {
              this.timer = null;
              this.pump();
            }, waitMs);
          }
          return;
        }
      }
      this.dispatch(this.take());
    }
  }

  /** Takes the next batch off the queue: the oldest request and, when batching, the compatible ones after it. */
  take() {
    const head = this.queue[0];
    const picked = [head];
    let samples = head.samples;
    if (this.batching) {
      for (let i = 1; i < this.queue.length && samples < this.maxBatch; i++) {
        const e = this.queue[i];
        if (e.key === head.key && samples + e.samples <= this.maxBatch) {
          picked.push(e);
          samples += e.samples;
        }
      }
    }
    this.queue = picked.length === 1 ? this.queue.slice(1) : this.queue.filter((e) => !picked.includes(e));
    this.queued -= samples;
    for (const e of picked) if (e.signal) e.signal.removeEventListener('abort', e.onAbort);
    return picked;
  }

  /** Runs one batch and settles its requests. */
  async dispatch(batch) {
    const { Tensor } = ternion();
    this.running++;
    if (this.timer && this.queue.length === 0) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    const total = batch.reduce((a, e) => a + e.samples, 0);
    const started = performance.now();
    try {
      let feeds = batch[0].feeds;
      if (batch.length > 1) {
        feeds = {};
        for (const name of Object.keys(batch[0].feeds)) feeds[name] = stackRows(Tensor, batch.map((e) => e.feeds[name]));
      }
      const outputs = await this.session.run(feeds);
      const runMs = performance.now() - started;
      this.msPerSample = this.msPerSample === undefined ? runMs / total : 0.8 * this.msPerSample + (0.2 * runMs) / total;
      // Split first, resolve after: a split that fails rejects every request of the batch.
      const results = [];
      let offset = 0;
      for (const e of batch) {
        let own = outputs;
        if (batch.length > 1) {
          own = {};
          for (const [name, t] of Object.entries(outputs)) {
            if (t.dims[0] !== total) throw new ServiceError('ERR_INTERNAL', `Output "${name}" has dims [${t.dims.join(', ')}], not one row per sample of a batch of ${total}`, 500);
            own[name] = sliceRows(Tensor, t, offset, e.samples);
          }
        }
        offset += e.samples;
        results.push({ outputs: own, batchSize: total, requests: batch.length, queueMs: started - e.enqueuedAt, runMs });
      }
      batch.forEach((e, i) => e.resolve(results[i]));
      this.onBatch?.({ size: total, requests: batch.length, runMs });
    } catch (err) {
      for (const e of batch) e.reject(err);
    } finally {
      this.running--;
      this.pump();
      this.settleIdle();
    }
  }

  settleIdle() {
    if (this.queue.length > 0 || this.running > 0) return;
    for (const done of this.idle.splice(0)) done();
  }

  /** Resolves when nothing is queued or running. */
  drain() {
    if (this.queue.length === 0 && this.running === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  /** Refuses new requests (ERR_SHUTTING_DOWN) and resolves once the queued ones have run. */
  close() {
    this.closed = true;
    return this.drain();
  }
}

function abortError(signal) {
  const { TernionError } = ternion();
  return new TernionError('ERR_ABORTED', 'The request was cancelled before it ran', { cause: signal.reason });
}

module.exports = { Batcher, ServiceError, batchSymbol, checkFeeds, stackRows, sliceRows };
