// The AVX-512 VNNI int8 GEMM's row loops over weights already in its "32c4" panel layout
// (gemm-q8-avx512vnni.cc): used by q8_gemm on its own packed layers, and by the low-bit GEMM,
// which expands a folded layer's codes x multipliers into such panels when enough rows reuse them.
#pragma once

#include <cstddef>
#include <cstdint>

#include "common-avx512vnni.h"

namespace ternion {
namespace kernels {
namespace avx512vnni {

// The activation zero point's correction of one panel's 32 channels: sum (a - z) w = sum a w -
// z * wsum (wsum: the channels' weight sums).
inline void zero_point_terms(const int32_t* wsum, uint8_t a_zero, __m512i (&corr)[2]) {
  const __m512i negz = _mm512_set1_epi32(-static_cast<int32_t>(a_zero));
  for (int h = 0; h < 2; ++h) corr[h] = _mm512_mullo_epi32(_mm512_loadu_si512(wsum + 16 * h), negz);
}

// The end of an integer tile (int8 panels, and folded low-bit layers whose sums are integers
// too): MR rows x 32 channels summed over their CH accumulator chains, corrected for the
// activation zero point (zero_point_terms; unless Corrected: the int8 blocks start their first
// chain at the correction, which saves an add per output vector) and stored through the Requant
// epilogue.
// NH = 1: only the first 16 channels (nvalid <= 16) were accumulated.
template <int MR, int CH, int NH = 2, bool Corrected = false>
inline __attribute__((always_inline)) void store_int_tile(const __m512i (&acc)[MR][2][CH], const int32_t* wsum, uint8_t a_zero, const Epilogue& rq, void* C, size_t ldc,
                           int m, int n, int nvalid) {
  __m512i corr[2];
  if (!Corrected) zero_point_terms(wsum, a_zero, corr);
  __m512i v[MR][2];
  __m512 f[MR][2];
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
    for (int h = 0; h < NH; ++h) {
      v[r][h] = Corrected ? acc[r][h][0] : _mm512_add_epi32(acc[r][h][0], corr[h]);
      for (int c = 1; c < CH; ++c) v[r][h] = _mm512_add_epi32(v[r][h], acc[r][h][c]);
      f[r][h] = _mm512_cvtepi32_ps(v[r][h]);
    }
  rq.store_tile<MR, NH>(f, v, n, nvalid, C, ldc, m);
}

// Bytes of one int8 panel of 32 channels over K: ceil(K/4) quads of 128 bytes (byte h*64 + 4c + i
// of quad q is w[16h + c][4q + i], zero past K), then the 32 channels' int32 weight sums.
inline size_t q8_panel_bytes(int K) { return static_cast<size_t>((K + 3) / 4) * 128 + 128; }

// C[m][n] for rows [0, M) and columns [n0, n1): `panels` holds the panel of column `first`
// (a multiple of 32, at most n0) and the ones after it, `panel_bytes` apart.
void q8_run_panels(const uint8_t* panels, size_t panel_bytes, int first, int M, int K, const uint8_t* A, size_t lda,
                   uint8_t a_zero, const Epilogue& rq, void* C, size_t ldc, int n0, int n1);

// The same over row segments: row m of A is S runs of L bytes (L % 4 == 0) at segs[m * S + s].
void q8_run_panels_segs(const uint8_t* panels, size_t panel_bytes, int first, int M, int S, int L, const uint8_t* const* segs,
                        uint8_t a_zero, const Epilogue& rq, void* C, size_t ldc, int n0, int n1);

}  // namespace avx512vnni
}  // namespace kernels
}  // namespace ternion
