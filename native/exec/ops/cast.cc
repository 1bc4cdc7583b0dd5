// Cast between float32, int32, int64, int8, uint8 and bool, and CastLike (opset 15: the type of
// input 1, whose values are not read). Float to integer truncates toward
// zero (ONNX, C); NaN becomes 0 and values outside the target's range saturate, where C++
// would leave the result undefined. To bool: nonzero is true. Other element types (float16,
// double, string) are refused at load with ERR_DTYPE.
#include <cmath>
#include <limits>
#include <type_traits>

#include "exec/graph.h"
#include "exec/ops/broadcast.h"
#include "exec/ops/op-args.h"

namespace ternion {
namespace exec {
namespace {

template <typename To, typename From>
To convert(From v) {
  if constexpr (std::is_same<To, bool>::value) {
    return v != From(0);
  } else if constexpr (std::is_floating_point<From>::value && std::is_integral<To>::value) {
    if (v != v) return To(0);
    const double t = std::trunc(static_cast<double>(v));
    if (t <= static_cast<double>(std::numeric_limits<To>::lowest())) return std::numeric_limits<To>::lowest();
    if (t >= static_cast<double>(std::numeric_limits<To>::max())) return std::numeric_limits<To>::max();
    return static_cast<To>(t);
  } else {
    return static_cast<To>(v);  // integer narrowing wraps (two's complement)
  }
}

class CastOp : public Op {
 public:
  CastOp(const NodeDesc& node, bool like) : where_(node.where()), like_(like) {
    if (like) return;  // the target type comes from input 1 in infer()
    const int64_t to = node.get_int("to", -1);
    if (!op_args::dtype_from_onnx(to, to_))
      fail("ERR_DTYPE", where_ + ": casting to ONNX element type " + std::to_string(to) + " is not supported (float32, int32, int64, int8, uint8, bool are)");
  }

  void infer(const std::vector<const Tensor*>& inputs, std::vector<Tensor>& outputs) override {
    const Tensor& x = op_args::required(inputs, 0, where_, "input");
    if (outputs.size() != 1) fail("ERR_MODEL_FORMAT", where_ + ": expected one output");
    // run() converts to the output's type, so nothing here is kept between runs.
    outputs[0].dtype = like_ ? op_args::required(inputs, 1, where_, "target_type").dtype : to_;
    outputs[0].shape = x.shape;
  }

  void run(const std::vector<const Tensor*>& inputs, std::vector<Tensor*>& outputs, RunContext& ctx) override {
    const Tensor& x = *inputs[0];
    Tensor& y = *outputs[0];
    switch (x.dtype) {
      case DType::F32: return from<float>(ctx, x, y);
      case DType::I32: return from<int32_t>(ctx, x, y);
      case DType::I64: return from<int64_t>(ctx, x, y);
      case DType::I8: return from<int8_t>(ctx, x, y);
      case DType::U8: return from<uint8_t>(ctx, x, y);
      case DType::Bool: return from<uint8_t>(ctx, x, y);
    }
  }

 private:
  template <typename From>
  void from(const RunContext& ctx, const Tensor& x, Tensor& y) const {
    switch (y.dtype) {
      case DType::F32: return copy<From, float>(ctx, x, y);
      case DType::I32: return copy<From, int32_t>(ctx, x, y);
      case DType::I64: return copy<From, int64_t>(ctx, x, y);
      case DType::I8: return copy<From, int8_t>(ctx, x, y);
      case DType::U8: return copy<From, uint8_t>(ctx, x, y);
      case DType::Bool: return copy<From, bool>(ctx, x, y);
    }
  }

  template <typename From, typename To>
  void copy(const RunContext& ctx, const Tensor& x, Tensor& y) const {
    const From* in = x.ptr<From>();
    using Stored = typename std::conditional<std::is_same<To, bool>::value, uint8_t, To>::type;
    Stored* out = y.ptr<Stored>();
    broadcast::parallel_range(ctx, x.size(), 1 << 15, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) out[i] = static_cast<Stored>(convert<To>(in[i]));
    });
  }

  std::string where_;
  bool like_;
  DType to_ = DType::F32;
};

std::unique_ptr<Op> make_cast(const BuildContext& bc) { return std::make_unique<CastOp>(bc.node, false); }
std::unique_ptr<Op> make_cast_like(const BuildContext& bc) { return std::make_unique<CastOp>(bc.node, true); }

}  // namespace

TERNION_REGISTER_OP(Cast, make_cast);
TERNION_REGISTER_OP(CastLike, make_cast_like);

}  // namespace exec
}  // namespace ternion
