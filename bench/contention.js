#!/usr/bin/env node
// Latency on a machine that is busy with something else, as a service's often is: the same
// model on 1 and 2 threads, alone and beside busy-loop processes (one fewer than the cores, so
// one core stays free for the run), ternion and onnxruntime-node side by side in one process.
// A parallel section whose threads wait for each other stalls whenever one of them is
// descheduled; the figures to watch are the 2-thread median and p99 beside the loops, against
// 1 thread. Writes bench/results/contention.json.
//
//   node bench/contention.js [MODEL.onnx] [--runs N]      (default build/models/mobilenet_v2.onnx, 200 runs)
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');
const ort = require('onnxruntime-node');
const { InferenceSession, Tensor } = require('../dist');
const { generatedInputs, modelInfo } = require('../dist/bench/model-info');

const args = process.argv.slice(2);
const runsAt = args.indexOf('--runs');
const RUNS = runsAt >= 0 ? Number(args.splice(runsAt, 2)[1]) : 200;
const MODEL = args[0] ?? path.join(__dirname, '..', 'build', 'models', 'mobilenet_v2.onnx');

/** Median and 99th percentile of `runs` timed calls (after 5 warm-up calls), in ms. */
async function latency(run) {
  for (let i = 0; i < 5; i++) await run();
  const ms = [];
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now();
    await run();
    ms.push(performance.now() - t);
  }
  ms.sort((a, b) => a - b);
  return { medianMs: ms[ms.length >> 1], p99Ms: ms[Math.min(ms.length - 1, Math.floor(ms.length * 0.99))] };
}

/** `count` child processes spinning on a core each until killed. */
function busyLoops(count) {
  return Array.from({ length: count }, () => spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }));
}

async function main() {
  if (!fs.existsSync(MODEL)) throw new Error(`${MODEL} is missing: run python3 tools/export_torchvision_models.py`);
  const info = modelInfo(MODEL);
  // Batch 1, or the model's fixed dim 0 (a sequence-first recurrent model's length).
  const fixed = info.inputs[0]?.declared?.[0];
  const feeds = generatedInputs(info.inputs, typeof fixed === 'number' ? fixed : 1);
  const ortFeeds = Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, new ort.Tensor(t.type, t.data, t.dims)]));
  const cores = os.availableParallelism ? os.availableParallelism() : os.cpus().length;
  const loops = Math.max(1, cores - 1);
  const engines = [];
  for (const threads of [1, 2]) {
    const s = await InferenceSession.create(MODEL, { threads });
    engines.push({ engine: 'ternion', threads, run: () => s.run(feeds) });
    const o = await ort.InferenceSession.create(MODEL, { intraOpNumThreads: threads, interOpNumThreads: 1 });
    engines.push({ engine: 'onnxruntime', threads, run: () => o.run(ortFeeds) });
  }
  const rows = [];
  for (const busy of [0, loops]) {
    const children = busyLoops(busy);
    await new Promise((r) => setTimeout(r, 200));
    try {
      for (const e of engines) {
        const r = await latency(e.run);
        rows.push({ engine: e.engine, threads: e.threads, busyLoops: busy, ...r });
        console.log(`${e.engine.padEnd(12)} ${e.threads} thread${e.threads > 1 ? 's' : ' '}  busy loops ${busy}: median ${r.medianMs.toFixed(2)} ms, p99 ${r.p99Ms.toFixed(2)} ms`);
      }
    } finally {
      for (const c of children) c.kill();
    }
  }
  const out = { model: path.basename(MODEL), cores, runs: RUNS, rows };
  const file = path.join(__dirname, 'results', 'contention.json');
  fs.writeFileSync(file, `${JSON.stringify(out, null, 1)}\n`);
  console.log(`wrote ${path.relative(process.cwd(), file)}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
