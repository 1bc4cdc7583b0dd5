#!/usr/bin/env node
// Builds the prebuilt addons shipped in the npm package: prebuilds/<platform>-<arch>/ternion.node.
// One x86-64 binary serves every x86-64 CPU (kernels are picked at run time); the arm64 one is
// cross-built with Debian's g++-aarch64-linux-gnu. Both use Node-API (ABI-stable), so one binary
// per platform and architecture covers every supported Node version.
//
//   npm run build:prebuilds          # linux-x64 and linux-arm64 (when the cross compiler exists)
//                                    (not "prebuild": npm would run that before every `npm run build`)
//   node tools/prebuild.js x64       # just one
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const cmakeJs = path.join(root, 'node_modules', 'cmake-js', 'bin', 'cmake-js');

function have(cmd) {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

// Newest modification time of the native sources and the build files.
function newestSource() {
  let newest = fs.statSync(path.join(root, 'CMakeLists.txt')).mtimeMs;
  const walk = (dir) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.(cc|h)$/.test(e.name)) newest = Math.max(newest, fs.statSync(p).mtimeMs);
    }
  };
  walk(path.join(root, 'native'));
  return newest;
}

// The host's `npm install` build (build/Release, same flags: cmake-js compile --out build) when it
// is newer than every source: copying it saves a second identical compile.
function reusableHostBuild(arch) {
  const built = path.join(root, 'build', 'Release', 'ternion.node');
  if (arch !== process.arch || process.env.TERNION_PREBUILD_FRESH === '1' || !fs.existsSync(built)) return undefined;
  const cache = path.join(root, 'build', 'CMakeCache.txt');
  if (fs.existsSync(cache) && /TERNION_SANITIZE:BOOL=ON/.test(fs.readFileSync(cache, 'utf8'))) return undefined;
  return fs.statSync(built).mtimeMs > newestSource() ? built : undefined;
}

function build(arch) {
  const dest = path.join(root, 'prebuilds', `linux-${arch}`, 'ternion.node');
  const reuse = reusableHostBuild(arch);
  if (reuse) {
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    fs.copyFileSync(reuse, dest);
    if (have('strip')) execFileSync('strip', ['--strip-unneeded', dest]);
    console.error(`prebuild: linux-${arch} from the up-to-date ${path.relative(root, reuse)} (TERNION_PREBUILD_FRESH=1 recompiles)`);
    return true;
  }
  const out = path.join(root, 'build', `prebuild-linux-${arch}`);
  const args = [cmakeJs, 'compile', '--out', out, '--CDTERNION_BUILD_TESTS=OFF'];
  if (arch !== process.arch) {
    if (arch !== 'arm64' || !have('aarch64-linux-gnu-g++')) {
      console.error(`prebuild: skipping linux-${arch}: no cross compiler (apt-get install g++-aarch64-linux-gnu)`);
      return false;
    }
    args.push('--arch', 'arm64', `--CDCMAKE_TOOLCHAIN_FILE=${path.join(root, 'cmake', 'toolchain-aarch64.cmake')}`);
  }
  console.error(`prebuild: linux-${arch} ...`);
  execFileSync(process.execPath, args, { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
  const built = path.join(out, 'Release', 'ternion.node');
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  fs.copyFileSync(built, dest);
  const strip = arch === process.arch ? 'strip' : 'aarch64-linux-gnu-strip';
  if (have(strip)) execFileSync(strip, ['--strip-unneeded', dest]);
  console.error(`prebuild: wrote ${path.relative(root, dest)} (${(fs.statSync(dest).size / 1e6).toFixed(1)} MB)`);
  return true;
}

const wanted = process.argv.slice(2);
const arches = wanted.length ? wanted : ['x64', 'arm64'];
if (process.platform !== 'linux') {
  console.error('prebuild: only linux prebuilds are made here');
  process.exit(1);
}
let ok = true;
for (const arch of arches) ok = build(arch) && ok;
process.exit(ok || wanted.length === 0 ? 0 : 1);
