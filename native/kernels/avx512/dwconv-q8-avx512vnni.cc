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
// nor written); missing taps of the last quad are zero vectors against zero weights.
//
// Packed layout: a 64-byte header {magic, C, taps}, then for each block of 64 channels and each
// quad j of taps, 256 bytes: byte 64 i + 16 L + 4 j' + s = w[64 b + 16 L + 4 i + j'][4 j + s]
// (zero past C or taps); then wsum[round_up(C, 64)] int32 in lane order: entry 64 b + 16 i +
// 4 L + j is the weight sum of channel 64 b + 16 L + 4 i + j.
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
  for (int t = 0; t < taps; t += 4, w += 256) {
    const __m512i v0 = load(t), v1 = load(t + 1), v2 = load(t + 2), v3 = load(t + 3);
    const __m512i l01 = _mm512_unpacklo_epi8(v0, v1), h01 = _mm512_unpackhi_epi8(v0, v1);
    const __m512i l23 = _mm512_unpacklo_epi8(v2, v3), h23 = _mm512_unpackhi_epi8(v2, v3);
    acc[0] = dpbusd(acc[0], _mm512_unpacklo_epi16(l01, l23), _mm512_load_si512(w));
    acc[1] = dpbusd(acc[1], _mm512_unpackhi_epi16(l01, l23), _mm512_load_si512(w + 64));
    acc[2] = dpbusd(acc[2], _mm512_unpacklo_epi16(h01, h23), _mm512_load_si512(w + 128));
    acc[3] = dpbusd(acc[3], _mm512_unpackhi_epi16(h01, h23), _mm512_load_si512(w + 192));
  }
}

// The same for a last block of at most 32 channels, at 256 bits (a 512-bit block would leave at
// least half its lanes idle): acc[i] 128-bit lane L (0, 1) slot j is channel 16 L + 4 i + j,
// so vector i's weights (and its start) are the low 256 bits of the 512-bit block's vector i.
inline void dw_block_tail(const uint8_t* const* px, size_t c0, int taps, __mmask32 valid, const int8_t* w, const int32_t* init, __m256i (&acc)[4]) {
  for (int k = 0; k < 4; ++k) acc[k] = init ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(init + 16 * k)) : _mm256_setzero_si256();
  auto load = [&](int t) __attribute__((always_inline)) {
    if (t >= taps) return _mm256_setzero_si256();
    return _mm256_maskz_loadu_epi8(valid, px[t] + c0);
  };
  auto dot = [](__m256i a, __m256i u, const int8_t* wv) __attribute__((always_inline)) {
    return _mm256_dpbusd_epi32(a, u, _mm256_load_si256(reinterpret_cast<const __m256i*>(wv)));
  };
  for (int t = 0; t < taps; t += 4, w += 256) {
    const __m256i v0 = load(t), v1 = load(t + 1), v2 = load(t + 2), v3 = load(t + 3);
    const __m256i l01 = _mm256_unpacklo_epi8(v0, v1), h01 = _mm256_unpackhi_epi8(v0, v1);
    const __m256i l23 = _mm256_unpacklo_epi8(v2, v3), h23 = _mm256_unpackhi_epi8(v2, v3);
    acc[0] = dot(acc[0], _mm256_unpacklo_epi16(l01, l23), w);
    acc[1] = dot(acc[1], _mm256_unpackhi_epi16(l01, l23), w + 64);
    acc[2] = dot(acc[2], _mm256_unpacklo_epi16(h01, h23), w + 128);
    acc[3] = dot(acc[3], _mm256_unpackhi_epi16(h01, h23), w + 192);
  }
}

// Entry of a tail block's channel c (< 32) when its four 256-bit sums are joined in pairs
// ([acc0 | acc1], [acc2 | acc3]): vector k, 128-bit lane L', slot j holds channel
// 16 (L' % 2) + 4 (2 k + L' / 2) + j.
inline int tail_order(int c) {
  const int L = c / 16, i = (c % 16) / 4, j = c % 4;
  return 16 * (i / 2) + 4 * (2 * (i % 2) + L) + j;
}

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
  // Byte outputs: scale and bias in lane order (zero past C), built once per call.
  thread_local std::vector<float> lane_params;
  const bool bytes = rq.byte_out();
  const float *ls = nullptr, *lb = nullptr;
  // A last block of at most 32 channels runs at 256 bits (byte outputs), its parameters in
  // tail_order.
  const int full = C / kCB * kCB, rest = C - full;
  const bool narrow_tail = bytes && rest > 0 && rest <= 32;
  if (bytes) {
    lane_params.assign(2 * static_cast<size_t>(padded), 0.0f);
    float* s = lane_params.data();
    float* b = s + padded;
    for (int c = 0; c < C; ++c) {
      const int at = narrow_tail && c >= full ? full + tail_order(c - full) : lane_order(c);
      s[at] = rq_in->scale ? rq_in->scale[c] : 1.0f;
      b[at] = rq_in->bias ? rq_in->bias[c] : 0.0f;
    }
    ls = s, lb = b;
  }
  for (int p = 0; p < P; ++p) {
    const uint8_t* const* px = in + static_cast<size_t>(p) * taps;
    for (int b = 0; b < blocks_of(C); ++b) {
      const int c0 = b * kCB, n = C - c0 < kCB ? C - c0 : kCB;
      if (narrow_tail && c0 == full) {
        const __mmask32 valid = n == 32 ? ~static_cast<__mmask32>(0) : (static_cast<__mmask32>(1) << n) - 1;
        __m256i acc[4];
        dw_block_tail(px, static_cast<size_t>(c0), taps, valid, W + b * wstride, corr ? corr + c0 : nullptr, acc);
        const __m512 f[2] = {_mm512_cvtepi32_ps(_mm512_inserti64x4(_mm512_castsi256_si512(acc[0]), acc[1], 1)),
                             _mm512_cvtepi32_ps(_mm512_inserti64x4(_mm512_castsi256_si512(acc[2]), acc[3], 1))};
        __m512i q[2];
        rq.quantize_lanes<2>(f, ls + c0, lb + c0, q);
        // packs of (q0, q1) then of the result with itself: lane L' holds the 4-channel groups
        // (q0 L', q1 L') in dwords 0 and 1; the permutation puts the 8 groups in channel order.
        const __m512i w01 = _mm512_packs_epi32(q[0], q[1]);
        const __m512i v = rq.unsigned_out() ? _mm512_packus_epi16(w01, w01) : _mm512_packs_epi16(w01, w01);
        const __m512i r = _mm512_permutexvar_epi32(_mm512_setr_epi32(0, 8, 1, 9, 4, 12, 5, 13, 0, 0, 0, 0, 0, 0, 0, 0), v);
        _mm256_mask_storeu_epi8(static_cast<uint8_t*>(out) + static_cast<size_t>(p) * ldo + c0, valid, _mm512_castsi512_si256(r));
        continue;
      }
      const __mmask64 valid = n == kCB ? ~static_cast<__mmask64>(0) : (static_cast<__mmask64>(1) << n) - 1;
      __m512i acc[4];
      const int32_t* init = corr ? corr + c0 : nullptr;
      if (n == kCB)
        dw_block<true>(px, static_cast<size_t>(c0), taps, valid, W + b * wstride, init, acc);
      else
        dw_block<false>(px, static_cast<size_t>(c0), taps, valid, W + b * wstride, init, acc);
      __m512 f[4];
#pragma GCC unroll 4
      for (int k = 0; k < 4; ++k)
        if (bytes) f[k] = _mm512_cvtepi32_ps(acc[k]);
      if (bytes) {
        __m512i q[4];
        rq.quantize_lanes<4>(f, ls + c0, lb + c0, q);
        const __m512i w01 = _mm512_packs_epi32(q[0], q[1]), w23 = _mm512_packs_epi32(q[2], q[3]);
        const __m512i v = rq.unsigned_out() ? _mm512_packus_epi16(w01, w23) : _mm512_packs_epi16(w01, w23);
        _mm512_mask_storeu_epi8(static_cast<uint8_t*>(out) + static_cast<size_t>(p) * ldo + c0, valid, v);
        continue;
      }
      __m512i ch[4];
      to_channel_order(acc, ch);
#pragma GCC unroll 4
      for (int k = 0; k < 4; ++k) f[k] = _mm512_cvtepi32_ps(ch[k]);
      rq.store_run<4>(f, ch, c0, n, out, ldo, p);
    }
  }
}

}  // namespace avx512vnni
}  // namespace kernels
}  // namespace ternion
