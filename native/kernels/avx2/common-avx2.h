// Helpers shared by the AVX2 kernels: column masks for partial panels, a per-call scratch
// buffer (no global state), and the Requant epilogue (epilogue-avx2.inc), written in the exact
// operation order of kernels.h so the integer kernels stay bit-exact with scalar.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <type_traits>

#include "kernels/kernels.h"
#include "kernels/requant-folded.h"

namespace ternion {
namespace kernels {
namespace avx2 {

inline size_t round_up(size_t x, size_t m) { return (x + m - 1) / m * m; }

// The "narrow" int8 forms (GEMM, depthwise, expanded folded layers) multiply raw uint8
// activations by int8 weights with vpmaddubsw, which adds two products into an int16 lane: exact
// only while both are at most 255 * 64, so every weight must lie in [-64, 63]. The zero point
// then comes out through per-row weight sums: sum (a - a_zero) w = sum a w - a_zero * sum w.
constexpr int kNarrowWeightMin = -64, kNarrowWeightMax = 63;

inline bool fits_narrow(const int8_t* W, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (W[i] < kNarrowWeightMin || W[i] > kNarrowWeightMax) return false;
  return true;
}

// out[r] = sum of row r of W [rows][cols].
inline void row_sums(const int8_t* W, int rows, int cols, int32_t* out) {
  for (int r = 0; r < rows; ++r) {
    int32_t s = 0;
    for (int c = 0; c < cols; ++c) s += W[static_cast<size_t>(r) * cols + c];
    out[r] = s;
  }
}

// Lane mask with the first `n` (0..8) 32-bit lanes set: for maskload/maskstore of tails, which
// never touch (or fault on) the masked-off lanes.
inline __m256i lane_mask(int n) {
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), idx);
}

// Scratch memory owned by one call (kernels run concurrently on many threads, so nothing is
// cached between calls). Small requests use the stack buffer.
class Scratch {
 public:
  explicit Scratch(size_t bytes) {
    if (bytes <= sizeof local_) {
      p_ = local_;
    } else {
      if (posix_memalign(&heap_, 64, bytes) != 0) std::abort();
      p_ = heap_;
    }
  }
  ~Scratch() { free(heap_); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  template <typename T>
  T* as() const { return static_cast<T*>(p_); }

 private:
  alignas(64) unsigned char local_[16384];
  void* heap_ = nullptr;
  void* p_;
};

// The fp32 kernels' clamp (kernels.h: v < lo ? lo : v, then hi < v ? hi : v) on 8 values:
// vmaxps(lo, v) / vminps(hi, v) return their second operand when unordered or equal, so a NaN
// passes through and -0 stays -0, as in the reference.
inline __m256 clamp8(__m256 v, __m256 lo, __m256 hi) { return _mm256_min_ps(hi, _mm256_max_ps(lo, v)); }

// The Requant epilogue (class Epilogue), shared with the AVX-VNNI folder, which compiles its own
// copy in its own namespace.
#include "kernels/avx2/epilogue-avx2.inc"

}  // namespace avx2
}  // namespace kernels
}  // namespace ternion
