// The folded form of the Requant epilogue's quantization (kernels.h), for the SIMD tables.
//
// With a divisor, the reference computes q = rint(clamp(fmaf(clip(relu(v)), r, z), qmin, qmax))
// with r = 1 / divisor. For a positive normal r, v -> fmaf(v, r, z) is monotonic (a correctly
// rounded function of an increasing one), so ReLU, the Clip and the clamp to [qmin, qmax] are one
// clamp of s = fmaf(v, r, z) to [lo, hi], the images of the lowest and highest value relu and
// clip let through: q = rint(min(max(s, lo), hi)), one fma and two compares per vector.
//
// A NaN v: the vector code's max(s, lo) returns lo (its second operand when unordered). The
// reference gives the image of 0 with ReLU (fmax(NaN, 0) = 0, which is lo), else qmin (fmaxf);
// so without ReLU the fold holds only where lo rounds to qmin, and callers use the plain order
// of operations otherwise.
//
// Scalar arithmetic only: each SIMD folder includes it and compiles it with its own flags
// (std::fma is the IEEE fused multiply-add under any of them). The function is static: one
// copy per translation unit, so the linker never hands the AVX2 table an AVX-512 build of it.
#pragma once

#include <algorithm>
#include <cmath>

#include "kernels.h"

namespace ternion {
namespace kernels {

struct FoldedQuant {
  bool ok = false;  // the fold applies (else: the plain order of operations)
  float r = 1.0f;   // 1 / divisor, rounded to float
  float z = 0.0f;   // the zero point
  float lo = 0.0f, hi = 0.0f;
};

static inline FoldedQuant folded_quant(const Requant& rq) {
  FoldedQuant f;
  if (!(rq.divisor > 0.0f) || (rq.out != OutType::U8 && rq.out != OutType::S8)) return f;
  f.r = 1.0f / rq.divisor;
  f.z = static_cast<float>(rq.zero_point);
  // A subnormal, zero or infinite reciprocal breaks the monotonic map (0 * inf is NaN); a NaN
  // Clip bound is not a bound.
  if (!(f.r >= 0x1p-126f && f.r <= 0x1.fffffep127f) || rq.post_lo != rq.post_lo || rq.post_hi != rq.post_hi) return f;
  const float inf = __builtin_inff();
  auto clip = [&](float v) { return std::min(std::max(v, rq.post_lo), rq.post_hi); };
  auto quant = [&](float v) {
    return std::fmin(std::fmax(std::fma(v, f.r, f.z), static_cast<float>(rq.qmin)), static_cast<float>(rq.qmax));
  };
  f.lo = quant(clip(rq.relu ? 0.0f : -inf));
  f.hi = quant(clip(inf));
  f.ok = rq.relu || std::nearbyint(f.lo) == static_cast<float>(rq.qmin);
  return f;
}

}  // namespace kernels
}  // namespace ternion
