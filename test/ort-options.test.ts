// onnxruntime-node's session options on InferenceSession.create: translated where ternion has
// the setting, accepted where it is onnxruntime's own machinery, refused (by name) otherwise.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InferenceSession, Tensor } from '../lib';
import { translateOnnxruntimeOptions } from '../lib/session/ort-options';
import { expectRejection, rng } from './helpers';
import { ROOT } from './native-build';

const model = join(ROOT, 'models', 'fashion-mnist-resnet.onnx');


describe("onnxruntime-node's session options", () => {
  it('creates a session from the options object written for onnxruntime-node, with the same results', async () => {
    const ortStyle = {
      executionProviders: ['cpu'],
      intraOpNumThreads: 1,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
      enableCpuMemArena: true,
      enableMemPattern: true,
      logSeverityLevel: 3,
      logId: 'svc',
      extra: { session: { use_ort_model_bytes_directly: '1' } },
    } as const;
    const s = await InferenceSession.create(model, ortStyle);
    const ref = await InferenceSession.create(model, { threads: 1 });
    expect((s as unknown as { threads: number }).threads).toBe(1);
    const r = rng(2);
    const image = new Tensor('float32', Float32Array.from({ length: 2 * 784 }, () => r()), [2, 1, 28, 28]);
    expect(Array.from((await s.run({ image })).logits.data as Float32Array)).toEqual(Array.from((await ref.run({ image })).logits.data as Float32Array));
    await s.release();
    await ref.release();
    const cpuObject = await InferenceSession.create(model, { executionProviders: [{ name: 'cpu' }], intraOpNumThreads: 0 });
    expect((cpuObject as unknown as { threads: number | undefined }).threads).toBeUndefined(); // 0: the default
    await cpuObject.release();
  });

  it('translates intra-op threads and the optimization level, and drops what has no meaning here', () => {
    expect(translateOnnxruntimeOptions({ intraOpNumThreads: 2, graphOptimizationLevel: 'disabled', logSeverityLevel: 0, isa: 'scalar' })).toEqual({ threads: 2, optimize: false, isa: 'scalar' });
    expect(translateOnnxruntimeOptions({ graphOptimizationLevel: 'basic', threads: 3, intraOpNumThreads: 3 })).toEqual({ threads: 3, optimize: true });
    expect(translateOnnxruntimeOptions({ intraOpNumThreads: 0, executionMode: 'parallel', freeDimensionOverrides: { batch: 1 } })).toEqual({});
  });

  it('refuses other execution providers, disagreeing settings and misspellings, by name', async () => {
    await expectRejection(InferenceSession.create(model, { executionProviders: ['cuda'] } as never), 'ERR_INVALID_ARGUMENT', /CPU only; options.executionProviders lists "cuda"/);
    await expectRejection(InferenceSession.create(model, { executionProviders: ['cpu', { name: 'webgpu' }] } as never), 'ERR_INVALID_ARGUMENT', /lists "webgpu"/);
    await expectRejection(InferenceSession.create(model, { executionProviders: 'cpu' } as never), 'ERR_INVALID_ARGUMENT', /an array for options.executionProviders/);
    await expectRejection(InferenceSession.create(model, { threads: 2, intraOpNumThreads: 1 }), 'ERR_INVALID_ARGUMENT', /threads \(2\) and options.intraOpNumThreads \(1\) disagree/);
    await expectRejection(InferenceSession.create(model, { optimize: true, graphOptimizationLevel: 'disabled' }), 'ERR_INVALID_ARGUMENT', /disagree/);
    await expectRejection(InferenceSession.create(model, { graphOptimizationLevel: 'max' } as never), 'ERR_INVALID_ARGUMENT', /"disabled", "basic", "extended", "all" for options.graphOptimizationLevel but received "max"/);
    await expectRejection(InferenceSession.create(model, { intraOpNumThreads: 1.5 }), 'ERR_INVALID_ARGUMENT', /intraOpNumThreads but received 1.5/);
    await expectRejection(InferenceSession.create(model, { IntraOpNumThreads: 1 } as never), 'ERR_INVALID_ARGUMENT', /Unknown option "IntraOpNumThreads" \(did you mean "intraOpNumThreads"\?\)/);
    await expectRejection(InferenceSession.create(model, { numThreads: 1 } as never), 'ERR_INVALID_ARGUMENT', /Unknown option "numThreads"; options are threads, .*and onnxruntime-node's intraOpNumThreads/);
  });
});
