#!/usr/bin/env node
// The `ternion` command: one file per command, thin over the public API. Exit status: 0 done,
// 1 an error (`ternion: CODE: message`), 2 a usage error (with the command's usage), 130 Ctrl-C.
import { TernionError } from '../errors';
import { UsageError, intValue, parseArgs, type CommandSpec, type ParsedArgs } from './args';
import { processIo, type Io } from './io';

// Command modules load on use, so `--help`, `info` and usage errors start fast.
/* eslint-disable @typescript-eslint/no-require-imports */
const load = {
  quantize: (): typeof import('./quantize-command') => require('./quantize-command'),
  eval: (): typeof import('./eval-command') => require('./eval-command'),
  run: (): typeof import('./run-command') => require('./run-command'),
  inspect: (): typeof import('./inspect-command') => require('./inspect-command'),
  bench: (): typeof import('./bench-command') => require('./bench-command'),
  demo: (): typeof import('./demo') => require('./demo'),
  kernels: (): typeof import('../kernels') => require('../kernels'),
};
/* eslint-enable @typescript-eslint/no-require-imports */

const USAGE = `usage: ternion <command> [options]      (ternion <command> --help for its options)

commands:
  quantize IN.onnx -o OUT.tern [--weights ternary|ternary-asym|int4|int8] [--group N|filter]
           [--threshold exact|twn] [--activations 8|4] [--calib X.npy|DIR] [--calib-count K]
           [--report R.json]                   FGQ-quantize an fp32 model to a .tern file
  eval MODEL --inputs X.npy --labels Y.npy [--batch B] [--json]
                                               top-1 / top-5 accuracy of a classifier
  run MODEL --input [NAME=]X.npy [-o OUT.npy]  run a model on .npy inputs
  run MODEL --batch-dir DIR [-o OUT.jsonl] [--workers N]
                                               every .npy / image of a folder over worker threads, JSON lines
  inspect MODEL [--json]                       layers, bits and sizes of an .onnx or a .tern
  bench MODEL.onnx [--batch B] [--threads T] [--compare fp32,int8,ternary-g16,ort-fp32,...] [--json]
                                               latency of onnxruntime-node and ternion's engines side by side
  demo [--count N] [--threads T] [--json]      the embedded Fashion-MNIST model on its test set, per precision
  info                                         version, Node ABI, CPU features and the kernel set chosen

MODEL is an .onnx (run in fp32, or --precision int8) or a .tern.`;

const DEMO_SPEC: CommandSpec = {
  name: 'demo',
  usage: `usage: ternion demo [--count N] [--threads T] [--json]

  --count N     evaluate the first N of the 10,000 test images
  --threads T   threads per run (default: all cores)
  --json        print one JSON object with a row per engine`,
  positionals: [],
  flags: [{ name: 'count' }, { name: 'threads' }, { name: 'json', switch: true }],
};

const INFO_SPEC: CommandSpec = { name: 'info', usage: 'usage: ternion info', positionals: [], flags: [] };

async function demoCommand(args: ParsedArgs, io: Io): Promise<number> {
  const json = args.values.has('json');
  const rows = await load.demo().runDemo({ count: intValue(args, 'count'), threads: intValue(args, 'threads'), log: json ? undefined : io.out });
  if (json) io.out(JSON.stringify({ model: 'fashion-mnist-resnet', rows }, null, 1));
  return 0;
}

async function infoCommand(_args: ParsedArgs, io: Io): Promise<number> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const pkg = require('../../package.json');
  io.out(JSON.stringify({ version: pkg.version, node: process.version, abi: process.versions.modules, napi: process.versions.napi, ...load.kernels().cpuInfo() }, null, 1));
  return 0;
}

type Command = { spec: CommandSpec; run: (args: ParsedArgs, io: Io) => Promise<number> };

const COMMANDS: Record<string, () => Command> = {
  quantize: () => ({ spec: load.quantize().QUANTIZE_SPEC, run: load.quantize().quantizeCommand }),
  eval: () => ({ spec: load.eval().EVAL_SPEC, run: load.eval().evalCommand }),
  run: () => ({ spec: load.run().RUN_SPEC, run: load.run().runCommand }),
  inspect: () => ({ spec: load.inspect().INSPECT_SPEC, run: load.inspect().inspectCommand }),
  bench: () => ({ spec: load.bench().BENCH_SPEC, run: load.bench().benchCommand }),
  demo: () => ({ spec: DEMO_SPEC, run: demoCommand }),
  info: () => ({ spec: INFO_SPEC, run: infoCommand }),
};

async function main(argv: string[], io: Io): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.out(USAGE);
    return 0;
  }
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name]() : undefined;
  if (!command) throw new UsageError(`ternion: unknown command "${name}"`, USAGE);
  const args = parseArgs(rest, command.spec);
  if (args.help) {
    io.out(command.spec.usage);
    return 0;
  }
  return command.run(args, io);
}

main(process.argv.slice(2), processIo).then(
  (code) => process.exit(code),
  (e) => {
    if (e instanceof UsageError) {
      console.error(`${e.message}\n\n${e.usage}`);
      process.exit(2);
    }
    console.error(e instanceof TernionError ? `ternion: ${e.code}: ${e.message}` : e);
    process.exit(1);
  },
);
