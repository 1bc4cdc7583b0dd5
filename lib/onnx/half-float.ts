// Widening of 16-bit floats to float32: ternion computes in fp32, so fp16/bf16 weights are
// converted once at load.

const scratch = new DataView(new ArrayBuffer(4));

/** IEEE 754 binary16 bits -> number (exact: every half is a float32). */
export function float16BitsToNumber(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa === 0 ? sign * Infinity : NaN;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

/** bfloat16 bits -> number: the upper half of a float32. */
export function bfloat16BitsToNumber(bits: number): number {
  scratch.setUint32(0, (bits & 0xffff) << 16);
  return scratch.getFloat32(0);
}

export function widenHalfFloats(bits: Uint16Array | readonly number[], kind: 'float16' | 'bfloat16'): Float32Array {
  const convert = kind === 'float16' ? float16BitsToNumber : bfloat16BitsToNumber;
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = convert(bits[i]);
  return out;
}
