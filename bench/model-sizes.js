#!/usr/bin/env node
// Model size on disk: the fp32 weights of each benchmark model against its .tern files (FGQ
// ternary N = 4, 16, 64, 4-bit N = 16, int8, in their default forms: folded ternary, group-scaled
// 4-bit; and the group-scaled form of ternary N = 4 and 64 for comparison),
// with bits per weight. Quantizes what build/bench-cache does not hold yet (a few seeded
// calibration inputs: sizes do not depend on the data). Writes bench/results/model-sizes.json and
// the README table between <!-- model-sizes:start --> and <!-- model-sizes:end -->.
//
//   npm run prepare && node bench/model-sizes.js [--models a,b]
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { quantize, Tensor } = require('../dist');
const { loadOnnxModel } = require('../dist/onnx');

const root = path.join(__dirname, '..');
const MODELS = {
  'fashion-mnist-resnet': { file: 'models/fashion-mnist-resnet.onnx', input: [1, 28, 28] },
  resnet18: { file: 'build/models/resnet18.onnx', input: [3, 224, 224] },
  resnet50: { file: 'build/models/resnet50.onnx', input: [3, 224, 224] },
  mobilenet_v2: { file: 'build/models/mobilenet_v2.onnx', input: [3, 224, 224] },
  'mlp-4x4096': { file: 'build/models/mlp-4x4096.onnx', input: [4096], allInner: true },
};
const MODES = [
  { id: 'int8', weights: 'int8' },
  { id: 'int4-g16', weights: 'int4', groupSize: 16 },
  { id: 'ternary-g4', weights: 'ternary', groupSize: 4 },
  { id: 'ternary-g16', weights: 'ternary', groupSize: 16 },
  { id: 'ternary-g64', weights: 'ternary', groupSize: 64 },
  { id: 'ternary-g4-group-scaled', weights: 'ternary', groupSize: 4, form: 'group-scaled' },
  { id: 'ternary-g64-group-scaled', weights: 'ternary', groupSize: 64, form: 'group-scaled' },
];

function arg(name) {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
}

/** Weights of Conv/Gemm/MatMul (the layers quantize() rewrites) and all float parameters. */
function countWeights(graph) {
  let layer = 0;
  let all = 0;
  const layerInputs = new Set();
  for (const n of graph.nodes) if (['Conv', 'Gemm', 'MatMul'].includes(n.opType) && n.inputs[1]) layerInputs.add(n.inputs[1]);
  for (const [name, t] of graph.initializers) {
    if (t.dtype !== 'float32') continue;
    all += t.data.length;
    if (layerInputs.has(name)) layer += t.data.length;
  }
  return { layer, all };
}

async function main() {
  const only = arg('--models')?.split(',');
  const cache = path.join(root, 'build', 'bench-cache');
  const cached = fs.existsSync(cache) ? fs.readdirSync(cache) : [];
  const rows = [];
  for (const [name, m] of Object.entries(MODELS)) {
    if (only && !only.includes(name)) continue;
    const file = path.join(root, m.file);
    if (!fs.existsSync(file)) {
      console.error(`model-sizes: ${m.file} missing, skipped`);
      continue;
    }
    const weights = countWeights(loadOnnxModel(fs.readFileSync(file), { basePath: path.dirname(file) }));
    const row = { model: name, weights: weights.all, fp32Bytes: weights.all * 4, sizes: {} };
    for (const mode of MODES) {
      const hit = !mode.form && cached.find((f) => f.startsWith(`${name}.${mode.id}.`) && f.endsWith('.tern'));
      let bytes;
      if (hit) {
        bytes = fs.statSync(path.join(cache, hit)).size;
      } else {
        const n = m.input.reduce((a, b) => a * b, 1);
        let seed = 1;
        const data = Float32Array.from({ length: 2 * n }, () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32));
        const q = await quantize(file, { weights: mode.weights, groupSize: mode.groupSize, form: mode.form, calibration: new Tensor('float32', data, [2, ...m.input]), keepEdgeLayers8bit: !m.allInner });
        bytes = q.toBuffer().byteLength;
      }
      row.sizes[mode.id] = { bytes, bitsPerWeight: +((bytes * 8) / weights.all).toFixed(2), vsFp32: +(row.fp32Bytes / bytes).toFixed(2) };
      console.error(`model-sizes: ${name} ${mode.id} ${(bytes / 1e6).toFixed(2)} MB`);
    }
    rows.push(row);
  }
  const out = { date: new Date().toISOString(), note: 'bytes of the .tern file (graph, packed codes, scales, biases, edge layers) over the fp32 parameter count', rows };
  fs.writeFileSync(path.join(root, 'bench', 'results', 'model-sizes.json'), JSON.stringify(out, null, 2) + '\n');

  const head = ['model', 'fp32', ...MODES.map((x) => x.id)];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  for (const r of rows) {
    const cells = [r.model, `${(r.fp32Bytes / 1e6).toFixed(2)} MB`];
    for (const mode of MODES) {
      const s = r.sizes[mode.id];
      cells.push(`${(s.bytes / 1e6).toFixed(2)} MB (${s.bitsPerWeight} b/w, ${s.vsFp32}x smaller)`);
    }
    lines.push(`| ${cells.join(' | ')} |`);
  }
  const table = lines.join('\n');
  console.log(table);
  const readme = path.join(root, 'README.md');
  const text = fs.readFileSync(readme, 'utf8');
  const a = text.indexOf('<!-- model-sizes:start -->');
  const b = text.indexOf('<!-- model-sizes:end -->');
  if (a >= 0 && b > a) {
    fs.writeFileSync(readme, `${text.slice(0, a)}<!-- model-sizes:start -->\n${table}\n${text.slice(b)}`);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
