// Bit operations on integers: BitwiseAnd, BitwiseOr, BitwiseXor (opset 18, numpy broadcasting)
// and BitwiseNot over int8, uint8, int32 and int64; BitShift (opset 11, direction LEFT or RIGHT,
// broadcasting) over uint8, the one unsigned type the executor holds (the loader refuses uint16,
// uint32 and uint64 models). Both operands of a binary op must have the same type. A shift by
// the type's width or more gives 0, as shifting the bits out one at a time would.
#include <type_traits>

#include "exec/graph.h"
#include "exec/ops/broadcast.h"
#include "exec/ops/op-args.h"

namespace ternion {
namespace exec {
namespace {

enum class BitwiseKind { And, Or, Xor, ShiftLeft, ShiftRight };

class BitwiseBinaryOp : public Op {
 public:
  BitwiseBinaryOp(const NodeDesc& node, BitwiseKind kind) : where_(node.where()), kind_(kind) {
    if (node.outputs.size() != 1) fail("ERR_MODEL_FORMAT", where_ + ": expected one output");
  }

  void infer(const std::vector<const Tensor*>& inputs, std::vector<Tensor>& outputs) override {
    const bool shift = kind_ == BitwiseKind::ShiftLeft || kind_ == BitwiseKind::ShiftRight;
    const Tensor& a = op_args::required(inputs, 0, where_, shift ? "X" : "A");
    const Tensor& b = op_args::required(inputs, 1, where_, shift ? "Y" : "B");
    if (shift)
      op_args::require_dtype(a, {DType::U8}, where_, "X");
    else
      op_args::require_dtype(a, {DType::I8, DType::U8, DType::I32, DType::I64}, where_, "A");
    op_args::require_same_dtype(a, b, where_, shift ? "X" : "A", shift ? "Y" : "B");
    outputs[0].dtype = a.dtype;
    outputs[0].shape = broadcast::broadcast_shapes(a.shape, b.shape, where_);
  }

  void run(const std::vector<const Tensor*>& inputs, std::vector<Tensor*>& outputs, RunContext& ctx) override {
    const Tensor& a = *inputs[0];
    const Tensor& b = *inputs[1];
    Tensor& out = *outputs[0];
    if (out.size() == 0) return;
    const broadcast::BinaryPlan plan = broadcast::plan_binary(a.shape, b.shape, out.shape);
    switch (a.dtype) {
      case DType::I8: return apply<int8_t>(ctx, plan, a, b, out);
      case DType::U8: return apply<uint8_t>(ctx, plan, a, b, out);
      case DType::I32: return apply<int32_t>(ctx, plan, a, b, out);
      case DType::I64: return apply<int64_t>(ctx, plan, a, b, out);
      default: fail("ERR_INTERNAL", where_ + ": unexpected dtype " + dtype_name(a.dtype));
    }
  }

 private:
  template <typename T>
  void apply(const RunContext& ctx, const broadcast::BinaryPlan& plan, const Tensor& a, const Tensor& b, Tensor& out) const {
    const T* pa = a.ptr<T>();
    const T* pb = b.ptr<T>();
    T* po = out.ptr<T>();
    switch (kind_) {
      case BitwiseKind::And: return broadcast::run_binary(ctx, plan, pa, pb, po, [](T x, T y) { return T(x & y); });
      case BitwiseKind::Or: return broadcast::run_binary(ctx, plan, pa, pb, po, [](T x, T y) { return T(x | y); });
      case BitwiseKind::Xor: return broadcast::run_binary(ctx, plan, pa, pb, po, [](T x, T y) { return T(x ^ y); });
      case BitwiseKind::ShiftLeft:
      case BitwiseKind::ShiftRight:
        if constexpr (std::is_unsigned<T>::value) {
          constexpr unsigned bits = sizeof(T) * 8;
          if (kind_ == BitwiseKind::ShiftLeft)
            return broadcast::run_binary(ctx, plan, pa, pb, po, [](T x, T y) { return y >= bits ? T(0) : T(x << y); });
          return broadcast::run_binary(ctx, plan, pa, pb, po, [](T x, T y) { return y >= bits ? T(0) : T(x >> y); });
        }
        fail("ERR_INTERNAL", where_ + ": BitShift on a signed type");
    }
  }

  std::string where_;
  BitwiseKind kind_;
};

class BitwiseNotOp : public Op {
 public:
  explicit BitwiseNotOp(const NodeDesc& node) : where_(node.where()) {
    if (node.outputs.size() != 1) fail("ERR_MODEL_FORMAT", where_ + ": expected one output");
  }
  void infer(const std::vector<const Tensor*>& inputs, std::vector<Tensor>& outputs) override {
    const Tensor& x = op_args::required(inputs, 0, where_, "X");
    op_args::require_dtype(x, {DType::I8, DType::U8, DType::I32, DType::I64}, where_, "X");
    outputs[0].dtype = x.dtype;
    outputs[0].shape = x.shape;
  }
  void run(const std::vector<const Tensor*>& inputs, std::vector<Tensor*>& outputs, RunContext&) override {
    // The complement of every byte is the complement of every element, whatever its width.
    const uint8_t* in = inputs[0]->ptr<uint8_t>();
    uint8_t* out = outputs[0]->ptr<uint8_t>();
    for (size_t i = 0, n = outputs[0]->bytes(); i < n; ++i) out[i] = static_cast<uint8_t>(~in[i]);
  }

 private:
  std::string where_;
};

template <BitwiseKind K>
std::unique_ptr<Op> make_bitwise(const BuildContext& bc) { return std::make_unique<BitwiseBinaryOp>(bc.node, K); }

std::unique_ptr<Op> make_bit_shift(const BuildContext& bc) {
  const std::string direction = bc.node.get_string("direction", "");
  if (direction == "LEFT") return std::make_unique<BitwiseBinaryOp>(bc.node, BitwiseKind::ShiftLeft);
  if (direction == "RIGHT") return std::make_unique<BitwiseBinaryOp>(bc.node, BitwiseKind::ShiftRight);
  fail("ERR_MODEL_FORMAT", bc.node.where() + ": direction \"" + direction + "\" must be LEFT or RIGHT");
}

std::unique_ptr<Op> make_bitwise_not(const BuildContext& bc) { return std::make_unique<BitwiseNotOp>(bc.node); }

}  // namespace

TERNION_REGISTER_OP(BitwiseAnd, make_bitwise<BitwiseKind::And>);
TERNION_REGISTER_OP(BitwiseOr, make_bitwise<BitwiseKind::Or>);
TERNION_REGISTER_OP(BitwiseXor, make_bitwise<BitwiseKind::Xor>);
TERNION_REGISTER_OP(BitwiseNot, make_bitwise_not);
TERNION_REGISTER_OP(BitShift, make_bit_shift);

}  // namespace exec
}  // namespace ternion
