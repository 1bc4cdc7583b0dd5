// Depthwise fp32 convolution, AVX-512, bit-exact with the scalar reference (kernels.h): per lane
// the same rounded product and rounded sum in tap order (vmulps then vaddps, never an FMA).
//
// The AVX2 kernel's loop at twice the width: a pixel's channels go in blocks of 64 (four zmm
// accumulators), then one of 48 or 32, then of 16, then a masked tail (masked loads and stores neither read nor write
// past C); taps outside the input (null) are skipped; two pixels share a weight load when both
// are left. The clamp is min(hi, max(lo, v)): vmaxps / vminps return their second operand when
// unordered or equal, so NaN passes and -0 stays, as in the reference.
#include "common-avx512vnni.h"

namespace ternion {
namespace kernels {
namespace avx512vnni {

namespace {

// V vectors of 16 channels from c, for PX pixels (1, 2, 4 or 8) at once; `mask` limits the last
// vector when PARTIAL (V == 1 then).
template <int V, int PX, bool PARTIAL>
__attribute__((always_inline)) inline void dw_f32_block(const float* const* const* px, size_t c, int taps, const float* w,
                                                         size_t C, const float* bias, __m512 lo, __m512 hi, float* const* o,
                                                         __mmask16 mask) {
  auto load = [&](const float* p) __attribute__((always_inline)) {
    return PARTIAL ? _mm512_maskz_loadu_ps(mask, p) : _mm512_loadu_ps(p);
  };
  __m512 acc[PX][V];
#pragma GCC unroll 4
  for (int v = 0; v < V; ++v) {
    const __m512 b = bias ? load(bias + c + 16 * v) : _mm512_setzero_ps();
#pragma GCC unroll 8
    for (int i = 0; i < PX; ++i) acc[i][v] = b;
  }
  for (int t = 0; t < taps; ++t) {
    const float* wt = w + static_cast<size_t>(t) * C + c;
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) {
      const __m512 wv = load(wt + 16 * v);
#pragma GCC unroll 8
      for (int i = 0; i < PX; ++i)
        if (px[i][t]) acc[i][v] = _mm512_add_ps(acc[i][v], _mm512_mul_ps(load(px[i][t] + c + 16 * v), wv));
    }
  }
#pragma GCC unroll 8
  for (int i = 0; i < PX; ++i) {
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) {
      const __m512 r = _mm512_min_ps(hi, _mm512_max_ps(lo, acc[i][v]));
      if (PARTIAL) _mm512_mask_storeu_ps(o[i] + c + 16 * v, mask, r);
      else _mm512_storeu_ps(o[i] + c + 16 * v, r);
    }
  }
}

template <int PX>
void dw_f32_pixels(const float* const* const* px, int C, int taps, const float* w, const float* bias, __m512 lo,
                   __m512 hi, float* const* o) {
  const size_t n = static_cast<size_t>(C);
  size_t c = 0;
  for (; c + 64 <= n; c += 64) dw_f32_block<4, PX, false>(px, c, taps, w, n, bias, lo, hi, o, 0xFFFF);
  // 32 or 48 channels left (MobileNetV2's 32 and 96): one pass over the taps' pointers.
  if (c + 48 <= n) dw_f32_block<3, PX, false>(px, c, taps, w, n, bias, lo, hi, o, 0xFFFF), c += 48;
  if (c + 32 <= n) dw_f32_block<2, PX, false>(px, c, taps, w, n, bias, lo, hi, o, 0xFFFF), c += 32;
  for (; c + 16 <= n; c += 16) dw_f32_block<1, PX, false>(px, c, taps, w, n, bias, lo, hi, o, 0xFFFF);
  if (c < n) dw_f32_block<1, PX, true>(px, c, taps, w, n, bias, lo, hi, o, lane_mask(static_cast<int>(n - c)));
}

}  // namespace

// PX pixels from p at once.
template <int PX>
__attribute__((always_inline)) inline void dw_f32_run(int p, int C, int taps, const float* const* in, const float* w, const float* bias,
                                                       __m512 lo, __m512 hi, float* out, size_t ldo) {
  const float* const* px[PX];
  float* o[PX];
  for (int i = 0; i < PX; ++i) {
    px[i] = in + static_cast<size_t>(p + i) * taps;
    o[i] = out + static_cast<size_t>(p + i) * ldo;
  }
  dw_f32_pixels<PX>(px, C, taps, w, bias, lo, hi, o);
}

void dw_f32(int P, int C, int taps, const float* const* in, const float* w, const float* bias,
            float lo, float hi, float* out, size_t ldo) {
  const __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
  int p = 0;
  // Each accumulator is a chain of dependent adds, one per tap: few channels (16, 32) need more
  // pixels in flight to hide the add latency.
  if (C <= 16)
    for (; p + 8 <= P; p += 8) dw_f32_run<8>(p, C, taps, in, w, bias, vlo, vhi, out, ldo);
  else if (C <= 32)
    for (; p + 4 <= P; p += 4) dw_f32_run<4>(p, C, taps, in, w, bias, vlo, vhi, out, ldo);
  for (; p + 2 <= P; p += 2) dw_f32_run<2>(p, C, taps, in, w, bias, vlo, vhi, out, ldo);
  if (p < P) dw_f32_run<1>(p, C, taps, in, w, bias, vlo, vhi, out, ldo);
}

}  // namespace avx512vnni
}  // namespace kernels
}  // namespace ternion
