// The ONNX decoder on real conformance models and on hand-built ones: opsets, value types,
// attributes of every kind, initializers of every element type, Constant nodes, external data.

import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { describe, expect, it } from 'vitest';
import { tensorElements } from '../lib/ir/dtype';
import { TernionError } from '../lib/errors';
import { loadOnnxModel, decodeTensorProto } from '../lib/onnx';
import { encodeModel, encodeTensor, FLOAT16, INT64, tinyModelSpec, valueInfo } from './onnx-build-model';
import type { ModelSpec, TensorSpec } from './onnx-build-model';
import { nodeTestDir, readModelBytes, readTestTensors, requireTestdataRoot } from './onnx-testdata';

function loadNodeTest(name: string) {
  const dir = nodeTestDir(name);
  return { dir, graph: loadOnnxModel(readModelBytes(dir), { basePath: dir }) };
}

function littleEndian(array: ArrayBufferView): Uint8Array {
  return new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
}

/** Load a one-initializer model (y = Identity(w)) and return the decoded initializer. */
function loadInitializer(spec: TensorSpec, basePath?: string) {
  const elemType = spec.dataType ?? 1;
  const model: ModelSpec = {
    nodes: [{ op: 'Identity', inputs: [spec.name], outputs: ['y'] }],
    inputs: [],
    outputs: [valueInfo('y', spec.dims, elemType)],
    initializers: [spec],
  };
  const graph = loadOnnxModel(encodeModel(model), basePath === undefined ? {} : { basePath });
  return graph.initializers.get(spec.name)!;
}

describe('real ONNX node tests', () => {
  it('decodes Conv with strides and padding: opset, inputs, attributes, declared output', () => {
    const { dir, graph } = loadNodeTest('test_conv_with_strides_padding');
    expect(graph.opsets['']).toBeGreaterThanOrEqual(1);
    expect(graph.inputs.map((i) => [i.name, i.dtype, i.shape])).toEqual([
      ['x', 'float32', [1, 1, 7, 5]],
      ['W', 'float32', [1, 1, 3, 3]],
    ]);
    expect(graph.nodes).toHaveLength(1);
    const conv = graph.nodes[0];
    expect(conv.opType).toBe('Conv');
    expect(conv.attributes.kernel_shape).toEqual({ type: 'ints', value: [3, 3] });
    expect(conv.attributes.pads).toEqual({ type: 'ints', value: [1, 1, 1, 1] });
    expect(conv.attributes.strides).toEqual({ type: 'ints', value: [2, 2] });
    expect(graph.outputs[0].shape).toEqual(readTestTensors(dir, 'output')[0].dims);
  });

  it('decodes float, int and string attributes (LeakyRelu alpha, Flatten axis, auto_pad)', () => {
    expect(loadNodeTest('test_leakyrelu').graph.nodes[0].attributes.alpha?.type).toBe('float');
    expect(loadNodeTest('test_leakyrelu').graph.nodes[0].attributes.alpha?.value).toBeCloseTo(0.1);
    expect(loadNodeTest('test_flatten_axis2').graph.nodes[0].attributes.axis).toEqual({ type: 'int', value: 2 });
    expect(loadNodeTest('test_conv_with_autopad_same').graph.nodes[0].attributes.auto_pad).toEqual({ type: 'string', value: 'SAME_LOWER' });
  });

  it('decodes a Constant node whose tensor equals the expected output', () => {
    const { dir, graph } = loadNodeTest('test_constant');
    const constant = graph.nodes.find((n) => n.opType === 'Constant')!;
    const value = constant.attributes.value;
    expect(value?.type).toBe('tensor');
    const expected = readTestTensors(dir, 'output')[0];
    if (value?.type !== 'tensor') throw new Error('unreachable');
    expect(value.value.dims).toEqual(expected.dims);
    expect(tensorElements(value.value.data)).toEqual(tensorElements(expected.data));
  });

  it('decodes the weights of a PyTorch-exported Conv2d as float32 initializers', () => {
    const dir = path.join(requireTestdataRoot(), 'pytorch-converted', 'test_Conv2d');
    const graph = loadOnnxModel(readModelBytes(dir), { basePath: dir });
    const conv = graph.nodes.find((n) => n.opType === 'Conv')!;
    const weights = graph.initializers.get(conv.inputs[1])!;
    expect(weights.dtype).toBe('float32');
    expect(weights.data.length).toBe(weights.dims.reduce((a, b) => a * b, 1));
    expect(graph.inputs.some((i) => i.name === conv.inputs[1])).toBe(false);
  });

  it('decodeTensorProto reads test_data_set .pb files of several element types', () => {
    const x = readTestTensors(nodeTestDir('test_conv_with_strides_padding'), 'input')[0];
    expect(x.dtype).toBe('float32');
    expect(x.dims).toEqual([1, 1, 7, 5]);
    expect(x.data).toBeInstanceOf(Float32Array);
    expect(tensorElements(x.data.slice(0, 3))).toEqual([0, 1, 2]);
    const shape = readTestTensors(nodeTestDir('test_reshape_reduced_dims'), 'input')[1];
    expect(shape.dtype).toBe('int64');
    expect(shape.data).toBeInstanceOf(BigInt64Array);
    const bools = readTestTensors(nodeTestDir('test_and2d'), 'input')[0];
    expect(bools.dtype).toBe('bool');
    expect(tensorElements(bools.data).every((v) => v === 0 || v === 1)).toBe(true);
  });
});

describe('initializers of every element type', () => {
  it('float32 from float_data and from raw_data', () => {
    expect(tensorElements(loadInitializer({ name: 'w', dims: [2], floatData: [1.5, -2] }).data)).toEqual([1.5, -2]);
    const raw = loadInitializer({ name: 'w', dims: [3], rawData: littleEndian(Float32Array.of(1, 2, 3)) });
    expect(raw.data).toBeInstanceOf(Float32Array);
    expect(tensorElements(raw.data)).toEqual([1, 2, 3]);
  });

  it('raw_data at an unaligned offset is copied, not viewed', () => {
    const bytes = new Uint8Array(13);
    bytes.set(littleEndian(Float32Array.of(7, 8, 9)), 1);
    const tensor = loadInitializer({ name: 'w', dims: [3], rawData: bytes.subarray(1) });
    expect(tensorElements(tensor.data)).toEqual([7, 8, 9]);
  });

  it('int64 from int64_data and raw_data, including values beyond 2^53', () => {
    expect(loadInitializer({ name: 'w', dims: [2], dataType: INT64, int64Data: [-3, 5] }).data).toEqual(BigInt64Array.of(-3n, 5n));
    const big = BigInt64Array.of(9223372036854775807n, -9223372036854775808n);
    expect(loadInitializer({ name: 'w', dims: [2], dataType: INT64, rawData: littleEndian(big) }).data).toEqual(big);
  });

  it('int8, uint8, int32 and bool from int32_data; double from raw_data', () => {
    expect(loadInitializer({ name: 'w', dims: [2], dataType: 3, int32Data: [-128, 127] }).data).toEqual(Int8Array.of(-128, 127));
    expect(loadInitializer({ name: 'w', dims: [2], dataType: 2, int32Data: [0, 255] }).data).toEqual(Uint8Array.of(0, 255));
    expect(loadInitializer({ name: 'w', dims: [1], dataType: 6, int32Data: [-70000] }).data).toEqual(Int32Array.of(-70000));
    const bool = loadInitializer({ name: 'w', dims: [3], dataType: 9, int32Data: [1, 0, 1] });
    expect([bool.dtype, tensorElements(bool.data)]).toEqual(['bool', [1, 0, 1]]);
    const double = loadInitializer({ name: 'w', dims: [1], dataType: 11, rawData: littleEndian(Float64Array.of(0.1)) });
    expect([double.dtype, double.data[0]]).toEqual(['float64', 0.1]);
  });

  it('float16 (raw_data and int32_data) is widened to float32', () => {
    // 0x3c00 = 1, 0xc000 = -2, 0x7bff = 65504 (max half), 0x0001 = smallest subnormal.
    const bits = Uint16Array.of(0x3c00, 0xc000, 0x7bff, 0x0001);
    const raw = loadInitializer({ name: 'w', dims: [4], dataType: FLOAT16, rawData: littleEndian(bits) });
    expect(raw.dtype).toBe('float32');
    expect(tensorElements(raw.data)).toEqual([1, -2, 65504, 2 ** -24]);
    const typed = loadInitializer({ name: 'w', dims: [4], dataType: FLOAT16, int32Data: Array.from(bits) });
    expect(tensorElements(typed.data)).toEqual([1, -2, 65504, 2 ** -24]);
  });

  it('strings are rejected with ERR_DTYPE naming the tensor', () => {
    expect(() => loadInitializer({ name: 'names', dims: [0], dataType: 8 })).toThrow(expect.objectContaining({ code: 'ERR_DTYPE', message: expect.stringContaining('"names"') }));
  });

  it('decodeTensorProto round-trips a hand-encoded tensor', () => {
    const tensor = decodeTensorProto(encodeTensor({ name: 't', dims: [2, 2], floatData: [1, 2, 3, 4] }));
    expect([tensor.name, tensor.dims, tensorElements(tensor.data)]).toEqual(['t', [2, 2], [1, 2, 3, 4]]);
  });
});

describe('external data', () => {
  function externalModel(location: string, extra: Record<string, string> = {}) {
    return { name: 'w', dims: [4], externalData: { location, ...extra } };
  }
  function tempModelDir(): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ternion-ext-'));
    const weights = new Uint8Array(24);
    weights.set(littleEndian(Float32Array.of(1, 2, 3, 4)), 8);
    fs.writeFileSync(path.join(dir, 'weights.bin'), weights);
    return dir;
  }

  it('reads location/offset/length relative to basePath', () => {
    const dir = tempModelDir();
    const tensor = loadInitializer(externalModel('weights.bin', { offset: '8', length: '16' }), dir);
    expect(tensorElements(tensor.data)).toEqual([1, 2, 3, 4]);
  });

  it('EXPECTED FAILURE - without basePath', () => {
    expect(() => loadInitializer(externalModel('weights.bin'))).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARGUMENT', message: expect.stringContaining('options.basePath') }));
  });

  it('EXPECTED FAILURE - a location escaping the model directory', () => {
    const dir = tempModelDir();
    for (const location of ['../weights.bin', '/etc/passwd', 'sub/../../x.bin']) {
      expect(() => loadInitializer(externalModel(location), dir)).toThrow(expect.objectContaining({ code: 'ERR_MODEL_FORMAT', message: expect.stringContaining('outside') }));
    }
  });

  it('EXPECTED FAILURE - a symlink leading out of the model directory', () => {
    const dir = tempModelDir();
    const outside = tempModelDir();
    fs.symlinkSync(path.join(outside, 'weights.bin'), path.join(dir, 'link.bin'));
    expect(() => loadInitializer(externalModel('link.bin', { offset: '8' }), dir)).toThrow(expect.objectContaining({ code: 'ERR_MODEL_FORMAT', message: expect.stringContaining('outside') }));
  });

  it('EXPECTED FAILURE - a range past the end of the file, a wrong length, a missing file', () => {
    const dir = tempModelDir();
    expect(() => loadInitializer(externalModel('weights.bin', { offset: '16' }), dir)).toThrow(/needs bytes 16\.\.32 .* 24 bytes/);
    expect(() => loadInitializer(externalModel('weights.bin', { length: '12' }), dir)).toThrow(/declares 12 bytes/);
    expect(() => loadInitializer(externalModel('missing.bin'), dir)).toThrow(expect.objectContaining({ code: 'ERR_MODEL_FORMAT' }));
  });
});

describe('graph structure', () => {
  it('keeps symbolic dims by name and names unknown ones', () => {
    const spec = tinyModelSpec();
    spec.inputs = [{ name: 'x', type: { tensor_type: { elem_type: 1, shape: { dim: [{ dim_param: 'N' }, {}] } } } }];
    const graph = loadOnnxModel(encodeModel(spec));
    expect(graph.inputs[0].shape).toEqual(['N', 'unk__0']);
  });

  it('treats initializers listed as inputs (IR < 4) as constants', () => {
    const spec = tinyModelSpec();
    spec.inputs = [...spec.inputs, valueInfo('bias', [3])];
    const graph = loadOnnxModel(encodeModel(spec));
    expect(graph.inputs.map((i) => i.name)).toEqual(['x']);
  });

  it('sorts nodes listed out of order and names unnamed nodes', () => {
    const spec = tinyModelSpec();
    spec.nodes = [{ ...spec.nodes[1], name: '' }, { ...spec.nodes[0], name: '' }];
    const graph = loadOnnxModel(encodeModel(spec));
    expect(graph.nodes.map((n) => n.name)).toEqual(['Add_1', 'Relu_0']);
  });

  it('BAD CALL - non-Uint8Array bytes', () => {
    expect(() => loadOnnxModel('model.onnx' as unknown as Uint8Array)).toThrow(TernionError);
    expect(() => loadOnnxModel('model.onnx' as unknown as Uint8Array)).toThrow(/Expected a Uint8Array of .onnx bytes for bytes but received "model.onnx" of type string/);
  });
});
