// GroupNormalization (native group-norm.cc), com.microsoft MultiHeadAttention (written out at load
// as standard ops: lib/onnx/lower-contrib-ops.ts) and the bit operations (BitwiseAnd / Or / Xor /
// Not, BitShift: native bitwise.cc), against onnxruntime-node on models built here, then the
// errors a bad model or feed gets. Shape functions: lib/ir/shapes/more-ops.ts.
import { describe, expect, it } from 'vitest';
import { InferenceSession, Tensor } from '../lib';
import { encodeModel, valueInfo, type ModelSpec, type NodeSpec, type TensorSpec } from './onnx-build-model';
import { anyShape, both, compareAll, ELEM, expectClose, expectLoadError, expectRunError, float, int, seeded, size, str, type Feed } from './ort-compare';

const f32 = (dims: number[], data: ArrayLike<number>): Feed => ({ type: 'float32', data: Float32Array.from(data), dims });

function model(nodes: NodeSpec[], feeds: Record<string, Feed>, outputs: Record<string, unknown>[], opset = 18, initializers: TensorSpec[] = [], domains?: ModelSpec['domains']): ModelSpec {
  return {
    opset,
    irVersion: opset >= 19 ? 9 : 8,
    nodes,
    inputs: Object.entries(feeds).map(([name, f]) => valueInfo(name, f.dims, ELEM[f.type])),
    outputs,
    initializers,
    domains,
  };
}

// ------------------------------------------------------------------ GroupNormalization

/** The spec's formula in double: per image and group, (x - mean) / sqrt(var + epsilon), then scale and bias per group (18) or channel (21). */
function groupNormReference(x: Float32Array, dims: number[], groups: number, scale: Float32Array, bias: Float32Array, epsilon: number, perChannel: boolean): Float32Array {
  const [N, C] = dims;
  const spatial = size(dims.slice(2));
  const block = (C / groups) * spatial;
  const y = new Float32Array(x.length);
  for (let i = 0; i < N * groups; i++) {
    const at = i * block;
    let mean = 0;
    for (let j = 0; j < block; j++) mean += x[at + j];
    mean /= block;
    let variance = 0;
    for (let j = 0; j < block; j++) variance += (x[at + j] - mean) ** 2;
    variance /= block;
    for (let j = 0; j < block; j++) {
      const c = (i % groups) * (C / groups) + Math.floor(j / spatial);
      const p = perChannel ? c : i % groups;
      y[at + j] = ((x[at + j] - mean) / Math.sqrt(variance + epsilon)) * scale[p] + bias[p];
    }
  }
  return y;
}

const groupNorm = (groups: number, epsilon?: number): NodeSpec => ({
  op: 'GroupNormalization',
  name: 'gn',
  inputs: ['x', 'scale', 'bias'],
  outputs: ['y'],
  attributes: [int('num_groups', groups), ...(epsilon === undefined ? [] : [float('epsilon', epsilon)])],
});

describe('GroupNormalization, against onnxruntime and the spec formula', () => {
  const cases: [number[], number][] = [
    [[2, 6, 7], 3],
    [[2, 6, 7], 1],
    [[3, 5, 3, 5], 5],
    [[1, 4, 3, 5], 2],
    [[2, 6, 3, 2, 3], 6],
    [[1, 9, 2, 3, 5], 3],
  ];
  for (const opset of [18, 21]) {
    for (const [dims, groups] of cases) {
      it(`opset ${opset}: X ${JSON.stringify(dims)}, ${groups} group(s)`, async () => {
        const C = dims[1];
        const params = opset >= 21 ? C : groups;
        // An offset keeps the mean away from 0, where a wrong mean would hardly show.
        const x = seeded(size(dims), dims.length * 7 + groups, 3).map((v, i) => v + (i % 5) - 1);
        const scale = seeded(params, 11 + groups, 2), bias = seeded(params, 13 + groups);
        const epsilon = groups === 1 ? 1e-3 : undefined;
        const feeds = { x: f32(dims, x), scale: f32([params], scale), bias: f32([params], bias) };
        const spec = model([groupNorm(groups, epsilon)], feeds, [anyShape('y')], opset);
        const want = groupNormReference(x, dims, groups, scale, bias, epsilon ?? 1e-5, opset >= 21);
        const s = await InferenceSession.create(encodeModel(spec), { threads: 2 });
        try {
          const got = (await s.run(Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, new Tensor(v.type, v.data as Float32Array, v.dims)])))).y;
          expect(got.dims).toEqual(dims);
          const bad = Array.from(want).findIndex((w, i) => !(Math.abs((got.data as Float32Array)[i] - w) <= 1e-4 * (1 + Math.abs(w))));
          expect(bad, bad < 0 ? '' : `y[${bad}] ${(got.data as Float32Array)[bad]} vs ${want[bad]}`).toBe(-1);
        } finally {
          await s.release();
        }
        await compareAll(spec, feeds, 1e-4);
      });
    }
  }

  it('refuses channels not divisible by num_groups, scale of the wrong length for its opset, rank 2, stash_type 0', async () => {
    const x = f32([1, 6, 4], seeded(24, 1));
    const feeds = (n: number) => ({ x, scale: f32([n], seeded(n, 2)), bias: f32([n], seeded(n, 3)) });
    await expectLoadError(model([groupNorm(4)], feeds(4), [anyShape('y')], 18), 'ERR_SHAPE_MISMATCH', /"gn".*6 channels .* not divisible by num_groups 4/);
    await expectLoadError(model([groupNorm(3)], feeds(6), [anyShape('y')], 18), 'ERR_SHAPE_MISMATCH', /scale \[6\] must be \[3\], one value per group \(opset 18\)/);
    await expectLoadError(model([groupNorm(3)], feeds(3), [anyShape('y')], 21), 'ERR_SHAPE_MISMATCH', /scale \[3\] must be \[6\], one value per channel \(opset 21\)/);
    const flat = { x: f32([2, 6], seeded(12, 1)), scale: f32([3], seeded(3, 2)), bias: f32([3], seeded(3, 3)) };
    await expectLoadError(model([groupNorm(3)], flat, [anyShape('y')], 18), 'ERR_SHAPE_MISMATCH', /rank >= 3/);
    const stash = { ...groupNorm(3), attributes: [int('num_groups', 3), int('stash_type', 0)] };
    await expectLoadError(model([stash], feeds(6), [anyShape('y')], 21), 'ERR_UNSUPPORTED_OP', /stash_type 0 is not supported/);
    await expectLoadError(model([groupNorm(3)], feeds(3), [anyShape('y')], 17), 'ERR_UNSUPPORTED_OP', /opset 17 for operator GroupNormalization/);
  });

  it('refuses at run a fed X whose channels do not divide into the groups', async () => {
    const spec = model([groupNorm(3)], { x: f32([1, 'C' as never, 4], []), scale: f32([3], []), bias: f32([3], []) }, [anyShape('y')], 18);
    await expectRunError(spec, { x: f32([1, 4, 4], seeded(16, 1)), scale: f32([3], seeded(3, 2)), bias: f32([3], seeded(3, 3)) }, 'ERR_SHAPE_MISMATCH', /4 channels .* not divisible by num_groups 3/);
  });
});

// ------------------------------------------------------------------ MultiHeadAttention

const MS = [{ domain: 'com.microsoft', version: 1 }];

function mha(inputs: string[], heads: number, attributes: Record<string, unknown>[] = [], outputs = ['y']): NodeSpec {
  return { op: 'MultiHeadAttention', name: 'mha', domain: 'com.microsoft', inputs, outputs, attributes: [int('num_heads', heads), ...attributes] };
}

/** End positions (1-D), or 0/1 per batch and key (2-D) or per batch, query and key (3-D), leaving each query at least one key. */
function paddingMask(form: '1d' | '2d' | '3d', B: number, L: number, S = 1): Feed {
  if (form === '1d') return { type: 'int32', data: Int32Array.from({ length: B }, (_, b) => Math.max(1, L - 1 - (b % L))), dims: [B] };
  const rows = form === '2d' ? B : B * S;
  const data = Int32Array.from({ length: rows * L }, (_, i) => (i % L === 0 || (i * 7 + Math.floor(i / L)) % 3 !== 0 ? 1 : 0));
  return { type: 'int32', data, dims: form === '2d' ? [B, L] : [B, S, L] };
}

describe('com.microsoft MultiHeadAttention, against onnxruntime', () => {
  const configs = [
    { B: 2, S: 5, L: 5, heads: 2, H: 4, Hv: 4 },
    { B: 2, S: 3, L: 7, heads: 4, H: 2, Hv: 3 },
    { B: 1, S: 6, L: 4, heads: 1, H: 8, Hv: 8 },
    { B: 3, S: 4, L: 9, heads: 3, H: 5, Hv: 2 },
  ];
  for (const { B, S, L, heads, H, Hv } of configs) {
    const D = heads * H, Dv = heads * Hv;
    for (const mask of ['none', '1d', '2d', '3d'] as const) {
      for (const withBias of [false, true]) {
        const attnBiasBatch = (B + S) % 2 ? 1 : B;
        it(`B ${B}, S ${S}, L ${L}, ${heads} heads of ${H} / ${Hv}: mask ${mask}, ${withBias ? 'bias and attention_bias' : 'no biases'}`, async () => {
          const feeds: Record<string, Feed> = {
            q: f32([B, S, D], seeded(B * S * D, 1 + S)),
            k: f32([B, L, D], seeded(B * L * D, 2 + L)),
            v: f32([B, L, Dv], seeded(B * L * Dv, 3)),
          };
          const inputs = ['q', 'k', 'v', '', '', ''];
          if (withBias) {
            feeds.bias = f32([2 * D + Dv], seeded(2 * D + Dv, 4, 0.5));
            feeds.ab = f32([attnBiasBatch, heads, S, L], seeded(attnBiasBatch * heads * S * L, 5));
            inputs[3] = 'bias';
            inputs[5] = 'ab';
          }
          if (mask !== 'none') {
            feeds.m = paddingMask(mask, B, L, S);
            inputs[4] = 'm';
          }
          const attributes = H === 5 ? [float('scale', 0.3), float('mask_filter_value', -500)] : [];
          await compareAll(model([mha(inputs, heads, attributes)], feeds, [anyShape('y')], 17, [], MS), feeds, 1e-4);
        });
      }
    }
  }

  for (const [S, L] of [[6, 6], [3, 6], [6, 3]]) {
    it(`unidirectional (keys t > s hidden but from the last query, as onnxruntime), S ${S}, L ${L}, with bias and a 2-D mask`, async () => {
      const [B, heads, H] = [2, 2, 3];
      const D = heads * H;
      const feeds = {
        q: f32([B, S, D], seeded(B * S * D, 7)),
        k: f32([B, L, D], seeded(B * L * D, 8)),
        v: f32([B, L, D], seeded(B * L * D, 9)),
        bias: f32([3 * D], seeded(3 * D, 10, 0.5)),
        m: paddingMask('2d', B, L),
      };
      await compareAll(model([mha(['q', 'k', 'v', 'bias', 'm'], heads, [int('unidirectional', 1)])], feeds, [anyShape('y')], 17, [], MS), feeds, 1e-4);
    });
  }

  // onnxruntime's CPU kernel does not take the packed forms: ternion's packed run is compared
  // with onnxruntime's on the same values unpacked.
  it('packed key / value [B, L, N, 2, H] and packed query / key / value [B, S, N, 3, H], with bias', async () => {
    const [B, S, L, heads, H] = [2, 4, 5, 2, 3];
    const D = heads * H;
    const packed = (T: number, parts: number, seed: number) => seeded(B * T * heads * parts * H, seed);
    const part = (p: Float32Array, T: number, parts: number, which: number) => {
      const out = new Float32Array(B * T * D);
      for (let r = 0; r < B * T * heads; r++) for (let h = 0; h < H; h++) out[r * H + h] = p[(r * parts + which) * H + h];
      return out;
    };
    const bias = f32([3 * D], seeded(3 * D, 12, 0.5));
    const kv = packed(L, 2, 10);
    const q = seeded(B * S * D, 11);
    const unpackedKV = { q: f32([B, S, D], q), k: f32([B, L, D], part(kv, L, 2, 0)), v: f32([B, L, D], part(kv, L, 2, 1)), bias };
    const want = (await both(model([mha(['q', 'k', 'v', 'bias'], heads)], unpackedKV, [anyShape('y')], 17, [], MS), unpackedKV)).want.y;
    const kvFeeds = { q: f32([B, S, D], q), kv: f32([B, L, heads, 2, H], kv), bias };
    const s = await InferenceSession.create(encodeModel(model([mha(['q', 'kv', '', 'bias'], heads)], kvFeeds, [anyShape('y')], 17, [], MS)));
    try {
      const got = await s.run(Object.fromEntries(Object.entries(kvFeeds).map(([n, f]) => [n, new Tensor('float32', f.data as Float32Array, f.dims)])));
      expectClose(got.y, want, 1e-4, 'packed kv');
    } finally {
      await s.release();
    }
    const qkv = packed(S, 3, 13);
    const unpackedQKV = { q: f32([B, S, D], part(qkv, S, 3, 0)), k: f32([B, S, D], part(qkv, S, 3, 1)), v: f32([B, S, D], part(qkv, S, 3, 2)), bias };
    const wantQKV = (await both(model([mha(['q', 'k', 'v', 'bias'], heads)], unpackedQKV, [anyShape('y')], 17, [], MS), unpackedQKV)).want.y;
    const qkvFeeds = { qkv: f32([B, S, heads, 3, H], qkv), bias };
    const s2 = await InferenceSession.create(encodeModel(model([mha(['qkv', '', '', 'bias'], heads)], qkvFeeds, [anyShape('y')], 17, [], MS)));
    try {
      const got = await s2.run(Object.fromEntries(Object.entries(qkvFeeds).map(([n, f]) => [n, new Tensor('float32', f.data as Float32Array, f.dims)])));
      expectClose(got.y, wantQKV, 1e-4, 'packed qkv');
    } finally {
      await s2.release();
    }
  });

  it('refuses the key / value cache by name, keys split into heads, the [3B + 2] mask, widths that do not split into heads', async () => {
    const [B, S, heads, H] = [2, 3, 2, 2];
    const D = heads * H;
    const base = { q: f32([B, S, D], seeded(B * S * D, 1)), k: f32([B, S, D], seeded(B * S * D, 2)), v: f32([B, S, D], seeded(B * S * D, 3)) };
    const past = { ...base, pk: f32([B, heads, 1, H], seeded(B * heads * H, 4)), pv: f32([B, heads, 1, H], seeded(B * heads * H, 5)) };
    await expectLoadError(model([mha(['q', 'k', 'v', '', '', '', 'pk', 'pv'], heads)], past, [anyShape('y')], 17, [], MS), 'ERR_UNSUPPORTED_OP', /"mha" \(MultiHeadAttention, com.microsoft\): its input past_key is not supported/);
    await expectLoadError(model([mha(['q', 'k', 'v'], heads, [], ['y', 'present_key'])], base, [anyShape('y'), anyShape('present_key')], 17, [], MS), 'ERR_UNSUPPORTED_OP', /its output present_key is not supported/);
    const bnsh = { q: base.q, k: f32([B, heads, S, H], seeded(B * S * D, 2)), v: f32([B, heads, S, H], seeded(B * S * D, 3)) };
    await expectLoadError(model([mha(['q', 'k', 'v'], heads)], bnsh, [anyShape('y')], 17, [], MS), 'ERR_UNSUPPORTED_OP', /a key of rank 4 is not supported/);
    const startEnd = { ...base, m: { type: 'int32', data: new Int32Array(3 * B + 2), dims: [3 * B + 2] } as Feed };
    await expectLoadError(model([mha(['q', 'k', 'v', '', 'm'], heads)], startEnd, [anyShape('y')], 17, [], MS), 'ERR_UNSUPPORTED_OP', /the \[3B \+ 2\] form with start positions is not supported/);
    await expectLoadError(model([mha(['q', 'k', 'v'], 3)], base, [anyShape('y')], 17, [], MS), 'ERR_UNSUPPORTED_OP', /width 4 is not divisible by num_heads 3/);
    const badBias = { ...base, bias: f32([3 * D - 1], seeded(3 * D - 1, 6)) };
    await expectLoadError(model([mha(['q', 'k', 'v', 'bias'], heads)], badBias, [anyShape('y')], 17, [], MS), 'ERR_UNSUPPORTED_OP', /bias \[11\] must be \[12\]/);
    const packedWithValue = { q: base.q, kv: f32([B, S, heads, 2, H], seeded(B * S * D * 2, 7)), v: base.v };
    await expectLoadError(model([mha(['q', 'kv', 'v'], heads)], packedWithValue, [anyShape('y')], 17, [], MS), 'ERR_UNSUPPORTED_OP', /a packed key \[B, L, N, 2, H\] takes no value/);
  });
});

// ------------------------------------------------------------------ bit operations

type IntType = 'int8' | 'uint8' | 'int32' | 'int64';

/** Integers covering the type's range, signs and high bits included. */
function ints(type: IntType, n: number, seed: number): Feed['data'] {
  const r = seeded(n, seed);
  switch (type) {
    case 'int8': return Int8Array.from(r, (v) => Math.round(v * 127));
    case 'uint8': return Uint8Array.from(r, (v) => Math.round((v + 1) * 127.5));
    case 'int32': return Int32Array.from(r, (v) => Math.round(v * 2 ** 31 - 0.5));
    case 'int64': return BigInt64Array.from(r, (v) => BigInt(Math.round(v * 2 ** 40)) * 1048583n);
  }
}

describe('bit operations, against onnxruntime', () => {
  const shapes: [number[], number[]][] = [
    [[2, 3, 4], [2, 3, 4]],
    [[2, 3, 4], [4]],
    [[3, 1, 5], [1, 4, 1]],
    [[], [2, 5]],
  ];
  for (const type of ['int8', 'uint8', 'int32', 'int64'] as const) {
    for (const op of ['BitwiseAnd', 'BitwiseOr', 'BitwiseXor']) {
      it(`${op} ${type}, broadcasting`, async () => {
        for (const [i, [a, b]] of shapes.entries()) {
          const feeds = { a: { type, data: ints(type, size(a), 3 + i), dims: a }, b: { type, data: ints(type, size(b), 5 + i), dims: b } };
          await compareAll(model([{ op, name: 'bw', inputs: ['a', 'b'], outputs: ['y'] }], feeds, [anyShape('y', ELEM[type])]), feeds);
        }
      });
    }
    it(`BitwiseNot ${type}`, async () => {
      const feeds = { a: { type, data: ints(type, 30, 7), dims: [2, 3, 5] } };
      await compareAll(model([{ op: 'BitwiseNot', name: 'bn', inputs: ['a'], outputs: ['y'] }], feeds, [anyShape('y', ELEM[type])]), feeds);
    });
  }

  for (const direction of ['LEFT', 'RIGHT']) {
    it(`BitShift ${direction} uint8, broadcasting, shifts 0 to 10 (by 8 or more: 0, as onnxruntime)`, async () => {
      const x = ints('uint8', 24, 9);
      for (const [dims, amounts] of [[[2, 3, 4], [4]], [[2, 3, 4], [2, 3, 4]], [[2, 3, 4], [2, 1, 1]]] as const) {
        const y = Uint8Array.from({ length: size([...amounts]) }, (_, i) => (i * 3 + 1) % 11);
        const feeds = { x: { type: 'uint8', data: x, dims: [...dims] } as Feed, y: { type: 'uint8', data: y, dims: [...amounts] } as Feed };
        await compareAll(model([{ op: 'BitShift', name: 'shift', inputs: ['x', 'y'], outputs: ['z'], attributes: [str('direction', direction)] }], feeds, [anyShape('z', 2)], 11), feeds);
      }
    });
  }

  it('refuses other element types, mixed types, a bad direction, shapes that do not broadcast', async () => {
    const f = { a: f32([3], [1, 2, 3]), b: f32([3], [1, 2, 3]) };
    await expectLoadError(model([{ op: 'BitwiseAnd', name: 'bw', inputs: ['a', 'b'], outputs: ['y'] }], f, [anyShape('y')]), 'ERR_DTYPE', /"bw" \(BitwiseAnd\): A is float32, but BitwiseAnd takes int8 or uint8 or int32 or int64/);
    const mixed = { a: { type: 'int32', data: new Int32Array(3), dims: [3] } as Feed, b: { type: 'int64', data: new BigInt64Array(3), dims: [3] } as Feed };
    await expectLoadError(model([{ op: 'BitwiseXor', name: 'bw', inputs: ['a', 'b'], outputs: ['y'] }], mixed, [anyShape('y', 6)]), 'ERR_SHAPE_MISMATCH', /A is int32 but B is int64/);
    const i32 = { x: { type: 'int32', data: new Int32Array(3), dims: [3] } as Feed, y: { type: 'int32', data: new Int32Array(3), dims: [3] } as Feed };
    await expectLoadError(model([{ op: 'BitShift', name: 'shift', inputs: ['x', 'y'], outputs: ['z'], attributes: [str('direction', 'LEFT')] }], i32, [anyShape('z', 6)], 11), 'ERR_DTYPE', /"shift" \(BitShift\): X is int32, but BitShift takes uint8/);
    const u8 = { x: { type: 'uint8', data: new Uint8Array(3), dims: [3] } as Feed, y: { type: 'uint8', data: new Uint8Array(3), dims: [3] } as Feed };
    await expectLoadError(model([{ op: 'BitShift', name: 'shift', inputs: ['x', 'y'], outputs: ['z'], attributes: [str('direction', 'UP')] }], u8, [anyShape('z', 2)], 11), 'ERR_MODEL_FORMAT', /direction "UP" must be LEFT or RIGHT/);
    const dynamic = model([{ op: 'BitwiseOr', name: 'bw', inputs: ['a', 'b'], outputs: ['y'] }], { a: { type: 'uint8', data: new Uint8Array(), dims: ['n' as never] }, b: { type: 'uint8', data: new Uint8Array(), dims: [4] } }, [anyShape('y', 2)]);
    await expectRunError(dynamic, { a: { type: 'uint8', data: new Uint8Array(3), dims: [3] }, b: { type: 'uint8', data: new Uint8Array(4), dims: [4] } }, 'ERR_SHAPE_MISMATCH', /BitwiseOr node 'bw'.*cannot be broadcast/);
  });
});

// ------------------------------------------------------------------ single-channel convs

describe('convs over one input channel, against onnxruntime', () => {
  // A long kernel (an STFT written as a 1-D conv, as Silero VAD does: 256 taps, stride 128, a few
  // frames) runs as a GEMM; a short one (a grayscale stem) as the direct loop. Both paths, with a
  // bias and padding, one and two threads.
  const cases: [string, number[], number[], number[], number[]][] = [
    // name, input dims, weight dims, strides, pads
    ['STFT-like 1-D, 256 taps, stride 128', [1, 1, 576], [258, 1, 256], [128], [0, 0]],
    ['1-D, 40 taps, stride 10, padded, batch 2', [2, 1, 403], [24, 1, 40], [10], [5, 7]],
    ['2-D grayscale stem 7x7, stride 2', [1, 1, 29, 31], [8, 1, 7, 7], [2, 2], [3, 3, 3, 3]],
    ['2-D 9x9 taps (81: long), stride 1', [1, 1, 12, 13], [5, 1, 9, 9], [1, 1], [4, 4, 4, 4]],
  ];
  it.each(cases)('%s', async (_name, xDims, wDims, strides, pads) => {
    const spec = model(
      [{ op: 'Conv', inputs: ['x', 'w', 'b'], outputs: ['y'], attributes: [{ name: 'strides', type: 7, ints: strides }, { name: 'pads', type: 7, ints: pads }] }],
      { x: f32(xDims, []) }, [anyShape('y')], 13,
      [{ name: 'w', dims: wDims, floatData: Array.from(seeded(size(wDims), 3, 0.2)) }, { name: 'b', dims: [wDims[0]], floatData: Array.from(seeded(wDims[0], 4)) }],
    );
    for (const threads of [1, 2]) await compareAll(spec, { x: f32(xDims, seeded(size(xDims), 5)) }, 1e-5, threads);
  });
});
