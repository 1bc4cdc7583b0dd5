// The .tern writer: an IR graph (typically quantize()'s) to the bytes of docs/format.md.
// Deterministic: the same graph and options give the same bytes (no timestamps, no host data).
import { TernionError, invalidArgument } from '../errors';
import type { ConstantTensor, Graph } from '../ir';
import { STORED_DTYPES } from '../ir/dtype';
import { packCodes2, packCodes4 } from './code-packing';
import { crc32 } from './crc32';
import { graphDocument } from './graph-document';
import { CODE_OPS, ELEMENT_TYPES, ENCODING, ENTRY, HEADER, HOST_LITTLE_ENDIAN, PRODUCER, SECTION_ALIGNMENT, SECTION_KIND, TERN_MAGIC, TERN_VERSION, alignUp, encodedLength, type Encoding } from './tern-layout';
import type { WriteTernOptions } from './types';

/** Weight-code initializers and the narrowest width their consumers allow (2 or 4; 8 stays raw). */
export function codeWidths(graph: Graph): Map<string, { bits: 2 | 4; node: string }> {
  const widths = new Map<string, { bits: 2 | 4; node: string }>();
  for (const n of graph.nodes) {
    if (n.domain !== '' || !CODE_OPS.has(n.opType)) continue;
    const a = n.attributes.weight_bits;
    const bits = a && a.type === 'int' ? a.value : undefined;
    const name = n.inputs[1];
    if ((bits !== 2 && bits !== 4) || !name) continue;
    const seen = widths.get(name);
    if (!seen || bits < seen.bits) widths.set(name, { bits, node: n.name });
  }
  return widths;
}

interface SectionPlan {
  kind: number;
  elementType: number;
  encoding: Encoding;
  elementCount: number;
  offset: number;
  length: number;
  /** Writes the section's bytes into `dst` (zeroed, exactly `length` bytes). */
  fill: (dst: Uint8Array) => void;
}

function product(dims: readonly number[]): number {
  return dims.reduce((p, d) => p * d, 1);
}

function rawFill(t: ConstantTensor): (dst: Uint8Array) => void {
  return (dst) => {
    const src = t.data;
    if (HOST_LITTLE_ENDIAN || src.BYTES_PER_ELEMENT === 1) {
      dst.set(new Uint8Array(src.buffer, src.byteOffset, src.byteLength));
      return;
    }
    const view = new DataView(dst.buffer, dst.byteOffset, dst.byteLength);
    const n = src.length, size = src.BYTES_PER_ELEMENT;
    for (let i = 0; i < n; i++) {
      const v = src[i];
      if (src instanceof Float32Array) view.setFloat32(i * 4, v as number, true);
      else if (src instanceof Float64Array) view.setFloat64(i * 8, v as number, true);
      else if (src instanceof BigInt64Array) view.setBigInt64(i * 8, v as bigint, true);
      else if (src instanceof BigUint64Array) view.setBigUint64(i * 8, v as bigint, true);
      else if (size === 4) view.setUint32(i * 4, (v as number) >>> 0, true);
      else view.setUint16(i * 2, (v as number) & 0xffff, true);
    }
  };
}

function tensorPlan(t: ConstantTensor, where: string, width: { bits: 2 | 4; node: string } | undefined): SectionPlan {
  const info = STORED_DTYPES[t.dtype];
  if (!info || !(t.data instanceof Object) || t.data.BYTES_PER_ELEMENT !== info.bytesPerElement) {
    throw new TernionError('ERR_DTYPE', `Cannot save ${where}: element type ${String(t.dtype)} with a ${t.data?.constructor?.name ?? typeof t.data}`);
  }
  const count = t.data.length;
  if (product(t.dims) !== count) {
    throw new TernionError('ERR_SHAPE_MISMATCH', `Cannot save ${where}: dims [${t.dims.join(', ')}] hold ${product(t.dims)} elements but the data has ${count}`);
  }
  const packed = width !== undefined && t.dtype === 'int8';
  const encoding: Encoding = !packed ? ENCODING.raw : width.bits === 2 ? ENCODING.packed2 : ENCODING.packed4;
  const fill = !packed
    ? rawFill(t)
    : (dst: Uint8Array) => {
        const bad = (width.bits === 2 ? packCodes2 : packCodes4)(t.data as Int8Array, dst);
        if (bad >= 0) {
          const lim = width.bits === 2 ? 1 : 7;
          throw new TernionError('ERR_MODEL_FORMAT', `Cannot save ${where}: code ${t.data[bad]} at index ${bad} is outside [-${lim}, ${lim}], the range of weight_bits ${width.bits} of node "${width.node}"`);
        }
      };
  return { kind: SECTION_KIND.tensor, elementType: ELEMENT_TYPES[t.dtype], encoding, elementCount: count, offset: 0, length: encodedLength(encoding, count, info.bytesPerElement), fill };
}

function checkGraph(graph: unknown): asserts graph is Graph {
  const g = graph as Graph;
  if (!g || typeof g !== 'object' || !Array.isArray(g.nodes) || !(g.initializers instanceof Map) || !(g.valueInfo instanceof Map)) {
    throw invalidArgument('an IR Graph (quantize(...).graph)', 'graph', graph);
  }
}

/** The bytes of a .tern file holding `graph` (and the quantizer's options and report, if given). */
export function writeTern(graph: Graph, options: WriteTernOptions = {}): Uint8Array {
  checkGraph(graph);
  if (options === null || typeof options !== 'object') throw invalidArgument('an options object', 'options', options);
  const { document, tensors } = graphDocument(graph, 1, PRODUCER, options.quantization ?? null);
  let json: string;
  try {
    json = JSON.stringify(document);
  } catch (e) {
    throw new TernionError('ERR_INVALID_ARGUMENT', `Cannot save the graph: its document is not JSON-serializable (${(e as Error).message}); check options.quantization`, { cause: e });
  }
  const jsonBytes = new TextEncoder().encode(json);

  const widths = codeWidths(graph);
  const initializerCount = graph.initializers.size;
  const sections: SectionPlan[] = [
    { kind: SECTION_KIND.graph, elementType: 0, encoding: ENCODING.raw, elementCount: 0, offset: 0, length: jsonBytes.length, fill: (dst) => dst.set(jsonBytes) },
    ...tensors.map((t, i) =>
      i < initializerCount ? tensorPlan(t, `initializer "${t.name}"`, widths.get(t.name)) : tensorPlan(t, `tensor attribute "${t.name}"`, undefined),
    ),
  ];

  const tableOffset = HEADER.size;
  let end = tableOffset + sections.length * ENTRY.size;
  for (const s of sections) {
    s.offset = alignUp(end, SECTION_ALIGNMENT);
    end = s.offset + s.length;
  }
  if (!Number.isSafeInteger(end) || end > 2 ** 52) throw new TernionError('ERR_INVALID_ARGUMENT', `Cannot save the graph: the file would be ${end} bytes`);
  const file = new Uint8Array(end);
  const view = new DataView(file.buffer);

  sections.forEach((s, i) => {
    const body = file.subarray(s.offset, s.offset + s.length);
    s.fill(body);
    const e = tableOffset + i * ENTRY.size;
    view.setUint16(e + ENTRY.kind, s.kind, true);
    view.setUint8(e + ENTRY.elementType, s.elementType);
    view.setUint8(e + ENTRY.encoding, s.encoding);
    view.setBigUint64(e + ENTRY.offset, BigInt(s.offset), true);
    view.setBigUint64(e + ENTRY.length, BigInt(s.length), true);
    view.setBigUint64(e + ENTRY.elementCount, BigInt(s.elementCount), true);
    view.setUint32(e + ENTRY.crc, crc32(body), true);
  });

  file.set(TERN_MAGIC, HEADER.magic);
  view.setUint16(HEADER.versionMajor, TERN_VERSION.major, true);
  view.setUint16(HEADER.versionMinor, TERN_VERSION.minor, true);
  view.setUint32(HEADER.headerSize, HEADER.size, true);
  view.setBigUint64(HEADER.fileLength, BigInt(end), true);
  view.setBigUint64(HEADER.tableOffset, BigInt(tableOffset), true);
  view.setUint32(HEADER.sectionCount, sections.length, true);
  view.setUint32(HEADER.entrySize, ENTRY.size, true);
  view.setUint32(HEADER.flags, 0, true);
  view.setUint32(HEADER.tableCrc, crc32(file.subarray(tableOffset, tableOffset + sections.length * ENTRY.size)), true);
  view.setUint32(HEADER.alignment, SECTION_ALIGNMENT, true);
  view.setUint32(HEADER.size - 4, crc32(file.subarray(0, HEADER.size - 4)), true);
  return file;
}
