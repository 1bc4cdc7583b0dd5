// Comparisons (Equal, Less, Greater, LessOrEqual, GreaterOrEqual) into bool tensors, And, Or,
// Xor, Not, and
// Where(condition, X, Y) with three-way numpy broadcasting: the mask arithmetic exporters write
// for attention, padding and shape checks.
#include <cstring>
#include <type_traits>

#include "exec/graph.h"
#include "exec/ops/broadcast.h"
#include "exec/ops/op-args.h"

namespace ternion {
namespace exec {
namespace {

enum class CompareKind { Equal, Less, Greater, LessOrEqual, GreaterOrEqual, And, Or, Xor };

class CompareOp : public Op {
 public:
  CompareOp(const NodeDesc& node, CompareKind kind) : where_(node.where()), kind_(kind) {}

  void infer(const std::vector<const Tensor*>& inputs, std::vector<Tensor>& outputs) override {
    const Tensor& a = op_args::required(inputs, 0, where_, "A");
    const Tensor& b = op_args::required(inputs, 1, where_, "B");
    if (kind_ == CompareKind::And || kind_ == CompareKind::Or || kind_ == CompareKind::Xor)
      op_args::require_dtype(a, {DType::Bool}, where_, "A");
    else
      op_args::require_dtype(a, {DType::F32, DType::I32, DType::I64, DType::U8, DType::I8, DType::Bool}, where_, "A");
    op_args::require_same_dtype(a, b, where_, "A", "B");
    if (outputs.size() != 1) fail("ERR_MODEL_FORMAT", where_ + ": expected one output");
    outputs[0].dtype = DType::Bool;
    outputs[0].shape = broadcast::broadcast_shapes(a.shape, b.shape, where_);
  }

  void run(const std::vector<const Tensor*>& inputs, std::vector<Tensor*>& outputs, RunContext& ctx) override {
    const Tensor& a = *inputs[0];
    const Tensor& b = *inputs[1];
    Tensor& out = *outputs[0];
    if (out.size() == 0) return;
    const broadcast::BinaryPlan plan = broadcast::plan_binary(a.shape, b.shape, out.shape);
    switch (a.dtype) {
      case DType::F32: return compare<float>(ctx, plan, a, b, out);
      case DType::I32: return compare<int32_t>(ctx, plan, a, b, out);
      case DType::I64: return compare<int64_t>(ctx, plan, a, b, out);
      case DType::I8: return compare<int8_t>(ctx, plan, a, b, out);
      case DType::U8: case DType::Bool: return compare<uint8_t>(ctx, plan, a, b, out);
    }
  }

 private:
  template <typename T>
  void compare(const RunContext& ctx, const broadcast::BinaryPlan& plan, const Tensor& a, const Tensor& b, Tensor& out) const {
    const T* pa = a.ptr<T>();
    const T* pb = b.ptr<T>();
    uint8_t* po = out.ptr<uint8_t>();
    switch (kind_) {
      case CompareKind::Equal: return broadcast::run_binary(ctx, plan, pa, pb, po, [](T x, T y) { return uint8_t(x == y); });
      case CompareKind::Less: return broadcast::run_binary(ctx, plan, pa, pb, po, [](T x, T y) { return uint8_t(x < y); });
      case CompareKind::Greater: return broadcast::run_binary(ctx, plan, pa, pb, po, [](T x, T y) { return uint8_t(x > y); });
      case CompareKind::LessOrEqual: return broadcast::run_binary(ctx, plan, pa, pb, po, [](T x, T y) { return uint8_t(x <= y); });
      case CompareKind::GreaterOrEqual: return broadcast::run_binary(ctx, plan, pa, pb, po, [](T x, T y) { return uint8_t(x >= y); });
      case CompareKind::And: return broadcast::run_binary(ctx, plan, pa, pb, po, [](T x, T y) { return uint8_t(x && y); });
      case CompareKind::Or: return broadcast::run_binary(ctx, plan, pa, pb, po, [](T x, T y) { return uint8_t(x || y); });
      case CompareKind::Xor: return broadcast::run_binary(ctx, plan, pa, pb, po, [](T x, T y) { return uint8_t(!x != !y); });
    }
  }

  std::string where_;
  CompareKind kind_;
};

class NotOp : public Op {
 public:
  explicit NotOp(const NodeDesc& node) : where_(node.where()) {}
  void infer(const std::vector<const Tensor*>& inputs, std::vector<Tensor>& outputs) override {
    const Tensor& x = op_args::required(inputs, 0, where_, "X");
    op_args::require_dtype(x, {DType::Bool}, where_, "X");
    if (outputs.size() != 1) fail("ERR_MODEL_FORMAT", where_ + ": expected one output");
    outputs[0].dtype = DType::Bool;
    outputs[0].shape = x.shape;
  }
  void run(const std::vector<const Tensor*>& inputs, std::vector<Tensor*>& outputs, RunContext&) override {
    const uint8_t* in = inputs[0]->ptr<uint8_t>();
    uint8_t* out = outputs[0]->ptr<uint8_t>();
    for (int64_t i = 0, n = outputs[0]->size(); i < n; ++i) out[i] = in[i] ? 0 : 1;
  }

 private:
  std::string where_;
};

class WhereOp : public Op {
 public:
  explicit WhereOp(const NodeDesc& node) : where_(node.where()) {}

  void infer(const std::vector<const Tensor*>& inputs, std::vector<Tensor>& outputs) override {
    const Tensor& c = op_args::required(inputs, 0, where_, "condition");
    const Tensor& x = op_args::required(inputs, 1, where_, "X");
    const Tensor& y = op_args::required(inputs, 2, where_, "Y");
    op_args::require_dtype(c, {DType::Bool}, where_, "condition");
    op_args::require_same_dtype(x, y, where_, "X", "Y");
    if (outputs.size() != 1) fail("ERR_MODEL_FORMAT", where_ + ": expected one output");
    outputs[0].dtype = x.dtype;
    outputs[0].shape = broadcast::broadcast_shapes(broadcast::broadcast_shapes(c.shape, x.shape, where_), y.shape, where_);
  }

  void run(const std::vector<const Tensor*>& inputs, std::vector<Tensor*>& outputs, RunContext&) override {
    const Tensor& c = *inputs[0];
    const Tensor& x = *inputs[1];
    const Tensor& y = *inputs[2];
    Tensor& out = *outputs[0];
    const int64_t n = out.size();
    if (n == 0) return;
    const size_t es = dtype_size(out.dtype), rank = out.shape.size();
    const auto sc = broadcast::broadcast_strides(c.shape, out.shape), sx = broadcast::broadcast_strides(x.shape, out.shape),
               sy = broadcast::broadcast_strides(y.shape, out.shape);
    const uint8_t* pc = c.ptr<uint8_t>();
    const char* px = x.ptr<char>();
    const char* py = y.ptr<char>();
    char* po = out.ptr<char>();
    std::vector<int64_t> idx(rank, 0);
    int64_t oc = 0, ox = 0, oy = 0;
    for (int64_t i = 0; i < n; ++i) {
      std::memcpy(po + i * es, pc[oc] ? px + ox * es : py + oy * es, es);
      for (size_t k = rank; k-- > 0;) {
        oc += sc[k], ox += sx[k], oy += sy[k];
        if (++idx[k] < out.shape[k]) break;
        oc -= idx[k] * sc[k], ox -= idx[k] * sx[k], oy -= idx[k] * sy[k];
        idx[k] = 0;
      }
    }
  }

 private:
  std::string where_;
};

template <CompareKind K>
std::unique_ptr<Op> make_compare(const BuildContext& bc) { return std::make_unique<CompareOp>(bc.node, K); }
std::unique_ptr<Op> make_not(const BuildContext& bc) { return std::make_unique<NotOp>(bc.node); }
std::unique_ptr<Op> make_where(const BuildContext& bc) { return std::make_unique<WhereOp>(bc.node); }

}  // namespace

TERNION_REGISTER_OP(Equal, make_compare<CompareKind::Equal>);
TERNION_REGISTER_OP(Less, make_compare<CompareKind::Less>);
TERNION_REGISTER_OP(Greater, make_compare<CompareKind::Greater>);
TERNION_REGISTER_OP(LessOrEqual, make_compare<CompareKind::LessOrEqual>);
TERNION_REGISTER_OP(GreaterOrEqual, make_compare<CompareKind::GreaterOrEqual>);
TERNION_REGISTER_OP(And, make_compare<CompareKind::And>);
TERNION_REGISTER_OP(Or, make_compare<CompareKind::Or>);
TERNION_REGISTER_OP(Xor, make_compare<CompareKind::Xor>);
TERNION_REGISTER_OP(Not, make_not);
TERNION_REGISTER_OP(Where, make_where);

}  // namespace exec
}  // namespace ternion
