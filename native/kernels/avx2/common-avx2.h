// Helpers shared by the AVX2 kernels: column masks for partial panels, a per-call scratch
// buffer (no global state), and the Requant epilogue for 8 columns at a time, written in the
// exact operation order of kernels.h so the integer kernels stay bit-exact with scalar.
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "kernels/kernels.h"

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

// Requant's post-activation Clip and divisor (kernels.h) on 8 values: std::max(v, lo) is
// (v < lo ? lo : v), which is vmaxps(lo, v) (its second operand when unordered), and
// std::min(v, hi) is vminps(hi, v); vdivps is the IEEE division.
inline __m256 post_quant8(const Requant& rq, __m256 v) {
  if (rq.post_lo != -__builtin_inff()) v = _mm256_max_ps(_mm256_set1_ps(rq.post_lo), v);
  if (rq.post_hi != __builtin_inff()) v = _mm256_min_ps(_mm256_set1_ps(rq.post_hi), v);
  if (rq.divisor > 0.0f) v = _mm256_div_ps(v, _mm256_set1_ps(rq.divisor));
  return v;
}

// Requant epilogue for up to 8 consecutive output columns [n, n + cols) of one row.
// `f` is the fp32 value the epilogue starts from, `raw` the int32 accumulator (OutType::I32).
// Order of operations is exactly kernels.h: fmaf(acc, scale, bias), relu as fmax(v, 0),
// clamp to [qmin - zp, qmax - zp], round half to even (cvtps2dq, default MXCSR), add zp.
// _mm256_max_ps(v, 0) returns +0 for v = -0 and 0 for NaN, like glibc's fmaxf.
inline void epilogue8(const Requant& rq, int n, int cols, __m256 f, __m256i raw, void* C,
                      size_t index) {
  const __m256i mask = lane_mask(cols);
  if (rq.out == OutType::I32) {
    int32_t* c = static_cast<int32_t*>(C) + index;
    if (cols == 8) _mm256_storeu_si256(reinterpret_cast<__m256i*>(c), raw);
    else _mm256_maskstore_epi32(reinterpret_cast<int*>(c), mask, raw);
    return;
  }
  __m256 s = _mm256_set1_ps(1.0f), b = _mm256_setzero_ps();
  if (cols == 8) {
    if (rq.scale) s = _mm256_loadu_ps(rq.scale + n);
    if (rq.bias) b = _mm256_loadu_ps(rq.bias + n);
  } else {
    if (rq.scale) s = _mm256_blendv_ps(s, _mm256_maskload_ps(rq.scale + n, mask), _mm256_castsi256_ps(mask));
    if (rq.bias) b = _mm256_maskload_ps(rq.bias + n, mask);
  }
  __m256 v = _mm256_fmadd_ps(f, s, b);
  if (rq.relu) v = _mm256_max_ps(v, _mm256_setzero_ps());
  if (rq.out == OutType::F32) {
    float* c = static_cast<float*>(C) + index;
    if (cols == 8) _mm256_storeu_ps(c, v);
    else _mm256_maskstore_ps(c, mask, v);
    return;
  }
  v = post_quant8(rq, v);
  const __m256 lo = _mm256_set1_ps(static_cast<float>(rq.qmin - rq.zero_point));
  const __m256 hi = _mm256_set1_ps(static_cast<float>(rq.qmax - rq.zero_point));
  v = _mm256_min_ps(_mm256_max_ps(v, lo), hi);
  const __m256i q = _mm256_add_epi32(_mm256_cvtps_epi32(v), _mm256_set1_epi32(rq.zero_point));
  alignas(32) int32_t t[8];
  _mm256_store_si256(reinterpret_cast<__m256i*>(t), q);
  // Plain narrowing casts, as the reference does (wraps if qmin/qmax exceed the type).
  if (rq.out == OutType::U8) {
    uint8_t* c = static_cast<uint8_t*>(C) + index;
    for (int j = 0; j < cols; ++j) c[j] = static_cast<uint8_t>(t[j]);
  } else {
    int8_t* c = static_cast<int8_t*>(C) + index;
    for (int j = 0; j < cols; ++j) c[j] = static_cast<int8_t>(t[j]);
  }
}

// Scale and bias of the 16 columns from n (1 and 0 where absent), loaded once per panel.
inline void panel_scale_bias(const Requant& rq, int n, __m256 (&s)[2], __m256 (&b)[2]) {
  for (int i = 0; i < 2; ++i) {
    s[i] = rq.scale ? _mm256_loadu_ps(rq.scale + n + 8 * i) : _mm256_set1_ps(1.0f);
    b[i] = rq.bias ? _mm256_loadu_ps(rq.bias + n + 8 * i) : _mm256_setzero_ps();
  }
}

// fp32 output of a whole 16-column panel for MR rows (the common case of the GEMMs inside the
// conv ops): the panel's scale and bias are loaded once for all rows. Same operations as
// epilogue8 with cols == 8.
template <int MR>
inline void epilogue16_f32_rows(const Requant& rq, int n, const __m256 (&f)[MR][2], void* C, size_t ldc, size_t index) {
  __m256 s[2], b[2];
  panel_scale_bias(rq, n, s, b);
  float* c = static_cast<float*>(C) + index;
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 2
    for (int i = 0; i < 2; ++i) {
      __m256 v = _mm256_fmadd_ps(f[r][i], s[i], b[i]);
      if (rq.relu) v = _mm256_max_ps(v, _mm256_setzero_ps());
      _mm256_storeu_ps(c + r * ldc + 8 * i, v);
    }
}

// uint8 output of a whole 16-column panel for MR rows: the same operations as epilogue8 with
// OutType::U8 and cols == 8, packed to 16 bytes per row (the common case of a layer storing the
// next layer's input). The int32 -> uint8 packs saturate, which changes nothing: the values
// are in [qmin, qmax] within [0, 255] already (the caller checks the range).
template <int MR>
inline void epilogue16_u8_rows(const Requant& rq, int n, const __m256 (&f)[MR][2], void* C, size_t ldc, size_t index) {
  __m256 s[2], b[2];
  panel_scale_bias(rq, n, s, b);
  const __m256 lo = _mm256_set1_ps(static_cast<float>(rq.qmin - rq.zero_point));
  const __m256 hi = _mm256_set1_ps(static_cast<float>(rq.qmax - rq.zero_point));
  const __m256i zp = _mm256_set1_epi32(rq.zero_point);
  uint8_t* c = static_cast<uint8_t*>(C) + index;
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    __m256i q[2];
#pragma GCC unroll 2
    for (int i = 0; i < 2; ++i) {
      __m256 v = _mm256_fmadd_ps(f[r][i], s[i], b[i]);
      if (rq.relu) v = _mm256_max_ps(v, _mm256_setzero_ps());
      v = _mm256_min_ps(_mm256_max_ps(post_quant8(rq, v), lo), hi);
      q[i] = _mm256_add_epi32(_mm256_cvtps_epi32(v), zp);
    }
    const __m256i w = _mm256_packs_epi32(q[0], q[1]);  // [0-3 8-11 | 4-7 12-15] as int16
    const __m128i b8 = _mm_packus_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));  // 0-3 8-11 4-7 12-15
    _mm_storeu_si128(reinterpret_cast<__m128i*>(c + r * ldc), _mm_shuffle_epi32(b8, _MM_SHUFFLE(3, 1, 2, 0)));
  }
}

// Whether epilogue16_u8_rows applies: uint8 output whose range fits a byte (the packs saturate).
inline bool u8_panel_ok(const Requant& rq) { return rq.out == OutType::U8 && rq.qmin >= 0 && rq.qmax <= 255; }

// Epilogue of an integer accumulator: the fp32 value is (float)acc, exactly (cvtdq2ps rounds
// to nearest even like the C conversion).
inline void epilogue8_int(const Requant& rq, int n, int cols, __m256i acc, void* C, size_t index) {
  epilogue8(rq, n, cols, _mm256_cvtepi32_ps(acc), acc, C, index);
}

}  // namespace avx2
}  // namespace kernels
}  // namespace ternion
