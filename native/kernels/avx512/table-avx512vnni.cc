// The AVX-512 VNNI table (AVX-512 F/BW/VL/DQ + VNNI). dispatch.cc returns it only when CPUID and
// XCR0 report all of them; nothing in this folder runs otherwise.
#include "common-avx512vnni.h"

namespace ternion {
namespace kernels {
namespace avx2 {
// A transpose is data movement: AVX2's 8x8 blocks serve here too.
void transpose_f32(const float* src, int rows, int cols, size_t ld_src, float* dst, size_t ld_dst);
}  // namespace avx2

const KernelTable* avx512vnni_table() {
  using namespace avx512vnni;
  static const KernelTable table = {
      "avx512vnni",
      kNR, f32_packed_size, f32_pack, f32_gemm, f32_pack_kn,
      kNR, q8_packed_size, q8_pack, q8_gemm,
      kNR, lowbit_packed_size, lowbit_pack, lowbit_gemm,
      dw_packed_size, dw_pack, dw_q8,
      dw_f32,
      quantize_u8,
      avx2::transpose_f32,
      true,  // post_quant
      true,  // post_residual
      q8_gemm_segs,
      lowbit_gemm_segs,
      f32_gemm_segs,
  };
  return &table;
}

}  // namespace kernels
}  // namespace ternion
