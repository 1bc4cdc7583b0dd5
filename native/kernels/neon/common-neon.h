// Shared pieces of the NEON table: scratch buffers, the Requant epilogue on 8 columns, and
// the per-kind entry points that table-neon.cc collects. Baseline armv8-a NEON only.
#pragma once

#include <arm_neon.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "kernels/kernels.h"

namespace ternion {
namespace kernels {
namespace neon_detail {

// Every NEON kind uses 8-column panels: two 128-bit vectors of fp32/int32 per row.
constexpr int kNR = 8;

inline size_t round_up(size_t v, size_t a) { return (v + a - 1) / a * a; }

// Per-call scratch: small requests live on the stack, large ones on the heap. Kernels keep no
// global state, so concurrent calls from several threads are safe.
class Scratch {
 public:
  explicit Scratch(size_t bytes) {
    if (bytes <= sizeof(local_)) {
      p_ = local_;
    } else {
      if (posix_memalign(&heap_, 64, bytes) != 0) std::abort();
      p_ = heap_;
    }
  }
  ~Scratch() { std::free(heap_); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  template <typename T>
  T* as() { return static_cast<T*>(p_); }

 private:
  alignas(64) unsigned char local_[16384];
  void* heap_ = nullptr;
  void* p_ = nullptr;
};

// The Requant parameters that do not depend on the column, hoisted once per call.
struct Epi {
  OutType out;
  bool relu;
  int32_t zp;
  float lo, hi;
  // Requant's post-activation Clip and divisor (kernels.h); a bound at infinity is skipped.
  bool post_lo, post_hi;
  float plo, phi, divisor;
  float recip, zf;  // with a divisor: v = fma(v, 1 / divisor, zero point), then lo / hi are qmin / qmax
  // Residual codes laid out like C (kernels.h), byte outputs only; null when none.
  const uint8_t* res;
  float rs;
  int32_t rz;
  explicit Epi(const Requant& rq)
      : out(rq.out), relu(rq.relu), zp(rq.divisor > 0.0f ? 0 : rq.zero_point),
        lo(static_cast<float>(rq.qmin - zp)),
        hi(static_cast<float>(rq.qmax - zp)),
        post_lo(rq.post_lo != -__builtin_inff()), post_hi(rq.post_hi != __builtin_inff()),
        plo(rq.post_lo), phi(rq.post_hi), divisor(rq.divisor),
        recip(rq.divisor > 0.0f ? 1.0f / rq.divisor : 1.0f), zf(static_cast<float>(rq.zero_point)),
        res(rq.residual && (rq.out == OutType::U8 || rq.out == OutType::S8) ? rq.residual : nullptr),
        rs(rq.residual_scale), rz(rq.residual_zero_point) {}
};

// std::min(std::max(v, plo), phi) (a NaN stays NaN: the comparisons are false), then with a
// divisor fma(v, 1 / divisor, zero point) (vfmaq is fused, as the reference's fmaf).
inline float32x4_t post_quant4(const Epi& e, float32x4_t v) {
  if (e.post_lo) {
    const float32x4_t l = vdupq_n_f32(e.plo);
    v = vbslq_f32(vcltq_f32(v, l), l, v);
  }
  if (e.post_hi) {
    const float32x4_t h = vdupq_n_f32(e.phi);
    v = vbslq_f32(vcltq_f32(h, v), h, v);
  }
  if (e.divisor > 0.0f) v = vfmaq_f32(vdupq_n_f32(e.zf), v, vdupq_n_f32(e.recip));
  return v;
}

// Scale and bias of one 8-column panel; a missing scale is 1 and a missing bias 0, which makes
// fmaf(acc, 1, bias) and fmaf(acc, scale, 0) exactly what kernels.h prescribes.
struct PanelEpi {
  float32x4_t s0, s1, b0, b1;
};

inline PanelEpi panel_epi(const Requant& rq, int nb, int cnt) {
  float s[kNR], b[kNR];
  for (int i = 0; i < kNR; ++i) {
    s[i] = (rq.scale && i < cnt) ? rq.scale[nb + i] : 1.0f;
    b[i] = (rq.bias && i < cnt) ? rq.bias[nb + i] : 0.0f;
  }
  return {vld1q_f32(s), vld1q_f32(s + 4), vld1q_f32(b), vld1q_f32(b + 4)};
}

// x = a - a_zero as int16 (exact, in [-255, 255]) for `rows` rows of K, written with row stride
// xs; entries from K up to xs stay zero so padded k contribute nothing.
inline void widen_rows(const uint8_t* A, size_t lda, int rows, int K, uint8_t a_zero, int16_t* x,
                       size_t xs) {
  const uint8x16_t z = vdupq_n_u8(a_zero);
  for (int r = 0; r < rows; ++r) {
    const uint8_t* a = A + r * lda;
    int16_t* d = x + r * xs;
    int k = 0;
    for (; k + 16 <= K; k += 16) {
      const uint8x16_t v = vld1q_u8(a + k);
      vst1q_s16(d + k, vreinterpretq_s16_u16(vsubl_u8(vget_low_u8(v), vget_low_u8(z))));
      vst1q_s16(d + k + 8, vreinterpretq_s16_u16(vsubl_high_u8(v, z)));
    }
    for (; k < K; ++k) d[k] = static_cast<int16_t>(a[k] - a_zero);
    for (; k < static_cast<int>(xs); ++k) d[k] = 0;
  }
}

// The fp32 kernels' clamp (kernels.h) on 4 values: v < lo ? lo : v, then hi < v ? hi : v, as
// a comparison and a bit select lane by lane (vmaxq would turn -0 into +0 for lo = 0, Relu).
inline float32x4_t clamp4(float32x4_t v, float32x4_t lo, float32x4_t hi) {
  v = vbslq_f32(vcltq_f32(v, lo), lo, v);
  return vbslq_f32(vcltq_f32(hi, v), hi, v);
}

// Stores cnt (1..8) columns of one row from an 8-wide staging buffer.
template <typename T>
inline void store_partial(T* dst, const T* src, int cnt) {
  for (int i = 0; i < cnt; ++i) dst[i] = src[i];
}

// fp32 epilogue on 8 columns in the reference order: fma, relu (fmaxnm = fmaxf), clamp
// (fmaxnm/fminnm), round half to even (fcvtns = nearbyint), + zero point, truncating narrow
// (= the reference's static_cast to uint8_t/int8_t).
inline void epi_store_f(const Epi& e, const PanelEpi& p, float32x4_t v0, float32x4_t v1,
                        void* C, size_t index, int cnt) {
  v0 = vfmaq_f32(p.b0, v0, p.s0);
  v1 = vfmaq_f32(p.b1, v1, p.s1);
  if (e.res) {
    // (code - zero point) in int32, converted exactly, times the scale: the reference's order.
    uint8_t codes[kNR] = {};
    for (int i = 0; i < cnt; ++i) codes[i] = e.res[index + i];
    const uint16x8_t w = vmovl_u8(vld1_u8(codes));
    const int32x4_t z = vdupq_n_s32(e.rz);
    const float32x4_t s = vdupq_n_f32(e.rs);
    const int32x4_t c0 = vsubq_s32(vreinterpretq_s32_u32(vmovl_u16(vget_low_u16(w))), z);
    const int32x4_t c1 = vsubq_s32(vreinterpretq_s32_u32(vmovl_u16(vget_high_u16(w))), z);
    v0 = vaddq_f32(v0, vmulq_f32(vcvtq_f32_s32(c0), s));
    v1 = vaddq_f32(v1, vmulq_f32(vcvtq_f32_s32(c1), s));
  }
  if (e.relu) {
    const float32x4_t z = vdupq_n_f32(0.0f);
    v0 = vmaxnmq_f32(v0, z);
    v1 = vmaxnmq_f32(v1, z);
  }
  if (e.out == OutType::F32) {
    float* c = static_cast<float*>(C) + index;
    if (cnt == kNR) {
      vst1q_f32(c, v0);
      vst1q_f32(c + 4, v1);
    } else {
      float t[kNR];
      vst1q_f32(t, v0);
      vst1q_f32(t + 4, v1);
      store_partial(c, t, cnt);
    }
    return;
  }
  v0 = post_quant4(e, v0);
  v1 = post_quant4(e, v1);
  const float32x4_t lo = vdupq_n_f32(e.lo), hi = vdupq_n_f32(e.hi);
  v0 = vminnmq_f32(vmaxnmq_f32(v0, lo), hi);
  v1 = vminnmq_f32(vmaxnmq_f32(v1, lo), hi);
  const int32x4_t zp = vdupq_n_s32(e.zp);
  const int32x4_t q0 = vaddq_s32(vcvtnq_s32_f32(v0), zp);
  const int32x4_t q1 = vaddq_s32(vcvtnq_s32_f32(v1), zp);
  const int8x8_t b = vmovn_s16(vcombine_s16(vmovn_s32(q0), vmovn_s32(q1)));
  int8_t* c = static_cast<int8_t*>(C) + index;  // U8 and S8 share the byte pattern
  if (cnt == kNR) {
    vst1_s8(c, b);
  } else {
    int8_t t[kNR];
    vst1_s8(t, b);
    store_partial(c, t, cnt);
  }
}

// Integer accumulators: I32 stores them raw, everything else converts (round to nearest, as
// static_cast<float>) and runs the fp32 epilogue.
inline void epi_store_i(const Epi& e, const PanelEpi& p, int32x4_t a0, int32x4_t a1, void* C,
                        size_t index, int cnt) {
  if (e.out == OutType::I32) {
    int32_t* c = static_cast<int32_t*>(C) + index;
    if (cnt == kNR) {
      vst1q_s32(c, a0);
      vst1q_s32(c + 4, a1);
    } else {
      int32_t t[kNR];
      vst1q_s32(t, a0);
      vst1q_s32(t + 4, a1);
      store_partial(c, t, cnt);
    }
    return;
  }
  epi_store_f(e, p, vcvtq_f32_s32(a0), vcvtq_f32_s32(a1), C, index, cnt);
}

// Entry points (one file per kind).
TERNION_DECLARE_KERNEL_ENTRIES()
TERNION_DECLARE_DW_ENTRIES()

}  // namespace neon_detail
}  // namespace kernels
}  // namespace ternion
