// Einsum's equation and output shape. The grammar (ONNX Einsum-12, as numpy and onnxruntime read
// it): comma-separated operand terms of letters (a-z, A-Z) with at most one "..." each,
// optionally "->" and the output term; spaces are ignored. Without "->" the output is the
// ellipsis dims followed by the letters used exactly once, in ASCII order. "..." covers the same
// number of dims in every operand that has one, and an explicit output must name it when it
// covers any. A letter's dims agree across its occurrences, 1 broadcasting. A malformed
// equation is ERR_MODEL_FORMAT; shapes that do not fit it are ERR_SHAPE_MISMATCH.
// native/exec/ops/einsum.cc applies the same rules at run time.

import { TernionError } from '../../errors';
import { stringAttribute } from '../attributes';
import type { ShapeContext, ShapeFunction } from '../shape-context';
import { formatShape } from '../shape-context';
import type { Dim } from '../types';
import { requireInputType } from './extra-ops';

/** One term: its letters in order, and the index among them before which "..." stands (-1: none). */
export interface EinsumTerm {
  readonly letters: readonly string[];
  readonly ellipsis: number;
}

export interface EinsumEquation {
  readonly inputs: readonly EinsumTerm[];
  readonly output: EinsumTerm;
}

/** Parse an equation for `operands` inputs; `fail` throws with the reason. */
export function parseEinsumEquation(equation: string, operands: number, fail: (why: string) => never): EinsumEquation {
  const text = equation.replace(/ /g, '');
  const parseTerm = (term: string): EinsumTerm => {
    const letters: string[] = [];
    let ellipsis = -1;
    for (let i = 0; i < term.length; i++) {
      if (term[i] === '.') {
        if (!term.startsWith('...', i)) fail(`has a '.' that is not part of "..."`);
        if (ellipsis >= 0) fail(`has more than one "..." in the term "${term}"`);
        ellipsis = letters.length;
        i += 2;
      } else if (/^[a-zA-Z]$/.test(term[i])) {
        letters.push(term[i]);
      } else {
        fail(`has '${term[i]}', which is not a letter, ',', "->" or "..."`);
      }
    }
    return { letters, ellipsis };
  };
  const sides = text.split('->');
  if (sides.length > 2) fail('has more than one "->"');
  const inputs = sides[0].split(',').map(parseTerm);
  if (inputs.length !== operands) fail(`has ${inputs.length} operand terms but the node has ${operands} inputs`);
  const uses = new Map<string, number>();
  for (const term of inputs) for (const l of term.letters) uses.set(l, (uses.get(l) ?? 0) + 1);
  if (sides.length === 2) {
    const output = parseTerm(sides[1]);
    const seen = new Set<string>();
    for (const l of output.letters) {
      if (seen.has(l)) fail(`names '${l}' twice in its output`);
      if (!uses.has(l)) fail(`has '${l}' in its output but in no input`);
      seen.add(l);
    }
    return { inputs, output };
  }
  // Implicit output: ASCII order puts capitals first, as numpy's does.
  const once = [...uses.entries()].filter(([, n]) => n === 1).map(([l]) => l).sort();
  return { inputs, output: { letters: once, ellipsis: inputs.some((t) => t.ellipsis >= 0) ? 0 : -1 } };
}

/** A term's dims: its letters, with "..." expanded to `ellipsisDims` names '...0', '...1', ... */
function termAxes(term: EinsumTerm, ellipsisDims: number): string[] {
  const axes: string[] = [];
  for (let i = 0; i <= term.letters.length; i++) {
    if (i === term.ellipsis) for (let e = 0; e < ellipsisDims; e++) axes.push(`...${e}`);
    if (i < term.letters.length) axes.push(term.letters[i]);
  }
  return axes;
}

/** Einsum: float32, int32 or int64 operands of one type; the output's dims per the equation. */
export const einsumShapeFn: ShapeFunction = (ctx: ShapeContext) => {
  const equation = stringAttribute(ctx.node, 'equation');
  const eq = parseEinsumEquation(equation, ctx.inputCount, (why) => {
    throw new TernionError('ERR_MODEL_FORMAT', `Node "${ctx.node.name}" (Einsum): equation "${equation}" ${why}`);
  });
  const dtype = requireInputType(ctx, 0, ['float32', 'int32', 'int64'], 'input 0');
  for (let i = 1; i < ctx.inputCount; i++) {
    if (ctx.input(i).dtype !== dtype) {
      throw new TernionError('ERR_DTYPE', `Node "${ctx.node.name}" (Einsum): input ${i} is ${ctx.input(i).dtype} but input 0 is ${dtype}`);
    }
  }
  let ellipsisDims = -1;
  eq.inputs.forEach((term, i) => {
    const shape = ctx.shape(i);
    if (term.ellipsis < 0) {
      if (shape.length !== term.letters.length) ctx.fail(`operand ${i} ${formatShape(shape)} has rank ${shape.length} but its term names ${term.letters.length} dims`);
      return;
    }
    const dims = shape.length - term.letters.length;
    if (dims < 0) ctx.fail(`operand ${i} ${formatShape(shape)} has fewer dims than the ${term.letters.length} letters of its term`);
    if (ellipsisDims >= 0 && dims !== ellipsisDims) ctx.fail(`"..." covers ${ellipsisDims} dims in one operand but ${dims} in operand ${i}`);
    ellipsisDims = dims;
  });
  ellipsisDims = Math.max(ellipsisDims, 0);
  if (eq.output.ellipsis < 0 && ellipsisDims > 0) ctx.fail(`"..." covers ${ellipsisDims} dims of the inputs but the output does not name it`);
  // Each axis's size: a number other than 1 wins (two different ones do not fit), then a
  // symbol (it may be 1 at run time), then 1.
  const sizes = new Map<string, Dim>();
  eq.inputs.forEach((term, i) => {
    const shape = ctx.shape(i);
    termAxes(term, ellipsisDims).forEach((axis, d) => {
      const dim = shape[d];
      const seen = sizes.get(axis);
      if (seen === undefined || seen === 1 || (typeof seen === 'string' && typeof dim === 'number' && dim !== 1)) sizes.set(axis, dim);
      else if (typeof seen === 'number' && typeof dim === 'number' && dim !== 1 && dim !== seen) {
        ctx.fail(`operand ${i} ${formatShape(shape)} has dim ${d} of size ${dim} where the same letter elsewhere has size ${seen}`);
      }
    });
  });
  return [{ dtype, shape: termAxes(eq.output, ellipsisDims).map((axis) => sizes.get(axis) ?? 1) }];
};
