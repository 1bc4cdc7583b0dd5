// Each pass on a small graph: what it rewrites, what it must leave alone, and (for BN folding)
// that the numbers still agree.

import { describe, expect, it } from 'vitest';
import { tensorElements } from '../lib/ir/dtype';
import { foldBatchNorm } from '../lib/ir/passes/fold-batch-norm';
import { foldConstants } from '../lib/ir/passes/fold-constants';
import { foldConvBiasAdd } from '../lib/ir/passes/fold-conv-bias-add';
import { fuseActivation } from '../lib/ir/passes/fuse-activation';
import { fuseResidualAdd } from '../lib/ir/passes/fuse-residual-add';
import { mergeDuplicateNodes } from '../lib/ir/passes/merge-duplicate-nodes';
import { removeDeadNodes } from '../lib/ir/passes/remove-dead-nodes';
import { removeIdentity } from '../lib/ir/passes/remove-identity';
import { optimizeGraph } from '../lib/ir/optimize';
import { validateGraph } from '../lib/ir/validate-graph';
import type { ConstantTensor, Graph } from '../lib/ir/types';
import { float, floatTensor, graph, input, int, int64Tensor, ints, node } from './ir-build-graph';

const opTypes = (g: Graph) => g.nodes.map((n) => n.opType);

/** 1x1 conv (or Gemm with transB) on one pixel/row: out[m] = sum_c w[m,c] x[c] + b[m]. */
function linear(w: ConstantTensor, b: ConstantTensor | undefined, x: number[]): number[] {
  const [m, c] = [w.dims[0], w.data.length / w.dims[0]];
  return Array.from({ length: m }, (_, i) => x.reduce((acc, xv, j) => acc + (w.data[i * c + j] as number) * xv, b ? (b.data[i] as number) : 0));
}

describe('foldConstants', () => {
  it('collapses Shape -> Gather -> Unsqueeze -> Concat -> Reshape of a static tensor', () => {
    const g = graph({
      inputs: [input('x', [2, 3, 4])],
      outputs: ['y'],
      initializers: [int64Tensor('zero', [], [0]), int64Tensor('axes', [1], [0]), int64Tensor('rest', [1], [-1])],
      nodes: [
        node('Shape', ['x'], ['s']),
        node('Gather', ['s', 'zero'], ['n'], { axis: int(0) }),
        node('Unsqueeze', ['n', 'axes'], ['n1']),
        node('Concat', ['n1', 'rest'], ['target'], { axis: int(0) }),
        node('Reshape', ['x', 'target'], ['y']),
      ],
    });
    const folded = removeDeadNodes(foldConstants(g));
    expect(opTypes(folded)).toEqual(['Reshape']);
    expect(tensorElements(folded.initializers.get('target')!.data)).toEqual([2n, -1n]);
    expect([...folded.initializers.keys()]).toEqual(['target']);
  });

  it('folds integers known from a symbolic shape: a channel split computed from a tensor whose batch is symbolic', () => {
    // PyTorch's chunk(2, dim=1) on x [batch, 32, 8, 8]: split = Shape(x)[1] / 2, the Slices' bounds.
    const g = graph({
      inputs: [input('x', ['batch', 32, 8, 8])],
      outputs: ['lo', 'hi'],
      initializers: [int64Tensor('one', [], [1]), int64Tensor('two', [], [2]), int64Tensor('axes', [1], [0]), int64Tensor('start', [1], [0]), int64Tensor('dim', [1], [1])],
      nodes: [
        node('Shape', ['x'], ['s']),
        node('Gather', ['s', 'one'], ['c'], { axis: int(0) }),
        node('Div', ['c', 'two'], ['half']),
        node('Unsqueeze', ['half', 'axes'], ['half1']),
        node('Mul', ['half1', 'two'], ['end']),
        node('Slice', ['x', 'start', 'half1', 'dim'], ['lo']),
        node('Slice', ['x', 'half1', 'end', 'dim'], ['hi']),
      ],
    });
    const folded = removeDeadNodes(foldConstants(g));
    expect(opTypes(folded)).toEqual(['Slice', 'Slice']);
    expect(tensorElements(folded.initializers.get('half1')!.data)).toEqual([16n]);
    expect(tensorElements(folded.initializers.get('end')!.data)).toEqual([32n]);
    // The batch itself stays a run-time value: a Shape of it is not folded.
    const batch = removeDeadNodes(foldConstants(graph({
      inputs: [input('x', ['batch', 32])],
      outputs: ['n'],
      initializers: [int64Tensor('zero', [], [0])],
      nodes: [node('Shape', ['x'], ['s']), node('Gather', ['s', 'zero'], ['n'], { axis: int(0) })],
    })));
    expect(opTypes(batch)).toEqual(['Shape', 'Gather']);
  });

  it('turns Constant nodes into initializers and evaluates arithmetic on constants', () => {
    const g = graph({
      inputs: [input('x', [2])],
      outputs: ['y'],
      initializers: [floatTensor('a', [2], [1, 2])],
      nodes: [
        node('Constant', [], ['c'], { value: { type: 'tensor', value: floatTensor('c', [2], [10, 20]) } }),
        node('Mul', ['a', 'c'], ['ac']),
        node('Add', ['x', 'ac'], ['y']),
      ],
    });
    const folded = foldConstants(g);
    expect(opTypes(folded)).toEqual(['Add']);
    expect(tensorElements(folded.initializers.get('ac')!.data)).toEqual([10, 40]);
  });

  it('leaves Shape of a symbolic tensor alone', () => {
    const g = graph({ inputs: [input('x', ['N', 3])], outputs: [{ name: 's', dtype: 'int64' }], nodes: [node('Shape', ['x'], ['s'])] });
    expect(opTypes(foldConstants(g))).toEqual(['Shape']);
  });

  it('evaluates Transpose, Slice and Gather on constants', () => {
    const g = graph({
      inputs: [input('x', [2, 3])],
      outputs: ['y'],
      initializers: [floatTensor('w', [3, 2], [1, 2, 3, 4, 5, 6]), int64Tensor('s', [1], [1]), int64Tensor('e', [1], [3]), int64Tensor('ax', [1], [1]), int64Tensor('i', [1], [1])],
      nodes: [
        node('Transpose', ['w'], ['wt']),
        node('Slice', ['wt', 's', 'e', 'ax'], ['ws']),
        node('Gather', ['ws', 'i'], ['wg'], { axis: int(0) }),
        node('Add', ['x', 'wt'], ['y']),
      ],
    });
    const folded = foldConstants(g);
    expect(tensorElements(folded.initializers.get('wt')!.data)).toEqual([1, 3, 5, 2, 4, 6]);
    expect(tensorElements(folded.initializers.get('ws')!.data)).toEqual([3, 5, 4, 6]);
    expect(folded.initializers.get('wg')!.dims).toEqual([1, 2]);
    expect(tensorElements(folded.initializers.get('wg')!.data)).toEqual([4, 6]);
  });

  it('evaluates Concat on a middle axis, Slice with negative steps and Transpose of 3-D constants, element for element', () => {
    const a = floatTensor('a', [2, 3, 4]);
    const b = floatTensor('b', [2, 1, 4], [50, 51, 52, 53, 60, 61, 62, 63]);
    const at = (t: ConstantTensor, coords: number[]) => t.data[coords.reduce((acc, c, i) => acc * t.dims[i] + c, 0)];
    const g = graph({
      inputs: [input('x', [1])],
      outputs: ['y'],
      initializers: [
        a, b, int64Tensor('i', [2], [7, -8]), int64Tensor('j', [3], [1, 2, 3]),
        int64Tensor('starts', [2], [5, -1]), int64Tensor('ends', [2], [-100, 0]), int64Tensor('axes', [2], [1, 2]), int64Tensor('steps', [2], [-2, -2]),
      ],
      nodes: [
        node('Concat', ['a', 'b', 'a'], ['cat'], { axis: int(1) }),
        node('Slice', ['cat', 'starts', 'ends', 'axes', 'steps'], ['back']),
        node('Transpose', ['a'], ['rotated'], { perm: ints([1, 2, 0]) }),
        node('Transpose', ['a'], ['swapped'], { perm: ints([1, 0, 2]) }),
        node('Concat', ['i', 'j'], ['ij'], { axis: int(0) }),
        node('Add', ['x', 'x'], ['y']),
      ],
    });
    const folded = foldConstants(g);
    const result = (name: string) => folded.initializers.get(name)!;
    const expectElements = (name: string, dims: number[], element: (c: number[]) => unknown) => {
      const t = result(name);
      expect(t.dims).toEqual(dims);
      const want: unknown[] = [];
      const visit = (prefix: number[]): void => {
        if (prefix.length === dims.length) return void want.push(element(prefix));
        for (let k = 0; k < dims[prefix.length]; k++) visit([...prefix, k]);
      };
      visit([]);
      expect(tensorElements(t.data)).toEqual(want);
    };
    const cat = (c: number[]) => (c[1] < 3 ? at(a, c) : c[1] === 3 ? at(b, [c[0], 0, c[2]]) : at(a, [c[0], c[1] - 4, c[2]]));
    expectElements('cat', [2, 7, 4], cat);
    // Rows 5, 3, 1 of the 7, columns 3 and 1 of the 4.
    expectElements('back', [2, 3, 2], ([i, j, k]) => cat([i, 5 - 2 * j, 3 - 2 * k]));
    expectElements('rotated', [3, 4, 2], ([i, j, k]) => at(a, [k, i, j]));
    expectElements('swapped', [3, 2, 4], ([i, j, k]) => at(a, [j, i, k]));
    expect(tensorElements(result('ij').data)).toEqual([7n, -8n, 1n, 2n, 3n]);
  });
});

describe('foldBatchNorm', () => {
  const bnParams = [floatTensor('scale', [2], [2, 0.5]), floatTensor('bias', [2], [1, -1]), floatTensor('mean', [2], [0.5, 2]), floatTensor('var', [2], [4, 0.25])];
  const bn = (input: string, output: string) => node('BatchNormalization', [input, 'scale', 'bias', 'mean', 'var'], [output], { epsilon: float(0) });
  const reference = (x: number[], w: ConstantTensor, b: ConstantTensor) =>
    linear(w, b, x).map((v, c) => ((v - [0.5, 2][c]) / Math.sqrt([4, 0.25][c])) * [2, 0.5][c] + [1, -1][c]);

  it('into a Conv: same numbers, no BN left', () => {
    const w = floatTensor('w', [2, 3, 1, 1], [1, 2, 3, -1, 0, 1]);
    const b = floatTensor('b', [2], [0.1, 0.2]);
    const g = graph({ inputs: [input('x', [1, 3, 1, 1])], outputs: ['y'], initializers: [w, b, ...bnParams], nodes: [node('Conv', ['x', 'w', 'b'], ['c']), bn('c', 'y')] });
    const folded = removeDeadNodes(foldBatchNorm(g));
    validateGraph(folded);
    expect(opTypes(folded)).toEqual(['Conv']);
    const conv = folded.nodes[0];
    expect(conv.outputs).toEqual(['y']);
    const x = [0.5, -1, 2];
    const got = linear(folded.initializers.get(conv.inputs[1])!, folded.initializers.get(conv.inputs[2])!, x);
    reference(x, w, b).forEach((v, i) => expect(got[i]).toBeCloseTo(v, 5));
  });

  it('into a Gemm with transB and beta', () => {
    const w = floatTensor('w', [2, 3], [1, 2, 3, -1, 0, 1]);
    const c = floatTensor('c', [2], [0.05, 0.1]);
    const g = graph({ inputs: [input('x', [1, 3])], outputs: ['y'], initializers: [w, c, ...bnParams], nodes: [node('Gemm', ['x', 'w', 'c'], ['g'], { transB: int(1), beta: float(2) }), bn('g', 'y')] });
    const folded = foldBatchNorm(g);
    expect(opTypes(folded)).toEqual(['Gemm']);
    const gemm = folded.nodes[0];
    const x = [0.5, -1, 2];
    const got = linear(folded.initializers.get(gemm.inputs[1])!, folded.initializers.get(gemm.inputs[2])!, x);
    reference(x, w, floatTensor('b2', [2], [0.1, 0.2])).forEach((v, i) => expect(got[i]).toBeCloseTo(v, 5));
    expect(gemm.attributes.beta).toEqual({ type: 'float', value: 1 });
  });

  it('not when the conv output has another consumer', () => {
    const g = graph({
      inputs: [input('x', [1, 3, 1, 1])], outputs: ['y', 'c'],
      initializers: [floatTensor('w', [2, 3, 1, 1]), ...bnParams],
      nodes: [node('Conv', ['x', 'w'], ['c']), bn('c', 'y')],
    });
    expect(opTypes(foldBatchNorm(g))).toEqual(['Conv', 'BatchNormalization']);
  });
});

describe('foldConvBiasAdd', () => {
  const w = floatTensor('w', [2, 3, 1, 1], [1, 2, 3, -1, 0, 1]);
  const convAdd = (c: ConstantTensor, bias?: ConstantTensor, outputs: string[] = ['y']) =>
    graph({
      inputs: [input('x', [1, 3, 4, 5])], outputs,
      initializers: [w, c, ...(bias ? [bias] : [])],
      nodes: [node('Conv', ['x', 'w', ...(bias ? [bias.name] : [])], ['c']), node('Add', [c.name === 'k' ? 'c' : c.name, c.name === 'k' ? 'k' : 'c'], ['y'])],
    });

  it('a per-channel constant ([1, C, 1, 1], [C, 1, 1], either operand order) or a scalar becomes the bias', () => {
    for (const [c, want] of [
      [floatTensor('k', [1, 2, 1, 1], [0.5, -2]), [0.5, -2]],
      [floatTensor('first', [2, 1, 1], [0.25, 4]), [0.25, 4]],
      [floatTensor('k', [], [3]), [3, 3]],
    ] as [ConstantTensor, number[]][]) {
      const folded = foldConvBiasAdd(convAdd(c));
      validateGraph(folded);
      expect(opTypes(folded)).toEqual(['Conv']);
      const conv = folded.nodes[0];
      expect(conv.outputs).toEqual(['y']);
      expect(Array.from(folded.initializers.get(conv.inputs[2])!.data as Float32Array)).toEqual(want);
    }
  });

  it("adds to the Conv's own bias", () => {
    const folded = foldConvBiasAdd(convAdd(floatTensor('k', [1, 2, 1, 1], [0.5, -2]), floatTensor('b', [2], [1, 2])));
    expect(Array.from(folded.initializers.get(folded.nodes[0].inputs[2])!.data as Float32Array)).toEqual([1.5, 0]);
  });

  it('not a constant that varies along a spatial axis, one that widens the rank, or when the Conv output is read elsewhere', () => {
    expect(opTypes(foldConvBiasAdd(convAdd(floatTensor('k', [1, 1, 1, 5]))))).toEqual(['Conv', 'Add']);
    expect(opTypes(foldConvBiasAdd(convAdd(floatTensor('k', [1, 1, 2, 1, 1]))))).toEqual(['Conv', 'Add']);
    expect(opTypes(foldConvBiasAdd(convAdd(floatTensor('k', [2], [1, 2]))))).toEqual(['Conv', 'Add']); // broadcasts on W
    expect(opTypes(foldConvBiasAdd(convAdd(floatTensor('k', [1, 2, 1, 1]), undefined, ['y', 'c'])))).toEqual(['Conv', 'Add']);
  });
});

describe('fuseActivation', () => {
  const convGraph = (activation: ReturnType<typeof node>, extra: ConstantTensor[] = [], opset = 13) =>
    graph({ opset, inputs: [input('x', [1, 3, 4, 4])], outputs: ['y'], initializers: [floatTensor('w', [2, 3, 1, 1]), ...extra], nodes: [node('Conv', ['x', 'w'], ['c']), activation] });

  it('Relu into Conv', () => {
    const fused = fuseActivation(convGraph(node('Relu', ['c'], ['y'])));
    expect(opTypes(fused)).toEqual(['Conv']);
    expect(fused.nodes[0].attributes.activation).toEqual({ type: 'string', value: 'Relu' });
    expect(fused.nodes[0].outputs).toEqual(['y']);
  });

  it('Clip(0, 6) by inputs (opset 13) and by attributes (opset 6)', () => {
    const byInputs = fuseActivation(convGraph(node('Clip', ['c', 'lo', 'hi'], ['y']), [floatTensor('lo', [], [0]), floatTensor('hi', [], [6])]));
    expect(byInputs.nodes[0].attributes.activation_params).toEqual({ type: 'floats', value: [0, 6] });
    const byAttributes = fuseActivation(convGraph(node('Clip', ['c'], ['y'], { min: float(0), max: float(6) }), [], 6));
    expect(byAttributes.nodes[0].attributes.activation_params).toEqual({ type: 'floats', value: [0, 6] });
  });

  it('LeakyRelu into Gemm and MatMul, not into Add', () => {
    const g = graph({
      inputs: [input('x', [1, 3])], outputs: ['y', 'z'],
      initializers: [floatTensor('w', [3, 3])],
      nodes: [node('MatMul', ['x', 'w'], ['m']), node('LeakyRelu', ['m'], ['y'], { alpha: float(0.2) }), node('Add', ['x', 'x'], ['a']), node('Relu', ['a'], ['z'])],
    });
    const fused = fuseActivation(g);
    expect(opTypes(fused)).toEqual(['MatMul', 'Add', 'Relu']);
    expect(fused.nodes[0].attributes.activation_params).toEqual({ type: 'floats', value: [0.2] });
  });

  it('not when Clip bounds are computed at run time', () => {
    const g = graph({ inputs: [input('x', [1, 3, 4, 4]), input('hi', [])], outputs: ['y'], initializers: [floatTensor('w', [2, 3, 1, 1])], nodes: [node('Conv', ['x', 'w'], ['c']), node('Clip', ['c', '', 'hi'], ['y'])] });
    expect(opTypes(fuseActivation(g))).toEqual(['Conv', 'Clip']);
  });
});

describe('fuseResidualAdd', () => {
  const block = (shortcutShape: number[]) =>
    graph({
      inputs: [input('x', [1, 2, 4, 4]), input('skip', shortcutShape)],
      outputs: ['y'],
      initializers: [floatTensor('w', [2, 2, 3, 3]), floatTensor('b', [2])],
      nodes: [node('Conv', ['x', 'w', 'b'], ['c'], { pads: ints([1, 1, 1, 1]) }), node('Add', ['skip', 'c'], ['s']), node('Relu', ['s'], ['y'])],
    });

  it('Add(conv, other) then Relu becomes one Conv with residual and activation', () => {
    const fused = fuseActivation(fuseResidualAdd(block([1, 2, 4, 4])));
    validateGraph(fused);
    expect(opTypes(fused)).toEqual(['Conv']);
    const conv = fused.nodes[0];
    expect(conv.inputs).toEqual(['x', 'w', 'b', 'skip']);
    expect(conv.attributes.fused_residual).toEqual({ type: 'int', value: 1 });
    expect(conv.attributes.activation).toEqual({ type: 'string', value: 'Relu' });
    expect(conv.outputs).toEqual(['y']);
  });

  it('not when the Add broadcasts', () => {
    expect(opTypes(fuseResidualAdd(block([1, 2, 1, 1])))).toEqual(['Conv', 'Add', 'Relu']);
  });

  it('places the fused conv where the Add was, after the producer of the other operand', () => {
    const g = graph({
      inputs: [input('x', [1, 2, 4, 4])],
      outputs: ['y'],
      initializers: [floatTensor('w', [2, 2, 1, 1])],
      nodes: [node('Conv', ['x', 'w'], ['c1'], {}, 'first'), node('Sigmoid', ['x'], ['other']), node('Add', ['c1', 'other'], ['y'])],
    });
    const fused = fuseResidualAdd(g);
    validateGraph(fused);
    expect(opTypes(fused)).toEqual(['Sigmoid', 'Conv']);
  });
});

describe('removeIdentity and removeDeadNodes', () => {
  it('drops Identity and inference Dropout, rewiring consumers', () => {
    const g = graph({
      opset: 13,
      inputs: [input('x', [2])], outputs: ['y'],
      nodes: [node('Identity', ['x'], ['i']), node('Dropout', ['i'], ['d']), node('Relu', ['d'], ['y'])],
    });
    const cleaned = removeIdentity(g);
    expect(opTypes(cleaned)).toEqual(['Relu']);
    expect(cleaned.nodes[0].inputs).toEqual(['x']);
  });

  it('keeps graph output names by renaming the producer', () => {
    const g = graph({ inputs: [input('x', [2])], outputs: ['y'], nodes: [node('Relu', ['x'], ['r']), node('Identity', ['r'], ['y'])] });
    const cleaned = removeIdentity(g);
    expect(cleaned.nodes.map((n) => [n.opType, n.outputs])).toEqual([['Relu', ['y']]]);
  });

  it('keeps a Dropout whose mask is used', () => {
    const g = graph({ inputs: [input('x', [2])], outputs: ['y', { name: 'mask', dtype: 'bool' }], nodes: [node('Dropout', ['x'], ['y', 'mask'])] });
    expect(opTypes(removeIdentity(g))).toEqual(['Dropout']);
  });

  it('drops nodes and initializers no output depends on', () => {
    const g = graph({
      inputs: [input('x', [2])], outputs: ['y'], initializers: [floatTensor('unused', [2])],
      nodes: [node('Relu', ['x'], ['y']), node('Sigmoid', ['x'], ['dead'])],
    });
    const cleaned = removeDeadNodes(g);
    expect(opTypes(cleaned)).toEqual(['Relu']);
    expect(cleaned.initializers.size).toBe(0);
  });
});

describe('optimizeGraph', () => {
  it('Conv -> BN -> Add(skip) -> Relu with an Identity becomes one fused Conv, fully typed', () => {
    const g = graph({
      inputs: [input('x', ['N', 2, 4, 4])],
      outputs: [{ name: 'y', dtype: 'float32', shape: ['N', 2, 4, 4] }],
      initializers: [floatTensor('w', [2, 2, 1, 1]), floatTensor('scale', [2], [1, 2]), floatTensor('bias', [2], [0, 1]), floatTensor('mean', [2], [0, 0]), floatTensor('var', [2], [1, 1])],
      nodes: [
        node('Identity', ['x'], ['xi']),
        node('Conv', ['xi', 'w'], ['c']),
        node('BatchNormalization', ['c', 'scale', 'bias', 'mean', 'var'], ['bn']),
        node('Add', ['bn', 'x'], ['s']),
        node('Relu', ['s'], ['y']),
      ],
    });
    const optimized = optimizeGraph(g);
    expect(opTypes(optimized)).toEqual(['Conv']);
    expect(optimized.nodes[0].inputs).toEqual(['x', 'w_bn', 'Conv:c_bn_bias', 'x']);
    expect(optimized.valueInfo.get('y')).toEqual({ dtype: 'float32', shape: ['N', 2, 4, 4] });
    expect([...optimized.initializers.keys()].sort()).toEqual(['Conv:c_bn_bias', 'w_bn']);
    expect(g.nodes).toHaveLength(5); // the input graph is untouched
  });

  it('BAD CALL - a misspelled option', () => {
    const g = graph({ inputs: [input('x', [1])], outputs: ['x'], nodes: [] });
    expect(() => optimizeGraph(g, { foldConstant: false } as never)).toThrow(/Expected one of foldConstants, .* but received "foldConstant"/);
  });
});

describe('mergeDuplicateNodes', () => {
  it('merges a node repeating an earlier one (op, inputs, attributes), chains of them, and renames the readers', () => {
    const g = graph({
      inputs: [input('x', [2, 8])],
      outputs: ['y'],
      nodes: [
        node('DynamicQuantizeLinear', ['x'], ['q1', 's1', 'z1']),
        node('DynamicQuantizeLinear', ['x'], ['q2', 's2', 'z2']),
        node('Cast', ['q1'], ['f1'], { to: int(1) }),
        node('Cast', ['q2'], ['f2'], { to: int(1) }), // repeats the first Cast once q2 is q1
        node('Cast', ['q2'], ['i2'], { to: int(6) }), // another type: kept
        node('Mul', ['f2', 's2'], ['m']),
        node('Add', ['f1', 'm'], ['y']),
      ],
    });
    const merged = mergeDuplicateNodes(g);
    validateGraph(merged);
    expect(opTypes(merged)).toEqual(['DynamicQuantizeLinear', 'Cast', 'Cast', 'Mul', 'Add']);
    expect(merged.nodes[3].inputs).toEqual(['f1', 's1']);
    expect(merged.nodes[2].inputs).toEqual(['q1']);
  });

  it('keeps a repeat that writes a graph output, or one whose optional output the first left out, or with other attributes', () => {
    const g = graph({
      inputs: [input('x', [4])],
      outputs: ['a', 'b', 'mask2', 'e'],
      nodes: [
        node('Relu', ['x'], ['a']),
        node('Relu', ['x'], ['b']),
        node('Dropout', ['x'], ['d1', '']),
        node('Dropout', ['x'], ['d2', 'mask2']),
        node('LeakyRelu', ['x'], ['e'], { alpha: float(0.1) }),
        node('LeakyRelu', ['x'], ['f'], { alpha: float(0.2) }),
      ],
    });
    expect(mergeDuplicateNodes(g)).toBe(g);
  });

  it('runs in optimizeGraph, unless mergeDuplicates is false', () => {
    const g = graph({
      inputs: [input('x', [2, 8])],
      outputs: ['y'],
      initializers: [],
      nodes: [node('Relu', ['x'], ['r1']), node('Relu', ['x'], ['r2']), node('Add', ['r1', 'r2'], ['y'])],
    });
    expect(opTypes(optimizeGraph(g))).toEqual(['Relu', 'Add']);
    expect(opTypes(optimizeGraph(g, { mergeDuplicates: false }))).toEqual(['Relu', 'Relu', 'Add']);
  });
});
