// fp32 transpose, AVX2: 8 x 8 blocks in registers (unpack, shuffle, 128-bit permute). Edge blocks
// load only the valid columns (masked loads) and rows (zeros stand in for the rest); a block
// with fewer than 8 valid rows stores the valid part of each output row in 4 / 2 / 1-lane moves
// (masked stores are slow on some cores). Moves only: every bit is kept.
#include <algorithm>

#include "kernels/avx2/common-avx2.h"

namespace ternion {
namespace kernels {
namespace avx2 {
namespace {

// v[i] becomes column i of the 8 x 8 block whose rows v held.
inline void transpose8x8(__m256 v[8]) {
  const __m256 t0 = _mm256_unpacklo_ps(v[0], v[1]), t1 = _mm256_unpackhi_ps(v[0], v[1]);
  const __m256 t2 = _mm256_unpacklo_ps(v[2], v[3]), t3 = _mm256_unpackhi_ps(v[2], v[3]);
  const __m256 t4 = _mm256_unpacklo_ps(v[4], v[5]), t5 = _mm256_unpackhi_ps(v[4], v[5]);
  const __m256 t6 = _mm256_unpacklo_ps(v[6], v[7]), t7 = _mm256_unpackhi_ps(v[6], v[7]);
  const __m256 s0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
  const __m256 s1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
  const __m256 s2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
  const __m256 s3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
  const __m256 s4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0));
  const __m256 s5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
  const __m256 s6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0));
  const __m256 s7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
  v[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
  v[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
  v[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
  v[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
  v[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
  v[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
  v[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
  v[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

inline __m256i first_lanes(int n) { return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)); }

// Stores lanes [0, n) of v, n < 8, in 4 / 2 / 1-lane moves (n is the same for a whole call:
// the branches predict).
inline void store_first(float* d, __m256 v, int n) {
  __m128 x = _mm256_castps256_ps128(v);
  if (n >= 4) {
    _mm_storeu_ps(d, x);
    d += 4;
    n -= 4;
    x = _mm256_extractf128_ps(v, 1);
  }
  if (n >= 2) {
    _mm_storel_pi(reinterpret_cast<__m64*>(d), x);
    d += 2;
    n -= 2;
    x = _mm_movehl_ps(x, x);
  }
  if (n >= 1) _mm_store_ss(d, x);
}

}  // namespace

void transpose_f32(const float* src, int rows, int cols, size_t ld_src, float* dst, size_t ld_dst) {
  for (int r0 = 0; r0 < rows; r0 += 8) {
    const int nr = std::min(8, rows - r0);
    const float* s = src + r0 * ld_src;
    for (int c0 = 0; c0 < cols; c0 += 8) {
      const int nc = std::min(8, cols - c0);
      __m256 v[8];
      if (nc == 8) {
        for (int i = 0; i < 8; ++i) v[i] = i < nr ? _mm256_loadu_ps(s + i * ld_src + c0) : _mm256_setzero_ps();
      } else {
        const __m256i m = first_lanes(nc);
        for (int i = 0; i < 8; ++i) v[i] = i < nr ? _mm256_maskload_ps(s + i * ld_src + c0, m) : _mm256_setzero_ps();
      }
      transpose8x8(v);
      float* d = dst + c0 * ld_dst + r0;
      if (nr == 8) {
        for (int j = 0; j < nc; ++j) _mm256_storeu_ps(d + j * ld_dst, v[j]);
      } else {
        for (int j = 0; j < nc; ++j) store_first(d + j * ld_dst, v[j], nr);
      }
    }
  }
}

}  // namespace avx2
}  // namespace kernels
}  // namespace ternion
