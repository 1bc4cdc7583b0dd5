// HardSwish as opset-13 exporters write it, Mul(x, HardSigmoid(x)) with alpha = 1/6 and
// beta = 0.5 (MobileNetV3), as the HardSwish op: one pass instead of two, one buffer fewer.
// ternion's HardSwish computes min(1, max(0, x * (1/6) + 0.5)) * x, the HardSigmoid's
// arithmetic with the same float constants then the same product, so the values are the same.

import type { Graph, Node } from '../types';
import { fuseSelfGatedMul } from './fusion-utils';

const floatAttr = (n: Node, key: string, dflt: number): number => {
  const a = n.attributes[key];
  return a && a.type === 'float' ? a.value : dflt;
};

export function fuseHardSwish(graph: Graph): Graph {
  // The float32 values of the native HardSwish's constants (attributes hold float32 values).
  return fuseSelfGatedMul(graph, (n) => n.opType === 'HardSigmoid' &&
    Math.fround(floatAttr(n, 'alpha', 0.2)) === Math.fround(1 / 6) && Math.fround(floatAttr(n, 'beta', 0.5)) === 0.5, 'HardSwish');
}
