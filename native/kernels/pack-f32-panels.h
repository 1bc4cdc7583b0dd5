// The fp32 weight layout of the SIMD tables (AVX2, AVX-512, AVX-VNNI, NEON): panels of NR output
// columns, each holding, for k = 0 .. K-1, the NR columns' weights at k (zeros past N), so the
// microkernel loads one vector row of the panel per k. Two sources, the same bytes:
//  - W [N][K] (f32_pack: ONNX Conv / Gemm weights, one output channel per row), read strided;
//  - B [K][N] (f32_pack_kn: a MatMul's right operand computed at run time, such as the keys of
//    an attention head), read one contiguous run of NR values per k.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace ternion {
namespace kernels {

// Tables whose packed buffers start with a header (AVX-512, AVX-VNNI): `bytes` of it, zeroed,
// holding magic, N and K; returns where the panels start.
inline float* f32_panels_after_header(void* packed, size_t bytes, uint32_t magic, int N, int K) {
  uint8_t* base = static_cast<uint8_t*>(packed);
  std::memset(base, 0, bytes);
  std::memcpy(base, &magic, 4);
  std::memcpy(base + 4, &N, 4);
  std::memcpy(base + 8, &K, 4);
  return reinterpret_cast<float*>(base + bytes);
}

template <int NR>
void pack_f32_panels_nk(const float* W, int N, int K, float* out) {
  const int panels = (N + NR - 1) / NR;
  for (int p = 0; p < panels; ++p)
    for (int k = 0; k < K; ++k)
      for (int j = 0; j < NR; ++j) {
        const int n = p * NR + j;
        *out++ = n < N ? W[static_cast<size_t>(n) * K + k] : 0.0f;
      }
}

template <int NR>
void pack_f32_panels_kn(const float* B, int K, int N, size_t ldb, float* out) {
  const int panels = (N + NR - 1) / NR;
  for (int p = 0; p < panels; ++p) {
    const int n0 = p * NR, w = std::min(NR, N - n0);
    for (int k = 0; k < K; ++k, out += NR) {
      std::memcpy(out, B + static_cast<size_t>(k) * ldb + n0, static_cast<size_t>(w) * sizeof(float));
      if (w < NR) std::memset(out + w, 0, static_cast<size_t>(NR - w) * sizeof(float));
    }
  }
}

}  // namespace kernels
}  // namespace ternion
