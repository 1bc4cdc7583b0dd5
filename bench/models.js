#!/usr/bin/env node
// Whole-model benchmark (npm run bench): onnxruntime-node fp32 and int8 (static QDQ) against
// ternion fp32, int8, FGQ ternary N=4/16/64 and 4-bit N=16, on ResNet-18, ResNet-50,
// MobileNetV2 (224x224, seeded weights), the embedded Fashion-MNIST model and an MLP of four
// 4096x4096 layers; batch 1, 8, 64; 1 and 2 threads; all in this one process, timed with
// benchmark.js (lib/bench/compare.ts, the code `ternion bench` runs too). Memory is measured
// per engine in a fresh child process (lib/bench/memory-probe.ts), the CPU's limits by
// bench/peak-probe.cc. Writes bench/results/models.json (--quick: models-quick.json);
// `node bench/render-models.js` turns it into the README table and bench/results/models.svg.
//
//   node bench/models.js [--quick] [--models fashion,mlp,mobilenet_v2,resnet18,resnet50]
//     [--batches 1,8,64] [--threads 1,2] [--engines ort-fp32,...] [--max-time S] [--all]
//     [--no-memory] [--no-peak] [--out FILE]
// Models missing from build/models are made first (tools/make-bench-models.js; the torchvision
// ones come from tools/export_torchvision_models.py). Quantized models are cached in
// build/bench-cache/, keyed by model, options, calibration data and the quantizer's code.
'use strict';
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.join(__dirname, '..');
const dist = (p) => require(path.join(ROOT, 'dist', p));
const { cpuInfo, loadNpy, Tensor } = dist('index.js');
const { parseEngines, prepareEngines, DEFAULT_ENGINES } = dist('bench/engines.js');
const { compareEngines } = dist('bench/compare.js');
const { modelInfo, generatedInputs } = dist('bench/model-info.js');
const { probeMemory, MEMORY_METHOD } = dist('bench/memory-probe.js');
const { loadOrt } = dist('bench/ort.js');
const { benchModels, calibrationFor, mlpModelBytes, makeQdqFile } = require('../tools/make-bench-models.js');
const { runPeakProbe } = require('./peak-probe.js');

/** Batch 64 at one thread on the two ResNets costs most of the full run (minutes per engine); --all runs it. */
const EXPENSIVE = [
  { model: 'resnet18', batch: 64, threads: 1 },
  { model: 'resnet50', batch: 64, threads: 1 },
];

function parseArgs(argv) {
  const at = (flag) => (argv.includes(flag) ? argv[argv.indexOf(flag) + 1] : undefined);
  const list = (flag, fallback) => (at(flag) ?? fallback).split(',').map((s) => s.trim()).filter(Boolean);
  const quick = argv.includes('--quick');
  const known = new Set(['--quick', '--all', '--no-memory', '--no-peak', '--models', '--batches', '--threads', '--engines', '--max-time', '--out']);
  for (let i = 0; i < argv.length; i++) {
    if (!known.has(argv[i])) throw new Error(`unknown argument ${argv[i]}; see the header of bench/models.js`);
    if (!['--quick', '--all', '--no-memory', '--no-peak'].includes(argv[i])) i++;
  }
  return {
    quick,
    all: argv.includes('--all'),
    memory: !argv.includes('--no-memory'),
    peak: !argv.includes('--no-peak'),
    models: list('--models', quick ? 'fashion,mlp,resnet18' : 'fashion,mlp,mobilenet_v2,resnet18,resnet50'),
    batches: list('--batches', quick ? '1,8' : '1,8,64').map(Number),
    threads: list('--threads', quick ? '1' : '1,2').map(Number),
    engines: parseEngines(at('--engines') ?? DEFAULT_ENGINES.join(',')),
    maxTime: Number(at('--max-time') ?? (quick ? 0.5 : 1)),
    out: at('--out') ?? path.join(__dirname, 'results', quick ? 'models-quick.json' : 'models.json'),
  };
}

/** Makes the MLP and the QDQ models that are missing; returns the models that can run. */
async function ensureModels(wanted) {
  const dir = path.join(ROOT, 'build', 'models');
  const models = benchModels(dir).filter((m) => wanted.includes(m.key) || wanted.includes(m.name));
  const ready = [];
  for (const m of models) {
    if (m.key === 'mlp' && !fs.existsSync(m.fp32)) {
      console.log(`making ${path.relative(ROOT, m.fp32)}`);
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(m.fp32, mlpModelBytes());
    }
    if (!fs.existsSync(m.fp32)) {
      console.log(`skip ${m.name}: ${path.relative(ROOT, m.fp32)} is missing (run /usr/bin/python3 tools/export_torchvision_models.py)`);
      continue;
    }
    if (loadOrt().ort && !fs.existsSync(m.qdq)) {
      console.log(`making ${path.relative(ROOT, m.qdq)}`);
      await makeQdqFile(m);
    }
    ready.push(m);
  }
  return ready;
}

/** One batch of benchmark input: real test images for the embedded model, else seeded uniform (the default). */
/** One batch of the model's single input: Fashion-MNIST test images for the embedded model, else seeded uniform [0, 1). */
function inputFor(m, info, batch) {
  const input = info.inputs[0];
  if (m.name !== 'fashion-mnist-resnet') return generatedInputs(info.inputs, batch);
  const x = loadNpy(path.join(ROOT, 'data', 'fashion-mnist-test-images.npy'));
  const per = x.dims.slice(1).reduce((a, b) => a * b, 1);
  return { [input.name]: new Tensor('float32', Float32Array.from(x.data.subarray(0, batch * per), (v) => v / 255), [batch, ...input.sampleDims]) };
}

function limitFor(engineId, peak) {
  if (!peak || !peak.compute) return null;
  const kind = engineId === 'fp32' || engineId === 'ort-fp32' ? 'fp32' : 'int8';
  const rows = peak.compute.filter((c) => c.kind === kind);
  if (rows.length === 0) return null;
  return rows.reduce((a, b) => (b.gmacPerSecond > a.gmacPerSecond ? b : a));
}

function fmt(r) {
  if (r.error) return `failed: ${r.error}`;
  const vs = (x, what) => (x === null ? '' : `  ${x.toFixed(2)}x ${what}`);
  return `${r.medianMs.toFixed(2)} ms, ${r.imagesPerSecond.toFixed(1)} images/s${vs(r.vsOrtFp32, 'ort fp32')}${vs(r.vsOrtInt8, 'ort int8')}  (${r.samplesMs.length} runs)`;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const started = Date.now();
  const cpu = cpuInfo();
  const ort = loadOrt();
  if (!ort.ort) console.log(`onnxruntime-node could not be loaded (${ort.error}): its engines are left out`);
  const engines = opts.engines.filter((e) => ort.ort || e.kind !== 'ort');
  const result = {
    date: new Date().toISOString(),
    host: {
      cpuModel: os.cpus()[0]?.model ?? 'unknown', cores: os.cpus().length, memoryGiB: +(os.totalmem() / 2 ** 30).toFixed(1),
      cpuFeatures: cpu.features, kernels: cpu.kernels, kernelsCompiled: cpu.compiled, kernelsSupported: cpu.supported,
    },
    node: process.version,
    onnxruntime: ort.version,
    ternion: require('../package.json').version,
    benchmarkJs: require('benchmark/package.json').version,
    loadAverage: { start: os.loadavg() },
    settings: {
      quick: opts.quick, models: opts.models, batches: opts.batches, threads: opts.threads, engines: engines.map((e) => e.id),
      timing: { minSamples: 3, maxTime: opts.maxTime, warmUpRuns: 1 },
      skipped: opts.all ? [] : EXPENSIVE.filter((x) => opts.models.includes(x.model) && opts.batches.includes(x.batch) && opts.threads.includes(x.threads)),
      memory: opts.memory ? 'per engine at batch 1, 1 thread' : 'not measured',
    },
    methods: {
      latency: 'median of the timed runs (benchmark.js, defer: true; at least minSamples runs, then runs until maxTime seconds more have passed), after one warm-up run; each engine in its own session, created, timed and released in turn, in one process',
      ortSessionOptions: { intraOpNumThreads: 'T', interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all' },
      ternionSessionOptions: { threads: 'T' },
      quantization: 'ternion: quantize(model, { weights, groupSize, calibration }) with the defaults otherwise (first Conv and last Gemm int8); MLP: keepEdgeLayers8bit false (it stands for inner transformer FC layers). onnxruntime int8: the static QDQ model of tools/make-bench-models.js (lib/bench/qdq.ts), same calibration data',
      macs: 'Conv/Gemm/MatMul multiply-accumulates per sample from the model shapes (lib/bench/macs.ts); GMAC/s = MACs x batch / median',
      limits: 'peak-probe: one core; a T-thread row is compared with T x the one-core peak. fp32 engines against the fp32 FMA peak, the int8 / ternary / 4-bit engines against the best int8 dot-product peak (their MACs counted as the model\'s, not as the instructions they use)',
      memory: MEMORY_METHOD,
    },
    peak: null,
    models: [],
    results: [],
  };
  const save = (file) => {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, JSON.stringify(result, null, 1));
  };
  const partial = opts.out.replace(/\.json$/, '.tmp.json');
  if (opts.peak) {
    console.log('peak-probe: one core');
    result.peak = runPeakProbe({ threads: Math.max(...opts.threads) });
    for (const c of result.peak.compute ?? []) console.log(`  ${c.name.padEnd(28)} ${c.gmacPerSecond.toFixed(1)} GMAC/s`);
    if (result.peak.memory) console.log(`  ${result.peak.memory.name.padEnd(28)} ${result.peak.memory.gbPerSecond.toFixed(1)} GB/s`);
    const { threads: scaledTo, ...scaling } = result.peak.scaling ?? {};
    for (const [name, x] of Object.entries(scaling)) console.log(`  scaling 1 -> ${scaledTo} threads, ${name}: ${x.toFixed(2)}x`);
  }
  const models = await ensureModels(opts.models);
  for (const m of models) {
    const info = modelInfo(m.fp32);
    const input = info.inputs[0];
    const calibration = calibrationFor(m.name, input.sampleDims, m.calib);
    const quantizeOptions = m.key === 'mlp' ? { keepEdgeLayers8bit: false } : {};
    console.log(`\n${m.name}: input ${input.name} [B, ${input.sampleDims.join(', ')}], ${(info.macsPerSample / 1e9).toFixed(3)} GMAC per sample`);
    const prepared = await prepareEngines(engines, {
      model: m.fp32, calibration, quantizeOptions, cacheDir: path.join(ROOT, 'build', 'bench-cache'),
      qdqModel: fs.existsSync(m.qdq) ? m.qdq : undefined, log: (line) => console.log(`  ${line}`),
    });
    const entry = {
      key: m.key, name: m.name, file: path.relative(ROOT, m.fp32), qdqFile: fs.existsSync(m.qdq) ? path.relative(ROOT, m.qdq) : null,
      inputName: input.name, sampleDims: input.sampleDims, macsPerSample: info.macsPerSample,
      calibration: { samples: calibration.dims[0], data: m.name === 'fashion-mnist-resnet' ? 'Fashion-MNIST calibration images' : 'seeded uniform [0, 1)' },
      input: m.name === 'fashion-mnist-resnet' ? 'Fashion-MNIST test images' : 'seeded uniform [0, 1)',
      quantizeOptions,
      engines: Object.fromEntries(prepared.map((p) => [p.spec.id, { label: p.spec.label, modelBytes: p.modelBytes, prepareSeconds: p.prepareSeconds, cached: p.cached }])),
      memory: {},
    };
    result.models.push(entry);
    if (opts.memory) {
      for (const p of prepared) {
        try {
          entry.memory[p.spec.id] = await probeMemory(p, { threads: 1, inputs: [{ name: input.name, type: 'float32', dims: [1, ...input.sampleDims], fill: 0.5 }] });
          console.log(`  memory ${p.spec.label}: ${entry.memory[p.spec.id].rssMB.toFixed(0)} MB resident, peak ${entry.memory[p.spec.id].peakRssMB.toFixed(0)} MB`);
        } catch (e) {
          entry.memory[p.spec.id] = { error: e.message };
          console.log(`  memory ${p.spec.label}: failed: ${e.message}`);
        }
      }
    }
    for (const threads of opts.threads) {
      for (const batch of opts.batches) {
        if (result.settings.skipped.some((x) => x.model === m.key && x.batch === batch && x.threads === threads)) {
          console.log(`  batch ${batch}, ${threads} thread(s): skipped (--all runs it)`);
          continue;
        }
        console.log(`  batch ${batch}, ${threads} thread(s):`);
        const rows = await compareEngines(prepared, {
          batch, threads, inputs: inputFor(m, info, batch), macsPerSample: info.macsPerSample, timing: { minSamples: 3, maxTime: opts.maxTime, timer: 'benchmark' },
        });
        for (const row of rows) {
          const { rssMB, peakRssMB, ...r } = row; // memory is probed per model above, not per row
          const limit = limitFor(r.engine, result.peak);
          const bytes = entry.engines[r.engine].modelBytes;
          result.results.push({
            model: m.key, batch, threads, ...r,
            limit: limit ? { name: limit.name, gmacPerSecond: limit.gmacPerSecond * threads } : null,
            fractionOfLimit: limit && r.gmacPerSecond !== null ? r.gmacPerSecond / (limit.gmacPerSecond * threads) : null,
            // Weight bytes streamed per second if every run reads the model's weights once (batch 1: memory-bound layers).
            modelGBPerSecond: r.medianMs === null ? null : bytes / (r.medianMs / 1e3) / 1e9,
          });
          console.log(`    ${r.label.padEnd(26)} ${fmt(r)}`);
        }
        save(partial);
      }
    }
  }
  result.loadAverage.end = os.loadavg();
  result.processPeakRssMB = process.resourceUsage().maxRSS / 1024;
  result.durationSeconds = (Date.now() - started) / 1e3;
  save(opts.out);
  fs.rmSync(partial, { force: true });
  console.log(`\nwrote ${path.relative(process.cwd(), opts.out)} in ${(result.durationSeconds / 60).toFixed(1)} min (load average ${result.loadAverage.start.map((x) => x.toFixed(2)).join(' ')} -> ${result.loadAverage.end.map((x) => x.toFixed(2)).join(' ')})`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
