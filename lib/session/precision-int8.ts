// precision: 'int8' — every Conv / Gemm / MatMul with constant weights runs on the int8 kernels:
// weights symmetric per output channel (lib/quantize/weights), activations quantized to uint8
// per run from their range (dynamic), accumulation in int32, fp32 out of a fused epilogue.
// The baseline the ternary paths are compared with. Depthwise convs stay fp32 (their one-channel
// groups make the int8 GEMM path slow; see lib/quantize/rewrite.ts for what qualifies).
import type { Graph } from '../ir';
import { applyRewrites, findLayers, rewriteLayer, type RewrittenLayer } from '../quantize/rewrite';

/** The graph with its Conv/Gemm/MatMul layers on int8 kernels (dynamic activation ranges). */
export function quantizeGraphInt8(graph: Graph): Graph {
  const rewrites = new Map<string, RewrittenLayer>();
  for (const layer of findLayers(graph)) rewrites.set(layer.node.name, rewriteLayer(layer, { bits: 8 }, 'dynamic'));
  return applyRewrites(graph, rewrites);
}
