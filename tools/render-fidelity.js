#!/usr/bin/env node
// Renders the FGQ fidelity table: every mode's top-1 measured by ternion (build/fidelity-results.json,
// written by test/fgq-fidelity.test.ts) beside the PyTorch simulation's (data/fgq-simulation.json,
// written by tools/simulate_fgq.py), into README.md between <!-- fidelity:start --> and
// <!-- fidelity:end -->. Prints the table too.
//
//   npx vitest run test/fgq-fidelity.test.ts && node tools/render-fidelity.js
//   node tools/render-fidelity.js --stdout      # print only, leave README.md alone
'use strict';

const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.join(__dirname, '..');
const SIMULATION = path.join(ROOT, 'data', 'fgq-simulation.json');
const RESULTS = path.join(ROOT, 'build', 'fidelity-results.json');
const README = path.join(ROOT, 'README.md');
const START = '<!-- fidelity:start -->';
const END = '<!-- fidelity:end -->';

function fail(message) {
  process.stderr.write(`render-fidelity: ${message}\n`);
  process.exit(1);
}

function readJson(file, hint) {
  if (!fs.existsSync(file)) fail(`${path.relative(ROOT, file)} is missing: ${hint}`);
  return JSON.parse(fs.readFileSync(file, 'utf8'));
}

const pct = (v) => `${(v * 100).toFixed(2)}%`;

function modeLabel(m) {
  if (m.weights === 'fp32') return 'fp32';
  if (m.weights === 'int8') return 'int8 (all layers)';
  const n = m.groupSize === 'filter' ? 'filter' : `N=${m.groupSize}`;
  const twn = m.threshold === 'twn' ? ', TWN threshold' : '';
  return `${m.weights} ${n}${twn}`;
}

function render(sim, res) {
  const measured = new Map(res.modes.map((r) => [r.name, r]));
  const lines = [
    '| mode | activations | simulation top-1 | ternion top-1 | difference (points) | multiplications removed |',
    '|---|---|---|---|---|---|',
  ];
  let worst = 0;
  for (const m of sim.modes) {
    const r = measured.get(m.name);
    const acts = m.activationBits === null ? 'fp32' : `${m.activationBits}-bit`;
    if (!r) {
      lines.push(`| ${modeLabel(m)} | ${acts} | ${pct(m.top1)} | not measured | - | - |`);
      continue;
    }
    const d = (r.ternion - r.simulation) * 100;
    worst = Math.max(worst, Math.abs(d));
    const removed = r.multiplicationsRemoved === null ? '-' : `${Math.round(r.multiplicationsRemoved * 100)}%`;
    lines.push(`| ${modeLabel(m)} | ${acts} | ${pct(m.top1)} | ${pct(r.ternion)} | ${d >= 0 ? '+' : ''}${d.toFixed(2)} | ${removed} |`);
  }
  const day = res.date ? res.date.slice(0, 10) : 'unknown date';
  const seconds = typeof res.seconds === 'number' ? `, ${Math.round(res.seconds)} s for all modes` : '';
  lines.push('');
  lines.push(
    `All ${res.testImages.toLocaleString('en-US')} test images; model sha256 ${sim.modelSha256.slice(0, 12)}...; ` +
      `largest difference ${worst.toFixed(2)} points (bound 0.5); measured ${day}${seconds} ` +
      '(`build/fidelity-results.json`, rendered by `node tools/render-fidelity.js`).',
  );
  return lines.join('\n');
}

function main() {
  const sim = readJson(SIMULATION, 'run /usr/bin/python3 tools/simulate_fgq.py');
  const res = readJson(RESULTS, 'run npx vitest run test/fgq-fidelity.test.ts');
  if (res.modelSha256 !== sim.modelSha256) {
    fail(`the results (model ${res.modelSha256}) and the simulation (model ${sim.modelSha256}) are of different models: rerun the stale one`);
  }
  if (!res.complete) process.stderr.write('render-fidelity: warning: the test run did not measure every mode\n');
  const table = render(sim, res);
  process.stdout.write(table + '\n');
  if (process.argv.includes('--stdout')) return;
  const readme = fs.readFileSync(README, 'utf8');
  const a = readme.indexOf(START), b = readme.indexOf(END);
  if (a < 0 || b < a) fail(`README.md has no ${START} ... ${END} region`);
  const updated = `${readme.slice(0, a + START.length)}\n${table}\n${readme.slice(b)}`;
  if (updated !== readme) fs.writeFileSync(README, updated);
  process.stderr.write(`render-fidelity: README.md ${updated === readme ? 'already up to date' : 'updated'}\n`);
}

main();
