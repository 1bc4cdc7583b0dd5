// Shape inference of subgraphs, once per subgraph and bound types (lib/ir/shapes/subgraph-cache.ts):
// loading a model with nested control flow infers no subgraph twice on the same types, what it
// infers is what inference without the cache gives (shapes and errors), and a subgraph a pass
// rewrites is inferred anew.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { inferShapes, optimizeGraph } from '../lib/ir';
import * as shapeInference from '../lib/ir/infer-shapes';
import type { Graph, Node } from '../lib/ir/types';
import { loadOnnxModel } from '../lib/onnx';
import { INT64, encodeModel, graphAttr, valueInfo, type ModelSpec } from './onnx-build-model';
import { anyShape } from './ort-compare';

const BOOL = 9;
const FIXTURES = join(__dirname, 'fixtures');
const EXT = join(__dirname, '..', 'build', 'ext');

/**
 * Three levels: an If whose then branch runs a Loop whose body holds an If, reading x from the
 * top; x's batch is symbolic, so the bound types carry a symbol down.
 */
const nested: ModelSpec = {
  nodes: [{
    op: 'If', inputs: ['c1'], outputs: ['y'], name: 'outer',
    attributes: [
      graphAttr('then_branch', {
        nodes: [{
          op: 'Loop', inputs: ['M', '', 'x'], outputs: ['acc'], name: 'loop',
          attributes: [graphAttr('body', {
            inputs: [valueInfo('i', [], INT64), valueInfo('c_in', [], BOOL), valueInfo('a', ['N', 4])],
            nodes: [
              {
                op: 'If', inputs: ['c2'], outputs: ['t'], name: 'inner',
                attributes: [
                  graphAttr('then_branch', { nodes: [{ op: 'Relu', inputs: ['a'], outputs: ['r'] }], outputs: [anyShape('r')] }),
                  graphAttr('else_branch', { nodes: [{ op: 'Neg', inputs: ['x'], outputs: ['n'] }], outputs: [anyShape('n')] }),
                ],
              },
              { op: 'Add', inputs: ['t', 'x'], outputs: ['a_out'] },
              { op: 'Identity', inputs: ['c_in'], outputs: ['c_out'] },
            ],
            outputs: [anyShape('c_out', BOOL), anyShape('a_out')],
          })],
        }],
        outputs: [anyShape('acc')],
      }),
      graphAttr('else_branch', { nodes: [{ op: 'Neg', inputs: ['x'], outputs: ['nx'] }], outputs: [anyShape('nx')] }),
    ],
  }],
  inputs: [valueInfo('c1', [], BOOL), valueInfo('c2', [], BOOL), valueInfo('x', ['N', 4])],
  outputs: [anyShape('y')],
  initializers: [{ name: 'M', dataType: INT64, dims: [], int64Data: [3] }],
};

/** An If on x [2, 3] with one op in each branch; Squeeze(x, [0]) cannot run on those shapes. */
function twoBranches(thenOp: string, elseOp: string): ModelSpec {
  const branch = (name: string, op: string) => graphAttr(name, {
    nodes: [{ op, inputs: op.endsWith('queeze') ? ['x', 'axes'] : ['x'], outputs: [`${name}_out`] }],
    outputs: [anyShape(`${name}_out`)],
  });
  return {
    nodes: [{ op: 'If', inputs: ['c'], outputs: ['y'], name: 'choose', attributes: [branch('then_branch', thenOp), branch('else_branch', elseOp)] }],
    inputs: [valueInfo('c', [], BOOL), valueInfo('x', [2, 3])],
    outputs: [anyShape('y')],
    initializers: [{ name: 'axes', dataType: INT64, dims: [1], int64Data: [0] }],
  };
}

/** How many of these inferences were given a graph (every field the same object) and input types given before. */
function repeatedInferences(graphs: readonly Graph[]): number {
  const ids = new Map<object, number>();
  const id = (o: object) => (ids.has(o) ? ids.get(o) : ids.set(o, ids.size).get(o));
  const keys = graphs.map((g) => `${[g.nodes, g.initializers, g.valueInfo, g.outputs, g.opsets].map(id).join(',')} ${JSON.stringify(g.inputs)}`);
  return keys.length - new Set(keys).size;
}

/** Fresh copies of optimizeGraph and of the module it infers shapes with, whose subgraph inference keeps nothing. */
async function uncachedModules() {
  vi.resetModules();
  vi.doMock('../lib/ir/shapes/subgraph-cache', () => ({ inferOnce: (_sub: Graph, _types: unknown, infer: () => Graph) => infer() }));
  try {
    return { optimizeGraph: (await import('../lib/ir/optimize')).optimizeGraph, shapeInference: await import('../lib/ir/infer-shapes') };
  } finally {
    vi.doUnmock('../lib/ir/shapes/subgraph-cache');
  }
}

/** The graphs given to inferShapes (the top level, then each subgraph bound to types) while optimizing the model. */
function inferencesWhileOptimizing(optimize: typeof optimizeGraph, module: typeof shapeInference, bytes: Uint8Array): Graph[] {
  const spy = vi.spyOn(module, 'inferShapes');
  try {
    optimize(loadOnnxModel(bytes));
    return spy.mock.calls.map(([g]) => g);
  } finally {
    spy.mockRestore();
  }
}

/** What optimizeGraph gives for the model: its graph, or its error's code and message. */
function outcome(optimize: typeof optimizeGraph, bytes: Uint8Array): Graph | { code: unknown; message: string } {
  try {
    return optimize(loadOnnxModel(bytes));
  } catch (error) {
    return { code: (error as { code?: unknown }).code, message: (error as Error).message };
  }
}

describe('subgraph shape inference, once per bound types', () => {
  it('loading a model with nested control flow infers no subgraph twice on the same types', async () => {
    expect(optimizeGraph(loadOnnxModel(encodeModel(nested))).valueInfo.get('y')?.shape).toEqual(['N', 4]);
    const cached = inferencesWhileOptimizing(optimizeGraph, shapeInference, encodeModel(nested));
    expect(repeatedInferences(cached)).toBe(0);
    // Without the cache, the inner levels are inferred again for each inference of the outer ones.
    const uncached = await uncachedModules();
    const all = inferencesWhileOptimizing(uncached.optimizeGraph, uncached.shapeInference, encodeModel(nested));
    expect(repeatedInferences(all)).toBeGreaterThan(0);
    expect(cached.length).toBeLessThan(all.length);
  });

  it('gives the shapes and errors inference without the cache gives', async () => {
    const uncached = (await uncachedModules()).optimizeGraph;
    const models: [string, Uint8Array][] = [
      ['nested', encodeModel(nested)],
      ['a branch that cannot run on the bound shapes', encodeModel(twoBranches('Squeeze', 'Unsqueeze'))],
      ['no branch that can run on the bound shapes', encodeModel(twoBranches('Squeeze', 'Squeeze'))],
      ...readdirSync(FIXTURES).filter((f) => f.startsWith('torch-') && f.endsWith('.onnx')).map((f): [string, Uint8Array] => [f, readFileSync(join(FIXTURES, f))]),
      ...['silero_vad_v5.onnx', 'silero_vad_legacy.onnx'].filter((f) => existsSync(join(EXT, f))).map((f): [string, Uint8Array] => [f, readFileSync(join(EXT, f))]),
    ];
    for (const [name, bytes] of models) expect(outcome(optimizeGraph, bytes), name).toStrictEqual(outcome(uncached, bytes));
    expect(outcome(optimizeGraph, encodeModel(twoBranches('Squeeze', 'Squeeze')))).toMatchObject({ code: 'ERR_SHAPE_MISMATCH' });
  });

  it('infers a subgraph once for the same types, and a rewritten subgraph anew', () => {
    const loaded = loadOnnxModel(encodeModel(twoBranches('Neg', 'Relu')));
    const elseOf = (g: Graph) => g.nodes[0].attributes.else_branch.value as Graph;
    const first = inferShapes(loaded);
    expect(elseOf(first).outputs[0].shape).toEqual([2, 3]);
    // The same graph again: its typed branches are the ones the first inference made.
    expect(elseOf(inferShapes(loaded))).toBe(elseOf(first));
    // A pass that changes a branch makes a new Graph, inferred on its own nodes.
    const node = loaded.nodes[0];
    const branch = elseOf(loaded);
    const transposed: Graph = { ...branch, nodes: [{ ...branch.nodes[0], opType: 'Transpose' }] };
    const rewritten: Node = { ...node, attributes: { ...node.attributes, else_branch: { type: 'graph', value: transposed } } };
    const typed = inferShapes({ ...loaded, nodes: [rewritten] });
    expect(elseOf(typed).outputs[0].shape).toEqual([3, 2]);
    expect(typed.valueInfo.get('y')?.shape).not.toEqual([2, 3]);
  });
});
