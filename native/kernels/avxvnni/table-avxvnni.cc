// The AVX-VNNI table (AVX2 + FMA + 256-bit vpdpbusd, VEX encoded). dispatch.cc returns it only
// when CPUID reports AVX-VNNI and the OS saves ymm state; nothing in this folder runs otherwise.
#include "common-avxvnni.h"

namespace ternion {
namespace kernels {
namespace avx2 {
TERNION_DECLARE_DW_ENTRIES()  // the fp32 depthwise conv and quantizing are light work: the AVX2 kernels serve here too
}  // namespace avx2

const KernelTable* avxvnni_table() {
  using namespace avxvnni;
  static const KernelTable table = {
      "avxvnni",
      kNR, f32_packed_size, f32_pack, f32_gemm, f32_pack_kn,
      kNR, q8_packed_size, q8_pack, q8_gemm,
      kNR, lowbit_packed_size, lowbit_pack, lowbit_gemm,
      dw_packed_size, dw_pack, dw_q8,
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
