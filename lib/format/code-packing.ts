// Weight codes packed below a byte for the .tern file (docs/format.md, "Code packing"):
//   2-bit: t in {-1, 0, 1} as the field t & 3 (0 -> 00, 1 -> 01, -1 -> 11; 10 is invalid),
//          element i in byte i >> 2 at bits 2 * (i & 3): the first element in the low bits.
//   4-bit: q in [-7, 7] as the nibble q & 15 (1000 = -8 is invalid), element i in byte i >> 1,
//          even i in the low nibble.
// Unused fields of the last byte are zero. The packers report the first value they cannot
// store and the unpackers the first field that is invalid, so callers can name the tensor.

/** The result of a packer or unpacker: -1 on success, else the index of the offending element (>= count: a padding field). */
export type PackResult = number;

const LUT2 = new Int8Array(256 * 4);
const BAD2 = new Uint8Array(256);
const LUT4 = new Int8Array(256 * 2);
const BAD4 = new Uint8Array(256);

for (let b = 0; b < 256; b++) {
  for (let j = 0; j < 4; j++) {
    const f = (b >> (2 * j)) & 3;
    if (f === 2) BAD2[b] = 1;
    LUT2[b * 4 + j] = f === 3 ? -1 : f === 2 ? 0 : f;
  }
  for (let j = 0; j < 2; j++) {
    const f = (b >> (4 * j)) & 15;
    if (f === 8) BAD4[b] = 1;
    LUT4[b * 2 + j] = f >= 8 ? f - 16 : f;
  }
}

/** Packs ternary codes into `dst` (ceil(n / 4) bytes, zeroed). Returns -1, or the index of a value outside {-1, 0, 1}. */
export function packCodes2(src: Int8Array, dst: Uint8Array): PackResult {
  for (let i = 0; i < src.length; i++) {
    const v = src[i];
    if (v < -1 || v > 1) return i;
    dst[i >> 2] |= (v & 3) << ((i & 3) * 2);
  }
  return -1;
}

/** Packs 4-bit codes into `dst` (ceil(n / 2) bytes, zeroed). Returns -1, or the index of a value outside [-7, 7]. */
export function packCodes4(src: Int8Array, dst: Uint8Array): PackResult {
  for (let i = 0; i < src.length; i++) {
    const v = src[i];
    if (v < -7 || v > 7) return i;
    dst[i >> 1] |= (v & 15) << ((i & 1) * 4);
  }
  return -1;
}

/** Unpacks `dst.length` 2-bit codes from `src`. Returns -1, or the index of the first invalid field (10, or nonzero padding). */
export function unpackCodes2(src: Uint8Array, dst: Int8Array): PackResult {
  const n = dst.length;
  const full = n >> 2;
  for (let i = 0; i < full; i++) {
    const b = src[i];
    if (BAD2[b]) return 4 * i + firstBadField(b, 2, 2);
    const o = 4 * i, l = 4 * b;
    dst[o] = LUT2[l];
    dst[o + 1] = LUT2[l + 1];
    dst[o + 2] = LUT2[l + 2];
    dst[o + 3] = LUT2[l + 3];
  }
  const rest = n - 4 * full;
  if (rest > 0) {
    const b = src[full];
    for (let j = 0; j < 4; j++) {
      const f = (b >> (2 * j)) & 3;
      if (j >= rest ? f !== 0 : f === 2) return 4 * full + j;
      if (j < rest) dst[4 * full + j] = LUT2[4 * b + j];
    }
  }
  return -1;
}

/** Unpacks `dst.length` 4-bit codes from `src`. Returns -1, or the index of the first invalid field (1000, or a nonzero padding nibble). */
export function unpackCodes4(src: Uint8Array, dst: Int8Array): PackResult {
  const n = dst.length;
  const full = n >> 1;
  for (let i = 0; i < full; i++) {
    const b = src[i];
    if (BAD4[b]) return 2 * i + firstBadField(b, 4, 8);
    dst[2 * i] = LUT4[2 * b];
    dst[2 * i + 1] = LUT4[2 * b + 1];
  }
  if (n & 1) {
    const b = src[full];
    if ((b & 15) === 8) return n - 1;
    if (b >> 4 !== 0) return n;
    dst[n - 1] = LUT4[2 * b];
  }
  return -1;
}

function firstBadField(b: number, bits: number, bad: number): number {
  const mask = (1 << bits) - 1;
  for (let j = 0; j * bits < 8; j++) if (((b >> (j * bits)) & mask) === bad) return j;
  return 0;
}
