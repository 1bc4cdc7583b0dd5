// EXPECTED FAILURE - corrupt, truncated, inconsistent and unsupported models: each one a
// TernionError with a code and a message naming the culprit, never a crash or a huge allocation.

import { describe, expect, it } from 'vitest';
import { TernionError } from '../lib/errors';
import { loadOnnxModel } from '../lib/onnx';
import { encodeModel, tinyModelSpec, valueInfo } from './onnx-build-model';
import type { ModelSpec } from './onnx-build-model';
import { nodeTestDir, readModelBytes } from './onnx-testdata';

function loadError(bytes: Uint8Array): TernionError {
  try {
    loadOnnxModel(bytes);
  } catch (error) {
    expect(error).toBeInstanceOf(TernionError);
    return error as TernionError;
  }
  throw new Error('expected the model to be rejected');
}

function expectFormatError(spec: ModelSpec, ...fragments: (string | RegExp)[]): void {
  const error = loadError(encodeModel(spec));
  expect(error.code).toBe('ERR_MODEL_FORMAT');
  for (const fragment of fragments) expect(error.message).toMatch(fragment);
}

/** A deterministic byte stream (xorshift32), so failures are reproducible by seed. */
function randomBytes(seed: number, length: number): Uint8Array {
  let state = seed || 1;
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    bytes[i] = state & 0xff;
  }
  return bytes;
}

describe('undecodable bytes', () => {
  it('an empty file', () => {
    expect(loadError(new Uint8Array(0)).message).toMatch(/empty/);
  });

  it('every truncation of a real model', () => {
    const bytes = readModelBytes(nodeTestDir('test_conv_with_strides_padding'));
    for (let length = 1; length < bytes.length; length++) {
      const error = loadError(bytes.subarray(0, length));
      expect(error.code, `truncated at ${length} of ${bytes.length} bytes`).toBe('ERR_MODEL_FORMAT');
    }
  });

  it('random bytes (200 seeds)', () => {
    for (let seed = 1; seed <= 200; seed++) {
      const error = loadError(randomBytes(seed, 16 + (seed % 7) * 100));
      expect(['ERR_MODEL_FORMAT', 'ERR_DTYPE', 'ERR_UNSUPPORTED_OP'], `seed ${seed}`).toContain(error.code);
    }
  });

  it('a text file', () => {
    expect(loadError(new TextEncoder().encode('{"not": "onnx"}')).code).toBe('ERR_MODEL_FORMAT');
  });
});

describe('inconsistent graphs', () => {
  it('a cycle', () => {
    const spec = tinyModelSpec();
    spec.nodes = [
      { op: 'Add', inputs: ['x', 'b'], outputs: ['a'], name: 'first' },
      { op: 'Relu', inputs: ['a'], outputs: ['b'], name: 'second' },
      { op: 'Relu', inputs: ['a'], outputs: ['y'], name: 'out' },
    ];
    expectFormatError(spec, /cycle/, /"first"/, /"second"/);
  });

  it('a node reading a missing initializer', () => {
    const spec = tinyModelSpec();
    spec.initializers = [];
    expectFormatError(spec, /Node "add" \(Add\) reads tensor "bias"/);
  });

  it('a graph output nobody produces', () => {
    const spec = tinyModelSpec();
    spec.outputs = [valueInfo('nothing', [1])];
    expectFormatError(spec, /"nothing"/);
  });

  it('a tensor produced twice', () => {
    const spec = tinyModelSpec();
    spec.nodes.push({ op: 'Relu', inputs: ['x'], outputs: ['sum'], name: 'again' });
    expectFormatError(spec, /"sum" is produced by two nodes/);
  });

  it('no opset import, no graph', () => {
    expectFormatError({ ...tinyModelSpec(), opset: 0 }, /opset/);
  });
});

describe('inconsistent tensors', () => {
  const withBias = (bias: ModelSpec['initializers']) => ({ ...tinyModelSpec(), initializers: bias });

  it('raw_data shorter than dims need', () => {
    expectFormatError(withBias([{ name: 'bias', dims: [3], rawData: new Uint8Array(8) }]), /initializer "bias" has 8 bytes of raw_data but dims \[3\] of float32 need 12/);
  });

  it('float_data count differing from dims', () => {
    expectFormatError(withBias([{ name: 'bias', dims: [4], floatData: [1, 2, 3] }]), /"bias" has 3 values in float_data but its dims need 4/);
  });

  it('dims of 2^40 elements with a few bytes of data: rejected before allocating', () => {
    expectFormatError(withBias([{ name: 'bias', dims: [1 << 20, 1 << 20], rawData: new Uint8Array(12) }]), /"bias"/, /need 4398046511104/);
    expectFormatError(withBias([{ name: 'bias', dims: [1 << 20, 1 << 20], floatData: [1, 2, 3] }]), /"bias"/);
  });

  it('dims whose product overflows', () => {
    expectFormatError(withBias([{ name: 'bias', dims: [2 ** 31, 2 ** 31, 2 ** 31], rawData: new Uint8Array(12) }]), /"bias"/, /overflow/);
  });

  it('negative dims', () => {
    expectFormatError(withBias([{ name: 'bias', dims: [-3], floatData: [1, 2, 3] }]), /"bias" has an invalid dim -3/);
  });
});

describe('unsupported operators', () => {
  it('an unknown op names op type, node and opset', () => {
    const spec = tinyModelSpec();
    spec.nodes[1] = { ...spec.nodes[1], op: 'StringNormalizer', name: 'my_normalizer' };
    const error = loadError(encodeModel(spec));
    expect(error.code).toBe('ERR_UNSUPPORTED_OP');
    expect(error.message).toBe('Unsupported operator StringNormalizer (domain ai.onnx, opset 13) in node "my_normalizer"');
  });

  it('a supported op at an opset outside its range', () => {
    const error = loadError(encodeModel({ ...tinyModelSpec(), opset: 6 }));
    expect(error.code).toBe('ERR_UNSUPPORTED_OP');
    expect(error.message).toMatch(/opset 6 for operator Add in node "add": ternion supports Add at opsets 7 to \d+/);
  });

  it('an op in an If branch that ternion lacks is named, with the branch it sits in', () => {
    // test_if_seq's branches build sequences (SequenceConstruct), which ternion does not hold.
    const error = loadError(readModelBytes(nodeTestDir('test_if_seq')));
    expect(error.code).toBe('ERR_UNSUPPORTED_OP');
    expect(error.message).toMatch(/Unsupported operator SequenceConstruct \(domain ai\.onnx, opset \d+\) in node "[^"]*", in the (then|else)_branch of node "[^"]*" \(If\)/);
  });

  it('a custom domain the model does not import', () => {
    const spec = tinyModelSpec();
    spec.nodes[1] = { ...spec.nodes[1], domain: 'com.example' };
    expectFormatError(spec, /domain "com.example" which the model does not import/);
  });
});
