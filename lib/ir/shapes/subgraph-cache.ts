// Subgraphs typed and inferred once per set of bound types. A subgraph is inferred again every
// time its outer graph's types are (each pass that reads types, each round of If inlining, each
// level optimizeGraph recurses into), and a Loop / Scan body once per round of its carried types;
// a nested one is inferred again for every inference of each level above it. What comes out
// depends only on the subgraph and the types bound to its inputs, and graphs are never mutated
// (a pass that changes a subgraph makes a new Graph), so the Graph object is the key: a rewritten
// subgraph is a new key, and a subgraph no longer referenced lets its entries be collected.

import { TernionError } from '../../errors';
import type { Graph, ValueType } from '../types';

/** What inferring a subgraph on some types gave: the typed graph, or the error it threw. */
type Outcome = { readonly graph: Graph } | { readonly error: TernionError };

const outcomes = new WeakMap<Graph, Map<string, Outcome>>();

/** Bound types as a key: JSON keeps dim 3 apart from a symbol "3", an unknown rank (null) apart from a scalar ([]). */
function typesKey(types: readonly ValueType[]): string {
  return JSON.stringify(types.map((t) => [t.dtype, t.shape ?? null]));
}

/**
 * infer() for `sub` bound to `types`, or what it gave the first time. Errors are kept too (the
 * same TernionError is thrown again), so a branch that cannot take some shapes fails once.
 */
export function inferOnce(sub: Graph, types: readonly ValueType[], infer: () => Graph): Graph {
  let byTypes = outcomes.get(sub);
  if (byTypes === undefined) outcomes.set(sub, (byTypes = new Map()));
  const key = typesKey(types);
  let outcome = byTypes.get(key);
  if (outcome === undefined) {
    try {
      outcome = { graph: infer() };
    } catch (error) {
      if (!(error instanceof TernionError)) throw error;
      outcome = { error };
    }
    byTypes.set(key, outcome);
  }
  if ('error' in outcome) throw outcome.error;
  return outcome.graph;
}
