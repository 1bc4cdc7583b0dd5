'use strict';
// A production-style inference service over ternion, on fastify.
//
//   POST /v1/models/:name/infer   JSON { inputs: { NAME: { dims, data, type? } } }, a raw
//                                 little-endian tensor (application/octet-stream, dims in the
//                                 x-tensor-dims header), or an image (image/png, image/jpeg,
//                                 image/webp) for a model taking [batch, 1|3, H, W] in [0, 1]
//   GET  /healthz                 models loaded, queue depth (503 while shutting down)
//   GET  /metrics                 Prometheus text format (prom-client)
//
// One InferenceSession per model, shared by all requests; a Batcher per session stacks the
// requests that arrive within BATCH_WINDOW_MS into one run (batcher.js). The server keeps no
// state between requests, so it scales out as replicas behind any HTTP load balancer.
//
// `node examples/server/server.js` reads its configuration from the environment (see main()).
const { basename, extname } = require('node:path');
const os = require('node:os');
const Fastify = require('fastify');
const pino = require('pino');
const promClient = require('prom-client');
const { Batcher, ServiceError } = require('./batcher');
const { ternion, embeddedModelPath } = require('./ternion');

const DEFAULTS = {
  batchWindowMs: 2,
  maxBatch: 32,
  maxQueue: 256,
  concurrency: 1,
  bodyLimit: 8 * 1024 * 1024,
  maxElements: 1 << 20,
  shutdownTimeoutMs: 10_000,
};

/** HTTP status of each TernionError code a request can cause. */
const STATUS_OF_CODE = {
  ERR_INVALID_ARGUMENT: 400,
  ERR_DTYPE: 400,
  ERR_SHAPE_MISMATCH: 400,
  ERR_INPUT_NAME: 400,
  ERR_ABORTED: 503,
  ERR_SESSION_RELEASED: 503,
};

/** Typed arrays of the dtypes a request may carry (raw bodies are little-endian). */
const ARRAYS = { float32: Float32Array, int8: Int8Array, uint8: Uint8Array, int32: Int32Array };

const SECONDS_BUCKETS = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5];

/**
 * `name=path,name2=path2` (a bare path is named after its file) to { name: path }.
 * @param {string} spec
 * @returns {Record<string, string>}
 */
function parseModels(spec) {
  const models = {};
  for (const part of spec.split(',').map((s) => s.trim()).filter(Boolean)) {
    const eq = part.indexOf('=');
    const path = eq > 0 ? part.slice(eq + 1) : part;
    const name = eq > 0 ? part.slice(0, eq) : basename(path, extname(path));
    if (!/^[A-Za-z0-9._-]+$/.test(name)) throw new Error(`MODELS: "${name}" is not a valid model name (letters, digits, . _ -)`);
    if (Object.hasOwn(models, name)) throw new Error(`MODELS: model "${name}" is given twice`);
    models[name] = path;
  }
  if (Object.keys(models).length === 0) throw new Error(`MODELS: no model in "${spec}"`);
  return models;
}

function isObject(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Product of dims after checking they are non-negative integers (ERR_SHAPE_MISMATCH). */
function elementsOf(dims, what) {
  const { TernionError } = ternion();
  if (!Array.isArray(dims) || dims.length === 0) throw new TernionError('ERR_SHAPE_MISMATCH', `Expected a non-empty array of dims for ${what}`);
  let n = 1;
  for (const d of dims) {
    if (!Number.isInteger(d) || d < 0) throw new TernionError('ERR_SHAPE_MISMATCH', `Expected non-negative integer dims for ${what} but received [${dims.join(', ')}]`);
    n *= d;
  }
  return n;
}

function tooLarge(elements, maxElements, what) {
  return new ServiceError('ERR_PAYLOAD_TOO_LARGE', `${what} holds ${elements} elements; at most ${maxElements} are accepted per request`, 413);
}

/** Feeds of a JSON body { inputs: { NAME: { dims, data, type? } } }. */
function jsonFeeds(body, inputs, maxElements) {
  const { Tensor, TernionError } = ternion();
  if (!isObject(body) || !isObject(body.inputs)) {
    throw new TernionError('ERR_INVALID_ARGUMENT', 'Expected a JSON body { "inputs": { "<input name>": { "dims": [...], "data": [...] } } }');
  }
  const feeds = {};
  let total = 0;
  for (const [name, spec] of Object.entries(body.inputs)) {
    const meta = inputs.find((m) => m.name === name);
    if (!meta) throw new TernionError('ERR_INPUT_NAME', `The model has no input "${name}" (its inputs: ${inputs.map((m) => `"${m.name}"`).join(', ')})`);
    if (!isObject(spec)) throw new TernionError('ERR_INVALID_ARGUMENT', `Expected { "dims": [...], "data": [...] } for input "${name}"`);
    const type = spec.type ?? meta.type;
    if (type !== meta.type) throw new TernionError('ERR_DTYPE', `Input "${name}" is sent as ${JSON.stringify(type)} but the model takes ${meta.type}`);
    if (!Object.hasOwn(ARRAYS, type)) throw new TernionError('ERR_DTYPE', `Input "${name}" is ${type}, which this service does not accept (float32, int8, uint8, int32)`);
    const elements = elementsOf(spec.dims, `input "${name}"`);
    let data = spec.data;
    if (!Array.isArray(data)) throw new TernionError('ERR_INVALID_ARGUMENT', `Expected an array of numbers for the data of input "${name}"`);
    if (data.length > 0 && Array.isArray(data[0])) data = data.flat(Infinity);
    total += Math.max(elements, data.length);
    if (total > maxElements) throw tooLarge(total, maxElements, 'The request');
    feeds[name] = new Tensor(type, data, spec.dims);
  }
  return feeds;
}

/** Feeds of a raw tensor body: dims in x-tensor-dims, optional x-input-name and x-tensor-type. */
function rawFeeds(body, headers, inputs, maxElements) {
  const { Tensor, TernionError } = ternion();
  const header = headers['x-tensor-dims'];
  if (typeof header !== 'string' || header.trim() === '') {
    throw new TernionError('ERR_SHAPE_MISMATCH', 'A raw tensor body needs its dims in the x-tensor-dims header, e.g. "x-tensor-dims: 1,1,28,28"');
  }
  const dims = header.split(',').map((d) => (d.trim() === '' ? NaN : Number(d)));
  const elements = elementsOf(dims, `x-tensor-dims "${header}"`);
  let name = headers['x-input-name'];
  if (name === undefined) {
    if (inputs.length !== 1) throw new TernionError('ERR_INPUT_NAME', `The model has ${inputs.length} inputs; name one in the x-input-name header, or send JSON with all of them`);
    name = inputs[0].name;
  }
  const meta = inputs.find((m) => m.name === name);
  if (!meta) throw new TernionError('ERR_INPUT_NAME', `The model has no input "${name}" (its inputs: ${inputs.map((m) => `"${m.name}"`).join(', ')})`);
  if (inputs.length !== 1) throw new TernionError('ERR_INPUT_NAME', `The model has ${inputs.length} inputs; a raw body carries one: send JSON with all of them`);
  const type = headers['x-tensor-type'] ?? 'float32';
  if (type !== meta.type) throw new TernionError('ERR_DTYPE', `The body is ${type} (x-tensor-type) but input "${name}" takes ${meta.type}`);
  const Ctor = ARRAYS[type];
  if (!Ctor) throw new TernionError('ERR_DTYPE', `x-tensor-type ${type} is not accepted (float32, int8, uint8, int32)`);
  if (elements > maxElements) throw tooLarge(elements, maxElements, `x-tensor-dims [${dims.join(', ')}]`);
  const bytes = elements * Ctor.BYTES_PER_ELEMENT;
  if (!Buffer.isBuffer(body) || body.length !== bytes) {
    throw new TernionError('ERR_SHAPE_MISMATCH', `The body holds ${Buffer.isBuffer(body) ? body.length : 0} bytes but dims [${dims.join(', ')}] of ${type} take ${bytes}`);
  }
  const data = new Ctor(elements);
  if (os.endianness() === 'LE' || Ctor.BYTES_PER_ELEMENT === 1) {
    new Uint8Array(data.buffer).set(body); // a copy: the Buffer may sit unaligned in a pool
  } else {
    const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
    for (let i = 0; i < elements; i++) data[i] = type === 'float32' ? view.getFloat32(i * 4, true) : view.getInt32(i * 4, true);
  }
  return { [name]: new Tensor(type, data, dims) };
}

/** Feeds of an encoded image, for a model taking one [batch, 1|3, H, W] input in [0, 1]. */
async function imageFeeds(body, inputs) {
  const { Tensor, TernionError } = ternion();
  const meta = inputs.length === 1 ? inputs[0] : undefined;
  const [, c, h, w] = meta?.shape ?? [];
  if (!meta || meta.type !== 'float32' || meta.shape.length !== 4 || (c !== 1 && c !== 3) || !Number.isInteger(h) || !Number.isInteger(w)) {
    throw new TernionError('ERR_SHAPE_MISMATCH', 'Image bodies feed models with one float32 input of shape [batch, 1 or 3, H, W]; send a tensor instead');
  }
  return { [meta.name]: await Tensor.fromImage(body, { size: [h, w], channels: c }) };
}

/** { name: { type, dims, data } } of output tensors (int64 values as numbers). */
function toJson(outputs) {
  const out = {};
  for (const [name, t] of Object.entries(outputs)) {
    out[name] = { type: t.type, dims: t.dims, data: t.type === 'int64' ? Array.from(t.data, Number) : Array.from(t.data) };
  }
  return out;
}

/** pino options or an instance (or false) to fastify's logger options. */
function loggerOptions(logger) {
  if (logger === false) return { logger: false };
  if (logger && typeof logger.child === 'function' && typeof logger.info === 'function') return { loggerInstance: logger };
  return { loggerInstance: pino({ level: 'info', ...(isObject(logger) ? logger : {}) }) };
}

/**
 * @typedef {object} ServerOptions
 * @property {Record<string, string | Uint8Array> | string} [models] name -> model path or bytes,
 *   or "name=path,..." (default: ternion's embedded Fashion-MNIST model as "fashion-mnist-resnet")
 * @property {number} [threads] threads per run of each session (default: all cores)
 * @property {'fp32' | 'int8'} [precision] how .onnx models run (default fp32)
 * @property {number} [batchWindowMs=2] how long a request waits for others to share its run (0: no batching)
 * @property {number} [maxBatch=32] most samples per run
 * @property {number} [maxQueue=256] most samples waiting per model; past it, 503 with Retry-After
 * @property {number} [concurrency=1] most runs in flight per model
 * @property {number} [bodyLimit=8 MiB] largest request body in bytes (413 past it)
 * @property {number} [maxElements=1048576] most tensor elements per request (413 past it)
 * @property {false | object} [logger] false, pino options, or a pino instance (default: info level)
 * @property {boolean} [logRequests=true] log every inference request and response (fastify's two lines per request)
 * @property {import('prom-client').Registry} [registry] where the metrics go (default: a new one)
 * @property {boolean} [defaultMetrics=true] also export prom-client's process metrics
 */

/**
 * Loads the models and builds the fastify app (not listening yet: call app.listen, or use
 * app.inject in tests). app.close() drains the queues and releases the sessions.
 * @param {ServerOptions} [options]
 * @returns {Promise<import('fastify').FastifyInstance>}
 */
async function buildServer(options = {}) {
  const { InferenceSession } = ternion();
  const opts = { ...DEFAULTS, ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) };
  const specs = typeof opts.models === 'string' ? parseModels(opts.models) : opts.models ?? { 'fashion-mnist-resnet': embeddedModelPath() };
  // Probes (/healthz, /metrics) never log a line per request; inference requests do unless
  // logRequests is false.
  const quiet = (request) => opts.logRequests === false || request.url === '/healthz' || request.url === '/metrics';
  const app = Fastify({ bodyLimit: opts.bodyLimit, logController: new Fastify.LogController({ disableRequestLogging: quiet }), ...loggerOptions(opts.logger) });

  // Metrics, on a registry of this app (several apps may live in one process, e.g. in tests).
  const registry = opts.registry ?? new promClient.Registry();
  if (opts.defaultMetrics !== false) promClient.collectDefaultMetrics({ register: registry });
  const httpDuration = new promClient.Histogram({
    name: 'http_request_duration_seconds', help: 'HTTP request latency, from the request to the response sent',
    labelNames: ['method', 'route', 'status_code'], buckets: SECONDS_BUCKETS, registers: [registry],
  });
  const inferenceDuration = new promClient.Histogram({
    name: 'ternion_inference_duration_seconds', help: 'Duration of one session.run (one batch)',
    labelNames: ['model'], buckets: SECONDS_BUCKETS, registers: [registry],
  });
  const batchSize = new promClient.Histogram({
    name: 'ternion_batch_size', help: 'Samples per session.run',
    labelNames: ['model'], buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256], registers: [registry],
  });
  const queueWait = new promClient.Histogram({
    name: 'ternion_queue_wait_seconds', help: 'Time a request waited in the batching queue before its run started',
    labelNames: ['model'], buckets: SECONDS_BUCKETS, registers: [registry],
  });
  const errors = new promClient.Counter({
    name: 'ternion_errors_total', help: 'Requests answered with an error, by error code',
    labelNames: ['model', 'code'], registers: [registry],
  });
  const models = new Map();
  new promClient.Gauge({
    name: 'ternion_queue_depth', help: 'Samples waiting in the batching queue',
    labelNames: ['model'], registers: [registry],
    collect() {
      for (const [name, m] of models) this.set({ model: name }, m.batcher?.depth ?? 0);
    },
  });
  new promClient.Gauge({
    name: 'ternion_runs_in_flight', help: 'session.run calls in flight',
    labelNames: ['model'], registers: [registry],
    collect() {
      for (const [name, m] of models) this.set({ model: name }, m.batcher?.inFlight ?? 0);
    },
  });

  // Sessions: one per model, created before the server answers.
  try {
    for (const [name, source] of Object.entries(specs)) {
      const sessionOptions = { ...(opts.threads ? { threads: opts.threads } : {}), ...(opts.precision ? { precision: opts.precision } : {}) };
      const session = await InferenceSession.create(source, sessionOptions);
      models.set(name, { name, session, batcher: null, source: typeof source === 'string' ? source : `${source.byteLength} bytes` });
      models.get(name).batcher = new Batcher(session, {
        windowMs: opts.batchWindowMs, maxBatch: opts.maxBatch, maxQueue: opts.maxQueue, concurrency: opts.concurrency,
        onBatch: (b) => {
          batchSize.observe({ model: name }, b.size);
          inferenceDuration.observe({ model: name }, b.runMs / 1000);
          app.log.debug({ model: name, batchSize: b.size, requests: b.requests, runMs: Number(b.runMs.toFixed(3)) }, 'batch');
        },
      });
    }
  } catch (e) {
    for (const m of models.values()) await m.session.release();
    throw e;
  }
  app.decorate('models', models);
  app.decorate('metricsRegistry', registry);
  app.log.info({
    models: [...models.values()].map((m) => ({ name: m.name, source: m.source, inputs: m.session.inputMetadata, batching: m.batcher.batching })),
    batchWindowMs: opts.batchWindowMs, maxBatch: opts.maxBatch, maxQueue: opts.maxQueue, concurrency: opts.concurrency, threads: opts.threads ?? 'all cores',
  }, 'models loaded');

  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onSend', async (request, reply) => {
    // Answers sent while closing end their keep-alive connection, or the server would wait for
    // the clients' idle connections to time out before it could finish closing.
    if (closing) reply.header('connection', 'close');
  });
  app.addHook('onClose', async () => {
    // In-flight HTTP requests have been answered by now; finish what is queued, then free.
    for (const m of models.values()) {
      await m.batcher.close();
      await m.session.release();
    }
    app.log.info('sessions released');
  });

  app.addHook('onResponse', async (request, reply) => {
    httpDuration.observe({ method: request.method, route: request.routeOptions?.url ?? 'unmatched', status_code: reply.statusCode }, reply.elapsedTime / 1000);
  });

  const keep = (req, body, done) => done(null, body);
  app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer' }, keep);
  app.addContentTypeParser(['image/png', 'image/jpeg', 'image/webp'], { parseAs: 'buffer' }, keep);

  app.setErrorHandler((err, request, reply) => {
    let status, code, message = err.message;
    if (err instanceof ServiceError) {
      status = err.statusCode;
      code = err.code;
      if (err.retryAfterSeconds !== undefined) reply.header('retry-after', String(err.retryAfterSeconds));
    } else if (err.name === 'TernionError') {
      status = STATUS_OF_CODE[err.code] ?? 500;
      code = err.code;
    } else if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      status = 413;
      code = 'ERR_PAYLOAD_TOO_LARGE';
      message = `The body is larger than the limit of ${opts.bodyLimit} bytes`;
    } else if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      status = 415;
      code = 'ERR_UNSUPPORTED_MEDIA_TYPE';
      message = 'Send application/json, application/octet-stream (a raw tensor) or image/png, image/jpeg, image/webp';
    } else if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
      status = err.statusCode; // malformed JSON, a bad content-length, ...
      code = 'ERR_INVALID_ARGUMENT';
    } else {
      status = 500;
      code = 'ERR_INTERNAL';
    }
    const model = request.params?.name && models.has(request.params.name) ? request.params.name : '';
    errors.inc({ model, code });
    if (status >= 500 && code !== 'ERR_QUEUE_FULL' && code !== 'ERR_SHUTTING_DOWN') request.log.error({ err, code }, 'request failed');
    else request.log.info({ code, message }, 'request refused');
    reply.status(status).send({ error: { code, message: status === 500 && code === 'ERR_INTERNAL' && err.name !== 'TernionError' ? 'Internal error' : message } });
  });

  app.setNotFoundHandler((request, reply) => {
    errors.inc({ model: '', code: 'ERR_NOT_FOUND' });
    reply.status(404).send({ error: { code: 'ERR_NOT_FOUND', message: `No route ${request.method} ${request.url}` } });
  });

  app.get('/healthz', async (request, reply) => {
    const list = {};
    let depth = 0;
    for (const [name, m] of models) {
      depth += m.batcher.depth;
      list[name] = { inputs: m.session.inputMetadata, outputs: m.session.outputMetadata, batching: m.batcher.batching, queueDepth: m.batcher.depth, runsInFlight: m.batcher.inFlight };
    }
    reply.status(closing ? 503 : 200);
    return { status: closing ? 'draining' : 'ok', models: list, queueDepth: depth, uptimeSeconds: Math.round(process.uptime()) };
  });

  app.get('/metrics', async (request, reply) => {
    reply.header('content-type', registry.contentType);
    return registry.metrics();
  });

  app.post('/v1/models/:name/infer', {
    // Unknown models are refused before their body is read.
    onRequest: async (request) => {
      if (!models.has(request.params.name)) {
        throw new ServiceError('ERR_MODEL_NOT_FOUND', `No model "${request.params.name}" (models: ${[...models.keys()].map((n) => `"${n}"`).join(', ')})`, 404);
      }
    },
  }, async (request, reply) => {
    const name = request.params.name;
    const m = models.get(name);
    const inputs = m.session.inputMetadata;
    const type = String(request.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
    const feeds = type === 'application/octet-stream' ? rawFeeds(request.body, request.headers, inputs, opts.maxElements)
      : type.startsWith('image/') ? await imageFeeds(request.body, inputs)
      : jsonFeeds(request.body, inputs, opts.maxElements);
    // A client that hangs up while its request is queued takes it out of the queue.
    const abort = new AbortController();
    const onClose = () => {
      if (!reply.raw.writableFinished) abort.abort();
    };
    reply.raw.once('close', onClose);
    let result;
    try {
      result = await m.batcher.infer(feeds, { signal: abort.signal });
    } finally {
      reply.raw.off('close', onClose);
    }
    queueWait.observe({ model: name }, result.queueMs / 1000);
    return { model: name, outputs: toJson(result.outputs), batchSize: result.batchSize };
  });

  return app;
}

/** A non-negative number from the environment, or the default. */
function envNumber(env, name, integer = true) {
  const v = env[name];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0 || (integer && !Number.isInteger(n))) throw new Error(`${name} must be a non-negative ${integer ? 'integer' : 'number'}, got "${v}"`);
  return n;
}

/**
 * Runs the service with its configuration from the environment:
 * PORT (8080), HOST (0.0.0.0), MODELS ("name=path,..."; default: the embedded model),
 * BATCH_WINDOW_MS (2; 0 turns batching off), MAX_BATCH (32), MAX_QUEUE (256),
 * RUN_CONCURRENCY (1), THREADS (all cores), PRECISION (fp32|int8, for .onnx models),
 * BODY_LIMIT (bytes, 8 MiB), MAX_ELEMENTS (1048576), LOG_LEVEL (info), LOG_REQUESTS (1; 0: no line
 * per request), SHUTDOWN_TIMEOUT_MS (10000).
 * SIGTERM / SIGINT: stop accepting, answer what is queued, release the sessions, exit 0.
 */
async function main(env = process.env) {
  const logger = pino({ level: env.LOG_LEVEL || 'info' });
  const threads = envNumber(env, 'THREADS');
  const app = await buildServer({
    models: env.MODELS || undefined,
    threads: threads || undefined,
    precision: env.PRECISION || undefined,
    batchWindowMs: envNumber(env, 'BATCH_WINDOW_MS', false),
    maxBatch: envNumber(env, 'MAX_BATCH'),
    maxQueue: envNumber(env, 'MAX_QUEUE'),
    concurrency: envNumber(env, 'RUN_CONCURRENCY'),
    bodyLimit: envNumber(env, 'BODY_LIMIT'),
    maxElements: envNumber(env, 'MAX_ELEMENTS'),
    logger,
    logRequests: !['0', 'false', 'no'].includes(String(env.LOG_REQUESTS ?? '').toLowerCase()),
  });
  await app.listen({ port: envNumber(env, 'PORT') ?? 8080, host: env.HOST || '0.0.0.0' });
  const timeoutMs = envNumber(env, 'SHUTDOWN_TIMEOUT_MS') ?? DEFAULTS.shutdownTimeoutMs;
  let stopping = false;
  const stop = async (signal) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down: draining the queues');
    setTimeout(() => {
      logger.error({ timeoutMs }, 'shutdown timed out; exiting');
      process.exit(1);
    }, timeoutMs).unref();
    try {
      await app.close();
      process.exit(0);
    } catch (e) {
      logger.error({ err: e }, 'shutdown failed');
      process.exit(1);
    }
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  return app;
}

module.exports = { buildServer, main, parseModels, DEFAULTS };

if (require.main === module) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
