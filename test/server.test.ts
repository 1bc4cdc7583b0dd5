// examples/server/server.js in-process (fastify inject and real HTTP on 127.0.0.1, port 0)
// with the embedded model: outputs against direct session.run calls, raw and image bodies, the
// error statuses and codes, the bounded queue (503 + Retry-After), /metrics, batching of
// concurrent requests, graceful shutdown, the env-configured main() in a child process, and a
// one-second autocannon smoke run.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureDist, nodeRequire } from './ensure-dist';
import { ROOT } from './native-build';
import { encodeModel, valueInfo } from './onnx-build-model';

/* eslint-disable @typescript-eslint/no-explicit-any */
let api: any;
let buildServer: (o?: any) => Promise<any>;
let parseModels: (s: string) => Record<string, string>;
let session: any; // a direct session, for reference outputs
let pixels: Float32Array;
let direct: Float32Array;
const COUNT = 32;
const MODEL = join(ROOT, 'models', 'fashion-mnist-resnet.onnx');
const NAME = 'fashion-mnist-resnet';
const URL_PATH = `/v1/models/${NAME}/infer`;
const open: any[] = [];

function image(i: number): number[] {
  return Array.from(pixels.subarray(i * 784, (i + 1) * 784));
}

function jsonBody(i: number, n = 1): string {
  return JSON.stringify({ inputs: { image: { dims: [n, 1, 28, 28], data: Array.from(pixels.subarray(i * 784, (i + n) * 784)) } } });
}

async function server(options: any = {}): Promise<any> {
  const app = await buildServer({ logger: false, defaultMetrics: false, models: { [NAME]: MODEL }, threads: 1, ...options });
  open.push(app);
  return app;
}

async function listening(options: any = {}): Promise<{ app: any; url: string }> {
  const app = await server(options);
  const address = await app.listen({ port: 0, host: '127.0.0.1' });
  return { app, url: address };
}

function post(url: string, body: string | Buffer, headers: Record<string, string> = { 'content-type': 'application/json' }): Promise<Response> {
  return fetch(url + URL_PATH, { method: 'POST', headers, body });
}

beforeAll(async () => {
  await ensureDist();
  api = nodeRequire('./examples/server/ternion.js').ternion();
  ({ buildServer, parseModels } = nodeRequire('./examples/server/server.js'));
  session = await api.InferenceSession.create(MODEL, { threads: 1 });
  const images = api.loadNpy(join(ROOT, 'data', 'fashion-mnist-test-images.npy')).data as Uint8Array;
  pixels = Float32Array.from(images.subarray(0, COUNT * 784), (v) => v / 255);
  direct = new Float32Array(COUNT * 10);
  for (let i = 0; i < COUNT; i++) {
    const x = new api.Tensor('float32', pixels.slice(i * 784, (i + 1) * 784), [1, 1, 28, 28]);
    direct.set((await session.run({ image: x })).logits.data, i * 10);
  }
});

afterAll(async () => {
  for (const app of open) await app.close().catch(() => undefined);
  await session?.release();
});

describe('example server', () => {
  it('JSON infer returns exactly what a direct session.run gives for the same input', async () => {
    const app = await server();
    for (const i of [0, 1, 2]) {
      const res = await app.inject({ method: 'POST', url: URL_PATH, payload: { inputs: { image: { dims: [1, 1, 28, 28], data: image(i), type: 'float32' } } } });
      expect(res.statusCode).toBe(200);
      const body = res.json();
      expect(body.model).toBe(NAME);
      expect(body.batchSize).toBe(1);
      expect(body.outputs.logits.dims).toEqual([1, 10]);
      expect(Float32Array.from(body.outputs.logits.data)).toEqual(direct.subarray(i * 10, (i + 1) * 10));
    }
    // Several samples in one request, nested data arrays accepted.
    const nested = [[image(3)], [image(4)]];
    const res = await app.inject({ method: 'POST', url: URL_PATH, payload: { inputs: { image: { dims: [2, 1, 28, 28], data: nested } } } });
    expect(res.statusCode).toBe(200);
    const logits = res.json().outputs.logits;
    expect(logits.dims).toEqual([2, 10]);
    logits.data.forEach((v: number, k: number) => expect(v).toBeCloseTo(direct[30 + k], 4));
  });

  it('raw float32 bodies (x-tensor-dims) and PNG bodies give the same logits', async () => {
    const app = await server();
    const raw = Buffer.from(pixels.slice(5 * 784, 6 * 784).buffer);
    const res = await app.inject({ method: 'POST', url: URL_PATH, headers: { 'content-type': 'application/octet-stream', 'x-tensor-dims': '1,1,28,28' }, payload: raw });
    expect(res.statusCode).toBe(200);
    expect(Float32Array.from(res.json().outputs.logits.data)).toEqual(direct.subarray(50, 60));
    let sharp: any;
    try {
      sharp = nodeRequire('sharp');
    } catch {
      return; // the optional dependency is missing: image bodies are covered by tensor-from-image
    }
    const gray = Uint8Array.from(pixels.subarray(5 * 784, 6 * 784), (v) => Math.round(v * 255));
    const png = await sharp(Buffer.from(gray), { raw: { width: 28, height: 28, channels: 1 } }).png().toBuffer();
    const img = await app.inject({ method: 'POST', url: URL_PATH, headers: { 'content-type': 'image/png' }, payload: png });
    expect(img.statusCode).toBe(200);
    expect(Float32Array.from(img.json().outputs.logits.data)).toEqual(direct.subarray(50, 60));
  });

  it('BAD REQUESTS - 404 / 400 / 413 / 415 with { error: { code, message } }', async () => {
    const app = await server({ bodyLimit: 64 * 1024, maxElements: 4 * 784 });
    const call = async (url: string, payload: any, headers: Record<string, string> = { 'content-type': 'application/json' }) => {
      const res = await app.inject({ method: 'POST', url, headers, payload });
      return { status: res.statusCode, error: res.json().error };
    };
    const one = (extra: any) => ({ inputs: { image: { dims: [1, 1, 28, 28], data: image(0), ...extra } } });
    const cases: [Promise<any>, number, string, RegExp?][] = [
      [call('/v1/models/nope/infer', jsonBody(0)), 404, 'ERR_MODEL_NOT_FOUND', /No model "nope".*fashion-mnist-resnet/],
      [call('/v2/whatever', '{}'), 404, 'ERR_NOT_FOUND'],
      [call(URL_PATH, '{"inputs": {'), 400, 'ERR_INVALID_ARGUMENT'],
      [call(URL_PATH, JSON.stringify({ image: {} })), 400, 'ERR_INVALID_ARGUMENT', /"inputs"/],
      [call(URL_PATH, JSON.stringify({ inputs: { pixels: { dims: [1], data: [0] } } })), 400, 'ERR_INPUT_NAME', /no input "pixels"/],
      [call(URL_PATH, JSON.stringify({ inputs: {} })), 400, 'ERR_INPUT_NAME', /Missing input "image"/],
      [call(URL_PATH, JSON.stringify(one({ dims: [1, 28, 28] }))), 400, 'ERR_SHAPE_MISMATCH', /\[batch, 1, 28, 28\]/],
      [call(URL_PATH, JSON.stringify(one({ dims: [1, 1, 28, 27] }))), 400, 'ERR_SHAPE_MISMATCH'],
      [call(URL_PATH, JSON.stringify(one({ dims: [1, 1, 28, -28] }))), 400, 'ERR_SHAPE_MISMATCH'],
      [call(URL_PATH, JSON.stringify(one({ type: 'int32' }))), 400, 'ERR_DTYPE', /takes float32/],
      [call(URL_PATH, JSON.stringify(one({ data: ['a', ...image(0).slice(1)] }))), 400, 'ERR_DTYPE'],
      [call(URL_PATH, JSON.stringify(one({ data: 'AAAA' }))), 400, 'ERR_INVALID_ARGUMENT'],
      [call(URL_PATH, Buffer.alloc(784 * 4), { 'content-type': 'application/octet-stream' }), 400, 'ERR_SHAPE_MISMATCH', /x-tensor-dims/],
      [call(URL_PATH, Buffer.alloc(100), { 'content-type': 'application/octet-stream', 'x-tensor-dims': '1,1,28,28' }), 400, 'ERR_SHAPE_MISMATCH', /100 bytes/],
      [call(URL_PATH, Buffer.alloc(784 * 4), { 'content-type': 'application/octet-stream', 'x-tensor-dims': '1,1,28,28', 'x-tensor-type': 'int32' }), 400, 'ERR_DTYPE'],
      [call(URL_PATH, Buffer.alloc(784 * 4), { 'content-type': 'application/octet-stream', 'x-tensor-dims': 'a,b' }), 400, 'ERR_SHAPE_MISMATCH'],
      [call(URL_PATH, Buffer.from('not a png'), { 'content-type': 'image/png' }), 400, 'ERR_INVALID_ARGUMENT'],
      [call(URL_PATH, 'x', { 'content-type': 'text/csv' }), 415, 'ERR_UNSUPPORTED_MEDIA_TYPE'],
      // Over the body limit (64 KiB here): refused while reading.
      [call(URL_PATH, jsonBody(0) + ' '.repeat(70_000)), 413, 'ERR_PAYLOAD_TOO_LARGE', /limit of 65536 bytes/],
      // Under the body limit but more elements than maxElements (4 images here).
      [call(URL_PATH, Buffer.alloc(16), { 'content-type': 'application/octet-stream', 'x-tensor-dims': '8,1,28,28' }), 413, 'ERR_PAYLOAD_TOO_LARGE', /6272 elements/],
      [call(URL_PATH, JSON.stringify({ inputs: { image: { dims: [5, 1, 28, 28], data: [] } } })), 413, 'ERR_PAYLOAD_TOO_LARGE'],
    ];
    for (const [pending, status, code, message] of cases) {
      const r = await pending;
      expect({ status: r.status, code: r.error?.code }).toEqual({ status, code });
      expect(typeof r.error.message).toBe('string');
      if (message) expect(r.error.message).toMatch(message);
    }
    // The errors are counted by code.
    const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).toMatch(/ternion_errors_total\{model="fashion-mnist-resnet",code="ERR_SHAPE_MISMATCH"\} [5-9]/);
    expect(metrics).toMatch(/ternion_errors_total\{model="",code="ERR_NOT_FOUND"\} 1/);
  });

  it('FULL QUEUE - with MAX_QUEUE 1, concurrent requests past the bound get 503 with Retry-After; the rest are right', async () => {
    // The first request waits 200 ms in the window: whatever arrives meanwhile finds the queue
    // full, however fast the machine.
    const { url } = await listening({ maxQueue: 1, batchWindowMs: 200 });
    const responses = await Promise.all(Array.from({ length: 24 }, (_, i) => post(url, jsonBody(i % COUNT))));
    const bodies = await Promise.all(responses.map((r) => r.json()));
    const refused = responses.filter((r) => r.status === 503);
    const ok = responses.map((r, i) => [r, i] as const).filter(([r]) => r.status === 200);
    expect(refused.length).toBeGreaterThan(0);
    expect(ok.length).toBeGreaterThanOrEqual(1);
    expect(refused.length + ok.length).toBe(24);
    for (const r of refused) expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(bodies.find((b) => b.error)?.error.code).toBe('ERR_QUEUE_FULL');
    for (const [, i] of ok) expect(Float32Array.from(bodies[i].outputs.logits.data)).toEqual(direct.subarray((i % COUNT) * 10, (i % COUNT + 1) * 10));
  });

  it('concurrent requests within the window share a run (batch size > 1) and each gets its own output; /metrics shows it', async () => {
    const { app, url } = await listening({ batchWindowMs: 25 });
    const n = 12;
    const bodies = await Promise.all(Array.from({ length: n }, (_, i) => post(url, jsonBody(i)).then((r) => r.json())));
    expect(Math.max(...bodies.map((b) => b.batchSize))).toBeGreaterThan(1);
    bodies.forEach((b, i) => {
      expect(b.outputs.logits.dims).toEqual([1, 10]);
      b.outputs.logits.data.forEach((v: number, k: number) => expect(v).toBeCloseTo(direct[i * 10 + k], 4));
    });
    const metrics = await (await fetch(url + '/metrics')).text();
    const value = (re: RegExp) => Number(metrics.match(re)?.[1]);
    expect(value(/http_request_duration_seconds_count\{method="POST",route="\/v1\/models\/:name\/infer",status_code="200"\} (\d+)/)).toBe(n);
    const batches = value(/ternion_batch_size_count\{model="fashion-mnist-resnet"\} (\d+)/);
    const samples = value(/ternion_batch_size_sum\{model="fashion-mnist-resnet"\} (\d+)/);
    expect(samples).toBe(n);
    expect(batches).toBeLessThan(n);
    expect(value(/ternion_inference_duration_seconds_count\{model="fashion-mnist-resnet"\} (\d+)/)).toBe(batches);
    expect(metrics).toMatch(/ternion_queue_wait_seconds_bucket/);
    expect(metrics).toMatch(/ternion_queue_depth\{model="fashion-mnist-resnet"\} 0/);
    expect(metrics).toMatch(/# TYPE http_request_duration_seconds histogram/);
    const health = await (await fetch(url + '/healthz')).json();
    expect(health).toMatchObject({ status: 'ok', queueDepth: 0, models: { [NAME]: { batching: true, inputs: [{ name: 'image', shape: ['batch', 1, 28, 28] }] } } });
    await app.close();
  });

  it('a model with a fixed batch dim and two inputs is served request by request, next to the embedded one', async () => {
    const add = encodeModel({
      nodes: [{ op: 'Add', inputs: ['x', 'z'], outputs: ['y'], name: 'add' }],
      inputs: [valueInfo('x', [1, 3]), valueInfo('z', [1, 3])],
      outputs: [valueInfo('y', [1, 3])],
    });
    const { app, url } = await listening({ models: { [NAME]: MODEL, add }, batchWindowMs: 20 });
    const health = await (await fetch(url + '/healthz')).json();
    expect(health.models.add.batching).toBe(false);
    expect(health.models[NAME].batching).toBe(true);
    const bodies = await Promise.all([1, 2, 3, 4].map((k) =>
      fetch(url + '/v1/models/add/infer', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ inputs: { x: { dims: [1, 3], data: [k, 0, -k] }, z: { dims: [1, 3], data: [1, 1, 1] } } }) }).then((r) => r.json())));
    bodies.forEach((b, i) => {
      expect(b.batchSize).toBe(1);
      expect(b.outputs.y).toEqual({ type: 'float32', dims: [1, 3], data: [i + 2, 1, 0 - i] });
    });
    const raw = await app.inject({ method: 'POST', url: '/v1/models/add/infer', headers: { 'content-type': 'application/octet-stream', 'x-tensor-dims': '1,3' }, payload: Buffer.alloc(12) });
    expect([raw.statusCode, raw.json().error.code]).toEqual([400, 'ERR_INPUT_NAME']);
    const two = await app.inject({ method: 'POST', url: '/v1/models/add/infer', payload: { inputs: { x: { dims: [2, 3], data: [1, 2, 3, 4, 5, 6] }, z: { dims: [1, 3], data: [1, 1, 1] } } } });
    expect([two.statusCode, two.json().error.code]).toEqual([400, 'ERR_SHAPE_MISMATCH']);
    const png = await app.inject({ method: 'POST', url: '/v1/models/add/infer', headers: { 'content-type': 'image/png' }, payload: Buffer.alloc(8) });
    expect([png.statusCode, png.json().error.code]).toEqual([400, 'ERR_SHAPE_MISMATCH']);
  });

  it('graceful shutdown: close() answers the queued requests, then releases the sessions', async () => {
    const { app, url } = await listening({ batchWindowMs: 300 });
    const inflight = [post(url, jsonBody(0)), post(url, jsonBody(1))];
    const batcher = app.models.get(NAME).batcher;
    while (batcher.depth < 2) await new Promise((r) => setTimeout(r, 2)); // both wait in the window
    const modelSession = app.models.get(NAME).session;
    await app.close();
    const bodies = await Promise.all(inflight.map((p) => p.then((r) => r.json())));
    expect(bodies.map((b) => b.batchSize)).toEqual([2, 2]);
    await expect(modelSession.run({ image: new api.Tensor('float32', new Float32Array(784), [1, 1, 28, 28]) })).rejects.toMatchObject({ code: 'ERR_SESSION_RELEASED' });
  });

  it('main(): configured by the environment, logs JSON lines, and exits 0 on SIGTERM after draining', async () => {
    expect(parseModels(`a=${MODEL}, /x/y/b.tern`)).toEqual({ a: MODEL, b: '/x/y/b.tern' });
    expect(() => parseModels('a=x.onnx,a=y.onnx')).toThrow(/twice/);
    const child = spawn(process.execPath, [join(ROOT, 'examples', 'server', 'server.js')], {
      env: { ...process.env, PORT: '0', HOST: '127.0.0.1', MODELS: `fm=${MODEL}`, THREADS: '1', BATCH_WINDOW_MS: '1', MAX_QUEUE: '64', LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      const deadline = Date.now() + 20_000;
      while (!/listening at (http:\/\/[\d.:]+)/.test(out) && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 20));
      const url = out.match(/listening at (http:\/\/[\d.:]+)/)?.[1];
      expect(url, out).toBeDefined();
      const res = await fetch(`${url}/v1/models/fm/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: jsonBody(7) });
      expect(res.status).toBe(200);
      expect(Float32Array.from((await res.json()).outputs.logits.data)).toEqual(direct.subarray(70, 80));
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    const lines = out.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.find((l) => l.msg === 'models loaded')).toMatchObject({ maxQueue: 64, batchWindowMs: 1, threads: 1 });
    expect(lines.some((l) => l.msg === 'sessions released')).toBe(true);
  });

  it('autocannon smoke run (1 s): no errors, no non-2xx', async () => {
    const autocannon = nodeRequire('autocannon');
    const { url } = await listening({ batchWindowMs: 2 });
    const result = await autocannon({
      url: url + URL_PATH, method: 'POST', duration: 1, connections: 8,
      headers: { 'content-type': 'application/json' }, body: jsonBody(0),
    });
    expect(result.errors).toBe(0);
    expect(result.timeouts).toBe(0);
    expect(result.non2xx).toBe(0);
    expect(result.requests.total).toBeGreaterThan(10);
  });
});
