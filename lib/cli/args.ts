// The one argument parser of the `ternion` commands: `--flag value`, `--flag=value`, short
// aliases (`-o`), boolean switches, repeatable flags (`--input a=x.npy --input b=y.npy`) and
// positionals. Structural mistakes (unknown flag, missing value, missing required flag, wrong
// number of arguments) are UsageErrors: main.ts prints them with the command's usage and exits
// 2. Bad values are TernionErrors (ERR_INVALID_ARGUMENT, exit 1), through the helpers below.
import { TernionError } from '../errors';

export interface FlagSpec {
  /** Long name without the dashes: 'calib-count'. */
  name: string;
  /** One-letter alias without the dash: 'o'. */
  alias?: string;
  /** A switch takes no value (--json); the others take exactly one. */
  switch?: boolean;
  /** May be given several times (values are collected in order). */
  repeat?: boolean;
  /** Values after the flag (default 1): `--validate X.npy Y.npy` takes 2, kept in `lists`. */
  arity?: number;
  required?: boolean;
}

export interface CommandSpec {
  name: string;
  /** Printed for --help and after every usage error. */
  usage: string;
  /** Names of the positional arguments, in order; all required. */
  positionals: string[];
  flags: FlagSpec[];
}

export interface ParsedArgs {
  positionals: string[];
  /** Last value of each flag given (a switch: 'true'). */
  values: Map<string, string>;
  /** Every value of the repeatable flags, in order. */
  lists: Map<string, string[]>;
  help: boolean;
}

/** A mistake in how a command was called: exit status 2, with the command's usage. */
export class UsageError extends TernionError {
  constructor(message: string, readonly usage: string) {
    super('ERR_INVALID_ARGUMENT', message);
    this.name = 'UsageError';
  }
}

export function parseArgs(argv: readonly string[], spec: CommandSpec): ParsedArgs {
  const byName = new Map(spec.flags.map((f) => [f.name, f]));
  const byAlias = new Map(spec.flags.filter((f) => f.alias).map((f) => [f.alias!, f]));
  const out: ParsedArgs = { positionals: [], values: new Map(), lists: new Map(), help: false };
  const usage = (message: string) => new UsageError(`ternion ${spec.name}: ${message}`, spec.usage);
  let onlyPositionals = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (onlyPositionals || arg === '-' || !arg.startsWith('-')) {
      out.positionals.push(arg);
      continue;
    }
    if (arg === '--') {
      onlyPositionals = true;
      continue;
    }
    if (arg === '--help' || arg === '-h') {
      out.help = true;
      continue;
    }
    const long = arg.startsWith('--');
    const eq = long ? arg.indexOf('=') : -1;
    const key = long ? arg.slice(2, eq >= 0 ? eq : undefined) : arg.slice(1);
    const flag = long ? byName.get(key) : byAlias.get(key);
    if (!flag) {
      const known = spec.flags.map((f) => `--${f.name}`).join(', ');
      throw usage(`unknown flag ${long ? `--${key}` : arg}${known ? `; its flags are ${known}` : ''}`);
    }
    const shown = long ? `--${key}` : arg;
    let value: string;
    if (flag.switch) {
      if (eq >= 0) throw usage(`${shown} takes no value`);
      value = 'true';
    } else if ((flag.arity ?? 1) > 1) {
      const n = flag.arity!;
      if (eq >= 0 || i + n >= argv.length) throw usage(`${shown} needs ${n} values`);
      const taken = argv.slice(i + 1, i + 1 + n);
      i += n;
      if (out.values.has(flag.name)) throw usage(`--${flag.name} is given twice`);
      out.values.set(flag.name, taken[0]);
      out.lists.set(flag.name, taken);
      continue;
    } else if (eq >= 0) {
      value = arg.slice(eq + 1);
    } else {
      if (i + 1 >= argv.length) throw usage(`${shown} needs a value`);
      value = argv[++i];
    }
    if (!flag.repeat && !flag.switch && out.values.has(flag.name)) throw usage(`--${flag.name} is given twice`);
    out.values.set(flag.name, value);
    if (flag.repeat) out.lists.set(flag.name, [...(out.lists.get(flag.name) ?? []), value]);
  }
  if (out.help) return out;
  if (out.positionals.length < spec.positionals.length) {
    throw usage(`missing ${spec.positionals.slice(out.positionals.length).join(' ')}`);
  }
  if (out.positionals.length > spec.positionals.length) {
    throw usage(`unexpected argument "${out.positionals[spec.positionals.length]}"`);
  }
  for (const f of spec.flags) {
    if (f.required && !out.values.has(f.name)) throw usage(`missing --${f.name}${f.alias ? ` (-${f.alias})` : ''}`);
  }
  return out;
}

/** An integer flag >= min; undefined when absent. */
export function intValue(args: ParsedArgs, name: string, min = 1): number | undefined {
  const v = args.values.get(name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isInteger(n) || n < min) {
    const what = min === 1 ? 'a positive integer' : `an integer >= ${min}`;
    throw new TernionError('ERR_INVALID_ARGUMENT', `Expected ${what} for --${name} but received "${v}"`);
  }
  return n;
}

/** One of a fixed set of words; undefined when absent. */
export function choiceValue<T extends string>(args: ParsedArgs, name: string, allowed: readonly T[]): T | undefined {
  const v = args.values.get(name);
  if (v === undefined) return undefined;
  if (!allowed.includes(v as T)) throw new TernionError('ERR_INVALID_ARGUMENT', `Expected one of ${allowed.join(', ')} for --${name} but received "${v}"`);
  return v as T;
}

/** A finite number, also written as a fraction ("1/255"). */
export function parseNumber(v: string, name: string): number {
  const parts = v.split('/');
  const nums = parts.map((p) => (p.trim() === '' ? NaN : Number(p)));
  const n = parts.length === 1 ? nums[0] : parts.length === 2 ? nums[0] / nums[1] : NaN;
  if (!Number.isFinite(n)) throw new TernionError('ERR_INVALID_ARGUMENT', `Expected a number (or a fraction such as 1/255) for ${name} but received "${v}"`);
  return n;
}

/** A comma-separated list of numbers ("0.485,0.456,0.406" or one number). */
export function numberList(args: ParsedArgs, name: string): number[] | undefined {
  const v = args.values.get(name);
  if (v === undefined) return undefined;
  return v.split(',').map((p) => parseNumber(p, `--${name}`));
}
