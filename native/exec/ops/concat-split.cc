// Concat and Split along one axis, over every dtype: both are, per outer index, a run of
// contiguous block copies (a block is `dim on axis x inner dims` elements).
//
// Split sizes: the `split` attribute before opset 13, the optional `split` input from 13,
// `num_outputs` from 18 (equal parts, the last one smaller); without either, equal parts.
#include <cstring>

#include "exec/graph.h"
#include "exec/ops/op-args.h"

namespace ternion {
namespace exec {
namespace {

class ConcatOp : public Op {
 public:
  explicit ConcatOp(const NodeDesc& node) : where_(node.where()) {
    if (!node.has("axis") && node.opset >= 4) fail("ERR_MODEL_FORMAT", where_ + ": the axis attribute is required");
    axis_ = node.get_int("axis", 1);  // opset 1-3 defaulted to 1
  }

  void infer(const std::vector<const Tensor*>& inputs, std::vector<Tensor>& outputs) override {
    if (inputs.empty()) fail("ERR_MODEL_FORMAT", where_ + ": needs at least one input");
    if (outputs.size() != 1) fail("ERR_MODEL_FORMAT", where_ + ": expected one output");
    const Tensor& first = op_args::required(inputs, 0, where_, "inputs");
    const size_t rank = first.shape.size();
    const size_t axis = static_cast<size_t>(op_args::normalize_axis(axis_, static_cast<int64_t>(rank), where_));
    Shape out = first.shape;
    out[axis] = 0;
    for (size_t i = 0; i < inputs.size(); ++i) {
      const Tensor& t = op_args::required(inputs, i, where_, "inputs");
      if (t.dtype != first.dtype)
        fail("ERR_DTYPE", where_ + ": input " + std::to_string(i) + " is " + dtype_name(t.dtype) + ", input 0 is " + dtype_name(first.dtype));
      bool same = t.shape.size() == rank;
      for (size_t d = 0; same && d < rank; ++d) same = d == axis || t.shape[d] == first.shape[d];
      if (!same)
        fail("ERR_SHAPE_MISMATCH", where_ + ": input " + std::to_string(i) + " has shape " + shape_str(t.shape) +
                                       ", incompatible with input 0's " + shape_str(first.shape) + " on axis " + std::to_string(axis));
      out[axis] += t.shape[axis];
    }
    outputs[0].dtype = first.dtype;
    outputs[0].shape = out;
  }

  void run(const std::vector<const Tensor*>& inputs, std::vector<Tensor*>& outputs, RunContext&) override {
    Tensor& out = *outputs[0];
    if (out.size() == 0) return;
    const size_t rank = out.shape.size();
    const size_t axis = static_cast<size_t>(op_args::normalize_axis(axis_, static_cast<int64_t>(rank), where_));
    const int64_t outer = op_args::dims_product(out.shape, 0, axis);
    const size_t inner_bytes = static_cast<size_t>(op_args::dims_product(out.shape, axis + 1, rank)) * dtype_size(out.dtype);
    const size_t out_block = static_cast<size_t>(out.shape[axis]) * inner_bytes;
    size_t offset = 0;  // of each input's block within an output block
    for (const Tensor* t : inputs) {
      const size_t block = static_cast<size_t>(t->shape[axis]) * inner_bytes;
      const char* src = static_cast<const char*>(t->data);
      char* dst = static_cast<char*>(out.data) + offset;
      if (block)
        for (int64_t o = 0; o < outer; ++o) std::memcpy(dst + o * out_block, src + o * block, block);
      offset += block;
    }
  }

 private:
  std::string where_;
  int64_t axis_;
};

class SplitOp : public Op {
 public:
  explicit SplitOp(const NodeDesc& node)
      : where_(node.where()), opset_(node.opset), axis_(node.get_int("axis", 0)),
        attr_split_(node.get_ints("split")), num_outputs_(node.get_int("num_outputs", 0)) {}

  void infer(const std::vector<const Tensor*>& inputs, std::vector<Tensor>& outputs) override {
    const Tensor& x = op_args::required(inputs, 0, where_, "input");
    const size_t axis = static_cast<size_t>(op_args::normalize_axis(axis_, static_cast<int64_t>(x.shape.size()), where_));
    const std::vector<int64_t> sizes = split_sizes(inputs, x.shape[axis], outputs.size());
    for (size_t i = 0; i < outputs.size(); ++i) {
      outputs[i].dtype = x.dtype;
      outputs[i].shape = x.shape;
      outputs[i].shape[axis] = sizes[i];
    }
  }

  void run(const std::vector<const Tensor*>& inputs, std::vector<Tensor*>& outputs, RunContext&) override {
    const Tensor& x = *inputs[0];
    const size_t rank = x.shape.size();
    const size_t axis = static_cast<size_t>(op_args::normalize_axis(axis_, static_cast<int64_t>(rank), where_));
    const int64_t outer = op_args::dims_product(x.shape, 0, axis);
    const size_t inner_bytes = static_cast<size_t>(op_args::dims_product(x.shape, axis + 1, rank)) * dtype_size(x.dtype);
    const size_t in_block = static_cast<size_t>(x.shape[axis]) * inner_bytes;
    size_t offset = 0;
    for (Tensor* t : outputs) {
      const size_t block = static_cast<size_t>(t->shape[axis]) * inner_bytes;
      const char* src = static_cast<const char*>(x.data) + offset;
      char* dst = static_cast<char*>(t->data);
      if (block)
        for (int64_t o = 0; o < outer; ++o) std::memcpy(dst + o * block, src + o * in_block, block);
      offset += block;
    }
  }

 private:
  std::vector<int64_t> split_sizes(const std::vector<const Tensor*>& inputs, int64_t dim, size_t n) const {
    if (n == 0) fail("ERR_MODEL_FORMAT", where_ + ": has no outputs");
    std::vector<int64_t> sizes;
    const bool split_from_attribute = opset_ > 0 && opset_ < 13;
    const Tensor* split_input = split_from_attribute ? nullptr : op_args::optional(inputs, 1);
    if (split_input) {
      sizes = op_args::read_ints(*split_input, where_, "split");
    } else if (split_from_attribute && !attr_split_.empty()) {
      sizes = attr_split_;
    } else {
      if (num_outputs_ != 0 && num_outputs_ != static_cast<int64_t>(n))
        fail("ERR_MODEL_FORMAT", where_ + ": num_outputs=" + std::to_string(num_outputs_) + " but the node has " + std::to_string(n) + " outputs");
      const int64_t parts = static_cast<int64_t>(n);
      if (dim % parts != 0 && opset_ > 0 && opset_ < 18)
        fail("ERR_SHAPE_MISMATCH", where_ + ": dim " + std::to_string(dim) + " does not split into " + std::to_string(n) + " equal parts");
      // Opset 18: ceil(dim / n) each, the last one takes what is left.
      const int64_t part = (dim + parts - 1) / parts;
      for (int64_t i = 0, left = dim; i < parts; ++i, left -= part) sizes.push_back(std::max<int64_t>(0, std::min(part, left)));
    }
    int64_t sum = 0;
    bool valid = sizes.size() == n;
    for (int64_t s : sizes) valid = valid && s >= 0 && s <= dim, sum += valid ? s : 0;
    if (!valid || sum != dim)
      fail("ERR_SHAPE_MISMATCH", where_ + ": split " + shape_str(sizes) + " does not divide dim " + std::to_string(dim) +
                                     " into " + std::to_string(n) + " outputs");
    return sizes;
  }

  std::string where_;
  int opset_;
  int64_t axis_;
  std::vector<int64_t> attr_split_;
  int64_t num_outputs_;
};

std::unique_ptr<Op> make_concat(const BuildContext& bc) { return std::make_unique<ConcatOp>(bc.node); }
std::unique_ptr<Op> make_split(const BuildContext& bc) { return std::make_unique<SplitOp>(bc.node); }

}  // namespace

TERNION_REGISTER_OP(Concat, make_concat);
TERNION_REGISTER_OP(Split, make_split);

}  // namespace exec
}  // namespace ternion
