#!/usr/bin/env node
// Accuracy of each FGQ method on the embedded Fashion-MNIST model, all 10,000 test images,
// 8-bit activations, 256 calibration images: for N = 4, 8, 16, 64, the paper's thresholds
// (exact, TWN, asymmetric) beside each data-aware method alone, all three together, and the best
// combination. Writes bench/results/data-aware.json; `--render` prints the README table from it.
//   node bench/data-aware.js [--count N] [--render]
'use strict';
const path = require('node:path');
const fs = require('node:fs');
const OUT = path.join(__dirname, 'results', 'data-aware.json');

const METHODS = [
  ['exact', { threshold: 'exact' }],
  ['TWN', { threshold: 'twn' }],
  ['asymmetric', { weights: 'ternary-asym' }],
  ['error feedback', { errorFeedback: true }],
  ['refit scales', { refitScales: true }],
  ['bias correction', { biasCorrection: true }],
  ['data-aware (all three)', { dataAware: true }],
  ['best: asym + data-aware + MSE clipping', { weights: 'ternary-asym', dataAware: true, calibrate: 'mse' }],
];
const GROUPS = [4, 8, 16, 64];

function render(r) {
  const lines = [];
  lines.push(`Embedded model, top-1 (%) on ${r.count} test images; fp32 ${(r.fp32 * 100).toFixed(2)}, int8 ${(r.int8 * 100).toFixed(2)}. Ternary inner layers, 8-bit activations, edge layers int8, no retraining (\`node bench/data-aware.js\`, ${r.date.slice(0, 10)}).`);
  lines.push('');
  lines.push(`| method | ${GROUPS.map((g) => `N=${g}`).join(' | ')} |`);
  lines.push(`|---|${GROUPS.map(() => '---').join('|')}|`);
  for (const [name] of METHODS) {
    lines.push(`| ${name} | ${GROUPS.map((g) => { const c = r.rows.find((x) => x.method === name && x.groupSize === g); return c ? (c.top1 * 100).toFixed(2) : '-'; }).join(' | ')} |`);
  }
  return lines.join('\n');
}

async function main() {
  const args = process.argv.slice(2);
  if (args.includes('--render')) {
    console.log(render(JSON.parse(fs.readFileSync(OUT, 'utf8'))));
    return;
  }
  const { quantize, InferenceSession, Tensor, loadNpy } = require('../dist');
  const root = path.join(__dirname, '..');
  const model = path.join(root, 'models', 'fashion-mnist-resnet.onnx');
  const images = loadNpy(path.join(root, 'data', 'fashion-mnist-test-images.npy')).data;
  const labels = loadNpy(path.join(root, 'data', 'fashion-mnist-test-labels.npy')).data;
  const calib = loadNpy(path.join(root, 'data', 'fashion-mnist-calib-images.npy')).data;
  const ci = args.indexOf('--count');
  const count = ci >= 0 ? Number(args[ci + 1]) : labels.length;
  const calibration = new Tensor('float32', Float32Array.from(calib.subarray(0, 256 * 784), (v) => v / 255), [256, 1, 28, 28]);
  const x = new Tensor('float32', Float32Array.from(images.subarray(0, count * 784), (v) => v / 255), [count, 1, 28, 28]);
  const top1 = async (session) => {
    const logits = (await session.run({ image: x })).logits.data;
    await session.release();
    let c = 0;
    for (let i = 0; i < count; i++) {
      let b = 0;
      for (let k = 1; k < 10; k++) if (logits[i * 10 + k] > logits[i * 10 + b]) b = k;
      if (b === labels[i]) c++;
    }
    return c / count;
  };
  const fp32 = await top1(await InferenceSession.create(model));
  const int8 = await top1(await (await quantize(model, { weights: 'int8', calibration })).createSession());
  const rows = [];
  for (const groupSize of GROUPS) {
    for (const [method, o] of METHODS) {
      const t0 = Date.now();
      const q = await quantize(model, { weights: 'ternary', groupSize, calibration, ...o });
      const seconds = (Date.now() - t0) / 1000;
      const acc = await top1(await q.createSession());
      rows.push({ method, groupSize, top1: acc, quantizeSeconds: seconds });
      console.error(`N=${groupSize} ${method}: ${(acc * 100).toFixed(2)} (${seconds.toFixed(1)} s)`);
    }
  }
  const result = { date: new Date().toISOString(), count, fp32, int8, rows };
  fs.mkdirSync(path.dirname(OUT), { recursive: true });
  fs.writeFileSync(OUT, JSON.stringify(result, null, 1) + '\n');
  console.log(render(result));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
