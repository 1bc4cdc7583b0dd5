// Dense float64 helpers of the data-aware quantizer (lib/quantize/data-aware): the O(K^3) and
// O(rows * K^2) parts that are too slow in JavaScript on big layers. Plain C++ loops written in
// axpy form so the compiler vectorizes them without reassociating sums.
#pragma once

#include <cstdint>

namespace ternion {
namespace quant {

// U = the upper Cholesky factor of H^-1 (H^-1 = U^T U) for SPD H (n x n, row-major), without
// forming H^-1. Returns -1 on success, or the column where H is not positive definite.
int64_t inverse_cholesky_upper(const double* H, int64_t n, double* U);

// The normal equations of the least-squares scale refit for one weight row (see
// lib/quantize/data-aware/refit-scales.ts): with codes fixed and b_j the code pattern of scale
// j (slots = K / G; asymmetric: slots + j is the -1 pattern of group j), A = [b_i^T H b_j] and
// c = [b_i^T H w]. A is m x m, c has m = slots * (asym ? 2 : 1) entries. `scratch` holds
// m * K + K doubles.
void refit_normal_equations(const float* w, const int8_t* codes, const double* H, int64_t K, int64_t G, bool asym,
                            double* A, double* c, double* scratch);

// The error-feedback step of column j (lib/quantize/data-aware/error-feedback.ts): for every
// row r of W (R x K, row-major) with e[r] != 0, W[r][i] -= e[r] * U[j][i] for i in (j, K).
void feedback_column(double* W, const double* U, int64_t R, int64_t K, int64_t j, const double* e);

}  // namespace quant
}  // namespace ternion
