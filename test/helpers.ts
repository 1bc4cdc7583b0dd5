// Shared test helpers: a seeded PRNG (so failures reproduce) and error-matching.
import { expect } from 'vitest';

/** mulberry32: small, fast, seeded. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randInt(r: () => number, lo: number, hi: number): number {
  return lo + Math.floor(r() * (hi - lo + 1));
}

/** Asserts fn throws a TernionError with this code whose message matches. */
/** Like expectCode, for a promise that must reject. */
export async function expectRejection(p: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
  const err = (await p.then(() => undefined, (e: unknown) => e)) as (Error & { code?: string }) | undefined;
  expect(err, 'expected a rejection').toBeInstanceOf(Error);
  expect(err!.name).toBe('TernionError');
  expect(err!.code).toBe(code);
  if (message) expect(err!.message).toMatch(message);
}

export function expectCode(fn: () => unknown, code: string, message?: RegExp): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught, 'expected a throw').toBeInstanceOf(Error);
  const err = caught as Error & { code?: string };
  expect(err.name).toBe('TernionError');
  expect(err.code).toBe(code);
  if (message) expect(err.message).toMatch(message);
}
