// If, Loop and Scan in the native executor (native/exec/ops/if.cc, loop.cc, scan.cc), run as
// hand-built plans through the addon's NativeSession. Each graph is written once in a small
// spec and turned into both a plan (subgraphs as { type: 'graph' } attributes, outer values
// passed as explicit captures) and an ONNX model (outer values read by name), so that the
// executor's results can be checked against onnxruntime-node wherever onnxruntime runs the case.
// Where it does not (numeric If conditions, a zero-length Scan, errors, aborts), the expected
// values are written out.
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { native } from '../lib/native';
import { expectCode } from './helpers';
import { ModelProtoType } from '../lib/onnx/proto';
import { nodeProto, tensorProto } from './onnx-build-model';

// ---------------------------------------------------------------- graph specs

type DType = 'float32' | 'uint8' | 'int8' | 'int32' | 'int64' | 'bool';
const ONNX_TYPE: Record<DType, number> = { float32: 1, uint8: 2, int8: 3, int32: 6, int64: 7, bool: 9 };

type Data = Float32Array | BigInt64Array | Uint8Array | Int32Array | Int8Array;
interface T {
  dtype: DType;
  dims: number[];
  data: Data;
}
const f32 = (dims: number[], v: number[]): T => ({ dtype: 'float32', dims, data: Float32Array.from(v) });
const i64 = (dims: number[], v: number[]): T => ({ dtype: 'int64', dims, data: BigInt64Array.from(v.map(BigInt)) });
const bool = (dims: number[], v: (number | boolean)[]): T => ({ dtype: 'bool', dims, data: Uint8Array.from(v.map(Number)) });

/** A value declared as 'name', 'name:dtype' or 'name:dtype[2,?]' (float32 by default; '?' an unknown dim; no brackets, unknown rank). */
interface Decl {
  name: string;
  dtype: DType;
  dims?: (number | null)[];
}
function decl(s: string): Decl {
  const m = /^([^:[]*)(?::(\w+))?(?:\[([^\]]*)\])?$/.exec(s);
  if (!m) throw new Error(`bad declaration ${s}`);
  const d: Decl = { name: m[1], dtype: (m[2] ?? 'float32') as DType };
  if (m[3] !== undefined) d.dims = m[3] === '' ? [] : m[3].split(',').map((x) => (x.trim() === '?' ? null : Number(x)));
  return d;
}

type AttrSpec = number | number[] | string | { float: number } | G;
interface N {
  op: string;
  name?: string;
  inputs: string[];
  outputs: string[];
  attrs?: Record<string, AttrSpec>;
  /** Outer values the node's subgraphs read (by name in ONNX, explicit in the plan). */
  captures?: string[];
}
interface G {
  inputs: string[];
  nodes: N[];
  outputs: string[];
  constants?: Record<string, T>;
}
const isGraph = (v: AttrSpec): v is G => typeof v === 'object' && !Array.isArray(v) && 'nodes' in v;

interface PlanValue {
  name: string;
  dtype: DType;
  dims?: (number | null)[];
}
interface Plan {
  values: PlanValue[];
  constants: (T & { id: number })[];
  nodes: { op: string; name: string; opset: number; attrs: Record<string, unknown>; inputs: number[]; outputs: number[] }[];
  inputs: number[];
  outputs: number[];
}

/** The plan of g; `captured` are appended to its inputs (a subgraph's outer values). */
function toPlan(g: G, opset: number, captured: Decl[] = []): Plan {
  const plan: Plan = { values: [], constants: [], nodes: [], inputs: [], outputs: [] };
  const ids = new Map<string, number>();
  const define = (d: Decl): number => {
    if (ids.has(d.name)) throw new Error(`${d.name} defined twice`);
    ids.set(d.name, plan.values.length);
    plan.values.push(d.dims ? { name: d.name, dtype: d.dtype, dims: d.dims } : { name: d.name, dtype: d.dtype });
    return plan.values.length - 1;
  };
  const ref = (name: string): number => {
    if (name === '') return -1;
    const id = ids.get(name);
    if (id === undefined) throw new Error(`unknown value ${name}`);
    return id;
  };
  for (const s of g.inputs) plan.inputs.push(define(decl(s)));
  for (const c of captured) plan.inputs.push(define(c));
  for (const [name, t] of Object.entries(g.constants ?? {})) plan.constants.push({ id: define({ name, dtype: t.dtype, dims: t.dims }), ...t });
  g.nodes.forEach((n, k) => {
    const caps = (n.captures ?? []).map((name): Decl => ({ name, dtype: plan.values[ref(name)].dtype }));
    const attrs: Record<string, unknown> = {};
    for (const [key, v] of Object.entries(n.attrs ?? {})) {
      if (isGraph(v)) attrs[key] = { type: 'graph', value: toPlan(v, opset, caps) };
      else if (typeof v === 'number') attrs[key] = { type: 'int', value: v };
      else if (typeof v === 'string') attrs[key] = { type: 'string', value: v };
      else if (Array.isArray(v)) attrs[key] = { type: 'ints', value: v };
      else attrs[key] = { type: 'float', value: v.float };
    }
    if (n.captures) attrs.captures = { type: 'int', value: caps.length };
    const inputs = [...n.inputs.map(ref), ...caps.map((c) => ref(c.name))];
    const outputs = n.outputs.map((s) => (s === '' ? -1 : define(decl(s))));
    plan.nodes.push({ op: n.op, name: n.name ?? `${n.op.toLowerCase()}${k}`, opset, attrs, inputs, outputs });
  });
  plan.outputs = g.outputs.map(ref);
  return plan;
}

function valueInfo(d: Decl): Record<string, unknown> {
  const tensor: Record<string, unknown> = { elem_type: ONNX_TYPE[d.dtype] };
  if (d.dims) tensor.shape = { dim: d.dims.map((x, i) => (x === null ? { dim_param: `${d.name}_${i}` } : { dim_value: x })) };
  return { name: d.name, type: { tensor_type: tensor } };
}

function rawTensor(name: string, t: T): Record<string, unknown> {
  return tensorProto({ name, dataType: ONNX_TYPE[t.dtype], dims: t.dims, rawData: new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength) });
}

/** g as an ONNX GraphProto object; `outer` declares the names of enclosing scopes. */
function toOnnxGraph(g: G, name: string, outer: Map<string, Decl>): Record<string, unknown> {
  const scope = new Map(outer);
  const inputs = g.inputs.map(decl);
  for (const d of inputs) scope.set(d.name, d);
  for (const [n, t] of Object.entries(g.constants ?? {})) scope.set(n, { name: n, dtype: t.dtype, dims: t.dims });
  const produced = new Set<string>();
  const nodes = g.nodes.map((n, k) => {
    const outs = n.outputs.map((s) => (s === '' ? { name: '', dtype: 'float32' as DType } : decl(s)));
    const attribute = Object.entries(n.attrs ?? {}).map(([key, v]) => {
      if (isGraph(v)) return { name: key, type: 5, g: toOnnxGraph(v, `${name}_${key}`, scope) };
      if (typeof v === 'number') return { name: key, type: 2, i: v };
      if (typeof v === 'string') return { name: key, type: 3, s: new TextEncoder().encode(v) };
      if (Array.isArray(v)) return { name: key, type: 7, ints: v };
      return { name: key, type: 1, f: v.float };
    });
    for (const d of outs) if (d.name) scope.set(d.name, d), produced.add(d.name);
    return nodeProto({ op: n.op, inputs: n.inputs, outputs: outs.map((d) => d.name), name: n.name ?? `${n.op.toLowerCase()}${k}`, attributes: attribute });
  });
  // ONNX wants a graph's outputs produced inside it: an input, constant or outer value passed
  // straight through goes out through an Identity (the plan returns it directly).
  const outputs = g.outputs.map((o, k) => {
    const d = scope.get(o);
    if (!d) throw new Error(`unknown output ${o}`);
    if (produced.has(o)) return valueInfo(d);
    const alias = `${name}_out${k}`;
    nodes.push(nodeProto({ op: 'Identity', inputs: [o], outputs: [alias], name: alias }));
    return valueInfo({ ...d, name: alias });
  });
  return {
    name,
    node: nodes,
    input: inputs.map(valueInfo),
    output: outputs,
    initializer: Object.entries(g.constants ?? {}).map(([n, t]) => rawTensor(n, t)),
  };
}

function toOnnx(g: G, opset: number): Uint8Array {
  const model = { ir_version: 8, producer_name: 'ternion-tests', opset_import: [{ domain: '', version: opset }], graph: toOnnxGraph(g, 'main', new Map()) };
  const message = ModelProtoType.fromObject(model);
  const error = ModelProtoType.verify(message);
  if (error) throw new Error(`test model does not verify: ${error}`);
  return ModelProtoType.encode(message).finish();
}

// ---------------------------------------------------------------- running

interface NativeOut {
  dtype: string;
  dims: number[];
  data: Data;
}
interface NativeSessionLike {
  runSync(feeds: T[], threads?: number): NativeOut[];
  run(feeds: T[], threads?: number, cancel?: Int32Array): Promise<NativeOut[]>;
  memoryUsage(): { packedBytes: number; constantBytes: number; arenaBytes: number };
  readonly packedBytes: number;
}
function nativeSession(plan: unknown, threads = 1): NativeSessionLike {
  const NativeSession = (native() as unknown as { NativeSession: new (p: unknown, o: unknown) => NativeSessionLike }).NativeSession;
  return new NativeSession(plan, { threads });
}

const OPSET = 16;
const feedList = (g: G, feeds: Record<string, T>): T[] =>
  g.inputs.map((s) => {
    const t = feeds[decl(s).name];
    if (!t) throw new Error(`no feed for ${s}`);
    return t;
  });
const plain = (data: Data): number[] => Array.from(data as ArrayLike<number | bigint>, Number);

/** Runs g natively; outputs by name, as plain numbers. */
function runNative(g: G, feeds: Record<string, T>, opset = OPSET): Record<string, { dims: number[]; data: number[]; dtype: string }> {
  const outs = nativeSession(toPlan(g, opset)).runSync(feedList(g, feeds));
  return Object.fromEntries(g.outputs.map((o, i) => [o, { dims: outs[i].dims, data: plain(outs[i].data), dtype: outs[i].dtype }]));
}

async function runOrt(g: G, feeds: Record<string, T>, opset = OPSET): Promise<Record<string, { dims: number[]; data: number[] }>> {
  const session = await ort.InferenceSession.create(toOnnx(g, opset));
  const ortFeeds: Record<string, ort.Tensor> = {};
  for (const s of g.inputs) {
    const t = feeds[decl(s).name];
    ortFeeds[decl(s).name] = new ort.Tensor(t.dtype, t.data as never, t.dims);
  }
  const r = await session.run(ortFeeds);
  // Outputs passed straight through were renamed (toOnnxGraph): look them up by position.
  const names = session.outputNames;
  return Object.fromEntries(g.outputs.map((o, i) => [o, { dims: [...r[names[i]].dims], data: plain(r[names[i]].data as Data) }]));
}

/** Native and onnxruntime agree on every output (dims exactly, data within 1e-5, relative past 1). */
async function expectSameAsOrt(g: G, feeds: Record<string, T>, opset = OPSET) {
  const got = runNative(g, feeds, opset);
  const want = await runOrt(g, feeds, opset);
  for (const o of g.outputs) {
    expect(got[o].dims, `dims of ${o}`).toEqual(want[o].dims);
    expect(got[o].data.length, `size of ${o}`).toBe(want[o].data.length);
    got[o].data.forEach((v, i) => expect(Math.abs(v - want[o].data[i]), `${o}[${i}]: ${v} vs ${want[o].data[i]}`).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(want[o].data[i]))));
  }
  return got;
}

/** A constructor or run that must fail with this code and a message matching. */
function expectBuildError(g: G, code: string, message: RegExp, opset = OPSET) {
  expectCode(() => nativeSession(toPlan(g, opset)), code, message);
}
function expectRunError(g: G, feeds: Record<string, T>, code: string, message: RegExp, opset = OPSET) {
  const s = nativeSession(toPlan(g, opset));
  expectCode(() => s.runSync(feedList(g, feeds)), code, message);
}

const one = { one: f32([], [1]) };

// ---------------------------------------------------------------- If

describe('If', () => {
  // then: Squeeze(x) [3]; else: Identity(x) [1, 3]; y2 = y * y works on either rank.
  const ranks: G = {
    inputs: ['c:bool[]', 'x:float32[1,3]'],
    nodes: [
      {
        op: 'If', name: 'pick', inputs: ['c'], outputs: ['y'], captures: ['x'],
        attrs: {
          then_branch: { inputs: [], constants: { axes: i64([1], [0]) }, nodes: [{ op: 'Squeeze', inputs: ['x', 'axes'], outputs: ['sq'] }], outputs: ['sq'] },
          else_branch: { inputs: [], nodes: [{ op: 'Identity', inputs: ['x'], outputs: ['id'] }], outputs: ['id'] },
        },
      },
      { op: 'Mul', inputs: ['y', 'y'], outputs: ['y2'] },
    ],
    outputs: ['y', 'y2'],
  };
  const x = f32([1, 3], [1, -2, 3]);

  it('runs either branch; the branches give different ranks', async () => {
    const t = await expectSameAsOrt(ranks, { c: bool([], [1]), x });
    expect(t.y.dims).toEqual([3]);
    expect(t.y2.data).toEqual([1, 4, 9]);
    const e = await expectSameAsOrt(ranks, { c: bool([], [0]), x });
    expect(e.y.dims).toEqual([1, 3]);
  });

  it('reads a numeric condition as nonzero = true, of any one-element shape', () => {
    const numeric = (dtype: DType, dims: number[]): G => ({ ...ranks, inputs: [`c:${dtype}[${dims.join(',')}]`, 'x:float32[1,3]'] });
    expect(runNative(numeric('float32', [1]), { c: f32([1], [0.5]), x }).y.dims).toEqual([3]);
    expect(runNative(numeric('float32', []), { c: f32([], [0]), x }).y.dims).toEqual([1, 3]);
    expect(runNative(numeric('int64', [1, 1]), { c: i64([1, 1], [-3]), x }).y.dims).toEqual([3]);
    expect(runNative(numeric('int64', []), { c: i64([], [0]), x }).y.dims).toEqual([1, 3]);
    expect(runNative(numeric('int32', []), { c: { dtype: 'int32', dims: [], data: Int32Array.from([7]) }, x }).y.dims).toEqual([3]);
  });

  it('a condition of two elements is ERR_SHAPE_MISMATCH naming the node', () => {
    expectRunError({ ...ranks, inputs: ['c:bool[2]', 'x:float32[1,3]'] }, { c: bool([2], [1, 1]), x }, 'ERR_SHAPE_MISMATCH', /If node 'pick'.*cond.*\[2\]/);
    expectRunError({ ...ranks, inputs: ['c:bool[0]', 'x:float32[1,3]'] }, { c: bool([0], []), x }, 'ERR_SHAPE_MISMATCH', /If node 'pick'/);
  });

  // A branch may return a capture unchanged or one of its constants: the outer run must keep
  // the capture's block while the If output shares it, and never give a constant to its pool.
  const passThrough: G = {
    inputs: ['c:bool[]', 'x:float32[4]'],
    constants: { two: f32([], [2]) },
    nodes: [
      { op: 'Mul', inputs: ['x', 'two'], outputs: ['x2'] },
      {
        op: 'If', name: 'pass', inputs: ['c'], outputs: ['a', 'b'], captures: ['x2'],
        attrs: {
          then_branch: { inputs: [], constants: { k: f32([4], [10, 20, 30, 40]) }, nodes: [], outputs: ['x2', 'k'] },
          else_branch: {
            inputs: [], constants: { k0: f32([4], [-1, -2, -3, -4]) },
            nodes: [{ op: 'Add', inputs: ['x2', 'x2'], outputs: ['s'] }], outputs: ['k0', 's'],
          },
        },
      },
      // x2's last reader was the If: the values computed after it must not land in a's block.
      { op: 'Add', inputs: ['a', 'b'], outputs: ['z'] },
      { op: 'Mul', inputs: ['z', 'two'], outputs: ['z2'] },
      { op: 'Sub', inputs: ['z2', 'a'], outputs: ['w'] },
    ],
    outputs: ['a', 'b', 'z', 'w'],
  };

  it('a branch returning a capture unchanged and a constant', async () => {
    const x4 = f32([4], [1, 2, 3, 4]);
    const t = await expectSameAsOrt(passThrough, { c: bool([], [1]), x: x4 });
    expect(t.a.data).toEqual([2, 4, 6, 8]);
    expect(t.b.data).toEqual([10, 20, 30, 40]);
    await expectSameAsOrt(passThrough, { c: bool([], [0]), x: x4 });
    // Alternating runs of one session: arena blocks and constants stay intact.
    const s = nativeSession(toPlan(passThrough, OPSET));
    for (let i = 0; i < 6; i++) {
      const outs = s.runSync([bool([], [i % 2]), f32([4], [i, i + 1, i + 2, i + 3])]);
      const x2 = [i, i + 1, i + 2, i + 3].map((v) => 2 * v);
      const [a, b] = i % 2 ? [x2, [10, 20, 30, 40]] : [[-1, -2, -3, -4], x2.map((v) => 2 * v)];
      expect(plain(outs[0].data)).toEqual(a);
      expect(plain(outs[1].data)).toEqual(b);
      expect(plain(outs[3].data)).toEqual(a.map((v, j) => 2 * (v + b[j]) - v));
    }
  });

  it('an If nested in a branch, with captures through both levels', async () => {
    const nested: G = {
      inputs: ['c1:bool[]', 'c2:bool[]', 'x:float32[3]'],
      constants: one,
      nodes: [
        {
          op: 'If', name: 'outer', inputs: ['c1'], outputs: ['y'], captures: ['c2', 'x', 'one'],
          attrs: {
            then_branch: {
              inputs: [],
              nodes: [
                { op: 'Add', inputs: ['x', 'one'], outputs: ['x1'] },
                {
                  op: 'If', name: 'inner', inputs: ['c2'], outputs: ['r'], captures: ['x1', 'x'],
                  attrs: {
                    then_branch: { inputs: [], nodes: [{ op: 'Mul', inputs: ['x1', 'x'], outputs: ['m'] }], outputs: ['m'] },
                    else_branch: { inputs: [], nodes: [], outputs: ['x1'] },
                  },
                },
              ],
              outputs: ['r'],
            },
            else_branch: { inputs: [], nodes: [{ op: 'Neg', inputs: ['x'], outputs: ['n'] }], outputs: ['n'] },
          },
        },
      ],
      outputs: ['y'],
    };
    const x3 = f32([3], [1, 2, 3]);
    const expected = [[2 * 1, 3 * 2, 4 * 3], [2, 3, 4], [-1, -2, -3], [-1, -2, -3]];
    let k = 0;
    for (const c1 of [1, 0])
      for (const c2 of [1, 0]) {
        const r = await expectSameAsOrt(nested, { c1: bool([], [c1]), c2: bool([], [c2]), x: x3 });
        expect(r.y.data).toEqual(expected[k++]);
      }
  });

  it('refuses branches whose inputs or outputs do not match the node (ERR_MODEL_FORMAT)', () => {
    const branch = (outputs: string[]): G => ({ inputs: [], nodes: [{ op: 'Identity', inputs: ['x'], outputs: ['i'] }], outputs });
    const g = (thenOut: string[], captures = ['x']): G => ({
      inputs: ['c:bool[]', 'x'],
      nodes: [{ op: 'If', name: 'bad', inputs: ['c'], outputs: ['y'], captures, attrs: { then_branch: branch(thenOut), else_branch: branch(['i']) } }],
      outputs: ['y'],
    });
    expectBuildError(g(['i', 'i']), 'ERR_MODEL_FORMAT', /If node 'bad': then_branch has 2 outputs but the node has 1/);
    const plan = toPlan(g(['i']), OPSET);
    plan.nodes[0].attrs.captures = { type: 'int', value: 0 };
    expectCode(() => nativeSession(plan), 'ERR_MODEL_FORMAT', /If node 'bad': captures 0 but 1 inputs follow cond/);
    const missing = toPlan(g(['i']), OPSET);
    delete missing.nodes[0].attrs.else_branch;
    expectCode(() => nativeSession(missing), 'ERR_MODEL_FORMAT', /If node 'bad': missing graph attribute 'else_branch'/);
    const notPlan = toPlan(g(['i']), OPSET);
    notPlan.nodes[0].attrs.then_branch = { type: 'graph', value: 3 };
    expectCode(() => nativeSession(notPlan), 'ERR_MODEL_FORMAT', /then_branch.*not a plan object/);
    const badId = toPlan(g(['i']), OPSET);
    ((badId.nodes[0].attrs.then_branch as { value: Plan }).value.outputs = [99]);
    expectCode(() => nativeSession(badId), 'ERR_MODEL_FORMAT', /If node 'bad' then_branch: graph refers to value 99/);
    const wrongType = toPlan(g(['i']), OPSET);
    (wrongType.nodes[0].attrs.then_branch as { value: Plan }).value.values[0].dtype = 'int64';
    (wrongType.nodes[0].attrs.then_branch as { value: Plan }).value.values[1].dtype = 'int64';
    expectCode(() => nativeSession(wrongType), 'ERR_MODEL_FORMAT', /If node 'bad': capture 'x' is float32 but the subgraph's 'x' is int64/);
    // A plan that contains itself is refused at its nesting limit, not by the stack.
    const cyclic = toPlan(g(['i']), OPSET);
    (cyclic.nodes[0].attrs.then_branch as { value: unknown }).value = cyclic;
    expectCode(() => nativeSession(cyclic), 'ERR_MODEL_FORMAT', /nest more than/);
    // An op the executor lacks, inside a branch: named with its branch.
    const unknownOp = toPlan(g(['i']), OPSET);
    (unknownOp.nodes[0].attrs.else_branch as { value: Plan }).value.nodes[0].op = 'NoSuchOp';
    expectCode(() => nativeSession(unknownOp), 'ERR_UNSUPPORTED_OP', /If node 'bad' else_branch: Operator NoSuchOp/);
  });
});

// ---------------------------------------------------------------- Loop

/** A Loop node over `body` with node inputs [M, cond, ...carried], named 'loop'. */
function loopGraph(opts: { inputs: string[]; m: string; cond: string; carried: string[]; outputs: string[]; body: G; captures?: string[]; constants?: Record<string, T> }): G {
  return {
    inputs: opts.inputs,
    constants: opts.constants,
    nodes: [{ op: 'Loop', name: 'loop', inputs: [opts.m, opts.cond, ...opts.carried], outputs: opts.outputs, captures: opts.captures, attrs: { body: opts.body } }],
    outputs: opts.outputs.filter((o) => o !== '').map((o) => decl(o).name),
  };
}

describe('Loop', () => {
  // v += i each iteration; scan output 2 * v_out; cond passed through.
  const counting = (m: string, cond: string, inputs: string[]): G =>
    loopGraph({
      inputs, m, cond, carried: ['x'], outputs: ['v', 'scan'],
      body: {
        inputs: ['i:int64[]', 'cin:bool[]', 'vin:float32[?]'],
        constants: { two: f32([], [2]) },
        nodes: [
          { op: 'Identity', inputs: ['cin'], outputs: ['cout:bool[]'] },
          { op: 'Cast', inputs: ['i'], outputs: ['fi'], attrs: { to: 1 } },
          { op: 'Add', inputs: ['vin', 'fi'], outputs: ['vout'] },
          { op: 'Mul', inputs: ['vout', 'two'], outputs: ['sout'] },
        ],
        outputs: ['cout', 'vout', 'sout'],
      },
    });
  const x = f32([2], [1, 10]);

  it('with M only', async () => {
    const r = await expectSameAsOrt(counting('M', '', ['M:int64[]', 'x:float32[2]']), { M: i64([], [4]), x });
    expect(r.v.data).toEqual([1 + 6, 10 + 6]);
    expect(r.scan.dims).toEqual([4, 2]);
    expect(r.scan.data).toEqual([2, 20, 4, 22, 8, 26, 14, 32]);
  });

  it('M as a one-element 1-D tensor; negative M runs nothing', async () => {
    await expectSameAsOrt(counting('M', '', ['M:int64[1]', 'x:float32[2]']), { M: i64([1], [3]), x });
    const r = runNative(counting('M', '', ['M:int64[]', 'x:float32[2]']), { M: i64([], [-2]), x });
    expect(r.v.data).toEqual([1, 10]);
    expect(r.scan.dims).toEqual([0]);
  });

  // v *= 2 while v < limit (a capture); scan output each v.
  const doubling = (m: string, cond: string, inputs: string[]): G =>
    loopGraph({
      inputs, m, cond, carried: ['x'], outputs: ['v', 'seen'], captures: ['limit'],
      body: {
        inputs: ['i:int64[]', 'cin:bool[]', 'vin:float32[]'],
        constants: { two: f32([], [2]) },
        nodes: [
          { op: 'Mul', inputs: ['vin', 'two'], outputs: ['vout'] },
          { op: 'Less', inputs: ['vout', 'limit'], outputs: ['cout:bool'] },
        ],
        outputs: ['cout', 'vout', 'vout'],
      },
    });

  it('with cond only, a capture deciding when to stop', async () => {
    const g = doubling('', 'c', ['c:bool[]', 'x:float32[]', 'limit:float32[]']);
    const r = await expectSameAsOrt(g, { c: bool([], [1]), x: f32([], [3]), limit: f32([], [100]) });
    expect(r.v.data).toEqual([192]);
    expect(r.seen.data).toEqual([6, 12, 24, 48, 96, 192]);
  });

  it('with M and cond: whichever ends first', async () => {
    const g = doubling('M', 'c', ['M:int64[]', 'c:bool[]', 'x:float32[]', 'limit:float32[]']);
    const byM = await expectSameAsOrt(g, { M: i64([], [3]), c: bool([], [1]), x: f32([], [3]), limit: f32([], [100]) });
    expect(byM.seen.data).toEqual([6, 12, 24]);
    const byCond = await expectSameAsOrt(g, { M: i64([], [50]), c: bool([], [1]), x: f32([], [3]), limit: f32([], [20]) });
    expect(byCond.seen.data).toEqual([6, 12, 24]);
  });

  it('without cond the body\'s cond output still ends the loop (as onnxruntime and the ONNX reference do)', async () => {
    const g = doubling('M', '', ['M:int64[]', 'x:float32[]', 'limit:float32[]']);
    const r = await expectSameAsOrt(g, { M: i64([], [50]), x: f32([], [1]), limit: f32([], [5]) });
    expect(r.seen.data).toEqual([2, 4, 8]);
  });

  // Zero iterations: v_final = v_initial; a scan output is [0] + the body output's declared
  // dims, unknown ones 0, or [0] without a declared shape (onnxruntime's reading).
  const zeroTrips = (scanDecl: string): G =>
    loopGraph({
      inputs: ['M:int64[]', 'c:bool[]', 'x'], m: 'M', cond: 'c', carried: ['x'], outputs: ['v', 'scan'],
      body: {
        inputs: ['i:int64[]', 'cin:bool[]', 'vin'],
        nodes: [
          { op: 'Identity', inputs: ['cin'], outputs: ['cout:bool[]'] },
          { op: 'Add', inputs: ['vin', 'vin'], outputs: ['vout'] },
          { op: 'Identity', inputs: ['vout'], outputs: [scanDecl] },
        ],
        outputs: ['cout', 'vout', decl(scanDecl).name],
      },
    });

  it('zero iterations (M = 0 or cond false): carried values pass through, scan outputs are empty', async () => {
    const x23 = f32([2, 3], [1, 2, 3, 4, 5, 6]);
    for (const [scanDecl, dims] of [['s:float32[2,3]', [0, 2, 3]], ['s:float32[2,?]', [0, 2, 0]], ['s:float32[?,?,?]', [0, 0, 0, 0]], ['s:float32', [0]], ['s:float32[]', [0]]] as const) {
      for (const feeds of [{ M: i64([], [0]), c: bool([], [1]), x: x23 }, { M: i64([], [5]), c: bool([], [0]), x: x23 }]) {
        const r = await expectSameAsOrt(zeroTrips(scanDecl), feeds);
        expect(r.scan.dims).toEqual(dims);
        expect(r.v.data).toEqual([1, 2, 3, 4, 5, 6]);
      }
    }
    // And two iterations of the same graph, for contrast.
    const two = await expectSameAsOrt(zeroTrips('s:float32[2,3]'), { M: i64([], [2]), c: bool([], [1]), x: x23 });
    expect(two.scan.dims).toEqual([2, 2, 3]);
  });

  /** A Loop appending a 7 to its carried vector each iteration; scanOut: the body value it stacks. */
  const growingLoop = (outputs: string[], scanOut: string) =>
    loopGraph({
      inputs: ['M:int64[]', 'x:float32[?]'], m: 'M', cond: '', carried: ['x'], outputs,
      body: {
        inputs: ['i:int64[]', 'cin:bool[]', 'vin:float32[?]'],
        constants: { tail: f32([1], [7]) },
        nodes: [
          { op: 'Identity', inputs: ['cin'], outputs: ['cout:bool[]'] },
          { op: 'Concat', inputs: ['vin', 'tail'], outputs: ['vout'], attrs: { axis: 0 } },
        ],
        outputs: ['cout', 'vout', scanOut],
      },
    });

  it('a carried value whose shape grows; the iteration number as a scan output', async () => {
    // iteration_num straight from the body's inputs to a scan output
    const g = growingLoop(['v', 'iters:int64'], 'i');
    const r = await expectSameAsOrt(g, { M: i64([], [3]), x: f32([2], [1, 2]) });
    expect(r.v.data).toEqual([1, 2, 7, 7, 7]);
    expect(r.iters).toMatchObject({ dims: [3], data: [0, 1, 2] });
  });

  it('a scan output whose shape changes is ERR_SHAPE_MISMATCH naming node and iteration', () => {
    const g = growingLoop(['v', 'all'], 'vout');
    expectRunError(g, { M: i64([], [3]), x: f32([1], [1]) }, 'ERR_SHAPE_MISMATCH', /Loop node 'loop': scan output 0 is float32 \[3\] at iteration 1 but float32 \[2\] before/);
  });

  it('body outputs that are its own inputs, a capture, or a constant', async () => {
    // v passes through unchanged, w accumulates v, u becomes the capture k, z the body's constant.
    const g = loopGraph({
      inputs: ['M:int64[]', 'x:float32[2]', 'y:float32[2]', 'k:float32[2]'], m: 'M', cond: '',
      carried: ['x', 'y', 'y', 'y'], captures: ['k'], outputs: ['v', 'w', 'u', 'z', 'ks'],
      body: {
        inputs: ['i:int64[]', 'cin:bool[]', 'vin:float32[2]', 'win:float32[2]', 'uin:float32[2]', 'zin:float32[2]'],
        constants: { kc: f32([2], [5, 6]) },
        nodes: [{ op: 'Add', inputs: ['win', 'vin'], outputs: ['wout'] }],
        // cond_out is cond_in itself
        outputs: ['cin', 'vin', 'wout', 'k', 'kc', 'k'],
      },
    });
    const feeds = { M: i64([], [3]), x: f32([2], [1, 2]), y: f32([2], [10, 20]), k: f32([2], [-1, -2]) };
    const r = await expectSameAsOrt(g, feeds);
    expect(r).toMatchObject({ v: { data: [1, 2] }, w: { data: [13, 26] }, u: { data: [-1, -2] }, z: { data: [5, 6] }, ks: { dims: [3, 2] } });
    // Many runs of one session: constants and captures are never recycled into activations.
    const s = nativeSession(toPlan(g, OPSET));
    for (let i = 0; i < 5; i++) {
      const outs = s.runSync(feedList(g, { ...feeds, M: i64([], [i]) }));
      expect(plain(outs[1].data)).toEqual([10 + i, 20 + 2 * i]);
      expect(plain(outs[3].data)).toEqual(i ? [5, 6] : [10, 20]);
      expect(plain(outs[4].data)).toEqual(Array.from({ length: i }, () => [-1, -2]).flat());
    }
  });

  it('an omitted node output still runs', () => {
    const g = counting('M', '', ['M:int64[]', 'x:float32[2]']);
    const plan = toPlan(g, OPSET);
    plan.nodes[0].outputs[0] = -1;  // v_final unused
    plan.outputs = [plan.outputs[1]];
    const outs = nativeSession(plan).runSync([i64([], [4]), x]);
    expect(plain(outs[0].data)).toEqual([2, 20, 4, 22, 8, 26, 14, 32]);
  });

  it('a Loop inside an If inside a Loop', async () => {
    // outer: for i < M: v = (i even) ? inner(v) : v - 1, where inner doubles v twice.
    const inner: G = {
      inputs: ['j:int64[]', 'cj:bool[]', 'u:float32[2]'],
      constants: { two: f32([], [2]) },
      nodes: [
        { op: 'Identity', inputs: ['cj'], outputs: ['cjo:bool[]'] },
        { op: 'Mul', inputs: ['u', 'two'], outputs: ['uo'] },
      ],
      outputs: ['cjo', 'uo'],
    };
    const g = loopGraph({
      inputs: ['M:int64[]', 'x:float32[2]'], m: 'M', cond: '', carried: ['x'], outputs: ['v'],
      body: {
        inputs: ['i:int64[]', 'cin:bool[]', 'vin:float32[2]'],
        constants: { twoI: i64([], [2]), zeroI: i64([], [0]), one: f32([], [1]), twice: i64([], [2]) },
        nodes: [
          { op: 'Identity', inputs: ['cin'], outputs: ['cout:bool[]'] },
          { op: 'Mod', inputs: ['i', 'twoI'], outputs: ['odd:int64[]'] },
          { op: 'Equal', inputs: ['odd', 'zeroI'], outputs: ['even:bool[]'] },
          {
            op: 'If', name: 'parity', inputs: ['even'], outputs: ['vout'], captures: ['vin', 'one', 'twice'],
            attrs: {
              then_branch: { inputs: [], nodes: [{ op: 'Loop', name: 'inner', inputs: ['twice', '', 'vin'], outputs: ['w'], attrs: { body: inner } }], outputs: ['w'] },
              else_branch: { inputs: [], nodes: [{ op: 'Sub', inputs: ['vin', 'one'], outputs: ['s'] }], outputs: ['s'] },
            },
          },
        ],
        outputs: ['cout', 'vout'],
      },
    });
    const r = await expectSameAsOrt(g, { M: i64([], [4]), x: f32([2], [1, 2]) });
    expect(r.v.data).toEqual([((1 * 4 - 1) * 4 - 1), ((2 * 4 - 1) * 4 - 1)]);
  });

  it('refuses malformed Loop nodes at build (ERR_MODEL_FORMAT)', () => {
    const g = counting('M', '', ['M:int64[]', 'x:float32[2]']);
    const withBody = (edit: (b: Plan) => void) => {
      const plan = toPlan(g, OPSET);
      edit((plan.nodes[0].attrs.body as { value: Plan }).value);
      return plan;
    };
    expectCode(() => nativeSession(withBody((b) => b.outputs.pop())), 'ERR_MODEL_FORMAT', /Loop node 'loop': the body has 2 outputs, expected 3/);
    const extraInput = (b: Plan) => {
      b.values.push({ name: 'extra', dtype: 'float32' });
      b.inputs.push(b.values.length - 1);
    };
    expectCode(() => nativeSession(withBody(extraInput)), 'ERR_MODEL_FORMAT', /Loop node 'loop': the body has 4 inputs but the node has 3/);
    expectCode(() => nativeSession(withBody((b) => (b.values[b.outputs[0]].dtype = 'float32'))), 'ERR_MODEL_FORMAT', /cond output must be bool/);
    const mFloat = toPlan(counting('M', '', ['M:float32[]', 'x:float32[2]']), OPSET);
    expectCode(() => nativeSession(mFloat), 'ERR_MODEL_FORMAT', /Loop node 'loop': M must be int64, got float32/);
    const condInt = toPlan(doubling('', 'c', ['c:int64[]', 'x:float32[]', 'limit:float32[]']), OPSET);
    expectCode(() => nativeSession(condInt), 'ERR_MODEL_FORMAT', /Loop node 'loop': cond must be bool, got int64/);
    const tooManyCaptures = toPlan(g, OPSET);
    tooManyCaptures.nodes[0].attrs.captures = { type: 'int', value: 5 };
    expectCode(() => nativeSession(tooManyCaptures), 'ERR_MODEL_FORMAT', /Loop node 'loop': captures 5 does not fit its 3 inputs/);
    const omittedCarried = toPlan(g, OPSET);
    omittedCarried.nodes[0].inputs[2] = -1;
    expectCode(() => nativeSession(omittedCarried), 'ERR_MODEL_FORMAT', /Loop node 'loop': input 2 .*cannot be omitted/);
  });

  it('M, cond or the body\'s cond output of two elements at run is ERR_SHAPE_MISMATCH', () => {
    expectRunError(counting('M', '', ['M:int64[2]', 'x:float32[2]']), { M: i64([2], [1, 2]), x }, 'ERR_SHAPE_MISMATCH', /Loop node 'loop': M must hold exactly one element/);
    expectRunError(doubling('', 'c', ['c:bool[2]', 'x:float32[]', 'limit:float32[]']), { c: bool([2], [1, 1]), x: f32([], [1]), limit: f32([], [4]) }, 'ERR_SHAPE_MISMATCH', /Loop node 'loop': cond must hold exactly one element/);
    // The body's cond output, likewise, at the iteration that gives it.
    const limits = doubling('', 'c', ['c:bool[]', 'x:float32[]', 'limit:float32[2]']);
    expectRunError(limits, { c: bool([], [1]), x: f32([], [1]), limit: f32([2], [4, 8]) }, 'ERR_SHAPE_MISMATCH', /Loop node 'loop': the body's cond output is bool \[2\] at iteration 0, expected one bool/);
  });

  it('an error inside the body names the Loop and the body node', () => {
    const g = loopGraph({
      inputs: ['M:int64[]', 'x:float32[2]'], m: 'M', cond: '', carried: ['x'], outputs: ['v'],
      body: {
        inputs: ['i:int64[]', 'cin:bool[]', 'vin:float32[?]'],
        constants: { odd: f32([3], [1, 2, 3]) },
        nodes: [
          { op: 'Identity', inputs: ['cin'], outputs: ['cout:bool[]'] },
          { op: 'Add', name: 'broken', inputs: ['vin', 'odd'], outputs: ['vout'] },
        ],
        outputs: ['cout', 'vout'],
      },
    });
    expectRunError(g, { M: i64([], [2]), x }, 'ERR_SHAPE_MISMATCH', /Loop node 'loop' body: Add node 'broken'/);
  });
});

// ---------------------------------------------------------------- Scan

/** A Scan node 'scan' with these attributes over `body`. */
function scanGraph(opts: { inputs: string[]; nodeInputs: string[]; outputs: string[]; body: G; attrs: Record<string, AttrSpec>; captures?: string[] }): G {
  return {
    inputs: opts.inputs,
    nodes: [{ op: 'Scan', name: 'scan', inputs: opts.nodeInputs, outputs: opts.outputs, captures: opts.captures, attrs: { ...opts.attrs, body: opts.body } }],
    outputs: opts.outputs.map((o) => decl(o).name),
  };
}

describe('Scan', () => {
  // Two states: a running sum and a running product of the rows; scan output sum + product.
  const twoStates = (attrs: Record<string, AttrSpec>, xsDecl = 'xs:float32[4,3]'): G =>
    scanGraph({
      inputs: ['s0:float32[3]', 'p0:float32[3]', xsDecl], nodeInputs: ['s0', 'p0', 'xs'], outputs: ['s', 'p', 'ys'], attrs: { num_scan_inputs: 1, ...attrs },
      body: {
        inputs: ['sin:float32[3]', 'pin:float32[3]', 'x:float32[3]'],
        nodes: [
          { op: 'Add', inputs: ['sin', 'x'], outputs: ['sout'] },
          { op: 'Mul', inputs: ['pin', 'x'], outputs: ['pout'] },
          { op: 'Add', inputs: ['sout', 'pout'], outputs: ['y:float32[3]'] },
        ],
        outputs: ['sout', 'pout', 'y'],
      },
    });
  const rows = f32([4, 3], [1, 2, 3, 2, 1, 0.5, -1, 3, 2, 0.5, 0.5, 4]);
  const init = { s0: f32([3], [0, 0, 0]), p0: f32([3], [1, 1, 1]) };

  it('two states, forward and reverse', async () => {
    const fwd = await expectSameAsOrt(twoStates({}), { ...init, xs: rows });
    expect(fwd.s.data).toEqual([2.5, 6.5, 9.5]);
    expect(fwd.ys.dims).toEqual([4, 3]);
    const rev = await expectSameAsOrt(twoStates({ scan_input_directions: [1] }), { ...init, xs: rows });
    expect(rev.s.data).toEqual(fwd.s.data);
    expect(rev.ys.data.slice(0, 3)).toEqual([1, 1, 8]);  // the last row first
    await expectSameAsOrt(twoStates({ scan_output_directions: [1] }), { ...init, xs: rows });
    await expectSameAsOrt(twoStates({ scan_input_directions: [1], scan_output_directions: [1] }), { ...init, xs: rows });
  });

  it('scan input axes other than 0 (negative too) and scan output axes', async () => {
    const cols = f32([3, 4], [1, 2, -1, 0.5, 2, 1, 3, 0.5, 3, 0.5, 2, 4]);  // rows transposed
    const viaAxis1 = await expectSameAsOrt(twoStates({ scan_input_axes: [1] }, 'xs:float32[3,4]'), { ...init, xs: cols });
    const viaAxis0 = runNative(twoStates({}), { ...init, xs: rows });
    expect(viaAxis1.ys).toEqual(viaAxis0.ys);
    await expectSameAsOrt(twoStates({ scan_input_axes: [-1] }, 'xs:float32[3,4]'), { ...init, xs: cols });
    for (const axis of [1, -1, 0, -2]) {
      const r = await expectSameAsOrt(twoStates({ scan_output_axes: [axis] }), { ...init, xs: rows });
      expect(r.ys.dims).toEqual(axis === 1 || axis === -1 ? [3, 4] : [4, 3]);
    }
    await expectSameAsOrt(twoStates({ scan_input_axes: [1], scan_input_directions: [1], scan_output_axes: [1], scan_output_directions: [1] }, 'xs:float32[3,4]'), { ...init, xs: cols });
  });

  it('two scan inputs on different axes of 3-D tensors, several scan outputs, a capture', async () => {
    // a: [2, T=3, 2] scanned on axis 1 (copied slices); b: [T=3, 1, 2, 2]... on axis 0 (views).
    const g = scanGraph({
      inputs: ['st:float32[2,2]', 'a:float32[2,3,2]', 'b:float32[1,3,2,2]', 'k:float32[2]'], nodeInputs: ['st', 'a', 'b'], captures: ['k'],
      outputs: ['sf', 'o1', 'o2', 'o3'],
      attrs: { num_scan_inputs: 2, scan_input_axes: [1, -3], scan_input_directions: [0, 1], scan_output_axes: [2, 0, -1], scan_output_directions: [1, 0, 0] },
      body: {
        inputs: ['s:float32[2,2]', 'as:float32[2,2]', 'bs:float32[1,2,2]'],
        constants: { axes: i64([1], [0]) },
        nodes: [
          { op: 'Squeeze', inputs: ['bs', 'axes'], outputs: ['b2'] },
          { op: 'Mul', inputs: ['as', 'b2'], outputs: ['ab'] },
          { op: 'Add', inputs: ['s', 'ab'], outputs: ['sout'] },
          { op: 'Add', inputs: ['sout', 'k'], outputs: ['sk'] },
        ],
        outputs: ['sout', 'sk', 'as', 'bs'],
      },
    });
    const seq = (n: number, f: (i: number) => number) => Array.from({ length: n }, (_, i) => f(i));
    const feeds = { st: f32([2, 2], [0, 1, 2, 3]), a: f32([2, 3, 2], seq(12, (i) => i - 5)), b: f32([1, 3, 2, 2], seq(12, (i) => (i % 5) - 2)), k: f32([2], [100, 200]) };
    const r = await expectSameAsOrt(g, feeds);
    expect(r.o1.dims).toEqual([2, 2, 3]);
    expect(r.o2.dims).toEqual([3, 2, 2]);
    expect(r.o3.dims).toEqual([1, 2, 2, 3]);
  });

  it('scan inputs of different lengths are ERR_SHAPE_MISMATCH', () => {
    const g = scanGraph({
      inputs: ['s0:float32[]', 'a:float32[3]', 'b:float32[4]'], nodeInputs: ['s0', 'a', 'b'], outputs: ['s'], attrs: { num_scan_inputs: 2 },
      body: { inputs: ['sin:float32[]', 'x:float32[]', 'y:float32[]'], nodes: [{ op: 'Sum', inputs: ['sin', 'x', 'y'], outputs: ['sout'] }], outputs: ['sout'] },
    });
    expectRunError(g, { s0: f32([], [0]), a: f32([3], [1, 2, 3]), b: f32([4], [1, 2, 3, 4]) }, 'ERR_SHAPE_MISMATCH', /Scan node 'scan': scan input 1 has length 4 along axis 0 but scan input 0 has 3/);
    expect(runNative(g, { s0: f32([], [0]), a: f32([3], [1, 2, 3]), b: f32([3], [1, 2, 3]) }).s.data).toEqual([12]);
  });

  it('opset 8 is refused (ERR_UNSUPPORTED_OP naming the node and opset), before its body is built', () => {
    expectBuildError(twoStates({}), 'ERR_UNSUPPORTED_OP', /Scan node 'scan' \(opset 8\).*not supported/, 8);
    const plan = toPlan(twoStates({}), 8);
    (plan.nodes[0].attrs.body as { value: Plan }).value.nodes[0].op = 'NoSuchOp';
    expectCode(() => nativeSession(plan), 'ERR_UNSUPPORTED_OP', /Scan node 'scan' \(opset 8\)/);
  });

  it('refuses malformed Scan attributes (ERR_MODEL_FORMAT)', () => {
    expectBuildError(twoStates({ num_scan_inputs: 4 }), 'ERR_MODEL_FORMAT', /num_scan_inputs 4 does not fit/);
    expectBuildError(twoStates({ scan_input_axes: [0, 1] }), 'ERR_MODEL_FORMAT', /scan_input_axes has 2 entries, expected 1/);
    expectBuildError(twoStates({ scan_output_directions: [2] }), 'ERR_MODEL_FORMAT', /scan_output_directions entries must be 0 or 1/);
    expectRunError(twoStates({ scan_input_axes: [2] }), { ...init, xs: rows }, 'ERR_SHAPE_MISMATCH', /Scan node 'scan': axis 2 is out of range/);
    expectRunError(twoStates({ scan_output_axes: [3] }), { ...init, xs: rows }, 'ERR_SHAPE_MISMATCH', /Scan node 'scan': axis 3 is out of range/);
  });

  it('zero length: the states pass through, scan outputs are empty (onnxruntime refuses this)', () => {
    const r = runNative(twoStates({ scan_output_axes: [1] }, 'xs:float32[?,3]'), { ...init, xs: f32([0, 3], []) });
    expect(r.s.data).toEqual([0, 0, 0]);
    expect(r.p.data).toEqual([1, 1, 1]);
    expect(r.ys.dims).toEqual([3, 0]);  // the body's y is declared [3]
  });
});

// ---------------------------------------------------------------- sessions

describe('control flow in sessions', () => {
  // A Loop whose body holds a matrix product with a constant weight, then a Scan over the
  // Loop's result and an If choosing between the Scan's outputs.
  const W = f32([8, 8], Array.from({ length: 64 }, (_, i) => ((i * 7) % 11) / 10 - 0.5));
  const g: G = {
    inputs: ['M:int64[]', 'x4:float32[4,8]', 'x:float32[8]', 'c:bool[]'],
    nodes: [
      {
        op: 'Loop', name: 'loop', inputs: ['M', '', 'x4'], outputs: ['v', 'trace'],
        attrs: {
          body: {
            inputs: ['i:int64[]', 'cin:bool[]', 'vin:float32[4,8]'],
            constants: { W },
            nodes: [
              { op: 'Identity', inputs: ['cin'], outputs: ['cout:bool[]'] },
              { op: 'MatMul', inputs: ['vin', 'W'], outputs: ['mm'] },
              { op: 'Tanh', inputs: ['mm'], outputs: ['vout'] },
              { op: 'ReduceSum', inputs: ['vout'], outputs: ['t:float32[]'], attrs: { keepdims: 0 } },
            ],
            outputs: ['cout', 'vout', 't'],
          },
        },
      },
      {
        op: 'Scan', name: 'scan', inputs: ['x', 'v'], outputs: ['acc', 'rows'], attrs: {
          num_scan_inputs: 1,
          body: {
            inputs: ['a:float32[8]', 'r:float32[8]'],
            nodes: [{ op: 'Add', inputs: ['a', 'r'], outputs: ['ao'] }, { op: 'Mul', inputs: ['ao', 'r'], outputs: ['m'] }],
            outputs: ['ao', 'm'],
          },
        },
      },
      {
        op: 'If', name: 'pick', inputs: ['c'], outputs: ['out'], captures: ['acc', 'rows'],
        attrs: {
          then_branch: { inputs: [], nodes: [], outputs: ['rows'] },
          else_branch: { inputs: [], nodes: [{ op: 'Sub', inputs: ['rows', 'acc'], outputs: ['d'] }], outputs: ['d'] },
        },
      },
    ],
    outputs: ['v', 'trace', 'out'],
  };
  const feedsFor = (k: number) => ({
    M: i64([], [k % 4]),
    x4: f32([4, 8], Array.from({ length: 32 }, (_, i) => Math.sin(i + k))),
    x: f32([8], Array.from({ length: 8 }, (_, i) => (i - k) / 8)),
    c: bool([], [k % 2]),
  });

  it('matches onnxruntime', async () => {
    for (let k = 0; k < 4; k++) await expectSameAsOrt(g, feedsFor(k));
  });

  it('concurrent async runs give what runSync gives', async () => {
    const s = nativeSession(toPlan(g, OPSET), 2);
    const feeds = Array.from({ length: 12 }, (_, k) => feedList(g, feedsFor(k)));
    const sync = feeds.map((f) => s.runSync(f).map((o) => ({ dims: o.dims, data: plain(o.data) })));
    const runs = await Promise.all(feeds.map((f, k) => s.run(f, 1 + (k % 2))));
    runs.forEach((outs, k) => expect(outs.map((o) => ({ dims: o.dims, data: plain(o.data) }))).toEqual(sync[k]));
  });

  it('repeated runs reuse the arena without growing it', () => {
    const s = nativeSession(toPlan(g, OPSET));
    const f = feedList(g, { ...feedsFor(3), M: i64([], [6]) });
    const first = s.runSync(f).map((o) => plain(o.data));
    s.runSync(f);
    const arena = s.memoryUsage().arenaBytes;
    expect(arena).toBeGreaterThan(0);
    for (let i = 0; i < 20; i++) expect(s.runSync(f).map((o) => plain(o.data))).toEqual(first);
    expect(s.memoryUsage().arenaBytes).toBe(arena);
  });

  it('memory usage counts what the subgraphs hold', () => {
    const s = nativeSession(toPlan(g, OPSET));
    // The body's 8x8 weight, packed (or kept) by its MatMul.
    expect(s.packedBytes).toBeGreaterThanOrEqual(64 * 4);
  });

  it('an abort stops a long Loop between iterations', async () => {
    const endless: G = loopGraph({
      inputs: ['x:float32[16]'], m: '', cond: '', carried: ['x'], outputs: ['v'],
      body: {
        inputs: ['i:int64[]', 'cin:bool[]', 'vin:float32[16]'],
        constants: { t: bool([], [1]) },
        nodes: [{ op: 'Identity', inputs: ['t'], outputs: ['cout:bool[]'] }, { op: 'Neg', inputs: ['vin'], outputs: ['vout'] }],
        outputs: ['cout', 'vout'],
      },
    });
    const s = nativeSession(toPlan(endless, OPSET));
    const cancel = new Int32Array(1);
    const p = s.run([f32([16], new Array(16).fill(1))], 1, cancel);
    setTimeout(() => (cancel[0] = 1), 30);
    await expect(p).rejects.toMatchObject({ code: 'ERR_ABORTED' });
    // A Scan over a long input, aborted the same way, inside an If.
    const long: G = {
      inputs: ['c:bool[]', 'xs:float32[?,4]'],
      nodes: [{
        op: 'If', name: 'gate', inputs: ['c'], outputs: ['s'], captures: ['xs'],
        attrs: {
          then_branch: {
            inputs: [],
            constants: { z: f32([4], [0, 0, 0, 0]) },
            nodes: [{
              op: 'Scan', name: 'sum', inputs: ['z', 'xs'], outputs: ['sf'], attrs: {
                num_scan_inputs: 1,
                body: { inputs: ['a:float32[4]', 'r:float32[4]'], nodes: [{ op: 'Add', inputs: ['a', 'r'], outputs: ['ao'] }], outputs: ['ao'] },
              },
            }],
            outputs: ['sf'],
          },
          else_branch: { inputs: [], constants: { z: f32([4], [0, 0, 0, 0]) }, nodes: [], outputs: ['z'] },
        },
      }],
      outputs: ['s'],
    };
    const s2 = nativeSession(toPlan(long, OPSET));
    const n = 2_000_000;
    const flag = new Int32Array(1);
    const q = s2.run([bool([], [1]), { dtype: 'float32', dims: [n, 4], data: new Float32Array(n * 4) }], 1, flag);
    setTimeout(() => (flag[0] = 1), 30);
    await expect(q).rejects.toMatchObject({ code: 'ERR_ABORTED' });
  });
});
