// Add, Sub, Mul, Div with numpy multidirectional broadcasting over float32, int32, int64, uint8
// and int8. Integer arithmetic wraps (two's complement) instead of overflowing; integer Div
// truncates toward zero, as C, onnxruntime and ONNX's reference (numpy divide cast back to the
// integer type) do, and refuses a zero divisor rather than trapping.
#include <type_traits>

#include "exec/graph.h"
#include "exec/ops/broadcast.h"
#include "exec/ops/op-args.h"

namespace ternion {
namespace exec {
namespace {

enum class BinaryKind { Add, Sub, Mul, Div };

// Wrapping integer arithmetic: computed in the unsigned type, where overflow is defined.
template <typename T, bool = std::is_floating_point<T>::value> struct WideOf { using type = T; };
template <typename T> struct WideOf<T, false> { using type = std::make_unsigned_t<T>; };
template <typename T> using Wide = typename WideOf<T>::type;

template <typename T> struct AddFn {
  T operator()(T a, T b) const { return static_cast<T>(static_cast<Wide<T>>(a) + static_cast<Wide<T>>(b)); }
};
template <typename T> struct SubFn {
  T operator()(T a, T b) const { return static_cast<T>(static_cast<Wide<T>>(a) - static_cast<Wide<T>>(b)); }
};
template <typename T> struct MulFn {
  T operator()(T a, T b) const { return static_cast<T>(static_cast<Wide<T>>(a) * static_cast<Wide<T>>(b)); }
};
template <typename T> struct DivFn {
  T operator()(T a, T b) const {
    if constexpr (std::is_floating_point<T>::value) {
      return a / b;
    } else {
      // INT_MIN / -1 traps on x86: negate with wrap-around instead. (b != 0 is checked before.)
      if (std::is_signed<T>::value && b == static_cast<T>(-1)) return static_cast<T>(Wide<T>(0) - static_cast<Wide<T>>(a));
      return static_cast<T>(a / b);
    }
  }
};

class BinaryOp : public Op {
 public:
  BinaryOp(const NodeDesc& node, BinaryKind kind) : where_(node.where()), kind_(kind) {
    // Before opset 7, B broadcast only with broadcast=1, aligned at `axis` (default: trailing).
    if (node.opset > 0 && node.opset < 7 && node.get_int("broadcast", 0) != 0 && node.has("axis"))
      legacy_axis_ = node.get_int("axis", -1);
  }

  void infer(const std::vector<const Tensor*>& inputs, std::vector<Tensor>& outputs) override {
    const Tensor& a = op_args::required(inputs, 0, where_, "A");
    const Tensor& b = op_args::required(inputs, 1, where_, "B");
    op_args::require_dtype(a, {DType::F32, DType::I32, DType::I64, DType::U8, DType::I8}, where_, "A");
    op_args::require_same_dtype(a, b, where_, "A", "B");
    if (outputs.size() != 1) fail("ERR_MODEL_FORMAT", where_ + ": expected one output");
    outputs[0].dtype = a.dtype;
    outputs[0].shape = broadcast::broadcast_shapes(a.shape, shape_of_b(a, b), where_);
  }

  void run(const std::vector<const Tensor*>& inputs, std::vector<Tensor*>& outputs, RunContext& ctx) override {
    const Tensor& a = *inputs[0];
    const Tensor& b = *inputs[1];
    Tensor& out = *outputs[0];
    if (out.size() == 0) return;
    const broadcast::BinaryPlan plan = broadcast::plan_binary(a.shape, shape_of_b(a, b), out.shape);
    switch (a.dtype) {
      case DType::F32: return compute<float>(ctx, plan, a, b, out);
      case DType::I32: return compute<int32_t>(ctx, plan, a, b, out);
      case DType::I64: return compute<int64_t>(ctx, plan, a, b, out);
      case DType::U8: return compute<uint8_t>(ctx, plan, a, b, out);
      case DType::I8: return compute<int8_t>(ctx, plan, a, b, out);
      default: fail("ERR_DTYPE", where_ + ": unsupported dtype " + dtype_name(a.dtype));
    }
  }

 private:
  // B's shape as numpy broadcasting should see it (differs only for legacy axis broadcasting).
  Shape shape_of_b(const Tensor& a, const Tensor& b) const {
    if (legacy_axis_ == kNoLegacyAxis) return b.shape;
    const int64_t rank = static_cast<int64_t>(a.shape.size());
    const int64_t axis = op_args::normalize_axis(legacy_axis_, rank, where_);
    if (axis + static_cast<int64_t>(b.shape.size()) > rank)
      fail("ERR_SHAPE_MISMATCH", where_ + ": B of shape " + shape_str(b.shape) + " does not fit A " + shape_str(a.shape) +
                                     " at axis " + std::to_string(legacy_axis_));
    Shape s = b.shape;
    s.resize(static_cast<size_t>(rank - axis), 1);  // trailing ones align B at `axis`
    return s;
  }

  template <typename T>
  void compute(const RunContext& ctx, const broadcast::BinaryPlan& plan, const Tensor& a, const Tensor& b, Tensor& out) {
    const T* pa = a.ptr<T>();
    const T* pb = b.ptr<T>();
    T* po = out.ptr<T>();
    switch (kind_) {
      case BinaryKind::Add: return broadcast::run_binary(ctx, plan, pa, pb, po, AddFn<T>());
      case BinaryKind::Sub: return broadcast::run_binary(ctx, plan, pa, pb, po, SubFn<T>());
      case BinaryKind::Mul: return broadcast::run_binary(ctx, plan, pa, pb, po, MulFn<T>());
      case BinaryKind::Div:
        if constexpr (!std::is_floating_point<T>::value)
          for (int64_t i = 0, n = b.size(); i < n; ++i)
            if (pb[i] == 0) fail("ERR_INVALID_ARGUMENT", where_ + ": integer division by zero (B[" + std::to_string(i) + "] is 0)");
        return broadcast::run_binary(ctx, plan, pa, pb, po, DivFn<T>());
    }
  }

  static constexpr int64_t kNoLegacyAxis = INT64_MIN;
  std::string where_;
  BinaryKind kind_;
  int64_t legacy_axis_ = kNoLegacyAxis;
};

std::unique_ptr<Op> make_add(const BuildContext& bc) { return std::make_unique<BinaryOp>(bc.node, BinaryKind::Add); }
std::unique_ptr<Op> make_sub(const BuildContext& bc) { return std::make_unique<BinaryOp>(bc.node, BinaryKind::Sub); }
std::unique_ptr<Op> make_mul(const BuildContext& bc) { return std::make_unique<BinaryOp>(bc.node, BinaryKind::Mul); }
std::unique_ptr<Op> make_div(const BuildContext& bc) { return std::make_unique<BinaryOp>(bc.node, BinaryKind::Div); }

}  // namespace

TERNION_REGISTER_OP(Add, make_add);
TERNION_REGISTER_OP(Sub, make_sub);
TERNION_REGISTER_OP(Mul, make_mul);
TERNION_REGISTER_OP(Div, make_div);

}  // namespace exec
}  // namespace ternion
