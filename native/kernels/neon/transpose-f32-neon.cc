// fp32 transpose, NEON: 4 x 4 blocks in registers (vtrn, then the 64-bit halves recombined);
// edge rows and columns one value at a time. Moves only: every bit is kept.
#include <algorithm>

#include "kernels/neon/common-neon.h"

namespace ternion {
namespace kernels {
namespace neon_detail {

void transpose_f32(const float* src, int rows, int cols, size_t ld_src, float* dst, size_t ld_dst) {
  const int rows4 = rows & ~3, cols4 = cols & ~3;
  for (int r = 0; r < rows4; r += 4) {
    const float* s = src + r * ld_src;
    int c = 0;
    for (; c < cols4; c += 4) {
      const float32x4x2_t ab = vtrnq_f32(vld1q_f32(s + c), vld1q_f32(s + ld_src + c));                  // a0 b0 a2 b2 | a1 b1 a3 b3
      const float32x4x2_t cd = vtrnq_f32(vld1q_f32(s + 2 * ld_src + c), vld1q_f32(s + 3 * ld_src + c));  // c0 d0 c2 d2 | c1 d1 c3 d3
      float* d = dst + c * ld_dst + r;
      vst1q_f32(d, vcombine_f32(vget_low_f32(ab.val[0]), vget_low_f32(cd.val[0])));
      vst1q_f32(d + ld_dst, vcombine_f32(vget_low_f32(ab.val[1]), vget_low_f32(cd.val[1])));
      vst1q_f32(d + 2 * ld_dst, vcombine_f32(vget_high_f32(ab.val[0]), vget_high_f32(cd.val[0])));
      vst1q_f32(d + 3 * ld_dst, vcombine_f32(vget_high_f32(ab.val[1]), vget_high_f32(cd.val[1])));
    }
    for (; c < cols; ++c)
      for (int i = 0; i < 4; ++i) dst[c * ld_dst + r + i] = s[i * ld_src + c];
  }
  for (int r = rows4; r < rows; ++r)
    for (int c = 0; c < cols; ++c) dst[c * ld_dst + r] = src[r * ld_src + c];
}

}  // namespace neon_detail
}  // namespace kernels
}  // namespace ternion
