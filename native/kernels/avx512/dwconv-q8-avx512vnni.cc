// Depthwise int8 convolution, AVX-512 VNNI, bit-exact with the scalar reference (kernels.h).
//
// Per pixel and block of 64 channels, four taps at a time: the four taps' 64 channel bytes are
// interleaved per channel (a 4x4 byte transpose by vpunpck{l,h}bw then vpunpck{l,h}wd, within
// 128-bit lanes), so each int32 lane holds one channel's four u8 activations, and vpdpbusd
// multiplies them by that channel's four int8 weights and adds them in one instruction. Any int8
// weight is exact (no 7-bit form needed, unlike vpmaddubsw on AVX2). The zero point comes out
// through per-channel weight sums: sum (a - a_zero) w = sum a w - a_zero * sum w.
//
// The transpose leaves vector i, 128-bit lane L, int32 slot j holding channel 16 L + 4 i + j
// ("lane order"). Byte outputs stay in lane order: the epilogue reads scale and bias permuted
// the same way (once per call), and vpackssdw + vpackuswb of the four vectors then give each
// 128-bit lane's 16 channels in channel order, one 64-byte store per block and pixel with no
// shuffle back. fp32 and int32 outputs are put back in channel order by eight vshufi32x4.
// A last, partial block reads its channels with masked loads (bytes past C are neither read
// nor written); missing taps of the last quad are zero vectors against zero weights. With byte
// outputs a last block of at most 32 channels (MobileNetV2's 32, 96 and 144) runs two or four
// pixels per vector (TailGroup) instead of leaving half or more of the lanes idle.
//
// Packed layout: a 64-byte header {magic, C, taps}, then for each block of 64 channels and each
// quad j of taps, 256 bytes: byte 64 i + 16 L + 4 j' + s = w[64 b + 16 L + 4 i + j'][4 j + s]
// (zero past C or taps); then wsum[round_up(C, 64)] int32 in lane order: entry 64 b + 16 i +
// 4 L + j is the weight sum of channel 64 b + 16 L + 4 i + j.
#include <type_traits>
#include <vector>

#include "common-avx512vnni.h"

namespace ternion {
namespace kernels {
namespace avx512vnni {

namespace {

constexpr int kCB = 64;  // channels per block
constexpr size_t kHeader = 64;
constexpr uint32_t kMagicDw = 0x57445654;  // "TVDW"

int quads_of(int taps) { return (taps + 3) / 4; }
int blocks_of(int C) { return (C + kCB - 1) / kCB; }
size_t weight_bytes(int C, int taps) { return static_cast<size_t>(blocks_of(C)) * quads_of(taps) * 256; }

// Entry (lane-order index) of channel c within its block of 64, and back.
inline int lane_order(int c) { return (c / kCB) * kCB + 16 * ((c % 16) / 4) + 4 * ((c % kCB) / 16) + c % 4; }

// Four taps' 64 bytes (v0..v3) interleaved per channel by the 4x4 byte transpose and multiplied
// into acc[0..3] (lane order): weight(i) gives vector i's packed weights.
template <typename Weight>
inline __attribute__((always_inline)) void quad_dot(__m512i v0, __m512i v1, __m512i v2, __m512i v3, Weight&& weight, __m512i (&acc)[4]) {
  const __m512i l01 = _mm512_unpacklo_epi8(v0, v1), h01 = _mm512_unpackhi_epi8(v0, v1);
  const __m512i l23 = _mm512_unpacklo_epi8(v2, v3), h23 = _mm512_unpackhi_epi8(v2, v3);
  acc[0] = dpbusd(acc[0], _mm512_unpacklo_epi16(l01, l23), weight(0));
  acc[1] = dpbusd(acc[1], _mm512_unpackhi_epi16(l01, l23), weight(1));
  acc[2] = dpbusd(acc[2], _mm512_unpacklo_epi16(h01, h23), weight(2));
  acc[3] = dpbusd(acc[3], _mm512_unpackhi_epi16(h01, h23), weight(3));
}

// One pixel's sums of the block's channels [c0, c0 + 64), lanes >= valid bytes zero (valid may
// exceed 64: a full block), as four int32 vectors in lane order, started at `init` (the zero
// point's correction of the block, or nullptr for none).
template <bool Full>
inline void dw_block(const uint8_t* const* px, size_t c0, int taps, __mmask64 valid, const int8_t* w, const int32_t* init, __m512i (&acc)[4]) {
  for (int k = 0; k < 4; ++k) acc[k] = init ? _mm512_loadu_si512(init + 16 * k) : _mm512_setzero_si512();
  auto load = [&](int t) __attribute__((always_inline)) {
    if (t >= taps) return _mm512_setzero_si512();
    return Full ? _mm512_loadu_si512(px[t] + c0) : _mm512_maskz_loadu_epi8(valid, px[t] + c0);
  };
  for (int t = 0; t < taps; t += 4, w += 256)
    quad_dot(load(t), load(t + 1), load(t + 2), load(t + 3), [&](int i) __attribute__((always_inline)) { return _mm512_load_si512(w + 64 * i); }, acc);
}

// A last block of at most 32 channels (byte outputs) runs G pixels per 512-bit vector, where a
// block of its own would leave half or more of the lanes idle: G = 4 for up to 16 channels
// (128-bit lane q holds pixel q's channels), G = 2 for up to 32 (lanes 2q and 2q + 1 hold pixel
// q's). After the byte transpose, vector i lane L slot j then holds pixel L / (4 / G), channel
// 16 (L % (4 / G)) + 4 i + j: the weights, zero-point terms and epilogue parameters of the
// block's lanes [0, 4 / G) are repeated G times, and the packs give each pixel's channels in
// order, ready to store.
template <int G>
struct TailGroup {
  static_assert(G == 2 || G == 4, "two or four pixels per vector");
  static constexpr int kLaneBytes = 64 / G;  // one pixel's bytes in a vector

  // The 64 bytes of tap t of the G pixels px[0..G) (channels from c0), masked to `valid`.
  static inline __m512i gather(const uint8_t* const* const* px, int t, size_t c0, uint32_t valid) {
    if (G == 4) {
      const __mmask16 k = static_cast<__mmask16>(valid);
      __m512i v = _mm512_castsi128_si512(_mm_maskz_loadu_epi8(k, px[0][t] + c0));
      v = _mm512_inserti32x4(v, _mm_maskz_loadu_epi8(k, px[1][t] + c0), 1);
      v = _mm512_inserti32x4(v, _mm_maskz_loadu_epi8(k, px[2][t] + c0), 2);
      return _mm512_inserti32x4(v, _mm_maskz_loadu_epi8(k, px[3][t] + c0), 3);
    }
    const __mmask32 k = static_cast<__mmask32>(valid);
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_maskz_loadu_epi8(k, px[0][t] + c0)), _mm256_maskz_loadu_epi8(k, px[1][t] + c0), 1);
  }

  // The first 64 / G bytes at p repeated G times (weights, zero-point terms).
  static inline __m512i repeat(const void* p) {
    if (G == 4) return _mm512_broadcast_i32x4(_mm_loadu_si128(static_cast<const __m128i*>(p)));
    return _mm512_broadcast_i64x4(_mm256_loadu_si256(static_cast<const __m256i*>(p)));
  }

  // Sums of the G pixels, started at the zero-point terms `init` (lane order, or nullptr).
  static inline void sums(const uint8_t* const* const* px, size_t c0, int taps, uint32_t valid, const int8_t* w, const int32_t* init, __m512i (&acc)[4]) {
    for (int k = 0; k < 4; ++k) acc[k] = init ? repeat(init + 16 * k) : _mm512_setzero_si512();
    for (int t = 0; t < taps; t += 4, w += 256) {
      auto load = [&](int u) __attribute__((always_inline)) { return u < taps ? gather(px, u, c0, valid) : _mm512_setzero_si512(); };
      quad_dot(load(t), load(t + 1), load(t + 2), load(t + 3), [&](int i) __attribute__((always_inline)) { return repeat(w + 64 * i); }, acc);
    }
  }

  // Epilogue parameter of vector i, lane L, slot j: that of channel 16 (L % (4 / G)) + 4 i + j.
  static int channel_of(int i, int L, int j) { return 16 * (L % (4 / G)) + 4 * i + j; }

  // Pixels [0, n) of the group (n <= G): quantized, packed and stored, kLaneBytes apart in r.
  static inline void store(__m512i r, int n, uint32_t valid, uint8_t* const* dst) {
    if (G == 4) {
      const __mmask16 k = static_cast<__mmask16>(valid);
      _mm_mask_storeu_epi8(dst[0], k, _mm512_castsi512_si128(r));
      if (n > 1) _mm_mask_storeu_epi8(dst[1], k, _mm512_extracti32x4_epi32(r, 1));
      if (n > 2) _mm_mask_storeu_epi8(dst[2], k, _mm512_extracti32x4_epi32(r, 2));
      if (n > 3) _mm_mask_storeu_epi8(dst[3], k, _mm512_extracti32x4_epi32(r, 3));
      return;
    }
    const __mmask32 k = static_cast<__mmask32>(valid);
    _mm256_mask_storeu_epi8(dst[0], k, _mm512_castsi512_si256(r));
    if (n > 1) _mm256_mask_storeu_epi8(dst[1], k, _mm512_extracti64x4_epi64(r, 1));
  }
};

// Lane order to channel order: acc[i] lane L is channels 16 L + 4 i .. + 3; out[k] gathers lane
// k of acc[0..3].
inline void to_channel_order(const __m512i (&acc)[4], __m512i (&out)[4]) {
  const __m512i t0 = _mm512_shuffle_i32x4(acc[0], acc[1], 0x44), t1 = _mm512_shuffle_i32x4(acc[0], acc[1], 0xEE);
  const __m512i t2 = _mm512_shuffle_i32x4(acc[2], acc[3], 0x44), t3 = _mm512_shuffle_i32x4(acc[2], acc[3], 0xEE);
  out[0] = _mm512_shuffle_i32x4(t0, t2, 0x88);
  out[1] = _mm512_shuffle_i32x4(t0, t2, 0xDD);
  out[2] = _mm512_shuffle_i32x4(t1, t3, 0x88);
  out[3] = _mm512_shuffle_i32x4(t1, t3, 0xDD);
}

}  // namespace

size_t dw_packed_size(int C, int taps) {
  return kHeader + weight_bytes(C, taps) + static_cast<size_t>(blocks_of(C)) * kCB * sizeof(int32_t);
}

void dw_pack(const int8_t* W, int C, int taps, void* packed) {
  uint8_t* base = static_cast<uint8_t*>(packed);
  std::memset(base, 0, dw_packed_size(C, taps));
  const uint32_t magic = kMagicDw;
  std::memcpy(base, &magic, 4);
  std::memcpy(base + 4, &C, 4);
  std::memcpy(base + 8, &taps, 4);
  int8_t* w = reinterpret_cast<int8_t*>(base + kHeader);
  int32_t* wsum = reinterpret_cast<int32_t*>(base + kHeader + weight_bytes(C, taps));
  const int quads = quads_of(taps);
  for (int c = 0; c < C; ++c) {
    const int b = c / kCB, L = (c % kCB) / 16, i = (c % 16) / 4, j = c % 4;
    int32_t s = 0;
    for (int t = 0; t < taps; ++t) {
      const int8_t v = W[static_cast<size_t>(c) * taps + t];
      w[(static_cast<size_t>(b) * quads + t / 4) * 256 + 64 * i + 16 * L + 4 * j + t % 4] = v;
      s += v;
    }
    wsum[lane_order(c)] = s;
  }
}

void dw_q8(int P, int C, int taps, const uint8_t* const* in, uint8_t a_zero, const void* packed,
           const Requant* rq_in, void* out, size_t ldo) {
  // A copy the stores cannot alias (through the caller's pointer every uint8 store could change it).
  const Epilogue rq(*rq_in);
  const uint8_t* base = static_cast<const uint8_t*>(packed);
  const int8_t* W = reinterpret_cast<const int8_t*>(base + kHeader);
  const int32_t* wsum = reinterpret_cast<const int32_t*>(base + kHeader + weight_bytes(C, taps));
  const size_t wstride = static_cast<size_t>(quads_of(taps)) * 256;
  const int padded = blocks_of(C) * kCB;
  // The zero point's correction -a_zero * wsum in lane order, once per call: each pixel's sums
  // start from it.
  thread_local std::vector<int32_t> corr_buf;
  const int32_t* corr = nullptr;
  if (a_zero) {
    corr_buf.resize(static_cast<size_t>(padded));
    for (int i = 0; i < padded; ++i) corr_buf[i] = -static_cast<int32_t>(a_zero) * wsum[i];
    corr = corr_buf.data();
  }
  // Byte outputs: scale and bias in lane order (zero past C), built once per call. A narrow
  // tail block (TailGroup) has its G-pixel lane order instead.
  thread_local std::vector<float> lane_params;
  const bool bytes = rq.byte_out();
  const float *ls = nullptr, *lb = nullptr;
  const int full = C / kCB * kCB, rest = C - full;
  const bool narrow_tail = bytes && rest > 0 && rest <= 32;
  const int group = !narrow_tail ? 1 : rest <= 16 ? 4 : 2;
  if (bytes) {
    lane_params.assign(2 * static_cast<size_t>(padded), 0.0f);
    float* s = lane_params.data();
    float* b = s + padded;
    auto put = [&](int at, int c) {
      s[at] = rq_in->scale ? rq_in->scale[c] : 1.0f;
      b[at] = rq_in->bias ? rq_in->bias[c] : 0.0f;
    };
    for (int c = 0; c < (narrow_tail ? full : C); ++c) put(lane_order(c), c);
    if (narrow_tail)
      for (int i = 0; i < 4; ++i)
        for (int L = 0; L < 4; ++L)
          for (int j = 0; j < 4; ++j) {
            const int c = group == 4 ? TailGroup<4>::channel_of(i, L, j) : TailGroup<2>::channel_of(i, L, j);
            if (c < rest) put(full + 16 * i + 4 * L + j, full + c);
          }
    ls = s, lb = b;
  }
  uint8_t* const out8 = static_cast<uint8_t*>(out);

  // Pixel p's block b of 64 channels (or fewer, the last one when it is not a narrow tail).
  auto block = [&](int p, int b) __attribute__((always_inline)) {
    const uint8_t* const* px = in + static_cast<size_t>(p) * taps;
    const int c0 = b * kCB, n = C - c0 < kCB ? C - c0 : kCB;
    const __mmask64 valid = n == kCB ? ~static_cast<__mmask64>(0) : (static_cast<__mmask64>(1) << n) - 1;
    __m512i acc[4];
    const int32_t* init = corr ? corr + c0 : nullptr;
    if (n == kCB)
      dw_block<true>(px, static_cast<size_t>(c0), taps, valid, W + b * wstride, init, acc);
    else
      dw_block<false>(px, static_cast<size_t>(c0), taps, valid, W + b * wstride, init, acc);
    __m512 f[4];
    if (bytes) {
#pragma GCC unroll 4
      for (int k = 0; k < 4; ++k) f[k] = _mm512_cvtepi32_ps(acc[k]);
      __m512i q[4];
      rq.quantize_lanes<4>(f, ls + c0, lb + c0, q);
      const __m512i w01 = _mm512_packs_epi32(q[0], q[1]), w23 = _mm512_packs_epi32(q[2], q[3]);
      const __m512i v = rq.unsigned_out() ? _mm512_packus_epi16(w01, w23) : _mm512_packs_epi16(w01, w23);
      _mm512_mask_storeu_epi8(out8 + static_cast<size_t>(p) * ldo + c0, valid, v);
      return;
    }
    __m512i ch[4];
    to_channel_order(acc, ch);
#pragma GCC unroll 4
    for (int k = 0; k < 4; ++k) f[k] = _mm512_cvtepi32_ps(ch[k]);
    rq.store_run<4>(f, ch, c0, n, out, ldo, p);
  };

  // The narrow tail of pixels [p, p + np), np <= G; missing pixels of a last group read pixel
  // p's taps and are not stored.
  auto tail = [&](auto g, int p, int np) __attribute__((always_inline)) {
    constexpr int G = decltype(g)::value;
    const uint32_t valid = rest == 32 ? ~0u : (1u << rest) - 1u;
    const uint8_t* const* px[G];
    uint8_t* dst[G];
    for (int q = 0; q < G; ++q) {
      const int pq = q < np ? p + q : p;
      px[q] = in + static_cast<size_t>(pq) * taps;
      dst[q] = out8 + static_cast<size_t>(pq) * ldo + full;
    }
    __m512i acc[4];
    TailGroup<G>::sums(px, static_cast<size_t>(full), taps, valid, W + static_cast<size_t>(full / kCB) * wstride, corr ? corr + full : nullptr, acc);
    __m512 f[4];
#pragma GCC unroll 4
    for (int k = 0; k < 4; ++k) f[k] = _mm512_cvtepi32_ps(acc[k]);
    __m512i q[4];
    rq.quantize_lanes<4>(f, ls + full, lb + full, q);
    const __m512i w01 = _mm512_packs_epi32(q[0], q[1]), w23 = _mm512_packs_epi32(q[2], q[3]);
    TailGroup<G>::store(rq.unsigned_out() ? _mm512_packus_epi16(w01, w23) : _mm512_packs_epi16(w01, w23), np, valid, dst);
  };

  const int blocks = narrow_tail ? full / kCB : blocks_of(C);
  for (int p = 0; p < P; p += group) {
    const int np = P - p < group ? P - p : group;
    for (int q = p; q < p + np; ++q)
      for (int b = 0; b < blocks; ++b) block(q, b);
    if (group == 4) tail(std::integral_constant<int, 4>{}, p, np);
    else if (group == 2) tail(std::integral_constant<int, 2>{}, p, np);
  }
}

}  // namespace avx512vnni
}  // namespace kernels
}  // namespace ternion
