// int8 GEMM, baseline NEON (no dot-product extension). Packed layout: panels of 8 output
// channels; panel p holds, for k = 0..Kp-1 (Kp = K rounded up to 4), the 8 weights
// W[8p .. 8p+7][k] as int8 (zeros past N and past K), i.e. [ceil(N/8)][Kp][8].
//
// Exactness: A is first widened to x = a - a_zero in int16 ([-255, 255], so a_zero needs no
// correction term), weights are widened to int16, and every product goes straight into an
// int32 lane with smlal/smlal2 by element. No two products are ever summed in int16 (255 * 128
// * 2 would overflow), so the result is the exact int32 sum of kernels.h.
#include "kernels/neon/common-neon.h"

namespace ternion {
namespace kernels {
namespace neon_detail {
namespace {

constexpr int kMR = 8;

// MR rows of x (int16, row stride xs, Kp entries) times one panel; acc[r][0..1] = 8 columns.
// For MR <= 2 the k steps alternate between two accumulator sets (exact: integer sums), so
// batch 1 is not bound by the smlal latency chain.
template <int MR>
inline void q8_block(int Kp, const int16_t* x, size_t xs, const int8_t* w, int32x4_t out[][2]) {
  constexpr int P = MR <= 2 ? 2 : 1;
  int32x4_t acc[MR][2][P];
  #pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
    for (int p = 0; p < P; ++p) acc[r][0][p] = acc[r][1][p] = vdupq_n_s32(0);
  for (int k = 0; k < Kp; k += 4, w += 32) {
    if (MR <= 2) __builtin_prefetch(w + 512);
    const int8x16_t b01 = vld1q_s8(w), b23 = vld1q_s8(w + 16);
    const int16x8_t w0 = vmovl_s8(vget_low_s8(b01)), w1 = vmovl_high_s8(b01);
    const int16x8_t w2 = vmovl_s8(vget_low_s8(b23)), w3 = vmovl_high_s8(b23);
    #pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const int16x4_t xv = vld1_s16(x + r * xs + k);
      acc[r][0][0] = vmlal_lane_s16(acc[r][0][0], vget_low_s16(w0), xv, 0);
      acc[r][1][0] = vmlal_high_lane_s16(acc[r][1][0], w0, xv, 0);
      acc[r][0][1 % P] = vmlal_lane_s16(acc[r][0][1 % P], vget_low_s16(w1), xv, 1);
      acc[r][1][1 % P] = vmlal_high_lane_s16(acc[r][1][1 % P], w1, xv, 1);
      acc[r][0][0] = vmlal_lane_s16(acc[r][0][0], vget_low_s16(w2), xv, 2);
      acc[r][1][0] = vmlal_high_lane_s16(acc[r][1][0], w2, xv, 2);
      acc[r][0][1 % P] = vmlal_lane_s16(acc[r][0][1 % P], vget_low_s16(w3), xv, 3);
      acc[r][1][1 % P] = vmlal_high_lane_s16(acc[r][1][1 % P], w3, xv, 3);
    }
  }
  #pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
    for (int h = 0; h < 2; ++h) out[r][h] = P == 2 ? vaddq_s32(acc[r][h][0], acc[r][h][P - 1]) : acc[r][h][0];
}

template <int MR>
void q8_rows(int Kp, const int16_t* x, size_t xs, const int8_t* panel, const Epi& e,
             const PanelEpi& pe, void* C, size_t ldc, int m0, int nb, int cnt) {
  int32x4_t acc[MR][2];
  q8_block<MR>(Kp, x, xs, panel, acc);
  #pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) epi_store_i(e, pe, acc[r][0], acc[r][1], C, (m0 + r) * ldc + nb, cnt);
}

using Q8RowsFn = void (*)(int, const int16_t*, size_t, const int8_t*, const Epi&, const PanelEpi&,
                          void*, size_t, int, int, int);
constexpr Q8RowsFn kQ8Rows[kMR + 1] = {nullptr,    q8_rows<1>, q8_rows<2>, q8_rows<3>, q8_rows<4>,
                                       q8_rows<5>, q8_rows<6>, q8_rows<7>, q8_rows<8>};

inline int padded_k(int K) { return (K + 3) & ~3; }

}  // namespace

size_t q8_packed_size(int N, int K) {
  const size_t panels = (static_cast<size_t>(N) + kNR - 1) / kNR;
  return round_up(std::max<size_t>(panels * padded_k(K) * kNR, 1), 64);
}

void q8_pack(const int8_t* W, int N, int K, void* packed) {
  int8_t* dst = static_cast<int8_t*>(packed);
  const int panels = (N + kNR - 1) / kNR, Kp = padded_k(K);
  for (int p = 0; p < panels; ++p)
    for (int k = 0; k < Kp; ++k)
      for (int c = 0; c < kNR; ++c) {
        const int n = p * kNR + c;
        *dst++ = (n < N && k < K) ? W[static_cast<size_t>(n) * K + k] : 0;
      }
}

void q8_gemm(int M, int N, int K, const uint8_t* A, size_t lda, uint8_t a_zero,
             const void* packed, const Requant* rq, void* C, size_t ldc, int n0, int n1) {
  (void)N;
  const int8_t* W = static_cast<const int8_t*>(packed);
  const int Kp = padded_k(K);
  const size_t panel_bytes = static_cast<size_t>(Kp) * kNR;
  const Epi e(*rq);
  // Columns in chunks of about 256 KB of packed weights, reused by every row block.
  const int chunk = std::max<int>(1, static_cast<int>(262144 / std::max<size_t>(panel_bytes, 1))) * kNR;
  const int mb = std::min(M, kMR);
  Scratch xbuf(static_cast<size_t>(mb) * Kp * sizeof(int16_t));
  int16_t* x = xbuf.as<int16_t>();
  for (int nc = n0; nc < n1; nc += chunk) {
    const int nc1 = std::min(n1, nc + chunk);
    for (int m0 = 0; m0 < M; m0 += kMR) {
      const int mr = std::min(kMR, M - m0);
      widen_rows(A + m0 * lda, lda, mr, K, a_zero, x, Kp);
      for (int nb = nc; nb < nc1; nb += kNR) {
        const int cnt = std::min(kNR, nc1 - nb);
        const PanelEpi pe = panel_epi(*rq, nb, cnt);
        kQ8Rows[mr](Kp, x, Kp, W + static_cast<size_t>(nb / kNR) * panel_bytes, e, pe, C, ldc, m0,
                    nb, cnt);
      }
    }
  }
}

}  // namespace neon_detail
}  // namespace kernels
}  // namespace ternion
