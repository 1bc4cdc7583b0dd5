#include "quant/data-aware-math.h"

#include <cmath>
#include <vector>

namespace ternion {
namespace quant {

namespace {

// In place: A (SPD, full) becomes its upper Cholesky factor R (A = R^T R) in the upper
// triangle; right-looking, each step an axpy over contiguous rows.
int64_t cholesky_upper_in_place(double* A, int64_t n) {
  for (int64_t j = 0; j < n; j++) {
    double* rj = A + j * n;
    const double d = rj[j];
    if (!(d > 0) || !std::isfinite(d)) return j;
    const double r = std::sqrt(d);
    const double inv = 1.0 / r;
    rj[j] = r;
    for (int64_t k = j + 1; k < n; k++) rj[k] *= inv;
    for (int64_t i = j + 1; i < n; i++) {
      const double f = rj[i];
      if (f == 0) continue;
      double* ri = A + i * n;
      for (int64_t k = i; k < n; k++) ri[k] -= f * rj[k];
    }
  }
  return -1;
}

}  // namespace

int64_t inverse_cholesky_upper(const double* H, int64_t n, double* U) {
  // J H J = R^T R (R upper)  =>  H = (J R^T J)(J R J) = S S^T with S = J R^T J upper, so
  // H^-1 = S^-T S^-1 and U = S^-1 = J R^-T J. V = R^-1 first, then U[i][j] = V[n-1-j][n-1-i].
  std::vector<double> R(static_cast<size_t>(n * n));
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < n; j++) R[i * n + j] = H[(n - 1 - i) * n + (n - 1 - j)];
  const int64_t bad = cholesky_upper_in_place(R.data(), n);
  if (bad >= 0) return n - 1 - bad;
  std::vector<double> V(static_cast<size_t>(n * n), 0.0);
  for (int64_t i = n - 1; i >= 0; i--) {
    double* vi = V.data() + i * n;
    const double* ri = R.data() + i * n;
    vi[i] = 1.0;
    for (int64_t k = i + 1; k < n; k++) {
      const double f = ri[k];
      if (f == 0) continue;
      const double* vk = V.data() + k * n;
      for (int64_t j = k; j < n; j++) vi[j] -= f * vk[j];
    }
    const double inv = 1.0 / ri[i];
    for (int64_t j = i; j < n; j++) vi[j] *= inv;
  }
  for (int64_t i = 0; i < n; i++)
    for (int64_t j = 0; j < n; j++) U[i * n + j] = j < i ? 0.0 : V[(n - 1 - j) * n + (n - 1 - i)];
  return -1;
}

void refit_normal_equations(const float* w, const int8_t* codes, const double* H, int64_t K, int64_t G, bool asym,
                            double* A, double* c, double* scratch) {
  const int64_t slots = K / G;
  const int64_t m = asym ? 2 * slots : slots;
  double* V = scratch;       // V[j] = H b_j, m x K
  double* Hw = scratch + m * K;
  auto pattern = [&](int64_t j, int64_t k) -> double {
    const int8_t q = codes[k];
    if (!asym) return q;
    return j < slots ? (q > 0 ? 1.0 : 0.0) : (q < 0 ? -1.0 : 0.0);
  };
  for (int64_t j = 0; j < m; j++) {
    double* vj = V + j * K;
    for (int64_t i = 0; i < K; i++) vj[i] = 0;
    const int64_t g = j % slots;
    for (int64_t k = g * G; k < g * G + G; k++) {
      const double p = pattern(j, k);
      if (p == 0) continue;
      const double* hk = H + k * K;
      for (int64_t i = 0; i < K; i++) vj[i] += p * hk[i];
    }
  }
  for (int64_t i = 0; i < K; i++) Hw[i] = 0;
  for (int64_t k = 0; k < K; k++) {
    const double wk = w[k];
    if (wk == 0) continue;
    const double* hk = H + k * K;  // H symmetric: row k = column k
    for (int64_t i = 0; i < K; i++) Hw[i] += wk * hk[i];
  }
  for (int64_t i = 0; i < m; i++) {
    const int64_t gi = i % slots;
    double ci = 0;
    for (int64_t k = gi * G; k < gi * G + G; k++) {
      const double p = pattern(i, k);
      if (p != 0) ci += p * Hw[k];
    }
    c[i] = ci;
    for (int64_t j = i; j < m; j++) {
      const double* vj = V + j * K;
      double s = 0;
      for (int64_t k = gi * G; k < gi * G + G; k++) {
        const double p = pattern(i, k);
        if (p != 0) s += p * vj[k];
      }
      A[i * m + j] = s;
      A[j * m + i] = s;
    }
  }
}

void feedback_column(double* W, const double* U, int64_t R, int64_t K, int64_t j, const double* e) {
  const double* u = U + j * K;
  for (int64_t r = 0; r < R; r++) {
    const double f = e[r];
    if (f == 0) continue;
    double* w = W + r * K;
    for (int64_t i = j + 1; i < K; i++) w[i] -= f * u[i];
  }
}

}  // namespace quant
}  // namespace ternion
