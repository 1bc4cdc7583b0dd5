// The AVX-512 VNNI table (AVX-512 F/BW/VL/DQ + VNNI). dispatch.cc returns it only when CPUID and
// XCR0 report all of them; nothing in this folder runs otherwise.
#include "common-avx512vnni.h"

namespace ternion {
namespace kernels {

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
      true,  // post_quant
      true,  // post_residual
      q8_gemm_segs,
      lowbit_gemm_segs,
  };
  return &table;
}

}  // namespace kernels
}  // namespace ternion
