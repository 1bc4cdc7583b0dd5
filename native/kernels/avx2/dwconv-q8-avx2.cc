// Depthwise int8 convolution, AVX2, bit-exact with the scalar reference (kernels.h).
//
// Exactness: x = a - a_zero in [-255, 255] and w in [-128, 127] are 16-bit values; vpmaddwd
// adds the products of two taps into an int32 lane (at most 2 * 255 * 128), so every sum is the
// exact integer of the reference, whatever the order.
//
// Packed layout: channels in blocks of 16 (zero weights past C), taps in pairs (a zero weight
// pads an odd count). Per (block, pair) 64 bytes: two vectors of (w[c][2j], w[c][2j+1]) int16
// pairs, the first for channels {0-3, 8-11} of the block, the second for {4-7, 12-15}: the
// order in which vpunpck{l,h}wd interleave two taps' 16 channels within 128-bit lanes.
// A pixel's 16 channels of one block are read with one 16-byte load per tap; the last, partial
// block goes through a stack copy so nothing past C is read.
#include "kernels/avx2/common-avx2.h"

namespace ternion {
namespace kernels {
namespace avx2 {

namespace {

constexpr int kCB = 16;  // channels per block

int pairs_of(int taps) { return (taps + 1) / 2; }

// The block's 16 channels (c0 .. c0 + 15) of one pixel: acc = sum over taps, as two int32
// vectors in channel order (0-7, 8-15). px[t] + c0 points at channel c0 of tap t.
__attribute__((always_inline)) inline void dw_block(const uint8_t* const* px, size_t c0, int taps, const int16_t* w,
                                                     __m256i az, __m256i& out0, __m256i& out1) {
  auto load = [&](int t) __attribute__((always_inline)) {
    return _mm256_sub_epi16(_mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(px[t] + c0))), az);
  };
  __m256i lo = _mm256_setzero_si256(), hi = _mm256_setzero_si256();
  int t = 0;
  for (; t + 2 <= taps; t += 2, w += 32) {
    const __m256i xa = load(t), xb = load(t + 1);
    lo = _mm256_add_epi32(lo, _mm256_madd_epi16(_mm256_unpacklo_epi16(xa, xb), _mm256_load_si256(reinterpret_cast<const __m256i*>(w))));
    hi = _mm256_add_epi32(hi, _mm256_madd_epi16(_mm256_unpackhi_epi16(xa, xb), _mm256_load_si256(reinterpret_cast<const __m256i*>(w + 16))));
  }
  if (t < taps) {  // odd tap count: the pair's second weight is zero
    const __m256i xa = load(t), z = _mm256_setzero_si256();
    lo = _mm256_add_epi32(lo, _mm256_madd_epi16(_mm256_unpacklo_epi16(xa, z), _mm256_load_si256(reinterpret_cast<const __m256i*>(w))));
    hi = _mm256_add_epi32(hi, _mm256_madd_epi16(_mm256_unpackhi_epi16(xa, z), _mm256_load_si256(reinterpret_cast<const __m256i*>(w + 16))));
  }
  out0 = _mm256_permute2x128_si256(lo, hi, 0x20);  // channels 0-3 | 4-7
  out1 = _mm256_permute2x128_si256(lo, hi, 0x31);  // channels 8-11 | 12-15
}

}  // namespace

size_t dw_packed_size(int C, int taps) {
  return round_up(static_cast<size_t>(C), kCB) * static_cast<size_t>(pairs_of(taps)) * 2 * sizeof(int16_t);
}

void dw_pack(const int8_t* W, int C, int taps, void* packed) {
  int16_t* out = static_cast<int16_t*>(packed);
  const int blocks = (C + kCB - 1) / kCB, pairs = pairs_of(taps);
  // Lane order of vpunpcklwd / vpunpckhwd on 16 channels: channel of slot i (0..7) per vector.
  static const int kLo[8] = {0, 1, 2, 3, 8, 9, 10, 11}, kHi[8] = {4, 5, 6, 7, 12, 13, 14, 15};
  for (int b = 0; b < blocks; ++b)
    for (int j = 0; j < pairs; ++j) {
      int16_t* dst = out + (static_cast<size_t>(b) * pairs + j) * 32;
      for (int v = 0; v < 2; ++v)
        for (int i = 0; i < 8; ++i)
          for (int s = 0; s < 2; ++s) {
            const int c = b * kCB + (v ? kHi[i] : kLo[i]), t = 2 * j + s;
            dst[v * 16 + 2 * i + s] = c < C && t < taps ? W[static_cast<size_t>(c) * taps + t] : 0;
          }
    }
}

void dw_q8(int P, int C, int taps, const uint8_t* const* in, uint8_t a_zero, const void* packed,
           const Requant* rq, void* out, size_t ldo) {
  const int16_t* Wp = static_cast<const int16_t*>(packed);
  const int full = C / kCB, pairs = pairs_of(taps);
  const size_t wstride = static_cast<size_t>(pairs) * 32;
  const __m256i az = _mm256_set1_epi16(a_zero);
  // A partial last block reads its channels from a stack copy (zero point past C).
  const bool partial = C % kCB != 0;
  Scratch tail(partial ? static_cast<size_t>(taps) * (kCB + sizeof(const uint8_t*)) : 1);
  uint8_t* tbuf = tail.as<uint8_t>();
  const uint8_t** tptr = reinterpret_cast<const uint8_t**>(tbuf + static_cast<size_t>(taps) * kCB);
  for (int t = 0; partial && t < taps; ++t) tptr[t] = tbuf + t * kCB;
  const bool u8_out = u8_panel_ok(*rq);
  for (int p = 0; p < P; ++p) {
    const uint8_t* const* src = in + static_cast<size_t>(p) * taps;
    const size_t row = static_cast<size_t>(p) * ldo;
    __m256i acc0, acc1;
    for (int b = 0; b < full; ++b) {
      const int c0 = b * kCB;
      dw_block(src, static_cast<size_t>(c0), taps, Wp + b * wstride, az, acc0, acc1);
      if (u8_out) {
        const __m256 f[1][2] = {{_mm256_cvtepi32_ps(acc0), _mm256_cvtepi32_ps(acc1)}};
        epilogue16_u8_rows<1>(*rq, c0, f, out, 0, row + c0);
        continue;
      }
      epilogue8_int(*rq, c0, 8, acc0, out, row + c0);
      epilogue8_int(*rq, c0 + 8, 8, acc1, out, row + c0 + 8);
    }
    if (partial) {
      const int c0 = full * kCB, n = C - c0;
      for (int t = 0; t < taps; ++t) {
        std::memcpy(tbuf + t * kCB, src[t] + c0, static_cast<size_t>(n));
        std::memset(tbuf + t * kCB + n, a_zero, static_cast<size_t>(kCB - n));
      }
      dw_block(tptr, 0, taps, Wp + full * wstride, az, acc0, acc1);
      epilogue8_int(*rq, c0, n < 8 ? n : 8, acc0, out, row + c0);
      if (n > 8) epilogue8_int(*rq, c0 + 8, n - 8, acc1, out, row + c0 + 8);
    }
  }
}

}  // namespace avx2
}  // namespace kernels
}  // namespace ternion
