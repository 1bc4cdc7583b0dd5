// int8 GEMM, AVX-VNNI: 256-bit vpdpbusd with A (u8) broadcast 4 bytes at a time and weights laid
// out "16c4": one ymm holds 8 channels x 4 consecutive k, so each int32 lane accumulates one output
// channel and no horizontal reduction is needed. 4x16 register block (8 accumulators of 16 ymm).
//
// a_zero: sum (a - z) w = sum a w - z * sum_k w, with sum_k w (wsum) precomputed at pack time.
// int32 wraps in the vector unit; the true result fits (|K| <= kMaxIntegerK), so the modular
// result is exact.
//
// Packed layout: a 64-byte header {magic, N, K}, then ceil(N/16) panels of
// Kq = ceil(K/4) quads x 64 bytes + 64 bytes of wsum. Quad q of panel p: byte h*32 + 4c + i
// is W[16p + 8h + c][4q + i] (zero past N or K); then int32 wsum[16].
#include "common-avxvnni.h"
#include "gemm-q8-avxvnni.h"

namespace ternion {
namespace kernels {
namespace avxvnni {
namespace {

constexpr size_t kHeader = 64;
constexpr int kMR = 4;

size_t panel_bytes(int K) { return q8_panel_bytes(K); }

// MR rows x 16 channels of one panel. CH accumulator chains per output (quads round-robin)
// hide vpdpbusd latency for small MR. The first chain of each row starts at the activation zero
// point's correction -a_zero * wsum (wsum: the channels' weight sums), which saves an add per
// output vector.
template <int MR, int CH>
void q8_block(int K, const uint8_t* A, size_t lda, uint8_t a_zero, const uint8_t* panel,
              const Epilogue& rq, void* C, size_t ldc, int m, int n, int nvalid) {
  const int32_t* wsum =
      reinterpret_cast<const int32_t*>(panel + static_cast<size_t>((K + 3) / 4) * 64);
  const __m256i negz = _mm256_set1_epi32(-static_cast<int32_t>(a_zero));
  __m256i acc[MR][2][CH];
  for (int h = 0; h < 2; ++h) {
    const __m256i corr = _mm256_mullo_epi32(load256(wsum + 8 * h), negz);
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r)
      for (int c = 0; c < CH; ++c) acc[r][h][c] = c == 0 ? corr : _mm256_setzero_si256();
  }

  const int nfull = K / 4;  // quads with 4 valid A bytes
  int q = 0;
  for (; q + 4 <= nfull; q += 4) {
    const uint8_t* wq = panel + static_cast<size_t>(q) * 64;
    if (MR == 1) {
      // GEMV streams weights once: software prefetch ~2 KB ahead (4 lines per 4 quads).
#pragma GCC unroll 8
      for (int i = 0; i < 4; ++i) _mm_prefetch(reinterpret_cast<const char*>(wq) + 2048 + 64 * i, _MM_HINT_T0);
    }
#pragma GCC unroll 4
    for (int s = 0; s < 4; ++s) {
      const __m256i w0 = load256(wq + 64 * s);
      const __m256i w1 = load256(wq + 64 * s + 32);
#pragma GCC unroll 16
      for (int r = 0; r < MR; ++r) {
        const __m256i a = bcast_quad(A + r * lda + 4 * (q + s));
        acc[r][0][s % CH] = dpbusd(acc[r][0][s % CH], a, w0);
        acc[r][1][s % CH] = dpbusd(acc[r][1][s % CH], a, w1);
      }
    }
  }
  for (; q < nfull; ++q) {
    const __m256i w0 = load256(panel + static_cast<size_t>(q) * 64);
    const __m256i w1 = load256(panel + static_cast<size_t>(q) * 64 + 32);
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      const __m256i a = bcast_quad(A + r * lda + 4 * q);
      acc[r][0][0] = dpbusd(acc[r][0][0], a, w0);
      acc[r][1][0] = dpbusd(acc[r][1][0], a, w1);
    }
  }
  if (K % 4) {  // last quad: only K % 4 bytes of A exist; the packed weights past K are zero
    const __m256i w0 = load256(panel + static_cast<size_t>(q) * 64);
    const __m256i w1 = load256(panel + static_cast<size_t>(q) * 64 + 32);
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      const __m256i a = bcast_partial(A + r * lda + 4 * q, K % 4);
      acc[r][0][0] = dpbusd(acc[r][0][0], a, w0);
      acc[r][1][0] = dpbusd(acc[r][1][0], a, w1);
    }
  }

  __m256i v[MR][2];
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
    for (int h = 0; h < 2; ++h) {
      v[r][h] = acc[r][h][0];
      for (int c = 1; c < CH; ++c) v[r][h] = _mm256_add_epi32(v[r][h], acc[r][h][c]);
    }
  rq.store_tile<MR>(v, n, nvalid, C, ldc, m);
}

template <int MR, int CH>
void q8_rows(int K, const uint8_t* A, size_t lda, uint8_t a_zero, const uint8_t* panel,
             const Epilogue& rq, void* C, size_t ldc, int m, int n, int nvalid) {
  q8_block<MR, CH>(K, A + m * lda, lda, a_zero, panel, rq, C, ldc, m, n, nvalid);
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
    int32_t* wsum = reinterpret_cast<int32_t*>(panel + static_cast<size_t>(Kq) * 64);
    for (int j = 0; j < kNR; ++j) {
      const int n = p * kNR + j;
      if (n >= N) continue;  // padding channels stay zero
      const int h = j / 8, c = j % 8;
      int32_t s = 0;
      for (int k = 0; k < K; ++k) {
        const int8_t v = W[static_cast<size_t>(n) * K + k];
        panel[static_cast<size_t>(k / 4) * 64 + h * 32 + 4 * c + k % 4] = static_cast<uint8_t>(v);
        s += v;
      }
      wsum[j] = s;
    }
  }
}

void q8_run_panels(const uint8_t* panels, size_t pb, int first, int M, int K, const uint8_t* A, size_t lda,
                   uint8_t a_zero, const Epilogue& rq, void* C, size_t ldc, int n0, int n1) {
  for (int n = n0; n < n1; n += kNR) {
    const uint8_t* panel = panels + static_cast<size_t>((n - first) / kNR) * pb;
    const int nvalid = n1 - n < kNR ? n1 - n : kNR;
    int m = 0;
    for (; m + kMR <= M; m += kMR) q8_rows<kMR, 1>(K, A, lda, a_zero, panel, rq, C, ldc, m, n, nvalid);
    switch (M - m) {
      case 1: q8_rows<1, 4>(K, A, lda, a_zero, panel, rq, C, ldc, m, n, nvalid); break;
      case 2: q8_rows<2, 2>(K, A, lda, a_zero, panel, rq, C, ldc, m, n, nvalid); break;
      case 3: q8_rows<3, 1>(K, A, lda, a_zero, panel, rq, C, ldc, m, n, nvalid); break;
      default: break;
    }
  }
}

void q8_gemm(int M, int N, int K, const uint8_t* A, size_t lda, uint8_t a_zero,
             const void* packed, const Requant* rq_in, void* C, size_t ldc, int n0, int n1) {
  const Epilogue rq(rq_in ? *rq_in : Requant(), C);
  q8_run_panels(static_cast<const uint8_t*>(packed) + kHeader, panel_bytes(K), 0, M, K, A, lda, a_zero, rq, C, ldc, n0, n1);
}

}  // namespace avxvnni
}  // namespace kernels
}  // namespace ternion
