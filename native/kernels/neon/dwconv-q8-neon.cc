// Depthwise int8 convolution, NEON, bit-exact with the scalar reference (kernels.h).
//
// x = a - a_zero (int16, exact) times the int16-widened weight, accumulated in int32 by
// vmlal_s16: every product and sum is the reference's integer. Packed layout: channels in blocks
// of 8 (zero weights past C), per block and tap the 8 weights as int16. The last, partial block
// is read through a stack copy so nothing past C is touched.
#include "kernels/neon/common-neon.h"

namespace ternion {
namespace kernels {
namespace neon_detail {

size_t dw_packed_size(int C, int taps) {
  return round_up(static_cast<size_t>(C), kNR) * static_cast<size_t>(taps) * sizeof(int16_t);
}

void dw_pack(const int8_t* W, int C, int taps, void* packed) {
  int16_t* out = static_cast<int16_t*>(packed);
  const int blocks = (C + kNR - 1) / kNR;
  for (int b = 0; b < blocks; ++b)
    for (int t = 0; t < taps; ++t)
      for (int i = 0; i < kNR; ++i) {
        const int c = b * kNR + i;
        out[(static_cast<size_t>(b) * taps + t) * kNR + i] = c < C ? W[static_cast<size_t>(c) * taps + t] : 0;
      }
}

void dw_q8(int P, int C, int taps, const uint8_t* const* in, uint8_t a_zero, const void* packed,
           const Requant* rq, void* out, size_t ldo) {
  const int16_t* Wp = static_cast<const int16_t*>(packed);
  const int blocks = (C + kNR - 1) / kNR, full = C / kNR;
  const Epi e(*rq);
  const uint8x8_t z = vdup_n_u8(a_zero);
  Scratch tail(blocks > full ? static_cast<size_t>(taps) * kNR : 1);
  uint8_t* tbuf = tail.as<uint8_t>();
  for (int p = 0; p < P; ++p) {
    const uint8_t* const* src = in + static_cast<size_t>(p) * taps;
    const size_t row = static_cast<size_t>(p) * ldo;
    for (int b = 0; b < blocks; ++b) {
      const int c0 = b * kNR, cnt = C - c0 < kNR ? C - c0 : kNR;
      const int16_t* w = Wp + static_cast<size_t>(b) * taps * kNR;
      if (b == full) {  // partial block: copy the valid channels, pad with the zero point
        for (int t = 0; t < taps; ++t) {
          std::memcpy(tbuf + t * kNR, src[t] + c0, static_cast<size_t>(cnt));
          std::memset(tbuf + t * kNR + cnt, a_zero, static_cast<size_t>(kNR - cnt));
        }
      }
      int32x4_t a0 = vdupq_n_s32(0), a1 = vdupq_n_s32(0);
      for (int t = 0; t < taps; ++t) {
        const uint8_t* x8 = b == full ? tbuf + t * kNR : src[t] + c0;
        const int16x8_t x = vreinterpretq_s16_u16(vsubl_u8(vld1_u8(x8), z));
        const int16x8_t wv = vld1q_s16(w + t * kNR);
        a0 = vmlal_s16(a0, vget_low_s16(x), vget_low_s16(wv));
        a1 = vmlal_high_s16(a1, x, wv);
      }
      epi_store_i(e, panel_epi(*rq, c0, cnt), a0, a1, out, row + c0, cnt);
    }
  }
}

}  // namespace neon_detail
}  // namespace kernels
}  // namespace ternion
