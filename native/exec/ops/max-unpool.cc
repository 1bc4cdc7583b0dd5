// MaxUnpool (opset 9 / 11): the partial inverse of MaxPool. X float32 [N, C, D1, ...] holds
// pooled values and I int64 (X's shape) the flat index of each one in the output, as MaxPool's
// Indices output gives them (row-major over the whole [N, C, spatial...] tensor). Y is zero
// except Y.flat[I[i]] = X[i]; when two values land on one index the later one wins (as in
// onnxruntime).
// Y's shape is the optional int64 output_shape input (one value per dim of X), else
// [N, C, (D_i - 1) * strides[i] + kernel_shape[i] - pads_begin[i] - pads_end[i] ...].
// With output_shape, the indices still address Y itself, as onnxruntime reads them (its PR #2193):
// MaxPool's indices address its input, so MaxUnpool(y, I, Shape(x)) restores x's layout even when
// pooling dropped x's last rows. The spec only says output_shape makes pads "auto generated"
// (onnx/onnx#2726 calls it ambiguous); ONNX 1.12's test_maxunpool_export_with_output_shape
// instead reads the indices in the shape inferred without output_shape and pads that at the end,
// and so fails here as it does on onnxruntime.
// Every index is checked against Y's size in infer(), so a bad one is an error, not a stray write.
#include <algorithm>
#include <cstring>
#include <vector>

#include "exec/graph.h"
#include "exec/ops/op-args.h"

namespace ternion {
namespace exec {
namespace {

class MaxUnpoolOp : public Op {
 public:
  explicit MaxUnpoolOp(const NodeDesc& node)
      : where_(node.where()), kernel_(node.get_ints("kernel_shape")), strides_(node.get_ints("strides")), pads_(node.get_ints("pads")) {
    const size_t nd = kernel_.size();
    if (nd == 0) fail("ERR_MODEL_FORMAT", where_ + ": attribute kernel_shape is required");
    if (strides_.empty()) strides_.assign(nd, 1);
    if (pads_.empty()) pads_.assign(nd * 2, 0);
    if (strides_.size() != nd || pads_.size() != nd * 2)
      fail("ERR_MODEL_FORMAT", where_ + ": kernel_shape " + op_args::ints_str(kernel_) + ", strides " + op_args::ints_str(strides_) +
                                       " and pads " + op_args::ints_str(pads_) + " disagree in their number of spatial dims");
    for (size_t i = 0; i < nd; ++i)
      if (kernel_[i] < 1 || strides_[i] < 1 || pads_[i] < 0 || pads_[i + nd] < 0)
        fail("ERR_MODEL_FORMAT", where_ + ": kernel_shape and strides must be positive and pads not negative, got kernel_shape " +
                                         op_args::ints_str(kernel_) + ", strides " + op_args::ints_str(strides_) + ", pads " +
                                         op_args::ints_str(pads_));
  }

  void infer(const std::vector<const Tensor*>& inputs, std::vector<Tensor>& outputs) override {
    const Tensor& x = op_args::required(inputs, 0, where_, "X");
    const Tensor& indices = op_args::required(inputs, 1, where_, "I");
    op_args::require_dtype(x, {DType::F32}, where_, "X");
    op_args::require_dtype(indices, {DType::I64}, where_, "I");
    const size_t nd = kernel_.size();
    if (x.shape.size() != nd + 2)
      fail("ERR_SHAPE_MISMATCH", where_ + ": X " + shape_str(x.shape) + " must be [N, C] and " + std::to_string(nd) +
                                     " spatial dims, as kernel_shape " + op_args::ints_str(kernel_) + " has");
    if (indices.shape != x.shape)
      fail("ERR_SHAPE_MISMATCH", where_ + ": I " + shape_str(indices.shape) + " must have X's shape " + shape_str(x.shape));
    Shape y{x.shape[0], x.shape[1]};
    const Tensor* given = op_args::optional(inputs, 2);
    for (size_t i = 0; i < nd && !given; ++i) {
      const int64_t d = (x.shape[i + 2] - 1) * strides_[i] + kernel_[i] - pads_[i] - pads_[i + nd];
      if (d < 1)
        fail("ERR_SHAPE_MISMATCH", where_ + ": X " + shape_str(x.shape) + " with kernel_shape " + op_args::ints_str(kernel_) + ", strides " +
                                       op_args::ints_str(strides_) + " and pads " + op_args::ints_str(pads_) + " gives output dim " +
                                       std::to_string(d) + " on spatial axis " + std::to_string(i));
      y.push_back(d);
    }
    if (given) {
      op_args::require_dtype(*given, {DType::I64}, where_, "output_shape");
      const std::vector<int64_t> shape = op_args::read_ints(*given, where_, "output_shape");
      if (shape.size() != x.shape.size())
        fail("ERR_SHAPE_MISMATCH", where_ + ": output_shape " + op_args::ints_str(shape) + " must have one value per dim of X " + shape_str(x.shape));
      for (int64_t d : shape)
        if (d < 0) fail("ERR_INVALID_ARGUMENT", where_ + ": output_shape " + op_args::ints_str(shape) + " has a negative dim");
      y = shape;
    }
    const int64_t size = shape_size(y);
    const int64_t* idx = indices.ptr<int64_t>();
    for (int64_t i = 0, n = indices.size(); i < n; ++i)
      if (idx[i] < 0 || idx[i] >= size)
        fail("ERR_INVALID_ARGUMENT", where_ + ": I[" + std::to_string(i) + "] = " + std::to_string(idx[i]) +
                                         " is outside the output " + shape_str(y) + " of " + std::to_string(size) + " elements");
    if (outputs.size() != 1) fail("ERR_MODEL_FORMAT", where_ + ": expected one output");
    outputs[0].dtype = DType::F32;
    outputs[0].shape = y;
  }

  void run(const std::vector<const Tensor*>& inputs, std::vector<Tensor*>& outputs, RunContext&) override {
    Tensor& y = *outputs[0];
    if (y.size() > 0) std::memset(y.data, 0, y.bytes());
    const float* x = inputs[0]->ptr<float>();
    const int64_t* idx = inputs[1]->ptr<int64_t>();
    float* out = y.ptr<float>();
    for (int64_t i = 0, n = inputs[0]->size(); i < n; ++i) out[idx[i]] = x[i];
  }

 private:
  std::string where_;
  std::vector<int64_t> kernel_, strides_, pads_;
};

std::unique_ptr<Op> make_max_unpool(const BuildContext& bc) { return std::make_unique<MaxUnpoolOp>(bc.node); }

}  // namespace

TERNION_REGISTER_OP(MaxUnpool, make_max_unpool);

}  // namespace exec
}  // namespace ternion
