#!/usr/bin/env node
// Runs bench/peak-probe.cc: compiled here with the system g++ (-O2; each kernel has its own
// target attribute), run with only the ISAs this CPU and OS have (from /proc/cpuinfo, else
// ternion's cpuInfo()). Prints / returns one core's fp32 FMA and int8 dot-product peaks in
// GMAC/s and its streaming-read bandwidth in GB/s; with --threads T > 1, also how this machine
// scales from 1 to T threads on work that shares nothing (the ceiling of any engine's T-thread
// speed-up here).
//
//   node bench/peak-probe.js [--mem-mb 1024] [--seconds 0.25] [--threads T]
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

const ROOT = path.join(__dirname, '..');
const SOURCE = path.join(__dirname, 'peak-probe.cc');
const BINARY = path.join(ROOT, 'build', 'bench', 'peak-probe');

/** ISA names the probe knows, from /proc/cpuinfo flags (Linux) or ternion's cpuInfo(). */
function cpuIsas() {
  const map = { avx2: 'avx2', fma: 'fma', avx512f: 'avx512f', avx512bw: 'avx512bw', avx512_vnni: 'avx512vnni', avx_vnni: 'avxvnni' };
  try {
    const line = fs.readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('flags'));
    if (line) {
      const flags = new Set(line.split(':')[1].trim().split(/\s+/));
      return { source: '/proc/cpuinfo', isas: Object.entries(map).filter(([f]) => flags.has(f)).map(([, isa]) => isa) };
    }
  } catch {
    // not Linux
  }
  const { cpuInfo } = require(path.join(ROOT, 'dist'));
  const features = cpuInfo().features;
  const isas = ['avx2', 'fma'].filter((f) => features.includes(f));
  if (features.includes('avx512vnni')) isas.push('avx512f', 'avx512bw', 'avx512vnni');
  if (features.includes('avxvnni')) isas.push('avxvnni');
  return { source: 'ternion cpuInfo()', isas };
}

function compile() {
  const fresh = fs.existsSync(BINARY) && fs.statSync(BINARY).mtimeMs >= fs.statSync(SOURCE).mtimeMs;
  if (!fresh) {
    fs.mkdirSync(path.dirname(BINARY), { recursive: true });
    execFileSync('g++', ['-O2', '-pthread', '-o', BINARY, SOURCE], { stdio: ['ignore', 'inherit', 'inherit'] });
  }
  return execFileSync('g++', ['--version'], { encoding: 'utf8' }).split('\n')[0];
}

/** Compiles (when the source is newer) and runs the probe; returns its JSON plus how it ran. */
function runPeakProbe({ memMiB = 1024, seconds = 0.25, threads = 1 } = {}) {
  if (process.arch !== 'x64') return { skipped: `the probe is x86-64 only (this is ${process.arch})` };
  const compiler = compile();
  const { source, isas } = cpuIsas();
  const args = ['--isa', isas.join(','), '--mem-mb', String(memMiB), '--seconds', String(seconds), '--threads', String(threads)];
  const out = execFileSync(BINARY, args, { encoding: 'utf8' });
  return { compiler, flags: '-O2 (per-kernel target attributes)', isas, isasFrom: source, threads: 1, ...JSON.parse(out) };
}

module.exports = { runPeakProbe };

if (require.main === module) {
  const argv = process.argv.slice(2);
  const at = (f) => (argv.includes(f) ? Number(argv[argv.indexOf(f) + 1]) : undefined);
  console.log(JSON.stringify(runPeakProbe({ memMiB: at('--mem-mb'), seconds: at('--seconds'), threads: at('--threads') }), null, 1));
}
