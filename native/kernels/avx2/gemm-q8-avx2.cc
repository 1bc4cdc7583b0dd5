// int8 GEMM (u8 activations x s8 weights -> exact int32, then Requant), AVX2.
//
// Exactness: vpmaddubsw would saturate (255 * 127 * 2 > 32767), so every product goes through
// vpmaddwd on 16-bit values: x = a - a_zero in [-255, 255] is prepared once per call as int16
// (zero padded to an even K), weights are sign-extended in registers; each vpmaddwd lane adds
// two products of at most 255 * 128, far from int32 limits. No a_zero correction is needed.
//
// Packed layout: panels of 16 output channels, K padded to even Kp with zeros. For each k pair
// j, 32 bytes: [channels 0-7][channels 8-15], each half 16 bytes with byte 2c + t = w[c][2j+t],
// so one vpmovsxbw of a half gives the vpmaddwd operand for 8 channels.
// Tile: 5 rows x 16 channels (10 int32 accumulators), weights widened once per k pair and
// reused by all rows. GEMV is the same loop with one row; the weight stream is prefetched.
#include "kernels/avx2/common-avx2.h"

namespace ternion {
namespace kernels {
namespace avx2 {

namespace {

constexpr int kNR = 16;

template <int MR>
__attribute__((noinline)) void q8_tile(int pairs, const int16_t* x, size_t ldx,
                                       const int8_t* B, const Requant& rq, int col, int cols,
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
  if (rq.out == OutType::F32 && cols == kNR) {
    __m256 f[MR][2];
    #pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) f[r][0] = _mm256_cvtepi32_ps(c0[r]), f[r][1] = _mm256_cvtepi32_ps(c1[r]);
    epilogue16_f32_rows<MR>(rq, col, f, C, ldc, col);
    return;
  }
  #pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    const size_t idx = r * ldc + col;
    epilogue8_int(rq, col, cols < 8 ? cols : 8, c0[r], C, idx);
    if (cols > 8) epilogue8_int(rq, col + 8, cols - 8, c1[r], C, idx + 8);
  }
}

using TileFn = void (*)(int, const int16_t*, size_t, const int8_t*, const Requant&, int, int,
                        void*, size_t);
constexpr int kMR = 5;  // 10 accumulators + 2 weights + broadcast + product: no spills
constexpr TileFn kTiles[kMR + 1] = {nullptr, q8_tile<1>, q8_tile<2>, q8_tile<3>, q8_tile<4>, q8_tile<5>};

size_t out_size(OutType t) { return t == OutType::F32 || t == OutType::I32 ? 4 : 1; }

}  // namespace

size_t q8_packed_size(int N, int K) {
  return round_up(round_up(static_cast<size_t>(N), kNR) * round_up(static_cast<size_t>(K), 2), 64);
}

void q8_pack(const int8_t* W, int N, int K, void* packed) {
  int8_t* out = static_cast<int8_t*>(packed);
  std::memset(out, 0, q8_packed_size(N, K));
  const int panels = (N + kNR - 1) / kNR, pairs = (K + 1) / 2;
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
  const int8_t* Wp = static_cast<const int8_t*>(packed);
  const int pairs = (K + 1) / 2, Kp = 2 * pairs;
  const int p0 = n0 / kNR, p1 = (n1 + kNR - 1) / kNR;
  const size_t es = out_size(rq->out);
  // Rows per chunk: keep the int16 copy of A near 192 KB (L2), at least one 6-row tile.
  int rows = static_cast<int>((192 * 1024) / (static_cast<size_t>(Kp) * 2 + 2));
  rows = rows < kMR ? kMR : rows / kMR * kMR;
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
      const int8_t* B = Wp + static_cast<size_t>(p) * Kp * kNR;
      for (int m = 0; m < mc; m += kMR) {
        const int mr = mc - m < kMR ? mc - m : kMR;
        kTiles[mr](pairs, x + m * ldx, ldx, B, *rq, col, cols,
                   static_cast<char*>(C) + (mc0 + m) * ldc * es, ldc);
      }
    }
  }
}

}  // namespace avx2
}  // namespace kernels
}  // namespace ternion
