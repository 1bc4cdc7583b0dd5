#!/usr/bin/env node
// For each model from tools/zoo/export_zoo.py (or any .onnx): ternion fp32 against onnxruntime
// fp32 on the same generated batch of 2 (every input, made as `ternion bench` makes them; largest
// absolute difference over the float outputs, and the reference's scale), then quantize() int8
// and ternary N=16 on 4 generated calibration samples and compare their outputs with fp32's
// (cosine; the weights are random, so this checks that the quantized graph runs and tracks fp32,
// not accuracy). A by-hand check, not part of CI (the models are large).
//
//   node tools/zoo/check-zoo.js [--shape D,D] [build/zoo/NAME.onnx ...]   (default: every .onnx in build/zoo;
//                                              --shape: per-sample dims where the model's are symbolic)
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const ternion = require('../../dist');
const { generatedInputs, modelInfo } = require('../../dist/bench/model-info');
const ort = require('onnxruntime-node');

/** Largest |difference| and the reference's largest |value| over every float output. */
function compare(ref, got) {
  let diff = 0, scale = 0;
  for (const [name, r] of Object.entries(ref)) {
    if (r.type !== 'float32') continue;
    const g = got[name].data;
    for (let i = 0; i < r.data.length; i++) {
      diff = Math.max(diff, Math.abs(r.data[i] - g[i]));
      scale = Math.max(scale, Math.abs(r.data[i]));
    }
  }
  return { diff, scale };
}

function cosine(ref, got) {
  let dot = 0, a2 = 0, b2 = 0;
  for (const [name, r] of Object.entries(ref)) {
    if (r.type !== 'float32') continue;
    const g = got[name].data;
    for (let i = 0; i < r.data.length; i++) {
      dot += r.data[i] * g[i];
      a2 += r.data[i] * r.data[i];
      b2 += g[i] * g[i];
    }
  }
  return dot / Math.sqrt(a2 * b2);
}

async function check(file, shape) {
  const name = path.basename(file, '.onnx');
  // Every input generated as `ternion bench` makes them (seeded uniform [0, 1) images, token
  // ids inside their embedding table, ones for masks), a batch of 2.
  const info = modelInfo(file, shape ? { shape } : {});
  const feeds = generatedInputs(info.inputs, 2);
  const toOrt = (f) => Object.fromEntries(Object.entries(f).map(([k, t]) => [k, new ort.Tensor(t.type, t.data, t.dims)]));
  const line = [name];
  const o = await ort.InferenceSession.create(file);
  const ref = await o.run(toOrt(feeds));
  let t0 = performance.now();
  const s = await ternion.InferenceSession.create(file);
  line.push(`load ${(performance.now() - t0).toFixed(0)} ms`);
  const { diff, scale } = compare(ref, await s.run(feeds));
  line.push(`fp32 max |diff| ${diff.toExponential(2)} (max |output| ${scale.toPrecision(3)})`);
  const calibration = generatedInputs(info.inputs, 4, 777);
  for (const [label, options] of [['int8', { weights: 'int8' }], ['ternary N=16', { weights: 'ternary', groupSize: 16 }]]) {
    t0 = performance.now();
    const q = await ternion.quantize(new Uint8Array(fs.readFileSync(file)), { ...options, calibration });
    const qs = await ternion.InferenceSession.create(q.toBuffer());
    line.push(`${label} cosine ${cosine(ref, await qs.run(feeds)).toFixed(3)} (${(performance.now() - t0).toFixed(0)} ms)`);
    await qs.release();
  }
  await s.release();
  return line.join(' | ');
}

(async () => {
  const dir = path.join(__dirname, '..', '..', 'build', 'zoo');
  const args = process.argv.slice(2);
  const at = args.indexOf('--shape');
  const shape = at >= 0 ? args.splice(at, 2)[1].split(',').map(Number) : undefined;
  const files = args.length ? args : fs.readdirSync(dir).filter((f) => f.endsWith('.onnx')).sort().map((f) => path.join(dir, f));
  for (const f of files) {
    try {
      console.log(await check(f, shape));
    } catch (e) {
      console.log(`${path.basename(f)} | ${e.code ?? 'ERROR'} ${e.message}`);
    }
  }
})();
