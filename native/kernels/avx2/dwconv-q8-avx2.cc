// Depthwise int8 convolution, AVX2, bit-exact with the scalar reference (kernels.h), in two
// exact forms chosen at pack time from the weights' range (as the int8 GEMM does):
//
// "Narrow" (every weight in [-64, 63], quantize()'s reduceRange): the raw u8 activations of
// four taps are interleaved per channel (a 4x4 byte transpose of four 32-channel loads by
// vpunpck{l,h}bw / vpunpck{l,h}wd) and multiplied by vpmaddubsw: one int16 lane adds two
// products of at most 255 * 64, so nothing saturates; vpmaddwd with ones widens to int32. The
// zero point comes out through per-channel weight sums: sum (a - a_zero) w = sum a w -
// a_zero * sum w. About half the instructions of the wide form per multiply-add.
//
// "Wide" (any int8 weight): x = a - a_zero in [-255, 255] and w in [-128, 127] are 16-bit
// values; vpmaddwd adds the products of two taps into an int32 lane (at most 2 * 255 * 128).
//
// Packed layout: a 64-byte header (form), then
//  wide:   channels in blocks of 16 (zero weights past C), taps in pairs (a zero weight pads an
//          odd count). Per (block, pair) 64 bytes: two vectors of (w[c][2j], w[c][2j+1]) int16
//          pairs, the first for channels {0-3, 8-11} of the block, the second for {4-7, 12-15}:
//          the order in which vpunpck{l,h}wd interleave two taps' 16 channels within 128-bit
//          lanes.
//  narrow: channels in blocks of 32, taps in quads (zero weights pad both). Per (block, quad)
//          128 bytes: four vectors of 4-tap byte groups w[c][4j .. 4j+3] for channels
//          {0-3 | 16-19}, {4-7 | 20-23}, {8-11 | 24-27}, {12-15 | 28-31} (128-bit lanes), the
//          transpose's order; after all blocks, wsum[round_up(C, 32)] int32.
// A pixel's channels of one block are read with one load per tap; the last, partial block goes
// through a stack copy so nothing past C is read.
//
// Byte outputs keep each block's sums in the order the unpacks leave them ("lane order": the
// vectors' 128-bit lanes hold groups of 4 channels, see dw_block and dw_block_narrow): scale
// and bias are permuted the same way once per call, and the packs of the quantized vectors then
// give the channels in order with no shuffle back. fp32 and int32 outputs are put back in
// channel order first.
#include "kernels/avx2/common-avx2.h"

namespace ternion {
namespace kernels {
namespace avx2 {

namespace {

constexpr int kCB = 16;        // channels per block, wide
constexpr int kNCB = 32;       // channels per block, narrow
constexpr size_t kHeader = 64;
enum Form : int32_t { kWide = 1, kNarrow = 2 };

int pairs_of(int taps) { return (taps + 1) / 2; }
int quads_of(int taps) { return (taps + 3) / 4; }
size_t wide_bytes(int C, int taps) {
  return round_up(static_cast<size_t>(C), kCB) * static_cast<size_t>(pairs_of(taps)) * 2 * sizeof(int16_t);
}
size_t narrow_bytes(int C, int taps) {
  return round_up(static_cast<size_t>(C), kNCB) * static_cast<size_t>(quads_of(taps)) * 4;
}

// The block's 16 channels (c0 .. c0 + 15) of one pixel: acc = sum over taps, in lane order:
// lo holds channels 0-3 | 8-11, hi 4-7 | 12-15 (vpunpck{l,h}wd's order within 128-bit lanes).
// px[t] + c0 points at channel c0 of tap t.
__attribute__((always_inline)) inline void dw_block(const uint8_t* const* px, size_t c0, int taps, const int16_t* w,
                                                     __m256i az, __m256i& lo, __m256i& hi) {
  auto load = [&](int t) __attribute__((always_inline)) {
    return _mm256_sub_epi16(_mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(px[t] + c0))), az);
  };
  lo = _mm256_setzero_si256(), hi = _mm256_setzero_si256();
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
}

// Entry of channel c in the wide form's lane order: vector v (lo, hi) is 8 entries from 16 b + 8 v,
// and its 128-bit lane L, slot j holds channel 16 b + 8 L + 4 v + j.
inline int wide_lane_order(int c) { return (c / kCB) * kCB + 8 * ((c % 8) / 4) + 4 * ((c % kCB) / 8) + c % 4; }

// Narrow form: the block's 32 channels (c0 .. c0 + 31) of one pixel, started at `init` (the
// zero point's correction, in the same order) plus the sum over taps of a * w, as four int32
// vectors in lane order: vector i, 128-bit lane L, slot j holds channel 16 L + 4 i + j.
// HALF: only channels c0 .. c0 + 15 exist (a last block of 16: MobileNets' 144 channels); they
// are read with 16-byte loads, and the upper lanes, zero, meet zero weights.
template <bool HALF>
__attribute__((always_inline)) inline void dw_block_narrow(const uint8_t* const* px, size_t c0, int taps,
                                                            const int8_t* w, const int32_t* init, __m256i (&acc)[4]) {
  auto load = [&](int t) __attribute__((always_inline)) {
    if (t >= taps) return _mm256_setzero_si256();
    if (HALF) return _mm256_zextsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(px[t] + c0)));
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(px[t] + c0));
  };
  const __m256i ones = _mm256_set1_epi16(1);
  for (int i = 0; i < 4; ++i) acc[i] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(init + 8 * i));
  for (int t = 0; t < taps; t += 4, w += 128) {
    const __m256i v0 = load(t), v1 = load(t + 1), v2 = load(t + 2), v3 = load(t + 3);
    const __m256i l01 = _mm256_unpacklo_epi8(v0, v1), h01 = _mm256_unpackhi_epi8(v0, v1);
    const __m256i l23 = _mm256_unpacklo_epi8(v2, v3), h23 = _mm256_unpackhi_epi8(v2, v3);
    const __m256i q[4] = {_mm256_unpacklo_epi16(l01, l23), _mm256_unpackhi_epi16(l01, l23),
                          _mm256_unpacklo_epi16(h01, h23), _mm256_unpackhi_epi16(h01, h23)};
    #pragma GCC unroll 4
    for (int i = 0; i < 4; ++i) {
      const __m256i wv = _mm256_load_si256(reinterpret_cast<const __m256i*>(w + 32 * i));
      acc[i] = _mm256_add_epi32(acc[i], _mm256_madd_epi16(_mm256_maddubs_epi16(q[i], wv), ones));
    }
  }
}

// Entry of channel c in the narrow form's lane order (vector i is 8 entries from 32 b + 8 i).
inline int narrow_lane_order(int c) { return (c / kNCB) * kNCB + 8 * ((c % 16) / 4) + 4 * ((c % kNCB) / 16) + c % 4; }

// One pixel's int32 sums in channel order (vectors of channels [n, n + 8), [n + 8, n + 16)) through
// the epilogue: fp32 and int32 outputs, and byte outputs of blocks not kept in lane order.
inline __attribute__((always_inline)) void store16(const Epilogue& rq, int n, int nvalid, __m256i a0, __m256i a1, void* out,
                                                   size_t ldo, int p) {
  const __m256i v[1][2] = {{a0, a1}};
  rq.store_tile<1>(v, n, nvalid, out, ldo, p);
}

// Per-call tables in a form's lane order (zero past C): with `params` (byte outputs), scale and
// bias of channels [0, C); with `wsum` (narrow form), the zero point's correction -a_zero * wsum.
class LaneTables {
 public:
  // order(c): the entry of channel c; padded: entries (C rounded up to the form's block).
  template <typename Order>
  LaneTables(const Requant& rq, int C, int padded, bool params, const int32_t* wsum, uint8_t a_zero, Order&& order)
      : buf_(static_cast<size_t>(padded) * ((params ? 2 : 0) + (wsum ? 1 : 0)) * sizeof(float)) {
    scale = buf_.as<float>();
    bias = scale + (params ? padded : 0);
    corr = reinterpret_cast<int32_t*>(bias + (params ? padded : 0));
    if (params) {
      for (int i = 0; i < 2 * padded; ++i) scale[i] = 0.0f;
      for (int c = 0; c < C; ++c) {
        scale[order(c)] = rq.scale ? rq.scale[c] : 1.0f;
        bias[order(c)] = rq.bias ? rq.bias[c] : 0.0f;
      }
    }
    if (wsum) {
      for (int i = 0; i < padded; ++i) corr[i] = 0;
      for (int c = 0; c < C; ++c) corr[order(c)] = -static_cast<int32_t>(a_zero) * wsum[c];
    }
  }
  float* scale;
  float* bias;
  int32_t* corr;

 private:
  Scratch buf_;
};

// A last channel block narrower than the kernel's `width`: each tap's channels [c0, C) are
// copied to a row of `width` bytes padded with the zero point, so no load reads past C.
class TailCopy {
 public:
  TailCopy(int taps, int width, bool needed)
      : taps_(taps), width_(width), buf_(needed ? static_cast<size_t>(taps) * (width + sizeof(const uint8_t*)) : 1) {
    rows_ = buf_.as<uint8_t>();
    ptrs_ = reinterpret_cast<const uint8_t**>(rows_ + static_cast<size_t>(taps) * width);
    for (int t = 0; needed && t < taps; ++t) ptrs_[t] = rows_ + static_cast<size_t>(t) * width;
  }
  // Tap pointers to the copies of channels [c0, c0 + n) of one pixel's taps `src`.
  const uint8_t* const* fill(const uint8_t* const* src, int c0, int n, uint8_t a_zero) {
    for (int t = 0; t < taps_; ++t) {
      std::memcpy(rows_ + static_cast<size_t>(t) * width_, src[t] + c0, static_cast<size_t>(n));
      std::memset(rows_ + static_cast<size_t>(t) * width_ + n, a_zero, static_cast<size_t>(width_ - n));
    }
    return ptrs_;
  }

 private:
  int taps_, width_;
  Scratch buf_;
  uint8_t* rows_;
  const uint8_t** ptrs_;
};

void dw_narrow(int P, int C, int taps, const uint8_t* const* in, uint8_t a_zero, const int8_t* Wp,
               const Requant& rq_in, void* out, size_t ldo) {
  // A copy the stores cannot alias (through the caller's pointer every uint8 store could change it).
  const Epilogue rq(rq_in);
  const int full = C / kNCB, quads = quads_of(taps);
  const size_t wstride = static_cast<size_t>(quads) * 128;
  const int32_t* wsum = reinterpret_cast<const int32_t*>(Wp + narrow_bytes(C, taps));
  const int Cp = static_cast<int>(round_up(static_cast<size_t>(C), kNCB));
  const bool bytes = rq.byte_out();
  const LaneTables lanes(rq_in, C, Cp, bytes, wsum, a_zero, narrow_lane_order);
  const bool half = C % kNCB == 16, partial = C % kNCB != 0 && !half;
  TailCopy tail(taps, kNCB, partial);
  // Sums of channels [c0, c0 + n) in lane order to row p.
  auto finish = [&](int c0, int n, const __m256i (&acc)[4], int p) __attribute__((always_inline)) {
    if (bytes && n > 16) {
      const __m256 f[4] = {_mm256_cvtepi32_ps(acc[0]), _mm256_cvtepi32_ps(acc[1]), _mm256_cvtepi32_ps(acc[2]), _mm256_cvtepi32_ps(acc[3])};
      __m256i q[4];
      rq.quantize_lanes<4>(f, lanes.scale + c0, lanes.bias + c0, q);
      // Lane L of the packs is channels 16 L .. 16 L + 15 in order.
      Epilogue::store_bytes(static_cast<uint8_t*>(out) + static_cast<size_t>(p) * ldo + c0, rq.pack_lanes(q), n);
      return;
    }
    // Channel order: lane 0 of each vector is channels 0-15, lane 1 channels 16-31.
    store16(rq, c0, n, _mm256_permute2x128_si256(acc[0], acc[1], 0x20), _mm256_permute2x128_si256(acc[2], acc[3], 0x20), out, ldo, p);
    if (n > 16)
      store16(rq, c0 + 16, n - 16, _mm256_permute2x128_si256(acc[0], acc[1], 0x31), _mm256_permute2x128_si256(acc[2], acc[3], 0x31), out, ldo, p);
  };
  for (int p = 0; p < P; ++p) {
    const uint8_t* const* src = in + static_cast<size_t>(p) * taps;
    __m256i acc[4];
    for (int b = 0; b < full; ++b) {
      dw_block_narrow<false>(src, static_cast<size_t>(b) * kNCB, taps, Wp + b * wstride, lanes.corr + b * kNCB, acc);
      finish(b * kNCB, kNCB, acc, p);
    }
    if (half) {
      dw_block_narrow<true>(src, static_cast<size_t>(full) * kNCB, taps, Wp + full * wstride, lanes.corr + full * kNCB, acc);
      finish(full * kNCB, 16, acc, p);
    }
    if (partial) {
      const int c0 = full * kNCB, n = C - c0;
      dw_block_narrow<false>(tail.fill(src, c0, n, a_zero), 0, taps, Wp + full * wstride, lanes.corr + c0, acc);
      finish(c0, n, acc, p);
    }
  }
}

void pack_narrow(const int8_t* W, int C, int taps, int8_t* out) {
  const int blocks = (C + kNCB - 1) / kNCB, quads = quads_of(taps);
  row_sums(W, C, taps, reinterpret_cast<int32_t*>(out + narrow_bytes(C, taps)));
  // Vector v, lane l, group i holds channel 16 l + 4 v + i.
  for (int b = 0; b < blocks; ++b)
    for (int j = 0; j < quads; ++j) {
      int8_t* dst = out + (static_cast<size_t>(b) * quads + j) * 128;
      for (int v = 0; v < 4; ++v)
        for (int l = 0; l < 2; ++l)
          for (int i = 0; i < 4; ++i)
            for (int s = 0; s < 4; ++s) {
              const int c = b * kNCB + 16 * l + 4 * v + i, t = 4 * j + s;
              dst[32 * v + 16 * l + 4 * i + s] = c < C && t < taps ? W[static_cast<size_t>(c) * taps + t] : 0;
            }
    }
}

void pack_wide(const int8_t* W, int C, int taps, int16_t* out) {
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

}  // namespace

size_t dw_packed_size(int C, int taps) {
  const size_t wide = wide_bytes(C, taps), narrow = narrow_bytes(C, taps) + round_up(static_cast<size_t>(C), kNCB) * 4;
  return kHeader + (wide > narrow ? wide : narrow);
}

void dw_pack(const int8_t* W, int C, int taps, void* packed) {
  unsigned char* base = static_cast<unsigned char*>(packed);
  std::memset(base, 0, dw_packed_size(C, taps));
  const bool narrow = fits_narrow(W, static_cast<size_t>(C) * taps);
  const int32_t form = narrow ? kNarrow : kWide;
  std::memcpy(base, &form, sizeof form);
  if (narrow) pack_narrow(W, C, taps, reinterpret_cast<int8_t*>(base + kHeader));
  else pack_wide(W, C, taps, reinterpret_cast<int16_t*>(base + kHeader));
}

void dw_q8(int P, int C, int taps, const uint8_t* const* in, uint8_t a_zero, const void* packed,
           const Requant* rq_in, void* out, size_t ldo) {
  const unsigned char* base = static_cast<const unsigned char*>(packed);
  int32_t form;
  std::memcpy(&form, base, sizeof form);
  if (form == kNarrow) {
    dw_narrow(P, C, taps, in, a_zero, reinterpret_cast<const int8_t*>(base + kHeader), *rq_in, out, ldo);
    return;
  }
  // A copy the stores cannot alias: through the caller's pointer, every uint8 store could
  // change *rq, so each epilogue would reload its fields.
  const Epilogue rq(*rq_in);
  const int16_t* Wp = reinterpret_cast<const int16_t*>(base + kHeader);
  const int full = C / kCB, pairs = pairs_of(taps);
  const size_t wstride = static_cast<size_t>(pairs) * 32;
  const __m256i az = _mm256_set1_epi16(a_zero);
  const bool bytes = rq.byte_out();
  const LaneTables lanes(*rq_in, C, static_cast<int>(round_up(static_cast<size_t>(C), kCB)), bytes, nullptr, a_zero, wide_lane_order);
  // A partial last block reads its channels from a stack copy (zero point past C).
  const bool partial = C % kCB != 0;
  TailCopy tail(taps, kCB, partial);
  // Sums of channels [c0, c0 + n) in lane order to row p.
  auto finish = [&](int c0, int n, __m256i lo, __m256i hi, int p) __attribute__((always_inline)) {
    if (bytes) {
      const __m256 f[2] = {_mm256_cvtepi32_ps(lo), _mm256_cvtepi32_ps(hi)};
      __m256i q[2];
      rq.quantize_lanes<2>(f, lanes.scale + c0, lanes.bias + c0, q);
      // int16 channels 0-7 | 8-15, then the bytes of both 128-bit lanes.
      const __m256i w = _mm256_packs_epi32(q[0], q[1]);
      const __m128i l = _mm256_castsi256_si128(w), h = _mm256_extracti128_si256(w, 1);
      const __m128i b = rq.unsigned_out() ? _mm_packus_epi16(l, h) : _mm_packs_epi16(l, h);
      Epilogue::store_bytes(static_cast<uint8_t*>(out) + static_cast<size_t>(p) * ldo + c0, _mm256_castsi128_si256(b), n);
      return;
    }
    store16(rq, c0, n, _mm256_permute2x128_si256(lo, hi, 0x20), _mm256_permute2x128_si256(lo, hi, 0x31), out, ldo, p);
  };
  for (int p = 0; p < P; ++p) {
    const uint8_t* const* src = in + static_cast<size_t>(p) * taps;
    __m256i lo, hi;
    for (int b = 0; b < full; ++b) {
      const int c0 = b * kCB;
      dw_block(src, static_cast<size_t>(c0), taps, Wp + b * wstride, az, lo, hi);
      finish(c0, kCB, lo, hi, p);
    }
    if (partial) {
      const int c0 = full * kCB, n = C - c0;
      dw_block(tail.fill(src, c0, n, a_zero), 0, taps, Wp + full * wstride, az, lo, hi);
      finish(c0, n, lo, hi, p);
    }
  }
}

}  // namespace avx2
}  // namespace kernels
}  // namespace ternion
