// The AVX2 (+FMA) kernel table: fp32 GEMM (6x16 FMA tiles), int8 GEMM (exact vpmaddwd on
// 16-bit values), low-bit GEMM (vpmaddubsw on unsigned codes, exact by construction) and the
// depthwise int8 convolution (vpmaddwd on pairs of taps; the wider x86 tables use it too).
// Panel width 16 for all three kinds. Offered by dispatch only where CPUID reports AVX2, FMA
// and F16C with OS support.
#include "kernels/kernels.h"

namespace ternion {
namespace kernels {
namespace avx2 {
TERNION_DECLARE_KERNEL_ENTRIES()
TERNION_DECLARE_DW_ENTRIES()
}  // namespace avx2

const KernelTable* avx2_table() {
  static const KernelTable table = {
      "avx2",
      16, avx2::f32_packed_size, avx2::f32_pack, avx2::f32_gemm, avx2::f32_pack_kn,
      16, avx2::q8_packed_size, avx2::q8_pack, avx2::q8_gemm,
      16, avx2::lowbit_packed_size, avx2::lowbit_pack, avx2::lowbit_gemm,
      avx2::dw_packed_size, avx2::dw_pack, avx2::dw_q8,
      avx2::dw_f32,
      avx2::quantize_u8,
      avx2::transpose_f32,
      true,  // post_quant
      true,  // post_residual
  };
  return &table;
}

}  // namespace kernels
}  // namespace ternion
