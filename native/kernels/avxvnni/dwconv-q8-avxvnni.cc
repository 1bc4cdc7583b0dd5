// Depthwise int8 convolution, AVX-VNNI (256-bit vpdpbusd), bit-exact with the scalar reference
// (kernels.h): the AVX-512 VNNI kernel (avx512/dwconv-q8-avx512vnni.cc) at half its width.
//
// Per pixel and block of 32 channels, four taps at a time: the four taps' 32 channel bytes are
// interleaved per channel (a 4x4 byte transpose by vpunpck{l,h}bw then vpunpck{l,h}wd, within
// 128-bit lanes), so each int32 lane holds one channel's four u8 activations, and vpdpbusd
// multiplies them by that channel's four int8 weights and adds them in one instruction. Any int8
// weight is exact (no 7-bit form, unlike vpmaddubsw in the AVX2 kernel). The zero point comes
// out through per-channel weight sums, the accumulators' start: sum (a - a_zero) w =
// sum a w - a_zero * sum w.
//
// The transpose leaves vector i, 128-bit lane L, int32 slot j holding channel 16 L + 4 i + j
// ("lane order"). Byte outputs stay in lane order: the epilogue reads scale and bias permuted
// the same way (once per call), and the packs of the four vectors (pack_lanes) give the 32
// channels in order, one 32-byte store per block and pixel. fp32 and int32 outputs are put back
// in channel order by four vperm2i128.
//
// A last block of at most 16 channels (MobileNets' 144, 240) runs two pixels per vector
// (PairTail: 128-bit lane q holds pixel q's channels) instead of leaving half or more of the
// lanes idle; a last block of 17 .. 31 channels runs one pixel. Both read their channels with
// bounded loads (FirstBytes): bytes past C are neither read nor written.
//
// A last quad of one tap (taps = 1, 5, 9, 25, 49: every odd square window) is not interleaved:
// one vpshufb transposes each 128-bit lane's 4x4 bytes instead (add_single_tap), and each weight
// vector holds its channels' weights in the byte that meets them. Two or three last taps are a
// quad with zero vectors for the missing taps, against zero weights.
//
// Packed layout: a 64-byte header {magic, C, taps}, then for each block b of 32 channels and
// each quad q of taps, 128 bytes: byte 32 i + 16 L + 4 j + s = w[32 b + 16 L + 4 i + j][4 q + s]
// (zero past C or taps), except that a last quad of one tap has that tap's weight in byte s = i;
// then wsum[round_up(C, 32)] int32 in lane order: entry 32 b + 8 i + 4 L + j is the weight sum
// of channel 32 b + 16 L + 4 i + j.
#include <vector>

#include "common-avxvnni.h"

namespace ternion {
namespace kernels {
namespace avxvnni {

namespace {

constexpr int kCB = 32;  // channels per block
constexpr size_t kHeader = 64;
constexpr uint32_t kMagicDw = 0x57444154;  // "TADW"

int quads_of(int taps) { return (taps + 3) / 4; }
int blocks_of(int C) { return (C + kCB - 1) / kCB; }
size_t weight_bytes(int C, int taps) { return static_cast<size_t>(blocks_of(C)) * quads_of(taps) * 128; }

// Entry (lane-order index) of channel c: vector i = (c % 16) / 4, lane L = (c % 32) / 16, slot c % 4.
inline int lane_order(int c) { return (c / kCB) * kCB + 8 * ((c % 16) / 4) + 4 * ((c % kCB) / 16) + c % 4; }

// Loads of the first n bytes of a row (1 <= n < 32), zero above, reading nothing past them:
// vpmaskmovd for the whole dwords, then the last 1..3 bytes assembled in a register and blended
// into their dword (AVX2 has no byte-masked load).
class FirstBytes {
 public:
  explicit FirstBytes(int n)
      : whole_(lane_mask(n / 4)),
        last_(_mm256_cmpeq_epi32(_mm256_set1_epi32(n / 4), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))),
        at_(n & ~3),
        odd_(n & 3) {}

  __m256i load32(const uint8_t* p) const {
    const __m256i v = _mm256_maskload_epi32(reinterpret_cast<const int*>(p), whole_);
    return odd_ ? _mm256_blendv_epi8(v, bcast_partial(p + at_, odd_), last_) : v;
  }
  // The same for n <= 16 into 16 bytes.
  __m128i load16(const uint8_t* p) const {
    const __m128i v = _mm_maskload_epi32(reinterpret_cast<const int*>(p), _mm256_castsi256_si128(whole_));
    return odd_ ? _mm_blendv_epi8(v, _mm256_castsi256_si128(bcast_partial(p + at_, odd_)), _mm256_castsi256_si128(last_)) : v;
  }

 private:
  __m256i whole_, last_;  // the whole dwords; the dword of the last 1..3 bytes
  int at_, odd_;          // where those bytes start, how many
};

// acc[i] += the four taps v0..v3 transposed to lane order (slot j of vector i, lane L: channel
// 16 L + 4 i + j, its four taps' bytes) times the quad's weight vector i, weight(w + 32 i).
template <typename Weight>
inline __attribute__((always_inline)) void add_quad(__m256i v0, __m256i v1, __m256i v2, __m256i v3, const int8_t* w,
                                                    Weight&& weight, __m256i (&acc)[4]) {
  const __m256i l01 = _mm256_unpacklo_epi8(v0, v1), h01 = _mm256_unpackhi_epi8(v0, v1);
  const __m256i l23 = _mm256_unpacklo_epi8(v2, v3), h23 = _mm256_unpackhi_epi8(v2, v3);
  acc[0] = dpbusd(acc[0], _mm256_unpacklo_epi16(l01, l23), weight(w));
  acc[1] = dpbusd(acc[1], _mm256_unpackhi_epi16(l01, l23), weight(w + 32));
  acc[2] = dpbusd(acc[2], _mm256_unpacklo_epi16(h01, h23), weight(w + 64));
  acc[3] = dpbusd(acc[3], _mm256_unpackhi_epi16(h01, h23), weight(w + 96));
}

// acc[i] += one tap v times the single-tap quad's weight vector i, weight(w + 32 i). One vpshufb
// transposes each 128-bit lane's 4x4 bytes: byte 4 j + i of lane L then holds channel
// 16 L + 4 i + j, which vector i's weights (that channel's weight in byte i of dword j, zero in
// the others) pick out for slot j. One shuffle instead of a transpose's eight.
template <typename Weight>
inline __attribute__((always_inline)) void add_single_tap(__m256i v, const int8_t* w, Weight&& weight, __m256i (&acc)[4]) {
  const __m256i order = _mm256_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15,  //
                                         0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  const __m256i u = _mm256_shuffle_epi8(v, order);
  acc[0] = dpbusd(acc[0], u, weight(w));
  acc[1] = dpbusd(acc[1], u, weight(w + 32));
  acc[2] = dpbusd(acc[2], u, weight(w + 64));
  acc[3] = dpbusd(acc[3], u, weight(w + 96));
}

// acc += the sums over all taps: load(t) gives tap t's 32 bytes, w the block's packed quads.
template <typename Load, typename Weight>
inline __attribute__((always_inline)) void add_taps(int taps, const int8_t* w, Load&& load, Weight&& weight, __m256i (&acc)[4]) {
  int t = 0;
  for (; t + 4 <= taps; t += 4, w += 128) add_quad(load(t), load(t + 1), load(t + 2), load(t + 3), w, weight, acc);
  const int left = taps - t;
  if (left == 1) {
    add_single_tap(load(t), w, weight, acc);
  } else if (left > 1) {
    const __m256i z = _mm256_setzero_si256();  // missing taps meet zero weights
    add_quad(load(t), load(t + 1), left > 2 ? load(t + 2) : z, z, w, weight, acc);
  }
}

// One pixel's sums of the block's channels [c0, c0 + 32) in lane order, started at `init` (the
// block's zero-point terms in lane order, or nullptr for none). Full: all 32 channels exist;
// otherwise `first` bounds the loads.
template <bool Full>
inline __attribute__((always_inline)) void block_sums(const uint8_t* const* px, size_t c0, int taps, const FirstBytes& first,
                                                      const int8_t* w, const int32_t* init, __m256i (&acc)[4]) {
  for (int k = 0; k < 4; ++k) acc[k] = init ? load256(init + 8 * k) : _mm256_setzero_si256();
  add_taps(
      taps, w, [&](int t) __attribute__((always_inline)) { return Full ? load256(px[t] + c0) : first.load32(px[t] + c0); },
      [](const int8_t* p) __attribute__((always_inline)) { return load256(p); }, acc);
}

// A last block of at most 16 channels, two pixels per vector: 128-bit lane q holds pixel q's
// channels, so after the transpose vector i, lane q, slot j holds pixel q's channel 4 i + j.
// The weights and zero-point terms are the block's lane 0 (its only channels) repeated in both
// lanes; the epilogue's scale and bias follow the same order, and pack_lanes then gives pixel
// q's bytes in lane q. Full: the block has all 16 channels; otherwise `first` bounds the loads.
struct PairTail {
  // Sums of pixels px0, px1 (channels from c0), started at `init` (lane order, or nullptr).
  template <bool Full>
  static inline __attribute__((always_inline)) void sums(const uint8_t* const* px0, const uint8_t* const* px1, size_t c0, int taps,
                                                         const FirstBytes& first, const int8_t* w, const int32_t* init,
                                                         __m256i (&acc)[4]) {
    for (int k = 0; k < 4; ++k) acc[k] = init ? repeat(init + 8 * k) : _mm256_setzero_si256();
    auto row = [&](const uint8_t* p) __attribute__((always_inline)) {
      return Full ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)) : first.load16(p);
    };
    add_taps(
        taps, w,
        [&](int t) __attribute__((always_inline)) {
          return _mm256_inserti128_si256(_mm256_castsi128_si256(row(px0[t] + c0)), row(px1[t] + c0), 1);
        },
        [](const int8_t* p) __attribute__((always_inline)) { return repeat(p); }, acc);
  }

  // Lane-order entry (within the block) of the epilogue parameter for channel c (< 16), lane q.
  static int entry(int c, int q) { return 8 * (c / 4) + 4 * q + c % 4; }

 private:
  // The 16 bytes at p in both lanes.
  static inline __m256i repeat(const void* p) {
    return _mm256_broadcastsi128_si256(_mm_loadu_si128(static_cast<const __m128i*>(p)));
  }
};

// Channel order of the lane-order sums: lane 0 of each vector holds channels 0-15 (or a
// PairTail's pixel 0), lane 1 channels 16-31 (its pixel 1); half h of them as two vectors of 8.
inline __attribute__((always_inline)) void channel_order(const __m256i (&acc)[4], int h, __m256i (&out)[1][2]) {
  if (h) {
    out[0][0] = _mm256_permute2x128_si256(acc[0], acc[1], 0x31);
    out[0][1] = _mm256_permute2x128_si256(acc[2], acc[3], 0x31);
  } else {
    out[0][0] = _mm256_permute2x128_si256(acc[0], acc[1], 0x20);
    out[0][1] = _mm256_permute2x128_si256(acc[2], acc[3], 0x20);
  }
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
    int32_t sum = 0;
    for (int t = 0; t < taps; ++t) {
      const int8_t v = W[static_cast<size_t>(c) * taps + t];
      // Byte s of the channel's dword: tap 4 q + s, or i for a last single tap (add_single_tap).
      const int s = taps % 4 == 1 && t == taps - 1 ? i : t % 4;
      w[(static_cast<size_t>(b) * quads + t / 4) * 128 + 32 * i + 16 * L + 4 * j + s] = v;
      sum += v;
    }
    wsum[lane_order(c)] = sum;
  }
}

void dw_q8(int P, int C, int taps, const uint8_t* const* in, uint8_t a_zero, const void* packed,
           const Requant* rq_in, void* out, size_t ldo) {
  // A copy the stores cannot alias (through the caller's pointer every uint8 store could change it).
  const Epilogue rq(*rq_in);
  const uint8_t* base = static_cast<const uint8_t*>(packed);
  const int8_t* W = reinterpret_cast<const int8_t*>(base + kHeader);
  const int32_t* wsum = reinterpret_cast<const int32_t*>(base + kHeader + weight_bytes(C, taps));
  const size_t wstride = static_cast<size_t>(quads_of(taps)) * 128;
  const int padded = blocks_of(C) * kCB;
  const int full = C / kCB * kCB, rest = C - full;
  const bool pair_tail = rest > 0 && rest <= 16;
  const FirstBytes first(rest ? rest : 1);  // unused when C is a multiple of 32
  // The zero point's correction -a_zero * wsum in lane order, once per call: each pixel's sums
  // start from it.
  thread_local std::vector<int32_t> corr_buf;
  const int32_t* corr = nullptr;
  if (a_zero) {
    corr_buf.resize(static_cast<size_t>(padded));
    for (int i = 0; i < padded; ++i) corr_buf[i] = -static_cast<int32_t>(a_zero) * wsum[i];
    corr = corr_buf.data();
  }
  // Byte outputs: scale and bias in lane order (zero past C), built once per call; a PairTail
  // block has its two-pixel order instead.
  thread_local std::vector<float> lane_params;
  const bool bytes = rq.byte_out();
  const float *ls = nullptr, *lb = nullptr;
  if (bytes) {
    lane_params.assign(2 * static_cast<size_t>(padded), 0.0f);
    float* s = lane_params.data();
    float* b = s + padded;
    auto put = [&](int at, int c) {
      s[at] = rq_in->scale ? rq_in->scale[c] : 1.0f;
      b[at] = rq_in->bias ? rq_in->bias[c] : 0.0f;
    };
    for (int c = 0; c < (pair_tail ? full : C); ++c) put(lane_order(c), c);
    if (pair_tail)
      for (int c = 0; c < rest; ++c)
        for (int q = 0; q < 2; ++q) put(full + PairTail::entry(c, q), full + c);
    ls = s, lb = b;
  }
  uint8_t* const out8 = static_cast<uint8_t*>(out);

  // Byte outputs: lane-order sums quantized and packed (32 channels in order, or a PairTail's
  // pixel h in 128-bit lane h); channels [c0, c0 + n) of pixel p are those of lane h onward.
  auto store_quantized = [&](const __m256i (&acc)[4], int c0, int n, int p, int h) __attribute__((always_inline)) {
    __m256 f[4];
#pragma GCC unroll 4
    for (int k = 0; k < 4; ++k) f[k] = _mm256_cvtepi32_ps(acc[k]);
    __m256i q[4];
    rq.quantize_lanes<4>(f, ls + c0, lb + c0, q);
    __m256i v = rq.pack_lanes(q);
    if (h) v = _mm256_permute2x128_si256(v, v, 0x11);
    Epilogue::store_bytes(out8 + static_cast<size_t>(p) * ldo + c0, v, n);
  };
  // fp32 and int32 outputs: channels [c0, c0 + n), n <= 16, of pixel p from half h of the
  // lane-order sums put back in channel order.
  auto store_half = [&](const __m256i (&acc)[4], int c0, int n, int p, int h) __attribute__((always_inline)) {
    __m256i v[1][2];
    channel_order(acc, h, v);
    rq.store_tile<1>(v, c0, n, out, ldo, p);
  };
  // Pixel p's block of channels [c0, c0 + n), n <= 32.
  auto block = [&](int p, int c0, int n) __attribute__((always_inline)) {
    const uint8_t* const* px = in + static_cast<size_t>(p) * taps;
    const int8_t* w = W + static_cast<size_t>(c0 / kCB) * wstride;
    const int32_t* init = corr ? corr + c0 : nullptr;
    __m256i acc[4];
    if (n == kCB) block_sums<true>(px, static_cast<size_t>(c0), taps, first, w, init, acc);
    else block_sums<false>(px, static_cast<size_t>(c0), taps, first, w, init, acc);
    if (bytes) {
      store_quantized(acc, c0, n, p, 0);
      return;
    }
    store_half(acc, c0, n, p, 0);
    if (n > 16) store_half(acc, c0 + 16, n - 16, p, 1);
  };
  // The PairTail of pixels p and p + 1 (np = 2), or of p alone (np = 1: lane 1 repeats it and
  // is not stored).
  auto pair = [&](int p, int np) __attribute__((always_inline)) {
    const uint8_t* const* px0 = in + static_cast<size_t>(p) * taps;
    const uint8_t* const* px1 = np > 1 ? px0 + taps : px0;
    const int8_t* w = W + static_cast<size_t>(full / kCB) * wstride;
    const int32_t* init = corr ? corr + full : nullptr;
    __m256i acc[4];
    if (rest == 16) PairTail::sums<true>(px0, px1, static_cast<size_t>(full), taps, first, w, init, acc);
    else PairTail::sums<false>(px0, px1, static_cast<size_t>(full), taps, first, w, init, acc);
    for (int h = 0; h < np; ++h) {
      if (bytes) store_quantized(acc, full, rest, p + h, h);
      else store_half(acc, full, rest, p + h, h);
    }
  };

  const int group = pair_tail ? 2 : 1;
  for (int p = 0; p < P; p += group) {
    const int np = P - p < group ? P - p : group;
    for (int q = p; q < p + np; ++q) {
      for (int c0 = 0; c0 < full; c0 += kCB) block(q, c0, kCB);
      if (rest && !pair_tail) block(q, full, rest);
    }
    if (pair_tail) pair(p, np);
  }
}

}  // namespace avxvnni
}  // namespace kernels
}  // namespace ternion
