// fp32 GEMM reference: W is kept as given ([N][K]); the sum runs over k in order.
#include <cstring>

#include "kernels/kernels.h"

namespace ternion {
namespace kernels {
namespace scalar_detail {

size_t f32_packed_size(int N, int K) { return static_cast<size_t>(N) * K * sizeof(float); }

void f32_pack(const float* W, int N, int K, void* packed) {
  std::memcpy(packed, W, f32_packed_size(N, K));
}

// The packed form is W [N][K] itself: B's transpose.
void f32_pack_kn(const float* B, int K, int N, size_t ldb, void* packed) {
  float* out = static_cast<float*>(packed);
  for (int n = 0; n < N; ++n)
    for (int k = 0; k < K; ++k) out[static_cast<size_t>(n) * K + k] = B[static_cast<size_t>(k) * ldb + n];
}

void f32_gemm(int M, int N, int K, const float* A, size_t lda, const void* packed,
              const float* bias, const float* clamp, float* C, size_t ldc, int n0, int n1) {
  const float* W = static_cast<const float*>(packed);
  for (int m = 0; m < M; ++m) {
    const float* a = A + m * lda;
    for (int n = n0; n < n1; ++n) {
      const float* w = W + static_cast<size_t>(n) * K;
      float sum = 0.0f;
      for (int k = 0; k < K; ++k) sum += a[k] * w[k];
      if (bias) sum += bias[n];
      if (clamp) {
        sum = sum < clamp[0] ? clamp[0] : sum;
        sum = clamp[1] < sum ? clamp[1] : sum;
      }
      C[m * ldc + n] = sum;
    }
  }
}

}  // namespace scalar_detail
}  // namespace kernels
}  // namespace ternion
