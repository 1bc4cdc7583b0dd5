// The .tern reader: bytes to a TernModel whose graph is the one that was saved (codes unpacked
// to Int8Array; raw tensors viewed in place when aligned). Every defect gives ERR_MODEL_FORMAT
// with a message naming it; no other error escapes, and no half-checked graph is returned.
import { TernionError, invalidArgument } from '../errors';
import { validateGraph, type ConstantTensor, type Graph, type StoredDataType, type TensorData } from '../ir';
import { STORED_DTYPES } from '../ir/dtype';
import { unpackCodes2, unpackCodes4 } from './code-packing';
import type { TensorRef } from './graph-document';
import { parseGraphDocument } from './parse-graph-document';
import { formatError, readHeader, type RawSection } from './read-header';
import { CODE_OPS, ENCODING, HOST_LITTLE_ENDIAN, SECTION_KIND, dtypeOfElementType, encodedLength } from './tern-layout';
import type { TernModel, TernSection } from './types';

type ArrayCtor = new (buffer: ArrayBufferLike, byteOffset: number, length: number) => TensorData;

const ENCODING_NAMES: Record<number, 'raw' | 'packed2' | 'packed4'> = { [ENCODING.raw]: 'raw', [ENCODING.packed2]: 'packed2', [ENCODING.packed4]: 'packed4' };

interface TensorSection extends RawSection {
  dtype: StoredDataType;
  name?: string;
}

function checkTensorSection(s: RawSection): TensorSection {
  const dtype = dtypeOfElementType(s.elementType);
  if (!dtype) throw formatError(`section ${s.index} has unknown element type ${s.elementType}`);
  const enc = ENCODING_NAMES[s.encoding];
  if (!enc) throw formatError(`section ${s.index} has unknown encoding ${s.encoding}`);
  if (enc !== 'raw' && dtype !== 'int8') throw formatError(`section ${s.index} is ${enc} but holds ${dtype} (packed codes are int8)`);
  const expected = encodedLength(s.encoding as 0 | 1 | 2, s.elementCount, STORED_DTYPES[dtype].bytesPerElement);
  if (s.length !== expected) throw formatError(`section ${s.index} is ${s.length} bytes, but ${s.elementCount} ${dtype} elements ${enc} take ${expected}`);
  return { ...s, dtype };
}

/** The elements of a tensor section: a view of `bytes` when raw and aligned, else a new array. */
function sectionData(bytes: Uint8Array, s: TensorSection, name: string): TensorData {
  const body = bytes.subarray(s.offset, s.offset + s.length);
  if (s.encoding !== ENCODING.raw) {
    const codes = new Int8Array(s.elementCount);
    const bad = s.encoding === ENCODING.packed2 ? unpackCodes2(body, codes) : unpackCodes4(body, codes);
    if (bad >= 0) {
      const what = bad >= s.elementCount ? 'a nonzero padding field' : s.encoding === ENCODING.packed2 ? 'the invalid 2-bit field 10' : 'the invalid 4-bit field 1000 (-8)';
      throw formatError(`tensor "${name}" (section ${s.index}) holds ${what} at element ${bad}`);
    }
    return codes;
  }
  const bpe = STORED_DTYPES[s.dtype].bytesPerElement;
  const Ctor = STORED_DTYPES[s.dtype].create(0).constructor as ArrayCtor;
  let data: TensorData;
  if (HOST_LITTLE_ENDIAN && (bytes.byteOffset + s.offset) % bpe === 0) {
    data = new Ctor(bytes.buffer, bytes.byteOffset + s.offset, s.elementCount);
  } else {
    const copy = body.slice();
    if (!HOST_LITTLE_ENDIAN && bpe > 1) for (let i = 0; i < copy.length; i += bpe) copy.subarray(i, i + bpe).reverse();
    data = new Ctor(copy.buffer, 0, s.elementCount);
  }
  if (s.dtype === 'bool') {
    const i = (data as Uint8Array).findIndex((v) => v > 1);
    if (i >= 0) throw formatError(`bool tensor "${name}" (section ${s.index}) holds ${data[i]} at element ${i} (bools are 0 or 1)`);
  }
  return data;
}

/** Codes of every quantized layer lie in the range of its weight_bits (8-bit codes are raw bytes, so checked here). */
function checkCodes(graph: Graph): void {
  for (const n of graph.nodes) {
    if (n.domain !== '' || !CODE_OPS.has(n.opType)) continue;
    const a = n.attributes.weight_bits;
    const bits = a && a.type === 'int' ? a.value : undefined;
    const t = graph.initializers.get(n.inputs[1] ?? '');
    if (!t || (bits !== 2 && bits !== 4 && bits !== 8)) continue; // the executor reports these
    if (t.dtype !== 'int8') throw formatError(`node "${n.name}" (${n.opType}) reads weight codes "${t.name}" of type ${t.dtype}; codes are int8`);
    const lim = bits === 2 ? 1 : bits === 4 ? 7 : 127;
    const i = (t.data as Int8Array).findIndex((v) => v < -lim || v > lim);
    if (i >= 0) throw formatError(`weight code ${t.data[i]} at index ${i} of "${t.name}" is outside [-${lim}, ${lim}], the range of weight_bits ${bits} of node "${n.name}"`);
  }
}

function decodeJson(bytes: Uint8Array, s: RawSection): unknown {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes.subarray(s.offset, s.offset + s.length));
  } catch {
    throw formatError(`the graph section (section ${s.index}) is not valid UTF-8`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw formatError(`the graph section (section ${s.index}) is not valid JSON: ${(e as Error).message}`);
  }
}

function readTernChecked(bytes: Uint8Array): TernModel {
  const header = readHeader(bytes);
  const graphSections = header.sections.filter((s) => s.kind === SECTION_KIND.graph);
  if (graphSections.length !== 1) throw formatError(`the file has ${graphSections.length} graph sections; it needs exactly one`);
  const tensorSections = new Map<number, TensorSection>();
  for (const s of header.sections) if (s.kind === SECTION_KIND.tensor) tensorSections.set(s.index, checkTensorSection(s));

  const resolve = (ref: TensorRef, where: string): ConstantTensor => {
    const s = tensorSections.get(ref.section);
    if (!s) throw formatError(`${where} ("${ref.name}") refers to section ${ref.section}, which is not a tensor section (${header.sections.length} sections)`);
    if (s.name !== undefined) throw formatError(`${where} ("${ref.name}") refers to section ${ref.section}, which already holds "${s.name}"`);
    if (s.dtype !== ref.dtype) throw formatError(`tensor "${ref.name}" is ${ref.dtype} in the graph but its section ${s.index} holds ${s.dtype}`);
    const n = ref.dims.reduce((p, d) => p * d, 1);
    if (n !== s.elementCount) throw formatError(`tensor "${ref.name}" has dims [${ref.dims.join(', ')}] (${n} elements) but its section ${s.index} holds ${s.elementCount}`);
    s.name = ref.name;
    return { name: ref.name, dtype: ref.dtype, dims: ref.dims, data: sectionData(bytes, s, ref.name) };
  };
  const doc = parseGraphDocument(decodeJson(bytes, graphSections[0]), resolve);
  for (const s of tensorSections.values()) if (s.name === undefined) throw formatError(`tensor section ${s.index} is not referenced by the graph`);
  validateGraph(doc.graph);
  checkCodes(doc.graph);

  const sections = header.sections.map((s): TernSection => {
    const t = tensorSections.get(s.index);
    const base = { index: s.index, kindCode: s.kind, offset: s.offset, length: s.length };
    if (t) return { ...base, kind: 'tensor', dtype: t.dtype, encoding: ENCODING_NAMES[t.encoding], elementCount: t.elementCount, name: t.name };
    return { ...base, kind: s.kind === SECTION_KIND.graph ? 'graph' : 'unknown' };
  });
  return { graph: doc.graph, version: { major: header.major, minor: header.minor }, producer: doc.producer, quantization: doc.quantization, sections };
}

/**
 * Reads a .tern file's bytes. Raw tensors of the returned graph may view `bytes` (no copy):
 * do not modify them while the graph is in use. Throws ERR_MODEL_FORMAT for any defect.
 */
export function readTern(bytes: Uint8Array | ArrayBuffer): TernModel {
  if (bytes instanceof ArrayBuffer) bytes = new Uint8Array(bytes);
  if (!(bytes instanceof Uint8Array)) throw invalidArgument('a Uint8Array or ArrayBuffer of .tern bytes', 'bytes', bytes);
  try {
    return readTernChecked(bytes);
  } catch (e) {
    if (e instanceof TernionError) {
      if (e.code === 'ERR_MODEL_FORMAT' && !e.message.startsWith('Invalid .tern file')) throw new TernionError('ERR_MODEL_FORMAT', `Invalid .tern file: ${e.message}`, { cause: e });
      throw e;
    }
    // A structure deep enough to overflow the stack, or an invariant this reader missed: still a format error.
    throw new TernionError('ERR_MODEL_FORMAT', `Invalid .tern file: ${(e as Error)?.message ?? String(e)}`, { cause: e });
  }
}
