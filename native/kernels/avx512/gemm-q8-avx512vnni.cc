// int8 GEMM, AVX-512 VNNI: vpdpbusd with A (u8) broadcast 4 bytes at a time and weights laid out
// "32c4": one zmm holds 16 channels x 4 consecutive k, so each int32 lane accumulates one output
// channel and no horizontal reduction is needed. 8x32 register block (16 accumulators).
//
// a_zero: sum (a - z) w = sum a w - z * sum_k w, with sum_k w (wsum) precomputed at pack time.
// int32 wraps in the vector unit; the true result fits (|K| <= kMaxIntegerK), so the modular
// result is exact.
//
// Packed layout: a 64-byte header {magic, N, K}, then ceil(N/32) panels of
// Kq = ceil(K/4) quads x 128 bytes + 128 bytes of wsum. Quad q of panel p: byte h*64 + 4c + i
// is W[32p + 16h + c][4q + i] (zero past N or K); then int32 wsum[32].
#include <type_traits>

#include "common-avx512vnni.h"
#include "gemm-q8-avx512vnni.h"

namespace ternion {
namespace kernels {
namespace avx512vnni {
namespace {

constexpr size_t kHeader = 64;
constexpr int kMR = 8;

size_t panel_bytes(int K) { return q8_panel_bytes(K); }

// Accumulates quads [0, nq) of a panel (w: its first quad) for MR rows, row r's 4 bytes of quad q
// at row(r) + 4 q. CH accumulator chains per output (quads round-robin) hide vpdpbusd latency
// for small MR. NH halves of 16 channels: 2, or 1 when at most 16 of the panel's channels are
// wanted (N = 16, or the last panel of N = 144: the other half would be computed for nothing).
// Inlined into each caller, so row(r) compiles to its own addressing (A + r * lda, or one
// pointer per row for segments).
template <int MR, int CH, int NH, typename Row>
inline __attribute__((always_inline)) void q8_quads(__m512i (&acc)[MR][2][CH], int nq, const uint8_t* w, Row&& row) {
  int q = 0;
  for (; q + 4 <= nq; q += 4) {
    const uint8_t* wq = w + static_cast<size_t>(q) * 128;
    // Software prefetch ~2 KB ahead (8 lines per 4 quads): a GEMV streams the weights once, and
    // a block of rows re-reads its panel from L2, where the hardware prefetcher alone left the
    // 7x7 layers (49 rows, a 147 KB panel per 32 channels) at about 75% of the vpdpbusd peak.
#pragma GCC unroll 8
    for (int i = 0; i < 8; ++i) _mm_prefetch(reinterpret_cast<const char*>(wq) + 2048 + 64 * i, _MM_HINT_T0);
#pragma GCC unroll 4
    for (int s = 0; s < 4; ++s) {
      const __m512i w0 = _mm512_loadu_si512(wq + 128 * s);
      const __m512i w1 = NH == 2 ? _mm512_loadu_si512(wq + 128 * s + 64) : w0;
#pragma GCC unroll 16
      for (int r = 0; r < MR; ++r) {
        const __m512i a = bcast_quad(row(r) + 4 * (q + s));
        acc[r][0][s % CH] = dpbusd(acc[r][0][s % CH], a, w0);
        if (NH == 2) acc[r][1][s % CH] = dpbusd(acc[r][1][s % CH], a, w1);
      }
    }
  }
  for (; q < nq; ++q) {
    const __m512i w0 = _mm512_loadu_si512(w + static_cast<size_t>(q) * 128);
    const __m512i w1 = NH == 2 ? _mm512_loadu_si512(w + static_cast<size_t>(q) * 128 + 64) : w0;
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      const __m512i a = bcast_quad(row(r) + 4 * q);
      acc[r][0][0] = dpbusd(acc[r][0][0], a, w0);
      if (NH == 2) acc[r][1][0] = dpbusd(acc[r][1][0], a, w1);
    }
  }
}

// Accumulators at zero, the first chain of each row at the zero point's correction.
template <int MR, int CH>
inline __attribute__((always_inline)) void start(__m512i (&acc)[MR][2][CH], const int32_t* wsum, uint8_t a_zero) {
  __m512i corr[2];
  zero_point_terms(wsum, a_zero, corr);
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
    for (int h = 0; h < 2; ++h)
      for (int c = 0; c < CH; ++c) acc[r][h][c] = c == 0 ? corr[h] : _mm512_setzero_si512();
}

// MR rows x 32 channels (16 with NH = 1) of one panel.
template <int MR, int CH, int NH>
void q8_block(int K, const uint8_t* A, size_t lda, uint8_t a_zero, const uint8_t* panel,
              const Epilogue& rq, void* C, size_t ldc, int m, int n, int nvalid) {
  __m512i acc[MR][2][CH];
  const int32_t* wsum = reinterpret_cast<const int32_t*>(panel + static_cast<size_t>((K + 3) / 4) * 128);
  start(acc, wsum, a_zero);
  const int nfull = K / 4;  // quads with 4 valid A bytes
  q8_quads<MR, CH, NH>(acc, nfull, panel, [&](int r) { return A + r * lda; });
  if (K % 4) {  // last quad: only K % 4 bytes of A exist; the packed weights past K are zero
    const __m512i w0 = _mm512_loadu_si512(panel + static_cast<size_t>(nfull) * 128);
    const __m512i w1 = NH == 2 ? _mm512_loadu_si512(panel + static_cast<size_t>(nfull) * 128 + 64) : w0;
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      const __m512i a = bcast_partial(A + r * lda + 4 * nfull, K % 4);
      acc[r][0][0] = dpbusd(acc[r][0][0], a, w0);
      if (NH == 2) acc[r][1][0] = dpbusd(acc[r][1][0], a, w1);
    }
  }
  store_int_tile<MR, CH, NH, true>(acc, wsum, a_zero, rq, C, ldc, m, n, nvalid);
}

// q8_block over row segments (q8_gemm_segs): rows m .. m + MR - 1, each the concatenation of S
// runs of L bytes (L % 4 == 0) at segs[row * S + s]; the panel's quads run on across segments.
template <int MR, int CH, int NH>
void q8_block_segs(int S, int L, const uint8_t* const* segs, uint8_t a_zero, const uint8_t* panel,
                   const Epilogue& rq, void* C, size_t ldc, int m, int n, int nvalid) {
  __m512i acc[MR][2][CH];
  const int lq = L / 4;
  const int32_t* wsum = reinterpret_cast<const int32_t*>(panel + static_cast<size_t>(S) * lq * 128);
  start(acc, wsum, a_zero);
  for (int sg = 0; sg < S; ++sg) {
    const uint8_t* a[MR];
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) a[r] = segs[static_cast<size_t>(m + r) * S + sg];
    q8_quads<MR, CH, NH>(acc, lq, panel + static_cast<size_t>(sg) * lq * 128, [&](int r) { return a[r]; });
  }
  store_int_tile<MR, CH, NH, true>(acc, wsum, a_zero, rq, C, ldc, m, n, nvalid);
}


}  // namespace

size_t q8_packed_size(int N, int K) {
  return kHeader + static_cast<size_t>(num_panels(N)) * panel_bytes(K);
}

void q8_pack(const int8_t* W, int N, int K, void* packed) {
  uint8_t* base = static_cast<uint8_t*>(packed);
  std::memset(base, 0, q8_packed_size(N, K));
  const uint32_t magic = kMagicQ8;
  std::memcpy(base, &magic, 4);
  std::memcpy(base + 4, &N, 4);
  std::memcpy(base + 8, &K, 4);
  const int Kq = (K + 3) / 4;
  for (int p = 0; p < num_panels(N); ++p) {
    uint8_t* panel = base + kHeader + static_cast<size_t>(p) * panel_bytes(K);
    int32_t* wsum = reinterpret_cast<int32_t*>(panel + static_cast<size_t>(Kq) * 128);
    for (int j = 0; j < kNR; ++j) {
      const int n = p * kNR + j;
      if (n >= N) continue;  // padding channels stay zero
      const int h = j / 16, c = j % 16;
      int32_t s = 0;
      for (int k = 0; k < K; ++k) {
        const int8_t v = W[static_cast<size_t>(n) * K + k];
        panel[static_cast<size_t>(k / 4) * 128 + h * 64 + 4 * c + k % 4] = static_cast<uint8_t>(v);
        s += v;
      }
      wsum[j] = s;
    }
  }
}

namespace {

// Every panel of columns [n0, n1) over rows [0, M) in blocks as even as possible; block(mr, ch,
// nh, m, panel, n, nvalid) runs one block of mr rows from row m with ch accumulator chains over
// nh halves of the panel (each given as std::integral_constant).
template <typename Block>
void run_row_blocks(const uint8_t* panels, size_t pb, int first, int M, int n0, int n1, Block&& block) {
  using std::integral_constant;
  for (int n = n0; n < n1; n += kNR) {
    const uint8_t* panel = panels + static_cast<size_t>((n - first) / kNR) * pb;
    const int nvalid = n1 - n < kNR ? n1 - n : kNR;
    auto rows_of = [&](auto nh) {
      even_row_blocks(M, kMR, [&](int m, int rows) {
        switch (rows) {
          case 1: block(integral_constant<int, 1>{}, integral_constant<int, 4>{}, nh, m, panel, n, nvalid); break;
          case 2: block(integral_constant<int, 2>{}, integral_constant<int, 2>{}, nh, m, panel, n, nvalid); break;
          case 3: block(integral_constant<int, 3>{}, integral_constant<int, 2>{}, nh, m, panel, n, nvalid); break;
          case 4: block(integral_constant<int, 4>{}, integral_constant<int, 1>{}, nh, m, panel, n, nvalid); break;
          case 5: block(integral_constant<int, 5>{}, integral_constant<int, 1>{}, nh, m, panel, n, nvalid); break;
          case 6: block(integral_constant<int, 6>{}, integral_constant<int, 1>{}, nh, m, panel, n, nvalid); break;
          case 7: block(integral_constant<int, 7>{}, integral_constant<int, 1>{}, nh, m, panel, n, nvalid); break;
          default: block(integral_constant<int, kMR>{}, integral_constant<int, 1>{}, nh, m, panel, n, nvalid); break;
        }
      });
    };
    if (nvalid <= 16) rows_of(integral_constant<int, 1>{});
    else rows_of(integral_constant<int, 2>{});
  }
}

}  // namespace

void q8_run_panels(const uint8_t* panels, size_t pb, int first, int M, int K, const uint8_t* A, size_t lda,
                   uint8_t a_zero, const Epilogue& rq, void* C, size_t ldc, int n0, int n1) {
  run_row_blocks(panels, pb, first, M, n0, n1, [&](auto mr, auto ch, auto nh, int m, const uint8_t* panel, int n, int nvalid) {
    q8_block<decltype(mr)::value, decltype(ch)::value, decltype(nh)::value>(K, A + m * lda, lda, a_zero, panel, rq, C, ldc, m, n, nvalid);
  });
}

void q8_run_panels_segs(const uint8_t* panels, size_t pb, int first, int M, int S, int L, const uint8_t* const* segs,
                        uint8_t a_zero, const Epilogue& rq, void* C, size_t ldc, int n0, int n1) {
  run_row_blocks(panels, pb, first, M, n0, n1, [&](auto mr, auto ch, auto nh, int m, const uint8_t* panel, int n, int nvalid) {
    q8_block_segs<decltype(mr)::value, decltype(ch)::value, decltype(nh)::value>(S, L, segs, a_zero, panel, rq, C, ldc, m, n, nvalid);
  });
}

void q8_gemm_segs(int M, int N, int S, int L, const uint8_t* const* segs, uint8_t a_zero, const void* packed,
                  const Requant* rq_in, void* C, size_t ldc, int n0, int n1) {
  const Epilogue rq(rq_in ? *rq_in : Requant());
  q8_run_panels_segs(static_cast<const uint8_t*>(packed) + kHeader, panel_bytes(S * L), 0, M, S, L, segs, a_zero, rq, C, ldc, n0, n1);
}

void q8_gemm(int M, int N, int K, const uint8_t* A, size_t lda, uint8_t a_zero,
             const void* packed, const Requant* rq_in, void* C, size_t ldc, int n0, int n1) {
  const Epilogue rq(rq_in ? *rq_in : Requant());
  q8_run_panels(static_cast<const uint8_t*>(packed) + kHeader, panel_bytes(K), 0, M, K, A, lda, a_zero, rq, C, ldc, n0, n1);
}

}  // namespace avx512vnni
}  // namespace kernels
}  // namespace ternion
