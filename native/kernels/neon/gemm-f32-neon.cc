// fp32 GEMM, NEON. Packed layout: panels of 8 output channels; panel p holds, for k = 0..K-1,
// the 8 weights W[8p .. 8p+7][k] (zeros past N), i.e. [ceil(N/8)][K][8] floats.
// Microkernel: up to 8 rows x 8 columns = 16 accumulators; A is read 4 k at a time and
// broadcast by lane (fmla by element), so one A load feeds 8 fmas.
#include "kernels/neon/common-neon.h"
#include "kernels/pack-f32-panels.h"

namespace ternion {
namespace kernels {
namespace neon_detail {
namespace {

constexpr int kMR = 8;

// MR rows, one panel, k in order for each output (one fused multiply-add per k).
template <int MR>
inline void f32_block(int K, const float* A, size_t lda, const float* w, float32x4_t out[][2]) {
  // Local accumulators, copied out at the end: writing through `out` inside the loop makes
  // GCC 12 store every accumulator to the stack on each iteration.
  float32x4_t acc[MR][2];
  const float* a[MR];
  #pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    a[r] = A + r * lda;
    acc[r][0] = acc[r][1] = vdupq_n_f32(0.0f);
  }
  int k = 0;
  for (; k + 4 <= K; k += 4, w += 32) {
    float32x4_t av[MR];
    #pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) av[r] = vld1q_f32(a[r] + k);
#define TERNION_F32_STEP(j)                                                  \
  {                                                                          \
    const float32x4_t w0 = vld1q_f32(w + 8 * (j)), w1 = vld1q_f32(w + 8 * (j) + 4); \
    for (int r = 0; r < MR; ++r) {                                           \
      acc[r][0] = vfmaq_laneq_f32(acc[r][0], w0, av[r], j);                  \
      acc[r][1] = vfmaq_laneq_f32(acc[r][1], w1, av[r], j);                  \
    }                                                                        \
  }
    TERNION_F32_STEP(0)
    TERNION_F32_STEP(1)
    TERNION_F32_STEP(2)
    TERNION_F32_STEP(3)
#undef TERNION_F32_STEP
  }
  for (; k < K; ++k, w += 8) {
    const float32x4_t w0 = vld1q_f32(w), w1 = vld1q_f32(w + 4);
    #pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const float32x4_t av = vdupq_n_f32(a[r][k]);
      acc[r][0] = vfmaq_f32(acc[r][0], w0, av);
      acc[r][1] = vfmaq_f32(acc[r][1], w1, av);
    }
  }
  #pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) out[r][0] = acc[r][0], out[r][1] = acc[r][1];
}

// Batch 1 (GEMV): one row streams the panel; four partial sums (k mod 4) break the fma
// latency chain, combined at the end (within the fp32 tolerance of the contract).
inline void f32_gemv_panel(int K, const float* a, const float* w, float32x4_t acc[][2]) {
  float32x4_t s[4][2];
  for (int j = 0; j < 4; ++j) s[j][0] = s[j][1] = vdupq_n_f32(0.0f);
  int k = 0;
  for (; k + 4 <= K; k += 4, w += 32) {
    __builtin_prefetch(w + 256);
    const float32x4_t av = vld1q_f32(a + k);
    s[0][0] = vfmaq_laneq_f32(s[0][0], vld1q_f32(w + 0), av, 0);
    s[0][1] = vfmaq_laneq_f32(s[0][1], vld1q_f32(w + 4), av, 0);
    s[1][0] = vfmaq_laneq_f32(s[1][0], vld1q_f32(w + 8), av, 1);
    s[1][1] = vfmaq_laneq_f32(s[1][1], vld1q_f32(w + 12), av, 1);
    s[2][0] = vfmaq_laneq_f32(s[2][0], vld1q_f32(w + 16), av, 2);
    s[2][1] = vfmaq_laneq_f32(s[2][1], vld1q_f32(w + 20), av, 2);
    s[3][0] = vfmaq_laneq_f32(s[3][0], vld1q_f32(w + 24), av, 3);
    s[3][1] = vfmaq_laneq_f32(s[3][1], vld1q_f32(w + 28), av, 3);
  }
  for (; k < K; ++k, w += 8) {
    const float32x4_t av = vdupq_n_f32(a[k]);
    s[0][0] = vfmaq_f32(s[0][0], vld1q_f32(w), av);
    s[0][1] = vfmaq_f32(s[0][1], vld1q_f32(w + 4), av);
  }
  for (int h = 0; h < 2; ++h)
    acc[0][h] = vaddq_f32(vaddq_f32(s[0][h], s[1][h]), vaddq_f32(s[2][h], s[3][h]));
}

// GEMV: a lone row (M == 1) splits K over four chains; a row left after the 8-row blocks of a
// larger M runs the blocked loop, so its bits do not depend on where it falls in M.
template <int MR, bool GEMV = false>
void f32_rows(int K, const float* A, size_t lda, const float* panel, const float* bias, const float* clamp,
              float* C, size_t ldc, int nb, int cnt) {
  float32x4_t acc[MR][2];
  if (GEMV)
    f32_gemv_panel(K, A, panel, acc);
  else
    f32_block<MR>(K, A, lda, panel, acc);
  float b[kNR] = {0, 0, 0, 0, 0, 0, 0, 0};
  if (bias)
    for (int i = 0; i < cnt; ++i) b[i] = bias[nb + i];
  const float32x4_t b0 = vld1q_f32(b), b1 = vld1q_f32(b + 4);
  #pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    float32x4_t v0 = vaddq_f32(acc[r][0], b0), v1 = vaddq_f32(acc[r][1], b1);
    if (clamp) {
      const float32x4_t lo = vdupq_n_f32(clamp[0]), hi = vdupq_n_f32(clamp[1]);
      v0 = clamp4(v0, lo, hi);
      v1 = clamp4(v1, lo, hi);
    }
    float* c = C + r * ldc + nb;
    if (cnt == kNR) {
      vst1q_f32(c, v0);
      vst1q_f32(c + 4, v1);
    } else {
      float t[kNR];
      vst1q_f32(t, v0);
      vst1q_f32(t + 4, v1);
      store_partial(c, t, cnt);
    }
  }
}

using F32RowsFn = void (*)(int, const float*, size_t, const float*, const float*, const float*, float*,
                           size_t, int, int);
constexpr F32RowsFn kF32Rows[kMR + 1] = {nullptr,        f32_rows<1>, f32_rows<2>,
                                         f32_rows<3>,    f32_rows<4>, f32_rows<5>,
                                         f32_rows<6>,    f32_rows<7>, f32_rows<8>};

}  // namespace

size_t f32_packed_size(int N, int K) {
  const size_t panels = (static_cast<size_t>(N) + kNR - 1) / kNR;
  return round_up(std::max<size_t>(panels * K * kNR * sizeof(float), 1), 64);
}

void f32_pack(const float* W, int N, int K, void* packed) { pack_f32_panels_nk<kNR>(W, N, K, static_cast<float*>(packed)); }

void f32_pack_kn(const float* B, int K, int N, size_t ldb, void* packed) {
  pack_f32_panels_kn<kNR>(B, K, N, ldb, static_cast<float*>(packed));
}

void f32_gemm(int M, int N, int K, const float* A, size_t lda, const void* packed,
              const float* bias, const float* clamp, float* C, size_t ldc, int n0, int n1) {
  (void)N;
  const float* W = static_cast<const float*>(packed);
  const size_t panel_floats = static_cast<size_t>(K) * kNR;
  // Columns in chunks whose packed weights stay in L2 while all rows pass over them.
  const int chunk = std::max<int>(1, static_cast<int>(262144 / std::max<size_t>(panel_floats * 4, 1))) * kNR;
  for (int nc = n0; nc < n1; nc += chunk) {
    const int nc1 = std::min(n1, nc + chunk);
    for (int m0 = 0; m0 < M; m0 += kMR) {
      const int mr = std::min(kMR, M - m0);
      const F32RowsFn rows = M == 1 ? f32_rows<1, true> : kF32Rows[mr];
      for (int nb = nc; nb < nc1; nb += kNR)
        rows(K, A + m0 * lda, lda, W + static_cast<size_t>(nb / kNR) * panel_floats, bias,
                     clamp, C + m0 * ldc, ldc, nb, std::min(kNR, nc1 - nb));
    }
  }
}

}  // namespace neon_detail
}  // namespace kernels
}  // namespace ternion
