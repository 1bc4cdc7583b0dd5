// The AVX-VNNI int8 GEMM's row loops over weights already in its "16c4" panel layout
// (gemm-q8-avxvnni.cc): used by q8_gemm on its own packed layers, and by the low-bit GEMM,
// which expands a folded layer's codes x multipliers into such panels when enough rows reuse them.
#pragma once

#include <cstddef>
#include <cstdint>

#include "common-avxvnni.h"

namespace ternion {
namespace kernels {
namespace avxvnni {

// Bytes of one int8 panel of 16 channels over K: ceil(K/4) quads of 64 bytes (byte h*32 + 4c + i
// of quad q is w[8h + c][4q + i], zero past K), then the 16 channels' int32 weight sums.
inline size_t q8_panel_bytes(int K) { return static_cast<size_t>((K + 3) / 4) * 64 + 64; }

// C[m][n] for rows [0, M) and columns [n0, n1): `panels` holds the panel of column `first`
// (a multiple of 16, at most n0) and the ones after it, `panel_bytes` apart.
void q8_run_panels(const uint8_t* panels, size_t panel_bytes, int first, int M, int K, const uint8_t* A, size_t lda,
                   uint8_t a_zero, const Epilogue& rq, void* C, size_t ldc, int n0, int n1);

}  // namespace avxvnni
}  // namespace kernels
}  // namespace ternion
