// int8 GEMM (u8 activations x s8 weights -> exact int32, then Requant), AVX2, in two exact forms
// chosen per layer at pack time from the weights' range:
//
// "Narrow" (every weight in [-64, 63], e.g. 7-bit "reduced range" quantization): vpmaddubsw
// multiplies the raw u8 activations by the s8 weights, four k per 32-bit lane after vpmaddwd
// with ones. One int16 lane adds two products of at most 255 * 64, so it cannot saturate. The
// zero point comes out afterwards: sum (a - a_zero) w = sum a w - a_zero * sum w, with the
// weight sums stored at pack time (int32 wraps, and the true result fits). A is read in place.
//
// "Wide" (any int8 weight): vpmaddubsw would saturate (255 * 127 * 2 > 32767), so every product
// goes through vpmaddwd on 16-bit values: x = a - a_zero in [-255, 255] is prepared once per
// call as int16 (zero padded to an even K), weights are sign-extended in registers; each
// vpmaddwd lane adds two products of at most 255 * 128. No a_zero correction is needed.
// Narrow does 32 MACs in three instructions where wide needs two for 16, so it is the faster.
//
// Packed layout: a 64-byte header (form), then panels of 16 output channels.
//  wide:   K padded to even Kp with zeros. For each k pair j, 32 bytes: [channels 0-7]
//          [channels 8-15], each half 16 bytes with byte 2c + t = w[c][2j+t], so one vpmovsxbw
//          of a half gives the vpmaddwd operand for 8 channels.
//  narrow: K padded to a multiple of 4 with zeros. For each k quad q, 64 bytes: [channels 0-7]
//          [channels 8-15], byte 4c + t = w[c][4q+t]; after all panels, wsum[Np] int32.
// Tiles: MR rows x 16 channels over all of K, weights loaded once per k step and reused by all
// rows. GEMV is the same loop with one row; the weight stream is prefetched.
#include "kernels/avx2/gemm-q8-avx2.h"

#include "kernels/avx2/common-avx2.h"

namespace ternion {
namespace kernels {
namespace avx2 {

namespace {

constexpr int kNR = kQ8NR;
constexpr size_t kHeader = 64;
enum Form : int32_t { kWide = 1, kNarrow = 2 };

// Final epilogue of a tile, shared by both forms: the exact int32 accumulators of MR rows x 16
// channels (C points at the tile's first row).
template <int MR>
inline __attribute__((always_inline)) void store_tile(const __m256i (&c0)[MR], const __m256i (&c1)[MR], const Epilogue& rq,
                                                      int col, int cols, void* C, size_t ldc) {
  __m256i v[MR][2];
  #pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) v[r][0] = c0[r], v[r][1] = c1[r];
  rq.store_tile<MR>(v, col, cols, C, ldc, 0);
}

template <int MR>
__attribute__((noinline)) void wide_tile(int pairs, const int16_t* x, size_t ldx,
                                         const int8_t* B, const Epilogue& rq, int col, int cols,
                                         void* C, size_t ldc) {
  __m256i c0[MR], c1[MR];
  #pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) c0[r] = _mm256_setzero_si256(), c1[r] = _mm256_setzero_si256();
  for (int j = 0; j < pairs; ++j) {
    const int8_t* b = B + 32 * j;
    if (MR == 1) _mm_prefetch(reinterpret_cast<const char*>(b) + 1536, _MM_HINT_T0);
    const __m256i w0 = _mm256_cvtepi8_epi16(_mm_load_si128(reinterpret_cast<const __m128i*>(b)));
    const __m256i w1 = _mm256_cvtepi8_epi16(_mm_load_si128(reinterpret_cast<const __m128i*>(b + 16)));
    #pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      int32_t xp;
      std::memcpy(&xp, x + r * ldx + 2 * j, 4);
      const __m256i xv = _mm256_set1_epi32(xp);
      c0[r] = _mm256_add_epi32(c0[r], _mm256_madd_epi16(xv, w0));
      c1[r] = _mm256_add_epi32(c1[r], _mm256_madd_epi16(xv, w1));
    }
    // Pin the accumulators once per k pair (after all rows): GCC must not batch the products of
    // several pairs (spills), and pinning per row cost register moves.
    #pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) __asm__("" : "+x"(c0[r]), "+x"(c1[r]));
  }
  store_tile<MR>(c0, c1, rq, col, cols, C, ldc);
}

// One k quad of the narrow form for MR rows: xq[r] holds the four activations of row r.
template <int MR>
inline void narrow_step(const int32_t (&xq)[MR], const int8_t* b, __m256i ones, __m256i (&c0)[MR],
                        __m256i (&c1)[MR]) {
  const __m256i w0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(b));
  const __m256i w1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(b + 32));
  #pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    const __m256i xv = _mm256_set1_epi32(xq[r]);
    c0[r] = _mm256_add_epi32(c0[r], _mm256_madd_epi16(_mm256_maddubs_epi16(xv, w0), ones));
    c1[r] = _mm256_add_epi32(c1[r], _mm256_madd_epi16(_mm256_maddubs_epi16(xv, w1), ones));
  }
}

// corr: -a_zero * wsum for the panel's 16 channels, the accumulators' start (which saves a
// subtraction per output vector).
template <int MR>
__attribute__((noinline)) void narrow_tile(int K, const uint8_t* A, size_t lda, const int8_t* B,
                                           const int32_t* corr, const Epilogue& rq, int col,
                                           int cols, void* C, size_t ldc) {
  __m256i c0[MR], c1[MR];
  const __m256i z0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(corr));
  const __m256i z1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(corr + 8));
  #pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) c0[r] = z0, c1[r] = z1;
  const __m256i ones = _mm256_set1_epi16(1);
  const int quads = K / 4, tail = K % 4;
  for (int q = 0; q < quads; ++q) {
    const int8_t* b = B + 64 * q;
    if (MR == 1) _mm_prefetch(reinterpret_cast<const char*>(b) + 2048, _MM_HINT_T0);
    int32_t xq[MR];
    #pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) std::memcpy(&xq[r], A + r * lda + 4 * q, 4);
    narrow_step<MR>(xq, b, ones, c0, c1);
    #pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) __asm__("" : "+x"(c0[r]), "+x"(c1[r]));
  }
  if (tail) {  // the last 1-3 k: only they are read (the packed weights past K are zero)
    // Assembled in a register: a memcpy of `tail` bytes into xq compiles to byte stores whose
    // 4-byte reload misses store forwarding (a stall per row).
    int32_t xq[MR];
    for (int r = 0; r < MR; ++r) {
      const uint8_t* a = A + r * lda + 4 * quads;
      uint32_t v = a[0];
      if (tail > 1) v |= static_cast<uint32_t>(a[1]) << 8;
      if (tail > 2) v |= static_cast<uint32_t>(a[2]) << 16;
      xq[r] = static_cast<int32_t>(v);
    }
    narrow_step<MR>(xq, B + 64 * quads, ones, c0, c1);
  }
  store_tile<MR>(c0, c1, rq, col, cols, C, ldc);
}

using WideFn = void (*)(int, const int16_t*, size_t, const int8_t*, const Epilogue&, int, int,
                        void*, size_t);
constexpr int kWideMR = 5;  // 10 accumulators + 2 weights + broadcast + product: no spills
constexpr WideFn kWide_[kWideMR + 1] = {nullptr, wide_tile<1>, wide_tile<2>, wide_tile<3>, wide_tile<4>, wide_tile<5>};

using NarrowFn = void (*)(int, const uint8_t*, size_t, const int8_t*, const int32_t*,
                          const Epilogue&, int, int, void*, size_t);
constexpr int kNarrowMR = 5;  // as wide: 10 accumulators, 2 weights, broadcast, product, ones
constexpr NarrowFn kNarrow_[kNarrowMR + 1] = {nullptr, narrow_tile<1>, narrow_tile<2>, narrow_tile<3>,
                                              narrow_tile<4>, narrow_tile<5>};

size_t out_size(const Epilogue& rq) { return rq.byte_out() ? 1 : 4; }

size_t wide_bytes(int N, int K) { return round_up(N, kNR) / kNR * q8_wide_panel_bytes(K); }
size_t narrow_bytes(int N, int K) { return round_up(N, kNR) / kNR * q8_narrow_panel_bytes(K); }

void gemm_wide(const Q8Panels& w, int M, int K, const uint8_t* A, size_t lda, uint8_t a_zero,
               const Epilogue& rq, void* C, size_t ldc, int n0, int n1) {
  const int pairs = (K + 1) / 2, Kp = 2 * pairs;
  const int p0 = n0 / kNR, p1 = (n1 + kNR - 1) / kNR;
  const size_t es = out_size(rq);
  // Rows per chunk: keep the int16 copy of A near 192 KB (L2), at least one tile.
  int rows = static_cast<int>((192 * 1024) / (static_cast<size_t>(Kp) * 2 + 2));
  rows = rows < kWideMR ? kWideMR : rows / kWideMR * kWideMR;
  if (rows > M) rows = M;
  const size_t ldx = Kp + 16;  // spread rows over cache sets
  Scratch buf(static_cast<size_t>(rows) * ldx * sizeof(int16_t) + 64);
  int16_t* x = buf.as<int16_t>();
  const __m256i az = _mm256_set1_epi16(a_zero);
  for (int mc0 = 0; mc0 < M; mc0 += rows) {
    const int mc = M - mc0 < rows ? M - mc0 : rows;
    for (int r = 0; r < mc; ++r) {
      const uint8_t* a = A + (mc0 + r) * lda;
      int16_t* xr = x + r * ldx;
      int k = 0;
      for (; k + 16 <= K; k += 16) {
        const __m256i v = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a + k)));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(xr + k), _mm256_sub_epi16(v, az));
      }
      for (; k < K; ++k) xr[k] = static_cast<int16_t>(a[k] - a_zero);
      for (; k < Kp; ++k) xr[k] = 0;
    }
    for (int p = p0; p < p1; ++p) {
      const int col = p * kNR, cols = n1 - col < kNR ? n1 - col : kNR;
      const int8_t* B = w.B + static_cast<size_t>(p - w.first) * w.panel_bytes;
      for (int m = 0; m < mc; m += kWideMR) {
        const int mr = mc - m < kWideMR ? mc - m : kWideMR;
        kWide_[mr](pairs, x + m * ldx, ldx, B, rq, col, cols,
                   static_cast<char*>(C) + (mc0 + m) * ldc * es, ldc);
      }
    }
  }
}

void gemm_narrow(const Q8Panels& w, int M, int K, const uint8_t* A, size_t lda, uint8_t a_zero,
                 const Epilogue& rq, void* C, size_t ldc, int n0, int n1) {
  const int p0 = n0 / kNR, p1 = (n1 + kNR - 1) / kNR;
  const size_t es = out_size(rq);
  // Rows per chunk: A's rows are read in place; a chunk near 192 KB stays in L2 while every
  // panel of the range passes over it.
  int rows = static_cast<int>((192 * 1024) / (static_cast<size_t>(K) + 64));
  rows = rows < kNarrowMR ? kNarrowMR : rows / kNarrowMR * kNarrowMR;
  if (rows > M) rows = M;
  alignas(32) int32_t corr[kNR];
  for (int mc0 = 0; mc0 < M; mc0 += rows) {
    const int mc = M - mc0 < rows ? M - mc0 : rows;
    for (int p = p0; p < p1; ++p) {
      const int col = p * kNR, cols = n1 - col < kNR ? n1 - col : kNR;
      const int8_t* B = w.B + static_cast<size_t>(p - w.first) * w.panel_bytes;
      const int32_t* ws = w.wsum + static_cast<size_t>(p - w.first) * kNR;
      for (int c = 0; c < kNR; ++c) corr[c] = -static_cast<int32_t>(a_zero) * ws[c];
      for (int m = 0; m < mc; m += kNarrowMR) {
        const int mr = mc - m < kNarrowMR ? mc - m : kNarrowMR;
        kNarrow_[mr](K, A + (mc0 + m) * lda, lda, B, corr, rq, col, cols,
                     static_cast<char*>(C) + (mc0 + m) * ldc * es, ldc);
      }
    }
  }
}

}  // namespace

void q8_run_panels(const Q8Panels& w, int M, int K, const uint8_t* A, size_t lda, uint8_t a_zero,
                   const Epilogue& rq, void* C, size_t ldc, int n0, int n1) {
  if (M <= 0 || n1 <= n0) return;
  if (w.narrow) gemm_narrow(w, M, K, A, lda, a_zero, rq, C, ldc, n0, n1);
  else gemm_wide(w, M, K, A, lda, a_zero, rq, C, ldc, n0, n1);
}

size_t q8_packed_size(int N, int K) {
  const size_t wide = wide_bytes(N, K), narrow = narrow_bytes(N, K) + round_up(N, kNR) * 4;
  return kHeader + round_up(wide > narrow ? wide : narrow, 64);
}

void q8_pack(const int8_t* W, int N, int K, void* packed) {
  unsigned char* base = static_cast<unsigned char*>(packed);
  std::memset(base, 0, q8_packed_size(N, K));
  const bool narrow = fits_narrow(W, static_cast<size_t>(N) * K);
  const int32_t form = narrow ? kNarrow : kWide;
  std::memcpy(base, &form, sizeof form);
  int8_t* out = reinterpret_cast<int8_t*>(base + kHeader);
  const int panels = (N + kNR - 1) / kNR;
  if (narrow) {
    const int quads = (K + 3) / 4;
    row_sums(W, N, K, reinterpret_cast<int32_t*>(out + narrow_bytes(N, K)));
    for (int p = 0; p < panels; ++p)
      for (int q = 0; q < quads; ++q)
        for (int c = 0; c < kNR; ++c)
          for (int t = 0; t < 4; ++t) {
            const int n = p * kNR + c, k = 4 * q + t;
            out[(static_cast<size_t>(p) * quads + q) * 64 + c * 4 + t] =
                n < N && k < K ? W[static_cast<size_t>(n) * K + k] : 0;
          }
    return;
  }
  const int pairs = (K + 1) / 2;
  for (int p = 0; p < panels; ++p)
    for (int j = 0; j < pairs; ++j)
      for (int c = 0; c < kNR; ++c)
        for (int t = 0; t < 2; ++t) {
          const int n = p * kNR + c, k = 2 * j + t;
          out[(static_cast<size_t>(p) * pairs + j) * 32 + c * 2 + t] =
              n < N && k < K ? W[static_cast<size_t>(n) * K + k] : 0;
        }
}

void q8_gemm(int M, int N, int K, const uint8_t* A, size_t lda, uint8_t a_zero,
             const void* packed, const Requant* rq, void* C, size_t ldc, int n0, int n1) {
  if (M <= 0 || n1 <= n0) return;
  const unsigned char* base = static_cast<const unsigned char*>(packed);
  int32_t form;
  std::memcpy(&form, base, sizeof form);
  const int8_t* Wp = reinterpret_cast<const int8_t*>(base + kHeader);
  Q8Panels w{form == kNarrow, Wp, 0, nullptr, 0};
  w.panel_bytes = w.narrow ? q8_narrow_panel_bytes(K) : q8_wide_panel_bytes(K);
  if (w.narrow) w.wsum = reinterpret_cast<const int32_t*>(Wp + narrow_bytes(N, K));
  q8_run_panels(w, M, K, A, lda, a_zero, Epilogue(*rq, C), C, ldc, n0, n1);
}

}  // namespace avx2
}  // namespace kernels
}  // namespace ternion
