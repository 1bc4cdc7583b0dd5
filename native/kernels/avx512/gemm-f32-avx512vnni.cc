// fp32 GEMM, AVX-512: 12x32 register block (24 zmm accumulators), weights packed in panels of
// 32 output channels so one k step is two aligned 64-byte loads and MR broadcast FMAs.
//
// Packed layout: a 64-byte header {magic, N, K}, then ceil(N/32) panels; panel p holds, for
// every k in [0, K), the 32 floats W[32p + j][k] (j = 0..31, zero past N).
#include <cstring>
#include <vector>

#include "common-avx512vnni.h"
#include "../pack-f32-panels.h"

namespace ternion {
namespace kernels {
namespace avx512vnni {
namespace {

constexpr size_t kHeader = 64;
constexpr int kMR = 12;

// The epilogue of a block: each output's CH chains summed in order, the bias added, the clamp
// applied, and the valid lanes of channels [n, n + nvalid) stored.
template <int MR, int NV, int CH>
inline void store_block(__m512 (&acc)[MR][NV][CH], const float* bias, const float* clamp, float* C, size_t ldc, int n, int nvalid) {
  const __mmask16 mk[2] = {lane_mask(nvalid), lane_mask(nvalid - 16)};
  __m512 b[NV];
  for (int h = 0; h < NV; ++h)
    b[h] = bias ? _mm512_maskz_loadu_ps(mk[h], bias + n + 16 * h) : _mm512_setzero_ps();
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r) {
    for (int h = 0; h < NV; ++h) {
      __m512 v = acc[r][h][0];
      for (int c = 1; c < CH; ++c) v = _mm512_add_ps(v, acc[r][h][c]);
      v = _mm512_add_ps(v, b[h]);
      if (clamp) v = _mm512_min_ps(_mm512_set1_ps(clamp[1]), _mm512_max_ps(_mm512_set1_ps(clamp[0]), v));
      _mm512_mask_storeu_ps(C + r * ldc + n + 16 * h, mk[h], v);
    }
  }
}

// MR rows x 16 * NV channels (NV = 2: a whole panel; NV = 1: a panel with at most 16 valid
// channels, its zero half skipped: a 16-channel stem or the last panel of 48). CH independent
// accumulator chains per output (k split round-robin) hide the 4-cycle FMA latency of a GEMV;
// fp32 results are within tolerance of the reference. Each output's sum is one chain in k order
// whatever NV, so the bits do not depend on the panel's fill.
template <int MR, int CH, int NV = 2>
void f32_block(int K, const float* A, size_t lda, const float* w, const float* bias, const float* clamp,
               float* C, size_t ldc, int n, int nvalid) {
  __m512 acc[MR][NV][CH];
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
    for (int h = 0; h < NV; ++h)
      for (int c = 0; c < CH; ++c) acc[r][h][c] = _mm512_setzero_ps();

  int k = 0;
  if (CH > 1) {
    for (; k + CH <= K; k += CH) {
      if (MR == 1) {
        // GEMV streams the panel once: fetch ~2 KB ahead of the loads.
        const char* pf = reinterpret_cast<const char*>(w + static_cast<size_t>(k) * kNR) + 2048;
#pragma GCC unroll 8
        for (int i = 0; i < 2 * CH; ++i) _mm_prefetch(pf + 64 * i, _MM_HINT_T0);
      }
#pragma GCC unroll 4
      for (int c = 0; c < CH; ++c) {
        const __m512 w0 = _mm512_loadu_ps(w + static_cast<size_t>(k + c) * kNR);
        const __m512 w1 = NV > 1 ? _mm512_loadu_ps(w + static_cast<size_t>(k + c) * kNR + 16) : w0;
#pragma GCC unroll 16
        for (int r = 0; r < MR; ++r) {
          const __m512 a = _mm512_set1_ps(A[r * lda + k + c]);
          acc[r][0][c] = _mm512_fmadd_ps(a, w0, acc[r][0][c]);
          if (NV > 1) acc[r][NV - 1][c] = _mm512_fmadd_ps(a, w1, acc[r][NV - 1][c]);
        }
      }
    }
  }
  for (; k < K; ++k) {
    const __m512 w0 = _mm512_loadu_ps(w + static_cast<size_t>(k) * kNR);
    const __m512 w1 = NV > 1 ? _mm512_loadu_ps(w + static_cast<size_t>(k) * kNR + 16) : w0;
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      const __m512 a = _mm512_set1_ps(A[r * lda + k]);
      acc[r][0][0] = _mm512_fmadd_ps(a, w0, acc[r][0][0]);
      if (NV > 1) acc[r][NV - 1][0] = _mm512_fmadd_ps(a, w1, acc[r][NV - 1][0]);
    }
  }

  store_block<MR, NV, CH>(acc, bias, clamp, C, ldc, n, nvalid);
}

template <int MR, int CH>
void f32_rows(int M, int K, const float* A, size_t lda, const float* w, const float* bias,
              const float* clamp, float* C, size_t ldc, int n, int nvalid, int m) {
  if (nvalid <= 16) f32_block<MR, CH, 1>(K, A + m * lda, lda, w, bias, clamp, C + m * ldc, ldc, n, nvalid);
  else f32_block<MR, CH, 2>(K, A + m * lda, lda, w, bias, clamp, C + m * ldc, ldc, n, nvalid);
}

// f32_block with CH = 1 over row segments: rows m .. m + MR - 1, each S runs of L floats
// (segs[r * S + s]). The same k order, one chain per output: f32_block's bits on the gathered
// rows, without gathering them.
template <int MR, int NV>
void f32_block_segs(int S, int L, const float* const* segs, const float* w, const float* bias, const float* clamp,
                    float* C, size_t ldc, int n, int nvalid) {
  __m512 acc[MR][NV][1];
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
    for (int h = 0; h < NV; ++h) acc[r][h][0] = _mm512_setzero_ps();
  for (int s = 0; s < S; ++s) {
    const float* row[MR];
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) row[r] = segs[r * S + s];
    const float* ws = w + static_cast<size_t>(s) * L * kNR;
    for (int l = 0; l < L; ++l) {
      const __m512 w0 = _mm512_loadu_ps(ws + static_cast<size_t>(l) * kNR);
      const __m512 w1 = NV > 1 ? _mm512_loadu_ps(ws + static_cast<size_t>(l) * kNR + 16) : w0;
#pragma GCC unroll 16
      for (int r = 0; r < MR; ++r) {
        const __m512 a = _mm512_set1_ps(row[r][l]);
        acc[r][0][0] = _mm512_fmadd_ps(a, w0, acc[r][0][0]);
        if (NV > 1) acc[r][NV - 1][0] = _mm512_fmadd_ps(a, w1, acc[r][NV - 1][0]);
      }
    }
  }
  store_block<MR, NV, 1>(acc, bias, clamp, C, ldc, n, nvalid);
}

template <int MR>
void f32_rows_segs(int S, int L, const float* const* segs, const float* w, const float* bias, const float* clamp,
                   float* C, size_t ldc, int n, int nvalid, int m) {
  if (nvalid <= 16) f32_block_segs<MR, 1>(S, L, segs + static_cast<size_t>(m) * S, w, bias, clamp, C + m * ldc, ldc, n, nvalid);
  else f32_block_segs<MR, 2>(S, L, segs + static_cast<size_t>(m) * S, w, bias, clamp, C + m * ldc, ldc, n, nvalid);
}

}  // namespace

size_t f32_packed_size(int N, int K) {
  return kHeader + static_cast<size_t>(num_panels(N)) * static_cast<size_t>(K) * kNR * sizeof(float);
}

void f32_pack(const float* W, int N, int K, void* packed) {
  pack_f32_panels_nk<kNR>(W, N, K, f32_panels_after_header(packed, kHeader, kMagicF32, N, K));
}

void f32_pack_kn(const float* B, int K, int N, size_t ldb, void* packed) {
  pack_f32_panels_kn<kNR>(B, K, N, ldb, f32_panels_after_header(packed, kHeader, kMagicF32, N, K));
}

void f32_gemm(int M, int N, int K, const float* A, size_t lda, const void* packed,
              const float* bias, const float* clamp, float* C, size_t ldc, int n0, int n1) {
  const float* panels =
      reinterpret_cast<const float*>(static_cast<const uint8_t*>(packed) + kHeader);
  // One row block of every panel in [n0, n1) (f32_rows on each), the panels in order.
  auto block = [&](int m, int rows, int na, int nb) {
    for (int n = na; n < nb; n += kNR) {
      const float* w = panels + static_cast<size_t>(n / kNR) * K * kNR;
      const int nvalid = n1 - n < kNR ? n1 - n : kNR;
      switch (rows) {
        case 1: f32_rows<1, 1>(M, K, A, lda, w, bias, clamp, C, ldc, n, nvalid, m); break;
        case 2: f32_rows<2, 1>(M, K, A, lda, w, bias, clamp, C, ldc, n, nvalid, m); break;
        case 3: f32_rows<3, 1>(M, K, A, lda, w, bias, clamp, C, ldc, n, nvalid, m); break;
        case 4: f32_rows<4, 1>(M, K, A, lda, w, bias, clamp, C, ldc, n, nvalid, m); break;
        case 5: f32_rows<5, 1>(M, K, A, lda, w, bias, clamp, C, ldc, n, nvalid, m); break;
        case 6: f32_rows<6, 1>(M, K, A, lda, w, bias, clamp, C, ldc, n, nvalid, m); break;
        case 7: f32_rows<7, 1>(M, K, A, lda, w, bias, clamp, C, ldc, n, nvalid, m); break;
        case 8: f32_rows<8, 1>(M, K, A, lda, w, bias, clamp, C, ldc, n, nvalid, m); break;
        case 9: f32_rows<9, 1>(M, K, A, lda, w, bias, clamp, C, ldc, n, nvalid, m); break;
        case 10: f32_rows<10, 1>(M, K, A, lda, w, bias, clamp, C, ldc, n, nvalid, m); break;
        case 11: f32_rows<11, 1>(M, K, A, lda, w, bias, clamp, C, ldc, n, nvalid, m); break;
        default: f32_rows<kMR, 1>(M, K, A, lda, w, bias, clamp, C, ldc, n, nvalid, m); break;
      }
    }
  };
  // A row's sums must not depend on where it falls in M (a pixel-major conv and its planar
  // form, or an image alone and in a batch, give the same bits): one chain per output for every
  // row block; only a lone row (GEMV, M == 1) splits K over 4 chains to hide the FMA latency.
  if (M == 1) {
    for (int n = n0; n < n1; n += kNR) {
      const int nvalid = n1 - n < kNR ? n1 - n : kNR;
      f32_rows<1, 4>(M, K, A, lda, panels + static_cast<size_t>(n / kNR) * K * kNR, bias, clamp, C, ldc, n, nvalid, 0);
    }
    return;
  }
  // Small weights (a 1x1 conv on few channels: K = 16, N = 96 is 6 KB) stay in L1 across
  // panels: each row block then runs all of them, so C is written row after row, a sequential
  // stream, where a panel at a time wrote every row's 32-channel slice in N / 32 strided passes
  // (a 112x112 expansion to 96 channels: its 4.8 MB result, read for ownership and written
  // back in three interleaved sweeps, took 1.5x as long). The same blocks, the same bits.
  const size_t weight_bytes = static_cast<size_t>((n1 - n0 + kNR - 1) / kNR) * K * kNR * sizeof(float);
  if (n1 - n0 > kNR && weight_bytes <= (size_t(32) << 10)) {
    even_row_blocks(M, kMR, [&](int m, int rows) { block(m, rows, n0, n1); });
    return;
  }
  for (int n = n0; n < n1; n += kNR) even_row_blocks(M, kMR, [&](int m, int rows) { block(m, rows, n, n + kNR < n1 ? n + kNR : n1); });
}

void f32_gemm_segs(int M, int N, int S, int L, const float* const* segs, const void* packed, const float* bias,
                   const float* clamp, float* C, size_t ldc, int n0, int n1) {
  const int K = S * L;
  if (M == 1) {
    // A lone row takes f32_gemm's GEMV path (four chains): gather it, for the same bits.
    thread_local std::vector<float> row;
    row.resize(static_cast<size_t>(K));
    for (int s = 0; s < S; ++s) std::memcpy(row.data() + static_cast<size_t>(s) * L, segs[s], static_cast<size_t>(L) * sizeof(float));
    f32_gemm(1, N, K, row.data(), static_cast<size_t>(K), packed, bias, clamp, C, ldc, n0, n1);
    return;
  }
  const float* panels =
      reinterpret_cast<const float*>(static_cast<const uint8_t*>(packed) + kHeader);
  for (int n = n0; n < n1; n += kNR) {
    const float* w = panels + static_cast<size_t>(n / kNR) * K * kNR;
    const int nvalid = n1 - n < kNR ? n1 - n : kNR;
    even_row_blocks(M, kMR, [&](int m, int rows) {
      switch (rows) {
        case 1: f32_rows_segs<1>(S, L, segs, w, bias, clamp, C, ldc, n, nvalid, m); break;
        case 2: f32_rows_segs<2>(S, L, segs, w, bias, clamp, C, ldc, n, nvalid, m); break;
        case 3: f32_rows_segs<3>(S, L, segs, w, bias, clamp, C, ldc, n, nvalid, m); break;
        case 4: f32_rows_segs<4>(S, L, segs, w, bias, clamp, C, ldc, n, nvalid, m); break;
        case 5: f32_rows_segs<5>(S, L, segs, w, bias, clamp, C, ldc, n, nvalid, m); break;
        case 6: f32_rows_segs<6>(S, L, segs, w, bias, clamp, C, ldc, n, nvalid, m); break;
        case 7: f32_rows_segs<7>(S, L, segs, w, bias, clamp, C, ldc, n, nvalid, m); break;
        case 8: f32_rows_segs<8>(S, L, segs, w, bias, clamp, C, ldc, n, nvalid, m); break;
        case 9: f32_rows_segs<9>(S, L, segs, w, bias, clamp, C, ldc, n, nvalid, m); break;
        case 10: f32_rows_segs<10>(S, L, segs, w, bias, clamp, C, ldc, n, nvalid, m); break;
        case 11: f32_rows_segs<11>(S, L, segs, w, bias, clamp, C, ldc, n, nvalid, m); break;
        default: f32_rows_segs<kMR>(S, L, segs, w, bias, clamp, C, ldc, n, nvalid, m); break;
      }
    });
  }
}

}  // namespace avx512vnni
}  // namespace kernels
}  // namespace ternion
