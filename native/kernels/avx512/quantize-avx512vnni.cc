// Activation quantization, AVX-512, bit-exact with the scalar reference (kernels.h): vfmadd is
// the IEEE fused multiply-add with the same reciprocal, max / min take the bound when v is NaN
// (their second operand), and vcvtps2dq under the default MXCSR rounds half to even. 16 values
// per step; the tail goes through masked loads and stores (nothing read or written past n).
#include "common-avx512vnni.h"

namespace ternion {
namespace kernels {
namespace avx512vnni {

void quantize_u8(const float* x, uint8_t* y, size_t n, float scale, int32_t zp, int32_t qmax) {
  const __m512 r = _mm512_set1_ps(1.0f / scale), z = _mm512_set1_ps(static_cast<float>(zp));
  const __m512 lo = _mm512_setzero_ps(), hi = _mm512_set1_ps(static_cast<float>(qmax));
  auto q16 = [&](__m512 v) __attribute__((always_inline)) {
    v = _mm512_min_ps(_mm512_max_ps(_mm512_fmadd_ps(v, r, z), lo), hi);  // max(NaN, lo) = lo
    return _mm512_cvtps_epi32(v);                                        // in [0, qmax]: vpmovdb is exact
  };
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m512i a = q16(_mm512_loadu_ps(x + i)), b = q16(_mm512_loadu_ps(x + i + 16));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i), _mm512_cvtepi32_epi8(a));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i + 16), _mm512_cvtepi32_epi8(b));
  }
  for (; i < n; i += 16) {
    const __mmask16 m = lane_mask(static_cast<int>(n - i < 16 ? n - i : 16));
    _mm512_mask_cvtepi32_storeu_epi8(y + i, m, q16(_mm512_maskz_loadu_ps(m, x + i)));
  }
}

}  // namespace avx512vnni
}  // namespace kernels
}  // namespace ternion
