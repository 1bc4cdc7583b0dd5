// Topological sort and graph validation on small graphs.

import { describe, expect, it } from 'vitest';
import { topologicalSort } from '../lib/ir/topo-sort';
import { validateGraph } from '../lib/ir/validate-graph';
import { graph, input, node } from './ir-build-graph';

describe('topologicalSort', () => {
  it('orders producers before consumers, otherwise lowest original index first', () => {
    const nodes = [node('Relu', ['b'], ['c'], {}, 'third'), node('Relu', ['x'], ['a'], {}, 'first'), node('Relu', ['a'], ['b'], {}, 'second'), node('Relu', ['x'], ['d'], {}, 'free')];
    expect(topologicalSort(nodes, new Set(['x'])).map((n) => n.name)).toEqual(['first', 'second', 'third', 'free']);
  });

  it('EXPECTED FAILURE - a cycle names its nodes', () => {
    const nodes = [node('Add', ['x', 'b'], ['a'], {}, 'p'), node('Relu', ['a'], ['b'], {}, 'q')];
    expect(() => topologicalSort(nodes, new Set(['x']))).toThrow(expect.objectContaining({ code: 'ERR_MODEL_FORMAT', message: 'The graph has a cycle through nodes "p", "q"' }));
  });

  it('EXPECTED FAILURE - a self loop', () => {
    expect(() => topologicalSort([node('Relu', ['a'], ['a'], {}, 'loop')], new Set())).toThrow(/cycle through nodes "loop"/);
  });

  it('EXPECTED FAILURE - overwriting a graph input', () => {
    expect(() => topologicalSort([node('Relu', ['x'], ['x'], {}, 'w')], new Set(['x']))).toThrow(/writes tensor "x", which is already a graph input/);
  });
});

describe('validateGraph', () => {
  it('accepts a sorted graph and rejects an unsorted one', () => {
    const sorted = graph({ inputs: [input('x', [1])], outputs: ['b'], nodes: [node('Relu', ['x'], ['a']), node('Relu', ['a'], ['b'])] });
    expect(() => validateGraph(sorted)).not.toThrow();
    expect(() => validateGraph({ ...sorted, nodes: [...sorted.nodes].reverse() })).toThrow(/not in topological order/);
  });
});
