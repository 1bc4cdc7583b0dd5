// Low-bit GEMM (ternary 2-bit / 4-bit codes, GroupScaled or Folded, symmetric or asymmetric),
// AVX2, bit-exact with the scalar reference.
//
// How the integer part stays exact and cheap: codes are stored as small UNSIGNED values u and
// multiplied with the u8 activations by vpmaddubsw, which cannot saturate here:
//   symmetric   u = q + off (off = 1 for ternary, u in {0,1,2}; off = 8 for 4-bit, u in [1,15])
//               sum_k q*x = sum_k u*a - off*sum_k a - a_zero*sum_k q
//   asymmetric  two 0/1 indicator codes (q = +1, q = -1); P = sum_pos a - a_zero*count_pos, ...
// One vpmaddubsw lane adds two products of at most 15 * 255, so int16 lanes can accumulate a
// "segment" of units (a unit is 4 k x 16 channels) before being widened with vpmaddwd:
// 32 units for ternary (1020 per step), 64 for indicators (510), 4 for 4-bit (7650).
// The off*sum(a) term is per row and segment (computed once per call, "asum") and is
// subtracted from the low int16 lane before widening; the a_zero term uses per-group code sums
// stored at pack time (read only when a_zero != 0).
// GroupScaled: per group, int32 acc -> float -> fmadd with the group scale, groups in order,
// exactly as the reference. Folded: the group multiplier is applied in the widening vpmaddwd
// (operand (m, m) per channel), which is the same integer as expanding w = q*m per weight.
//
// Packed layout (all sections 64-byte aligned), panels of 16 output channels:
//   Header (192 bytes): bits, N, K, G, form, asym, padded sizes, section offsets.
//   codes:  K is padded per group to Gp = round_up(G, 4) (padding: code of q = 0), then cut
//           into units of 4 k. 2-bit: 4 units per 64-byte "quad" = [ch 0-7][ch 8-15], in each
//           32-byte half byte 4c + i holds, in bits 2s..2s+1, the code of (channel c, k = 4s+i
//           of the quad). 4-bit: 32 bytes per unit, byte 4c + i: low nibble channel c, high
//           nibble channel 8 + c, k = i of the unit.
//   GroupScaled: scale[panel][group][16] fp32 (asym: then -scale_neg[16]);
//                csum[panel][group][16] sum of q (asym: count_pos[16], count_neg[16]),
//                int16 (int32 if G > 32767).
//   Folded:      mult[panel][group][16] int8 (asym: then mult_neg[16]); wsum[panel][16] int32
//                = sum_k w[n][k] for the a_zero term.
// Kernel: tiles of MR rows x 16 channels over all of K (a panel's codes stay in L1 while every
// row block of A uses them); GEMV is MR = 1 with prefetch of the code stream.
// Folded layers with enough rows (convolutions, batches) are instead expanded, a block of panels
// at a time, to the int8 weights q * m in the int8 GEMM's panel layout, and run by its tiles:
// the same exact integers for a fraction of the work per row (see can_expand).
#include <algorithm>
#include <type_traits>

#include "kernels/avx2/common-avx2.h"
#include "kernels/avx2/gemm-q8-avx2.h"

namespace ternion {
namespace kernels {
namespace avx2 {

namespace {

constexpr int kNR = 16;
constexpr uint32_t kMagic = 0x4c423241;  // "A2BL"

enum Mode : int { kSym2 = 0, kAsym2 = 1, kSym4 = 2 };

struct Header {
  uint32_t magic;
  int32_t bits, N, K, G, form, asym, mode;
  int32_t Gp, Kp, units, upg, seg, ngroups, panels, csum_wide;
  int32_t expand_narrow;  // folded: every |q * m| <= 63, so the expanded weights take the narrow int8 form
  int64_t code_stride, group_stride_scale, group_stride_csum, group_stride_mult;
  int64_t off_codes, off_scale, off_csum, off_mult, off_wsum;
  int64_t total;
};
constexpr int64_t kHeaderBytes = 192;  // keeps the sections 64-byte aligned
static_assert(sizeof(Header) <= kHeaderBytes, "header fits its slot");

int mode_of(const LowbitWeights& w) {
  if (w.bits == 4) return kSym4;
  return w.asym ? kAsym2 : kSym2;
}

int seg_limit(int mode) { return mode == kSym2 ? 32 : mode == kAsym2 ? 64 : 4; }

Header make_header(const LowbitWeights& w) {
  Header h;
  std::memset(&h, 0, sizeof h);
  h.magic = kMagic;
  h.bits = w.bits;
  h.N = w.N;
  h.K = w.K;
  h.G = w.G;
  h.form = static_cast<int32_t>(w.form);
  h.mode = mode_of(w);
  h.asym = h.mode == kAsym2;
  h.Gp = static_cast<int32_t>(round_up(w.G, 4));
  h.ngroups = w.G > 0 ? w.K / w.G : 0;
  h.Kp = h.Gp * h.ngroups;
  h.units = h.Kp / 4;
  h.upg = h.Gp / 4;
  // Segment: the largest divisor of the group's unit count within the int16 headroom.
  int seg = 1;
  for (int d = 1; d <= h.upg && d <= seg_limit(h.mode); ++d)
    if (h.upg % d == 0) seg = d;
  h.seg = seg;
  h.panels = (w.N + kNR - 1) / kNR;
  h.csum_wide = w.G > 32767;
  const int64_t nsc = h.asym ? 2 : 1;
  h.code_stride = w.bits == 2 ? static_cast<int64_t>(round_up(h.units, 4)) / 4 * 64
                              : static_cast<int64_t>(h.units) * 32;
  h.group_stride_scale = nsc * kNR * 4;
  h.group_stride_csum = nsc * kNR * (h.csum_wide ? 4 : 2);
  h.group_stride_mult = nsc * kNR;
  int64_t off = kHeaderBytes;
  h.off_codes = off;
  off += round_up(h.code_stride * h.panels, 64);
  if (w.form == LowbitForm::GroupScaled) {
    h.off_scale = off;
    off += round_up(h.group_stride_scale * h.ngroups * h.panels, 64);
    h.off_csum = off;
    off += round_up(h.group_stride_csum * h.ngroups * h.panels, 64);
  } else {
    h.off_mult = off;
    off += round_up(h.group_stride_mult * h.ngroups * h.panels, 64);
    h.off_wsum = off;
    off += round_up(static_cast<int64_t>(kNR) * 4 * h.panels, 64);
  }
  h.total = off;
  return h;
}

// ------------------------------------------------------------------ decoding codes

template <int MODE>
struct Dec;  // NACC byte vectors per unit; vpmaddubsw(a, code) into NACC int16 accumulators

template <>
struct Dec<kSym2> {
  static constexpr int NACC = 2;
};
template <>
struct Dec<kAsym2> {
  static constexpr int NACC = 4;  // pos half0, pos half1, neg half0, neg half1
};
template <>
struct Dec<kSym4> {
  static constexpr int NACC = 2;
};

// Decode unit codes from loaded vectors. For 2-bit, c0/c1 are the two quad halves and `sh` the
// shift 2*s; for 4-bit, c0 is the unit's 32 bytes.
template <int MODE>
__attribute__((always_inline)) inline void decode(__m256i c0, __m256i c1, __m128i sh, __m256i* d) {
  if (MODE == kSym2) {
    const __m256i m3 = _mm256_set1_epi8(3);
    d[0] = _mm256_and_si256(_mm256_srl_epi16(c0, sh), m3);
    d[1] = _mm256_and_si256(_mm256_srl_epi16(c1, sh), m3);
  } else if (MODE == kAsym2) {
    const __m256i m1 = _mm256_set1_epi8(1);
    const __m256i s0 = _mm256_srl_epi16(c0, sh), s1 = _mm256_srl_epi16(c1, sh);
    d[0] = _mm256_and_si256(s0, m1);
    d[1] = _mm256_and_si256(s1, m1);
    d[2] = _mm256_and_si256(_mm256_srli_epi16(s0, 1), m1);
    d[3] = _mm256_and_si256(_mm256_srli_epi16(s1, 1), m1);
  } else {
    const __m256i m15 = _mm256_set1_epi8(15);
    d[0] = _mm256_and_si256(c0, m15);
    d[1] = _mm256_and_si256(_mm256_srli_epi16(c0, 4), m15);
  }
}

template <int MODE, int S>
__attribute__((always_inline)) inline void decode_imm(__m256i c0, __m256i c1, __m256i* d) {
  if (MODE == kSym2) {
    const __m256i m3 = _mm256_set1_epi8(3);
    d[0] = _mm256_and_si256(S ? _mm256_srli_epi16(c0, 2 * S) : c0, m3);
    d[1] = _mm256_and_si256(S ? _mm256_srli_epi16(c1, 2 * S) : c1, m3);
  } else {
    const __m256i m1 = _mm256_set1_epi8(1);
    d[0] = _mm256_and_si256(S ? _mm256_srli_epi16(c0, 2 * S) : c0, m1);
    d[1] = _mm256_and_si256(S ? _mm256_srli_epi16(c1, 2 * S) : c1, m1);
    d[2] = _mm256_and_si256(_mm256_srli_epi16(c0, 2 * S + 1), m1);
    d[3] = _mm256_and_si256(_mm256_srli_epi16(c1, 2 * S + 1), m1);
  }
}

template <int MR, int NACC>
__attribute__((always_inline)) inline void mac_unit(const uint8_t* const* a, int u, const __m256i* d,
                                                    __m256i (*acc)[NACC]) {
  #pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    int32_t v;
    std::memcpy(&v, a[r] + 4 * u, 4);
    const __m256i b = _mm256_set1_epi32(v);
    #pragma GCC unroll 8
    for (int i = 0; i < NACC; ++i) acc[r][i] = _mm256_add_epi16(acc[r][i], _mm256_maddubs_epi16(b, d[i]));
  }
  // Pin the accumulators per unit: otherwise GCC reassociates the adds of a whole quad into a
  // tree, which needs more than 16 ymm registers and spills.
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 8
    for (int i = 0; i < NACC; ++i) __asm__("" : "+x"(acc[r][i]));
}

template <int MODE, int S, int MR, int NACC>
__attribute__((always_inline)) inline void quad_step(const uint8_t* const* a, int u, __m256i c0, __m256i c1,
                                                     __m256i (*acc)[NACC]) {
  __m256i d[NACC];
  decode_imm<MODE, S>(c0, c1, d);
  mac_unit<MR, NACC>(a, u + S, d, acc);
}

// Multiply-accumulate units [u0, u0 + n) of one panel into the int16 accumulators.
template <int MODE, int MR>
__attribute__((always_inline)) inline void run_units(const uint8_t* codes, const uint8_t* const* a, int u0,
                                                     int n, bool quad, __m256i (*acc)[Dec<MODE>::NACC]) {
  constexpr int NACC = Dec<MODE>::NACC;
  if (MODE == kSym4) {
    for (int u = u0; u < u0 + n; ++u) {
      const uint8_t* c = codes + 32 * u;
      if (MR == 1) _mm_prefetch(reinterpret_cast<const char*>(c) + 1024, _MM_HINT_T0);
      __m256i d[NACC];
      decode<MODE>(_mm256_load_si256(reinterpret_cast<const __m256i*>(c)), _mm256_setzero_si256(),
                   _mm_setzero_si128(), d);
      mac_unit<MR, NACC>(a, u, d, acc);
    }
    return;
  }
  if (quad) {  // u0 and n multiples of 4: whole quads, immediate shifts
    for (int u = u0; u < u0 + n; u += 4) {
      const uint8_t* c = codes + 16 * u;
      if (MR == 1) _mm_prefetch(reinterpret_cast<const char*>(c) + 1024, _MM_HINT_T0);
      const __m256i c0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(c));
      const __m256i c1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(c + 32));
      quad_step<MODE, 0, MR, NACC>(a, u, c0, c1, acc);
      quad_step<MODE, 1, MR, NACC>(a, u, c0, c1, acc);
      quad_step<MODE, 2, MR, NACC>(a, u, c0, c1, acc);
      quad_step<MODE, 3, MR, NACC>(a, u, c0, c1, acc);
    }
    return;
  }
  for (int u = u0; u < u0 + n; ++u) {
    const uint8_t* c = codes + 64 * (u >> 2);
    const __m256i c0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(c));
    const __m256i c1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(c + 32));
    __m256i d[NACC];
    decode<MODE>(c0, c1, _mm_cvtsi32_si128(2 * (u & 3)), d);
    mac_unit<MR, NACC>(a, u, d, acc);
  }
}

// (m, m) int16 pairs per 32-bit lane for 8 channels, from 8 int8 multipliers (all positive).
inline __m256i mult_pairs(const int8_t* m) {
  int64_t v;
  std::memcpy(&v, m, 8);
  const __m256i b = _mm256_set1_epi64x(v);
  const __m256i ctrl = _mm256_setr_epi8(0, -1, 0, -1, 1, -1, 1, -1, 2, -1, 2, -1, 3, -1, 3, -1,
                                        4, -1, 4, -1, 5, -1, 5, -1, 6, -1, 6, -1, 7, -1, 7, -1);
  return _mm256_shuffle_epi8(b, ctrl);
}

inline __m256i load_csum8(const void* base, int idx, bool wide) {
  if (wide) return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(static_cast<const int32_t*>(base) + idx));
  return _mm256_cvtepi16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const int16_t*>(base) + idx)));
}

struct Call {
  const Header* h;
  const uint8_t* base;  // packed buffer
  int a_zero;
  const Epilogue* rq;
  size_t es;  // output element size
  int nseg_g;  // segments per group (derived once per call: no division in the tiles)
  bool quad;   // segments are whole quads (immediate shifts)
};

// Folded GEMV with one unit per group streams a second array beside the codes: the multipliers
// of groups g .. g + 3 (one cache line per quad of units, two when asymmetric), prefetched as
// far ahead as the codes: from DRAM (eight 4096x4096 layers, N = 4) faster in 8 of 10
// in-process A/B runs, by 5% at the median. The group-scaled form's scales take four lines per
// quad; one prefetch of them slowed it.
inline void prefetch_mults(const Call& cl, int p, int g) {
  const Header& h = *cl.h;
  const char* m = reinterpret_cast<const char*>(cl.base + h.off_mult) +
                  (static_cast<int64_t>(p) * h.ngroups + g) * h.group_stride_mult + 1024;
  for (int64_t b = 0; b < 4 * h.group_stride_mult; b += 64) _mm_prefetch(m + b, _MM_HINT_T0);
}

// Tile variants: kGeneral (segments widened into per-group int32 sums), kOneSeg (group-scaled
// with one segment per group, e.g. N = 16..64: the widened segment goes straight to the group's
// fmadd), kU1 (one unit per group, 2-bit: see below).
enum Variant : int { kGeneral = 0, kOneSeg = 1, kU1 = 2 };

// MR rows x panels [p0, p1), all of K each. a[r]: row r of (possibly group-padded) A; asum[r]:
// that row's off*sum(a) per segment (symmetric modes only). C points at the tile's first row;
// columns of panel p start at 16 p, and stop at n1. Looping over a block of panels in one call
// pays the call's set-up once per block: small-K layers (MobileNet's 1x1 convs, K = 16..32) do
// only a few units of work per panel.
template <int MODE, bool FOLDED, int MR, int V>
__attribute__((noinline)) void lb_tile(const Call& cl, int p0, int p1, const uint8_t* const* a,
                                       const int32_t* const* asum, void* C, size_t ldc, int n1) {
  for (int p = p0; p < p1; ++p) {
  const int col = p * kNR, cols = n1 - col < kNR ? n1 - col : kNR;
  constexpr int NACC = Dec<MODE>::NACC;
  constexpr bool SYM = MODE != kAsym2;
  constexpr bool U1 = V == kU1;
  const Header& h = *cl.h;
  const uint8_t* codes = cl.base + h.off_codes + p * h.code_stride;
  const int seg = h.seg, nseg_g = cl.nseg_g;
  const bool quad = cl.quad;
  const __m256i ones = _mm256_set1_epi16(1);
  const __m256i vaz = _mm256_set1_epi32(cl.a_zero);

  __m256i acc16[MR][NACC];
  // GroupScaled: per-group int32 (P, M for asym). Folded: the total in acc32[r][0..1], started
  // at the activation zero point's correction -a_zero * wsum (sum_k w[n][k] of the weights q * m).
  __m256i acc32[MR][NACC];
  __m256 sum[MR][2];
  __m256i start[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
  if (FOLDED && cl.a_zero) {
    const int32_t* ws = reinterpret_cast<const int32_t*>(cl.base + h.off_wsum) + p * kNR;
    const __m256i negz = _mm256_set1_epi32(-cl.a_zero);
    for (int i = 0; i < 2; ++i) start[i] = _mm256_mullo_epi32(negz, _mm256_load_si256(reinterpret_cast<const __m256i*>(ws + 8 * i)));
  }
  #pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
    #pragma GCC unroll 8
    for (int i = 0; i < NACC; ++i) acc32[r][i] = i < 2 ? start[i] : _mm256_setzero_si256();
  #pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) sum[r][0] = sum[r][1] = _mm256_setzero_ps();

  __m256i mp[2], mn[2];
  auto begin_group = [&](int g) __attribute__((always_inline)) {
    if (FOLDED) {
      const int8_t* mb = reinterpret_cast<const int8_t*>(cl.base + h.off_mult) +
                         (static_cast<int64_t>(p) * h.ngroups + g) * h.group_stride_mult;
      mp[0] = mult_pairs(mb);
      mp[1] = mult_pairs(mb + 8);
      if (!SYM) {
        mn[0] = mult_pairs(mb + 16);
        mn[1] = mult_pairs(mb + 24);
      }
    } else {
#pragma GCC unroll 8
      for (int r = 0; r < MR; ++r)
#pragma GCC unroll 8
        for (int i = 0; i < NACC; ++i) acc32[r][i] = _mm256_setzero_si256();
    }
  };
  auto zero16 = [&]() __attribute__((always_inline)) {
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r)
#pragma GCC unroll 8
      for (int i = 0; i < NACC; ++i) acc16[r][i] = _mm256_setzero_si256();
  };
  // Widen a finished segment's int16 sums into the int32 accumulators (multiplier applied).
  // ADD = false: the int32 sums are set (the first segment of a group), not added to.
  auto flush_seg = [&](int s, __m256i (*acc)[NACC], auto ADD) __attribute__((always_inline)) {
    constexpr bool kAdd = decltype(ADD)::value;
    auto put = [&](__m256i& d, __m256i v) __attribute__((always_inline)) { d = kAdd ? _mm256_add_epi32(d, v) : v; };
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      if (SYM) {
        const __m256i corr = _mm256_set1_epi32(asum[r][s]);  // low int16 lane only
#pragma GCC unroll 8
        for (int i = 0; i < 2; ++i) {
          const __m256i t = _mm256_sub_epi16(acc16[r][i], corr);
          put(acc[r][i], _mm256_madd_epi16(t, FOLDED ? mp[i] : ones));
        }
      } else if (FOLDED) {
#pragma GCC unroll 8
        for (int i = 0; i < 2; ++i) {
          put(acc[r][i], _mm256_madd_epi16(acc16[r][i], mp[i]));
          acc[r][i] = _mm256_sub_epi32(acc[r][i], _mm256_madd_epi16(acc16[r][2 + i], mn[i]));
        }
      } else {
#pragma GCC unroll 8
        for (int i = 0; i < 4; ++i) put(acc[r][i], _mm256_madd_epi16(acc16[r][i], ones));
      }
    }
  };
  // GroupScaled group epilogue: int32 -> fp32, fmaf with the group scale, in group order.
  auto end_group = [&](int g, __m256i (*acc)[NACC]) __attribute__((always_inline)) {
    if (FOLDED) return;
    const int64_t gi = static_cast<int64_t>(p) * h.ngroups + g;
    const float* sc = reinterpret_cast<const float*>(cl.base + h.off_scale + gi * h.group_stride_scale);
    const uint8_t* cs = cl.base + h.off_csum + gi * h.group_stride_csum;
#pragma GCC unroll 8
    for (int i = 0; i < 2; ++i) {
      const __m256 sp = _mm256_load_ps(sc + 8 * i);
      if (SYM) {
        __m256i corr = _mm256_setzero_si256();
        if (cl.a_zero) corr = _mm256_mullo_epi32(vaz, load_csum8(cs, 8 * i, h.csum_wide));
#pragma GCC unroll 8
        for (int r = 0; r < MR; ++r)
          sum[r][i] = _mm256_fmadd_ps(sp, _mm256_cvtepi32_ps(_mm256_sub_epi32(acc[r][i], corr)), sum[r][i]);
      } else {
        const __m256 sn = _mm256_load_ps(sc + 16 + 8 * i);  // stored negated
        __m256i cp = _mm256_setzero_si256(), cn = _mm256_setzero_si256();
        if (cl.a_zero) {
          cp = _mm256_mullo_epi32(vaz, load_csum8(cs, 8 * i, h.csum_wide));
          cn = _mm256_mullo_epi32(vaz, load_csum8(cs, 16 + 8 * i, h.csum_wide));
        }
#pragma GCC unroll 8
        for (int r = 0; r < MR; ++r) {
          sum[r][i] = _mm256_fmadd_ps(sp, _mm256_cvtepi32_ps(_mm256_sub_epi32(acc[r][i], cp)), sum[r][i]);
          sum[r][i] = _mm256_fmadd_ps(sn, _mm256_cvtepi32_ps(_mm256_sub_epi32(acc[r][2 + i], cn)), sum[r][i]);
        }
      }
    }
  };

  if constexpr (U1 && MODE == kSym2) {
    // One unit per group (G <= 4, e.g. FGQ's N = 4), symmetric ternary: each vpmaddubsw result
    // is the whole group already, so it goes straight to the widening vpmaddwd (the group
    // multiplier, or ones) and, group-scaled, to the group's fmadd: no int16 / int32 staging.
    // Same integers and the same fp32 operations in the same order as the general path.
    const int nq = (h.units + 3) / 4;
    const int32_t* const* as = asum;
    for (int q = 0; q < nq; ++q) {
      const uint8_t* c = codes + 64 * q;
      if (MR == 1) {
        _mm_prefetch(reinterpret_cast<const char*>(c) + 1024, _MM_HINT_T0);
        if (FOLDED) prefetch_mults(cl, p, 4 * q);
      }
      const __m256i c0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(c));
      const __m256i c1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(c + 32));
      auto step = [&](auto S) __attribute__((always_inline)) {
        constexpr int kS = decltype(S)::value;
        const int u = 4 * q + kS;
        if (u >= h.units) return;
        __m256i d[2];
        decode_imm<MODE, kS>(c0, c1, d);
        __m256i wide[2];  // vpmaddwd operand: (m, m) multiplier pairs, or ones
        __m256 sp[2];
        __m256i zc[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
        if (FOLDED) {
          const int8_t* mb = reinterpret_cast<const int8_t*>(cl.base + h.off_mult) +
                             (static_cast<int64_t>(p) * h.ngroups + u) * h.group_stride_mult;
          wide[0] = mult_pairs(mb);
          wide[1] = mult_pairs(mb + 8);
        } else {
          const int64_t gi = static_cast<int64_t>(p) * h.ngroups + u;
          const float* sc = reinterpret_cast<const float*>(cl.base + h.off_scale + gi * h.group_stride_scale);
          sp[0] = _mm256_load_ps(sc);
          sp[1] = _mm256_load_ps(sc + 8);
          wide[0] = wide[1] = ones;
          if (cl.a_zero) {
            const uint8_t* cs = cl.base + h.off_csum + gi * h.group_stride_csum;
            zc[0] = _mm256_mullo_epi32(vaz, load_csum8(cs, 0, h.csum_wide));
            zc[1] = _mm256_mullo_epi32(vaz, load_csum8(cs, 8, h.csum_wide));
          }
        }
#pragma GCC unroll 8
        for (int r = 0; r < MR; ++r) {
          int32_t v;
          std::memcpy(&v, a[r] + 4 * u, 4);
          const __m256i b = _mm256_set1_epi32(v);
          const __m256i corr = _mm256_set1_epi32(as[r][u]);  // low int16 lane only
#pragma GCC unroll 2
          for (int i = 0; i < 2; ++i) {
            const __m256i t = _mm256_madd_epi16(_mm256_sub_epi16(_mm256_maddubs_epi16(b, d[i]), corr), wide[i]);
            if (FOLDED) acc32[r][i] = _mm256_add_epi32(acc32[r][i], t);
            else sum[r][i] = _mm256_fmadd_ps(sp[i], _mm256_cvtepi32_ps(_mm256_sub_epi32(t, zc[i])), sum[r][i]);
          }
        }
#pragma GCC unroll 8
        for (int r = 0; r < MR; ++r) {
          if (FOLDED) __asm__("" : "+x"(acc32[r][0]), "+x"(acc32[r][1]));
          else __asm__("" : "+x"(sum[r][0]), "+x"(sum[r][1]));
        }
      };
      step(std::integral_constant<int, 0>());
      step(std::integral_constant<int, 1>());
      step(std::integral_constant<int, 2>());
      step(std::integral_constant<int, 3>());
    }
  } else if constexpr (U1) {
    // One unit per group (G <= 4, e.g. FGQ's N = 4): walk whole quads with immediate shifts
    // and close a group after every unit.
    const int nq = (h.units + 3) / 4;
    for (int q = 0; q < nq; ++q) {
      const uint8_t* c = codes + 64 * q;
      if (MR == 1) {
        _mm_prefetch(reinterpret_cast<const char*>(c) + 1024, _MM_HINT_T0);
        if (FOLDED) prefetch_mults(cl, p, 4 * q);
      }
      const __m256i c0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(c));
      const __m256i c1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(c + 32));
      auto step = [&](auto S) __attribute__((always_inline)) {
        constexpr int kS = decltype(S)::value;
        const int u = 4 * q + kS;
        if (u >= h.units) return;
        begin_group(u);
        zero16();
        quad_step<MODE, kS, MR, NACC>(a, 4 * q, c0, c1, acc16);
        flush_seg(u, acc32, std::true_type());
        end_group(u, acc32);
      };
      step(std::integral_constant<int, 0>());
      step(std::integral_constant<int, 1>());
      step(std::integral_constant<int, 2>());
      step(std::integral_constant<int, 3>());
    }
  } else if constexpr (V == kOneSeg && !FOLDED) {
    // One segment per group, group-scaled: the group's int32 sums live only from the widening
    // to the fmadd (bit-identical: the general path adds them to zero first).
    for (int g = 0; g < h.ngroups; ++g) {
      zero16();
      run_units<MODE, MR>(codes, a, g * seg, seg, quad, acc16);
      __m256i t32[MR][NACC];
      flush_seg(g, t32, std::false_type());
      end_group(g, t32);
    }
  } else {
    int u = 0, s = 0;
    for (int g = 0; g < h.ngroups; ++g) {
      begin_group(g);
      for (int sg = 0; sg < nseg_g; ++sg, u += seg, ++s) {
        zero16();
        run_units<MODE, MR>(codes, a, u, seg, quad, acc16);
        flush_seg(s, acc32, std::true_type());
      }
      end_group(g, acc32);
    }
  }
  if (FOLDED) {
    __m256i v[MR][2];
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) v[r][0] = acc32[r][0], v[r][1] = acc32[r][1];
    cl.rq->store_tile<MR>(v, col, cols, C, ldc, 0);
  } else {
    cl.rq->store_tile<MR>(sum, col, cols, C, ldc, 0);
  }
  }  // panels
}

using TileFn = void (*)(const Call&, int, int, const uint8_t* const*, const int32_t* const*,
                        void*, size_t, int);

// One instance per variant, so each has its own register allocation.
template <int MODE, bool FOLDED, int V>
struct Tiles {
  static constexpr int MRMAX = MODE == kAsym2 ? 2 : 4;
  static constexpr TileFn fn[5] = {nullptr, lb_tile<MODE, FOLDED, 1, V>, lb_tile<MODE, FOLDED, 2, V>,
                                   MRMAX >= 3 ? lb_tile<MODE, FOLDED, 3, V> : nullptr,
                                   MRMAX >= 4 ? lb_tile<MODE, FOLDED, 4, V> : nullptr};
};

template <int MODE, bool FOLDED>
void lb_driver(Call cl, int M, const uint8_t* A, size_t lda, void* C, size_t ldc, int n0,
               int n1) {
  const Header& h = *cl.h;
  constexpr int MRMAX = Tiles<MODE, FOLDED, kGeneral>::MRMAX;
  cl.nseg_g = h.upg / h.seg;
  cl.quad = MODE != kSym4 && h.seg % 4 == 0;
  const TileFn* tiles = MODE != kSym4 && h.upg == 1 ? Tiles<MODE, FOLDED, kU1>::fn
                        : !FOLDED && cl.nseg_g == 1 ? Tiles<MODE, FOLDED, kOneSeg>::fn
                                                    : Tiles<MODE, FOLDED, kGeneral>::fn;
  // Panels per tile call: the block's codes stay in L1 while every row tile of the chunk
  // reads them (at least one panel).
  int block = static_cast<int>((16 * 1024) / (h.code_stride > 0 ? h.code_stride : 1));
  if (block < 1) block = 1;
  const bool pad = h.G % 4 != 0;
  const int off = MODE == kSym4 ? 8 : 1;
  const int nseg = h.units / h.seg;
  const size_t ldp = round_up(h.Kp, 64);
  int rows = static_cast<int>((128 * 1024) / (pad ? ldp : 64));
  if (rows < MRMAX) rows = MRMAX;
  if (rows > M) rows = M;
  const size_t pad_bytes = pad ? static_cast<size_t>(rows) * ldp : 0;
  const size_t asum_bytes = MODE != kAsym2 ? static_cast<size_t>(rows) * (nseg + 1) * 4 : 0;
  Scratch buf(pad_bytes + asum_bytes + 64);
  uint8_t* Ap = buf.as<uint8_t>();
  int32_t* asum = reinterpret_cast<int32_t*>(buf.as<uint8_t>() + pad_bytes);
  const int p0 = n0 / kNR, p1 = (n1 + kNR - 1) / kNR;
  const int seg_bytes = 4 * h.seg;
  for (int mc0 = 0; mc0 < M; mc0 += rows) {
    const int mc = M - mc0 < rows ? M - mc0 : rows;
    // Rows are read from A itself, or from a copy with each group zero-padded to Gp.
    for (int r = 0; r < mc; ++r) {
      const uint8_t* a = A + (mc0 + r) * lda;
      const uint8_t* src = a;
      if (pad) {
        uint8_t* d = Ap + r * ldp;
        for (int g = 0; g < h.ngroups; ++g) {
          std::memcpy(d + g * h.Gp, a + g * h.G, h.G);
          std::memset(d + g * h.Gp + h.G, 0, h.Gp - h.G);
        }
        src = d;
      }
      if (MODE != kAsym2) {
        int32_t* as = asum + r * (nseg + 1);
        for (int s = 0; s < nseg; ++s) {
          const uint8_t* q = src + s * seg_bytes;
          int i = 0;
          __m128i acc = _mm_setzero_si128();
          for (; i + 16 <= seg_bytes; i += 16)
            acc = _mm_add_epi64(acc, _mm_sad_epu8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q + i)), _mm_setzero_si128()));
          int32_t t = _mm_cvtsi128_si32(acc) + _mm_extract_epi32(acc, 2);
          for (; i < seg_bytes; ++i) t += q[i];
          as[s] = t * off;
        }
      }
    }
    for (int pb = p0; pb < p1; pb += block) {
      const int pe = p1 - pb < block ? p1 : pb + block;
      for (int m = 0; m < mc; m += MRMAX) {
        const int mr = mc - m < MRMAX ? mc - m : MRMAX;
        const uint8_t* ar[4];
        const int32_t* sr[4];
        for (int r = 0; r < mr; ++r) {
          ar[r] = pad ? Ap + (m + r) * ldp : A + (mc0 + m + r) * lda;
          sr[r] = asum + (m + r) * (nseg + 1);
        }
        tiles[mr](cl, pb, pe, ar, sr, static_cast<char*>(C) + (mc0 + m) * ldc * cl.es, ldc, n1);
      }
    }
  }
}

// ------------------------------------------------------------------ folded, expanded to int8
// A folded weight q * m is an int8 (|q * m| <= 127), so a folded layer is an int8 layer whose
// weights are stored as codes. With small groups (N <= 16) the decode-per-row loop spends most
// of its work on per-group multiplies; expanding a panel once costs about what two or three rows
// of its int8 product do, and the int8 tiles then run at the int8 GEMM's speed. Measured on
// AVX2 (Zen 3): N = 4 conv 3136x64x576 8.5 -> 39 GMAC/s, GEMM 64x4096x4096 33 -> 60; the wide
// form (some |q * m| > 63) pays off from about 16 rows. Larger ternary groups keep the code
// loop, which accumulates whole groups in int16 and is as fast or faster; 4-bit codes widen
// every 4 units anyway, so they expand at any group size.
bool can_expand(const Header& h, int M) {
  // The int8 layouts pad K only at its end: groups must not be padded inside K.
  return h.form == static_cast<int32_t>(LowbitForm::Folded) && h.G % 4 == 0 &&
         (h.upg <= 4 || h.mode == kSym4) && M >= (h.expand_narrow ? 8 : 16);
}

// 8 channels' multipliers, each repeated over its channel's 4 bytes of a unit half.
inline __m256i mult_quads(const int8_t* m) {
  int64_t v;
  std::memcpy(&v, m, 8);
  const __m256i ctrl = _mm256_setr_epi8(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3,
                                        4, 4, 4, 4, 5, 5, 5, 5, 6, 6, 6, 6, 7, 7, 7, 7);
  return _mm256_shuffle_epi8(_mm256_set1_epi64x(v), ctrl);
}

// Bytewise q * m (the product fits int8): the low byte of a 16-bit product depends only on
// the operands' low bytes, so even bytes come from one vpmullw, odd bytes from another.
inline __m256i mul_i8(__m256i q, __m256i m) {
  const __m256i even = _mm256_mullo_epi16(q, m);
  const __m256i odd = _mm256_slli_epi16(_mm256_mullo_epi16(_mm256_srai_epi16(q, 8), _mm256_srli_epi16(m, 8)), 8);
  return _mm256_blendv_epi8(even, odd, _mm256_set1_epi16(static_cast<int16_t>(0xFF00)));
}

// Weights of one unit (4 k x 16 channels, byte 4c + t of each half) -> the wide form's two
// k pairs (byte 2c + t of each 8-channel half).
inline void to_pairs(__m256i& w0, __m256i& w1) {
  const __m256i ctrl = _mm256_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15,
                                        0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15);
  const __m256i a = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(w0, ctrl), 0xD8);
  const __m256i b = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(w1, ctrl), 0xD8);
  w0 = _mm256_permute2x128_si256(a, b, 0x20);
  w1 = _mm256_permute2x128_si256(a, b, 0x31);
}

// Panel p's weights q * m, 64 bytes per unit, in the narrow int8 layout (or the wide one).
template <int MODE>
void expand_panel(const Header& h, const uint8_t* base, int p, bool wide, int8_t* out) {
  constexpr int NACC = Dec<MODE>::NACC;
  const uint8_t* codes = base + h.off_codes + p * h.code_stride;
  const int8_t* mults = reinterpret_cast<const int8_t*>(base + h.off_mult) +
                        static_cast<int64_t>(p) * h.ngroups * h.group_stride_mult;
  const __m256i one = _mm256_set1_epi8(1), eight = _mm256_set1_epi8(8);
  for (int g = 0; g < h.ngroups; ++g) {
    const int8_t* mg = mults + g * h.group_stride_mult;
    const __m256i mp0 = mult_quads(mg), mp1 = mult_quads(mg + 8);
    const __m256i mn0 = MODE == kAsym2 ? mult_quads(mg + 16) : mp0;
    const __m256i mn1 = MODE == kAsym2 ? mult_quads(mg + 24) : mp1;
    for (int u = g * h.upg; u < (g + 1) * h.upg; ++u) {
      __m256i d[NACC];
      if (MODE == kSym4) {
        decode<MODE>(_mm256_load_si256(reinterpret_cast<const __m256i*>(codes + 32 * u)),
                     _mm256_setzero_si256(), _mm_setzero_si128(), d);
      } else {
        const uint8_t* c = codes + 64 * (u >> 2);
        decode<MODE>(_mm256_load_si256(reinterpret_cast<const __m256i*>(c)),
                     _mm256_load_si256(reinterpret_cast<const __m256i*>(c + 32)),
                     _mm_cvtsi32_si128(2 * (u & 3)), d);
      }
      __m256i w0, w1;
      if (MODE == kSym2) {  // codes q + 1: vpsignb gives m, 0 or -m
        w0 = _mm256_sign_epi8(mp0, _mm256_sub_epi8(d[0], one));
        w1 = _mm256_sign_epi8(mp1, _mm256_sub_epi8(d[1], one));
      } else if (MODE == kAsym2) {  // indicators of +1 and -1
        w0 = _mm256_sub_epi8(_mm256_sign_epi8(mp0, d[0]), _mm256_sign_epi8(mn0, d[2]));
        w1 = _mm256_sub_epi8(_mm256_sign_epi8(mp1, d[1]), _mm256_sign_epi8(mn1, d[3]));
      } else {  // codes q + 8
        w0 = mul_i8(_mm256_sub_epi8(d[0], eight), mp0);
        w1 = mul_i8(_mm256_sub_epi8(d[1], eight), mp1);
      }
      if (wide) to_pairs(w0, w1);
      _mm256_store_si256(reinterpret_cast<__m256i*>(out + 64 * u), w0);
      _mm256_store_si256(reinterpret_cast<__m256i*>(out + 64 * u + 32), w1);
    }
  }
}

// Blocks of panels are expanded into scratch (a block near 128 KB stays in L2 while every row
// chunk passes over it), then run by the int8 tiles over all M rows.
template <int MODE>
void lb_expanded(const Header& h, const uint8_t* base, int M, int K, const uint8_t* A, size_t lda,
                 uint8_t a_zero, const Epilogue& rq, void* C, size_t ldc, int n0, int n1) {
  const size_t panel_bytes = static_cast<size_t>(h.units) * 64;
  const int p0 = n0 / kNR, p1 = (n1 + kNR - 1) / kNR;
  int block = static_cast<int>((128 * 1024) / panel_bytes);
  if (block < 1) block = 1;
  if (block > p1 - p0) block = p1 - p0;
  Scratch buf(block * panel_bytes + 64);
  int8_t* out = buf.as<int8_t>();
  const bool wide = !h.expand_narrow;
  const int32_t* wsum = reinterpret_cast<const int32_t*>(base + h.off_wsum);
  for (int b0 = p0; b0 < p1; b0 += block) {
    const int b1 = p1 - b0 < block ? p1 : b0 + block;
    for (int p = b0; p < b1; ++p) expand_panel<MODE>(h, base, p, wide, out + (p - b0) * panel_bytes);
    const Q8Panels w{!wide, out, panel_bytes, wsum + static_cast<size_t>(b0) * kNR, b0};
    q8_run_panels(w, M, K, A, lda, a_zero, rq, C, ldc, b0 == p0 ? n0 : b0 * kNR, b1 == p1 ? n1 : b1 * kNR);
  }
}

}  // namespace

size_t lowbit_packed_size(const LowbitWeights* w) { return make_header(*w).total; }

void lowbit_pack(const LowbitWeights* w, void* packed) {
  Header h = make_header(*w);
  uint8_t* base = static_cast<uint8_t*>(packed);
  std::memset(base, 0, h.total);
  const int N = w->N, K = w->K, G = w->G, ng = h.ngroups;
  const int off = h.mode == kSym4 ? 8 : 1;
  int wmax = 0;  // folded: the largest |q * m|, which decides the expanded int8 form
  // Code of one q value (q = 0 for padding).
  auto enc = [&](int q) -> int {
    if (h.mode == kAsym2) return (q > 0 ? 1 : 0) | (q < 0 ? 2 : 0);
    return q + off;
  };
  for (int p = 0; p < h.panels; ++p) {
    uint8_t* codes = base + h.off_codes + p * h.code_stride;
    const int unit_slots = w->bits == 2 ? static_cast<int>(round_up(h.units, 4)) : h.units;
    for (int c = 0; c < kNR; ++c) {
      const int n = p * kNR + c;
      for (int kp = 0; kp < unit_slots * 4; ++kp) {
        int q = 0;
        const int g = kp / h.Gp, i = kp % h.Gp;
        if (n < N && kp < h.Kp && i < G) q = w->q[static_cast<size_t>(n) * K + g * G + i];
        const int code = enc(q), u = kp / 4, half = c / 8, j = (c % 8) * 4 + kp % 4;
        if (w->bits == 2) codes[(u / 4) * 64 + half * 32 + j] |= static_cast<uint8_t>(code << (2 * (u % 4)));
        else codes[u * 32 + j] |= static_cast<uint8_t>(code << (4 * half));
      }
    }
    for (int g = 0; g < ng; ++g) {
      const int64_t gi = static_cast<int64_t>(p) * ng + g;
      for (int c = 0; c < kNR; ++c) {
        const int n = p * kNR + c;
        if (n >= N) continue;  // padding channels: zero scales / multipliers / sums
        const size_t ni = static_cast<size_t>(n) * ng + g;
        int32_t qsum = 0, cp = 0, cn = 0, qmax = 0;
        for (int i = 0; i < G; ++i) {
          const int q = w->q[static_cast<size_t>(n) * K + g * G + i];
          qsum += q;
          cp += q > 0;
          cn += q < 0;
          qmax = std::max(qmax, q < 0 ? -q : q);
        }
        if (w->form == LowbitForm::GroupScaled) {
          float* sc = reinterpret_cast<float*>(base + h.off_scale + gi * h.group_stride_scale);
          sc[c] = w->scale_pos[ni];
          if (h.asym) sc[16 + c] = -w->scale_neg[ni];
          uint8_t* cs = base + h.off_csum + gi * h.group_stride_csum;
          const int32_t v0 = h.asym ? cp : qsum;
          if (h.csum_wide) {
            reinterpret_cast<int32_t*>(cs)[c] = v0;
            if (h.asym) reinterpret_cast<int32_t*>(cs)[16 + c] = cn;
          } else {
            reinterpret_cast<int16_t*>(cs)[c] = static_cast<int16_t>(v0);
            if (h.asym) reinterpret_cast<int16_t*>(cs)[16 + c] = static_cast<int16_t>(cn);
          }
        } else {
          int8_t* mb = reinterpret_cast<int8_t*>(base + h.off_mult + gi * h.group_stride_mult);
          mb[c] = w->mult_pos[ni];
          if (h.asym) mb[16 + c] = w->mult_neg[ni];
          int32_t* ws = reinterpret_cast<int32_t*>(base + h.off_wsum) + p * kNR;
          ws[c] += h.asym ? cp * w->mult_pos[ni] - cn * w->mult_neg[ni] : qsum * w->mult_pos[ni];
          wmax = std::max(wmax, h.asym ? std::max(cp ? w->mult_pos[ni] : 0, cn ? w->mult_neg[ni] : 0)
                                       : qmax * w->mult_pos[ni]);
        }
      }
    }
  }
  h.expand_narrow = w->form == LowbitForm::Folded && wmax <= kNarrowWeightMax;
  std::memcpy(base, &h, sizeof h);
}

void lowbit_gemm(int M, int N, int K, const uint8_t* A, size_t lda, uint8_t a_zero,
                 const void* packed, const Requant* rq, void* C, size_t ldc, int n0, int n1) {
  if (M <= 0 || n1 <= n0) return;
  Header h;
  std::memcpy(&h, packed, sizeof h);
  const Epilogue ep(*rq, C);
  const Call cl{&h, static_cast<const uint8_t*>(packed), a_zero, &ep, ep.byte_out() ? size_t{1} : size_t{4}, 1, false};
  const bool folded = h.form == static_cast<int32_t>(LowbitForm::Folded);
  if (can_expand(h, M)) {
    const uint8_t* base = static_cast<const uint8_t*>(packed);
    if (h.mode == kSym2) lb_expanded<kSym2>(h, base, M, K, A, lda, a_zero, ep, C, ldc, n0, n1);
    else if (h.mode == kAsym2) lb_expanded<kAsym2>(h, base, M, K, A, lda, a_zero, ep, C, ldc, n0, n1);
    else lb_expanded<kSym4>(h, base, M, K, A, lda, a_zero, ep, C, ldc, n0, n1);
    return;
  }
  switch (h.mode * 2 + folded) {
    case kSym2 * 2: lb_driver<kSym2, false>(cl, M, A, lda, C, ldc, n0, n1); break;
    case kSym2 * 2 + 1: lb_driver<kSym2, true>(cl, M, A, lda, C, ldc, n0, n1); break;
    case kAsym2 * 2: lb_driver<kAsym2, false>(cl, M, A, lda, C, ldc, n0, n1); break;
    case kAsym2 * 2 + 1: lb_driver<kAsym2, true>(cl, M, A, lda, C, ldc, n0, n1); break;
    case kSym4 * 2: lb_driver<kSym4, false>(cl, M, A, lda, C, ldc, n0, n1); break;
    default: lb_driver<kSym4, true>(cl, M, A, lda, C, ldc, n0, n1); break;
  }
}

}  // namespace avx2
}  // namespace kernels
}  // namespace ternion
