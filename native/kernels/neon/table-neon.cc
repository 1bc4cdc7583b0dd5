// The NEON table (aarch64, baseline armv8-a Advanced SIMD; every aarch64 CPU has it, so no
// run-time check is needed). All three kinds use 8-column panels.
#include "kernels/kernels.h"
#include "kernels/neon/common-neon.h"

namespace ternion {
namespace kernels {

const KernelTable* neon_table() {
  using namespace neon_detail;
  static const KernelTable table = {
      "neon",
      kNR, f32_packed_size, f32_pack, f32_gemm, f32_pack_kn,
      kNR, q8_packed_size, q8_pack, q8_gemm,
      kNR, lowbit_packed_size, lowbit_pack, lowbit_gemm,
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
