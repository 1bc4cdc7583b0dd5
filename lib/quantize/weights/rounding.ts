// Rounding used by every weight quantizer here: half away from zero, the rule fgq.md section 5
// fixes for the integer-only reference, so one convention holds from weights to requantization.

/** Nearest integer, ties away from zero (2.5 -> 3, -2.5 -> -3). */
export function roundHalfAway(x: number): number {
  return x < 0 ? -Math.round(-x) : Math.round(x);
}

/** Nearest integer in [lo, hi], ties away from zero. */
export function roundClamp(x: number, lo: number, hi: number): number {
  const r = roundHalfAway(x);
  return r < lo ? lo : r > hi ? hi : r;
}
