// The AVX2 int8 GEMM's tile loops over weights already laid out in one of its two panel forms
// (gemm-q8-avx2.cc): used by q8_gemm on its own packed layers, and by the low-bit GEMM, which
// expands a folded layer's codes x multipliers into int8 panels when enough rows reuse them.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/avx2/common-avx2.h"

namespace ternion {
namespace kernels {
namespace avx2 {

// Panels [first, ...) of 16 output channels. Narrow: for each quad of k, 64 bytes [channels
// 0-7][channels 8-15], byte 4c + t = w[c][4q + t], every weight in [-64, 63], with the
// channels' weight sums in wsum. Wide: for each pair of k, 32 bytes, byte 2c + t of each half
// = w[c][2j + t]. K is padded with zero weights to a multiple of 4 (narrow) or 2 (wide).
struct Q8Panels {
  bool narrow;
  const int8_t* B;       // weights of panel `first`
  size_t panel_bytes;    // distance from one panel's weights to the next's
  const int32_t* wsum;   // narrow: sums of panel `first`'s 16 channels, the next panel's after
  int first;
};

constexpr int kQ8NR = 16;
inline size_t q8_narrow_panel_bytes(int K) { return static_cast<size_t>((K + 3) / 4) * 4 * kQ8NR; }
inline size_t q8_wide_panel_bytes(int K) { return static_cast<size_t>((K + 1) / 2) * 2 * kQ8NR; }

// C[m][n] for rows [0, M) and columns [n0, n1) (n0 a multiple of 16, within the panels given).
void q8_run_panels(const Q8Panels& w, int M, int K, const uint8_t* A, size_t lda, uint8_t a_zero,
                   const Epilogue& rq, void* C, size_t ldc, int n0, int n1);

}  // namespace avx2
}  // namespace kernels
}  // namespace ternion
