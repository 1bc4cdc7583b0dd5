// Ops whose output size depends on the input's values, which infer() reads (the executor
// computes inputs before it), over every dtype:
//  - NonZero: the int64 coordinates [rank, count] of the elements that are not zero, in
//    row-major order (NaN is not zero; a scalar is read as a 1-D tensor of one element, so its
//    output is [1, 0 or 1], as numpy and onnxruntime give);
//  - Compress: the slices along `axis` (or the elements of the flattened input, without an axis)
//    whose entry of the bool `condition` is true. A condition shorter than the axis drops the
//    slices past its end; entries past the axis's end are not read (onnxruntime's reading).
#include <algorithm>
#include <cstring>

#include "exec/graph.h"
#include "exec/ops/op-args.h"

namespace ternion {
namespace exec {
namespace {

// Whether element i of t is nonzero (float -0 is zero; NaN is not).
bool nonzero_at(const Tensor& t, int64_t i) {
  switch (t.dtype) {
    case DType::F32: return t.ptr<float>()[i] != 0.0f;
    case DType::I32: return t.ptr<int32_t>()[i] != 0;
    case DType::I64: return t.ptr<int64_t>()[i] != 0;
    case DType::I8: case DType::U8: case DType::Bool: return t.ptr<uint8_t>()[i] != 0;
  }
  return false;
}

class NonZeroOp : public Op {
 public:
  explicit NonZeroOp(const NodeDesc& node) : where_(node.where()) {}

  void infer(const std::vector<const Tensor*>& inputs, std::vector<Tensor>& outputs) override {
    const Tensor& x = op_args::required(inputs, 0, where_, "X");
    int64_t count = 0;
    for (int64_t i = 0, n = x.size(); i < n; ++i) count += nonzero_at(x, i);
    if (outputs.size() != 1) fail("ERR_MODEL_FORMAT", where_ + ": expected one output");
    outputs[0].dtype = DType::I64;
    outputs[0].shape = {std::max<int64_t>(static_cast<int64_t>(x.shape.size()), 1), count};
  }

  void run(const std::vector<const Tensor*>& inputs, std::vector<Tensor*>& outputs, RunContext&) override {
    const Tensor& x = *inputs[0];
    Tensor& y = *outputs[0];
    const int64_t count = y.shape[1];
    const size_t rank = x.shape.size();
    int64_t* out = y.ptr<int64_t>();
    std::vector<int64_t> pos(rank, 0);
    int64_t k = 0;
    for (int64_t i = 0, n = x.size(); i < n; ++i) {
      if (nonzero_at(x, i)) {
        if (rank == 0) out[k] = 0;
        for (size_t d = 0; d < rank; ++d) out[d * count + k] = pos[d];
        ++k;
      }
      for (size_t d = rank; d-- > 0;) {
        if (++pos[d] < x.shape[d]) break;
        pos[d] = 0;
      }
    }
  }

 private:
  std::string where_;
};

class CompressOp : public Op {
 public:
  explicit CompressOp(const NodeDesc& node)
      : where_(node.where()), has_axis_(node.has("axis")), axis_(node.get_int("axis", 0)) {}

  void infer(const std::vector<const Tensor*>& inputs, std::vector<Tensor>& outputs) override {
    const Tensor& x = op_args::required(inputs, 0, where_, "input");
    const Layout l = layout(inputs);
    if (outputs.size() != 1) fail("ERR_MODEL_FORMAT", where_ + ": expected one output");
    outputs[0].dtype = x.dtype;
    if (has_axis_) {
      outputs[0].shape = x.shape;
      outputs[0].shape[l.axis] = l.kept;
    } else {
      outputs[0].shape = {l.kept};
    }
  }

  void run(const std::vector<const Tensor*>& inputs, std::vector<Tensor*>& outputs, RunContext&) override {
    const Tensor& x = *inputs[0];
    const Tensor& condition = *inputs[1];
    const Layout l = layout(inputs);
    const uint8_t* keep = condition.ptr<uint8_t>();
    const size_t block = static_cast<size_t>(l.inner) * dtype_size(x.dtype);
    const char* src = x.ptr<char>();
    char* dst = outputs[0]->ptr<char>();
    for (int64_t o = 0; o < l.outer; ++o)
      for (int64_t k = 0; k < l.read; ++k)
        if (keep[k]) {
          std::memcpy(dst, src + (o * l.length + k) * static_cast<int64_t>(block), block);
          dst += block;
        }
  }

 private:
  // x as [outer, length, inner] along the compressed axis (the flattened input: [1, size, 1]);
  // `read` condition entries apply, `kept` of them true.
  struct Layout {
    size_t axis = 0;
    int64_t outer = 1, length = 0, inner = 1, read = 0, kept = 0;
  };

  Layout layout(const std::vector<const Tensor*>& inputs) const {
    const Tensor& x = op_args::required(inputs, 0, where_, "input");
    const Tensor& condition = op_args::required(inputs, 1, where_, "condition");
    op_args::require_dtype(condition, {DType::Bool}, where_, "condition");
    if (condition.shape.size() != 1) fail("ERR_SHAPE_MISMATCH", where_ + ": condition must be 1-D, got shape " + shape_str(condition.shape));
    Layout l;
    if (has_axis_) {
      const int64_t rank = static_cast<int64_t>(x.shape.size());
      if (rank == 0) fail("ERR_SHAPE_MISMATCH", where_ + ": a scalar input has no axis to compress");
      l.axis = static_cast<size_t>(op_args::normalize_axis(axis_, rank, where_));
      l.outer = op_args::dims_product(x.shape, 0, l.axis);
      l.length = x.shape[l.axis];
      l.inner = op_args::dims_product(x.shape, l.axis + 1, x.shape.size());
    } else {
      l.length = x.size();
    }
    l.read = std::min(l.length, condition.shape[0]);
    const uint8_t* keep = condition.ptr<uint8_t>();
    for (int64_t k = 0; k < l.read; ++k) l.kept += keep[k] != 0;
    return l;
  }

  std::string where_;
  bool has_axis_;
  int64_t axis_;
};

std::unique_ptr<Op> make_non_zero(const BuildContext& bc) { return std::make_unique<NonZeroOp>(bc.node); }
std::unique_ptr<Op> make_compress(const BuildContext& bc) { return std::make_unique<CompressOp>(bc.node); }

}  // namespace

TERNION_REGISTER_OP(NonZero, make_non_zero);
TERNION_REGISTER_OP(Compress, make_compress);

}  // namespace exec
}  // namespace ternion
