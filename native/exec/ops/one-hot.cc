// OneHot(indices, depth, values): a new axis of `depth` classes inserted at `axis` (default -1,
// the last), holding values[1] (on) where the class equals the index and values[0] (off)
// elsewhere. Indices and depth may be of any numeric type (floats are truncated, as a cast to
// int64 would); the output takes the type of `values`. An index outside the range gives a line
// of all off values, as ONNX says: the range is [-depth, depth - 1] from opset 11 on (negative
// indices count from the end) and [0, depth - 1] in opset 9 and 10. The output's shape depends on
// depth's value, which infer() reads.
#include <cmath>
#include <cstring>
#include <sstream>

#include "exec/graph.h"
#include "exec/ops/op-args.h"

namespace ternion {
namespace exec {
namespace {

// Element i of a numeric tensor as double.
double number_at(const Tensor& t, int64_t i) {
  switch (t.dtype) {
    case DType::F32: return t.ptr<float>()[i];
    case DType::I32: return t.ptr<int32_t>()[i];
    case DType::I64: return static_cast<double>(t.ptr<int64_t>()[i]);
    case DType::I8: return t.ptr<int8_t>()[i];
    case DType::U8: case DType::Bool: return t.ptr<uint8_t>()[i];
  }
  return 0;
}

class OneHotOp : public Op {
 public:
  explicit OneHotOp(const NodeDesc& node)
      : where_(node.where()), axis_(node.get_int("axis", -1)), negative_indices_(node.opset >= 11) {}

  void infer(const std::vector<const Tensor*>& inputs, std::vector<Tensor>& outputs) override {
    const Tensor& indices = op_args::required(inputs, 0, where_, "indices");
    const Tensor& values = op_args::required(inputs, 2, where_, "values");
    op_args::require_dtype(indices, {DType::F32, DType::I32, DType::I64, DType::I8, DType::U8}, where_, "indices");
    if (values.size() != 2) fail("ERR_SHAPE_MISMATCH", where_ + ": values must hold two elements (off, on), got shape " + shape_str(values.shape));
    const int64_t depth = read_depth(inputs);
    const int64_t rank = static_cast<int64_t>(indices.shape.size());
    const int64_t axis = op_args::normalize_axis(axis_, rank + 1, where_);
    if (outputs.size() != 1) fail("ERR_MODEL_FORMAT", where_ + ": expected one output");
    Shape out = indices.shape;
    out.insert(out.begin() + axis, depth);
    shape_size(out);
    outputs[0].dtype = values.dtype;
    outputs[0].shape = out;
  }

  void run(const std::vector<const Tensor*>& inputs, std::vector<Tensor*>& outputs, RunContext&) override {
    const Tensor& indices = *inputs[0];
    const Tensor& values = *inputs[2];
    Tensor& y = *outputs[0];
    const int64_t depth = read_depth(inputs);
    const size_t axis = static_cast<size_t>(op_args::normalize_axis(axis_, static_cast<int64_t>(indices.shape.size()) + 1, where_));
    const int64_t inner = op_args::dims_product(indices.shape, axis, indices.shape.size());
    const size_t es = dtype_size(values.dtype);
    const char* off = values.ptr<char>();
    const char* on = off + es;
    char* out = y.ptr<char>();
    for (int64_t i = 0, n = y.size(); i < n; ++i) std::memcpy(out + i * es, off, es);
    for (int64_t i = 0, n = indices.size(); i < n; ++i) {
      const double v = std::trunc(number_at(indices, i));
      const double low = negative_indices_ ? -static_cast<double>(depth) : 0.0;
      if (!(v >= low && v < static_cast<double>(depth))) continue;  // NaN included
      const int64_t cls = v < 0 ? static_cast<int64_t>(v) + depth : static_cast<int64_t>(v);
      // Index i is (outer o, inner j) of indices: its class sits at [o][cls][j] of the output.
      const int64_t o = i / inner, j = i % inner;
      std::memcpy(out + ((o * depth + cls) * inner + j) * static_cast<int64_t>(es), on, es);
    }
  }

 private:
  int64_t read_depth(const std::vector<const Tensor*>& inputs) const {
    const Tensor& d = op_args::required(inputs, 1, where_, "depth");
    op_args::require_dtype(d, {DType::F32, DType::I32, DType::I64, DType::I8, DType::U8}, where_, "depth");
    if (d.size() != 1) fail("ERR_SHAPE_MISMATCH", where_ + ": depth must hold one value, got shape " + shape_str(d.shape));
    const double v = std::trunc(number_at(d, 0));
    if (!(v >= 1 && v <= static_cast<double>(int64_t(1) << 40))) {
      std::ostringstream text;
      text << number_at(d, 0);
      fail("ERR_INVALID_ARGUMENT", where_ + ": depth " + text.str() + " must be a positive number of classes");
    }
    return static_cast<int64_t>(v);
  }

  std::string where_;
  int64_t axis_;
  bool negative_indices_;
};

std::unique_ptr<Op> make_one_hot(const BuildContext& bc) { return std::make_unique<OneHotOp>(bc.node); }

}  // namespace

TERNION_REGISTER_OP(OneHot, make_one_hot);

}  // namespace exec
}  // namespace ternion
