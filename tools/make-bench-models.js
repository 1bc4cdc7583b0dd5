#!/usr/bin/env node
// Models of the whole-model benchmark (npm run bench), made without Python, after
// `npm run prepare` has built dist/:
//   build/models/mlp-4x4096.onnx        four 4096x4096 Gemm layers (transB=1) with ReLU between,
//                                        seeded He-scaled weights, input x [batch, 4096]
//   build/models/<name>.qdq.onnx         the static QDQ int8 model onnxruntime runs as its int8
//                                        engine, for resnet18, resnet50, mobilenet_v2 (from
//                                        tools/export_torchvision_models.py), the MLP and the
//                                        embedded models/fashion-mnist-resnet.onnx (see
//                                        lib/bench/qdq.ts for what is quantized and how)
// Calibration: 256 real Fashion-MNIST images for the embedded model, seeded uniform [0, 1)
// inputs for the others. Files that exist are kept unless --force.
//
//   node tools/make-bench-models.js [--only mlp,fashion,resnet18,...] [--out DIR] [--force]
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.join(__dirname, '..');
const dist = (p) => require(path.join(ROOT, 'dist', p));

/** xorshift32, seeded: uniform floats in [0, 1). */
function xorshift(seed) {
  let s = seed >>> 0 || 0x9e3779b9;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}

/** Seeded uniform [0, 1) float32 data of `count` values. */
function uniformData(count, seed) {
  const r = xorshift(seed);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = r();
  return out;
}

function floatInit(name, dims, data) {
  return { name, data_type: 1, dims, raw_data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

function valueInfo(name, dims) {
  return { name, type: { tensor_type: { elem_type: 1, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d })) } } } };
}

/**
 * The bytes of an MLP: `layers` Gemm layers of width x width (W stored [out][in], transB=1),
 * ReLU between them, uniform He-scaled weights (variance 2 / width), small biases.
 */
function mlpModelBytes({ layers = 4, width = 4096, seed = 4096 } = {}) {
  const { ModelProtoType } = dist('onnx/proto.js');
  const r = xorshift(seed);
  const bound = Math.sqrt(6 / width); // uniform(-b, b) has variance b^2 / 3 = 2 / width
  const nodes = [];
  const inits = [];
  let x = 'x';
  for (let l = 0; l < layers; l++) {
    const w = new Float32Array(width * width);
    for (let i = 0; i < w.length; i++) w[i] = (r() * 2 - 1) * bound;
    const b = new Float32Array(width);
    for (let i = 0; i < width; i++) b[i] = (r() * 2 - 1) * 0.01;
    inits.push(floatInit(`fc${l}.weight`, [width, width], w), floatInit(`fc${l}.bias`, [width], b));
    const last = l === layers - 1;
    const y = last ? 'y' : `fc${l}`;
    nodes.push({ op_type: 'Gemm', name: `fc${l}`, domain: '', input: [x, `fc${l}.weight`, `fc${l}.bias`], output: [y], attribute: [{ name: 'transB', type: 2, i: 1 }] });
    if (!last) nodes.push({ op_type: 'Relu', name: `relu${l}`, domain: '', input: [y], output: [`relu${l}`], attribute: [] });
    x = last ? y : `relu${l}`;
  }
  const model = {
    ir_version: 8,
    producer_name: 'ternion-make-bench-models',
    opset_import: [{ domain: '', version: 13 }],
    graph: { name: `mlp-${layers}x${width}`, node: nodes, initializer: inits, input: [valueInfo('x', ['batch', width])], output: [valueInfo('y', ['batch', width])] },
  };
  return ModelProtoType.encode(model).finish();
}

/** Calibration inputs of a benchmark model (a Tensor [count, ...]): real images for the embedded model, else seeded uniform. */
function calibrationFor(name, inputDims, count) {
  const { loadNpy, Tensor } = dist('index.js');
  if (name === 'fashion-mnist-resnet') {
    const x = loadNpy(path.join(ROOT, 'data', 'fashion-mnist-calib-images.npy'));
    const per = x.dims.slice(1).reduce((a, b) => a * b, 1);
    const n = Math.min(count, x.dims[0]);
    const data = Float32Array.from(x.data.subarray(0, n * per), (v) => v / 255);
    return new Tensor('float32', data, [n, ...x.dims.slice(1)]);
  }
  const per = inputDims.reduce((a, b) => a * b, 1);
  return new Tensor('float32', uniformData(count * per, 7 + count), [count, ...inputDims]);
}

/** What the benchmark runs: name, fp32 file, per-sample input dims, calibration count. */
function benchModels(dir) {
  return [
    { key: 'fashion', name: 'fashion-mnist-resnet', fp32: path.join(ROOT, 'models', 'fashion-mnist-resnet.onnx'), dims: [1, 28, 28], calib: 256 },
    { key: 'mlp', name: 'mlp-4x4096', fp32: path.join(dir, 'mlp-4x4096.onnx'), dims: [4096], calib: 16 },
    { key: 'mobilenet_v2', name: 'mobilenet_v2', fp32: path.join(dir, 'mobilenet_v2.onnx'), dims: [3, 224, 224], calib: 8 },
    { key: 'resnet18', name: 'resnet18', fp32: path.join(dir, 'resnet18.onnx'), dims: [3, 224, 224], calib: 8 },
    { key: 'resnet50', name: 'resnet50', fp32: path.join(dir, 'resnet50.onnx'), dims: [3, 224, 224], calib: 8 },
  ].map((m) => ({ ...m, qdq: path.join(dir, `${m.name}.qdq.onnx`) }));
}

function writeAtomic(file, bytes) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file + '.tmp', bytes);
  fs.renameSync(file + '.tmp', file);
}

/** Writes the QDQ model of one benchmark model. */
async function makeQdqFile(m, options = {}) {
  const { makeQdqModel } = dist('bench/qdq.js');
  const { requireOrt } = dist('bench/ort.js');
  const calibration = calibrationFor(m.name, m.dims, options.calib ?? m.calib);
  const { bytes, report } = await makeQdqModel(fs.readFileSync(m.fp32), { ort: requireOrt('the QDQ model'), calibration, weightMax: options.weightMax });
  writeAtomic(m.qdq, bytes);
  return report;
}

async function main(argv) {
  const force = argv.includes('--force');
  const at = (flag) => (argv.includes(flag) ? argv[argv.indexOf(flag) + 1] : undefined);
  const dir = path.resolve(at('--out') ?? path.join(ROOT, 'build', 'models'));
  const only = at('--only')?.split(',');
  const models = benchModels(dir).filter((m) => !only || only.includes(m.key) || only.includes(m.name));
  for (const m of models) {
    if (m.key === 'mlp' && (force || !fs.existsSync(m.fp32))) {
      const t = Date.now();
      writeAtomic(m.fp32, mlpModelBytes());
      console.log(`wrote ${path.relative(process.cwd(), m.fp32)} (${(fs.statSync(m.fp32).size / 1e6).toFixed(1)} MB, ${Date.now() - t} ms)`);
    }
    if (!fs.existsSync(m.fp32)) {
      console.log(`skip ${m.name}: ${path.relative(process.cwd(), m.fp32)} is missing (made by tools/export_torchvision_models.py)`);
      continue;
    }
    if (!force && fs.existsSync(m.qdq)) {
      console.log(`${path.relative(process.cwd(), m.qdq)} exists`);
      continue;
    }
    const t = Date.now();
    const report = await makeQdqFile(m);
    console.log(`wrote ${path.relative(process.cwd(), m.qdq)} (${(fs.statSync(m.qdq).size / 1e6).toFixed(1)} MB, ${Date.now() - t} ms): ` +
      `${report.quantizedWeights} int8 weights, ${report.quantizedActivations} uint8 activations, ${report.foldedBatchNorms} BatchNorms folded, ${report.calibrationSamples} calibration samples, weights in ±${report.weightMax}`);
  }
}

module.exports = { xorshift, uniformData, mlpModelBytes, calibrationFor, benchModels, makeQdqFile };

if (require.main === module) {
  main(process.argv.slice(2)).catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
