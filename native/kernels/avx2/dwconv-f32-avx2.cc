// Depthwise fp32 convolution, AVX2, bit-exact with the scalar reference (kernels.h): per lane
// the same rounded product and rounded sum in tap order (vmulps then vaddps, never an FMA).
//
// A pixel's channels go in blocks of 32 (four ymm accumulators), then of 8, then a masked
// tail; each tap is one load of the pixel's inputs and one of the weights (taps outside the
// input, null, are skipped). Two pixels share a weight load when both are left. The clamp is
// clamp8 (common-avx2.h).
#include "kernels/avx2/common-avx2.h"

namespace ternion {
namespace kernels {
namespace avx2 {

namespace {

// V vectors of 8 channels from c, for PX pixels (1 or 2) at once; `mask` limits the last
// vector when PARTIAL (V == 1 then).
template <int V, int PX, bool PARTIAL>
__attribute__((always_inline)) inline void dw_f32_block(const float* const* const* px, size_t c, int taps, const float* w,
                                                         size_t C, const float* bias, __m256 lo, __m256 hi, float* const* o,
                                                         __m256i mask) {
  auto load = [&](const float* p) __attribute__((always_inline)) {
    return PARTIAL ? _mm256_maskload_ps(p, mask) : _mm256_loadu_ps(p);
  };
  __m256 acc[PX][V];
  #pragma GCC unroll 4
  for (int v = 0; v < V; ++v) {
    const __m256 b = bias ? load(bias + c + 8 * v) : _mm256_setzero_ps();
    #pragma GCC unroll 2
    for (int i = 0; i < PX; ++i) acc[i][v] = b;
  }
  for (int t = 0; t < taps; ++t) {
    const float* wt = w + static_cast<size_t>(t) * C + c;
    #pragma GCC unroll 4
    for (int v = 0; v < V; ++v) {
      const __m256 wv = load(wt + 8 * v);
      #pragma GCC unroll 2
      for (int i = 0; i < PX; ++i)
        if (px[i][t]) acc[i][v] = _mm256_add_ps(acc[i][v], _mm256_mul_ps(load(px[i][t] + c + 8 * v), wv));
    }
  }
  #pragma GCC unroll 2
  for (int i = 0; i < PX; ++i) {
    #pragma GCC unroll 4
    for (int v = 0; v < V; ++v) {
      const __m256 r = clamp8(acc[i][v], lo, hi);
      if (PARTIAL) _mm256_maskstore_ps(o[i] + c + 8 * v, mask, r);
      else _mm256_storeu_ps(o[i] + c + 8 * v, r);
    }
  }
}

template <int PX>
void dw_f32_pixels(const float* const* const* px, int C, int taps, const float* w, const float* bias, __m256 lo,
                   __m256 hi, float* const* o) {
  const size_t n = static_cast<size_t>(C);
  const __m256i all = _mm256_set1_epi32(-1);
  size_t c = 0;
  for (; c + 32 <= n; c += 32) dw_f32_block<4, PX, false>(px, c, taps, w, n, bias, lo, hi, o, all);
  for (; c + 8 <= n; c += 8) dw_f32_block<1, PX, false>(px, c, taps, w, n, bias, lo, hi, o, all);
  if (c < n) dw_f32_block<1, PX, true>(px, c, taps, w, n, bias, lo, hi, o, lane_mask(static_cast<int>(n - c)));
}

}  // namespace

void dw_f32(int P, int C, int taps, const float* const* in, const float* w, const float* bias,
            float lo, float hi, float* out, size_t ldo) {
  const __m256 vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
  int p = 0;
  for (; p + 2 <= P; p += 2) {
    const float* const* px[2] = {in + static_cast<size_t>(p) * taps, in + static_cast<size_t>(p + 1) * taps};
    float* o[2] = {out + static_cast<size_t>(p) * ldo, out + static_cast<size_t>(p + 1) * ldo};
    dw_f32_pixels<2>(px, C, taps, w, bias, vlo, vhi, o);
  }
  if (p < P) {
    const float* const* px[1] = {in + static_cast<size_t>(p) * taps};
    float* o[1] = {out + static_cast<size_t>(p) * ldo};
    dw_f32_pixels<1>(px, C, taps, w, bias, vlo, vhi, o);
  }
}

}  // namespace avx2
}  // namespace kernels
}  // namespace ternion
