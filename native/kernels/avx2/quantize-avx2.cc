// Activation quantization, AVX2, bit-exact with the scalar reference: vfmadd is the IEEE fused
// multiply-add with the same reciprocal, max/min take the bound when v is NaN (their second
// operand), and vroundps rounds half to even like the reference's magic-number addition on the
// clamped range.
#include "kernels/avx2/common-avx2.h"

namespace ternion {
namespace kernels {
namespace avx2 {

void quantize_u8(const float* x, uint8_t* y, size_t n, float scale, int32_t zp, int32_t qmax) {
  const __m256 r = _mm256_set1_ps(1.0f / scale), z = _mm256_set1_ps(static_cast<float>(zp));
  const __m256 lo = _mm256_setzero_ps(), hi = _mm256_set1_ps(static_cast<float>(qmax));
  auto q8 = [&](const float* p) __attribute__((always_inline)) {
    __m256 v = _mm256_fmadd_ps(_mm256_loadu_ps(p), r, z);
    v = _mm256_min_ps(_mm256_max_ps(v, lo), hi);  // max(NaN, lo) = lo
    return _mm256_cvtps_epi32(_mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  };
  size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    const __m256i a = _mm256_packs_epi32(q8(x + i), q8(x + i + 8));       // [0-3 8-11 | 4-7 12-15]
    const __m256i b = _mm256_packs_epi32(q8(x + i + 16), q8(x + i + 24));
    const __m256i c = _mm256_packus_epi16(a, b);                           // lanes interleaved by 4
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + i),
                        _mm256_permutevar8x32_epi32(c, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
  }
  for (; i + 8 <= n; i += 8) {
    const __m256i q = q8(x + i);
    const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(y + i), _mm_packus_epi16(w, w));
  }
  if (i < n) scalar_table()->quantize_u8(x + i, y + i, n - i, scale, zp, qmax);  // the tail: the reference itself
}

}  // namespace avx2
}  // namespace kernels
}  // namespace ternion
