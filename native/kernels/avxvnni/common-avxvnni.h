// Helpers shared by the AVX-VNNI kernels (this folder only: compiled with -mavx2 -mfma
// -mavxvnni). Everything lives in namespace avxvnni so inline functions never merge with the
// same-named helpers of another instruction set's folder (one definition rule across -m flags).
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <algorithm>
#include <cstring>
#include <type_traits>

#include "../kernels.h"
#include "../requant-folded.h"

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

// The Requant epilogue (class Epilogue), shared with the AVX2 folder but compiled here, in this
// namespace, with this folder's flags.
#include "../avx2/epilogue-avx2.inc"

// Entry points (one file per kind).
TERNION_DECLARE_KERNEL_ENTRIES()
// The depthwise int8 convolution (the fp32 one and the quantizer are the AVX2 table's).
size_t dw_packed_size(int C, int taps);
void dw_pack(const int8_t* W, int C, int taps, void* packed);
void dw_q8(int P, int C, int taps, const uint8_t* const* in, uint8_t a_zero, const void* packed,
           const Requant* rq, void* out, size_t ldo);

}  // namespace avxvnni
}  // namespace kernels
}  // namespace ternion
