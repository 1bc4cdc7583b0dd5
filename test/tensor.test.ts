import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { Tensor, TernionError } from '../lib';
import { expectCode } from './helpers';

describe('Tensor', () => {
  it('holds typed-array data without copying, with dims', () => {
    const data = new Float32Array(6);
    const t = new Tensor('float32', data, [2, 3]);
    expect(t.data).toBe(data);
    expect(t.dims).toEqual([2, 3]);
    expect(t.size).toBe(6);
    expect(t.type).toBe('float32');
  });

  it('accepts every type with its own typed array', () => {
    expect(new Tensor('int8', new Int8Array(2)).dims).toEqual([2]);
    expect(new Tensor('uint8', new Uint8Array(4), [2, 2]).size).toBe(4);
    expect(new Tensor('int32', new Int32Array(1), [1, 1, 1]).size).toBe(1);
    expect(new Tensor('int64', new BigInt64Array(3), [3]).size).toBe(3);
    expect(new Tensor('bool', new Uint8Array([0, 1]), [2]).data[1]).toBe(1);
  });

  it('copies plain arrays into the right typed array', () => {
    const t = new Tensor('int32', [1, 2, 3], [3]);
    expect(t.data).toBeInstanceOf(Int32Array);
    expect(Array.from(t.data)).toEqual([1, 2, 3]);
    const i64 = new Tensor('int64', [1n, 2, -3n]);
    expect(Array.from(i64.data)).toEqual([1n, 2n, -3n]);
  });

  it('allows zero-sized tensors and scalars', () => {
    expect(new Tensor('float32', new Float32Array(0), [0, 4]).size).toBe(0);
    expect(new Tensor('float32', new Float32Array(1), []).size).toBe(1);
  });

  it('reshapes without copying', () => {
    const t = new Tensor('uint8', new Uint8Array(12), [3, 4]);
    const r = t.reshape([2, 6]);
    expect(r.data).toBe(t.data);
    expect(r.dims).toEqual([2, 6]);
    expectCode(() => t.reshape([5]), 'ERR_SHAPE_MISMATCH', /12/);
  });

  describe('BAD CALL', () => {
    it('unknown type', () => {
      expectCode(() => new Tensor('float64' as 'float32', new Float32Array(1)), 'ERR_DTYPE', /float64/);
      expectCode(() => new Tensor('float16', new Float32Array(1) as unknown as Uint16Array), 'ERR_DTYPE', /Uint16Array.*float16/);
    });
    it('data of another typed array class', () => {
      expectCode(() => new Tensor('float32', new Float64Array(2) as unknown as Float32Array), 'ERR_DTYPE', /Float32Array.*Float64Array/);
      expectCode(() => new Tensor('uint8', new Int8Array(2) as unknown as Uint8Array), 'ERR_DTYPE', /Uint8Array/);
    });
    it('dims product differs from the data length', () => {
      expectCode(() => new Tensor('float32', new Float32Array(5), [2, 3]), 'ERR_SHAPE_MISMATCH', /\[2, 3\] hold 6 elements but the data has 5/);
    });
    it('negative, fractional or non-number dims', () => {
      expectCode(() => new Tensor('float32', new Float32Array(2), [-1, -2]), 'ERR_SHAPE_MISMATCH', /dims\[0\].*-1/);
      expectCode(() => new Tensor('float32', new Float32Array(2), [2.5]), 'ERR_SHAPE_MISMATCH', /dims\[0\].*2\.5/);
      expectCode(() => new Tensor('float32', new Float32Array(2), ['2' as unknown as number]), 'ERR_SHAPE_MISMATCH', /dims\[0\]/);
      expectCode(() => new Tensor('float32', new Float32Array(2), 2 as unknown as number[]), 'ERR_INVALID_ARGUMENT', /dims/);
    });
    it('dims that overflow', () => {
      expectCode(() => new Tensor('float32', new Float32Array(1), [2 ** 30, 2 ** 30, 0]), 'ERR_SHAPE_MISMATCH', /2\^40/);
    });
    it('bool values other than 0 and 1', () => {
      expectCode(() => new Tensor('bool', new Uint8Array([0, 2])), 'ERR_INVALID_ARGUMENT', /data\[1\] is 2/);
    });
    it('non-numeric array elements', () => {
      expectCode(() => new Tensor('float32', ['a' as unknown as number]), 'ERR_DTYPE', /data\[0\]/);
      expectCode(() => new Tensor('int64', [0.5]), 'ERR_DTYPE', /data\[0\]/);
    });
    it('errors are TernionError instances', () => {
      try {
        new Tensor('float32', new Float32Array(3), [2]);
      } catch (e) {
        expect(e).toBeInstanceOf(TernionError);
      }
      expect.assertions(1);
    });
  });
});

describe("Tensor, onnxruntime-node's other forms", () => {
  it('reads the type from a typed array or a boolean array, as onnxruntime-node does', () => {
    const cases: [ArrayBufferView | boolean[], number[] | undefined][] = [
      [new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]],
      [new Int8Array([-1, 2]), undefined],
      [new Uint8Array([200, 3, 4]), [3, 1]],
      [new Int32Array([7, -7]), [1, 2]],
      [new BigInt64Array([5n, -5n]), [2]],
      [[true, false, true], [3]],
      [new Uint8ClampedArray([255, 0]), [2]],
    ];
    for (const [data, dims] of cases) {
      const ours = new Tensor(data as never, dims);
      const theirs = new ort.Tensor(data as never, dims);
      expect(ours.type).toBe(theirs.type);
      expect(ours.dims).toEqual(theirs.dims);
      expect(Array.from(ours.data as ArrayLike<number>)).toEqual(Array.from(theirs.data as ArrayLike<number>));
    }
    const held = new Float32Array(4);
    expect(new Tensor(held, [2, 2]).data).toBe(held); // typed arrays are held, not copied
    const clamped = new Uint8ClampedArray([1, 2]);
    expect(new Tensor(clamped).data).toBeInstanceOf(Uint8Array); // ... but a clamped one is copied
    expect(Array.from(new Tensor('bool', [true, false, false]).data)).toEqual([1, 0, 0]);
  });

  it('refuses data whose type it cannot read or does not hold, saying what to write', () => {
    expectCode(() => new Tensor([1, 2, 3] as never), 'ERR_DTYPE', /cannot be read from an array of length 3: give it, as in new Tensor\('float32'/);
    expectCode(() => new Tensor(new Uint16Array(2) as never), 'ERR_DTYPE', /onnxruntime reads a Uint16Array as uint16; for float16 bit patterns write new Tensor\('float16'/);
    expectCode(() => new Tensor(new Float64Array(2) as never), 'ERR_DTYPE', /Float64Array.*not hold/);
    expectCode(() => new Tensor('float32', [true] as never), 'ERR_DTYPE', /Expected a number for data\[0\]/);
  });

  it('has getData(), dispose() and location for code written against onnxruntime-node', async () => {
    const t = new Tensor('int32', new Int32Array([1, 2]), [2]);
    expect(t.location).toBe('cpu');
    expect(await t.getData()).toBe(t.data);
    t.dispose();
    expect(Array.from(t.data)).toEqual([1, 2]);
  });
});
