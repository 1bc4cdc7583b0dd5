// TopK (the k largest or smallest along an axis, with their int64 indices; equal values keep
// index order, as ONNX asks) and CumSum (inclusive or exclusive, forward or reversed).
#include <algorithm>
#include <numeric>

#include "exec/graph.h"
#include "exec/ops/op-args.h"

namespace ternion {
namespace exec {
namespace {

class TopKOp : public Op {
 public:
  explicit TopKOp(const NodeDesc& node)
      : where_(node.where()), axis_(node.get_int("axis", -1)), largest_(node.get_int("largest", 1) != 0) {}
  void infer(const std::vector<const Tensor*>& inputs, std::vector<Tensor>& outputs) override {
    const Tensor& x = op_args::required(inputs, 0, where_, "X");
    op_args::require_dtype(x, {DType::F32, DType::I32, DType::I64}, where_, "X");
    const std::vector<int64_t> k = op_args::read_ints(op_args::required(inputs, 1, where_, "K"), where_, "K");
    const int64_t axis = op_args::normalize_axis(axis_, static_cast<int64_t>(x.shape.size()), where_);
    if (k.size() != 1 || k[0] < 0 || k[0] > x.shape[static_cast<size_t>(axis)])
      fail("ERR_SHAPE_MISMATCH", where_ + ": K " + shape_str(k) + " must be one value in [0, " + std::to_string(x.shape[static_cast<size_t>(axis)]) + "]");
    if (outputs.size() != 2) fail("ERR_MODEL_FORMAT", where_ + ": expected two outputs (Values, Indices)");
    Shape s = x.shape;
    s[static_cast<size_t>(axis)] = k[0];
    outputs[0].dtype = x.dtype;
    outputs[0].shape = s;
    outputs[1].dtype = DType::I64;
    outputs[1].shape = s;
  }
  void run(const std::vector<const Tensor*>& inputs, std::vector<Tensor*>& outputs, RunContext&) override {
    switch (inputs[0]->dtype) {
      case DType::F32: return top<float>(*inputs[0], *outputs[0], *outputs[1]);
      case DType::I32: return top<int32_t>(*inputs[0], *outputs[0], *outputs[1]);
      default: return top<int64_t>(*inputs[0], *outputs[0], *outputs[1]);
    }
  }

 private:
  template <typename T>
  void top(const Tensor& x, Tensor& values, Tensor& indices) const {
    const size_t axis = static_cast<size_t>(op_args::normalize_axis(axis_, static_cast<int64_t>(x.shape.size()), where_));
    const int64_t outer = op_args::dims_product(x.shape, 0, axis), inner = op_args::dims_product(x.shape, axis + 1, x.shape.size());
    const int64_t len = x.shape[axis], k = values.shape[axis];
    std::vector<int64_t> order(static_cast<size_t>(len));
    const T* in = x.ptr<T>();
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < inner; ++i) {
        const T* p = in + o * len * inner + i;
        std::iota(order.begin(), order.end(), int64_t(0));
        const bool largest = largest_;
        std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int64_t a, int64_t b) {
          const T va = p[a * inner], vb = p[b * inner];
          // A total order even with NaN (taken as larger than any number), which partial_sort
          // needs: equal values keep index order.
          const bool na = va != va, nb = vb != vb;
          if (na || nb) return na && nb ? a < b : largest ? na : nb;
          if (va == vb) return a < b;
          return largest ? va > vb : va < vb;
        });
        for (int64_t j = 0; j < k; ++j) {
          const int64_t at = (o * k + j) * inner + i;
          values.ptr<T>()[at] = p[order[j] * inner];
          indices.ptr<int64_t>()[at] = order[j];
        }
      }
  }

  std::string where_;
  int64_t axis_;
  bool largest_;
};

class CumSumOp : public Op {
 public:
  explicit CumSumOp(const NodeDesc& node)
      : where_(node.where()), exclusive_(node.get_int("exclusive", 0) != 0), reverse_(node.get_int("reverse", 0) != 0) {}
  void infer(const std::vector<const Tensor*>& inputs, std::vector<Tensor>& outputs) override {
    const Tensor& x = op_args::required(inputs, 0, where_, "x");
    op_args::require_dtype(x, {DType::F32, DType::I32, DType::I64}, where_, "x");
    axis_of(inputs);
    if (outputs.size() != 1) fail("ERR_MODEL_FORMAT", where_ + ": expected one output");
    outputs[0].dtype = x.dtype;
    outputs[0].shape = x.shape;
  }
  void run(const std::vector<const Tensor*>& inputs, std::vector<Tensor*>& outputs, RunContext&) override {
    switch (inputs[0]->dtype) {
      case DType::F32: return scan<float>(*inputs[0], axis_of(inputs), *outputs[0]);
      case DType::I32: return scan<int32_t>(*inputs[0], axis_of(inputs), *outputs[0]);
      default: return scan<int64_t>(*inputs[0], axis_of(inputs), *outputs[0]);
    }
  }

 private:
  size_t axis_of(const std::vector<const Tensor*>& inputs) const {
    const Tensor& x = *inputs[0];
    const double a = op_args::read_scalar(op_args::required(inputs, 1, where_, "axis"), where_, "axis");
    return static_cast<size_t>(op_args::normalize_axis(static_cast<int64_t>(a), static_cast<int64_t>(x.shape.size()), where_));
  }
  template <typename T>
  void scan(const Tensor& x, size_t axis, Tensor& y) const {
    const int64_t outer = op_args::dims_product(x.shape, 0, axis), inner = op_args::dims_product(x.shape, axis + 1, x.shape.size());
    const int64_t len = x.shape[axis];
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < inner; ++i) {
        T acc = T(0);
        for (int64_t s = 0; s < len; ++s) {
          const int64_t j = reverse_ ? len - 1 - s : s;
          const int64_t at = (o * len + j) * inner + i;
          const T v = x.ptr<T>()[at];
          if (!exclusive_) acc = static_cast<T>(acc + v);
          y.ptr<T>()[at] = acc;
          if (exclusive_) acc = static_cast<T>(acc + v);
        }
      }
  }

  std::string where_;
  bool exclusive_, reverse_;
};

std::unique_ptr<Op> make_topk(const BuildContext& bc) { return std::make_unique<TopKOp>(bc.node); }
std::unique_ptr<Op> make_cumsum(const BuildContext& bc) { return std::make_unique<CumSumOp>(bc.node); }

}  // namespace

TERNION_REGISTER_OP(TopK, make_topk);
TERNION_REGISTER_OP(CumSum, make_cumsum);

}  // namespace exec
}  // namespace ternion
