// The Requant epilogue of kernels.h, written once, in the reference order of operations.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "kernels/kernels.h"

namespace ternion {
namespace kernels {
namespace scalar_detail {

// Stores one output value; `acc` is the fp32 value the epilogue starts from and `raw` the int32
// accumulator (used only by OutType::I32).
inline void requant_store(const Requant& rq, int n, float acc, int32_t raw, void* C, size_t index) {
  if (rq.out == OutType::I32) {
    static_cast<int32_t*>(C)[index] = raw;
    return;
  }
  const float scale = rq.scale ? rq.scale[n] : 1.0f;
  const float bias = rq.bias ? rq.bias[n] : 0.0f;
  float v = std::fma(acc, scale, bias);
  // Residual codes are laid out like C (kernels.h): the same index.
  if (rq.residual && rq.out != OutType::F32)
    v = v + static_cast<float>(static_cast<int32_t>(rq.residual[index]) - rq.residual_zero_point) * rq.residual_scale;
  if (rq.relu) v = std::fmax(v, 0.0f);
  if (rq.out == OutType::F32) {
    static_cast<float*>(C)[index] = v;
    return;
  }
  v = std::min(std::max(v, rq.post_lo), rq.post_hi);
  int32_t q;
  if (rq.divisor > 0.0f) {
    v = std::fma(v, 1.0f / rq.divisor, static_cast<float>(rq.zero_point));
    v = std::fmin(std::fmax(v, static_cast<float>(rq.qmin)), static_cast<float>(rq.qmax));
    q = static_cast<int32_t>(std::nearbyint(v));
  } else {
    const float lo = static_cast<float>(rq.qmin - rq.zero_point);
    const float hi = static_cast<float>(rq.qmax - rq.zero_point);
    v = std::fmin(std::fmax(v, lo), hi);
    q = static_cast<int32_t>(std::nearbyint(v)) + rq.zero_point;
  }
  if (rq.out == OutType::U8)
    static_cast<uint8_t*>(C)[index] = static_cast<uint8_t>(q);
  else
    static_cast<int8_t*>(C)[index] = static_cast<int8_t>(q);
}

}  // namespace scalar_detail
}  // namespace kernels
}  // namespace ternion
