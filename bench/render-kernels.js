#!/usr/bin/env node
// Renders bench/results/kernels.json (from `npm run bench:kernels`) as the README's markdown
// table: GMAC/s and the ratio to ternion's own fp32 kernel, one thread, measured in one run.
'use strict';
const path = require('node:path');
const file = process.argv[2] ?? path.join(__dirname, 'results', 'kernels.json');
const r = require(path.resolve(file));
const engines = Object.keys(r.shapes[0].engines);
console.log(`Kernel set \`${r.cpu.kernels}\` (CPU features: ${r.cpu.features.join(' ')}), one thread, ${r.date.slice(0, 10)}. GMAC/s, and in brackets the ratio to ternion fp32.\n`);
console.log(`| shape | ${engines.join(' | ')} |`);
console.log(`|---|${engines.map(() => '---').join('|')}|`);
for (const s of r.shapes) {
  console.log(`| ${s.name} | ${engines.map((e) => (s.engines[e] ? `${s.engines[e].gmacs.toFixed(1)} (${s.engines[e].vsFp32.toFixed(2)}x)` : '-')).join(' | ')} |`);
}
