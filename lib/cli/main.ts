#!/usr/bin/env node
// The `ternion` command: one file per command, thin over the public API.
import { TernionError } from '../errors';
import { cpuInfo } from '../kernels';
import { runDemo } from './demo';

const USAGE = `usage: ternion <command>

commands:
  demo [--count N] [--threads T] [--json]   the embedded Fashion-MNIST model on its test set, per precision
  info                                      version, Node ABI, CPU features and the kernel set chosen`;

function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

function intFlag(args: string[], name: string): number | undefined {
  const v = flag(args, name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new TernionError('ERR_INVALID_ARGUMENT', `Expected a positive integer for ${name} but received "${v}"`);
  return n;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...args] = argv;
  if (command === 'demo') {
    const json = args.includes('--json');
    const rows = await runDemo({ count: intFlag(args, '--count'), threads: intFlag(args, '--threads'), log: json ? undefined : (l) => console.log(l) });
    if (json) console.log(JSON.stringify({ model: 'fashion-mnist-resnet', rows }, null, 1));
    return 0;
  }
  if (command === 'info') {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const pkg = require('../../package.json');
    console.log(JSON.stringify({ version: pkg.version, node: process.version, abi: process.versions.modules, napi: process.versions.napi, ...cpuInfo() }, null, 1));
    return 0;
  }
  console.error(USAGE);
  return command === undefined || command === '--help' ? 0 : 2;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => {
    console.error(e instanceof TernionError ? `ternion: ${e.code}: ${e.message}` : e);
    process.exit(1);
  },
);
