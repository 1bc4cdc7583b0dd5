// Helpers shared by the AVX-512 VNNI kernels (this folder only: compiled with its flags).
// Everything lives in namespace avx512vnni so inline functions never merge with the same-named
// helpers of another instruction set's folder (one definition rule across different -m flags).
#pragma once

// GCC 12 warns inside its own AVX-512 headers (the `__Y = __Y` of _mm512_undefined_*, GCC PR
// 105593) wherever those intrinsics are inlined; silence that false positive for this folder.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "../kernels.h"

namespace ternion {
namespace kernels {
namespace avx512vnni {

// Panel width of all three kinds: two zmm of 16 lanes, one lane per output channel.
constexpr int kNR = 32;
constexpr uint32_t kMagicF32 = 0x33504654;     // "TFP3"
constexpr uint32_t kMagicQ8 = 0x38515654;      // "TVQ8"
constexpr uint32_t kMagicLowbit = 0x424C5654;  // "TVLB"

inline size_t round_up(size_t x, size_t a) { return (x + a - 1) / a * a; }
inline int num_panels(int N) { return (N + kNR - 1) / kNR; }

// Lanes [0, valid) of a 16-lane vector; valid may be <= 0 or >= 16.
inline __mmask16 lane_mask(int valid) {
  if (valid >= 16) return static_cast<__mmask16>(0xFFFF);
  if (valid <= 0) return 0;
  return static_cast<__mmask16>((1u << valid) - 1u);
}

// Calls f(m, rows) for row blocks of at most `mr` rows covering [0, M), as even as possible:
// ceil(M / mr) blocks whose sizes differ by at most one. 49 rows (a 7x7 image) in blocks of 8
// become 7 x 7 instead of 6 x 8 + 1, whose lone row costs a whole pass over the panel at GEMV
// speed. (Rows are independent, so any blocking gives the same bits.)
template <typename F>
inline void even_row_blocks(int M, int mr, F&& f) {
  if (M <= 0) return;
  const int nb = (M + mr - 1) / mr, big = (M + nb - 1) / nb, nbig = M - (big - 1) * nb;
  for (int b = 0, m = 0; b < nb; ++b) {
    const int rows = b < nbig ? big : big - 1;
    f(m, rows);
    m += rows;
  }
}

// Four consecutive A bytes broadcast to every 32-bit lane (the u8 operand of vpdpbusd).
inline __m512i bcast_quad(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}
// Same for the last 1..3 bytes of a row or group: never reads past them, the rest is zero.
inline __m512i bcast_partial(const uint8_t* p, int nbytes) {
  int32_t v = 0;
  std::memcpy(&v, p, static_cast<size_t>(nbytes));
  return _mm512_set1_epi32(v);
}

// u8 (a) x s8 (w) dot products of 4 bytes accumulated into int32 lanes, no saturation.
// GCC 12 compiles the intrinsic with a copy of the accumulator before and after each vpdpbusd
// (register pressure, spills in the 8x32 loop); the asm ties input and output to one register.
// TERNION_DPBUSD_INTRINSIC (set by a scalar emulation header in tests) keeps the intrinsic.
inline __m512i dpbusd(__m512i acc, __m512i a_u8, __m512i w_s8) {
#if defined(TERNION_DPBUSD_INTRINSIC)
  return _mm512_dpbusd_epi32(acc, a_u8, w_s8);
#else
  __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(a_u8), "v"(w_s8));
  return acc;
#endif
}

// The Requant epilogue of kernels.h, its constants converted and broadcast once per kernel call
// (rebuilding them for every 16 outputs cost more than the multiply-adds of a small-K layer).
// store() handles 16 channels [n, n+16) of row m; lanes outside `mk` are neither read (scale,
// bias) nor written. `accf` is the fp32 value, `acci` the int32 accumulator (OutType::I32 only).
// Order of operations as the scalar reference: fma, max 0, the post-activation Clip (std::max(v,
// lo) is (v < lo ? lo : v), i.e. vmaxps(lo, v), which returns its second operand when unordered
// or equal; std::min(v, hi) is vminps(hi, v)), the IEEE division, max lo, min hi, round half to
// even (cvtps2dq under the default MXCSR), + zero_point.
class Epilogue {
 public:
  explicit Epilogue(const Requant& rq)
      : scale_(rq.scale), bias_(rq.bias), out_(rq.out), relu_(rq.relu),
        post_lo_(rq.post_lo != -__builtin_inff()), post_hi_(rq.post_hi != __builtin_inff()), div_(rq.divisor > 0.0f),
        plo_(_mm512_set1_ps(rq.post_lo)), phi_(_mm512_set1_ps(rq.post_hi)), d_(_mm512_set1_ps(rq.divisor)),
        qlo_(_mm512_set1_ps(static_cast<float>(rq.qmin - rq.zero_point))),
        qhi_(_mm512_set1_ps(static_cast<float>(rq.qmax - rq.zero_point))), zp_(_mm512_set1_epi32(rq.zero_point)) {}

  void store(__m512 accf, __m512i acci, int n, __mmask16 mk, void* C, size_t ldc, int m) const {
    const size_t off = static_cast<size_t>(m) * ldc + static_cast<size_t>(n);
    if (out_ == OutType::I32) {
      _mm512_mask_storeu_epi32(static_cast<int32_t*>(C) + off, mk, acci);
      return;
    }
    const __m512 s = scale_ ? _mm512_maskz_loadu_ps(mk, scale_ + n) : _mm512_set1_ps(1.0f);
    const __m512 b = bias_ ? _mm512_maskz_loadu_ps(mk, bias_ + n) : _mm512_setzero_ps();
    __m512 v = _mm512_fmadd_ps(accf, s, b);
    // vmaxps(v, 0) = v > 0 ? v : 0, the same as fmaxf(v, 0) including NaN -> 0.
    if (relu_) v = _mm512_max_ps(v, _mm512_setzero_ps());
    if (out_ == OutType::F32) {
      _mm512_mask_storeu_ps(static_cast<float*>(C) + off, mk, v);
      return;
    }
    if (post_lo_) v = _mm512_max_ps(plo_, v);
    if (post_hi_) v = _mm512_min_ps(phi_, v);
    if (div_) v = _mm512_div_ps(v, d_);
    v = _mm512_min_ps(_mm512_max_ps(v, qlo_), qhi_);
    const __m512i q = _mm512_add_epi32(_mm512_cvtps_epi32(v), zp_);
    // Values are already within [qmin, qmax], so the truncating vpmovdb is exact.
    if (out_ == OutType::U8)
      _mm512_mask_cvtepi32_storeu_epi8(static_cast<uint8_t*>(C) + off, mk, q);
    else
      _mm512_mask_cvtepi32_storeu_epi8(static_cast<int8_t*>(C) + off, mk, q);
  }

 private:
  const float* scale_;
  const float* bias_;
  OutType out_;
  bool relu_, post_lo_, post_hi_, div_;
  __m512 plo_, phi_, d_, qlo_, qhi_;
  __m512i zp_;
};

// Entry points (one file per kind).
TERNION_DECLARE_KERNEL_ENTRIES()
// The depthwise convolutions and the activation quantizer.
size_t dw_packed_size(int C, int taps);
void dw_pack(const int8_t* W, int C, int taps, void* packed);
void dw_q8(int P, int C, int taps, const uint8_t* const* in, uint8_t a_zero, const void* packed,
           const Requant* rq, void* out, size_t ldo);
void dw_f32(int P, int C, int taps, const float* const* in, const float* w, const float* bias,
            float lo, float hi, float* out, size_t ldo);
void quantize_u8(const float* x, uint8_t* y, size_t n, float scale, int32_t zp, int32_t qmax);

}  // namespace avx512vnni
}  // namespace kernels
}  // namespace ternion
