// onnxruntime's dynamically quantized Linear layers (quantize_dynamic: the `model_quantized.onnx`
// files of transformers.js) end each MatMulInteger in a Cast to float and a Mul by the product of
// the two scales:
//   y = Mul(Cast(MatMulInteger(a, b, a_zp, b_zp), to = FLOAT), Mul(a_scale, b_scale))
// (either operand order in both Muls). TernionMatMulIntegerScaled(a, b, a_zp, b_zp, a_scale,
// b_scale) computes that in the GEMM's epilogue (native/exec/ops/quantized-linear.cc): the
// same conversion and the same two products, bit for bit, without the int32 tensor and the two
// passes over it. b_scale must be a constant (scalar or one per column); the scales' Mul stays
// when something else reads its output. The layer's bias Add after it (a float32 constant, one
// value per column) becomes input 6, added in the same epilogue: fmaf(acc, scale, bias), one
// rounding where the Mul and the Add had two (the results within an ulp of each other).

import { consumersByTensor, freshName, producersByTensor, soleReader, usedNames } from '../graph-utils';
import type { ConstantTensor, Graph, Node } from '../types';

/**
 * The name of a float32 constant holding one value per column ([N], or [1, ..., 1, N]), as a 1-D
 * [N] tensor (added to `initializers` under a new name when it had more axes); else undefined.
 */
function biasVector(graph: Graph, name: string, columns: number, initializers: Map<string, ConstantTensor>, flattened: Map<string, string>,
                    used: () => Set<string>): string | undefined {
  const t = graph.initializers.get(name);
  if (!t || t.dtype !== 'float32' || t.data.length !== columns || t.dims[t.dims.length - 1] !== columns) return undefined;
  if (t.dims.length === 1) return name;
  let flat = flattened.get(name);
  if (flat === undefined) {
    flat = freshName(used(), `${name}/vector`);
    flattened.set(name, flat);
    initializers.set(flat, { ...t, name: flat, dims: [columns] });
  }
  return flat;
}

const isStd = (n: Node | undefined, op: string): n is Node => !!n && n.opType === op && n.domain === '';

/**
 * An integer layer's output `acc` made float the way onnxruntime's dynamic quantization writes it:
 * Mul(Cast(acc, to = FLOAT), scales) with scales = Mul(x, y), each node the sole reader of what
 * it reads; the three nodes, or undefined. (Also read-dynamic-convs.ts, for ConvInteger.)
 */
export function scaledCast(graph: Graph, consumers: Map<string, Node[]>, producers: Map<string, Node>, acc: string): { cast: Node; mul: Node; scales: Node } | undefined {
  const cast = soleReader(graph, consumers, acc);
  const to = cast?.attributes.to;
  if (!isStd(cast, 'Cast') || to?.type !== 'int' || to.value !== 1) return undefined;
  const mul = soleReader(graph, consumers, cast.outputs[0]);
  if (!isStd(mul, 'Mul') || mul.inputs.length !== 2) return undefined;
  const scales = producers.get(mul.inputs[0] === cast.outputs[0] ? mul.inputs[1] : mul.inputs[0]);
  if (!isStd(scales, 'Mul') || scales.inputs.length !== 2) return undefined;
  return { cast, mul, scales };
}

export function fuseMatMulIntegerScaled(graph: Graph): Graph {
  const consumers = consumersByTensor(graph.nodes);
  const producers = producersByTensor(graph.nodes);
  const removed = new Set<Node>();
  const fused = new Map<Node, Node>();
  const initializers = new Map(graph.initializers);
  const flattened = new Map<string, string>(); // a [1, ..., N] bias -> its [N] copy
  let names: Set<string> | undefined; // the graph's names, gathered once when a copy needs one
  const used = (): Set<string> => (names ??= usedNames(graph));
  for (const mm of graph.nodes) {
    if (!isStd(mm, 'MatMulInteger') || mm.outputs.length !== 1) continue;
    const chain = scaledCast(graph, consumers, producers, mm.outputs[0]);
    if (!chain) continue;
    const { cast, mul, scales } = chain;
    const s = scales.outputs[0];
    // b_scale: a float32 constant, one value or one per column of b; a_scale the other operand.
    const b = graph.initializers.get(mm.inputs[1]);
    const columns = b?.dims[b.dims.length - 1];
    const isBScale = (v: string): boolean => {
      const t = graph.initializers.get(v);
      const n = t?.dims.reduce((p, d) => p * d, 1);
      return !!t && t.dtype === 'float32' && t.dims.length <= 1 && (n === 1 || n === columns);
    };
    const [x0, x1] = scales.inputs;
    const bScale = isBScale(x1) ? x1 : isBScale(x0) ? x0 : undefined;
    const aScale = bScale === x1 ? x0 : x1;
    if (!bScale || aScale === bScale || graph.valueInfo.get(aScale)?.dtype !== 'float32') continue;
    const inputs = [...mm.inputs];
    while (inputs.length < 4) inputs.push('');
    removed.add(mm);
    removed.add(cast);
    if (soleReader(graph, consumers, s) === mul) removed.add(scales);
    const add = soleReader(graph, consumers, mul.outputs[0]);
    const bias = isStd(add, 'Add') && add.inputs.length === 2 && columns !== undefined
      ? biasVector(graph, add.inputs[0] === mul.outputs[0] ? add.inputs[1] : add.inputs[0], columns, initializers, flattened, used) : undefined;
    // The fused node stands where the final Mul (or the bias Add) stood: a_scale and everything
    // else exist by then.
    const node: Node = { ...mm, opType: 'TernionMatMulIntegerScaled', inputs: [...inputs.slice(0, 4), aScale, bScale], outputs: [...mul.outputs], attributes: {} };
    if (bias) {
      removed.add(mul);
      fused.set(add as Node, { ...node, inputs: [...node.inputs, bias], outputs: [...(add as Node).outputs] });
    } else {
      fused.set(mul, node);
    }
  }
  if (removed.size === 0) return graph;
  const valueInfo = new Map(graph.valueInfo);
  for (const n of removed) valueInfo.delete(n.outputs[0]);
  const nodes = graph.nodes.filter((n) => !removed.has(n)).map((n) => fused.get(n) ?? n);
  return { ...graph, nodes, valueInfo, initializers };
}
