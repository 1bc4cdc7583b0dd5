// Depthwise fp32 convolution reference: the sum of kernels.h, channel by channel. Built with
// -ffp-contract=off (CMakeLists.txt), so `v + x * w` stays a rounded product and a rounded sum.
#include "kernels/kernels.h"

namespace ternion {
namespace kernels {
namespace scalar_detail {

void dw_f32(int P, int C, int taps, const float* const* in, const float* w, const float* bias,
            float lo, float hi, float* out, size_t ldo) {
  for (int p = 0; p < P; ++p) {
    const float* const* px = in + static_cast<size_t>(p) * taps;
    float* o = out + static_cast<size_t>(p) * ldo;
    for (int c = 0; c < C; ++c) {
      float v = bias ? bias[c] : 0.0f;
      for (int t = 0; t < taps; ++t)
        if (px[t]) v = v + px[t][c] * w[static_cast<size_t>(t) * C + c];
      v = v < lo ? lo : v;
      v = hi < v ? hi : v;
      o[c] = v;
    }
  }
}

}  // namespace scalar_detail
}  // namespace kernels
}  // namespace ternion
