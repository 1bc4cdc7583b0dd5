// QuantizeLinear and DequantizeLinear, per tensor (opset 10) or per axis (`axis`, opset 13),
// and DynamicQuantizeLinear (opset 11: uint8 with the tensor's own range, below),
// to/from uint8 or int8 (DequantizeLinear also int32, whose zero point must be 0).
//   Quantize:   y = saturate(round_half_to_even(x / scale) + zero_point)   (uint8 when no zero point)
//   Dequantize: y = (x - zero_point) * scale
// Quantize divides (as the spec and its reference do) rather than multiplying by 1/scale, so the
// results match bit for bit. Rounding uses the float "magic number" trick on the value clamped to
// the output range: exact half-to-even and vectorizable with baseline SSE2 (no roundps).
#include <cmath>
#include <cstring>
#include <limits>

#include "exec/graph.h"
#include "exec/ops/broadcast.h"
#include "exec/ops/op-args.h"
#include "exec/ops/quant-common.h"
#include "exec/ops/vector-math.h"

namespace ternion {
namespace exec {
namespace {

// How scale and zero point spread over x: `channels` values (1 for per-tensor) along an axis
// with `outer` blocks before it and `inner` elements after it.
struct QuantLayout {
  int64_t outer = 1, channels = 1, inner = 1;
};

QuantLayout layout_of(const Tensor& x, const Tensor& scale, const Tensor* zero_point, int64_t axis_attr,
                      const std::string& where) {
  op_args::require_dtype(scale, {DType::F32}, where, "scale");
  QuantLayout l;
  l.inner = x.size();
  if (scale.size() != 1 || scale.shape.size() > 1) {
    if (scale.shape.size() != 1)
      fail("ERR_SHAPE_MISMATCH", where + ": scale must be a scalar or 1-D, got shape " + shape_str(scale.shape));
    const size_t rank = x.shape.size();
    const size_t axis = static_cast<size_t>(op_args::normalize_axis(axis_attr, static_cast<int64_t>(rank), where));
    if (x.shape[axis] != scale.shape[0])
      fail("ERR_SHAPE_MISMATCH", where + ": per-axis scale of shape " + shape_str(scale.shape) + " does not match axis " +
                                     std::to_string(axis) + " of input " + shape_str(x.shape));
    l.outer = op_args::dims_product(x.shape, 0, axis);
    l.channels = x.shape[axis];
    l.inner = op_args::dims_product(x.shape, axis + 1, rank);
  }
  if (zero_point && (zero_point->size() != scale.size() || zero_point->shape.size() > 1))
    fail("ERR_SHAPE_MISMATCH", where + ": zero point of shape " + shape_str(zero_point->shape) + " does not match scale " + shape_str(scale.shape));
  return l;
}

inline int64_t zero_point_at(const Tensor* zp, int64_t c) {
  if (!zp) return 0;
  switch (zp->dtype) {
    case DType::U8: return zp->ptr<uint8_t>()[c];
    case DType::I8: return zp->ptr<int8_t>()[c];
    case DType::I32: return zp->ptr<int32_t>()[c];
    default: return 0;
  }
}

// ---------------------------------------------------------------- QuantizeLinear
template <typename In, typename Out>
void quantize_run(const In* x, Out* y, int64_t n, float scale, int64_t zero_point) {
  // Clamping before rounding is exact: the bounds are integers. NaN goes to the low bound.
  const float lo = static_cast<float>(std::numeric_limits<Out>::min() - zero_point);
  const float hi = static_cast<float>(std::numeric_limits<Out>::max() - zero_point);
  const float magic = 12582912.0f;  // 1.5 * 2^23: adding it rounds |v| < 2^22 half to even
  const int32_t zp = static_cast<int32_t>(zero_point);
  for (int64_t i = 0; i < n; ++i) {
    float v = static_cast<float>(x[i]) / scale;
    v = v > lo ? v : lo;
    v = v < hi ? v : hi;
    v = (v + magic) - magic;
    y[i] = static_cast<Out>(static_cast<int32_t>(v) + zp);
  }
}

class QuantizeLinearOp : public Op {
 public:
  explicit QuantizeLinearOp(const NodeDesc& node) : where_(node.where()), axis_(node.get_int("axis", 1)) {
    if (node.get_int("block_size", 0) != 0) fail("ERR_UNSUPPORTED_OP", where_ + ": blocked quantization (block_size) is not supported");
  }

  void infer(const std::vector<const Tensor*>& inputs, std::vector<Tensor>& outputs) override {
    const Tensor& x = op_args::required(inputs, 0, where_, "x");
    const Tensor& scale = op_args::required(inputs, 1, where_, "y_scale");
    const Tensor* zp = op_args::optional(inputs, 2);
    op_args::require_dtype(x, {DType::F32, DType::I32}, where_, "x");
    if (zp) op_args::require_dtype(*zp, {DType::U8, DType::I8}, where_, "y_zero_point");
    layout_of(x, scale, zp, axis_, where_);
    if (outputs.size() != 1) fail("ERR_MODEL_FORMAT", where_ + ": expected one output");
    outputs[0].dtype = zp ? zp->dtype : DType::U8;
    outputs[0].shape = x.shape;
  }

  void run(const std::vector<const Tensor*>& inputs, std::vector<Tensor*>& outputs, RunContext& ctx) override {
    const Tensor& x = *inputs[0];
    const Tensor& scale = *inputs[1];
    const Tensor* zp = op_args::optional(inputs, 2);
    const QuantLayout l = layout_of(x, scale, zp, axis_, where_);
    Tensor& y = *outputs[0];
    if (y.size() == 0) return;
    const int64_t runs = l.outer * l.channels;
    broadcast::parallel_range(ctx, runs, std::max<int64_t>(1, (1 << 15) / l.inner), [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        const int64_t c = r % l.channels, off = r * l.inner;
        const float s = scale.ptr<float>()[c];
        const int64_t z = zero_point_at(zp, c);
        if (y.dtype == DType::U8) {
          if (x.dtype == DType::F32) quantize_run(x.ptr<float>() + off, y.ptr<uint8_t>() + off, l.inner, s, z);
          else quantize_run(x.ptr<int32_t>() + off, y.ptr<uint8_t>() + off, l.inner, s, z);
        } else {
          if (x.dtype == DType::F32) quantize_run(x.ptr<float>() + off, y.ptr<int8_t>() + off, l.inner, s, z);
          else quantize_run(x.ptr<int32_t>() + off, y.ptr<int8_t>() + off, l.inner, s, z);
        }
      }
    });
  }

 private:
  std::string where_;
  int64_t axis_;
};

// ---------------------------------------------------------------- DequantizeLinear
template <typename In>
void dequantize_run(const In* x, float* y, int64_t n, float scale, int64_t zero_point) {
  const int32_t zp = static_cast<int32_t>(zero_point);
  for (int64_t i = 0; i < n; ++i) y[i] = static_cast<float>(static_cast<int32_t>(x[i]) - zp) * scale;
}

class DequantizeLinearOp : public Op {
 public:
  explicit DequantizeLinearOp(const NodeDesc& node) : where_(node.where()), axis_(node.get_int("axis", 1)) {
    if (node.get_int("block_size", 0) != 0) fail("ERR_UNSUPPORTED_OP", where_ + ": blocked quantization (block_size) is not supported");
  }

  void infer(const std::vector<const Tensor*>& inputs, std::vector<Tensor>& outputs) override {
    const Tensor& x = op_args::required(inputs, 0, where_, "x");
    const Tensor& scale = op_args::required(inputs, 1, where_, "x_scale");
    const Tensor* zp = op_args::optional(inputs, 2);
    op_args::require_dtype(x, {DType::U8, DType::I8, DType::I32}, where_, "x");
    if (zp && zp->dtype != x.dtype)
      fail("ERR_DTYPE", where_ + ": x_zero_point is " + dtype_name(zp->dtype) + " but x is " + dtype_name(x.dtype));
    const QuantLayout l = layout_of(x, scale, zp, axis_, where_);
    if (zp && x.dtype == DType::I32)
      for (int64_t c = 0; c < l.channels; ++c)
        if (zero_point_at(zp, c) != 0) fail("ERR_SHAPE_MISMATCH", where_ + ": an int32 input needs a zero point of 0");
    if (outputs.size() != 1) fail("ERR_MODEL_FORMAT", where_ + ": expected one output");
    outputs[0].dtype = DType::F32;
    outputs[0].shape = x.shape;
  }

  void run(const std::vector<const Tensor*>& inputs, std::vector<Tensor*>& outputs, RunContext& ctx) override {
    const Tensor& x = *inputs[0];
    const Tensor& scale = *inputs[1];
    const Tensor* zp = op_args::optional(inputs, 2);
    const QuantLayout l = layout_of(x, scale, zp, axis_, where_);
    float* y = outputs[0]->ptr<float>();
    if (outputs[0]->size() == 0) return;
    const int64_t runs = l.outer * l.channels;
    broadcast::parallel_range(ctx, runs, std::max<int64_t>(1, (1 << 15) / l.inner), [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        const int64_t c = r % l.channels, off = r * l.inner;
        const float s = scale.ptr<float>()[c];
        const int64_t z = zero_point_at(zp, c);
        switch (x.dtype) {
          case DType::U8: dequantize_run(x.ptr<uint8_t>() + off, y + off, l.inner, s, z); break;
          case DType::I8: dequantize_run(x.ptr<int8_t>() + off, y + off, l.inner, s, z); break;
          default: dequantize_run(x.ptr<int32_t>() + off, y + off, l.inner, s, 0); break;
        }
      }
    });
  }

 private:
  std::string where_;
  int64_t axis_;
};

// ---------------------------------------------------------------- DynamicQuantizeLinear
// uint8 with the tensor's own range (onnxruntime's quantize_dynamic writes it before every
// MatMulInteger / ConvInteger): the range widened to include 0, scale = (max - min) / 255 (1 when
// the range is empty, as onnxruntime), zero point = round_half_to_even(clamp(-min / scale, 0, 255)),
// then y as QuantizeLinear with them. NaN inputs take no part in the range (comparisons with NaN
// are false) and quantize to 0 as in QuantizeLinear.
// quantize_run to uint8, compiled wide (the division and rounding per value are the same IEEE
// operations in every clone).
TERNION_WIDE_CLONES void quantize_u8_span(const float* x, uint8_t* y, int64_t n, float scale, int64_t zero_point) {
  quantize_run(x, y, n, scale, zero_point);
}

class DynamicQuantizeLinearOp : public Op {
 public:
  explicit DynamicQuantizeLinearOp(const NodeDesc& node) : where_(node.where()) {}

  void infer(const std::vector<const Tensor*>& inputs, std::vector<Tensor>& outputs) override {
    const Tensor& x = op_args::required(inputs, 0, where_, "x");
    op_args::require_dtype(x, {DType::F32}, where_, "x");
    if (outputs.size() != 3) fail("ERR_MODEL_FORMAT", where_ + ": expected three outputs (y, y_scale, y_zero_point)");
    outputs[0].dtype = DType::U8;
    outputs[0].shape = x.shape;
    outputs[1].dtype = DType::F32;
    outputs[1].shape = {};
    outputs[2].dtype = DType::U8;
    outputs[2].shape = {};
  }

  void run(const std::vector<const Tensor*>& inputs, std::vector<Tensor*>& outputs, RunContext& ctx) override {
    const Tensor& x = *inputs[0];
    const float* xp = x.ptr<float>();
    const int64_t n = x.size();
    float lo, hi;  // the range always includes 0
    ops::quant::min_max_span(xp, 0, n, lo, hi);
    // quant::params_from_range's formula, except that a range too wide for float keeps the
    // infinite scale the spec (and onnxruntime) give instead of falling back to 1.
    const float scale = hi == lo ? 1.0f : (hi - lo) / 255.0f;
    float zp = 0.0f - lo / scale;
    zp = zp > 0.0f ? zp : 0.0f;
    zp = zp < 255.0f ? zp : 255.0f;
    const int64_t z = static_cast<int64_t>(ops::quant::round_small(zp));
    *outputs[1]->ptr<float>() = scale;
    *outputs[2]->ptr<uint8_t>() = static_cast<uint8_t>(z);
    uint8_t* y = outputs[0]->ptr<uint8_t>();
    broadcast::parallel_range(ctx, n, 1 << 15, [&](int64_t b, int64_t e) { quantize_u8_span(xp + b, y + b, e - b, scale, z); });
  }

 private:
  std::string where_;
};

std::unique_ptr<Op> make_quantize(const BuildContext& bc) { return std::make_unique<QuantizeLinearOp>(bc.node); }
std::unique_ptr<Op> make_dynamic_quantize(const BuildContext& bc) { return std::make_unique<DynamicQuantizeLinearOp>(bc.node); }
std::unique_ptr<Op> make_dequantize(const BuildContext& bc) { return std::make_unique<DequantizeLinearOp>(bc.node); }

}  // namespace

namespace ops {
namespace quant {
// Running minima / maxima in lanes (a scalar reduction of min / max, or one over an array of
// lanes, does not vectorize), then the lanes and the tail. x < m ? x : m keeps m for NaN,
// exactly as minps does; min and max are exact in any order, so every width agrees.
template <typename V>
TERNION_LANES void min_max_span_lanes(const float* x, int64_t b, int64_t e, float& lo, float& hi) {
  typedef Lanes<V> L;
  V vlo = {}, vhi = {};
  int64_t i = b;
  for (; i + L::N <= e; i += L::N) {
    const V v = L::load(x + i);
    vlo = v < vlo ? v : vlo;
    vhi = v > vhi ? v : vhi;
  }
  float l = 0.0f, h = 0.0f;
  for (int j = 0; j < L::N; ++j) {
    l = vlo[j] < l ? vlo[j] : l;
    h = vhi[j] > h ? vhi[j] : h;
  }
  for (; i < e; ++i) {
    l = x[i] < l ? x[i] : l;
    h = x[i] > h ? x[i] : h;
  }
  lo = l;
  hi = h;
}
TERNION_LANE_WIDTHS(void, min_max_span, (const float* x, int64_t b, int64_t e, float& lo, float& hi), (x, b, e, lo, hi))
}  // namespace quant
}  // namespace ops

TERNION_REGISTER_OP(QuantizeLinear, make_quantize);
TERNION_REGISTER_OP(DequantizeLinear, make_dequantize);
TERNION_REGISTER_OP(DynamicQuantizeLinear, make_dynamic_quantize);

}  // namespace exec
}  // namespace ternion
