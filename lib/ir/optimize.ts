// optimizeGraph: the passes in the order they help each other, then shape inference so the
// result is fully typed for the planner and the executor.

import { invalidArgument } from '../errors';
import { inferShapes } from './infer-shapes';
import { foldBatchNorm } from './passes/fold-batch-norm';
import { foldConstants } from './passes/fold-constants';
import { foldConvBiasAdd } from './passes/fold-conv-bias-add';
import { foldConvSlices } from './passes/fold-conv-slice';
import { fuseActivation } from './passes/fuse-activation';
import { fuseResidualAdd } from './passes/fuse-residual-add';
import { mergeDuplicateNodes } from './passes/merge-duplicate-nodes';
import { removeDeadNodes } from './passes/remove-dead-nodes';
import { removeIdentity } from './passes/remove-identity';
import { trimConvTaps } from './passes/trim-conv-taps';
import { inlineConstantIfs, mapSubgraphs, sinkConstantCaptures } from './subgraphs';
import type { Graph } from './types';
import { validateGraph } from './validate-graph';

export interface OptimizeOptions {
  /** Fold constant subgraphs and Shape chains (default: true). */
  foldConstants?: boolean;
  /** Fold a constant per-channel Add after a Conv into its bias (default: true). */
  foldBiasAdd?: boolean;
  /** Fold BatchNormalization into the preceding Conv/Gemm (default: true). */
  foldBatchNorm?: boolean;
  /** Fuse residual Adds into Conv epilogues (default: true). */
  fuseResidualAdd?: boolean;
  /** Fuse Relu/Clip/LeakyRelu into Conv/Gemm/MatMul (default: true). */
  fuseActivation?: boolean;
  /** Fold a Slice of a Conv's output along spatial axes (a causal conv's trim) into its pads (default: true). */
  foldConvSlices?: boolean;
  /** Trim Conv kernel taps that read only padding, where the input size is known (default: true). */
  trimConvTaps?: boolean;
  /** Merge nodes that repeat an earlier one (same op, inputs and attributes; default: true). */
  mergeDuplicates?: boolean;
}

const OPTION_NAMES: ReadonlySet<string> = new Set(['foldConstants', 'foldBiasAdd', 'foldBatchNorm', 'fuseResidualAdd', 'fuseActivation', 'foldConvSlices', 'trimConvTaps', 'mergeDuplicates']);

function checkOptions(options: OptimizeOptions): void {
  for (const [key, value] of Object.entries(options)) {
    if (!OPTION_NAMES.has(key)) throw invalidArgument(`one of ${[...OPTION_NAMES].join(', ')}`, 'an option name of optimizeGraph', key);
    if (value !== undefined && typeof value !== 'boolean') throw invalidArgument('a boolean', `options.${key}`, value);
  }
}

/**
 * Run the graph passes: Identity/Dropout removal, constant folding, merging repeated nodes,
 * dead-node removal, bias-Add and BN folding, residual-Add fusion, activation fusion, then (on the inferred
 * shapes) folding Slices of Conv outputs into their pads and trimming Conv taps that read only padding. Each is a pure function; the input graph
 * is not modified. Returns a graph whose valueInfo types every tensor.
 */
export function optimizeGraph(graph: Graph, options: OptimizeOptions = {}): Graph {
  checkOptions(options);
  let result = removeIdentity(graph);
  if (options.foldConstants !== false) {
    result = foldConstants(result);
    // An If on a constant condition becomes its branch, whose nodes may fold in turn.
    for (let round = 0; round < 8; round++) {
      const inlined = inlineConstantIfs(result);
      if (inlined === result) break;
      result = foldConstants(removeIdentity(inlined));
    }
    result = sinkConstantCaptures(result);
  }
  if (options.mergeDuplicates !== false) result = mergeDuplicateNodes(result);
  result = removeDeadNodes(result);
  if (options.foldBiasAdd !== false) result = foldConvBiasAdd(result);
  if (options.foldBatchNorm !== false) result = foldBatchNorm(result);
  // Residual Adds first, so a Relu after the Add fuses into the same epilogue.
  if (options.fuseResidualAdd !== false) result = fuseResidualAdd(result);
  if (options.fuseActivation !== false) result = fuseActivation(result);
  result = removeDeadNodes(result);
  validateGraph(result);
  // Folding slices and trimming taps read the inferred sizes; trimming changes no tensor's shape.
  let typed = inferShapes(result);
  if (options.foldConvSlices !== false) {
    const folded = foldConvSlices(typed);
    // A Relu after the Slice now follows its conv directly.
    if (folded !== typed) typed = options.fuseActivation !== false ? inferShapes(fuseActivation(folded)) : folded;
  }
  const trimmed = options.trimConvTaps !== false ? trimConvTaps(typed) : typed;
  // Subgraphs last: shape inference has typed their inputs from the values they are bound to.
  return mapSubgraphs(trimmed, (sub) => optimizeGraph(sub, options));
}
