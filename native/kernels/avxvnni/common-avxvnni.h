// Helpers shared by the AVX-VNNI kernels (this folder only: compiled with -mavx2 -mfma
// -mavxvnni). Everything lives in namespace avxvnni so inline functions never merge with the
// same-named helpers of another instruction set's folder (one definition rule across -m flags).
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "../kernels.h"

namespace ternion {
namespace kernels {
namespace avxvnni {

// Panel width of all three kinds: two ymm of 8 lanes, one lane per output channel.
constexpr int kNR = 16;
constexpr uint32_t kMagicF32 = 0x33464154;     // "TAF3"
constexpr uint32_t kMagicQ8 = 0x38514154;      // "TAQ8"
constexpr uint32_t kMagicLowbit = 0x424C4154;  // "TALB"

inline size_t round_up(size_t x, size_t a) { return (x + a - 1) / a * a; }
inline int num_panels(int N) { return (N + kNR - 1) / kNR; }

// All-ones in lanes [0, valid) of 8 int32 lanes (for vmaskmov loads and stores, which neither
// read nor write the other lanes, so they never touch memory past the range).
inline __m256i lane_mask(int valid) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(valid), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// Unaligned 32-byte load from a byte address.
inline __m256i load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

// Four consecutive A bytes broadcast to every 32-bit lane (the u8 operand of vpdpbusd).
inline __m256i bcast_quad(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}
// Same for the last 1..3 bytes of a row or group: never reads past them, the rest is zero.
// Assembled in a register: a memcpy into a local compiles to byte stores whose 4-byte reload
// misses store forwarding (a stall per row).
inline __m256i bcast_partial(const uint8_t* p, int nbytes) {
  uint32_t v = p[0];
  if (nbytes > 1) v |= static_cast<uint32_t>(p[1]) << 8;
  if (nbytes > 2) v |= static_cast<uint32_t>(p[2]) << 16;
  return _mm256_set1_epi32(static_cast<int32_t>(v));
}

// u8 (a) x s8 (w) dot products of 4 bytes accumulated into int32 lanes, no saturation.
// TERNION_AVXVNNI_EMULATE (tests only) computes the same exactly with AVX2, so this folder's
// logic can be checked on CPUs without AVX-VNNI: even and odd bytes widened to 16 bits, vpmaddwd
// (each product fits int16 x int16, a pair sum fits int32), then the two halves added.
inline __m256i dpbusd(__m256i acc, __m256i a_u8, __m256i w_s8) {
#ifdef TERNION_AVXVNNI_EMULATE
  const __m256i lo8 = _mm256_set1_epi16(0x00FF);
  const __m256i a_even = _mm256_and_si256(a_u8, lo8);
  const __m256i a_odd = _mm256_srli_epi16(a_u8, 8);
  const __m256i w_even = _mm256_srai_epi16(_mm256_slli_epi16(w_s8, 8), 8);
  const __m256i w_odd = _mm256_srai_epi16(w_s8, 8);
  const __m256i p = _mm256_add_epi32(_mm256_madd_epi16(a_even, w_even), _mm256_madd_epi16(a_odd, w_odd));
  return _mm256_add_epi32(acc, p);
#else
  // GCC 12 compiles the intrinsic with accumulator copies around each vpdpbusd, which with 16
  // ymm registers spills; the asm ties input and output to one register. {vex}: AVX-VNNI encoding.
  __asm__("%{vex%} vpdpbusd %2, %1, %0" : "+x"(acc) : "x"(a_u8), "x"(w_s8));
  return acc;
#endif
}

// int16 pairs (a) x int16 pairs (b) dot products accumulated into int32 lanes (vpdpwssd): the
// same as vpmaddwd + vpaddd, in one instruction.
inline __m256i dpwssd(__m256i acc, __m256i a, __m256i b) {
#ifdef TERNION_AVXVNNI_EMULATE
  return _mm256_add_epi32(acc, _mm256_madd_epi16(a, b));
#else
  return _mm256_dpwssd_avx_epi32(acc, a, b);
#endif
}

// The Requant epilogue of kernels.h for 8 channels [n, n+8) of row m; lanes >= valid are
// neither read (scale, bias) nor written. `accf` is the fp32 value, `acci` the int32 accumulator
// (OutType::I32 only). Order of operations as the scalar reference: fma, max 0, max lo, min hi,
// round half to even (cvtps2dq under the default MXCSR), + zero_point.
inline void requant_store(const Requant& rq, __m256 accf, __m256i acci, int n, int valid, void* C,
                          size_t ldc, int m) {
  if (valid <= 0) return;
  if (valid > 8) valid = 8;
  const size_t off = static_cast<size_t>(m) * ldc + static_cast<size_t>(n);
  const __m256i mk = lane_mask(valid);
  if (rq.out == OutType::I32) {
    _mm256_maskstore_epi32(static_cast<int*>(C) + off, mk, acci);
    return;
  }
  const __m256 s = rq.scale ? _mm256_maskload_ps(rq.scale + n, mk) : _mm256_set1_ps(1.0f);
  const __m256 b = rq.bias ? _mm256_maskload_ps(rq.bias + n, mk) : _mm256_setzero_ps();
  __m256 v = _mm256_fmadd_ps(accf, s, b);
  // vmaxps(v, 0) = v > 0 ? v : 0, the same as fmaxf(v, 0) including NaN -> 0.
  if (rq.relu) v = _mm256_max_ps(v, _mm256_setzero_ps());
  if (rq.out == OutType::F32) {
    _mm256_maskstore_ps(static_cast<float*>(C) + off, mk, v);
    return;
  }
  // Requant's post-activation Clip and divisor: std::max(v, lo) is (v < lo ? lo : v), which is
  // vmaxps(lo, v) (its second operand when unordered or equal), std::min(v, hi) is vminps(hi, v).
  if (rq.post_lo != -__builtin_inff()) v = _mm256_max_ps(_mm256_set1_ps(rq.post_lo), v);
  if (rq.post_hi != __builtin_inff()) v = _mm256_min_ps(_mm256_set1_ps(rq.post_hi), v);
  if (rq.divisor > 0.0f) v = _mm256_div_ps(v, _mm256_set1_ps(rq.divisor));
  v = _mm256_max_ps(v, _mm256_set1_ps(static_cast<float>(rq.qmin - rq.zero_point)));
  v = _mm256_min_ps(v, _mm256_set1_ps(static_cast<float>(rq.qmax - rq.zero_point)));
  const __m256i q = _mm256_add_epi32(_mm256_cvtps_epi32(v), _mm256_set1_epi32(rq.zero_point));
  // Values are already within [qmin, qmax], so the saturating packs are exact.
  const __m128i w16 = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
  const __m128i b8 = rq.out == OutType::U8 ? _mm_packus_epi16(w16, w16) : _mm_packs_epi16(w16, w16);
  const uint64_t bytes = static_cast<uint64_t>(_mm_cvtsi128_si64(b8));
  std::memcpy(static_cast<uint8_t*>(C) + off, &bytes, static_cast<size_t>(valid));
}

// Entry points (one file per kind).
TERNION_DECLARE_KERNEL_ENTRIES()

}  // namespace avxvnni
}  // namespace kernels
}  // namespace ternion
