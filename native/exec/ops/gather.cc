// Gather along any axis, over every dtype, with int32 or int64 indices (negative ones count
// from the end). Output shape: data[:axis] + indices.shape + data[axis+1:]. Every index is
// checked against the axis size before anything is copied.
#include <cstring>

#include "exec/graph.h"
#include "exec/ops/op-args.h"

namespace ternion {
namespace exec {
namespace {

class GatherOp : public Op {
 public:
  explicit GatherOp(const NodeDesc& node) : where_(node.where()), axis_(node.get_int("axis", 0)) {}

  void infer(const std::vector<const Tensor*>& inputs, std::vector<Tensor>& outputs) override {
    const Tensor& data = op_args::required(inputs, 0, where_, "data");
    const Tensor& indices = op_args::required(inputs, 1, where_, "indices");
    op_args::require_dtype(indices, {DType::I64, DType::I32}, where_, "indices");
    if (outputs.size() != 1) fail("ERR_MODEL_FORMAT", where_ + ": expected one output");
    const size_t axis = static_cast<size_t>(op_args::normalize_axis(axis_, static_cast<int64_t>(data.shape.size()), where_));
    Shape out(data.shape.begin(), data.shape.begin() + axis);
    out.insert(out.end(), indices.shape.begin(), indices.shape.end());
    out.insert(out.end(), data.shape.begin() + axis + 1, data.shape.end());
    outputs[0].dtype = data.dtype;
    outputs[0].shape = out;
  }

  void run(const std::vector<const Tensor*>& inputs, std::vector<Tensor*>& outputs, RunContext&) override {
    const Tensor& data = *inputs[0];
    const Tensor& indices = *inputs[1];
    const size_t rank = data.shape.size();
    const size_t axis = static_cast<size_t>(op_args::normalize_axis(axis_, static_cast<int64_t>(rank), where_));
    const int64_t dim = data.shape[axis], count = indices.size();
    // Validate and normalize every index first: no copy may read outside `data`.
    std::vector<int64_t> idx(static_cast<size_t>(count));
    for (int64_t i = 0; i < count; ++i) {
      const int64_t v = indices.dtype == DType::I64 ? indices.ptr<int64_t>()[i] : indices.ptr<int32_t>()[i];
      if (v < -dim || v >= dim)
        fail("ERR_SHAPE_MISMATCH", where_ + ": index " + std::to_string(v) + " (at position " + std::to_string(i) +
                                       ") is out of range for axis " + std::to_string(axis) + " of size " + std::to_string(dim) +
                                       " in data of shape " + shape_str(data.shape));
      idx[i] = v < 0 ? v + dim : v;
    }
    if (outputs[0]->size() == 0) return;
    const int64_t outer = op_args::dims_product(data.shape, 0, axis);
    const size_t block = static_cast<size_t>(op_args::dims_product(data.shape, axis + 1, rank)) * dtype_size(data.dtype);
    const char* src = static_cast<const char*>(data.data);
    char* dst = static_cast<char*>(outputs[0]->data);
    for (int64_t o = 0; o < outer; ++o) {
      const char* slab = src + static_cast<size_t>(o * dim) * block;
      if (block == 4) {  // the common embedding/channel pick of one float: skip memcpy's call
        for (int64_t i = 0; i < count; ++i, dst += 4) std::memcpy(dst, slab + idx[i] * 4, 4);
      } else {
        for (int64_t i = 0; i < count; ++i, dst += block) std::memcpy(dst, slab + idx[i] * block, block);
      }
    }
  }

 private:
  std::string where_;
  int64_t axis_;
};

std::unique_ptr<Op> make_gather(const BuildContext& bc) { return std::make_unique<GatherOp>(bc.node); }

}  // namespace

TERNION_REGISTER_OP(Gather, make_gather);

}  // namespace exec
}  // namespace ternion
