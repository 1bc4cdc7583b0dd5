// HardSwish fusion (lib/ir/passes/fuse-hard-swish.ts): Mul(x, HardSigmoid(x)) with alpha 1/6
// and beta 0.5 (MobileNetV3 at opset 13) runs as HardSwish with the same values; other
// HardSigmoids stay.
import { describe, expect, it } from 'vitest';
import { InferenceSession, Tensor } from '../lib';
import { fuseHardSwish, optimizeGraph } from '../lib/ir';
import { loadOnnxModel } from '../lib/onnx';
import { encodeModel, valueInfo } from './onnx-build-model';

const FLOAT_ATTR = 1;
function model(o: { alpha?: number; out?: boolean; swap?: boolean } = {}): Uint8Array {
  return encodeModel({
    nodes: [
      { op: 'HardSigmoid', name: 'hs', inputs: ['x'], outputs: ['s'], attributes: [{ name: 'alpha', type: FLOAT_ATTR, f: o.alpha ?? 1 / 6 }, { name: 'beta', type: FLOAT_ATTR, f: 0.5 }] },
      { op: 'Mul', name: 'm', inputs: o.swap ? ['s', 'x'] : ['x', 's'], outputs: ['y'] },
    ],
    inputs: [valueInfo('x', ['N'])],
    outputs: [valueInfo('y', ['N']), ...(o.out ? [valueInfo('s', ['N'])] : [])],
  });
}

describe('HardSwish fusion', () => {
  it('fuses Mul(x, HardSigmoid(x)) with alpha 1/6, beta 0.5 in either order, nothing else', () => {
    for (const swap of [false, true]) expect(fuseHardSwish(optimizeGraph(loadOnnxModel(model({ swap })))).nodes.map((n) => n.opType)).toEqual(['HardSwish']);
    expect(fuseHardSwish(optimizeGraph(loadOnnxModel(model({ alpha: 0.2 })))).nodes.map((n) => n.opType)).toEqual(['HardSigmoid', 'Mul']);
    expect(fuseHardSwish(optimizeGraph(loadOnnxModel(model({ out: true })))).nodes.map((n) => n.opType)).toEqual(['HardSigmoid', 'Mul']);
  });

  it('gives the values of HardSigmoid then Mul, NaN and infinities included', async () => {
    const x = Float32Array.from({ length: 20001 }, (_, i) => (i - 10000) * 0.000731);
    x[0] = NaN; x[1] = Infinity; x[2] = -Infinity; x[3] = -0;
    const feed = { x: new Tensor('float32', x, [x.length]) };
    for (const swap of [false, true]) {
      const fused = (await (await InferenceSession.create(model({ swap }))).run(feed)).y.data as Float32Array;
      const plain = (await (await InferenceSession.create(model({ swap, out: true }))).run(feed)).y.data as Float32Array;
      const diff = Array.from(fused).map((v, i) => [i, v, plain[i]]).filter(([, a, b]) => !Object.is(a, b));
      expect(diff).toEqual([]);
    }
  });
});
