// Low-bit (ternary 2-bit / 4-bit) GEMM, AVX-VNNI (256-bit vpdpbusd). Codes stay packed in memory (2 or 4 bits a
// weight) and are unpacked in registers to int8 (shift, mask, subtract) and fed to vpdpbusd with
// the u8 activations, in the same "16c4" order as the int8 kernel: each int32 lane is one output
// channel, so per-group int32 sums are available per channel with no horizontal reduction.
//
// Groups: K is split in groups of G; each group is padded to Qg = ceil(G/4) quads of 4 k (zero
// weights in the padding), so a quad never straddles two groups and A is read per group, never
// past the group (the last quad of a group with G % 4 != 0 reads only G % 4 bytes).
// At each group end:
//   GroupScaled sym:  S = sum_chains + (-z) * qsum[g]            sum = fma(scale[g], (float)S, sum)
//   GroupScaled asym: P, M likewise with cntP[g], cntM[g];       sum = fma(sp, P, sum); fma(-sn, M, sum)
//   Folded:           tot += mult[g] * S  (asym: mp * P - mn * M), all int32, exact;
//                     at the end tot += (-z) * wsum (sum_k of the expanded int8 weights).
// int32 lanes wrap; every true value fits (K <= kMaxIntegerK), so the modular results are exact.
//
// Packed layout: 64-byte header {magic, bits, N, K, G, form, asym}, then ceil(N/16) panels:
//   codes: ceil(nquads/4) blocks of 4 quads. Channel j of the panel (h = j/8, c = j%8), quad s
//          of the block, byte i of the quad (k = 4*(quad in group) + i inside its group):
//            2-bit: byte  h*32 + 4c + i, bits 2s..2s+1          (block = 64 bytes)
//            4-bit: byte  (s/2)*64 + h*32 + 4c + i, bits 4(s%2)..+3  (block = 128 bytes)
//          code = t + 1 (ternary symmetric), bit0 = [t == +1] | bit1 = [t == -1] (asymmetric),
//          q + 8 (4-bit). Padding codes mean weight 0.
//   meta, per group (stride): GroupScaled sym  float scale[16], int32 qsum[16]          (128)
//                             GroupScaled asym float sp[16], float -sn[16], int32 cntP[16],
//                                              int32 cntM[16]                           (256)
//                             Folded sym       int8 mult[16]                            (16)
//                             Folded asym      int8 mp[16], int8 mn[16]                 (32)
//          rounded up to 64 bytes;
//   wsum (Folded only): int32[16].
#include <cstdlib>
#include <type_traits>

#include "common-avxvnni.h"
#include "gemm-q8-avxvnni.h"

namespace ternion {
namespace kernels {
namespace avxvnni {
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
  L.blk_bytes = bits == 2 ? 64 : 128;
  L.codes_bytes = static_cast<size_t>((L.nquads + 3) / 4) * L.blk_bytes;
  L.meta_stride = folded ? (L.asym ? 32 : 16) : (L.asym ? 256 : 128);
  L.meta_bytes = round_up(static_cast<size_t>(L.ngroups) * L.meta_stride, 64);
  L.wsum_bytes = folded ? 64 : 0;
  L.panel_bytes = L.codes_bytes + L.meta_bytes + L.wsum_bytes;
  return L;
}

Layout layout_of(const LowbitWeights* w) {
  return layout_of(w->bits, w->N, w->K, w->G, w->form == LowbitForm::Folded, w->asym);
}

template <int V>
using IC = std::integral_constant<int, V>;

// How a group's integer sum S is applied (template parameter FM), as in the AVX-512 kernel:
//   kScaled   GroupScaled: fp32 fma with the group's scale, groups in order (the reference's order);
//   kMul      Folded: tot += m * S with vpmulld (any group size);
//   kDot16    Folded, |S| < 2^15 (ternary groups up to 128, 4-bit up to 16): one vpdpwssd with
//             S in the low 16 bits of each lane and (m, 0) as the other operand, the high half of
//             S multiplying 0, so tot += m * S exactly;
//   kDot16One the same with one quad per group (G <= 4): each accumulator chain is applied and
//             cleared alone, into its own chain of the total.
enum FoldMode : int { kScaled = 0, kMul = 1, kDot16 = 2, kDot16One = 3 };

// MR rows x 16 channels of one panel. NA accumulator sets (S, or P and M), CH chains each.
template <int Bits, bool Asym, int FM, bool GAligned, int MR, int CH>
void lb_block(const Layout& L, const uint8_t* A, size_t lda, uint8_t a_zero, const uint8_t* panel,
              const Epilogue& rq, void* C, size_t ldc, int m, int n, int nvalid) {
  constexpr bool Folded = FM != kScaled;
  constexpr int NA = Asym ? 2 : 1;
  constexpr int TC = FM == kDot16One ? CH : 1;  // chains of the folded total
  const uint8_t* codes = panel;
  const uint8_t* meta = panel + L.codes_bytes;
  const int G = L.G, Qg = L.Qg;
  const int tail = G - 4 * (Qg - 1);  // A bytes of a group's last quad (1..4)
  const bool has_z = a_zero != 0;
  const __m256i negz = _mm256_set1_epi32(-static_cast<int32_t>(a_zero));

  __m256i acc[NA][MR][2][CH];
  __m256 fs[MR][2];        // GroupScaled: running fp32 sum over groups
  __m256i tot[MR][2][TC];  // Folded: running int32 total, its first chain started at the zero
                           // point's correction -a_zero * wsum (sum_k of the expanded weights)
  __m256i wc[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
  if (Folded) {
    const int32_t* wsum = reinterpret_cast<const int32_t*>(meta + L.meta_bytes);
    for (int h = 0; h < 2; ++h) wc[h] = _mm256_mullo_epi32(load256(wsum + 8 * h), negz);
  }
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
    for (int h = 0; h < 2; ++h) {
      fs[r][h] = _mm256_setzero_ps();
      for (int c = 0; c < TC; ++c) tot[r][h][c] = c == 0 ? wc[h] : _mm256_setzero_si256();
      for (int i = 0; i < NA; ++i)
        for (int c = 0; c < CH; ++c) acc[i][r][h][c] = _mm256_setzero_si256();
    }
  const __m256i lowmask = _mm256_set1_epi8(Bits == 2 ? (Asym ? 1 : 3) : 15);
  const __m256i bias8 = _mm256_set1_epi8(Bits == 2 ? 1 : 8);
  int g = 0, left = Qg;
  size_t kq = 0;  // A column of the current quad

  // Group g's multipliers as int32 lanes: m (kMul), or (m, 0) / (-mn, 0) int16 pairs (kDot16*).
  auto load_mult = [&](const uint8_t* mg, __m256i (&mult)[NA][2]) __attribute__((always_inline)) {
    for (int i = 0; i < NA; ++i)
      for (int h = 0; h < 2; ++h) {
        // Multipliers are in [1, 127]: zero-extended they are m, with a zero high half.
        const __m256i v = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(mg + 16 * i + 8 * h)));
        mult[i][h] = (i == 1 && FM != kMul) ? _mm256_sub_epi16(_mm256_setzero_si256(), v) : v;
      }
  };

  // kDot16One: quad chain c is the whole group g.
  auto group_end_one = [&](auto cc) __attribute__((always_inline)) {
    constexpr int c = decltype(cc)::value;
    __m256i mult[NA][2];
    load_mult(meta + static_cast<size_t>(g) * L.meta_stride, mult);
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r)
      for (int h = 0; h < 2; ++h)
        for (int i = 0; i < NA; ++i) {
          tot[r][h][c] = dpwssd(tot[r][h][c], acc[i][r][h][c], mult[i][h]);
          acc[i][r][h][c] = _mm256_setzero_si256();
        }
    ++g;
    left = Qg;
    kq = static_cast<size_t>(g) * G;
  };

  auto group_end = [&]() __attribute__((always_inline)) {
    const uint8_t* mg = meta + static_cast<size_t>(g) * L.meta_stride;
    __m256i S[NA][MR][2];
#pragma GCC unroll 16
    for (int i = 0; i < NA; ++i)
      for (int r = 0; r < MR; ++r)
        for (int h = 0; h < 2; ++h) {
          __m256i v = acc[i][r][h][0];
          acc[i][r][h][0] = _mm256_setzero_si256();
          for (int c = 1; c < CH; ++c) {
            v = _mm256_add_epi32(v, acc[i][r][h][c]);
            acc[i][r][h][c] = _mm256_setzero_si256();
          }
          S[i][r][h] = v;
        }
    if (!Folded) {
      // x = a - z: the group sum is sum t*a - z * sum t, with sum t (or the counts) packed.
      __m256 sc[NA][2];
      __m256i corr[NA][2];
      for (int i = 0; i < NA; ++i)
        for (int h = 0; h < 2; ++h) {
          sc[i][h] = _mm256_loadu_ps(reinterpret_cast<const float*>(mg) + 8 * (2 * i + h));
          const int32_t* cnt = reinterpret_cast<const int32_t*>(mg + NA * 64) + 8 * (2 * i + h);
          corr[i][h] = has_z ? _mm256_mullo_epi32(load256(cnt), negz) : _mm256_setzero_si256();
        }
#pragma GCC unroll 16
      for (int r = 0; r < MR; ++r)
        for (int h = 0; h < 2; ++h)
          for (int i = 0; i < NA; ++i)  // P before M, as the reference
            fs[r][h] = _mm256_fmadd_ps(sc[i][h],
                                       _mm256_cvtepi32_ps(_mm256_add_epi32(S[i][r][h], corr[i][h])),
                                       fs[r][h]);
    } else {
      __m256i mult[NA][2];
      load_mult(mg, mult);
#pragma GCC unroll 16
      for (int r = 0; r < MR; ++r)
        for (int h = 0; h < 2; ++h) {
          if (FM == kMul) {
            tot[r][h][0] = _mm256_add_epi32(tot[r][h][0], _mm256_mullo_epi32(mult[0][h], S[0][r][h]));
            if (Asym)
              tot[r][h][0] = _mm256_sub_epi32(tot[r][h][0], _mm256_mullo_epi32(mult[NA - 1][h], S[NA - 1][r][h]));
          } else {
            for (int i = 0; i < NA; ++i) tot[r][h][0] = dpwssd(tot[r][h][0], S[i][r][h], mult[i][h]);
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
    __m256i w[NA][2];
    for (int h = 0; h < 2; ++h) {
      if (Bits == 2) {
        // vpsrlw shifts 16-bit words, but bits 2s..2s+1 of each byte land in bits 0..1 of the
        // same byte for s <= 3, and the mask drops what came from the neighbour byte.
        const __m256i v = load256(blk + 32 * h);
        if (Asym) {
          w[0][h] = _mm256_and_si256(_mm256_srli_epi16(v, 2 * s), lowmask);
          w[NA - 1][h] = _mm256_and_si256(_mm256_srli_epi16(v, 2 * s + 1), lowmask);
        } else {
          w[0][h] = _mm256_sub_epi8(_mm256_and_si256(_mm256_srli_epi16(v, 2 * s), lowmask), bias8);
        }
      } else {
        const __m256i v = load256(blk + (s / 2) * 64 + 32 * h);
        w[0][h] = _mm256_sub_epi8(_mm256_and_si256(_mm256_srli_epi16(v, 4 * (s % 2)), lowmask), bias8);
      }
    }
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      const __m256i a = (GAligned || left > 1) ? bcast_quad(A + r * lda + kq)
                                               : bcast_partial(A + r * lda + kq, tail);
      for (int i = 0; i < NA; ++i)
        for (int h = 0; h < 2; ++h) acc[i][r][h][c] = dpbusd(acc[i][r][h][c], a, w[i][h]);
    }
    kq += 4;
    if (FM == kDot16One) group_end_one(IC<c>{});
    else if (--left == 0) group_end();
  };

  const int nfull = L.nquads / 4, rem = L.nquads % 4;
  const size_t meta_per_block = 4 * L.meta_stride / static_cast<size_t>(Qg);
  if (MR == 1) {
    // The next panel's first 2 KB of codes and of group parameters (as on AVX-512): the hardware
    // prefetcher follows this panel's two streams, not the jump to the next panel's.
    const char* next = reinterpret_cast<const char*>(panel) + L.panel_bytes;
    for (size_t o = 0; o < 2048; o += 64) _mm_prefetch(next + o, _MM_HINT_T0);
    const size_t meta_ahead = std::min<size_t>(16 * meta_per_block, L.meta_bytes);
    for (size_t o = 0; o < meta_ahead; o += 64) _mm_prefetch(next + L.codes_bytes + o, _MM_HINT_T0);
  }
  for (int b = 0; b < nfull; ++b) {
    const uint8_t* blk = codes + static_cast<size_t>(b) * L.blk_bytes;
    if (MR == 1) {  // GEMV streams the codes once: prefetch ~2 KB ahead
      _mm_prefetch(reinterpret_cast<const char*>(blk) + 2048, _MM_HINT_T0);
      if (Bits == 4) _mm_prefetch(reinterpret_cast<const char*>(blk) + 2048 + 64, _MM_HINT_T0);
      // and the group parameters, the same 16 blocks ahead (a second stream: as long as the
      // codes for folded N = 4). MLP ternary N=4 on this table: 2.05-2.28 -> 1.37-1.50 ms.
      const size_t ahead = static_cast<size_t>(b + 16) * meta_per_block;
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

  if (Folded) {
    __m256i v[MR][2];
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r)
      for (int h = 0; h < 2; ++h) {
        v[r][h] = tot[r][h][0];
        for (int c = 1; c < TC; ++c) v[r][h] = _mm256_add_epi32(v[r][h], tot[r][h][c]);
      }
    rq.store_tile<MR>(v, n, nvalid, C, ldc, m);
  } else {
    rq.store_tile<MR>(fs, n, nvalid, C, ldc, m);
  }
}

template <int Bits, bool Asym, int FM, bool GAligned, int MR, int CH>
void lb_rows(const Layout& L, const uint8_t* A, size_t lda, uint8_t a_zero, const uint8_t* panel,
             const Epilogue& rq, void* C, size_t ldc, int m, int n, int nvalid) {
  lb_block<Bits, Asym, FM, GAligned, MR, CH>(L, A + m * lda, lda, a_zero, panel, rq, C, ldc, m, n, nvalid);
}

// Row blocking: 2 rows (1 when asymmetric: twice the accumulators) keep under 16 ymm.
template <int Bits, bool Asym, int FM, bool GAligned>
void lb_run(const Layout& L, int M, const uint8_t* A, size_t lda, uint8_t a_zero,
            const uint8_t* panels, const Epilogue& rq, void* C, size_t ldc, int n0, int n1) {
  constexpr int MR = Asym ? 1 : 2;
  for (int n = n0; n < n1; n += kNR) {
    const uint8_t* panel = panels + static_cast<size_t>(n / kNR) * L.panel_bytes;
    const int nvalid = n1 - n < kNR ? n1 - n : kNR;
    int m = 0;
    for (; m + MR <= M; m += MR)
      lb_rows<Bits, Asym, FM, GAligned, MR, 1>(L, A, lda, a_zero, panel, rq, C, ldc, m, n, nvalid);
    if (!Asym && M - m == 1)
      lb_rows<Bits, Asym, FM, GAligned, 1, 2>(L, A, lda, a_zero, panel, rq, C, ldc, m, n, nvalid);
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
// same integers the code loop multiplies, in the int8 kernel's "16c4" layout: one vpdpbusd per
// 32 MACs instead of the unpacking and the per-group multiply of the code loop (which made
// folded N = 4 about half as fast as int8 on conv layers). As on AVX-512, from 16 rows on.
constexpr int kExpandRows = 16;

bool can_expand(const Layout& L, int M) {
  // A quad must not straddle groups (the int8 layout pads K only at its end).
  return L.folded && L.G % 4 == 0 && M >= kExpandRows;
}

// 8 channels' multipliers (bytes m[0..7]), each repeated over its channel's 4 bytes.
inline __m256i mult_quads(const int8_t* m) {
  int64_t v;
  std::memcpy(&v, m, 8);
  const __m256i ctrl = _mm256_setr_epi8(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3,
                                        4, 4, 4, 4, 5, 5, 5, 5, 6, 6, 6, 6, 7, 7, 7, 7);
  return _mm256_shuffle_epi8(_mm256_set1_epi64x(v), ctrl);
}

// Bytewise q * m of int8 lanes whose products fit int8: the low byte of a 16-bit product depends
// only on the operands' low bytes, so even bytes come from one vpmullw, odd bytes from another.
inline __m256i mul_i8(__m256i q, __m256i m) {
  const __m256i even = _mm256_mullo_epi16(q, m);
  const __m256i odd = _mm256_slli_epi16(_mm256_mullo_epi16(_mm256_srai_epi16(q, 8), _mm256_srai_epi16(m, 8)), 8);
  return _mm256_blendv_epi8(even, odd, _mm256_set1_epi16(static_cast<int16_t>(0xFF00)));
}

// One low-bit panel (codes, multipliers, weight sums) -> one int8 panel (q8_panel_bytes(K)).
template <int Bits, bool Asym>
void expand_panel(const Layout& L, const uint8_t* panel, uint8_t* out) {
  const uint8_t* codes = panel;
  const uint8_t* meta = panel + L.codes_bytes;
  const __m256i one = _mm256_set1_epi8(1), three = _mm256_set1_epi8(3), eight = _mm256_set1_epi8(8), nib = _mm256_set1_epi8(15);
  __m256i mp[2], mn[2];
  for (int g = 0, q = 0; g < L.ngroups; ++g) {
    const int8_t* mg = reinterpret_cast<const int8_t*>(meta + static_cast<size_t>(g) * L.meta_stride);
    for (int h = 0; h < 2; ++h) {
      mp[h] = mult_quads(mg + 8 * h);
      mn[h] = Asym ? mult_quads(mg + 16 + 8 * h) : mp[h];
    }
    for (int end = q + L.Qg; q < end; ++q) {
      const int s = q % 4;
      const __m128i sh = _mm_cvtsi32_si128(2 * s);
      for (int h = 0; h < 2; ++h) {
        __m256i w;
        if (Bits == 2) {
          const __m256i v = _mm256_srl_epi16(load256(codes + static_cast<size_t>(q / 4) * 64 + 32 * h), sh);
          if (Asym) {  // indicators: bit 0 is +1, bit 1 is -1; vpsignb gives m or 0 for each
            w = _mm256_sub_epi8(_mm256_sign_epi8(mp[h], _mm256_and_si256(v, one)),
                                _mm256_sign_epi8(mn[h], _mm256_and_si256(_mm256_srli_epi16(v, 1), one)));
          } else {  // codes t + 1: vpsignb gives m, 0 or -m
            w = _mm256_sign_epi8(mp[h], _mm256_sub_epi8(_mm256_and_si256(v, three), one));
          }
        } else {
          const __m256i v = load256(codes + static_cast<size_t>(q / 4) * 128 + (s / 2) * 64 + 32 * h);
          const __m256i c = _mm256_and_si256(s % 2 ? _mm256_srli_epi16(v, 4) : v, nib);
          w = mul_i8(_mm256_sub_epi8(c, eight), mp[h]);
        }
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + static_cast<size_t>(q) * 64 + 32 * h), w);
      }
    }
  }
  std::memcpy(out + static_cast<size_t>(L.nquads) * 64, meta + L.meta_bytes, 64);  // the weight sums
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
    // The next block's packed panels into L2 while this block's GEMM runs (as on AVX-512).
    if (b1 < p1) {
      const char* next = reinterpret_cast<const char*>(panels + static_cast<size_t>(b1) * L.panel_bytes);
      const size_t bytes = static_cast<size_t>(std::min(block, p1 - b1)) * L.panel_bytes;
      for (size_t o = 0; o < bytes; o += 64) _mm_prefetch(next + o, _MM_HINT_T2);
    }
    run(static_cast<const uint8_t*>(out), b0 * kNR, b0 == p0 ? n0 : b0 * kNR, b1 == p1 ? n1 : b1 * kNR);
  }
  std::free(buf);
}

// Folded panels expanded to int8 a block near 128 KB at a time, then run by the int8 tiles over
// all M rows.
template <int Bits, bool Asym>
void lb_expanded(const Layout& L, int M, const uint8_t* A, size_t lda, uint8_t a_zero, const uint8_t* panels,
                 const Epilogue& rq, void* C, size_t ldc, int n0, int n1) {
  const size_t pb = q8_panel_bytes(L.K);
  in_expanded_blocks(L, panels, pb, 128 * 1024, n0, n1, [&](const uint8_t* panel, uint8_t* o) { expand_panel<Bits, Asym>(L, panel, o); },
                     [&](const uint8_t* out, int first, int lo, int hi) {
                       q8_run_panels(out, pb, first, M, L.K, A, lda, a_zero, rq, C, ldc, lo, hi);
                     });
}

// ---- Group-scaled layers with enough rows: the codes expanded to their int8 values (t or q, no
// multiplier: the group scales are fp32) once per block of panels, then tiles that sum each
// group with vpdpbusd on those bytes and apply its scale as the code loop does (fma of the
// group's int32 sum, groups in order): the same integers and the same fp32 operations, bit for
// bit, without unpacking the codes again for every row block. Asymmetric ternary layers (TTQ: a
// positive and a negative scale) expand to two planes, the +1 and the -1 indicators, whose sums
// are P and M. As the AVX-512 kernel's.

// Bytes of one expanded panel: NA planes of int8 quads in the "16c4" layout (64 bytes a quad).
size_t expanded_scaled_bytes(const Layout& L) { return static_cast<size_t>(L.nquads) * 64 * (L.asym ? 2 : 1); }

// Codes of one panel -> its expanded planes.
template <int Bits, bool Asym>
void expand_codes(const Layout& L, const uint8_t* panel, uint8_t* out) {
  const __m256i lowmask = _mm256_set1_epi8(Bits == 2 ? (Asym ? 1 : 3) : 15), bias8 = _mm256_set1_epi8(Bits == 2 ? 1 : 8);
  const size_t plane = static_cast<size_t>(L.nquads) * 64;
  for (int q = 0; q < L.nquads; ++q) {
    const int s = q % 4;
    const __m128i sh = _mm_cvtsi32_si128(Bits == 2 ? 2 * s : 4 * (s % 2));
    for (int h = 0; h < 2; ++h) {
      const __m256i v = Bits == 2 ? load256(panel + static_cast<size_t>(q / 4) * 64 + 32 * h)
                                  : load256(panel + static_cast<size_t>(q / 4) * 128 + (s / 2) * 64 + 32 * h);
      const __m256i vs = _mm256_srl_epi16(v, sh);
      __m256i* o = reinterpret_cast<__m256i*>(out + static_cast<size_t>(q) * 64 + 32 * h);
      if (Asym) {  // bit 0 of a code is [t == +1], bit 1 [t == -1]
        _mm256_storeu_si256(o, _mm256_and_si256(vs, lowmask));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(reinterpret_cast<uint8_t*>(o) + plane),
                            _mm256_and_si256(_mm256_srli_epi16(vs, 1), lowmask));
      } else {
        _mm256_storeu_si256(o, _mm256_sub_epi8(_mm256_and_si256(vs, lowmask), bias8));
      }
    }
  }
}

// MR rows x 16 channels of a group-scaled panel: w its expanded planes, meta its group parameters
// (sym: float scale[16], int32 qsum[16]; asym: float sp[16], float -sn[16], int32 cntP[16],
// int32 cntM[16] per group). Each group's int32 sums start at -z * qsum (or the counts): the code
// loop adds that correction at the group end (integers, so the same sums). P before M, as the
// reference.
template <bool Asym, int MR>
void gs_block(const Layout& L, const uint8_t* A, size_t lda, uint8_t a_zero, const uint8_t* w, const uint8_t* meta,
              const Epilogue& rq, void* C, size_t ldc, int m, int n, int nvalid) {
  constexpr int NA = Asym ? 2 : 1;
  __m256 fs[MR][2];
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) fs[r][0] = fs[r][1] = _mm256_setzero_ps();
  const __m256i negz = _mm256_set1_epi32(-static_cast<int32_t>(a_zero));
  const int Qg = L.Qg;
  const size_t plane = static_cast<size_t>(L.nquads) * 64;
  for (int g = 0; g < L.ngroups; ++g) {
    const uint8_t* mg = meta + static_cast<size_t>(g) * L.meta_stride;
    const int32_t* cnt = reinterpret_cast<const int32_t*>(mg + NA * 64);
    __m256i acc[NA][MR][2];
    for (int i = 0; i < NA; ++i)
      for (int h = 0; h < 2; ++h) {
        const __m256i c = a_zero ? _mm256_mullo_epi32(load256(cnt + 8 * (2 * i + h)), negz) : _mm256_setzero_si256();
#pragma GCC unroll 16
        for (int r = 0; r < MR; ++r) acc[i][r][h] = c;
      }
    const uint8_t* wq = w + static_cast<size_t>(g) * Qg * 64;
    const uint8_t* a0 = A + static_cast<size_t>(g) * L.G;
    for (int q = 0; q < Qg; ++q, wq += 64, a0 += 4) {
      if (Asym) {  // the rows' broadcasts first, then each weight vector loaded once for all rows
        __m256i a[MR];
#pragma GCC unroll 16
        for (int r = 0; r < MR; ++r) a[r] = bcast_quad(a0 + r * lda);
        for (int i = 0; i < NA; ++i)
          for (int h = 0; h < 2; ++h) {
            const __m256i wv = load256(wq + i * plane + 32 * h);
#pragma GCC unroll 16
            for (int r = 0; r < MR; ++r) acc[i][r][h] = dpbusd(acc[i][r][h], a[r], wv);
          }
      } else {  // one broadcast live at a time: the two weight vectors stay in registers
#pragma GCC unroll 16
        for (int r = 0; r < MR; ++r) {
          const __m256i a = bcast_quad(a0 + r * lda);
          for (int h = 0; h < 2; ++h) acc[0][r][h] = dpbusd(acc[0][r][h], a, load256(wq + 32 * h));
        }
      }
    }
    for (int i = 0; i < NA; ++i) {
      const float* sc = reinterpret_cast<const float*>(mg) + 16 * i;
      const __m256 s0 = _mm256_loadu_ps(sc), s1 = _mm256_loadu_ps(sc + 8);
#pragma GCC unroll 16
      for (int r = 0; r < MR; ++r) {
        fs[r][0] = _mm256_fmadd_ps(s0, _mm256_cvtepi32_ps(acc[i][r][0]), fs[r][0]);
        fs[r][1] = _mm256_fmadd_ps(s1, _mm256_cvtepi32_ps(acc[i][r][1]), fs[r][1]);
      }
    }
  }
  rq.store_tile<MR>(fs, n, nvalid, C, ldc, m);
}

// Rows [0, M) in ceil(M / mr) blocks whose sizes differ by at most one: 17 rows in blocks of 3
// become 3,3,3,3,3,2 rather than leaving a lone row a pass over the panel of its own.
template <typename F>
void even_row_blocks(int M, int mr, F&& f) {
  const int nb = (M + mr - 1) / mr, big = (M + nb - 1) / nb, nbig = M - (big - 1) * nb;
  for (int b = 0, m = 0; b < nb; m += b < nbig ? big : big - 1, ++b) f(m, b < nbig ? big : big - 1);
}

// Every expanded panel of columns [n0, n1) over rows [0, M): `panels` the original ones (for the
// group parameters), `w` the expanded ones from column `first`, pb bytes apart.
template <bool Asym>
void gs_run(const Layout& L, const uint8_t* panels, const uint8_t* w, size_t pb, int first, int M, const uint8_t* A, size_t lda,
            uint8_t a_zero, const Epilogue& rq, void* C, size_t ldc, int n0, int n1) {
  // 16 ymm, no spills: sym 3 rows (6 int32 sums, 6 fp32 totals, a broadcast, the two weight
  // vectors; 2 rows measured 1.08x slower), asym 2 rows (8 sums, 4 totals, two broadcasts, one
  // weight vector; 1 row 1.3x slower).
  constexpr int kGsMR = Asym ? 2 : 3;
  for (int n = n0; n < n1; n += kNR) {
    const uint8_t* meta = panels + static_cast<size_t>(n / kNR) * L.panel_bytes + L.codes_bytes;
    const uint8_t* wp = w + static_cast<size_t>((n - first) / kNR) * pb;
    const int nvalid = n1 - n < kNR ? n1 - n : kNR;
    even_row_blocks(M, kGsMR, [&](int m, int rows) {
      const uint8_t* Am = A + static_cast<size_t>(m) * lda;
      switch (rows) {
        case 1: gs_block<Asym, 1>(L, Am, lda, a_zero, wp, meta, rq, C, ldc, m, n, nvalid); break;
        case 2: gs_block<Asym, 2>(L, Am, lda, a_zero, wp, meta, rq, C, ldc, m, n, nvalid); break;
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
      const int h = j / 8, c = j % 8;
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
            byte = (q / 4) * 64 + h * 32 + 4 * c + i;
            sh = 2 * s;
          } else {
            byte = (q / 4) * 128 + (s / 2) * 64 + h * 32 + 4 * c + i;
            sh = 4 * (s % 2);
          }
          panel[byte] = static_cast<uint8_t>((panel[byte] & ~(cmask << sh)) | ((code & cmask) << sh));
        }
        uint8_t* mg = meta + static_cast<size_t>(g) * L.meta_stride;
        const size_t gi = static_cast<size_t>(n) * ng + g;
        if (!L.folded) {
          float* f = reinterpret_cast<float*>(mg);
          int32_t* cnt = reinterpret_cast<int32_t*>(mg + (L.asym ? 128 : 64));
          f[j] = w->scale_pos[gi];
          if (L.asym) {
            f[16 + j] = -w->scale_neg[gi];
            cnt[j] = cp;
            cnt[16 + j] = cm;
          } else {
            cnt[j] = qsum;
          }
        } else {
          const int8_t mp = w->mult_pos[gi];
          mg[j] = static_cast<uint8_t>(mp);
          if (L.asym) {
            const int8_t mn = w->mult_neg[gi];
            mg[16 + j] = static_cast<uint8_t>(mn);
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

void lowbit_gemm(int M, int N, int K, const uint8_t* A, size_t lda, uint8_t a_zero,
                 const void* packed, const Requant* rq_in, void* C, size_t ldc, int n0, int n1) {
  Header hd;
  std::memcpy(&hd, packed, sizeof hd);
  const Layout L = layout_of(hd.bits, hd.N, hd.K, hd.G, hd.form == static_cast<int32_t>(LowbitForm::Folded),
                             hd.asym != 0);
  const Epilogue rq(rq_in ? *rq_in : Requant(), C);
  const uint8_t* panels = static_cast<const uint8_t*>(packed) + kHeader;
  if (can_expand(L, M)) {
    if (L.bits == 4) lb_expanded<4, false>(L, M, A, lda, a_zero, panels, rq, C, ldc, n0, n1);
    else if (L.asym) lb_expanded<2, true>(L, M, A, lda, a_zero, panels, rq, C, ldc, n0, n1);
    else lb_expanded<2, false>(L, M, A, lda, a_zero, panels, rq, C, ldc, n0, n1);
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

}  // namespace avxvnni
}  // namespace kernels
}  // namespace ternion
