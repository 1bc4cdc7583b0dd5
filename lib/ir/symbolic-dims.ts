// Arithmetic on dims that may be symbolic, so a batch dimension "N" survives Flatten, Reshape(-1)
// and Shape->Gather->Concat->Reshape chains. A symbolic dim is read as a product of factors
// ("2*N*seq"); anything else (a sum, an expression of a pooled size) is an opaque factor in
// parentheses, which is still exact: equal strings mean equal sizes.

import type { Dim } from './types';

/** A product: integer coefficient times symbols (sorted, repeats allowed). */
interface Monomial {
  coefficient: number;
  symbols: string[];
}

function splitTopLevelFactors(text: string): string[] {
  const factors: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === '*' && depth === 0) {
      factors.push(text.slice(start, i));
      start = i + 1;
    }
  }
  factors.push(text.slice(start));
  return factors;
}

function toMonomial(dim: Dim): Monomial {
  if (typeof dim === 'number') return { coefficient: dim, symbols: [] };
  let coefficient = 1;
  const symbols: string[] = [];
  for (const factor of splitTopLevelFactors(dim)) {
    if (/^\d+$/.test(factor)) coefficient *= Number(factor);
    else symbols.push(factor);
  }
  return { coefficient, symbols: symbols.sort() };
}

function fromMonomial(m: Monomial): Dim {
  if (m.symbols.length === 0 || m.coefficient === 0) return m.coefficient;
  const parts = m.coefficient === 1 ? m.symbols : [String(m.coefficient), ...m.symbols];
  return parts.join('*');
}

export function isKnownDim(dim: Dim): dim is number {
  return typeof dim === 'number';
}

export function multiplyDims(a: Dim, b: Dim): Dim {
  const ma = toMonomial(a);
  const mb = toMonomial(b);
  return fromMonomial({ coefficient: ma.coefficient * mb.coefficient, symbols: [...ma.symbols, ...mb.symbols].sort() });
}

export function dimProduct(dims: readonly Dim[]): Dim {
  return dims.reduce<Dim>((acc, d) => multiplyDims(acc, d), 1);
}

/** total / divisor when that is exact (symbols cancel, coefficients divide), else undefined. */
export function divideDims(total: Dim, divisor: Dim): Dim | undefined {
  const mt = toMonomial(total);
  const md = toMonomial(divisor);
  if (md.coefficient === 0 || mt.coefficient % md.coefficient !== 0) return undefined;
  const remaining = [...mt.symbols];
  for (const symbol of md.symbols) {
    const at = remaining.indexOf(symbol);
    if (at < 0) return undefined;
    remaining.splice(at, 1);
  }
  return fromMonomial({ coefficient: mt.coefficient / md.coefficient, symbols: remaining });
}

export function addDims(a: Dim, b: Dim): Dim {
  if (typeof a === 'number' && typeof b === 'number') return a + b;
  if (a === 0) return b;
  if (b === 0) return a;
  return `(${a}+${b})`;
}

/** An opaque derived dim such as "(pool(H))": exact for equality, nothing more. */
export function opaqueDim(expression: string): Dim {
  return `(${expression})`;
}

/** Generator of fresh names for unknown dims, unique within one graph. */
export class UnknownDimNames {
  private next = 0;
  constructor(private readonly prefix = 'unk__') {}
  fresh(): string {
    return `${this.prefix}${this.next++}`;
  }
}
