// int8 GEMM reference: computes sum (a - a_zero) * w directly, exactly as kernels.h defines it.
#include <cstring>

#include "kernels/kernels.h"
#include "kernels/scalar/requant-scalar.h"

namespace ternion {
namespace kernels {
namespace scalar_detail {

size_t q8_packed_size(int N, int K) { return static_cast<size_t>(N) * K; }

void q8_pack(const int8_t* W, int N, int K, void* packed) {
  std::memcpy(packed, W, q8_packed_size(N, K));
}

void q8_gemm(int M, int N, int K, const uint8_t* A, size_t lda, uint8_t a_zero,
             const void* packed, const Requant* rq, void* C, size_t ldc, int n0, int n1) {
  const int8_t* W = static_cast<const int8_t*>(packed);
  for (int m = 0; m < M; ++m) {
    const uint8_t* a = A + m * lda;
    for (int n = n0; n < n1; ++n) {
      const int8_t* w = W + static_cast<size_t>(n) * K;
      int32_t acc = 0;
      for (int k = 0; k < K; ++k) acc += (static_cast<int32_t>(a[k]) - a_zero) * w[k];
      requant_store(*rq, n, static_cast<float>(acc), acc, C, m * ldc + n);
    }
  }
}

}  // namespace scalar_detail
}  // namespace kernels
}  // namespace ternion
