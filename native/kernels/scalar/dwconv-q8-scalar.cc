// Depthwise int8 convolution reference: the sum of kernels.h computed directly per channel.
#include <cstring>

#include "kernels/kernels.h"
#include "kernels/scalar/requant-scalar.h"

namespace ternion {
namespace kernels {
namespace scalar_detail {

size_t dw_packed_size(int C, int taps) { return static_cast<size_t>(C) * taps; }

void dw_pack(const int8_t* W, int C, int taps, void* packed) {
  std::memcpy(packed, W, dw_packed_size(C, taps));
}

void dw_q8(int P, int C, int taps, const uint8_t* const* in, uint8_t a_zero, const void* packed,
           const Requant* rq, void* out, size_t ldo) {
  const int8_t* W = static_cast<const int8_t*>(packed);
  for (int p = 0; p < P; ++p) {
    const uint8_t* const* px = in + static_cast<size_t>(p) * taps;
    for (int c = 0; c < C; ++c) {
      const int8_t* w = W + static_cast<size_t>(c) * taps;
      int32_t acc = 0;
      for (int t = 0; t < taps; ++t) acc += (static_cast<int32_t>(px[t][c]) - a_zero) * w[t];
      requant_store(*rq, c, static_cast<float>(acc), acc, out, p * ldo + c);
    }
  }
}

}  // namespace scalar_detail
}  // namespace kernels
}  // namespace ternion
