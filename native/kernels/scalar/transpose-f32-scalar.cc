// fp32 transpose reference: the formula of kernels.h in 16 x 16 tiles (both sides stay in cache).
#include <algorithm>

#include "kernels/kernels.h"

namespace ternion {
namespace kernels {
namespace scalar_detail {

void transpose_f32(const float* src, int rows, int cols, size_t ld_src, float* dst, size_t ld_dst) {
  constexpr int kTile = 16;
  for (int r0 = 0; r0 < rows; r0 += kTile) {
    const int r1 = std::min(rows, r0 + kTile);
    for (int c0 = 0; c0 < cols; c0 += kTile) {
      const int c1 = std::min(cols, c0 + kTile);
      for (int c = c0; c < c1; ++c)
        for (int r = r0; r < r1; ++r) dst[c * ld_dst + r] = src[r * ld_src + c];
    }
  }
}

}  // namespace scalar_detail
}  // namespace kernels
}  // namespace ternion
