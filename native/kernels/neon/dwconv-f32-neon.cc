// Depthwise fp32 convolution, NEON, bit-exact with the scalar reference (kernels.h): per lane
// the same rounded product and rounded sum in tap order (vmulq then vaddq, never vfmaq).
// A pixel's channels go in blocks of 16 (four q registers), then of 4, then a tail of 1-3 in
// one vector through a stack copy. The clamp is clamp4 (common-neon.h).
#include "kernels/neon/common-neon.h"

namespace ternion {
namespace kernels {
namespace neon_detail {

namespace {

template <int V>
inline void dw_f32_block(const float* const* px, size_t c, int taps, const float* w, size_t C, const float* bias,
                         float32x4_t lo, float32x4_t hi, float* o) {
  float32x4_t acc[V];
  for (int v = 0; v < V; ++v) acc[v] = bias ? vld1q_f32(bias + c + 4 * v) : vdupq_n_f32(0.0f);
  for (int t = 0; t < taps; ++t) {
    const float* wt = w + static_cast<size_t>(t) * C + c;
    if (!px[t]) continue;  // outside the input
    const float* xt = px[t] + c;
    for (int v = 0; v < V; ++v) acc[v] = vaddq_f32(acc[v], vmulq_f32(vld1q_f32(xt + 4 * v), vld1q_f32(wt + 4 * v)));
  }
  for (int v = 0; v < V; ++v) vst1q_f32(o + c + 4 * v, clamp4(acc[v], lo, hi));
}

// The last 1-3 channels: each tap's inputs and weights copied into a zero-filled vector, the
// same lane arithmetic, and only the real lanes stored (nothing past C is read or written).
inline void dw_f32_tail(const float* const* px, size_t c, size_t rest, int taps, const float* w, size_t C, const float* bias,
                        float32x4_t lo, float32x4_t hi, float* o) {
  float b[4] = {0, 0, 0, 0}, x[4] = {0, 0, 0, 0}, wt[4] = {0, 0, 0, 0}, r[4];
  if (bias) std::memcpy(b, bias + c, rest * sizeof(float));
  float32x4_t acc = vld1q_f32(b);
  for (int t = 0; t < taps; ++t) {
    if (!px[t]) continue;
    std::memcpy(x, px[t] + c, rest * sizeof(float));
    std::memcpy(wt, w + static_cast<size_t>(t) * C + c, rest * sizeof(float));
    acc = vaddq_f32(acc, vmulq_f32(vld1q_f32(x), vld1q_f32(wt)));
  }
  vst1q_f32(r, clamp4(acc, lo, hi));
  std::memcpy(o + c, r, rest * sizeof(float));
}

}  // namespace

void dw_f32(int P, int C, int taps, const float* const* in, const float* w, const float* bias,
            float lo, float hi, float* out, size_t ldo) {
  const float32x4_t vlo = vdupq_n_f32(lo), vhi = vdupq_n_f32(hi);
  const size_t n = static_cast<size_t>(C);
  for (int p = 0; p < P; ++p) {
    const float* const* px = in + static_cast<size_t>(p) * taps;
    float* o = out + static_cast<size_t>(p) * ldo;
    size_t c = 0;
    for (; c + 16 <= n; c += 16) dw_f32_block<4>(px, c, taps, w, n, bias, vlo, vhi, o);
    for (; c + 4 <= n; c += 4) dw_f32_block<1>(px, c, taps, w, n, bias, vlo, vhi, o);
    if (c < n) dw_f32_tail(px, c, n - c, taps, w, n, bias, vlo, vhi, o);
  }
}

}  // namespace neon_detail
}  // namespace kernels
}  // namespace ternion
