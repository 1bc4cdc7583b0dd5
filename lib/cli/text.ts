// Small text helpers shared by the commands' tables.

/** 1234567 -> "1,234,567". */
export const num = (x: number): string => x.toLocaleString('en-US');

/** 0.734 -> "73%"; null -> "-". */
export const pct = (x: number | null): string => (x === null ? '-' : `${(x * 100).toFixed(0)}%`);

/** "  name: float32 [batch, 1, 28, 28]" */
export function valueLine(v: { name: string; dtype: string; shape?: readonly (number | string)[] }): string {
  return `  ${v.name}: ${v.dtype} ${v.shape ? `[${v.shape.join(', ')}]` : '(shape unknown)'}`;
}

/** Columns padded to their widest cell: the first `left` left-aligned, the rest right-aligned. */
export function table(head: string[], rows: string[][], left = 2): string[] {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => (i < left ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ').trimEnd();
  return [line(head), ...rows.map(line)];
}
