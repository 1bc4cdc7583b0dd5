// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320, initial and final XOR 0xFFFFFFFF: the
// checksum of zlib, gzip and PNG). zlib.crc32 when this Node has it (20.15+, 22.2+), else a
// table-driven version that gives the same numbers.
import * as zlib from 'node:zlib';

type Crc32 = (data: Uint8Array, value?: number) => number;

let table: Uint32Array | undefined;

function crcTable(): Uint32Array {
  if (table) return table;
  table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
}

/** The portable CRC-32; `value` continues an earlier CRC (0 to start). */
export function crc32Generic(data: Uint8Array, value = 0): number {
  const t = crcTable();
  let c = ~value >>> 0;
  for (let i = 0; i < data.length; i++) c = t[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

const nativeCrc32 = (zlib as unknown as { crc32?: Crc32 }).crc32;

/** CRC-32 of `data`, continuing `value` (0 to start). */
export const crc32: Crc32 = typeof nativeCrc32 === 'function' ? (data, value = 0) => nativeCrc32(data, value) >>> 0 : crc32Generic;
