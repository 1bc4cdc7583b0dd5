#!/usr/bin/env node
'use strict';
// npm run bench:load: the example server (examples/server) under load on loopback, batching on
// (2 ms window) and off, with autocannon. The server runs in a child process (as in
// production: the load generator does not share its event loop) with the embedded
// Fashion-MNIST model; requests are JSON bodies of real test images, cycled per connection.
// Writes bench/results/load-test.json and prints a table.
//
//   node bench/load-test.js [--duration S] [--connections C] [--threads T] [--out FILE]
//
// Each run is bounded: S seconds (default 10) with C connections (default 32), after a 1 s
// warm-up. The server's own /metrics give the mean batch size and run time of each run.
const { spawn } = require('node:child_process');
const { mkdirSync, writeFileSync } = require('node:fs');
const os = require('node:os');
const { dirname, join } = require('node:path');
const autocannon = require('autocannon');

const ROOT = join(__dirname, '..');
const PATH = '/v1/models/fashion-mnist-resnet/infer';

function flag(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const v = process.argv[i + 1];
  if (v === undefined) throw new Error(`--${name} needs a value`);
  return v;
}

const DURATION = Number(flag('duration', 10));
const CONNECTIONS = Number(flag('connections', 32));
const THREADS = flag('threads', undefined);
const OUT = flag('out', join(ROOT, 'bench', 'results', 'load-test.json'));
const IMAGES = 64;

/** JSON bodies of the first IMAGES test images, pixels scaled to [0, 1]. */
function bodies() {
  const { loadNpy } = require(join(ROOT, 'dist'));
  const images = loadNpy(join(ROOT, 'data', 'fashion-mnist-test-images.npy')).data;
  return Array.from({ length: IMAGES }, (_, n) => {
    const data = Array.from(images.subarray(n * 784, (n + 1) * 784), (v) => v / 255);
    return JSON.stringify({ inputs: { image: { dims: [1, 1, 28, 28], data } } });
  });
}

/** Starts the example server with `env` on a free loopback port; resolves with its URL. */
function startServer(env) {
  const child = spawn(process.execPath, [join(ROOT, 'examples', 'server', 'server.js')], {
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', LOG_REQUESTS: '0', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    const onData = (d) => {
      out += d;
      const m = out.match(/listening at (http:\/\/[\d.:]+)/);
      if (m) {
        child.stdout.off('data', onData);
        child.stdout.resume(); // keep draining its log
        resolve({ child, url: m[1] });
      }
    };
    child.stdout.on('data', onData);
    child.on('exit', (code) => reject(new Error(`the server exited (${code}) before listening:\n${out}`)));
  });
}

function stopServer(child) {
  return new Promise((resolve) => {
    child.removeAllListeners('exit');
    child.on('exit', (code) => resolve(code));
    child.kill('SIGTERM');
  });
}

/** Sum and count of a histogram of the server's /metrics. */
async function histogram(url, name) {
  const text = await (await fetch(`${url}/metrics`)).text();
  const value = (suffix) => Number(text.match(new RegExp(`^${name}_${suffix}\\{[^}]*\\} ([\\d.e+-]+)$`, 'm'))?.[1] ?? NaN);
  return { sum: value('sum'), count: value('count') };
}

function fire(url, requests, duration) {
  return autocannon({
    url: url + PATH,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    requests: requests.map((body) => ({ body })),
    connections: CONNECTIONS,
    duration,
    timeout: 10,
  });
}

async function measure(name, env, requests) {
  const { child, url } = await startServer(env);
  try {
    await fire(url, requests, 1); // warm-up: JIT, first-touch buffers, connections
    const before = { batch: await histogram(url, 'ternion_batch_size'), run: await histogram(url, 'ternion_inference_duration_seconds') };
    const r = await fire(url, requests, DURATION);
    const after = { batch: await histogram(url, 'ternion_batch_size'), run: await histogram(url, 'ternion_inference_duration_seconds') };
    const runs = after.batch.count - before.batch.count;
    const samples = after.batch.sum - before.batch.sum;
    return {
      name,
      env,
      durationSeconds: DURATION,
      connections: CONNECTIONS,
      requests: r.requests.total,
      requestsPerSecond: Number(r.requests.average.toFixed(1)),
      latencyMs: { p50: r.latency.p50, p90: r.latency.p90, p99: r.latency.p99, mean: Number(r.latency.average.toFixed(2)), max: r.latency.max },
      errors: r.errors,
      timeouts: r.timeouts,
      non2xx: r.non2xx,
      runs,
      meanBatchSize: runs > 0 ? Number((samples / runs).toFixed(2)) : null,
      meanRunMs: runs > 0 ? Number((((after.run.sum - before.run.sum) / runs) * 1000).toFixed(2)) : null,
    };
  } finally {
    await stopServer(child);
  }
}

async function main() {
  const requests = bodies();
  const { cpuInfo } = require(join(ROOT, 'dist'));
  const base = { ...(THREADS ? { THREADS } : {}) };
  const loadBefore = os.loadavg();
  const runs = [];
  for (const [name, env] of [
    ['batching on (2 ms window)', { ...base, BATCH_WINDOW_MS: '2' }],
    ['batching off', { ...base, BATCH_WINDOW_MS: '0' }],
  ]) {
    process.stderr.write(`${name}: ${DURATION} s, ${CONNECTIONS} connections ...\n`);
    runs.push(await measure(name, env, requests));
  }
  const cpus = os.cpus();
  const result = {
    date: new Date().toISOString(),
    machine: {
      cpu: cpus[0]?.model ?? 'unknown',
      cores: os.availableParallelism?.() ?? cpus.length,
      kernels: cpuInfo().kernels,
      loadAverageBefore: loadBefore.map((x) => Number(x.toFixed(2))),
      loadAverageAfter: os.loadavg().map((x) => Number(x.toFixed(2))),
      note: 'a shared 2-core machine: other jobs ran at the same time (see the load averages)',
    },
    node: process.version,
    setup: {
      model: 'models/fashion-mnist-resnet.onnx (fp32), input [1, 1, 28, 28] per request as JSON',
      server: 'examples/server/server.js in a child process, loopback, request logging off',
      threads: THREADS ? Number(THREADS) : 'all cores',
      maxBatch: 32,
      runConcurrency: 1,
      images: IMAGES,
      loadGenerator: `autocannon, ${CONNECTIONS} connections, ${DURATION} s per run after a 1 s warm-up, in this process`,
    },
    runs,
  };
  mkdirSync(dirname(OUT), { recursive: true });
  writeFileSync(OUT, JSON.stringify(result, null, 1) + '\n');

  const rows = [['run', 'req/s', 'p50 ms', 'p90 ms', 'p99 ms', 'errors', 'non-2xx', 'mean batch']];
  for (const r of runs) rows.push([r.name, r.requestsPerSecond, r.latencyMs.p50, r.latencyMs.p90, r.latencyMs.p99, r.errors + r.timeouts, r.non2xx, r.meanBatchSize]);
  const widths = rows[0].map((_, c) => Math.max(...rows.map((row) => String(row[c]).length)));
  for (const row of rows) console.log(row.map((v, c) => (c === 0 ? String(v).padEnd(widths[c]) : String(v).padStart(widths[c]))).join('  '));
  console.log(`${result.machine.cpu}, ${result.machine.cores} cores, load average ${result.machine.loadAverageBefore.join(' ')} before; node ${process.version}; wrote ${OUT}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
