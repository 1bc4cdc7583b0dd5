// `ternion inspect` of a .tern file: per quantized layer (TernionQConv / TernionQGemm) the op,
// weight bits, group size, bytes and activation parameters, read from the graph's attributes and
// section table; bits/weight, multiplications removed and weight error come from the quantizer's
// report saved in the file, when it has one.
import { statSync } from 'node:fs';
import { loadTern } from '../format';
import type { AttributeValue, Node } from '../ir';
import type { LayerReport } from '../quantize';
import { num, pct, table, valueLine } from './text';

const QUANTIZED_OPS = new Set(['TernionQConv', 'TernionQGemm']);

function attr(node: Node, key: string): number | string | undefined {
  const a: AttributeValue | undefined = node.attributes[key];
  return a && (a.type === 'int' || a.type === 'float' || a.type === 'string') ? a.value : undefined;
}

export async function inspectTern(path: string): Promise<{ json: unknown; lines: string[] }> {
  const model = await loadTern(path);
  const { graph } = model;
  const report = model.quantization?.report as { layers?: LayerReport[]; total?: Record<string, unknown> } | null | undefined;
  const byName = new Map((report?.layers ?? []).map((l) => [l.name, l]));
  const sectionBytes = new Map(model.sections.filter((s) => s.name !== undefined).map((s) => [s.name!, s.length]));
  const layers = graph.nodes.filter((n) => QUANTIZED_OPS.has(n.opType)).map((n) => {
    const r = byName.get(n.name);
    const actMode = attr(n, 'act_mode');
    // Weights and their scales: inputs 1 (codes), 2 (scales), 5 and 6 (zero points / channel scales).
    const bytes = [1, 2, 5, 6].reduce((sum, i) => sum + (sectionBytes.get(n.inputs[i] ?? '') ?? 0), 0);
    return {
      name: n.name,
      op: n.opType,
      weights: r?.weights ?? null,
      weightBits: attr(n, 'weight_bits') ?? null,
      groupSize: attr(n, 'group_size') ?? null,
      form: attr(n, 'form') ?? null,
      bitsPerWeight: r?.bitsPerWeight ?? null,
      bytes: r?.bytes ?? bytes,
      parameters: r?.parameters ?? null,
      multiplicationsRemoved: r?.multiplicationsRemoved ?? null,
      relativeError: r?.relativeError ?? null,
      activation: actMode === 'static'
        ? { mode: 'static', bits: attr(n, 'act_bits') ?? null, scale: attr(n, 'act_scale') ?? null, zeroPoint: attr(n, 'act_zero_point') ?? null }
        : { mode: actMode ?? null },
    };
  });
  const ops: Record<string, number> = {};
  for (const n of graph.nodes) ops[n.opType] = (ops[n.opType] ?? 0) + 1;
  const fileBytes = statSync(path).size;
  const json = {
    model: path, format: 'tern', version: `${model.version.major}.${model.version.minor}`, producer: model.producer,
    inputs: graph.inputs.map((v) => ({ name: v.name, dtype: v.dtype, shape: v.shape ?? null })),
    outputs: graph.outputs.map((v) => ({ name: v.name, dtype: v.dtype, shape: v.shape ?? null })),
    nodes: graph.nodes.length, ops, options: model.quantization?.options ?? null, total: report?.total ?? null, layers,
  };
  const lines = [
    `${path}: .tern ${json.version} from ${model.producer.name} ${model.producer.version}, ${num(fileBytes)} bytes, ${graph.nodes.length} nodes`,
    'inputs:', ...graph.inputs.map(valueLine),
    'outputs:', ...graph.outputs.map(valueLine),
    `ops: ${Object.entries(ops).map(([op, n]) => `${op} ${n}`).join(', ')}`,
    `quantized layers (${layers.length}):`,
    ...table(
      ['layer', 'op', 'weights', 'bits', 'N', 'bits/w', 'bytes', 'mults removed', 'act bits', 'act scale', 'act zero'],
      layers.map((l) => [
        l.name, l.op, l.weights ?? '?', String(l.weightBits ?? '?'), l.groupSize === null ? '-' : String(l.groupSize),
        l.bitsPerWeight === null ? '?' : l.bitsPerWeight.toFixed(2), num(l.bytes), pct(l.multiplicationsRemoved),
        String(l.activation.mode === 'static' ? l.activation.bits : l.activation.mode ?? '?'),
        l.activation.mode === 'static' && typeof l.activation.scale === 'number' ? l.activation.scale.toPrecision(4) : '-',
        l.activation.mode === 'static' ? String(l.activation.zeroPoint) : '-',
      ]),
      3,
    ).map((l) => `  ${l}`),
  ];
  if (report?.total) {
    const t = report.total as { bytes: number; fp32Bytes: number; multiplicationsRemoved: number };
    lines.push(`total: ${num(t.bytes)} B of quantized weights (fp32: ${num(t.fp32Bytes)} B), ${pct(t.multiplicationsRemoved)} of the multiplications removed`);
  }
  if (model.quantization?.options) lines.push(`quantized with: ${JSON.stringify(model.quantization.options)}`);
  return { json, lines };
}
