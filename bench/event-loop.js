#!/usr/bin/env node
// Event-loop responsiveness while a long inference runs: session.run() executes on a worker
// thread, so timers keep firing. Measures the max event-loop delay (perf_hooks histogram)
// during runs of ~0.5 s (ResNet-50, batch sized to the machine) and compares with runSync.
// Writes bench/results/event-loop.json. Target: max delay under 5 ms during run().
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { monitorEventLoopDelay } = require('node:perf_hooks');
const { InferenceSession, Tensor } = require('../dist');

const MODEL = process.argv[2] ?? path.join(__dirname, '..', 'build', 'models', 'resnet50.onnx');

async function main() {
  if (!fs.existsSync(MODEL)) throw new Error(`${MODEL} is missing: run python3 tools/export_torchvision_models.py`);
  const session = await InferenceSession.create(MODEL, { threads: 1 });
  const feed = (batch) => ({ image: new Tensor('float32', new Float32Array(batch * 3 * 224 * 224).fill(0.5), [batch, 3, 224, 224]) });
  // Size the batch so one run takes about 500 ms here.
  let t = performance.now();
  await session.run(feed(1));
  const one = performance.now() - t;
  const batch = Math.max(1, Math.round(500 / one));
  const feeds = feed(batch);

  // Two views of the delay: the longest gap between 1 ms interval ticks (catches a blocked
  // loop, which runSync is by design) and perf_hooks' event-loop-delay histogram.
  const measure = async (fn) => {
    const h = monitorEventLoopDelay({ resolution: 1 });
    h.enable();
    let last = performance.now(), maxGap = 0;
    const timer = setInterval(() => {
      const now = performance.now();
      maxGap = Math.max(maxGap, now - last);
      last = now;
    }, 1);
    const start = performance.now();
    await fn();
    const ms = performance.now() - start;
    await new Promise((r) => setTimeout(r, 5));
    clearInterval(timer);
    h.disable();
    return { runMs: ms, maxTickGapMs: maxGap, maxDelayMs: h.max / 1e6, p99DelayMs: h.percentile(99) / 1e6 };
  };
  const asyncRuns = [];
  for (let i = 0; i < 3; i++) asyncRuns.push(await measure(() => session.run(feeds)));
  const syncRun = await measure(async () => session.runSync(feeds));
  const result = {
    date: new Date().toISOString(),
    model: path.basename(MODEL),
    batch,
    run: asyncRuns,
    runSync: syncRun,
    maxDelayDuringRunMs: Math.max(...asyncRuns.map((r) => r.maxDelayMs)),
    maxTickGapDuringRunMs: Math.max(...asyncRuns.map((r) => r.maxTickGapMs)),
    maxTickGapDuringRunSyncMs: syncRun.maxTickGapMs,
    loadAverage: require('node:os').loadavg(),
  };
  console.log(JSON.stringify(result, null, 1));
  fs.mkdirSync(path.join(__dirname, 'results'), { recursive: true });
  fs.writeFileSync(path.join(__dirname, 'results', 'event-loop.json'), JSON.stringify(result, null, 1));
  await session.release();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
