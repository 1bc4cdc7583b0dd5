#!/usr/bin/env node
// For each model from tools/zoo/export_zoo.py: ternion fp32 against onnxruntime fp32 on the same
// seeded batch of 2 (largest absolute difference, and the reference's scale), then quantize()
// int8 and ternary N=16 on 4 seeded calibration images and compare their logits with fp32's
// (cosine; the weights are random, so this checks that the quantized graph runs and tracks fp32,
// not accuracy). A by-hand check, not part of CI (the models are large).
//
//   node tools/zoo/check-zoo.js [build/zoo/NAME.onnx ...]      (default: every .onnx in build/zoo)
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const ternion = require('../../dist');
const ort = require('onnxruntime-node');

async function check(file) {
  const name = path.basename(file, '.onnx');
  const size = name.startsWith('inception') ? 299 : 224;
  const dims = [2, 3, size, size];
  let seed = 1;
  const rnd = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  const x = new Float32Array(dims.reduce((a, b) => a * b, 1)).map(rnd);
  const line = [name];
  const o = await ort.InferenceSession.create(file);
  const ref = (await o.run({ image: new ort.Tensor('float32', x, dims) })).logits.data;
  let t0 = performance.now();
  const s = await ternion.InferenceSession.create(file);
  line.push(`load ${(performance.now() - t0).toFixed(0)} ms`);
  const got = (await s.run({ image: new ternion.Tensor('float32', x, dims) })).logits.data;
  let diff = 0, scale = 0;
  for (let i = 0; i < ref.length; i++) {
    diff = Math.max(diff, Math.abs(ref[i] - got[i]));
    scale = Math.max(scale, Math.abs(ref[i]));
  }
  line.push(`fp32 max |diff| ${diff.toExponential(2)} (max |logit| ${scale.toPrecision(3)})`);
  const calibration = new ternion.Tensor('float32', new Float32Array(4 * 3 * size * size).map(rnd), [4, 3, size, size]);
  for (const [label, options] of [['int8', { weights: 'int8' }], ['ternary N=16', { weights: 'ternary', groupSize: 16 }]]) {
    t0 = performance.now();
    const q = await ternion.quantize(new Uint8Array(fs.readFileSync(file)), { ...options, calibration });
    const qs = await ternion.InferenceSession.create(q.toBuffer());
    const y = (await qs.run({ image: new ternion.Tensor('float32', x, dims) })).logits.data;
    let dot = 0, a2 = 0, b2 = 0;
    for (let i = 0; i < ref.length; i++) {
      dot += ref[i] * y[i];
      a2 += ref[i] * ref[i];
      b2 += y[i] * y[i];
    }
    line.push(`${label} cosine ${(dot / Math.sqrt(a2 * b2)).toFixed(3)} (${(performance.now() - t0).toFixed(0)} ms)`);
    await qs.release();
  }
  await s.release();
  return line.join(' | ');
}

(async () => {
  const dir = path.join(__dirname, '..', '..', 'build', 'zoo');
  const files = process.argv.length > 2 ? process.argv.slice(2) : fs.readdirSync(dir).filter((f) => f.endsWith('.onnx')).sort().map((f) => path.join(dir, f));
  for (const f of files) {
    try {
      console.log(await check(f));
    } catch (e) {
      console.log(`${path.basename(f)} | ${e.code ?? 'ERROR'} ${e.message}`);
    }
  }
})();
