'use strict';
// Where the example gets ternion: the installed package when it runs inside a project that
// depends on ternion (`npm install ternion`), else this checkout's build (dist/, made by
// `npm run prepare`), so the example runs from the repository as it is.
const { dirname, join } = require('node:path');

let cached;

/** @returns {{ api: typeof import('../../dist'), root: string }} */
function resolveTernion() {
  if (cached) return cached;
  try {
    cached = { api: require('ternion'), root: dirname(require.resolve('ternion/package.json')) };
  } catch (e) {
    if (e.code !== 'MODULE_NOT_FOUND') throw e;
    const root = join(__dirname, '..', '..');
    cached = { api: require(join(root, 'dist')), root };
  }
  return cached;
}

/** The ternion module. */
function ternion() {
  return resolveTernion().api;
}

/** Path of the Fashion-MNIST model embedded in the ternion package. */
function embeddedModelPath() {
  return join(resolveTernion().root, 'models', 'fashion-mnist-resnet.onnx');
}

module.exports = { ternion, embeddedModelPath };
