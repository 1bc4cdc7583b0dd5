// What a .tern file records of the quantize() call that made it: the options as plain JSON
// (functions, AbortSignals and calibration data dropped; a Tensor is summarized by its dims),
// and the report.
import type { TernQuantizationInfo } from './types';

function isPlain(v: object): boolean {
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function plainValue(v: unknown, depth: number): unknown {
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return v;
  if (typeof v === 'number') return Number.isFinite(v) ? v : String(v);
  if (typeof v !== 'object' || depth > 8) return undefined;
  if (Array.isArray(v)) return v.map((x) => plainValue(x, depth + 1) ?? null);
  if (isPlain(v)) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      const p = plainValue(x, depth + 1);
      if (p !== undefined) Object.defineProperty(out, k, { value: p, enumerable: true, writable: true, configurable: true });
    }
    return out;
  }
  const dims = (v as { dims?: unknown }).dims;
  if (Array.isArray(dims) && dims.every((d) => typeof d === 'number')) return { dims: [...dims] };
  return undefined;
}

/** The options (resolved or as given) and report of a quantize() call, ready for writeTern. */
export function quantizationInfo(options: object, report: unknown): TernQuantizationInfo {
  return { options: (plainValue(options, 0) ?? {}) as Record<string, unknown>, report: plainValue(report, 0) ?? null };
}
