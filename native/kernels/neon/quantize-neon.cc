// Activation quantization, NEON, bit-exact with the scalar reference: vfmaq_f32 is the IEEE
// fused multiply-add with the same reciprocal, the clamps are compare-and-select (NaN takes the low bound, as in the reference;
// vmaxq would propagate it) and vrndnq rounds half to even.
#include "kernels/neon/common-neon.h"

namespace ternion {
namespace kernels {
namespace neon_detail {

void quantize_u8(const float* x, uint8_t* y, size_t n, float scale, int32_t zp, int32_t qmax) {
  const float32x4_t r = vdupq_n_f32(1.0f / scale), z = vdupq_n_f32(static_cast<float>(zp));
  const float32x4_t lo = vdupq_n_f32(0.0f), hi = vdupq_n_f32(static_cast<float>(qmax));
  auto q4 = [&](const float* p) {
    float32x4_t v = vfmaq_f32(z, vld1q_f32(p), r);
    v = vbslq_f32(vcgtq_f32(v, lo), v, lo);
    v = vbslq_f32(vcltq_f32(v, hi), v, hi);
    return vcvtq_s32_f32(vrndnq_f32(v));
  };
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const int16x8_t h = vcombine_s16(vmovn_s32(q4(x + i)), vmovn_s32(q4(x + i + 4)));
    vst1_u8(y + i, vmovn_u16(vreinterpretq_u16_s16(h)));
  }
  if (i < n) scalar_table()->quantize_u8(x + i, y + i, n - i, scale, zp, qmax);  // the tail: the reference itself
}

}  // namespace neon_detail
}  // namespace kernels
}  // namespace ternion
