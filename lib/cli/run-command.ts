// `ternion run MODEL --input NAME=X.npy [-o OUT.npy]`: runs a model on .npy inputs (in batches
// along the first dim) and writes the outputs as .npy, or prints their shapes and first values.
// `--batch-dir DIR` runs every file of a folder over worker threads instead (run-batch-dir.ts).
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { loadNpy, saveNpy } from '../data/npy';
import { float16BitsToNumber } from '../onnx/half-float';
import { TernionError } from '../errors';
import type { Tensor } from '../tensor';
import { UsageError, choiceValue, intValue, type CommandSpec, type ParsedArgs } from './args';
import { PREPROCESS_FLAGS, bindInputFiles, preprocessUsage, concatRows, preprocessOf, runInBatches, toModelInput } from './inputs';
import type { Io } from './io';
import { openModel } from './model-file';
import { checkBatchDirArgs, runBatchDir } from './run-batch-dir';

export const RUN_SPEC: CommandSpec = {
  name: 'run',
  usage: `usage: ternion run MODEL --input [NAME=]X.npy [--input NAME2=Y.npy ...] [-o OUT.npy] [options]
       ternion run MODEL --batch-dir DIR [-o OUT.jsonl] [--workers N] [--batch B] [--top1] [options]

  MODEL                   an .onnx (fp32, or --precision int8) or a .tern
  --input NAME=X.npy      an input's samples, first dim = count (NAME may be left out when the
                          model has one input); repeat for each input
  -o, --output OUT.npy    write the output there (a model with several outputs: a folder, one
                          NAME.npy per output); without -o, print shapes and first values
  --batch B               samples per run (default 100)
  --precision fp32|int8   how to run an .onnx (default fp32)
  --threads T             threads per run (default: all cores; 1 with --batch-dir)
  --batch-dir DIR         every .npy file and image (PNG, JPEG, ...: needs sharp) of DIR, sorted by
                          name, spread over worker threads; one JSON line per sample
                          {"file","top1","outputs"} to -o OUT.jsonl (or stdout), in file order
  --workers N             worker threads for --batch-dir, one session each (default: all cores)
  --top1                  with --batch-dir: write the top-1 class without the outputs
${preprocessUsage(26)}`,
  positionals: ['MODEL'],
  flags: [
    { name: 'input', repeat: true }, { name: 'output', alias: 'o' }, { name: 'batch' },
    { name: 'precision' }, { name: 'threads' }, ...PREPROCESS_FLAGS,
    { name: 'batch-dir' }, { name: 'workers' }, { name: 'top1', switch: true },
  ],
};

function firstValues(t: Tensor, n = 8): string {
  const values: string[] = [];
  for (let i = 0; i < Math.min(n, t.size); i++) {
    const v = t.type === 'float16' ? float16BitsToNumber((t.data as Uint16Array)[i]) : t.data[i];
    values.push(typeof v === 'bigint' ? v.toString() : Number.isInteger(v) ? String(v) : Number(v).toPrecision(6));
  }
  return values.join(', ') + (t.size > n ? ', ...' : '');
}

export async function runCommand(args: ParsedArgs, io: Io): Promise<number> {
  if (args.values.has('batch-dir')) {
    checkBatchDirArgs(args, RUN_SPEC.usage);
    return runBatchDir(args, io);
  }
  if (!args.lists.get('input')?.length) throw new UsageError('ternion run: missing --input (or --batch-dir DIR)', RUN_SPEC.usage);
  for (const f of ['workers', 'top1']) if (args.values.has(f)) throw new UsageError(`ternion run: --${f} goes with --batch-dir`, RUN_SPEC.usage);
  const modelPath = args.positionals[0];
  const batch = intValue(args, 'batch') ?? 100;
  const threads = intValue(args, 'threads');
  const precision = choiceValue(args, 'precision', ['fp32', 'int8'] as const);
  const pre = preprocessOf(args);
  const output = args.values.get('output');
  const { session } = await openModel(modelPath, { precision, threads });
  try {
    const bound = bindInputFiles(args.lists.get('input') ?? [], session.inputNames, '--input', RUN_SPEC.usage);
    const inputs: Record<string, Tensor> = {};
    let count: number | undefined, countFrom = '';
    for (const meta of session.inputMetadata) {
      const file = bound.get(meta.name)!;
      const t = toModelInput(loadNpy(file), meta, pre, file, io.err);
      if (count !== undefined && t.dims[0] !== count) {
        throw new TernionError('ERR_SHAPE_MISMATCH', `${file} holds ${t.dims[0]} samples but ${countFrom} holds ${count}; every input needs the same count (first dim)`);
      }
      count = t.dims[0];
      countFrom = file;
      inputs[meta.name] = t;
    }
    const parts = new Map<string, Tensor[]>(session.outputNames.map((n) => [n, []]));
    let runs = 0;
    await runInBatches(session, inputs, count!, batch, (outs, _from, rows) => {
      runs++;
      for (const [name, t] of Object.entries(outs)) {
        if (t.dims[0] !== rows && count! > rows) {
          throw new TernionError('ERR_SHAPE_MISMATCH', `output "${name}" has dims [${t.dims.join(', ')}], not one row per sample; run all ${count} samples at once with --batch ${count}`);
        }
        parts.get(name)!.push(t);
      }
    });
    const results = session.outputNames.map((name) => [name, runs > 1 ? concatRows(parts.get(name)!) : parts.get(name)![0]] as const);
    if (output === undefined) {
      for (const [name, t] of results) io.out(`${name}: ${t.type} [${t.dims.join(', ')}]  ${firstValues(t)}`);
    } else if (results.length === 1) {
      saveNpy(output, results[0][1]);
      io.out(`wrote ${results[0][0]} ${results[0][1].type} [${results[0][1].dims.join(', ')}] to ${output}`);
    } else {
      if (existsSync(output) && !statSync(output).isDirectory()) {
        throw new TernionError('ERR_INVALID_ARGUMENT', `The model has ${results.length} outputs; -o must name a folder (one NAME.npy per output), and ${output} is a file`);
      }
      mkdirSync(output, { recursive: true });
      for (const [name, t] of results) {
        const file = join(output, `${name.replace(/[^A-Za-z0-9._-]/g, '_')}.npy`);
        saveNpy(file, t);
        io.out(`wrote ${name} ${t.type} [${t.dims.join(', ')}] to ${file}`);
      }
    }
    return 0;
  } finally {
    await session.release();
  }
}
