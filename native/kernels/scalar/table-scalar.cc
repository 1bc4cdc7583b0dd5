// The scalar table: the reference every SIMD table is tested against, and the fallback.
#include "kernels/kernels.h"

namespace ternion {
namespace kernels {
namespace scalar_detail {
size_t f32_packed_size(int N, int K);
void f32_pack(const float* W, int N, int K, void* packed);
void f32_gemm(int M, int N, int K, const float* A, size_t lda, const void* packed,
              const float* bias, bool relu, float* C, size_t ldc, int n0, int n1);
size_t q8_packed_size(int N, int K);
void q8_pack(const int8_t* W, int N, int K, void* packed);
void q8_gemm(int M, int N, int K, const uint8_t* A, size_t lda, uint8_t a_zero,
             const void* packed, const Requant* rq, void* C, size_t ldc, int n0, int n1);
size_t lowbit_packed_size(const LowbitWeights* w);
void lowbit_pack(const LowbitWeights* w, void* packed);
void lowbit_gemm(int M, int N, int K, const uint8_t* A, size_t lda, uint8_t a_zero,
                 const void* packed, const Requant* rq, void* C, size_t ldc, int n0, int n1);
}  // namespace scalar_detail

const KernelTable* scalar_table() {
  using namespace scalar_detail;
  static const KernelTable table = {
      "scalar",
      1, f32_packed_size, f32_pack, f32_gemm,
      1, q8_packed_size, q8_pack, q8_gemm,
      1, lowbit_packed_size, lowbit_pack, lowbit_gemm,
  };
  return &table;
}

}  // namespace kernels
}  // namespace ternion
