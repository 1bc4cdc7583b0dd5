// Low-bit (ternary 2-bit / 4-bit) GEMM, AVX-512 VNNI. Codes stay packed in memory (2 or 4 bits a
// weight) and are unpacked in registers to int8 (shift, mask, subtract) and fed to vpdpbusd with
// the u8 activations, in the same "32c4" order as the int8 kernel: each int32 lane is one output
// channel, so per-group int32 sums are available per channel with no horizontal reduction.
//
// Groups: K is split in groups of G; each group is padded to Qg = ceil(G/4) quads of 4 k (zero
// weights in the padding), so a quad never straddles two groups and A is read per group, never
// past the group (the last quad of a group with G % 4 != 0 reads only G % 4 bytes).
// At each group end:
//   GroupScaled sym:  S = sum_chains + (-z) * qsum[g]            sum = fma(scale[g], (float)S, sum)
//   GroupScaled asym: P, M likewise with cntP[g], cntM[g];       sum = fma(sp, P, sum); fma(-sn, M, sum)
//   Folded:           tot += mult[g] * S  (asym: mp * P - mn * M), all int32, exact (FoldMode);
//                     at the end tot += (-z) * wsum (sum_k of the expanded int8 weights).
// int32 lanes wrap; every true value fits (K <= kMaxIntegerK), so the modular results are exact.
//
// Packed layout: 64-byte header {magic, bits, N, K, G, form, asym}, then ceil(N/32) panels:
//   codes: ceil(nquads/4) blocks of 4 quads. Channel j of the panel (h = j/16, c = j%16), quad s
//          of the block, byte i of the quad (k = 4*(quad in group) + i inside its group):
//            2-bit: byte  h*64 + 4c + i, bits 2s..2s+1          (block = 128 bytes)
//            4-bit: byte  (s/2)*128 + h*64 + 4c + i, bits 4(s%2)..+3  (block = 256 bytes)
//          code = t + 1 (ternary symmetric), bit0 = [t == +1] | bit1 = [t == -1] (asymmetric),
//          q + 8 (4-bit). Padding codes mean weight 0.
//   meta, per group (stride): GroupScaled sym  float scale[32], int32 qsum[32]          (256)
//                             GroupScaled asym float sp[32], float -sn[32], int32 cntP[32],
//                                              int32 cntM[32]                           (512)
//                             Folded sym       int8 mult[32]                            (32)
//                             Folded asym      int8 mp[32], int8 mn[32]                 (64)
//          rounded up to 64 bytes;
//   wsum (Folded only): int32[32].
#include <cstdlib>
#include <type_traits>

#include <vector>

#include "common-avx512vnni.h"
#include "gemm-q8-avx512vnni.h"

namespace ternion {
namespace kernels {
namespace avx512vnni {
namespace {

constexpr size_t kHeader = 64;

struct Header {
  uint32_t magic;
  int32_t bits, N, K, G, form, asym;
  int32_t pad[9];
};
static_assert(sizeof(Header) == kHeader, "header is one cache line");

struct Layout {
  int bits, N, K, G;
  bool folded, asym;
  int Qg, ngroups, nquads;
  size_t blk_bytes, codes_bytes, meta_stride, meta_bytes, wsum_bytes, panel_bytes;
};

Layout layout_of(int bits, int N, int K, int G, bool folded, bool asym) {
  Layout L;
  L.bits = bits;
  L.N = N;
  L.K = K;
  L.G = G;
  L.folded = folded;
  L.asym = asym && bits == 2;  // asymmetric scales exist for ternary only
  L.Qg = (G + 3) / 4;
  L.ngroups = G > 0 ? K / G : 0;
  L.nquads = L.ngroups * L.Qg;
  L.blk_bytes = bits == 2 ? 128 : 256;
  L.codes_bytes = static_cast<size_t>((L.nquads + 3) / 4) * L.blk_bytes;
  L.meta_stride = folded ? (L.asym ? 64 : 32) : (L.asym ? 512 : 256);
  L.meta_bytes = round_up(static_cast<size_t>(L.ngroups) * L.meta_stride, 64);
  L.wsum_bytes = folded ? 128 : 0;
  L.panel_bytes = L.codes_bytes + L.meta_bytes + L.wsum_bytes;
  return L;
}

Layout layout_of(const LowbitWeights* w) {
  return layout_of(w->bits, w->N, w->K, w->G, w->form == LowbitForm::Folded, w->asym);
}

template <int V>
using IC = std::integral_constant<int, V>;

// How a group's integer sum S is applied (template parameter FM):
//   kScaled   GroupScaled: fp32 fma with the group's scale, groups in order (the reference's order);
//   kMul      Folded: tot += m * S with vpmulld (any group size);
//   kDot16    Folded, |S| < 2^15 (ternary groups up to 128, 4-bit up to 16): one vpdpwssd with
//             S in the low 16 bits of each lane and (m, 0) as the other operand, the high half of
//             S multiplying 0, so tot += m * S exactly at the cost of one vpdpbusd;
//   kDot16One the same with one quad per group (G <= 4): every quad is a group end, so each
//             accumulator chain is applied and cleared alone, the other chains untouched.
// Folded totals are int32 (exact in any order), so they keep CH chains like the sums.
enum FoldMode : int { kScaled = 0, kMul = 1, kDot16 = 2, kDot16One = 3 };

// MR rows x 32 channels of one panel. NA accumulator sets (S, or P and M), CH chains each.
template <int Bits, bool Asym, int FM, bool GAligned, int MR, int CH>
void lb_block(const Layout& L, const uint8_t* A, size_t lda, uint8_t a_zero, const uint8_t* panel,
              const Epilogue& rq, void* C, size_t ldc, int m, int n, int nvalid) {
  constexpr bool Folded = FM != kScaled;
  constexpr int NA = Asym ? 2 : 1;
  constexpr int TC = FM == kDot16One ? CH : 1;  // chains of the folded total
  __m512i acc[NA][MR][2][CH];
  __m512 fs[MR][2];        // GroupScaled: running fp32 sum over groups
  __m512i tot[MR][2][TC];  // Folded: running int32 total
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
    for (int h = 0; h < 2; ++h) {
      fs[r][h] = _mm512_setzero_ps();
      for (int c = 0; c < TC; ++c) tot[r][h][c] = _mm512_setzero_si512();
      for (int i = 0; i < NA; ++i)
        for (int c = 0; c < CH; ++c) acc[i][r][h][c] = _mm512_setzero_si512();
    }

  const uint8_t* codes = panel;
  const uint8_t* meta = panel + L.codes_bytes;
  const int G = L.G, Qg = L.Qg;
  const int tail = G - 4 * (Qg - 1);  // A bytes of a group's last quad (1..4)
  const bool has_z = a_zero != 0;
  const __m512i negz = _mm512_set1_epi32(-static_cast<int32_t>(a_zero));
  const __m512i lowmask = _mm512_set1_epi8(Bits == 2 ? (Asym ? 1 : 3) : 15);
  const __m512i bias8 = _mm512_set1_epi8(Bits == 2 ? 1 : 8);
  int g = 0, left = Qg;
  size_t kq = 0;  // A column of the current quad

  // Group g's multipliers as int32 lanes: m (kMul), or (m, 0) / (-mn, 0) int16 pairs (kDot16*).
  auto load_mult = [&](const uint8_t* mg, __m512i (&mult)[NA][2]) __attribute__((always_inline)) {
    for (int i = 0; i < NA; ++i)
      for (int h = 0; h < 2; ++h) {
        const __m512i v = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(mg + 32 * i + 16 * h)));
        // Multipliers are in [1, 127]: zero-extended they are m, with a zero high half.
        mult[i][h] = (i == 1 && FM != kMul) ? _mm512_sub_epi16(_mm512_setzero_si512(), v) : v;
      }
  };

  // kDot16One: quad chain c is the whole group g.
  auto group_end_one = [&](auto cc) __attribute__((always_inline)) {
    constexpr int c = decltype(cc)::value;
    __m512i mult[NA][2];
    load_mult(meta + static_cast<size_t>(g) * L.meta_stride, mult);
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r)
      for (int h = 0; h < 2; ++h)
        for (int i = 0; i < NA; ++i) {
          tot[r][h][c] = _mm512_dpwssd_epi32(tot[r][h][c], acc[i][r][h][c], mult[i][h]);
          acc[i][r][h][c] = _mm512_setzero_si512();
        }
    ++g;
    left = Qg;
    kq = static_cast<size_t>(g) * G;
  };

  auto group_end = [&]() __attribute__((always_inline)) {
    const uint8_t* mg = meta + static_cast<size_t>(g) * L.meta_stride;
    __m512i S[NA][MR][2];
#pragma GCC unroll 16
    for (int i = 0; i < NA; ++i)
      for (int r = 0; r < MR; ++r)
        for (int h = 0; h < 2; ++h) {
          __m512i v = acc[i][r][h][0];
          acc[i][r][h][0] = _mm512_setzero_si512();
          for (int c = 1; c < CH; ++c) {
            v = _mm512_add_epi32(v, acc[i][r][h][c]);
            acc[i][r][h][c] = _mm512_setzero_si512();
          }
          S[i][r][h] = v;
        }
    if (!Folded) {
      // x = a - z: the group sum is sum t*a - z * sum t, with sum t (or the counts) packed.
      __m512 sc[NA][2];
      __m512i corr[NA][2];
      for (int i = 0; i < NA; ++i)
        for (int h = 0; h < 2; ++h) {
          sc[i][h] = _mm512_loadu_ps(reinterpret_cast<const float*>(mg) + 16 * (2 * i + h));
          const int32_t* cnt = reinterpret_cast<const int32_t*>(mg + NA * 128) + 16 * (2 * i + h);
          corr[i][h] = has_z ? _mm512_mullo_epi32(_mm512_loadu_si512(cnt), negz) : _mm512_setzero_si512();
        }
#pragma GCC unroll 16
      for (int r = 0; r < MR; ++r)
        for (int h = 0; h < 2; ++h)
          for (int i = 0; i < NA; ++i)  // P before M, as the reference
            fs[r][h] = _mm512_fmadd_ps(sc[i][h],
                                       _mm512_cvtepi32_ps(_mm512_add_epi32(S[i][r][h], corr[i][h])),
                                       fs[r][h]);
    } else {
      __m512i mult[NA][2];
      load_mult(mg, mult);
#pragma GCC unroll 16
      for (int r = 0; r < MR; ++r)
        for (int h = 0; h < 2; ++h) {
          if (FM == kMul) {
            tot[r][h][0] = _mm512_add_epi32(tot[r][h][0], _mm512_mullo_epi32(mult[0][h], S[0][r][h]));
            if (Asym)
              tot[r][h][0] = _mm512_sub_epi32(tot[r][h][0], _mm512_mullo_epi32(mult[NA - 1][h], S[NA - 1][r][h]));
          } else {
            for (int i = 0; i < NA; ++i) tot[r][h][0] = _mm512_dpwssd_epi32(tot[r][h][0], S[i][r][h], mult[i][h]);
          }
        }
    }
    ++g;
    left = Qg;
    kq = static_cast<size_t>(g) * G;
  };

  // One quad (4 k of every channel of the panel): unpack, then MR x 2 (x NA) vpdpbusd.
  auto quad = [&](auto sc, const uint8_t* blk) __attribute__((always_inline)) {
    constexpr int s = decltype(sc)::value;
    constexpr int c = s % CH;
    __m512i w[NA][2];
    for (int h = 0; h < 2; ++h) {
      if (Bits == 2) {
        // vpsrlw shifts 16-bit words, but bits 2s..2s+1 of each byte land in bits 0..1 of the
        // same byte for s <= 3, and the mask drops what came from the neighbour byte.
        const __m512i v = _mm512_loadu_si512(blk + 64 * h);
        if (Asym) {
          w[0][h] = _mm512_and_si512(_mm512_srli_epi16(v, 2 * s), lowmask);
          w[NA - 1][h] = _mm512_and_si512(_mm512_srli_epi16(v, 2 * s + 1), lowmask);
        } else {
          w[0][h] = _mm512_sub_epi8(_mm512_and_si512(_mm512_srli_epi16(v, 2 * s), lowmask), bias8);
        }
      } else {
        const __m512i v = _mm512_loadu_si512(blk + (s / 2) * 128 + 64 * h);
        w[0][h] = _mm512_sub_epi8(_mm512_and_si512(_mm512_srli_epi16(v, 4 * (s % 2)), lowmask), bias8);
      }
    }
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      const __m512i a = (GAligned || left > 1) ? bcast_quad(A + r * lda + kq)
                                               : bcast_partial(A + r * lda + kq, tail);
      for (int i = 0; i < NA; ++i)
        for (int h = 0; h < 2; ++h) acc[i][r][h][c] = dpbusd(acc[i][r][h][c], a, w[i][h]);
    }
    kq += 4;
    if (FM == kDot16One) group_end_one(IC<c>{});
    else if (--left == 0) group_end();
  };

  const int nfull = L.nquads / 4, rem = L.nquads % 4;
  const size_t meta_per_block = 4 * L.meta_stride / static_cast<size_t>(Qg);  // bytes of group parameters per block of 4 quads
  if (MR == 1) {
    // The next panel's first 2 KB of both streams: the hardware prefetcher follows this panel's
    // codes and parameters, not the jump to the next panel's (N = 4 GEMV 8% faster from memory).
    const char* next = reinterpret_cast<const char*>(panel) + L.panel_bytes;
    for (size_t o = 0; o < 2048; o += 64) _mm_prefetch(next + o, _MM_HINT_T0);
    const size_t meta_ahead = std::min<size_t>(16 * meta_per_block, L.meta_bytes);
    for (size_t o = 0; o < meta_ahead; o += 64) _mm_prefetch(next + L.codes_bytes + o, _MM_HINT_T0);
  }
  for (int b = 0; b < nfull; ++b) {
    const uint8_t* blk = codes + static_cast<size_t>(b) * L.blk_bytes;
    if (MR == 1) {  // GEMV streams the codes once: prefetch ~2 KB ahead
      _mm_prefetch(reinterpret_cast<const char*>(blk) + 2048, _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(blk) + 2048 + 64, _MM_HINT_T0);
      if (Bits == 4) {
        _mm_prefetch(reinterpret_cast<const char*>(blk) + 2048 + 128, _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(blk) + 2048 + 192, _MM_HINT_T0);
      }
      // and the group parameters, a second stream as long as the codes or longer when groups
      // are small (N = 4 folded: 128 bytes of multipliers per block of 128 bytes of codes; N = 16
      // group-scaled: 256), the same number of blocks (16) ahead.
      const size_t ahead = static_cast<size_t>(g) * L.meta_stride + 16 * meta_per_block;
      for (size_t o = 0; o < meta_per_block; o += 64)
        if (ahead + o < L.meta_bytes) _mm_prefetch(reinterpret_cast<const char*>(meta) + ahead + o, _MM_HINT_T0);
    }
    quad(IC<0>{}, blk);
    quad(IC<1>{}, blk);
    quad(IC<2>{}, blk);
    quad(IC<3>{}, blk);
  }
  if (rem) {
    const uint8_t* blk = codes + static_cast<size_t>(nfull) * L.blk_bytes;
    quad(IC<0>{}, blk);
    if (rem > 1) quad(IC<1>{}, blk);
    if (rem > 2) quad(IC<2>{}, blk);
  }

  if (!Folded) {
    __m512i none[MR][2];
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) none[r][0] = none[r][1] = _mm512_setzero_si512();
    rq.store_tile<MR>(fs, none, n, nvalid, C, ldc, m);
  } else {
    store_int_tile(tot, reinterpret_cast<const int32_t*>(meta + L.meta_bytes), a_zero, rq, C, ldc, m, n, nvalid);
  }
}

template <int Bits, bool Asym, int FM, bool GAligned, int MR, int CH>
void lb_rows(const Layout& L, const uint8_t* A, size_t lda, uint8_t a_zero, const uint8_t* panel,
             const Epilogue& rq, void* C, size_t ldc, int m, int n, int nvalid) {
  lb_block<Bits, Asym, FM, GAligned, MR, CH>(L, A + m * lda, lda, a_zero, panel, rq, C, ldc, m, n, nvalid);
}

// Row blocking: 4 rows (2 when asymmetric: twice the accumulators) keep under 32 zmm without
// spills (checked in the assembly: 3 asymmetric rows spilled).
template <int Bits, bool Asym, int FM, bool GAligned>
void lb_run(const Layout& L, int M, const uint8_t* A, size_t lda, uint8_t a_zero,
            const uint8_t* panels, const Epilogue& rq, void* C, size_t ldc, int n0, int n1) {
  constexpr int MR = Asym ? 2 : 4;
  for (int n = n0; n < n1; n += kNR) {
    const uint8_t* panel = panels + static_cast<size_t>(n / kNR) * L.panel_bytes;
    const int nvalid = n1 - n < kNR ? n1 - n : kNR;
    even_row_blocks(M, MR, [&](int m, int rows) {
      if (rows == MR)
        lb_rows<Bits, Asym, FM, GAligned, MR, 1>(L, A, lda, a_zero, panel, rq, C, ldc, m, n, nvalid);
      else if (rows == 1)
        lb_rows<Bits, Asym, FM, GAligned, 1, Asym ? 2 : 4>(L, A, lda, a_zero, panel, rq, C, ldc, m, n, nvalid);
      else if (rows == 2)
        lb_rows<Bits, Asym, FM, GAligned, 2, Asym ? 1 : 2>(L, A, lda, a_zero, panel, rq, C, ldc, m, n, nvalid);
      else
        lb_rows<Bits, Asym, FM, GAligned, 3, 1>(L, A, lda, a_zero, panel, rq, C, ldc, m, n, nvalid);
    });
  }
}

template <int Bits, bool Asym, int FM>
void lb_run_g(const Layout& L, int M, const uint8_t* A, size_t lda, uint8_t a_zero,
              const uint8_t* panels, const Epilogue& rq, void* C, size_t ldc, int n0, int n1) {
  if (L.G % 4 == 0)
    lb_run<Bits, Asym, FM, true>(L, M, A, lda, a_zero, panels, rq, C, ldc, n0, n1);
  else
    lb_run<Bits, Asym, FM, false>(L, M, A, lda, a_zero, panels, rq, C, ldc, n0, n1);
}

// Folded layers: the group multiply by vpdpwssd where a group's sum fits int16, by vpmulld otherwise.
template <int Bits, bool Asym>
void lb_run_folded(const Layout& L, int M, const uint8_t* A, size_t lda, uint8_t a_zero,
                   const uint8_t* panels, const Epilogue& rq, void* C, size_t ldc, int n0, int n1) {
  if (!lowbit_group_sum_fits_int16(Bits, L.G)) lb_run_g<Bits, Asym, kMul>(L, M, A, lda, a_zero, panels, rq, C, ldc, n0, n1);
  else if (L.Qg == 1) lb_run_g<Bits, Asym, kDot16One>(L, M, A, lda, a_zero, panels, rq, C, ldc, n0, n1);
  else lb_run_g<Bits, Asym, kDot16>(L, M, A, lda, a_zero, panels, rq, C, ldc, n0, n1);
}

// ---- Folded layers with enough rows: expanded to int8 and run by the int8 GEMM's tiles.
// The weight q * m of every (channel, k) is an int8 (kernels.h), so the expanded panels hold the
// same integers the code loop multiplies, in the int8 kernel's "32c4" layout: one vpdpbusd per
// 64 MACs instead of the unpacking and the per-group multiply of the code loop. Expanding a
// panel costs about what 4 rows of GEMM on it do, so it pays from a few rows on (kExpandRows).
constexpr int kExpandRows = 16;

bool can_expand(const Layout& L, int M) {
  // A quad must not straddle groups (the int8 layout pads K only at its end).
  return L.folded && L.G % 4 == 0 && M >= kExpandRows;
}

// 16 channels' multipliers (bytes m[0..15]), each repeated over its channel's 4 bytes: byte
// 4c + i of the result is m[c] (vpshufb works within 128-bit lanes, each holding all 16 bytes).
inline __m512i mult_quads(const int8_t* m) {
  const __m512i v = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(m)));
  const __m512i ctrl = _mm512_set_epi32(0x0F0F0F0F, 0x0E0E0E0E, 0x0D0D0D0D, 0x0C0C0C0C, 0x0B0B0B0B, 0x0A0A0A0A,
                                        0x09090909, 0x08080808, 0x07070707, 0x06060606, 0x05050505, 0x04040404,
                                        0x03030303, 0x02020202, 0x01010101, 0x00000000);
  return _mm512_shuffle_epi8(v, ctrl);
}

// Bytewise q * m of int8 lanes whose products fit int8: the low byte of a 16-bit product depends
// only on the operands' low bytes, so even bytes come from one vpmullw, odd bytes from another.
inline __m512i mul_i8(__m512i q, __m512i m) {
  const __m512i even = _mm512_mullo_epi16(q, m);
  const __m512i odd = _mm512_slli_epi16(_mm512_mullo_epi16(_mm512_srai_epi16(q, 8), _mm512_srai_epi16(m, 8)), 8);
  return _mm512_mask_blend_epi8(static_cast<__mmask64>(0xAAAAAAAAAAAAAAAAull), even, odd);
}

// One low-bit panel (codes, multipliers, weight sums) -> one int8 panel (q8_panel_bytes(K)).
template <int Bits, bool Asym>
void expand_panel(const Layout& L, const uint8_t* panel, uint8_t* out) {
  const uint8_t* codes = panel;
  const uint8_t* meta = panel + L.codes_bytes;
  const int Qg = L.Qg;
  const __m512i eight = _mm512_set1_epi8(8), nib = _mm512_set1_epi8(15);
  __m512i mp[2], mn[2];
  for (int g = 0, q = 0; g < L.ngroups; ++g) {
    const int8_t* mg = reinterpret_cast<const int8_t*>(meta + static_cast<size_t>(g) * L.meta_stride);
    for (int h = 0; h < 2; ++h) {
      mp[h] = mult_quads(mg + 16 * h);
      mn[h] = Asym ? mult_quads(mg + 32 + 16 * h) : mp[h];
    }
    for (int end = q + Qg; q < end; ++q) {
      const int s = q % 4;
      for (int h = 0; h < 2; ++h) {
        __m512i w;
        if (Bits == 2) {
          const __m512i v = _mm512_loadu_si512(codes + static_cast<size_t>(q / 4) * 128 + 64 * h);
          // Symmetric codes t + 1: 2 is +1, 0 is -1. Asymmetric: bit 0 is +1, bit 1 is -1.
          const __mmask64 pos = _mm512_test_epi8_mask(v, _mm512_set1_epi8(static_cast<char>((Asym ? 1 : 2) << (2 * s))));
          const __mmask64 neg = Asym ? _mm512_test_epi8_mask(v, _mm512_set1_epi8(static_cast<char>(2 << (2 * s))))
                                     : _mm512_testn_epi8_mask(v, _mm512_set1_epi8(static_cast<char>(3 << (2 * s))));
          w = _mm512_maskz_mov_epi8(pos, mp[h]);
          w = _mm512_mask_sub_epi8(w, neg, _mm512_setzero_si512(), mn[h]);
        } else {
          const __m512i v = _mm512_loadu_si512(codes + static_cast<size_t>(q / 4) * 256 + (s / 2) * 128 + 64 * h);
          const __m512i c = _mm512_and_si512(s % 2 ? _mm512_srli_epi16(v, 4) : v, nib);
          w = mul_i8(_mm512_sub_epi8(c, eight), mp[h]);
        }
        _mm512_storeu_si512(out + static_cast<size_t>(q) * 128 + 64 * h, w);
      }
    }
  }
  std::memcpy(out + static_cast<size_t>(L.nquads) * 128, meta + L.meta_bytes, 128);  // the weight sums
}

// Columns [n0, n1) in blocks of panels: expand(packed panel, out) writes each panel's expanded
// form (pb bytes) into this call's scratch, a block near `budget` bytes that stays in L2 while
// every row block passes over it, then run(expanded block, its first column, lo, hi) runs the
// tiles over it. Scratch per call: kernels run on many threads at once, nothing is kept.
template <typename Expand, typename Run>
void in_expanded_blocks(const Layout& L, const uint8_t* panels, size_t pb, size_t budget, int n0, int n1, Expand&& expand, Run&& run) {
  const int p0 = n0 / kNR, p1 = (n1 + kNR - 1) / kNR;
  int block = static_cast<int>(budget / pb);
  if (block < 1) block = 1;
  if (block > p1 - p0) block = p1 - p0;
  void* buf = nullptr;
  if (posix_memalign(&buf, 64, static_cast<size_t>(block) * pb) != 0) std::abort();
  uint8_t* out = static_cast<uint8_t*>(buf);
  for (int b0 = p0; b0 < p1; b0 += block) {
    const int b1 = p1 - b0 < block ? p1 : b0 + block;
    for (int p = b0; p < b1; ++p) expand(panels + static_cast<size_t>(p) * L.panel_bytes, out + static_cast<size_t>(p - b0) * pb);
    // The next block's packed panels into L2 while this block's GEMM runs: the expansion reads
    // them once, in a burst the GEMM does not overlap (MLP ternary N=4 at 16 rows and ResNet-50
    // ternary N=4 about 5% faster).
    if (b1 < p1) {
      const char* next = reinterpret_cast<const char*>(panels + static_cast<size_t>(b1) * L.panel_bytes);
      const size_t bytes = static_cast<size_t>(std::min(block, p1 - b1)) * L.panel_bytes;
      for (size_t o = 0; o < bytes; o += 64) _mm_prefetch(next + o, _MM_HINT_T2);
    }
    run(static_cast<const uint8_t*>(out), b0 * kNR, b0 == p0 ? n0 : b0 * kNR, b1 == p1 ? n1 : b1 * kNR);
  }
  std::free(buf);
}

// Folded panels expanded to int8 a block near 256 KB at a time, then run by the int8 tiles over
// all M rows: run(expanded panels, panel bytes, first column, n0, n1), on A's rows (lowbit_gemm)
// or row segments (lowbit_gemm_segs).
template <int Bits, bool Asym, typename Run>
void lb_expanded(const Layout& L, const uint8_t* panels, int n0, int n1, Run&& run) {
  const size_t pb = q8_panel_bytes(L.K);
  in_expanded_blocks(L, panels, pb, 256 * 1024, n0, n1, [&](const uint8_t* panel, uint8_t* o) { expand_panel<Bits, Asym>(L, panel, o); },
                     [&](const uint8_t* out, int first, int lo, int hi) { run(out, pb, first, lo, hi); });
}

// ---- Group-scaled layers with enough rows: the codes expanded to their int8 values (t or q, no
// multiplier: the group scales are fp32) once per block of panels, then tiles that sum each
// group with vpdpbusd on those bytes and apply its scale as the code loop does (fma of the
// group's int32 sum, groups in order): the same integers and the same fp32 operations, bit for
// bit, without unpacking the codes again for every 4 rows. 4-bit layers, whose default form is
// group-scaled, ran conv layers at about half the int8 speed in the code loop. Asymmetric
// ternary layers (TTQ: a positive and a negative scale) expand to two planes, the +1 and the -1
// indicators, whose sums are P and M.

// Bytes of one expanded panel: NA planes of int8 quads in the "32c4" layout.
size_t expanded_scaled_bytes(const Layout& L) { return static_cast<size_t>(L.nquads) * 128 * (L.asym ? 2 : 1); }

// Codes of one panel -> its expanded planes.
template <int Bits, bool Asym>
void expand_codes(const Layout& L, const uint8_t* panel, uint8_t* out) {
  const __m512i lowmask = _mm512_set1_epi8(Bits == 2 ? (Asym ? 1 : 3) : 15), bias8 = _mm512_set1_epi8(Bits == 2 ? 1 : 8);
  const size_t plane = static_cast<size_t>(L.nquads) * 128;
  for (int q = 0; q < L.nquads; ++q) {
    const int s = q % 4;
    for (int h = 0; h < 2; ++h) {
      const __m512i v = Bits == 2 ? _mm512_loadu_si512(panel + static_cast<size_t>(q / 4) * 128 + 64 * h)
                                  : _mm512_loadu_si512(panel + static_cast<size_t>(q / 4) * 256 + (s / 2) * 128 + 64 * h);
      uint8_t* o = out + static_cast<size_t>(q) * 128 + 64 * h;
      if (Asym) {  // bit 0 of a code is [t == +1], bit 1 [t == -1]
        _mm512_storeu_si512(o, _mm512_and_si512(_mm512_srli_epi16(v, 2 * s), lowmask));
        _mm512_storeu_si512(o + plane, _mm512_and_si512(_mm512_srli_epi16(v, 2 * s + 1), lowmask));
      } else {
        const int shift = Bits == 2 ? 2 * s : 4 * (s % 2);
        _mm512_storeu_si512(o, _mm512_sub_epi8(_mm512_and_si512(_mm512_srli_epi16(v, shift), lowmask), bias8));
      }
    }
  }
}

// MR rows x 32 channels of a group-scaled panel: w its expanded planes, meta its group parameters
// (sym: float scale[32], int32 qsum[32]; asym: float sp[32], float -sn[32], int32 cntP[32],
// int32 cntM[32] per group). Each group's int32 sums start at -z * qsum (or the counts): the code
// loop's correction, added first there too (integers, so the same sums). P before M, as the
// reference.
template <bool Asym, int MR>
void gs_block(const Layout& L, const uint8_t* A, size_t lda, uint8_t a_zero, const uint8_t* w, const uint8_t* meta,
              const Epilogue& rq, void* C, size_t ldc, int m, int n, int nvalid) {
  constexpr int NA = Asym ? 2 : 1;
  __m512 fs[MR][2];
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) fs[r][0] = fs[r][1] = _mm512_setzero_ps();
  const __m512i negz = _mm512_set1_epi32(-static_cast<int32_t>(a_zero));
  const int Qg = L.Qg;
  const size_t plane = static_cast<size_t>(L.nquads) * 128;
  for (int g = 0; g < L.ngroups; ++g) {
    const uint8_t* mg = meta + static_cast<size_t>(g) * L.meta_stride;
    const int32_t* cnt = reinterpret_cast<const int32_t*>(mg + NA * 128);
    __m512i acc[NA][MR][2];
    for (int i = 0; i < NA; ++i)
      for (int h = 0; h < 2; ++h) {
        const __m512i c = a_zero ? _mm512_mullo_epi32(_mm512_loadu_si512(cnt + 16 * (2 * i + h)), negz) : _mm512_setzero_si512();
#pragma GCC unroll 16
        for (int r = 0; r < MR; ++r) acc[i][r][h] = c;
      }
    const uint8_t* wq = w + static_cast<size_t>(g) * Qg * 128;
    const uint8_t* a0 = A + static_cast<size_t>(g) * L.G;
    for (int q = 0; q < Qg; ++q, wq += 128, a0 += 4) {
      __m512i wv[NA][2];
      for (int i = 0; i < NA; ++i)
        for (int h = 0; h < 2; ++h) wv[i][h] = _mm512_loadu_si512(wq + i * plane + 64 * h);
#pragma GCC unroll 16
      for (int r = 0; r < MR; ++r) {
        const __m512i a = bcast_quad(a0 + r * lda);
        for (int i = 0; i < NA; ++i)
          for (int h = 0; h < 2; ++h) acc[i][r][h] = dpbusd(acc[i][r][h], a, wv[i][h]);
      }
    }
    for (int i = 0; i < NA; ++i) {
      const float* sc = reinterpret_cast<const float*>(mg) + 32 * i;
      const __m512 s0 = _mm512_loadu_ps(sc), s1 = _mm512_loadu_ps(sc + 16);
#pragma GCC unroll 16
      for (int r = 0; r < MR; ++r) {
        fs[r][0] = _mm512_fmadd_ps(s0, _mm512_cvtepi32_ps(acc[i][r][0]), fs[r][0]);
        fs[r][1] = _mm512_fmadd_ps(s1, _mm512_cvtepi32_ps(acc[i][r][1]), fs[r][1]);
      }
    }
  }
  __m512i none[MR][2];
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) none[r][0] = none[r][1] = _mm512_setzero_si512();
  rq.store_tile<MR>(fs, none, n, nvalid, C, ldc, m);
}

// Every expanded panel of columns [n0, n1) over rows [0, M): `panels` the original ones (for the
// group parameters), `w` the expanded ones from column `first`, pb bytes apart.
template <bool Asym>
void gs_run(const Layout& L, const uint8_t* panels, const uint8_t* w, size_t pb, int first, int M, const uint8_t* A, size_t lda,
            uint8_t a_zero, const Epilogue& rq, void* C, size_t ldc, int n0, int n1) {
  // 6 rows: 12 int32 sums + 12 fp32 totals + the quad's operands, no spills; asymmetric: 4 rows
  // (16 sums, 8 totals; 3 rows measured 1.3x slower at G = 16).
  constexpr int kGsMR = Asym ? 4 : 6;
  for (int n = n0; n < n1; n += kNR) {
    const uint8_t* meta = panels + static_cast<size_t>(n / kNR) * L.panel_bytes + L.codes_bytes;
    const uint8_t* wp = w + static_cast<size_t>((n - first) / kNR) * pb;
    const int nvalid = n1 - n < kNR ? n1 - n : kNR;
    even_row_blocks(M, kGsMR, [&](int m, int rows) {
      const uint8_t* Am = A + static_cast<size_t>(m) * lda;
      switch (rows) {
        case 1: gs_block<Asym, 1>(L, Am, lda, a_zero, wp, meta, rq, C, ldc, m, n, nvalid); break;
        case 2: gs_block<Asym, 2>(L, Am, lda, a_zero, wp, meta, rq, C, ldc, m, n, nvalid); break;
        case 3: gs_block<Asym, 3>(L, Am, lda, a_zero, wp, meta, rq, C, ldc, m, n, nvalid); break;
        case 4: gs_block<Asym, 4>(L, Am, lda, a_zero, wp, meta, rq, C, ldc, m, n, nvalid); break;
        case 5: gs_block<Asym, 5>(L, Am, lda, a_zero, wp, meta, rq, C, ldc, m, n, nvalid); break;
        default: gs_block<Asym, kGsMR>(L, Am, lda, a_zero, wp, meta, rq, C, ldc, m, n, nvalid); break;
      }
    });
  }
}

bool can_expand_scaled(const Layout& L, int M) { return !L.folded && L.G % 4 == 0 && M >= kExpandRows; }

// Blocks of panels expanded into this call's scratch (near 256 KB, in L2 while every row block
// passes over it), then run by gs_run.
void lb_expanded_scaled(const Layout& L, const uint8_t* panels, int M, const uint8_t* A, size_t lda, uint8_t a_zero,
                        const Epilogue& rq, void* C, size_t ldc, int n0, int n1) {
  auto expand = [&](const uint8_t* panel, uint8_t* o) {
    if (L.bits == 4) expand_codes<4, false>(L, panel, o);
    else if (L.asym) expand_codes<2, true>(L, panel, o);
    else expand_codes<2, false>(L, panel, o);
  };
  const size_t pb = expanded_scaled_bytes(L);
  in_expanded_blocks(L, panels, pb, 256 * 1024, n0, n1, expand, [&](const uint8_t* out, int first, int lo, int hi) {
    if (L.asym) gs_run<true>(L, panels, out, pb, first, M, A, lda, a_zero, rq, C, ldc, lo, hi);
    else gs_run<false>(L, panels, out, pb, first, M, A, lda, a_zero, rq, C, ldc, lo, hi);
  });
}

}  // namespace

size_t lowbit_packed_size(const LowbitWeights* w) {
  return kHeader + static_cast<size_t>(num_panels(w->N)) * layout_of(w).panel_bytes;
}

void lowbit_pack(const LowbitWeights* w, void* packed) {
  const Layout L = layout_of(w);
  uint8_t* base = static_cast<uint8_t*>(packed);
  std::memset(base, 0, lowbit_packed_size(w));
  Header hd{};
  hd.magic = kMagicLowbit;
  hd.bits = L.bits;
  hd.N = L.N;
  hd.K = L.K;
  hd.G = L.G;
  hd.form = static_cast<int32_t>(w->form);
  hd.asym = L.asym ? 1 : 0;
  std::memcpy(base, &hd, sizeof hd);

  const int K = L.K, G = L.G, ng = L.ngroups;
  const uint8_t zero_code = L.bits == 2 ? (L.asym ? 0x00 : 0x55) : 0x88;  // weight 0 everywhere
  const int cbits = L.bits == 2 ? 2 : 4;
  const unsigned cmask = (1u << cbits) - 1u;
  for (int p = 0; p < num_panels(L.N); ++p) {
    uint8_t* panel = base + kHeader + static_cast<size_t>(p) * L.panel_bytes;
    uint8_t* meta = panel + L.codes_bytes;
    int32_t* wsum = reinterpret_cast<int32_t*>(meta + L.meta_bytes);
    std::memset(panel, zero_code, L.codes_bytes);
    for (int j = 0; j < kNR; ++j) {
      const int n = p * kNR + j;
      if (n >= L.N) continue;  // padding channel: zero weights, zero meta
      const int h = j / 16, c = j % 16;
      const int8_t* qn = w->q + static_cast<size_t>(n) * K;
      int32_t ws = 0;
      for (int g = 0; g < ng; ++g) {
        int32_t qsum = 0, cp = 0, cm = 0;
        for (int kl = 0; kl < G; ++kl) {
          const int t = qn[static_cast<size_t>(g) * G + kl];
          qsum += t;
          cp += t > 0;
          cm += t < 0;
          unsigned code;
          if (L.bits == 2) code = L.asym ? (t > 0 ? 1u : t < 0 ? 2u : 0u) : static_cast<unsigned>(t + 1);
          else code = static_cast<unsigned>(t + 8);
          const size_t q = static_cast<size_t>(g) * L.Qg + kl / 4;
          const int s = static_cast<int>(q % 4), i = kl % 4;
          size_t byte;
          int sh;
          if (L.bits == 2) {
            byte = (q / 4) * 128 + h * 64 + 4 * c + i;
            sh = 2 * s;
          } else {
            byte = (q / 4) * 256 + (s / 2) * 128 + h * 64 + 4 * c + i;
            sh = 4 * (s % 2);
          }
          panel[byte] = static_cast<uint8_t>((panel[byte] & ~(cmask << sh)) | ((code & cmask) << sh));
        }
        uint8_t* mg = meta + static_cast<size_t>(g) * L.meta_stride;
        const size_t gi = static_cast<size_t>(n) * ng + g;
        if (!L.folded) {
          float* f = reinterpret_cast<float*>(mg);
          int32_t* cnt = reinterpret_cast<int32_t*>(mg + (L.asym ? 256 : 128));
          f[j] = w->scale_pos[gi];
          if (L.asym) {
            f[32 + j] = -w->scale_neg[gi];
            cnt[j] = cp;
            cnt[32 + j] = cm;
          } else {
            cnt[j] = qsum;
          }
        } else {
          const int8_t mp = w->mult_pos[gi];
          mg[j] = static_cast<uint8_t>(mp);
          if (L.asym) {
            const int8_t mn = w->mult_neg[gi];
            mg[32 + j] = static_cast<uint8_t>(mn);
            ws += mp * cp - mn * cm;
          } else {
            ws += mp * qsum;
          }
        }
      }
      if (L.folded) wsum[j] = ws;
    }
  }
}

namespace {

// The layout a packed buffer records in its header.
Layout packed_layout(const void* packed) {
  Header hd;
  std::memcpy(&hd, packed, sizeof hd);
  return layout_of(hd.bits, hd.N, hd.K, hd.G, hd.form == static_cast<int32_t>(LowbitForm::Folded), hd.asym != 0);
}

// lb_expanded for the layout's code width and sign form.
template <typename Run>
void run_expanded(const Layout& L, const uint8_t* panels, int n0, int n1, Run&& run) {
  if (L.bits == 4) lb_expanded<4, false>(L, panels, n0, n1, run);
  else if (L.asym) lb_expanded<2, true>(L, panels, n0, n1, run);
  else lb_expanded<2, false>(L, panels, n0, n1, run);
}

}  // namespace

void lowbit_gemm(int M, int N, int K, const uint8_t* A, size_t lda, uint8_t a_zero,
                 const void* packed, const Requant* rq_in, void* C, size_t ldc, int n0, int n1) {
  const Layout L = packed_layout(packed);
  const Epilogue rq(rq_in ? *rq_in : Requant());
  const uint8_t* panels = static_cast<const uint8_t*>(packed) + kHeader;
  if (can_expand(L, M)) {
    run_expanded(L, panels, n0, n1, [&](const uint8_t* out, size_t pb, int first, int lo, int hi) {
      q8_run_panels(out, pb, first, M, L.K, A, lda, a_zero, rq, C, ldc, lo, hi);
    });
    return;
  }
  if (can_expand_scaled(L, M)) {
    lb_expanded_scaled(L, panels, M, A, lda, a_zero, rq, C, ldc, n0, n1);
    return;
  }
  if (L.bits == 2) {
    if (L.asym) {
      if (L.folded) lb_run_folded<2, true>(L, M, A, lda, a_zero, panels, rq, C, ldc, n0, n1);
      else lb_run_g<2, true, kScaled>(L, M, A, lda, a_zero, panels, rq, C, ldc, n0, n1);
    } else {
      if (L.folded) lb_run_folded<2, false>(L, M, A, lda, a_zero, panels, rq, C, ldc, n0, n1);
      else lb_run_g<2, false, kScaled>(L, M, A, lda, a_zero, panels, rq, C, ldc, n0, n1);
    }
  } else {
    if (L.folded) lb_run_folded<4, false>(L, M, A, lda, a_zero, panels, rq, C, ldc, n0, n1);
    else lb_run_g<4, false, kScaled>(L, M, A, lda, a_zero, panels, rq, C, ldc, n0, n1);
  }
}

void lowbit_gemm_segs(int M, int N, int S, int Ls, const uint8_t* const* segs, uint8_t a_zero, const void* packed,
                      const Requant* rq_in, void* C, size_t ldc, int n0, int n1) {
  const Layout L = packed_layout(packed);
  if (can_expand(L, M)) {
    const Epilogue rq(rq_in ? *rq_in : Requant());
    run_expanded(L, static_cast<const uint8_t*>(packed) + kHeader, n0, n1, [&](const uint8_t* out, size_t pb, int first, int lo, int hi) {
      q8_run_panels_segs(out, pb, first, M, S, Ls, segs, a_zero, rq, C, ldc, lo, hi);
    });
    return;
  }
  // The code loops read A by rows: gather them (few rows, or group-scaled weights) into this
  // thread's buffer, kept between calls (a conv calls once per chunk of pixels).
  const size_t K = static_cast<size_t>(S) * Ls;
  thread_local std::vector<uint8_t> A;
  A.resize(static_cast<size_t>(M) * K);
  for (size_t i = 0; i < static_cast<size_t>(M) * S; ++i) std::memcpy(A.data() + i * Ls, segs[i], static_cast<size_t>(Ls));
  lowbit_gemm(M, N, static_cast<int>(K), A.data(), K, a_zero, packed, rq_in, C, ldc, n0, n1);
}

}  // namespace avx512vnni
}  // namespace kernels
}  // namespace ternion
