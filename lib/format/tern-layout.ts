// The byte layout of a .tern file: the one place that fixes its magic, version, header and
// section-table offsets, section kinds, element types and encodings (docs/format.md is the spec
// in prose; every number there comes from this file).
import type { StoredDataType } from '../ir';

/** "TERN\r\n\x1a\n": a name, then bytes that line-ending conversion or a text-mode copy would change. */
export const TERN_MAGIC: readonly number[] = [0x54, 0x45, 0x52, 0x4e, 0x0d, 0x0a, 0x1a, 0x0a];

/** The format version this ternion writes. It reads every 1.x file. */
export const TERN_VERSION = { major: 1, minor: 0 } as const;

/** The quantized ops whose input 1 holds weight codes [Co, K], bounded by their weight_bits attribute. */
export const CODE_OPS: ReadonlySet<string> = new Set(['TernionQConv', 'TernionQGemm']);

function producerVersion(): string {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return String(require('../../package.json').version);
  } catch {
    return 'unknown';
  }
}

/** The producer recorded in files this ternion writes. */
export const PRODUCER = { name: 'ternion', version: producerVersion() };

/** Every section starts at a multiple of this many bytes from the start of the file. */
export const SECTION_ALIGNMENT = 64;

/** Fixed header: field name -> byte offset (all little-endian). */
export const HEADER = {
  magic: 0, //            u8[8]
  versionMajor: 8, //     u16
  versionMinor: 10, //    u16
  headerSize: 12, //      u32  (64 in 1.0; the header CRC is its last 4 bytes)
  fileLength: 16, //      u64
  tableOffset: 24, //     u64
  sectionCount: 32, //    u32
  entrySize: 36, //       u32  (48 in 1.0)
  flags: 40, //           u32  (none defined in 1.0)
  tableCrc: 44, //        u32  CRC-32 of the whole section table
  alignment: 48, //       u32  (64)
  reserved: 52, //        u8[8] zero
  size: 64, //            header size written by 1.0; headerCrc = u32 at size - 4
} as const;

/** One section-table entry: field name -> byte offset within the entry. */
export const ENTRY = {
  kind: 0, //          u16
  elementType: 2, //   u8  (ELEMENT_TYPES; 0 for non-tensor sections)
  encoding: 3, //      u8  (ENCODINGS)
  reserved0: 4, //     u32 zero
  offset: 8, //        u64
  length: 16, //       u64 bytes stored
  elementCount: 24, // u64 (tensor sections; 0 otherwise)
  crc: 32, //          u32 CRC-32 of the section's bytes
  reserved1: 36, //    u8[12] zero
  size: 48,
} as const;

/** Section kinds. Readers skip kinds they do not know (a later minor version may add some). */
export const SECTION_KIND = {
  graph: 1, //  UTF-8 JSON: graph structure, producer, quantization options and report
  tensor: 2, // the data of one tensor (initializer or tensor attribute), named in the graph JSON
} as const;

/** How a tensor section stores its elements. */
export const ENCODING = {
  raw: 0, //     elements little-endian, byte after byte
  packed2: 1, // int8 values in {-1, 0, 1}: 2-bit two's complement, four per byte, first in the low bits
  packed4: 2, // int8 values in [-7, 7]: 4-bit two's complement, two per byte, first in the low nibble
} as const;

export type Encoding = (typeof ENCODING)[keyof typeof ENCODING];

/** Element type codes: ONNX TensorProto.DataType numbers, so other tools recognise them. */
export const ELEMENT_TYPES: Readonly<Record<StoredDataType, number>> = {
  float32: 1,
  uint8: 2,
  int8: 3,
  uint16: 4,
  int16: 5,
  int32: 6,
  int64: 7,
  bool: 9,
  float64: 11,
  uint32: 12,
  uint64: 13,
};

const DTYPE_BY_CODE = new Map<number, StoredDataType>(Object.entries(ELEMENT_TYPES).map(([d, c]) => [c, d as StoredDataType]));

export function dtypeOfElementType(code: number): StoredDataType | undefined {
  return DTYPE_BY_CODE.get(code);
}

export function alignUp(n: number, alignment: number = SECTION_ALIGNMENT): number {
  return Math.ceil(n / alignment) * alignment;
}

/** Bytes a section of `count` elements takes in `encoding` (raw: count * element size). */
export function encodedLength(encoding: Encoding, count: number, bytesPerElement: number): number {
  if (encoding === ENCODING.packed2) return Math.ceil(count / 4);
  if (encoding === ENCODING.packed4) return Math.ceil(count / 2);
  return count * bytesPerElement;
}

/** True when the bytes start like a .tern file (the first four magic bytes, "TERN"). */
export function looksLikeTern(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === TERN_MAGIC[0] && bytes[1] === TERN_MAGIC[1] && bytes[2] === TERN_MAGIC[2] && bytes[3] === TERN_MAGIC[3];
}

/** This machine stores numbers little-endian (the file's order), so raw sections map directly. */
export const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
