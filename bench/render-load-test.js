#!/usr/bin/env node
'use strict';
// Renders bench/results/load-test.json (from `npm run bench:load`) as the README's load-test
// table, between <!-- load-test:start --> and <!-- load-test:end -->. `--print` only prints it.
const { readFileSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');

const ROOT = join(__dirname, '..');
const result = JSON.parse(readFileSync(join(ROOT, 'bench', 'results', 'load-test.json'), 'utf8'));

function render(r) {
  const lines = [
    '| run | requests/s | p50 | p90 | p99 | errors | non-2xx | mean batch | mean run |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const x of r.runs) {
    lines.push(`| ${x.name} | ${x.requestsPerSecond.toFixed(1)} | ${x.latencyMs.p50} ms | ${x.latencyMs.p90} ms | ${x.latencyMs.p99} ms | ${x.errors + x.timeouts} | ${x.non2xx} | ${x.meanBatchSize} | ${x.meanRunMs} ms |`);
  }
  const m = r.machine;
  lines.push('');
  lines.push(
    `${r.runs[0].connections} connections, ${r.runs[0].durationSeconds} s per run after a 1 s warm-up; ${r.setup.model}; threads: ${r.setup.threads}, ` +
      `MAX_BATCH ${r.setup.maxBatch}, RUN_CONCURRENCY ${r.setup.runConcurrency}. Measured ${r.date.slice(0, 10)} on ${m.cpu} (${m.cores} cores, ${m.kernels} kernels), ` +
      `Node ${r.node}, on a **shared 2-core machine**: other jobs were running (load average ${m.loadAverageBefore[0]} before, ${m.loadAverageAfter[0]} after), ` +
      'so the figures are low and noisy; `npm run bench:load` measures yours (`bench/results/load-test.json`, rendered by `node bench/render-load-test.js`).',
  );
  return lines.join('\n');
}

const table = render(result);
if (process.argv.includes('--print')) {
  console.log(table);
} else {
  const path = join(ROOT, 'README.md');
  const readme = readFileSync(path, 'utf8');
  const start = '<!-- load-test:start -->', end = '<!-- load-test:end -->';
  const a = readme.indexOf(start), b = readme.indexOf(end);
  if (a < 0 || b < a) throw new Error(`README.md has no ${start} ... ${end} block`);
  writeFileSync(path, readme.slice(0, a + start.length) + '\n' + table + '\n' + readme.slice(b));
  console.log('README.md: load-test table updated');
}
