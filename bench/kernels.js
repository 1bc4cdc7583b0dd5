#!/usr/bin/env node
// Kernel benchmark (npm run bench:kernels): GMAC/s of ternion's fp32, int8, ternary and 4-bit
// GEMM/GEMV on shapes of real layers, one thread, measured with `benchmark` in one process,
// plus onnxruntime-node's fp32 MatMul on the same shapes as the reference for our fp32 kernel.
// Writes bench/results/kernels.json; `node bench/render-kernels.js` turns it into the README table.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const Benchmark = require('benchmark');
const { PackedMatrix, cpuInfo } = require('../dist');
const { encodeMatMulModel } = require('./onnx-matmul');

const QUICK = process.argv.includes('--quick');
const SHAPES = [
  { name: 'GEMV 4096x4096', M: 1, K: 4096, N: 4096 },
  { name: 'GEMV 11008x4096', M: 1, K: 4096, N: 11008 },
  { name: 'GEMM batch 8, 4096x4096', M: 8, K: 4096, N: 4096 },
  { name: 'GEMM batch 64, 4096x4096', M: 64, K: 4096, N: 4096 },
  { name: 'conv 56x56, K=576, N=64', M: 3136, K: 576, N: 64 },
  { name: 'conv 14x14, K=2304, N=256', M: 196, K: 2304, N: 256 },
];

function lcg(seed) {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296);
}

function engines({ M, K, N }) {
  const r = lcg(K * 31 + N);
  const Wf = Float32Array.from({ length: N * K }, () => r() * 2 - 1);
  const W8 = Int8Array.from({ length: N * K }, () => Math.floor(r() * 255) - 127);
  const W7 = Int8Array.from({ length: N * K }, () => Math.floor(r() * 127) - 63); // quantize()'s default reduced range
  const T = Int8Array.from({ length: N * K }, () => Math.floor(r() * 3) - 1);
  const Q4 = Int8Array.from({ length: N * K }, () => Math.floor(r() * 15) - 7);
  const Af = Float32Array.from({ length: M * K }, () => r());
  const A8 = Uint8Array.from({ length: M * K }, () => Math.floor(r() * 256));
  const scale = new Float32Array(N).fill(1e-3), bias = new Float32Array(N);
  const groups = (g) => Float32Array.from({ length: N * (K / g) }, () => 0.01 + r() * 0.1);
  const mults = (g, max) => Int8Array.from({ length: N * (K / g) }, () => 1 + Math.floor(r() * max));
  const q8opts = { scale, bias, output: 'uint8', threads: 1 };
  const list = [
    ['ternion fp32', PackedMatrix.float32(Wf, N, K), Af, { bias, threads: 1 }],
    ['ternion int8', PackedMatrix.int8(W8, N, K), A8, q8opts],
    ['ternion int8 7-bit', PackedMatrix.int8(W7, N, K), A8, q8opts],
    ['ternary N=64', PackedMatrix.ternary(T, N, K, { groupSize: 64, scales: groups(64) }), A8, q8opts],
    ['ternary N=16', PackedMatrix.ternary(T, N, K, { groupSize: 16, scales: groups(16) }), A8, q8opts],
    ['ternary N=4 folded', PackedMatrix.ternary(T, N, K, { groupSize: 4, form: 'folded', multipliers: mults(4, 127) }), A8, q8opts],
    ['ternary-asym N=64', PackedMatrix.ternary(T, N, K, { groupSize: 64, scales: groups(64), negativeScales: groups(64) }), A8, q8opts],
    ['int4 N=16', PackedMatrix.int4(Q4, N, K, { groupSize: 16, scales: groups(16) }), A8, q8opts],
  ];
  return { list, Wf, Af };
}

async function ortEngine({ M, K, N }, Wf, Af) {
  let ort;
  try {
    ort = require('onnxruntime-node');
  } catch {
    return null;
  }
  // W as [K][N] so onnxruntime computes A[M][K] x W[K][N], the same product.
  const WT = new Float32Array(K * N);
  for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) WT[k * N + n] = Wf[n * K + k];
  const session = await ort.InferenceSession.create(encodeMatMulModel(WT, K, N), { intraOpNumThreads: 1, interOpNumThreads: 1 });
  const feeds = { A: new ort.Tensor('float32', Af, [M, K]) };
  return { session, feeds };
}

function measure(name, fn, { async = false } = {}) {
  return new Promise((resolve) => {
    const bench = new Benchmark(name, async ? { defer: true, fn: (d) => fn().then(() => d.resolve()) } : { fn }, {
      minSamples: QUICK ? 3 : 8,
      maxTime: QUICK ? 0.5 : 2,
    });
    bench.on('complete', () => resolve({ seconds: bench.stats.mean, rme: bench.stats.rme, samples: bench.stats.sample.length }));
    bench.run({ async: true });
  });
}

async function main() {
  const info = cpuInfo();
  const results = { date: new Date().toISOString(), cpu: info, node: process.version, threads: 1, shapes: [] };
  console.log(`kernels: ${info.kernels} (cpu: ${info.features.join(' ')})`);
  for (const shape of SHAPES) {
    const { list, Wf, Af } = engines(shape);
    const macs = shape.M * shape.N * shape.K;
    const row = { ...shape, engines: {} };
    for (const [name, packed, A, opts] of list) {
      const m = await measure(name, () => packed.matmul(A, shape.M, opts));
      row.engines[name] = { gmacs: macs / m.seconds / 1e9, ms: m.seconds * 1e3, rme: m.rme };
      packed.release();
    }
    const ort = await ortEngine(shape, Wf, Af);
    if (ort) {
      const m = await measure('onnxruntime fp32', () => ort.session.run(ort.feeds), { async: true });
      row.engines['onnxruntime fp32'] = { gmacs: macs / m.seconds / 1e9, ms: m.seconds * 1e3, rme: m.rme };
      await ort.session.release();
    }
    const base = row.engines['ternion fp32'].gmacs;
    for (const e of Object.values(row.engines)) e.vsFp32 = e.gmacs / base;
    results.shapes.push(row);
    console.log(`\n${shape.name} (M=${shape.M} K=${shape.K} N=${shape.N})`);
    for (const [name, e] of Object.entries(row.engines)) console.log(`  ${name.padEnd(20)} ${e.gmacs.toFixed(1).padStart(7)} GMAC/s  ${e.vsFp32.toFixed(2).padStart(6)}x fp32  (±${e.rme.toFixed(1)}%)`);
  }
  const out = path.join(__dirname, 'results', QUICK ? 'kernels-quick.json' : 'kernels.json');
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, JSON.stringify(results, null, 1));
  console.log(`\nwrote ${path.relative(process.cwd(), out)}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
