// SiLU (x * sigmoid(x), "Swish": EfficientNet, YOLO) as one op, TernionSilu: one pass over the
// tensor instead of a Sigmoid writing s and a Mul reading x and s, and one buffer fewer. The
// native op computes x * (1 / (1 + e^-x)) with the Sigmoid's own arithmetic, then the product,
// so the result is bit-identical to the two ops. Only a Sigmoid read by nothing but that Mul
// (and not a graph output) is fused.

import type { Graph } from '../types';
import { fuseSelfGatedMul } from './fusion-utils';

export function fuseSilu(graph: Graph): Graph {
  return fuseSelfGatedMul(graph, (n) => n.opType === 'Sigmoid', 'TernionSilu');
}
