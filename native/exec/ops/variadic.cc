// Min, Max, Sum and Mean of one or more inputs, broadcast together (numpy rules). The first
// input is broadcast into the output, then each further one is folded in place. NaN wins Min
// and Max, as in onnxruntime.
#include <cmath>
#include <cstring>
#include <type_traits>

#include "exec/graph.h"
#include "exec/ops/broadcast.h"
#include "exec/ops/op-args.h"

namespace ternion {
namespace exec {
namespace {

enum class FoldKind { Min, Max, Sum, Mean };

class VariadicOp : public Op {
 public:
  VariadicOp(const NodeDesc& node, FoldKind kind) : where_(node.where()), kind_(kind) {}

  void infer(const std::vector<const Tensor*>& inputs, std::vector<Tensor>& outputs) override {
    const Tensor& first = op_args::required(inputs, 0, where_, "data_0");
    if (kind_ == FoldKind::Mean)
      op_args::require_dtype(first, {DType::F32}, where_, "data_0");
    else
      op_args::require_dtype(first, {DType::F32, DType::I32, DType::I64, DType::U8, DType::I8}, where_, "data_0");
    Shape shape = first.shape;
    for (size_t i = 1; i < inputs.size(); ++i) {
      const Tensor& t = op_args::required(inputs, i, where_, "data");
      if (t.dtype != first.dtype) fail("ERR_DTYPE", where_ + ": input " + std::to_string(i) + " is " + dtype_name(t.dtype) + " but input 0 is " + dtype_name(first.dtype));
      shape = broadcast::broadcast_shapes(shape, t.shape, where_);
    }
    if (outputs.size() != 1) fail("ERR_MODEL_FORMAT", where_ + ": expected one output");
    outputs[0].dtype = first.dtype;
    outputs[0].shape = shape;
  }

  void run(const std::vector<const Tensor*>& inputs, std::vector<Tensor*>& outputs, RunContext& ctx) override {
    switch (inputs[0]->dtype) {
      case DType::F32: return fold<float>(inputs, *outputs[0], ctx);
      case DType::I32: return fold<int32_t>(inputs, *outputs[0], ctx);
      case DType::I64: return fold<int64_t>(inputs, *outputs[0], ctx);
      case DType::U8: return fold<uint8_t>(inputs, *outputs[0], ctx);
      case DType::I8: return fold<int8_t>(inputs, *outputs[0], ctx);
      default: fail("ERR_DTYPE", where_ + ": unsupported dtype " + dtype_name(inputs[0]->dtype));
    }
  }

 private:
  template <typename T>
  void fold(const std::vector<const Tensor*>& inputs, Tensor& out, const RunContext& ctx) const {
    if (out.size() == 0) return;
    T* po = out.ptr<T>();
    // out = input 0 broadcast (as input 0 "+" nothing: the plan against a zero-filled scalar).
    {
      const Tensor& first = *inputs[0];
      const broadcast::BinaryPlan plan = broadcast::plan_binary(first.shape, Shape{}, out.shape);
      const T zero = T(0);
      broadcast::run_binary(ctx, plan, first.ptr<T>(), &zero, po, [](T a, T) { return a; });
    }
    for (size_t i = 1; i < inputs.size(); ++i) {
      const Tensor& t = *inputs[i];
      const broadcast::BinaryPlan plan = broadcast::plan_binary(out.shape, t.shape, out.shape);
      switch (kind_) {
        case FoldKind::Min:
          broadcast::run_binary(ctx, plan, static_cast<const T*>(po), t.ptr<T>(), po, [](T a, T b) { return a != a ? a : (b < a || b != b ? b : a); });
          break;
        case FoldKind::Max:
          broadcast::run_binary(ctx, plan, static_cast<const T*>(po), t.ptr<T>(), po, [](T a, T b) { return a != a ? a : (b > a || b != b ? b : a); });
          break;
        default:
          broadcast::run_binary(ctx, plan, static_cast<const T*>(po), t.ptr<T>(), po, [](T a, T b) { return static_cast<T>(a + b); });
      }
    }
    if (kind_ == FoldKind::Mean) {
      const T n = static_cast<T>(inputs.size());
      for (int64_t i = 0, m = out.size(); i < m; ++i) po[i] /= n;
    }
  }

  std::string where_;
  FoldKind kind_;
};

template <FoldKind K>
std::unique_ptr<Op> make_fold(const BuildContext& bc) { return std::make_unique<VariadicOp>(bc.node, K); }

}  // namespace

TERNION_REGISTER_OP(Min, make_fold<FoldKind::Min>);
TERNION_REGISTER_OP(Max, make_fold<FoldKind::Max>);
TERNION_REGISTER_OP(Sum, make_fold<FoldKind::Sum>);
TERNION_REGISTER_OP(Mean, make_fold<FoldKind::Mean>);

}  // namespace exec
}  // namespace ternion
