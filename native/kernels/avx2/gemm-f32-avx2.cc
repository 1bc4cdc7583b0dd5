// fp32 GEMM, AVX2 + FMA.
//
// Packed layout: panels of 16 output channels; panel p holds, for k = 0..K-1, the 16 weights
// W[16p + j][k] (j = 0..15) as 64 contiguous bytes. Channels past N are zero. One k step of a
// panel is thus exactly two aligned ymm loads.
//
// GEMM (M >= 2): Goto-style blocking: K in blocks of ~256 (a 16 KB panel slice stays in L1
// while it is reused by every 6-row block of A), M in blocks of 96 rows (the A block stays in
// L2), and a 6x16 register tile (12 accumulators + 2 weight vectors + 1 broadcast = 15 ymm).
// Partial sums live in C between K blocks; bias is added at the first block, the clamp at the last.
// GEMV (M == 1): one pass over the weights, 4 independent accumulator pairs to cover the FMA
// latency, software prefetch ahead of the stream.
#include "kernels/avx2/common-avx2.h"
#include "kernels/pack-f32-panels.h"

namespace ternion {
namespace kernels {
namespace avx2 {

namespace {

constexpr int kNR = 16;

template <int MR>
__attribute__((always_inline)) inline void f32_tile(int kc, const float* A, size_t lda,
                                                    const float* B, float* C, size_t ldc,
                                                    int cols, bool first, bool last,
                                                    const float* bias, const float* clamp) {
  const __m256i m0 = lane_mask(cols), m1 = lane_mask(cols - 8);
  __m256 c0[MR], c1[MR];
  if (first) {
    __m256 b0 = _mm256_setzero_ps(), b1 = _mm256_setzero_ps();
    if (bias) {
      if (cols == 16) {
        b0 = _mm256_loadu_ps(bias);
        b1 = _mm256_loadu_ps(bias + 8);
      } else {
        b0 = _mm256_maskload_ps(bias, m0);
        b1 = _mm256_maskload_ps(bias + 8, m1);
      }
    }
    #pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) c0[r] = b0, c1[r] = b1;
  } else {
    #pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      if (cols == 16) {
        c0[r] = _mm256_loadu_ps(C + r * ldc);
        c1[r] = _mm256_loadu_ps(C + r * ldc + 8);
      } else {
        c0[r] = _mm256_maskload_ps(C + r * ldc, m0);
        c1[r] = _mm256_maskload_ps(C + r * ldc + 8, m1);
      }
    }
  }
  const float* a0 = A;
  const float* a3 = A + 3 * lda;
  for (int k = 0; k < kc; ++k) {
    const __m256 w0 = _mm256_load_ps(B + 16 * k);
    const __m256 w1 = _mm256_load_ps(B + 16 * k + 8);
    #pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const float* ap = r < 3 ? a0 + r * lda : a3 + (r - 3) * lda;
      const __m256 a = _mm256_broadcast_ss(ap + k);
      c0[r] = _mm256_fmadd_ps(a, w0, c0[r]);
      c1[r] = _mm256_fmadd_ps(a, w1, c1[r]);
    }
  }
  if (last && clamp) {
    const __m256 lo = _mm256_set1_ps(clamp[0]), hi = _mm256_set1_ps(clamp[1]);
    #pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) c0[r] = clamp8(c0[r], lo, hi), c1[r] = clamp8(c1[r], lo, hi);
  }
  #pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    if (cols == 16) {
      _mm256_storeu_ps(C + r * ldc, c0[r]);
      _mm256_storeu_ps(C + r * ldc + 8, c1[r]);
    } else {
      _mm256_maskstore_ps(C + r * ldc, m0, c0[r]);
      _mm256_maskstore_ps(C + r * ldc + 8, m1, c1[r]);
    }
  }
}

// Out-of-line instances so each has its own register allocation.
template <int MR>
__attribute__((noinline)) void f32_tile_fn(int kc, const float* A, size_t lda, const float* B,
                                           float* C, size_t ldc, int cols, bool first, bool last,
                                           const float* bias, const float* clamp) {
  f32_tile<MR>(kc, A, lda, B, C, ldc, cols, first, last, bias, clamp);
}

using TileFn = void (*)(int, const float*, size_t, const float*, float*, size_t, int, bool, bool,
                        const float*, const float*);
constexpr TileFn kTiles[7] = {nullptr,          f32_tile_fn<1>, f32_tile_fn<2>, f32_tile_fn<3>,
                              f32_tile_fn<4>, f32_tile_fn<5>, f32_tile_fn<6>};

// One row times one panel over all of K: 8 accumulators (4 k-phases x 2 halves).
void f32_gemv_panel(int K, const float* a, const float* B, float* c, int cols, const float* bias,
                    const float* clamp) {
  __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0, s4 = s0, s5 = s0, s6 = s0, s7 = s0;
  int k = 0;
  for (; k + 4 <= K; k += 4) {
    const float* b = B + 16 * k;
    _mm_prefetch(reinterpret_cast<const char*>(b) + 2048, _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(b) + 2048 + 64, _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(b) + 2048 + 128, _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(b) + 2048 + 192, _MM_HINT_T0);
    const __m256 x0 = _mm256_broadcast_ss(a + k), x1 = _mm256_broadcast_ss(a + k + 1);
    const __m256 x2 = _mm256_broadcast_ss(a + k + 2), x3 = _mm256_broadcast_ss(a + k + 3);
    s0 = _mm256_fmadd_ps(x0, _mm256_load_ps(b), s0);
    s1 = _mm256_fmadd_ps(x0, _mm256_load_ps(b + 8), s1);
    s2 = _mm256_fmadd_ps(x1, _mm256_load_ps(b + 16), s2);
    s3 = _mm256_fmadd_ps(x1, _mm256_load_ps(b + 24), s3);
    s4 = _mm256_fmadd_ps(x2, _mm256_load_ps(b + 32), s4);
    s5 = _mm256_fmadd_ps(x2, _mm256_load_ps(b + 40), s5);
    s6 = _mm256_fmadd_ps(x3, _mm256_load_ps(b + 48), s6);
    s7 = _mm256_fmadd_ps(x3, _mm256_load_ps(b + 56), s7);
  }
  for (; k < K; ++k) {
    const __m256 x = _mm256_broadcast_ss(a + k);
    s0 = _mm256_fmadd_ps(x, _mm256_load_ps(B + 16 * k), s0);
    s1 = _mm256_fmadd_ps(x, _mm256_load_ps(B + 16 * k + 8), s1);
  }
  s0 = _mm256_add_ps(_mm256_add_ps(s0, s2), _mm256_add_ps(s4, s6));
  s1 = _mm256_add_ps(_mm256_add_ps(s1, s3), _mm256_add_ps(s5, s7));
  const __m256i m0 = lane_mask(cols), m1 = lane_mask(cols - 8);
  if (bias) {
    s0 = _mm256_add_ps(s0, _mm256_maskload_ps(bias, m0));
    s1 = _mm256_add_ps(s1, _mm256_maskload_ps(bias + 8, m1));
  }
  if (clamp) {
    const __m256 lo = _mm256_set1_ps(clamp[0]), hi = _mm256_set1_ps(clamp[1]);
    s0 = clamp8(s0, lo, hi);
    s1 = clamp8(s1, lo, hi);
  }
  if (cols == 16) {
    _mm256_storeu_ps(c, s0);
    _mm256_storeu_ps(c + 8, s1);
  } else {
    _mm256_maskstore_ps(c, m0, s0);
    _mm256_maskstore_ps(c + 8, m1, s1);
  }
}

}  // namespace

size_t f32_packed_size(int N, int K) {
  return round_up(static_cast<size_t>(N), kNR) * static_cast<size_t>(K) * sizeof(float);
}

void f32_pack(const float* W, int N, int K, void* packed) { pack_f32_panels_nk<kNR>(W, N, K, static_cast<float*>(packed)); }

void f32_pack_kn(const float* B, int K, int N, size_t ldb, void* packed) {
  pack_f32_panels_kn<kNR>(B, K, N, ldb, static_cast<float*>(packed));
}

void f32_gemm(int M, int N, int K, const float* A, size_t lda, const void* packed,
              const float* bias, const float* clamp, float* C, size_t ldc, int n0, int n1) {
  const float* Wp = static_cast<const float*>(packed);
  const int p0 = n0 / kNR, p1 = (n1 + kNR - 1) / kNR;
  if (M <= 0 || n1 <= n0) return;
  if (M == 1) {
    for (int p = p0; p < p1; ++p) {
      const int col = p * kNR, cols = n1 - col < kNR ? n1 - col : kNR;
      f32_gemv_panel(K, A, Wp + static_cast<size_t>(p) * K * kNR, C + col, cols,
                     bias ? bias + col : nullptr, clamp);
    }
    return;
  }
  constexpr int kKC = 256, kMC = 96;
  const int kblocks = K > 0 ? (K + kKC - 1) / kKC : 1;
  const int kc_size = K > 0 ? (K + kblocks - 1) / kblocks : 0;
  for (int kb = 0; kb < kblocks; ++kb) {
    const int k0 = kb * kc_size;
    const int kc = K - k0 < kc_size ? K - k0 : kc_size;
    const bool first = kb == 0, last = kb == kblocks - 1;
    for (int mc0 = 0; mc0 < M; mc0 += kMC) {
      const int mc1 = M - mc0 < kMC ? M : mc0 + kMC;
      for (int p = p0; p < p1; ++p) {
        const int col = p * kNR, cols = n1 - col < kNR ? n1 - col : kNR;
        const float* B = Wp + (static_cast<size_t>(p) * K + k0) * kNR;
        for (int m = mc0; m < mc1; m += 6) {
          const int mr = mc1 - m < 6 ? mc1 - m : 6;
          kTiles[mr](kc, A + m * lda + k0, lda, B, C + m * ldc + col, ldc, cols, first, last,
                     bias ? bias + col : nullptr, clamp);
        }
      }
    }
  }
}

}  // namespace avx2
}  // namespace kernels
}  // namespace ternion
