// The .tern model file (docs/format.md): real quantized models round-trip bit-exactly through
// save -> InferenceSession.create, the file is packed, aligned and deterministic, and every
// corruption (flipped bytes, truncation, newer version, bad magic, structural lies with valid
// checksums) gives ERR_MODEL_FORMAT and nothing else.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InferenceSession, loadNpy, readTern, Tensor, TERN_VERSION, writeTern, type TernModel } from '../lib';
import { packCodes2, packCodes4, unpackCodes2, unpackCodes4 } from '../lib/format/code-packing';
import { crc32, crc32Generic } from '../lib/format/crc32';
import { ENTRY, HEADER } from '../lib/format/tern-layout';
import type { ConstantTensor, Graph } from '../lib/ir';
import { quantize, type QuantizedModel, type QuantizeOptions } from '../lib/quantize';
import { ROOT } from './native-build';
import { rng } from './helpers';

const modelPath = join(ROOT, 'models', 'fashion-mnist-resnet.onnx');
const CALIB = 128, TEST = 64;

function pixels(images: Uint8Array, from: number, count: number): Float32Array {
  const x = new Float32Array(count * 784);
  for (let i = 0; i < x.length; i++) x[i] = images[from * 784 + i] / 255;
  return x;
}

function formatErrorOf(bytes: Uint8Array): (Error & { code?: string }) | undefined {
  try {
    readTern(bytes);
  } catch (e) {
    return e as Error & { code?: string };
  }
  return undefined;
}

function expectFormatError(bytes: Uint8Array, message?: RegExp, what = ''): void {
  const e = formatErrorOf(bytes);
  expect(e, `expected ERR_MODEL_FORMAT ${what}`).toBeInstanceOf(Error);
  expect(e!.name, `${what}: ${e!.message}`).toBe('TernionError');
  expect(e!.code, `${what}: ${e!.message}`).toBe('ERR_MODEL_FORMAT');
  if (message) expect(e!.message, what).toMatch(message);
}

// ---- editing a file while keeping its checksums valid, to reach the checks behind them

interface Entry { kind: number; elementType: number; encoding: number; offset: number; length: number; elementCount: number }

function entries(bytes: Uint8Array): Entry[] {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const table = Number(v.getBigUint64(HEADER.tableOffset, true));
  const count = v.getUint32(HEADER.sectionCount, true);
  return Array.from({ length: count }, (_, i) => {
    const e = table + i * ENTRY.size;
    return {
      kind: v.getUint16(e + ENTRY.kind, true),
      elementType: v.getUint8(e + ENTRY.elementType),
      encoding: v.getUint8(e + ENTRY.encoding),
      offset: Number(v.getBigUint64(e + ENTRY.offset, true)),
      length: Number(v.getBigUint64(e + ENTRY.length, true)),
      elementCount: Number(v.getBigUint64(e + ENTRY.elementCount, true)),
    };
  });
}

/** Applies `edit` to a copy, then recomputes every section CRC, the table CRC and the header CRC. */
function mutate(original: Uint8Array, edit: (bytes: Uint8Array, view: DataView, list: Entry[]) => void, resize?: number): Uint8Array {
  let bytes = original.slice();
  if (resize !== undefined) {
    const b = new Uint8Array(resize);
    b.set(bytes.subarray(0, Math.min(resize, bytes.length)));
    bytes = b;
  }
  const view = new DataView(bytes.buffer);
  edit(bytes, view, entries(bytes));
  const table = Number(view.getBigUint64(HEADER.tableOffset, true));
  const count = view.getUint32(HEADER.sectionCount, true);
  for (let i = 0; i < count; i++) {
    const e = table + i * ENTRY.size;
    if (e + ENTRY.size > bytes.length) break;
    const off = Number(view.getBigUint64(e + ENTRY.offset, true)), len = Number(view.getBigUint64(e + ENTRY.length, true));
    if (off + len <= bytes.length) view.setUint32(e + ENTRY.crc, crc32(bytes.subarray(off, off + len)), true);
  }
  if (table + count * ENTRY.size <= bytes.length) view.setUint32(HEADER.tableCrc, crc32(bytes.subarray(table, table + count * ENTRY.size)), true);
  view.setUint32(HEADER.size - 4, crc32(bytes.subarray(0, HEADER.size - 4)), true);
  return bytes;
}

function setEntry(view: DataView, i: number, field: 'offset' | 'length' | 'elementCount', value: number): void {
  const table = Number(view.getBigUint64(HEADER.tableOffset, true));
  view.setBigUint64(table + i * ENTRY.size + ENTRY[field], BigInt(value), true);
}

/** Replaces `from` by `to` (same UTF-8 length) inside the graph JSON section. */
function editJson(bytes: Uint8Array, from: string, to: string): Uint8Array {
  expect(Buffer.byteLength(from)).toBe(Buffer.byteLength(to));
  return mutate(bytes, (b, _v, list) => {
    const g = list.find((e) => e.kind === 1)!;
    const text = Buffer.from(b.subarray(g.offset, g.offset + g.length)).toString('utf8');
    expect(text.includes(from), `graph JSON contains ${from}`).toBe(true);
    b.set(Buffer.from(text.replace(from, to), 'utf8'), g.offset);
  });
}

function sectionOf(model: TernModel, name: string): TernModel['sections'][number] {
  const s = model.sections.find((x) => x.name === name);
  expect(s, `section of ${name}`).toBeDefined();
  return s!;
}

function bytesOf(t: ConstantTensor): Buffer {
  return Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

/** The graph with each tensor's data replaced by its array type and a digest of its bytes (deep-equal on megabytes of typed arrays is slow). */
function skeleton(graph: Graph): unknown {
  const digest = (t: ConstantTensor) => ({ ...t, data: `${t.data.constructor.name}:${t.data.length}:${createHash('sha256').update(bytesOf(t)).digest('hex')}` });
  return {
    ...graph,
    initializers: new Map([...graph.initializers].map(([k, t]) => [k, digest(t)])),
    nodes: graph.nodes.map((n) => ({
      ...n,
      attributes: Object.fromEntries(Object.entries(n.attributes).map(([k, a]) => [k, a.type === 'tensor' ? { type: 'tensor', value: digest(a.value) } : a])),
    })),
  };
}

// ---- the models

interface Case { label: string; options: Omit<QuantizeOptions, 'calibration'>; bits: 2 | 4 | 8; N: number | null }

const CASES: Case[] = [
  { label: 'ternary N=4', options: { weights: 'ternary', groupSize: 4 }, bits: 2, N: 4 },
  { label: 'ternary-asym N=16 folded', options: { weights: 'ternary-asym', groupSize: 16, form: 'folded' }, bits: 2, N: 16 },
  { label: 'int4 N=16', options: { weights: 'int4', groupSize: 16 }, bits: 4, N: 16 },
  { label: 'int8', options: { weights: 'int8' }, bits: 8, N: null },
];

const models = new Map<string, { q: QuantizedModel; bytes: Uint8Array }>();
let images: Tensor;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ternion-tern-'));
  const calib = loadNpy(join(ROOT, 'data', 'fashion-mnist-calib-images.npy'));
  const calibration = new Tensor('float32', pixels(calib.data as Uint8Array, 0, CALIB), [CALIB, 1, 28, 28]);
  const test = loadNpy(join(ROOT, 'data', 'fashion-mnist-test-images.npy'));
  images = new Tensor('float32', pixels(test.data as Uint8Array, 0, TEST), [TEST, 1, 28, 28]);
  for (const c of CASES) {
    const q = await quantize(modelPath, { ...c.options, calibration });
    models.set(c.label, { q, bytes: q.toBuffer() });
  }
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('.tern round trip of the quantized Fashion-MNIST model', () => {
  it.each(CASES)('$label: save -> InferenceSession.create gives bit-identical outputs', async (c) => {
    const { q } = models.get(c.label)!;
    const path = join(dir, `${c.label.replace(/\W+/g, '-')}.tern`);
    await q.save(path);
    const fromFile = await InferenceSession.create(path, { threads: 2 });
    const direct = await q.createSession({ threads: 2 });
    const a = (await fromFile.run({ image: images })).logits;
    const b = (await direct.run({ image: images })).logits;
    expect(a.dims).toEqual([TEST, 10]);
    expect(Buffer.from((a.data as Float32Array).buffer).equals(Buffer.from((b.data as Float32Array).buffer))).toBe(true);
    await fromFile.release();
    await direct.release();
    // The file on disk is what toBuffer() gives, byte for byte.
    expect(Buffer.from(readFileSync(path)).equals(Buffer.from(models.get(c.label)!.bytes))).toBe(true);
  });

  it.each(CASES)('$label: the graph read back deep-equals the saved one, tensors bit for bit', (c) => {
    const { q, bytes } = models.get(c.label)!;
    const m = readTern(bytes);
    expect(skeleton(m.graph)).toEqual(skeleton(q.graph));
    expect([...m.graph.initializers.keys()]).toEqual([...q.graph.initializers.keys()]);
    for (const [name, t] of q.graph.initializers) {
      const r = m.graph.initializers.get(name)!;
      expect(r.data.constructor, name).toBe(t.data.constructor);
      expect(bytesOf(r).equals(bytesOf(t)), name).toBe(true);
    }
    expect(m.version).toEqual(TERN_VERSION);
    expect(m.producer.name).toBe('ternion');
    expect(m.quantization!.report).toEqual(q.report);
    expect(m.quantization!.options).toMatchObject({ weights: c.options.weights, calibration: { dims: [CALIB, 1, 28, 28] } });
    // Raw float32 sections are views of the file's bytes (aligned), not copies.
    const scale = [...m.graph.initializers.values()].find((t) => t.dtype === 'float32' && t.data.length > 16)!;
    expect(scale.data.buffer).toBe(bytes.buffer);
  });

  it.each(CASES)('$label: deterministic, 64-byte aligned, codes packed to their width', (c) => {
    const { q, bytes } = models.get(c.label)!;
    expect(Buffer.from(q.toBuffer()).equals(Buffer.from(bytes))).toBe(true);
    const m = readTern(bytes);
    expect(m.sections[0].kind).toBe('graph');
    for (const s of m.sections) expect(s.offset % 64, `section ${s.index}`).toBe(0);
    let layerBytes = 0, codeSections = 0;
    for (const n of q.graph.nodes.filter((x) => x.opType.startsWith('TernionQ'))) {
      const bits = (n.attributes.weight_bits as { value: number }).value;
      const codes = q.graph.initializers.get(n.inputs[1])!;
      const s = sectionOf(m, codes.name);
      const count = codes.data.length;
      if (bits === 2) expect([s.encoding, s.length]).toEqual(['packed2', Math.ceil(count / 4)]);
      else if (bits === 4) expect([s.encoding, s.length]).toEqual(['packed4', Math.ceil(count / 2)]);
      else expect([s.encoding, s.length]).toEqual(['raw', count]);
      if (bits === c.bits) codeSections++;
      // Codes plus scales / multipliers (inputs 1, 2, 5, 6) take what the report says, to the byte.
      const r = q.report.layers.find((l) => l.name === n.name)!;
      const stored = [1, 2, 5, 6].reduce((sum, i) => sum + (n.inputs[i] ? sectionOf(m, n.inputs[i]).length : 0), 0);
      expect(stored, n.name).toBeLessThanOrEqual(r.bytes + 1);
      expect(stored, n.name).toBeGreaterThanOrEqual(r.bytes - 1);
      layerBytes += stored;
    }
    expect(codeSections).toBeGreaterThan(0);
    // The whole file: the quantized layers, the other (fp32) tensors, the graph JSON and at most
    // 63 bytes of padding per section, plus header and table.
    const graphJson = m.sections[0].length;
    const other = [...q.graph.initializers.values()].reduce((sum, t) => sum + t.data.byteLength, 0) - [...q.graph.nodes].filter((x) => x.opType.startsWith('TernionQ')).reduce((sum, n) => sum + [1, 2, 5, 6].reduce((s2, i) => s2 + (n.inputs[i] ? q.graph.initializers.get(n.inputs[i])!.data.byteLength : 0), 0), 0);
    const bound = q.report.total.bytes + other + graphJson + 64 + m.sections.length * (48 + 63) + 64;
    expect(bytes.length).toBeLessThanOrEqual(bound);
    expect(layerBytes).toBeLessThanOrEqual(q.report.total.bytes + q.report.layers.length);
    if (c.bits === 2 && c.N !== null) {
      // Ternary layers: about 2 + 32/N bits per weight (group-scaled fp32 scales), or 2 + 16/N + 32/row
      // with int8 multipliers for + and - (asymmetric folded).
      const tern = q.report.layers.filter((l) => l.weights.startsWith('ternary'));
      const params = tern.reduce((s, l) => s + l.parameters, 0);
      const fileBits = tern.reduce((s, l) => {
        const n = q.graph.nodes.find((x) => x.name === l.name)!;
        return s + 8 * [1, 2, 5, 6].reduce((sum, i) => sum + (n.inputs[i] ? sectionOf(m, n.inputs[i]).length : 0), 0);
      }, 0);
      const ideal = c.options.form === 'folded' ? 2 + 16 / c.N : 2 + 32 / c.N;
      console.log(`${c.label}: ${(fileBits / params).toFixed(3)} bits per ternary weight in the file (ideal ${ideal.toFixed(2)}), file ${bytes.length} B, report ${q.report.total.bytes} B`);
      expect(fileBits / params).toBeLessThan(ideal * 1.1);
    }
  });

  it('create() recognizes a .tern by its magic (bytes, or any file name); precision int8 is refused', async () => {
    const { q, bytes } = models.get('ternary N=4')!;
    const path = join(dir, 'model.onnx'); // the name lies; the magic decides
    await q.save(path);
    const s = await InferenceSession.create(path);
    expect(s.inputNames).toEqual(['image']);
    await s.release();
    const t = await InferenceSession.create(bytes.buffer.slice(0) as ArrayBuffer);
    expect(t.outputNames).toEqual(['logits']);
    await t.release();
    await expect(InferenceSession.create(bytes, { precision: 'int8' })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT', message: /quantized already/ });
  });
});

describe('EXPECTED FAILURE - corrupt .tern files give ERR_MODEL_FORMAT', () => {
  const file = (label = 'ternary N=4') => models.get(label)!.bytes;

  it('every single-byte change in the header and section table, and at 400 seeded positions in the body', () => {
    const bytes = file();
    const list = entries(bytes);
    const tableEnd = 64 + list.length * ENTRY.size;
    const positions = Array.from({ length: tableEnd }, (_, i) => i);
    const next = rng(5);
    for (let k = 0; k < 400; k++) positions.push(tableEnd + Math.floor(next() * (bytes.length - tableEnd)));
    for (const s of list) positions.push(s.offset, s.offset + s.length - 1, s.offset - 1); // edges, and the padding before
    const b = bytes.slice(); // changed in place and restored: copying 400 kB per position would dominate
    for (const p of positions) {
      if (p < 0 || p >= bytes.length) continue;
      b[p] ^= 1 << Math.floor(next() * 8);
      expectFormatError(b, undefined, `bit flip at offset ${p}`);
      b[p] = bytes[p] ^ 0xff;
      expectFormatError(b, undefined, `byte flip at offset ${p}`);
      b[p] = bytes[p];
    }
    expect(readTern(b).graph.nodes.length).toBe(readTern(bytes).graph.nodes.length);
  });

  it('truncation at every section boundary and at seeded lengths; trailing bytes', () => {
    const bytes = file();
    const lengths = [0, 1, 3, 4, 7, 8, 12, 63, 64, 65, 100];
    for (const s of entries(bytes)) lengths.push(s.offset, s.offset + 1, s.offset + s.length - 1);
    const next = rng(11);
    for (let k = 0; k < 100; k++) lengths.push(Math.floor(next() * bytes.length));
    for (const n of lengths) if (n < bytes.length) expectFormatError(bytes.subarray(0, n), n < 8 && n > 0 ? /truncated/ : n === 0 ? /truncated|magic/ : undefined, `truncated to ${n} bytes`);
    expectFormatError(bytes.subarray(0, 40), /truncated: 40 bytes/);
    expectFormatError(bytes.subarray(0, bytes.length - 1), /truncated/);
    const longer = new Uint8Array(bytes.length + 64);
    longer.set(bytes);
    expectFormatError(longer, /64 bytes follow the end of the file/);
  });

  it('a newer major version names the version; a newer minor version still reads', () => {
    const bytes = file();
    const major = mutate(bytes, (_b, v) => v.setUint16(HEADER.versionMajor, TERN_VERSION.major + 1, true));
    expectFormatError(major, new RegExp(`format version ${TERN_VERSION.major + 1}\\.0 is newer .* reads format ${TERN_VERSION.major}\\.x`));
    // Without fixing the header CRC too: the version is checked first, so the message is the same.
    const raw = bytes.slice();
    new DataView(raw.buffer).setUint16(HEADER.versionMajor, 7, true);
    expectFormatError(raw, /format version 7\.0 is newer/);
    expectFormatError(mutate(bytes, (_b, v) => v.setUint16(HEADER.versionMajor, 0, true)), /not a valid version/);
    const minor = mutate(bytes, (_b, v) => v.setUint16(HEADER.versionMinor, TERN_VERSION.minor + 3, true));
    expect(readTern(minor).version).toEqual({ major: TERN_VERSION.major, minor: TERN_VERSION.minor + 3 });
  });

  it('bad magic, an .onnx file, or no bytes at all', () => {
    const bytes = file();
    const b = bytes.slice();
    b[4] = 0x0a; // "\r\n" -> "\n\n", as a text-mode copy would do
    expectFormatError(b, /bad magic/);
    expectFormatError(readFileSync(modelPath), /bad magic/);
    expectFormatError(new Uint8Array(0), /truncated/);
    expect(() => readTern('model.tern' as unknown as Uint8Array)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT' }));
  });

  it('structural lies behind valid checksums: bounds, overlap, alignment, sizes, types, encodings', () => {
    const bytes = file();
    const list = entries(bytes);
    const last = list.length - 1;
    const gap = list.findIndex((e, i) => i > 0 && e.offset > list[i - 1].offset + list[i - 1].length);
    expect(gap).toBeGreaterThan(0);
    const cases: [string, Uint8Array, RegExp][] = [
      ['offset past the end', mutate(bytes, (_b, v) => setEntry(v, last, 'offset', Math.ceil(bytes.length / 64) * 64 + 64)), /runs past the end of the file/],
      ['length past the end', mutate(bytes, (_b, v) => setEntry(v, last, 'length', list[last].length + 4096)), /runs past the end/],
      ['unknown kind of a referenced section', mutate(bytes, (_b, v) => v.setUint16(64 + last * ENTRY.size + ENTRY.kind, 9, true)), new RegExp(`refers to section ${last}, which is not a tensor section`)],
      ['huge offset', mutate(bytes, (_b, v) => v.setBigUint64(64 + ENTRY.offset, 2n ** 63n, true)), /beyond any file size/],
      ['overlap', mutate(bytes, (_b, v) => setEntry(v, 2, 'offset', list[1].offset)), /overlaps section 1/],
      ['into the table', mutate(bytes, (_b, v) => setEntry(v, 0, 'offset', 64)), /inside the header or section table/],
      ['misaligned', mutate(bytes, (_b, v) => setEntry(v, 3, 'offset', list[3].offset + 8)), /not a multiple of 64/],
      ['file length field', mutate(bytes, (_b, v) => v.setBigUint64(HEADER.fileLength, BigInt(bytes.length + 64), true)), /truncated/],
      ['section count', mutate(bytes, (_b, v) => v.setUint32(HEADER.sectionCount, 100000, true)), /outside the file/],
      ['no sections', mutate(bytes, (_b, v) => v.setUint32(HEADER.sectionCount, 0, true)), /section table is empty/],
      ['header size', mutate(bytes, (_b, v) => v.setUint32(HEADER.headerSize, 60, true)), /header size 60/],
      ['alignment', mutate(bytes, (_b, v) => v.setUint32(HEADER.alignment, 48, true)), /alignment 48/],
      ['element count', mutate(bytes, (_b, v) => setEntry(v, 14, 'elementCount', list[14].elementCount + 4)), /section 14 is \d+ bytes, but \d+ int8 elements packed2 take/],
      ['unknown element type', mutate(bytes, (b) => { b[64 + 5 * ENTRY.size + ENTRY.elementType] = 99; }), /unknown element type 99/],
      ['unknown encoding', mutate(bytes, (b) => { b[64 + 5 * ENTRY.size + ENTRY.encoding] = 7; }), /unknown encoding 7/],
      ['packed float', mutate(bytes, (b) => { b[64 + 5 * ENTRY.size + ENTRY.encoding] = 1; }), /packed2 but holds float32/],
      ['element type changed', mutate(bytes, (b) => { b[64 + 5 * ENTRY.size + ENTRY.elementType] = 6; }), /is float32 in the graph but its section 5 holds int32/],
      ['two graph sections', mutate(bytes, (b) => { b[64 + 30 * ENTRY.size + ENTRY.kind] = 1; }), /2 graph sections/],
      ['no graph section', mutate(bytes, (b) => { b[64 + ENTRY.kind] = 2; b[64 + ENTRY.elementType] = 2; }), /0 graph sections/],
      ['nonzero padding', (() => { const b = bytes.slice(); b[list[gap].offset - 1] = 1; return b; })(), new RegExp(`nonzero byte at offset \\d+ in the padding before section ${gap}`)],
      ['nonzero padding after the table', (() => { const b = bytes.slice(); b[64 + list.length * ENTRY.size] = 1; return b; })(), /padding before section 0/],
    ];
    for (const [what, b, message] of cases) expectFormatError(b, message, what);
  });

  it('lies in the graph JSON: dims product, bad JSON, unknown tensors, wrong types, section references', () => {
    const bytes = file();
    const g = readTern(bytes).graph;
    const codes = g.nodes.find((n) => n.opType === 'TernionQConv' && (n.attributes.weight_bits as { value: number }).value === 2)!.inputs[1];
    const t = g.initializers.get(codes)!;
    const dims = JSON.stringify(t.dims);
    const s = sectionOf(readTern(bytes), codes).index;
    // Other tensors' sections written with as many digits as s (the edits keep the JSON's length):
    // a float32 one read after s (so the dtype check, not the claimed-twice one, fires) and one before.
    const sectionsLike = (dtype?: string) => [...g.initializers].filter(([name, v]) => name !== codes && (!dtype || v.dtype === dtype))
      .map(([name]) => sectionOf(readTern(bytes), name).index).filter((i) => String(i).length === String(s).length);
    const sf = sectionsLike('float32').find((i) => i > s), other = sectionsLike().find((i) => i < s);
    const wrongDims = dims.replace(/\d/, (d) => (d === '9' ? '8' : String(Number(d) + 1))); // same length, other product
    const cases: [string, Uint8Array, RegExp][] = [
      ['dims product', editJson(bytes, `"name":"${codes}","dtype":"int8","dims":${dims}`, `"name":"${codes}","dtype":"int8","dims":${wrongDims}`), /has dims \[.*\] \(\d+ elements\) but its section \d+ holds \d+/],
      ['bad JSON', editJson(bytes, '{"producer"', '["producer"'), /not valid JSON/],
      ['not UTF-8', mutate(bytes, (b, _v, list) => { b[list[0].offset + 2] = 0xff; }), /not valid UTF-8/],
      ['section of another dtype', editJson(bytes, `"section":${s}}`, `"section":${sf}}`), new RegExp(`"${codes}" is int8 in the graph but its section ${sf} holds float32`)],
      ['section referenced twice', editJson(bytes, `"section":${s}}`, `"section":${other}}`), /already holds/],
      ['section out of range', editJson(bytes, `"section":${s}}`, `"section":${'9'.repeat(String(s).length)}}`), /which is not a tensor section/],
      ['unknown dtype', editJson(bytes, '"dtype":"float32"', '"dtype":"floot32"'), /dtype must be an element type name/],
      ['unknown input', editJson(bytes, `"inputs":["image"`, `"inputs":["imagx"`), /reads tensor "imagx", which is not/],
      ['attribute type', editJson(bytes, '"type":"float",', '"type":"int"  ,'), /attributes\.\w+\.value must be an integer/],
      ['unknown attribute type', editJson(bytes, '"type":"int"', '"type":"inx"'), /an attribute type/],
      ['negative dim', editJson(bytes, `"dims":${dims}`, `"dims":[-${dims.slice(2)}`), /dims\[0\] must be a non-negative integer/],
      ['missing field', editJson(bytes, '"opType":', '"opTipe":'), /has no "opType"/],
    ];
    for (const [what, b, message] of cases) expectFormatError(b, message, what);
  });

  it('code values that the width cannot hold: the 2-bit field 10, the nibble -8, an int8 code -128, nonzero padding', () => {
    const tern = file('ternary N=4');
    const m = readTern(tern);
    const code2 = m.sections.find((s) => s.encoding === 'packed2')!;
    expectFormatError(mutate(tern, (b) => { b[code2.offset + 3] = 0b00100000; }), /invalid 2-bit field 10 at element 14/);
    const int4 = file('int4 N=16');
    const code4 = readTern(int4).sections.find((s) => s.encoding === 'packed4')!;
    expectFormatError(mutate(int4, (b) => { b[code4.offset + 1] = 0x80; }), /invalid 4-bit field 1000 \(-8\) at element 3/);
    const int8 = file('int8');
    const m8 = readTern(int8);
    const codes8 = m8.graph.nodes.find((n) => n.opType === 'TernionQConv')!.inputs[1];
    const s8 = sectionOf(m8, codes8);
    expect(s8.encoding).toBe('raw');
    expectFormatError(mutate(int8, (b) => { b[s8.offset + 5] = 0x80; }), /weight code -128 at index 5 .* outside \[-127, 127\]/);
  });

  it('never throws anything but ERR_MODEL_FORMAT on 300 seeded random multi-byte corruptions with valid checksums', () => {
    const bytes = file('ternary-asym N=16 folded');
    const list = entries(bytes);
    const next = rng(23);
    for (let k = 0; k < 300; k++) {
      const b = mutate(bytes, (x) => {
        const hits = 1 + Math.floor(next() * 4);
        for (let h = 0; h < hits; h++) {
          // Half the hits land in the header and table, half in the graph JSON.
          const p = next() < 0.5 ? 8 + Math.floor(next() * (64 + list.length * ENTRY.size - 8)) : list[0].offset + Math.floor(next() * list[0].length);
          if (p >= HEADER.size - 4 && p < HEADER.size) continue;
          if (p >= HEADER.tableCrc && p < HEADER.tableCrc + 4) continue;
          x[p] = Math.floor(next() * 256);
        }
      });
      const e = formatErrorOf(b);
      if (e === undefined) continue; // a change the format allows (reserved bytes, flags, a key the reader ignores)
      expect(e.code, `corruption ${k}: ${e.message}`).toBe('ERR_MODEL_FORMAT');
    }
  });
});

describe('.tern pieces', () => {
  it('CRC-32 is the zlib/PNG checksum, native and portable alike', () => {
    const data = Buffer.from('123456789');
    expect(crc32(data)).toBe(0xcbf43926);
    expect(crc32Generic(data)).toBe(0xcbf43926);
    const big = new Uint8Array(100000).map((_, i) => (i * 7919) & 255);
    expect(crc32Generic(big)).toBe(crc32(big));
    expect(crc32Generic(big.subarray(500), crc32Generic(big.subarray(0, 500)))).toBe(crc32(big));
  });

  it('code packing: bit order, round trip at every tail length, invalid fields and padding found', () => {
    const p2 = new Uint8Array(1);
    expect(packCodes2(new Int8Array([1, -1, 0, 1]), p2)).toBe(-1);
    expect(p2[0]).toBe(0b01_00_11_01);
    const p4 = new Uint8Array(1);
    expect(packCodes4(new Int8Array([-7, 3]), p4)).toBe(-1);
    expect(p4[0]).toBe(0x39);
    const next = rng(3);
    for (let n = 0; n <= 21; n++) {
      const t = Int8Array.from({ length: n }, () => Math.floor(next() * 3) - 1);
      const q = Int8Array.from({ length: n }, () => Math.floor(next() * 15) - 7);
      const a = new Uint8Array(Math.ceil(n / 4)), b = new Uint8Array(Math.ceil(n / 2));
      expect(packCodes2(t, a)).toBe(-1);
      expect(packCodes4(q, b)).toBe(-1);
      const t2 = new Int8Array(n), q2 = new Int8Array(n);
      expect(unpackCodes2(a, t2)).toBe(-1);
      expect(unpackCodes4(b, q2)).toBe(-1);
      expect(t2).toEqual(t);
      expect(q2).toEqual(q);
      if (n % 4) {
        const c = a.slice();
        c[c.length - 1] |= 0b11 << 6;
        expect(unpackCodes2(c, new Int8Array(n))).toBe(n - (n % 4) + 3);
      }
      if (n % 2) {
        const c = b.slice();
        c[c.length - 1] |= 0x10;
        expect(unpackCodes4(c, new Int8Array(n))).toBe(n);
      }
    }
    expect(packCodes2(new Int8Array([0, 0, 2]), new Uint8Array(1))).toBe(2);
    expect(packCodes4(new Int8Array([0, -8]), new Uint8Array(1))).toBe(1);
    expect(unpackCodes2(new Uint8Array([0b00_10_00_00]), new Int8Array(4))).toBe(2);
    expect(unpackCodes4(new Uint8Array([0x00, 0x08]), new Int8Array(4))).toBe(2);
  });

  it('a synthetic graph round-trips: special floats, tensor attributes, every stored dtype, empty and odd-length tensors', () => {
    const f32 = (name: string, data: number[], dims: number[]): ConstantTensor => ({ name, dtype: 'float32', dims, data: new Float32Array(data) });
    const inits: ConstantTensor[] = [
      { name: 'codes', dtype: 'int8', dims: [3, 5], data: new Int8Array([1, -1, 0, 1, 1, 0, 0, -1, -1, 1, 0, 1, -1, 0, 1]) },
      f32('scale', [0.5, 0.25, -0, 1e-40, 3], [3, 1]),
      { name: 'codes4', dtype: 'int8', dims: [1, 3], data: new Int8Array([-7, 7, 0]) },
      { name: 'f64', dtype: 'float64', dims: [2], data: new Float64Array([Math.PI, -Infinity]) },
      { name: 'i64', dtype: 'int64', dims: [2], data: new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n]) },
      { name: 'u64', dtype: 'uint64', dims: [1], data: new BigUint64Array([2n ** 64n - 1n]) },
      { name: 'b', dtype: 'bool', dims: [3], data: new Uint8Array([1, 0, 1]) },
      { name: 'i16', dtype: 'int16', dims: [2], data: new Int16Array([-32768, 7]) },
      { name: 'u16', dtype: 'uint16', dims: [1], data: new Uint16Array([65535]) },
      { name: 'u32', dtype: 'uint32', dims: [1], data: new Uint32Array([4294967295]) },
      { name: 'i32', dtype: 'int32', dims: [0, 4], data: new Int32Array(0) },
    ];
    inits[1] = { ...inits[1], dims: [5], data: new Float32Array([0.5, 0.25, -0, 1e-40, NaN]) };
    const graph: Graph = {
      name: 'synthetic ✓',
      opsets: { '': 17, 'com.ternion': 1 },
      inputs: [{ name: 'x', dtype: 'float32', shape: ['batch', 5] }],
      outputs: [{ name: 'z', dtype: 'float32', shape: ['batch', 3] }],
      initializers: new Map(inits.map((t) => [t.name, t])),
      nodes: [
        {
          name: 'gemm', opType: 'TernionQGemm', domain: '', inputs: ['x', 'codes', 'scale', '', '', '', ''], outputs: ['y'],
          attributes: {
            weight_bits: { type: 'int', value: 2 },
            act_scale: { type: 'float', value: 0.1 },
            activation_params: { type: 'floats', value: [-Infinity, Infinity, NaN, -0, 1.5e-45] },
            big: { type: 'int', value: 9223372036854775807 },
            ['__proto__']: { type: 'strings', value: ['a', '"quoted"', ''] },
          } as Graph['nodes'][number]['attributes'],
        },
        { name: 'q4', opType: 'TernionQGemm', domain: '', inputs: ['y', 'codes4'], outputs: ['w'], attributes: { weight_bits: { type: 'int', value: 4 } } },
        {
          name: 'fill', opType: 'ConstantOfShape', domain: 'com.ternion', inputs: ['w'], outputs: ['z'],
          attributes: { value: { type: 'tensor', value: { name: 'fill_value', dtype: 'float32', dims: [1], data: new Float32Array([-0]) } }, ks: { type: 'ints', value: [] } },
        },
      ],
      valueInfo: new Map([['y', { dtype: 'float32', shape: ['batch', 3] }], ['w', { dtype: 'float32' }]]),
      metadata: { irVersion: 8, producerName: 'test', producerVersion: '' },
    };
    const bytes = writeTern(graph);
    const m = readTern(bytes);
    expect(m.graph).toEqual(graph);
    expect(Object.keys(m.graph.nodes[0].attributes)).toEqual(Object.keys(graph.nodes[0].attributes));
    expect(Object.getPrototypeOf(m.graph.nodes[0].attributes)).toBe(Object.prototype);
    const floats = (m.graph.nodes[0].attributes.activation_params as { value: number[] }).value;
    expect(Object.is(floats[3], -0) && Number.isNaN(floats[2]) && floats[0] === -Infinity).toBe(true);
    const fill = m.graph.nodes[2].attributes.value as { value: ConstantTensor };
    expect(Object.is(fill.value.data[0], -0)).toBe(true);
    for (const t of inits) expect(bytesOf(m.graph.initializers.get(t.name)!).equals(bytesOf(t)), t.name).toBe(true);
    expect(sectionOf(m, 'codes')).toMatchObject({ encoding: 'packed2', length: 4, elementCount: 15 });
    expect(sectionOf(m, 'codes4')).toMatchObject({ encoding: 'packed4', length: 2, elementCount: 3 });
    expect(m.quantization).toBeNull();
    expect(Buffer.from(writeTern(m.graph)).equals(Buffer.from(bytes))).toBe(true);
    // The writer refuses codes its width cannot hold, and tensors whose dims disagree with their data.
    const badCodes = { ...graph, initializers: new Map(graph.initializers).set('codes', { ...inits[0], data: new Int8Array(15).fill(2) }) };
    expect(() => writeTern(badCodes)).toThrow(expect.objectContaining({ code: 'ERR_MODEL_FORMAT', message: expect.stringMatching(/code 2 at index 0 is outside \[-1, 1\]/) }));
    const badDims = { ...graph, initializers: new Map(graph.initializers).set('b', { ...inits[6], dims: [4] }) };
    expect(() => writeTern(badDims)).toThrow(expect.objectContaining({ code: 'ERR_SHAPE_MISMATCH' }));
    // A bool section holding 2 is refused on read.
    const bSection = sectionOf(m, 'b');
    expectFormatError(mutate(bytes, (x) => { x[bSection.offset + 1] = 2; }), /bool tensor "b" .* holds 2 at element 1/);
  });
});
