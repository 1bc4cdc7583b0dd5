// First half of the .tern reader: the header and the section table, checked down to the byte
// (magic, version, sizes, bounds, order, alignment, the three kinds of CRC, zero padding), so
// read-tern.ts only ever looks at sections whose bytes are exactly what the writer wrote.
import { TernionError } from '../errors';
import { crc32 } from './crc32';
import { ENTRY, HEADER, PRODUCER, TERN_MAGIC, TERN_VERSION } from './tern-layout';

export function formatError(message: string): TernionError {
  return new TernionError('ERR_MODEL_FORMAT', `Invalid .tern file: ${message}`);
}

export interface RawSection {
  index: number;
  kind: number;
  elementType: number;
  encoding: number;
  offset: number;
  length: number;
  elementCount: number;
}

export interface TernHeader {
  major: number;
  minor: number;
  fileLength: number;
  alignment: number;
  sections: RawSection[];
}

function u64(view: DataView, at: number, what: string): number {
  const v = view.getBigUint64(at, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw formatError(`${what} ${v} is beyond any file size`);
  return Number(v);
}

const hex = (n: number): string => `0x${n.toString(16).padStart(8, '0')}`;

function checkMagic(bytes: Uint8Array): void {
  const n = Math.min(bytes.length, TERN_MAGIC.length);
  for (let i = 0; i < n; i++) {
    if (bytes[i] !== TERN_MAGIC[i]) {
      const got = Array.from(bytes.subarray(0, TERN_MAGIC.length), (b) => b.toString(16).padStart(2, '0')).join(' ');
      throw formatError(`bad magic (the first bytes are ${got}; a .tern file starts with 54 45 52 4e 0d 0a 1a 0a, "TERN\\r\\n\\x1a\\n")`);
    }
  }
  if (bytes.length < HEADER.size) throw formatError(`truncated: ${bytes.length} bytes, shorter than the ${HEADER.size}-byte header`);
}

function checkVersion(major: number, minor: number): void {
  if (major === TERN_VERSION.major) return;
  if (major > TERN_VERSION.major) {
    throw formatError(
      `format version ${major}.${minor} is newer than this ternion (${PRODUCER.version}) reads: it reads format ${TERN_VERSION.major}.x (written up to ${TERN_VERSION.major}.${TERN_VERSION.minor}). ` +
        `Open the file with a ternion release that reads format ${major}.x, or re-save the model with this one`,
    );
  }
  throw formatError(`format version ${major}.${minor} is not a valid version (the first is ${TERN_VERSION.major}.0)`);
}

function checkZero(bytes: Uint8Array, from: number, to: number, what: string): void {
  for (let i = from; i < to; i++) if (bytes[i] !== 0) throw formatError(`nonzero byte at offset ${i} in the padding ${what}`);
}

/** The header and section table of `bytes`, every check done (see docs/format.md, "Reading"). */
export function readHeader(bytes: Uint8Array): TernHeader {
  checkMagic(bytes);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const major = view.getUint16(HEADER.versionMajor, true);
  const minor = view.getUint16(HEADER.versionMinor, true);
  checkVersion(major, minor);

  const headerSize = view.getUint32(HEADER.headerSize, true);
  if (headerSize < HEADER.size || headerSize % 8 !== 0 || headerSize > 65536) throw formatError(`header size ${headerSize} is not a multiple of 8 in [${HEADER.size}, 65536]`);
  if (bytes.length < headerSize) throw formatError(`truncated: ${bytes.length} bytes, shorter than the ${headerSize}-byte header`);
  const headerCrc = view.getUint32(headerSize - 4, true);
  const actualHeaderCrc = crc32(bytes.subarray(0, headerSize - 4));
  if (headerCrc !== actualHeaderCrc) throw formatError(`header checksum mismatch (stored ${hex(headerCrc)}, computed ${hex(actualHeaderCrc)}): the header is corrupt`);

  const fileLength = u64(view, HEADER.fileLength, 'file length');
  if (bytes.length < fileLength) throw formatError(`truncated: ${bytes.length} bytes of the ${fileLength} the header gives`);
  if (bytes.length > fileLength) throw formatError(`${bytes.length - fileLength} bytes follow the end of the file (the header gives ${fileLength} bytes)`);

  const alignment = view.getUint32(HEADER.alignment, true);
  if (alignment < 64 || alignment > 1 << 20 || (alignment & (alignment - 1)) !== 0) throw formatError(`section alignment ${alignment} is not a power of two in [64, 2^20]`);
  const tableOffset = u64(view, HEADER.tableOffset, 'section table offset');
  const count = view.getUint32(HEADER.sectionCount, true);
  const entrySize = view.getUint32(HEADER.entrySize, true);
  if (entrySize < ENTRY.size || entrySize % 8 !== 0 || entrySize > 4096) throw formatError(`section entry size ${entrySize} is not a multiple of 8 in [${ENTRY.size}, 4096]`);
  if (count < 1) throw formatError('the section table is empty (a file needs at least its graph section)');
  const tableEnd = tableOffset + count * entrySize;
  if (tableOffset < headerSize || tableEnd > fileLength) {
    throw formatError(`the section table [${tableOffset}, ${tableEnd}) (${count} entries) is outside the file [${headerSize}, ${fileLength})`);
  }
  const tableCrc = view.getUint32(HEADER.tableCrc, true);
  const actualTableCrc = crc32(bytes.subarray(tableOffset, tableEnd));
  if (tableCrc !== actualTableCrc) throw formatError(`section table checksum mismatch (stored ${hex(tableCrc)}, computed ${hex(actualTableCrc)}): the table is corrupt`);
  checkZero(bytes, headerSize, tableOffset, 'between the header and the section table');

  const sections: RawSection[] = [];
  let end = tableEnd;
  for (let i = 0; i < count; i++) {
    const e = tableOffset + i * entrySize;
    const s: RawSection = {
      index: i,
      kind: view.getUint16(e + ENTRY.kind, true),
      elementType: view.getUint8(e + ENTRY.elementType),
      encoding: view.getUint8(e + ENTRY.encoding),
      offset: u64(view, e + ENTRY.offset, `section ${i} offset`),
      length: u64(view, e + ENTRY.length, `section ${i} length`),
      elementCount: u64(view, e + ENTRY.elementCount, `section ${i} element count`),
    };
    if (s.offset % alignment !== 0) throw formatError(`section ${i} starts at offset ${s.offset}, not a multiple of ${alignment}`);
    if (s.offset < end) {
      throw formatError(i === 0 ? `section 0 starts at ${s.offset}, inside the header or section table (which end at ${end})` : `section ${i} at offset ${s.offset} overlaps section ${i - 1} or comes before it (sections are stored in table order; the previous one ends at ${end})`);
    }
    if (s.offset + s.length > fileLength) throw formatError(`section ${i} [${s.offset}, ${s.offset + s.length}) runs past the end of the file (${fileLength} bytes)`);
    checkZero(bytes, end, s.offset, `before section ${i}`);
    const stored = view.getUint32(e + ENTRY.crc, true);
    const actual = crc32(bytes.subarray(s.offset, s.offset + s.length));
    if (stored !== actual) throw formatError(`section ${i} checksum mismatch (stored ${hex(stored)}, computed ${hex(actual)}): its ${s.length} bytes at offset ${s.offset} are corrupt`);
    end = s.offset + s.length;
    sections.push(s);
  }
  checkZero(bytes, end, fileLength, 'after the last section');
  return { major, minor, fileLength, alignment, sections };
}
