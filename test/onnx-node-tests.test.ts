// Every ONNX node conformance model from libonnx-testdata: the loader accepts it exactly when
// the op table supports its ops at its opset (else ERR_UNSUPPORTED_OP naming the op), and shape
// inference reproduces the shapes of the expected outputs (output_<i>.pb).

import * as fs from 'fs';
import * as path from 'path';
import { describe, expect, it } from 'vitest';
import { TernionError } from '../lib/errors';
import { inferShapes } from '../lib/ir/infer-shapes';
import { optimizeGraph } from '../lib/ir/optimize';
import { findOpSpec } from '../lib/ir/ops';
import { isIntegerType } from '../lib/ir/dtype';
import type { Graph } from '../lib/ir/types';
import { loadOnnxModel } from '../lib/onnx';
import { ModelProtoType } from '../lib/onnx/proto';
import type { ModelProtoMessage } from '../lib/onnx/proto';
import { INSTALL_HINT, ONNX_TESTDATA_ROOT, readModelBytes, readTestTensors, requireTestdataRoot } from './onnx-testdata';

type Expectation = { kind: 'supported' } | { kind: 'unsupported-op'; opType: string } | { kind: 'non-tensor-value' } | { kind: 'unsupported-cast' } | { kind: 'double' } | { kind: 'unsupported-shift' };

/** ONNX element types Cast / CastLike take and produce: FLOAT, UINT8, INT8, INT32, INT64, BOOL. */
const CAST_TARGETS = new Set([1, 2, 3, 6, 7, 9]);

/** What the loader should do, worked out from the raw protobuf independently of the loader. */
function expectationFor(bytes: Uint8Array): Expectation {
  const model = ModelProtoType.decode(bytes) as unknown as ModelProtoMessage;
  const opsets = new Map(model.opset_import.map((o) => [o.domain === 'ai.onnx' ? '' : o.domain, Number(o.version)]));
  // Every node, those of If / Loop / Scan subgraphs included (the loader decodes them too).
  const everyNode = (nodes: ModelProtoMessage['graph']['node']): ModelProtoMessage['graph']['node'] =>
    nodes.flatMap((n) => [n, ...n.attribute.flatMap((a) => (a.g ? everyNode(a.g.node) : []))]);
  for (const node of everyNode(model.graph?.node ?? [])) {
    const domain = node.domain === 'ai.onnx' ? '' : node.domain;
    const spec = findOpSpec(domain, node.op_type);
    const opset = opsets.get(domain) ?? 0;
    if (!spec || opset < spec.minOpset || opset > spec.maxOpset) return { kind: 'unsupported-op', opType: node.op_type };
  }
  const values = [...(model.graph?.input ?? []), ...(model.graph?.output ?? [])];
  if (values.some((v) => v.type && !v.type.tensor_type)) return { kind: 'non-tensor-value' };
  const inputTypes = new Map((model.graph?.input ?? []).map((v) => [v.name, Number(v.type?.tensor_type?.elem_type)]));
  for (const node of model.graph?.node ?? []) {
    if (node.op_type !== 'Cast' && node.op_type !== 'CastLike') continue;
    // CastLike's target is its second input's type (a graph input in these tests).
    const to = node.op_type === 'Cast' ? Number(node.attribute.find((a) => a.name === 'to')?.i) : inputTypes.get(node.input[1]);
    const from = inputTypes.get(node.input[0]);
    if ((to !== undefined && !CAST_TARGETS.has(to)) || (from !== undefined && !CAST_TARGETS.has(from))) return { kind: 'unsupported-cast' };
  }
  // BitShift on uint16 / uint32 / uint64: the IR holds them, the executor shifts uint8 only.
  const UINT8 = 2;
  if ((model.graph?.node ?? []).some((n) => n.op_type === 'BitShift' && inputTypes.has(n.input[0]) && inputTypes.get(n.input[0]) !== UINT8)) return { kind: 'unsupported-shift' };
  // Double values: the IR holds them, ternion computes in float32.
  const DOUBLE = 11;
  if (values.some((v) => Number(v.type?.tensor_type?.elem_type) === DOUBLE) ||
      (model.graph?.node ?? []).some((n) => n.attribute.some((a) => a.name === 'dtype' && Number(a.i) === DOUBLE))) return { kind: 'double' };
  return { kind: 'supported' };
}

/**
 * Integer inputs (axes, shapes, split sizes) become initializers from the test data, and so do
 * the float inputs that decide an output's size: Range's bounds, Resize's and Upsample's scales,
 * NonMaxSuppression's boxes, scores and thresholds.
 */
function withIntegerInputsAsConstants(graph: Graph, dir: string): Graph {
  const data = readTestTensors(dir, 'input');
  const initializers = new Map(graph.initializers);
  const sizing = new Set(graph.nodes.flatMap((n) => {
    if (n.opType === 'Range' || n.opType === 'NonZero') return n.inputs;
    if (n.opType === 'Resize' || n.opType === 'Upsample') return n.inputs.slice(1);
    if (n.opType === 'OneHot') return [n.inputs[1]]; // depth
    if (n.opType === 'Compress') return [n.inputs[1]]; // condition
    if (n.opType === 'NonMaxSuppression') return n.inputs; // the selected count depends on every input
    return [];
  }));
  const inputs = graph.inputs.filter((input, i) => {
    if ((!isIntegerType(input.dtype) && !sizing.has(input.name)) || data[i] === undefined) return true;
    initializers.set(input.name, { ...data[i], name: input.name });
    return false;
  });
  return { ...graph, inputs, initializers };
}

function listModelDirs(group: string): string[] {
  const dir = path.join(ONNX_TESTDATA_ROOT, group);
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir).filter((name) => fs.existsSync(path.join(dir, name, 'model.onnx'))).sort();
}

const GROUPS = ['node', 'pytorch-converted', 'pytorch-operator', 'simple'] as const;

it('libonnx-testdata is installed', () => {
  expect(() => requireTestdataRoot(), INSTALL_HINT).not.toThrow();
  expect(listModelDirs('node').length, INSTALL_HINT).toBeGreaterThan(500);
});

for (const group of GROUPS) {
  const names = listModelDirs(group);
  describe(`libonnx-testdata ${group}`, () => {
    it.each(names)('%s', (name) => {
      const dir = path.join(ONNX_TESTDATA_ROOT, group, name);
      const bytes = readModelBytes(dir);
      const expected = expectationFor(bytes);
      let graph: Graph;
      try {
        graph = loadOnnxModel(bytes, { basePath: dir });
      } catch (error) {
        expect(error).toBeInstanceOf(TernionError);
        const { code, message } = error as TernionError;
        if (expected.kind === 'unsupported-op') {
          expect(code).toBe('ERR_UNSUPPORTED_OP');
          expect(message).toContain(expected.opType);
          expect(message).toMatch(/opset \d+/);
          return;
        }
        if (expected.kind === 'non-tensor-value') {
          expect(code).toBe('ERR_DTYPE');
          return;
        }
        throw error;
      }
      if (expected.kind === 'unsupported-cast') {
        // Loaded (the IR holds float16, double and string values), refused by shape inference,
        // which the session runs before building: ERR_DTYPE naming the Cast (or CastLike).
        expect(() => inferShapes(graph)).toThrow(expect.objectContaining({ code: 'ERR_DTYPE', message: expect.stringMatching(/\(Cast(Like)?\): casting (from|to)/) }));
        return;
      }
      if (expected.kind === 'unsupported-shift') {
        expect(() => inferShapes(graph)).toThrow(expect.objectContaining({ code: 'ERR_DTYPE', message: expect.stringMatching(/\(BitShift\): X is uint(16|32|64), but BitShift takes uint8/) }));
        return;
      }
      if (expected.kind === 'double') {
        // An op that computes on them refuses double values by name; one that moves them types them.
        try {
          inferShapes(graph);
        } catch (error) {
          expect(error).toMatchObject({ code: 'ERR_DTYPE', message: expect.stringMatching(/float64|dtype 11/) });
          return;
        }
      } else {
        expect(expected.kind).toBe('supported');
      }

      // Plain inference must succeed; where it knows a size, the size must be right.
      const outputs = readTestTensors(dir, 'output');
      const inferred = inferShapes(graph);
      outputs.forEach((tensor, i) => {
        const shape = inferred.valueInfo.get(graph.outputs[i].name)?.shape;
        if (shape === undefined) return;
        expect(shape.length, `rank of output ${i}`).toBe(tensor.dims.length);
        shape.forEach((d, axis) => {
          if (typeof d === 'number') expect(d, `output ${i} axis ${axis}`).toBe(tensor.dims[axis]);
        });
      });

      // With the integer (shape-parameter) inputs known, every output shape is exact; except the
      // number of a Loop's iterations when it depends on values known at run time only (a bool
      // condition input; the Range tests written out as a Loop compute it from float bounds).
      const specialized = inferShapes(withIntegerInputsAsConstants(graph, dir));
      const fromLoop = new Set(graph.nodes.filter((n) => n.opType === 'Loop').flatMap((n) => n.outputs));
      outputs.forEach((tensor, i) => {
        const name = graph.outputs[i].name;
        const type = specialized.valueInfo.get(name) ?? specialized.inputs.find((input) => input.name === name);
        const trips = fromLoop.has(name) && typeof type?.shape?.[0] === 'string' ? [type.shape[0], ...tensor.dims.slice(1)] : tensor.dims;
        expect(type?.shape, `shape of output ${i} "${name}"`).toEqual(trips);
        const declared = type?.dtype === 'float16' || type?.dtype === 'bfloat16' ? 'float32' : type?.dtype;
        expect(declared, `dtype of output ${i} "${name}"`).toBe(tensor.dtype);
      });

      // The passes keep the graph's outputs and their shapes.
      const optimized = optimizeGraph(withIntegerInputsAsConstants(graph, dir));
      expect(optimized.outputs.map((o) => o.name)).toEqual(graph.outputs.map((o) => o.name));
      outputs.forEach((tensor, i) => {
        const name = graph.outputs[i].name;
        const type = optimized.valueInfo.get(name) ?? optimized.inputs.find((input) => input.name === name);
        const folded = optimized.initializers.get(name);
        const shape = type?.shape ?? folded?.dims;
        const trips = fromLoop.has(name) && typeof shape?.[0] === 'string' ? [shape[0], ...tensor.dims.slice(1)] : tensor.dims;
        expect(shape, `optimized shape of output ${i} "${name}"`).toEqual(trips);
        // An output folded to a constant checks the reference evaluator against ONNX's numbers.
        if (folded) {
          Array.from(folded.data as ArrayLike<number | bigint>).forEach((v, j) => {
            const want = tensor.data[j];
            if (typeof v === 'bigint' || typeof want === 'bigint') expect(v, `folded ${name}[${j}]`).toBe(want);
            else expect(v, `folded ${name}[${j}]`).toBeCloseTo(want, 4);
          });
        }
      });
    });
  });
}
