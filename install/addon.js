#!/usr/bin/env node
// npm install hook: use the prebuilt addon for this platform when it loads here, otherwise build
// from source with cmake-js (needs cmake and a C++17 compiler) into build/, which the loader
// (lib/native.ts) then prefers. TERNION_BUILD_FROM_SOURCE=1 always builds. A git checkout has
// no prebuilds/, so it always builds.
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const prebuilt = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`, 'ternion.node');

function prebuiltLoads() {
  if (process.env.TERNION_BUILD_FROM_SOURCE === '1' || !fs.existsSync(prebuilt)) return false;
  try {
    require(prebuilt).cpuInfo();
    return true;
  } catch (err) {
    console.error(`ternion: the prebuilt addon does not load here (${String(err.message).split('\n')[0]}); building from source`);
    return false;
  }
}

if (prebuiltLoads()) {
  console.error(`ternion: using the prebuilt addon prebuilds/${process.platform}-${process.arch}`);
} else {
  const cmakeJs = require.resolve('cmake-js/bin/cmake-js', { paths: [root] });
  execFileSync(process.execPath, [cmakeJs, 'compile', '--out', 'build'], { cwd: root, stdio: 'inherit' });
}
