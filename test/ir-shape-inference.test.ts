// Shape inference on small graphs: the symbolic batch dim through the classifier ops, and the
// formulas whose corners the conformance models may not reach.

import { describe, expect, it } from 'vitest';
import { inferShapes } from '../lib/ir/infer-shapes';
import { dimProduct, divideDims, multiplyDims } from '../lib/ir/symbolic-dims';
import { graph, input, int, int64Tensor, ints, floatTensor, node, str } from './ir-build-graph';

function shapeOf(g: ReturnType<typeof graph>, name: string) {
  return inferShapes(g).valueInfo.get(name)?.shape;
}

describe('symbolic dims', () => {
  it('multiply and divide as monomials', () => {
    expect(multiplyDims('N', 512)).toBe('512*N');
    expect(dimProduct(['N', 3, 'S', 2])).toBe('6*N*S');
    expect(divideDims('512*N', 512)).toBe('N');
    expect(divideDims('6*N*S', '2*S')).toBe('3*N');
    expect(divideDims('N', 'M')).toBeUndefined();
  });
});

describe('a CNN classifier with batch N', () => {
  const g = graph({
    inputs: [input('x', ['N', 3, 32, 32])],
    outputs: ['probs'],
    initializers: [floatTensor('w1', [8, 3, 3, 3]), floatTensor('b1', [8]), floatTensor('fc_w', [10, 8 * 16 * 16]), floatTensor('fc_b', [10])],
    nodes: [
      node('Conv', ['x', 'w1', 'b1'], ['c1'], { pads: ints([1, 1, 1, 1]) }),
      node('Relu', ['c1'], ['r1']),
      node('MaxPool', ['r1'], ['p1'], { kernel_shape: ints([2, 2]), strides: ints([2, 2]) }),
      node('Shape', ['p1'], ['p1_shape']),
      node('Gather', ['p1_shape', 'zero'], ['batch'], { axis: int(0) }),
      node('Unsqueeze', ['batch', 'axes0'], ['batch_1d']),
      node('Concat', ['batch_1d', 'minus_one'], ['target'], { axis: int(0) }),
      node('Reshape', ['p1', 'target'], ['flat']),
      node('Gemm', ['flat', 'fc_w', 'fc_b'], ['logits'], { transB: int(1) }),
      node('Softmax', ['logits'], ['probs']),
    ],
  });
  const withShapeConstants = {
    ...g,
    initializers: new Map([
      ...g.initializers,
      ['zero', int64Tensor('zero', [], [0])],
      ['axes0', int64Tensor('axes0', [1], [0])],
      ['minus_one', int64Tensor('minus_one', [1], [-1])],
    ]),
  };

  it('keeps N through Conv, Pool, the Shape->Gather->Concat->Reshape chain and Gemm', () => {
    const inferred = inferShapes(withShapeConstants);
    expect(inferred.valueInfo.get('c1')?.shape).toEqual(['N', 8, 32, 32]);
    expect(inferred.valueInfo.get('p1')?.shape).toEqual(['N', 8, 16, 16]);
    expect(inferred.valueInfo.get('flat')?.shape).toEqual(['N', 2048]);
    expect(inferred.valueInfo.get('probs')?.shape).toEqual(['N', 10]);
    expect(inferred.valueInfo.get('p1_shape')).toEqual({ dtype: 'int64', shape: [4] });
  });

  it('Flatten of [N,C,H,W] at axis 1 keeps N; at axis 2 multiplies it in', () => {
    const g2 = graph({ inputs: [input('x', ['N', 8, 4, 4])], outputs: ['a', 'b'], nodes: [node('Flatten', ['x'], ['a']), node('Flatten', ['x'], ['b'], { axis: int(2) })] });
    expect(shapeOf(g2, 'a')).toEqual(['N', 128]);
    expect(shapeOf(g2, 'b')).toEqual(['8*N', 16]);
  });
});

describe('conv and pool formulas', () => {
  const conv = (x: (number | string)[], w: number[], attributes = {}) =>
    shapeOf(graph({ inputs: [input('x', x)], outputs: ['y'], initializers: [floatTensor('w', w)], nodes: [node('Conv', ['x', 'w'], ['y'], attributes)] }), 'y');

  it('pads, strides, dilations, group', () => {
    expect(conv([1, 4, 10, 10], [6, 2, 3, 3], { group: int(2), strides: ints([2, 2]), pads: ints([1, 1, 1, 1]) })).toEqual([1, 6, 5, 5]);
    expect(conv([1, 1, 10, 10], [1, 1, 3, 3], { dilations: ints([2, 2]) })).toEqual([1, 1, 6, 6]);
  });

  it('auto_pad SAME_UPPER, SAME_LOWER, VALID', () => {
    expect(conv([1, 1, 7, 5], [1, 1, 3, 3], { auto_pad: str('SAME_UPPER'), strides: ints([2, 2]) })).toEqual([1, 1, 4, 3]);
    expect(conv([1, 1, 7, 5], [1, 1, 3, 3], { auto_pad: str('SAME_LOWER') })).toEqual([1, 1, 7, 5]);
    expect(conv([1, 1, 7, 5], [1, 1, 3, 3], { auto_pad: str('VALID'), strides: ints([2, 2]) })).toEqual([1, 1, 3, 2]);
  });

  it('EXPECTED FAILURE - channel mismatch names the node', () => {
    expect(() => conv([1, 3, 8, 8], [4, 2, 3, 3])).toThrow(/Node "Conv:y" \(Conv\): input has 3 channels/);
  });

  it('ConvTranspose output size with output_padding', () => {
    const g = graph({
      inputs: [input('x', [1, 2, 3, 3])],
      outputs: ['y'],
      initializers: [floatTensor('w', [2, 3, 3, 3])],
      nodes: [node('ConvTranspose', ['x', 'w'], ['y'], { strides: ints([3, 2]), output_padding: ints([1, 1]) })],
    });
    expect(shapeOf(g, 'y')).toEqual([1, 3, 10, 8]);
  });

  it('AveragePool ceil_mode drops a window that would start in the end padding', () => {
    const pool = (size: number, attributes = {}) =>
      shapeOf(graph({ inputs: [input('x', [1, 1, size, size])], outputs: ['y'], nodes: [node('AveragePool', ['x'], ['y'], { kernel_shape: ints([3, 3]), strides: ints([2, 2]), ...attributes })] }), 'y');
    expect(pool(6)).toEqual([1, 1, 2, 2]);
    expect(pool(6, { ceil_mode: int(1) })).toEqual([1, 1, 3, 3]);
    expect(pool(5, { ceil_mode: int(1), pads: ints([1, 1, 1, 1]) })).toEqual([1, 1, 3, 3]);
  });
});

describe('opset-dependent forms', () => {
  it('Squeeze/Unsqueeze axes as attribute before 13, as input from 13', () => {
    const old = graph({ opset: 11, inputs: [input('x', ['N', 1, 5])], outputs: ['y'], nodes: [node('Squeeze', ['x'], ['s'], { axes: ints([1]) }), node('Unsqueeze', ['s'], ['y'], { axes: ints([0, -1]) })] });
    expect(shapeOf(old, 'y')).toEqual([1, 'N', 5, 1]);
    const current = graph({ inputs: [input('x', ['N', 1, 5])], outputs: ['y'], initializers: [int64Tensor('a', [1], [1])], nodes: [node('Squeeze', ['x', 'a'], ['y'])] });
    expect(shapeOf(current, 'y')).toEqual(['N', 5]);
  });

  it('Clip by attributes (opset 6) and by inputs (opset 13) keeps the shape', () => {
    const g = graph({ opset: 6, inputs: [input('x', ['N', 4])], outputs: ['y'], nodes: [node('Clip', ['x'], ['y'], { min: { type: 'float', value: 0 }, max: { type: 'float', value: 6 } })] });
    expect(shapeOf(g, 'y')).toEqual(['N', 4]);
  });

  it('Split by attribute (11), by input (13), by num_outputs (18, uneven)', () => {
    const split = (opset: number, extra: { inputs?: string[]; attributes?: Record<string, ReturnType<typeof ints>> }, outputs: string[]) =>
      inferShapes(graph({ opset, inputs: [input('x', [2, 7])], outputs, initializers: [int64Tensor('sizes', [2], [3, 4])], nodes: [node('Split', ['x', ...(extra.inputs ?? [])], outputs, { axis: int(1), ...extra.attributes })] }));
    expect(split(11, { attributes: { split: ints([3, 4]) } }, ['a', 'b']).valueInfo.get('b')?.shape).toEqual([2, 4]);
    expect(split(13, { inputs: ['sizes'] }, ['a', 'b']).valueInfo.get('a')?.shape).toEqual([2, 3]);
    const uneven = split(18, { attributes: { num_outputs: int(3) } }, ['a', 'b', 'c']);
    expect(['a', 'b', 'c'].map((o) => uneven.valueInfo.get(o)?.shape)).toEqual([[2, 3], [2, 3], [2, 1]]);
  });

  it('Slice by attributes (opset 9) and by inputs with negative steps', () => {
    const old = graph({ opset: 9, inputs: [input('x', ['N', 10])], outputs: ['y'], nodes: [node('Slice', ['x'], ['y'], { starts: ints([2]), ends: ints([1e18]), axes: ints([1]) })] });
    expect(shapeOf(old, 'y')).toEqual(['N', 8]);
    const g = graph({
      inputs: [input('x', ['N', 10])], outputs: ['y'],
      initializers: [int64Tensor('s', [1], [-1]), int64Tensor('e', [1], [-1e15]), int64Tensor('a', [1], [1]), int64Tensor('st', [1], [-3])],
      nodes: [node('Slice', ['x', 's', 'e', 'a', 'st'], ['y'])],
    });
    expect(shapeOf(g, 'y')).toEqual(['N', 4]);
  });

  it('Pad by attribute (opset 2) and by input (opset 11)', () => {
    expect(shapeOf(graph({ opset: 2, inputs: [input('x', ['N', 3])], outputs: ['y'], nodes: [node('Pad', ['x'], ['y'], { pads: ints([0, 1, 0, 2]) })] }), 'y')).toEqual(['N', 6]);
    expect(shapeOf(graph({ opset: 11, inputs: [input('x', ['N', 3])], outputs: ['y'], initializers: [int64Tensor('p', [4], [0, 1, 0, -1])], nodes: [node('Pad', ['x', 'p'], ['y'])] }), 'y')).toEqual(['N', 3]);
  });

  it('Reshape with 0 (copy), allowzero, and a rank-only unknown target', () => {
    const reshape = (shape: number[], attributes = {}) =>
      shapeOf(graph({ opset: 14, inputs: [input('x', ['N', 4, 6])], outputs: ['y'], initializers: [int64Tensor('t', [shape.length], shape)], nodes: [node('Reshape', ['x', 't'], ['y'], attributes)] }), 'y');
    expect(reshape([0, -1])).toEqual(['N', 24]);
    expect(reshape([-1, 12])).toEqual(['2*N', 12]);
    expect(() => shapeOf(graph({ inputs: [input('x', [2, 3])], outputs: ['y'], initializers: [int64Tensor('t', [1], [7])], nodes: [node('Reshape', ['x', 't'], ['y'])] }), 'y')).toThrow(/cannot reshape \[2,3\] \(6 elements\) into \[7\]/);
  });

  it('MatMul batched with broadcast and 1-D operands', () => {
    const mm = (a: (number | string)[], b: (number | string)[]) =>
      shapeOf(graph({ inputs: [input('a', a), input('b', b)], outputs: ['y'], nodes: [node('MatMul', ['a', 'b'], ['y'])] }), 'y');
    expect(mm(['N', 1, 4, 5], [3, 5, 6])).toEqual(['N', 3, 4, 6]);
    expect(mm([5], [2, 5, 6])).toEqual([2, 6]);
    expect(mm(['N', 4, 5], [5])).toEqual(['N', 4]);
  });

  it('EXPECTED FAILURE - incompatible broadcast names both shapes', () => {
    const g = graph({ inputs: [input('a', [2, 3]), input('b', [4])], outputs: ['y'], nodes: [node('Add', ['a', 'b'], ['y'])] });
    expect(() => inferShapes(g)).toThrow(expect.objectContaining({ code: 'ERR_SHAPE_MISMATCH', message: expect.stringContaining('cannot broadcast shapes [2,3] and [4]') }));
  });

  it('quantized ops take their output type from the zero point', () => {
    const g = graph({
      inputs: [input('x', ['N', 4])], outputs: ['q', 'd'],
      initializers: [floatTensor('s', [], [0.1]), { name: 'z', dtype: 'int8', dims: [], data: Int8Array.of(0) }],
      nodes: [node('QuantizeLinear', ['x', 's', 'z'], ['q']), node('DequantizeLinear', ['q', 's', 'z'], ['d'])],
    });
    const inferred = inferShapes(g);
    expect(inferred.valueInfo.get('q')).toEqual({ dtype: 'int8', shape: ['N', 4] });
    expect(inferred.valueInfo.get('d')).toEqual({ dtype: 'float32', shape: ['N', 4] });
  });
});
