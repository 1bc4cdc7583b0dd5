// The AVX-512 VNNI table (AVX-512 F/BW/VL/DQ + VNNI). dispatch.cc returns it only when CPUID and
// XCR0 report all of them; nothing in this folder runs otherwise.
#include "common-avx512vnni.h"

namespace ternion {
namespace kernels {
namespace avx2 {
TERNION_DECLARE_DW_ENTRIES()  // quantizing activations is light work: the AVX2 kernel serves here too
}  // namespace avx2

const KernelTable* avx512vnni_table() {
  using namespace avx512vnni;
  static const KernelTable table = {
      "avx512vnni",
      kNR, f32_packed_size, f32_pack, f32_gemm,
      kNR, q8_packed_size, q8_pack, q8_gemm,
      kNR, lowbit_packed_size, lowbit_pack, lowbit_gemm,
      dw_packed_size, dw_pack, dw_q8,
      dw_f32,
      avx2::quantize_u8,
      true,  // post_quant
  };
  return &table;
}

}  // namespace kernels
}  // namespace ternion
