// Low-bit (ternary / 4-bit) GEMM, baseline NEON, both forms of kernels.h.
//
// Packed layout: a 64-byte header (LbHeader), then panels of 8 output channels. Each group is
// padded to Gp = G rounded up to 4 (zero codes) and split into nch = Gp/4 chunks of 4 k. A panel
// is, for each group g in order:
//   codes:  nch chunks; chunk c holds k = 4c..4c+3 of the group for the 8 columns:
//           ternary: 8 bytes, byte col = sum_j (t & 3) << 2j   (2-bit two's complement)
//           4-bit:   8 uint16, lane col = sum_j (q & 15) << 4j (4-bit two's complement)
//   params: GroupScaled: float scale_pos[8], then (asym) float -scale_neg[8]
//           Folded:      int32 mult_pos[8],  then (asym) int32 mult_neg[8]
// so batch 1 streams one contiguous buffer, about 2 (or 4) bits per weight plus the scales.
//
// Computation: codes are sign-extended in registers (shl + sshr) to int16 lanes, one vector per
// k holding 8 columns, and multiplied by x = a - a_zero (int16, broadcast by lane) into int16
// accumulators: |t*x| <= 255, so 128 k (ternary) or 16 k (4-bit, |q*x| <= 1785) fit in int16
// before being widened into int32 (exact). Asymmetric ternary accumulates S = sum t*x and
// A = sum |t|*x; then P = (A+S)/2 and M = (A-S)/2 exactly. Each group then does, in group order,
// GroupScaled: sum = fma(scale_pos, P, sum); sum = fma(-scale_neg, M, sum)   (bit-exact order)
// Folded:      acc += mult_pos * P - mult_neg * M   (int32; equals sum_k w*x of the expanded
//              int8 weights exactly, since integer arithmetic is exact).
#include "kernels/neon/common-neon.h"

namespace ternion {
namespace kernels {
namespace neon_detail {
namespace {

constexpr int kMR = 4;
constexpr uint32_t kMagic = 0x3142544eu;  // "NTB1"

struct LbHeader {
  uint32_t magic;
  int32_t bits, N, K, G, form, asym;
  int32_t groups, Gp, nch;
  int32_t code_bytes, param_bytes, group_bytes;
  int32_t pad;
  uint64_t panel_bytes;
};
static_assert(sizeof(LbHeader) == 64, "lowbit header is one cache line");

LbHeader make_header(const LowbitWeights& w) {
  LbHeader h{};
  h.magic = kMagic;
  h.bits = w.bits;
  h.N = w.N;
  h.K = w.K;
  h.G = w.G > 0 ? w.G : w.K;
  h.form = static_cast<int32_t>(w.form);
  h.asym = (w.asym && w.bits == 2) ? 1 : 0;  // asymmetric scales exist for ternary only
  h.groups = h.G > 0 ? h.K / h.G : 0;
  h.Gp = (h.G + 3) & ~3;
  h.nch = h.Gp / 4;
  h.code_bytes = h.nch * (w.bits == 2 ? 8 : 16);
  h.param_bytes = (h.asym ? 2 : 1) * kNR * 4;
  h.group_bytes = h.code_bytes + h.param_bytes;
  h.panel_bytes = static_cast<uint64_t>(h.groups) * h.group_bytes;
  return h;
}

// x for the low-bit kernels: each group's G values followed by Gp - G zeros.
void widen_rows_grouped(const uint8_t* A, size_t lda, int rows, const LbHeader& h, uint8_t a_zero,
                        int16_t* x, size_t xs) {
  if (h.Gp == h.G) {
    widen_rows(A, lda, rows, h.K, a_zero, x, xs);
    return;
  }
  for (int r = 0; r < rows; ++r) {
    const uint8_t* a = A + r * lda;
    int16_t* d = x + r * xs;
    for (int g = 0; g < h.groups; ++g) {
      for (int i = 0; i < h.G; ++i) d[i] = static_cast<int16_t>(a[g * h.G + i] - a_zero);
      for (int i = h.G; i < h.Gp; ++i) d[i] = 0;
      d += h.Gp;
    }
  }
}

// acc += t * x[J] (int16, mla by element). GCC 12 implements vmlaq_lane_s16 as generic vector
// arithmetic and then splits it into a scalar ldrsh/umov + dup per row and k (seen in objdump),
// doubling the inner loop; the asm keeps it one instruction. "x" = v0-v15, as the .h by-element
// form requires.
template <int J>
inline int16x8_t mla_lane(int16x8_t acc, int16x8_t t, int16x4_t x) {
  __asm__("mla %0.8h, %1.8h, %2.h[%3]" : "+w"(acc) : "w"(t), "x"(x), "i"(J));
  return acc;
}

template <int MR, int BITS, bool ASYM, bool FOLDED>
void lb_rows(const LbHeader& h, const uint8_t* pp, const int16_t* x, size_t xs, const Epi& e,
             const PanelEpi& pe, void* C, size_t ldc, int m0, int nb, int cnt) {
  constexpr int P = MR == 1 ? 2 : 1;            // batch 1: two chains for latency
  constexpr int SEG = BITS == 2 ? 32 : 4;       // chunks (of 4 k) per int16 segment
  constexpr int CB = BITS == 2 ? 8 : 16;        // code bytes per chunk
  constexpr int SHR = BITS == 2 ? 14 : 12;
  const int nch = h.nch;
  float32x4_t fs[MR][2];
  int32x4_t is[MR][2];
  #pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    fs[r][0] = fs[r][1] = vdupq_n_f32(0.0f);
    is[r][0] = is[r][1] = vdupq_n_s32(0);
  }
  size_t xo = 0;
  for (int g = 0; g < h.groups; ++g) {
    int32x4_t S[MR][2], Ab[MR][2];
    #pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) S[r][0] = S[r][1] = Ab[r][0] = Ab[r][1] = vdupq_n_s32(0);
    for (int c0 = 0; c0 < nch; c0 += SEG) {
      const int c1 = std::min(nch, c0 + SEG);
      int16x8_t s[MR][P], a[MR][P];
      #pragma GCC unroll 8
      for (int r = 0; r < MR; ++r)
        for (int p = 0; p < P; ++p) s[r][p] = a[r][p] = vdupq_n_s16(0);
      for (int c = c0; c < c1; ++c, pp += CB, xo += 4) {
        if (MR == 1) __builtin_prefetch(pp + 512);
        const int16x8_t v = BITS == 2 ? vreinterpretq_s16_u16(vmovl_u8(vld1_u8(pp)))
                                      : vld1q_s16(reinterpret_cast<const int16_t*>(pp));
        int16x4_t xv[MR];
        #pragma GCC unroll 8
        for (int r = 0; r < MR; ++r) xv[r] = vld1_s16(x + r * xs + xo);
#define TERNION_LB_STEP(j)                                                               \
  {                                                                                      \
    const int16x8_t t = vshrq_n_s16(vshlq_n_s16(v, BITS == 2 ? 14 - 2 * (j) : 12 - 4 * (j)), SHR); \
    for (int r = 0; r < MR; ++r) s[r][(j) % P] = mla_lane<j>(s[r][(j) % P], t, xv[r]); \
    if (ASYM) {                                                                          \
      const int16x8_t at = vabsq_s16(t);                                                 \
      for (int r = 0; r < MR; ++r) a[r][(j) % P] = mla_lane<j>(a[r][(j) % P], at, xv[r]); \
    }                                                                                    \
  }
        TERNION_LB_STEP(0)
        TERNION_LB_STEP(1)
        TERNION_LB_STEP(2)
        TERNION_LB_STEP(3)
#undef TERNION_LB_STEP
      }
      #pragma GCC unroll 8
      for (int r = 0; r < MR; ++r) {
        const int16x8_t sc = P == 2 ? vaddq_s16(s[r][0], s[r][P - 1]) : s[r][0];
        S[r][0] = vaddw_s16(S[r][0], vget_low_s16(sc));
        S[r][1] = vaddw_high_s16(S[r][1], sc);
        if (ASYM) {
          const int16x8_t ac = P == 2 ? vaddq_s16(a[r][0], a[r][P - 1]) : a[r][0];
          Ab[r][0] = vaddw_s16(Ab[r][0], vget_low_s16(ac));
          Ab[r][1] = vaddw_high_s16(Ab[r][1], ac);
        }
      }
    }
    if (FOLDED) {
      const int32_t* m = reinterpret_cast<const int32_t*>(pp);
      const int32x4_t mp[2] = {vld1q_s32(m), vld1q_s32(m + 4)};
      if (ASYM) {
        const int32x4_t mn[2] = {vld1q_s32(m + 8), vld1q_s32(m + 12)};
        #pragma GCC unroll 8
        for (int r = 0; r < MR; ++r)
          for (int k = 0; k < 2; ++k) {
            const int32x4_t Pv = vshrq_n_s32(vaddq_s32(Ab[r][k], S[r][k]), 1);
            const int32x4_t Mv = vshrq_n_s32(vsubq_s32(Ab[r][k], S[r][k]), 1);
            is[r][k] = vmlsq_s32(vmlaq_s32(is[r][k], Pv, mp[k]), Mv, mn[k]);
          }
      } else {
        #pragma GCC unroll 8
        for (int r = 0; r < MR; ++r)
          for (int k = 0; k < 2; ++k) is[r][k] = vmlaq_s32(is[r][k], S[r][k], mp[k]);
      }
    } else {
      const float* sc = reinterpret_cast<const float*>(pp);
      const float32x4_t sp[2] = {vld1q_f32(sc), vld1q_f32(sc + 4)};
      if (ASYM) {
        const float32x4_t sn[2] = {vld1q_f32(sc + 8), vld1q_f32(sc + 12)};  // already negated
        #pragma GCC unroll 8
        for (int r = 0; r < MR; ++r)
          for (int k = 0; k < 2; ++k) {
            const int32x4_t Pv = vshrq_n_s32(vaddq_s32(Ab[r][k], S[r][k]), 1);
            const int32x4_t Mv = vshrq_n_s32(vsubq_s32(Ab[r][k], S[r][k]), 1);
            fs[r][k] = vfmaq_f32(fs[r][k], sp[k], vcvtq_f32_s32(Pv));
            fs[r][k] = vfmaq_f32(fs[r][k], sn[k], vcvtq_f32_s32(Mv));
          }
      } else {
        #pragma GCC unroll 8
        for (int r = 0; r < MR; ++r)
          for (int k = 0; k < 2; ++k) fs[r][k] = vfmaq_f32(fs[r][k], sp[k], vcvtq_f32_s32(S[r][k]));
      }
    }
    pp += h.param_bytes;
  }
  #pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    const size_t index = (m0 + r) * ldc + nb;
    if (FOLDED) {
      epi_store_i(e, pe, is[r][0], is[r][1], C, index, cnt);
    } else if (e.out == OutType::I32) {
      // Not allowed for GroupScaled; write what the reference writes (0) rather than garbage.
      std::memset(static_cast<int32_t*>(C) + index, 0, cnt * sizeof(int32_t));
    } else {
      epi_store_f(e, pe, fs[r][0], fs[r][1], C, index, cnt);
    }
  }
}

template <int BITS, bool ASYM, bool FOLDED>
void lb_run(const LbHeader& h, int M, const uint8_t* A, size_t lda, uint8_t a_zero,
            const uint8_t* panels, const Requant& rq, void* C, size_t ldc, int n0, int n1) {
  using RowsFn = void (*)(const LbHeader&, const uint8_t*, const int16_t*, size_t, const Epi&,
                          const PanelEpi&, void*, size_t, int, int, int);
  static constexpr RowsFn rows[kMR + 1] = {nullptr, lb_rows<1, BITS, ASYM, FOLDED>,
                                           lb_rows<2, BITS, ASYM, FOLDED>,
                                           lb_rows<3, BITS, ASYM, FOLDED>,
                                           lb_rows<4, BITS, ASYM, FOLDED>};
  const Epi e(rq);
  const size_t xs = static_cast<size_t>(h.groups) * h.Gp;
  const int chunk = std::max<int>(1, static_cast<int>(262144 / std::max<uint64_t>(h.panel_bytes, 1))) * kNR;
  Scratch xbuf(std::max<size_t>(std::min(M, kMR) * xs * sizeof(int16_t), 1));
  int16_t* x = xbuf.as<int16_t>();
  for (int nc = n0; nc < n1; nc += chunk) {
    const int nc1 = std::min(n1, nc + chunk);
    for (int m0 = 0; m0 < M; m0 += kMR) {
      const int mr = std::min(kMR, M - m0);
      widen_rows_grouped(A + m0 * lda, lda, mr, h, a_zero, x, xs);
      for (int nb = nc; nb < nc1; nb += kNR) {
        const int cnt = std::min(kNR, nc1 - nb);
        const PanelEpi pe = panel_epi(rq, nb, cnt);
        rows[mr](h, panels + static_cast<size_t>(nb / kNR) * h.panel_bytes, x, xs, e, pe, C, ldc,
                 m0, nb, cnt);
      }
    }
  }
}

}  // namespace

size_t lowbit_packed_size(const LowbitWeights* w) {
  const LbHeader h = make_header(*w);
  const size_t panels = (static_cast<size_t>(h.N) + kNR - 1) / kNR;
  return round_up(sizeof(LbHeader) + panels * h.panel_bytes, 64);
}

void lowbit_pack(const LowbitWeights* w, void* packed) {
  const LbHeader h = make_header(*w);
  uint8_t* dst = static_cast<uint8_t*>(packed);
  std::memcpy(dst, &h, sizeof h);
  dst += sizeof h;
  const int panels = (h.N + kNR - 1) / kNR;
  const bool gs = h.form == static_cast<int32_t>(LowbitForm::GroupScaled);
  for (int p = 0; p < panels; ++p)
    for (int g = 0; g < h.groups; ++g) {
      for (int c = 0; c < h.nch; ++c)
        for (int col = 0; col < kNR; ++col) {
          const int n = p * kNR + col;
          uint32_t lane = 0;
          for (int j = 0; j < 4; ++j) {
            const int kk = 4 * c + j;
            const int q = (n < h.N && kk < h.G) ? w->q[static_cast<size_t>(n) * h.K + g * h.G + kk] : 0;
            lane |= h.bits == 2 ? (static_cast<uint32_t>(q) & 3u) << (2 * j)
                                : (static_cast<uint32_t>(q) & 15u) << (4 * j);
          }
          if (h.bits == 2) {
            dst[col] = static_cast<uint8_t>(lane);
          } else {
            const uint16_t l16 = static_cast<uint16_t>(lane);
            std::memcpy(dst + 2 * col, &l16, 2);
          }
          if (col == kNR - 1) dst += h.bits == 2 ? 8 : 16;
        }
      for (int side = 0; side < (h.asym ? 2 : 1); ++side)
        for (int col = 0; col < kNR; ++col, dst += 4) {
          const int n = p * kNR + col;
          const size_t gi = static_cast<size_t>(n) * h.groups + g;
          if (gs) {
            const float v = n >= h.N ? 0.0f : side == 0 ? w->scale_pos[gi] : -w->scale_neg[gi];
            std::memcpy(dst, &v, 4);
          } else {
            const int32_t v = n >= h.N ? 0 : side == 0 ? w->mult_pos[gi] : w->mult_neg[gi];
            std::memcpy(dst, &v, 4);
          }
        }
    }
}

void lowbit_gemm(int M, int N, int K, const uint8_t* A, size_t lda, uint8_t a_zero,
                 const void* packed, const Requant* rq, void* C, size_t ldc, int n0, int n1) {
  (void)N;
  (void)K;
  LbHeader h;
  std::memcpy(&h, packed, sizeof h);
  const uint8_t* panels = static_cast<const uint8_t*>(packed) + sizeof h;
  const bool folded = h.form == static_cast<int32_t>(LowbitForm::Folded);
  const int variant = (h.bits == 2 ? (h.asym ? 1 : 0) : 2) + (folded ? 3 : 0);
  switch (variant) {
    case 0: lb_run<2, false, false>(h, M, A, lda, a_zero, panels, *rq, C, ldc, n0, n1); break;
    case 1: lb_run<2, true, false>(h, M, A, lda, a_zero, panels, *rq, C, ldc, n0, n1); break;
    case 2: lb_run<4, false, false>(h, M, A, lda, a_zero, panels, *rq, C, ldc, n0, n1); break;
    case 3: lb_run<2, false, true>(h, M, A, lda, a_zero, panels, *rq, C, ldc, n0, n1); break;
    case 4: lb_run<2, true, true>(h, M, A, lda, a_zero, panels, *rq, C, ldc, n0, n1); break;
    default: lb_run<4, false, true>(h, M, A, lda, a_zero, panels, *rq, C, ldc, n0, n1); break;
  }
}

}  // namespace neon_detail
}  // namespace kernels
}  // namespace ternion
