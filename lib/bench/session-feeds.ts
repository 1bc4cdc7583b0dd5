// A float16 model's quantized forms (ternion int8, ternary, ...) take float32 inputs where the
// model itself takes float16: the benchmark's float16 feeds are widened for those sessions.
import { widenHalfFloats } from '../onnx/half-float';
import type { InputMetadata } from '../session/feeds';
import { Tensor } from '../tensor';

export function feedsForSession(inputs: readonly InputMetadata[], feeds: Record<string, Tensor>): Record<string, Tensor> {
  return Object.fromEntries(
    inputs.map((m) => {
      const t = feeds[m.name];
      return [m.name, t && t.type === 'float16' && m.type === 'float32' ? new Tensor('float32', widenHalfFloats(t.data as Uint16Array, 'float16'), t.dims) : t];
    }),
  );
}
