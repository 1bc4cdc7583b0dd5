// The benchmark's default input values, the same in every run and process.

/** Seeded uniform [0, 1) floats (xorshift32), the default benchmark input. */
export function seededUniform(count: number, seed = 12345): Float32Array {
  let s = seed >>> 0 || 1;
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = s / 4294967296;
  }
  return out;
}
