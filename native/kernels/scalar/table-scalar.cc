// The scalar table: the reference every SIMD table is tested against, and the fallback.
#include "kernels/kernels.h"

namespace ternion {
namespace kernels {
namespace scalar_detail {
TERNION_DECLARE_KERNEL_ENTRIES()
TERNION_DECLARE_DW_ENTRIES()
}  // namespace scalar_detail

const KernelTable* scalar_table() {
  using namespace scalar_detail;
  static const KernelTable table = {
      "scalar",
      1, f32_packed_size, f32_pack, f32_gemm, f32_pack_kn,
      1, q8_packed_size, q8_pack, q8_gemm,
      1, lowbit_packed_size, lowbit_pack, lowbit_gemm,
      dw_packed_size, dw_pack, dw_q8,
      dw_f32,
      quantize_u8,
      transpose_f32,
      true,  // post_quant
      true,  // post_residual
  };
  return &table;
}

}  // namespace kernels
}  // namespace ternion
