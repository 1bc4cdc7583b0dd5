// The AVX2 (+FMA) kernel table: fp32 GEMM (6x16 FMA tiles), int8 GEMM (exact vpmaddwd on
// 16-bit values) and low-bit GEMM (vpmaddubsw on unsigned codes, exact by construction).
// Panel width 16 for all three kinds. Offered by dispatch only where CPUID reports AVX2, FMA
// and F16C with OS support.
#include "kernels/kernels.h"

namespace ternion {
namespace kernels {
namespace avx2 {
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
}  // namespace avx2

const KernelTable* avx2_table() {
  static const KernelTable table = {
      "avx2",
      16, avx2::f32_packed_size, avx2::f32_pack, avx2::f32_gemm,
      16, avx2::q8_packed_size, avx2::q8_pack, avx2::q8_gemm,
      16, avx2::lowbit_packed_size, avx2::lowbit_pack, avx2::lowbit_gemm,
  };
  return &table;
}

}  // namespace kernels
}  // namespace ternion
