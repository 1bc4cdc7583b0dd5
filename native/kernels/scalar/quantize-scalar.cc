// Activation quantization reference: the formula of kernels.h, one value at a time.
#include <cmath>

#include "kernels/kernels.h"

namespace ternion {
namespace kernels {
namespace scalar_detail {

void quantize_u8(const float* x, uint8_t* y, size_t n, float scale, int32_t zp, int32_t qmax) {
  const float r = 1.0f / scale, z = static_cast<float>(zp), hi = static_cast<float>(qmax);
  const float magic = 12582912.0f;  // 1.5 * 2^23: (v + magic) - magic rounds half to even for |v| < 2^22
  for (size_t i = 0; i < n; ++i) {
    float v = std::fma(x[i], r, z);
    v = v > 0.0f ? v : 0.0f;
    v = v < hi ? v : hi;
    y[i] = static_cast<uint8_t>(static_cast<int32_t>((v + magic) - magic));
  }
}

}  // namespace scalar_detail
}  // namespace kernels
}  // namespace ternion
