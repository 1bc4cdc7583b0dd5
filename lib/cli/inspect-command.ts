// `ternion inspect MODEL`: what a model holds. An .onnx: inputs, outputs, op counts and the
// layers quantize() would rewrite, with their parameters and MACs. A .tern: per layer the op,
// weight bits, group size, bytes and activation parameters, from the report it was saved with.
import { readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { TernionError } from '../errors';
import { optimizeGraph, type Graph, type ValueInfo } from '../ir';
import { loadOnnxModel } from '../onnx';
import { findLayers } from '../quantize';
import type { CommandSpec, ParsedArgs } from './args';
import type { Io } from './io';
import { isTernFile } from './model-file';
import { inspectTern } from './inspect-tern';
import { num, table, valueLine } from './text';

export const INSPECT_SPEC: CommandSpec = {
  name: 'inspect',
  usage: `usage: ternion inspect MODEL [--json]

  MODEL    an .onnx (inputs, outputs, op counts, quantizable layers with parameter counts) or a
           .tern (per layer: op, weight bits, group size, bytes, activation scale and zero point)
  --json   print one JSON object instead of tables`,
  positionals: ['MODEL'],
  flags: [{ name: 'json', switch: true }],
};

function opCounts(graph: Graph): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const n of graph.nodes) {
    const op = n.domain ? `${n.domain}.${n.opType}` : n.opType;
    counts[op] = (counts[op] ?? 0) + 1;
  }
  return Object.fromEntries(Object.entries(counts).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])));
}

const io_ = (v: ValueInfo) => ({ name: v.name, dtype: v.dtype, shape: v.shape ?? null });

async function inspectOnnx(path: string): Promise<{ json: unknown; lines: string[] }> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new TernionError('ERR_INVALID_ARGUMENT', `Cannot read model file "${path}": ${(e as Error).message}`, { cause: e });
  }
  const graph = loadOnnxModel(bytes, { basePath: dirname(path) });
  const optimized = optimizeGraph(graph);
  const layers = findLayers(optimized).map((l) => ({
    name: l.node.name, op: l.node.opType, weightDims: l.dims, parameters: l.weights.length, macs: l.macs,
  }));
  const ops = opCounts(graph);
  let parameters = 0;
  for (const t of graph.initializers.values()) parameters += t.data.length;
  const json = {
    model: path, format: 'onnx', producer: `${graph.metadata.producerName} ${graph.metadata.producerVersion}`.trim(), opsets: graph.opsets,
    inputs: graph.inputs.map(io_), outputs: graph.outputs.map(io_), nodes: graph.nodes.length, nodesOptimized: optimized.nodes.length,
    ops, parameters, quantizableLayers: layers,
  };
  const lines = [
    `${path}: ONNX model${json.producer ? ` from ${json.producer}` : ''}, opset ${graph.opsets[''] ?? '?'}, ${num(parameters)} parameters`,
    'inputs:', ...graph.inputs.map(valueLine),
    'outputs:', ...graph.outputs.map(valueLine),
    `ops (${graph.nodes.length} nodes; ${optimized.nodes.length} after ternion's graph passes): ` +
      Object.entries(ops).map(([op, n]) => `${op} ${n}`).join(', '),
    `quantizable layers (${layers.length}; weights quantized by ternion quantize, the first conv and last FC at int8):`,
    ...table(
      ['layer', 'op', 'weight dims', 'parameters', 'MACs/sample'],
      layers.map((l) => [l.name, l.op, `[${l.weightDims.join(', ')}]`, num(l.parameters), l.macs === null ? '?' : num(l.macs)]),
      3,
    ).map((l) => `  ${l}`),
  ];
  return { json, lines };
}

export async function inspectCommand(args: ParsedArgs, io: Io): Promise<number> {
  const path = args.positionals[0];
  const { json, lines } = isTernFile(path) ? await inspectTern(path) : await inspectOnnx(path);
  if (args.values.has('json')) io.out(JSON.stringify(json, null, 1));
  else for (const l of lines) io.out(l);
  return 0;
}
