// GatherND (opsets 11-13; batch_dims from 12) over every dtype: each index tuple, the last axis
// of `indices` (int64, or int32), picks a slice of data; the first batch_dims axes of data and
// indices are matched one to one. Output: indices.shape[:-1] + data.shape[batch_dims + m:] for
// tuples of m values. Negative values count from the end; every tuple is checked against data's
// shape before anything is copied.
#include <algorithm>
#include <cstring>

#include "exec/graph.h"
#include "exec/ops/op-args.h"

namespace ternion {
namespace exec {
namespace {

class GatherNDOp : public Op {
 public:
  explicit GatherNDOp(const NodeDesc& node) : where_(node.where()), batch_dims_(node.get_int("batch_dims", 0)) {}

  void infer(const std::vector<const Tensor*>& inputs, std::vector<Tensor>& outputs) override {
    const Tensor& data = op_args::required(inputs, 0, where_, "data");
    const Tensor& indices = op_args::required(inputs, 1, where_, "indices");
    op_args::require_dtype(indices, {DType::I64, DType::I32}, where_, "indices");
    const int64_t r = static_cast<int64_t>(data.shape.size()), q = static_cast<int64_t>(indices.shape.size());
    const int64_t b = batch_dims_;
    auto bad = [&](const std::string& why) {
      fail("ERR_SHAPE_MISMATCH", where_ + ": data " + shape_str(data.shape) + " and indices " + shape_str(indices.shape) +
                                     " (batch_dims " + std::to_string(b) + ") " + why);
    };
    if (r < 1 || q < 1) bad("must both have rank >= 1");
    if (b < 0 || b >= std::min(r, q)) bad("need 0 <= batch_dims < min(rank of data, rank of indices)");
    const int64_t m = indices.shape.back();
    if (m < 1 || m > r - b) bad("need index tuples (the last axis of indices) of 1 to " + std::to_string(r - b) + " values");
    for (int64_t i = 0; i < b; ++i)
      if (data.shape[i] != indices.shape[i]) bad("differ in batch axis " + std::to_string(i));
    if (outputs.size() != 1) fail("ERR_MODEL_FORMAT", where_ + ": expected one output");
    Shape out(indices.shape.begin(), indices.shape.end() - 1);
    out.insert(out.end(), data.shape.begin() + b + m, data.shape.end());
    outputs[0].dtype = data.dtype;
    outputs[0].shape = out;
  }

  void run(const std::vector<const Tensor*>& inputs, std::vector<Tensor*>& outputs, RunContext&) override {
    const Tensor& data = *inputs[0];
    const Tensor& indices = *inputs[1];
    const size_t b = static_cast<size_t>(batch_dims_), r = data.shape.size();
    const int64_t m = indices.shape.back();
    const int64_t batches = op_args::dims_product(data.shape, 0, b);
    const int64_t batch_elements = op_args::dims_product(data.shape, b, r);
    const int64_t slice = op_args::dims_product(data.shape, b + static_cast<size_t>(m), r);
    const int64_t tuples = batches == 0 ? 0 : indices.size() / m / batches;  // per batch
    const std::vector<int64_t> strides = op_args::row_major_strides(data.shape);
    // Each tuple's element offset in data, every value checked first: no copy reads outside.
    std::vector<int64_t> offsets(static_cast<size_t>(batches * tuples));
    for (int64_t t = 0; t < batches * tuples; ++t) {
      int64_t off = (t / std::max<int64_t>(tuples, 1)) * batch_elements;
      for (int64_t j = 0; j < m; ++j) {
        const size_t axis = b + static_cast<size_t>(j);
        const int64_t at = t * m + j;
        off += op_args::checked_index(op_args::index_at(indices, at), data.shape[axis], where_, "index", at,
                                      static_cast<int64_t>(axis)) * strides[axis];
      }
      offsets[t] = off;
    }
    const size_t es = dtype_size(data.dtype), bytes = static_cast<size_t>(slice) * es;
    const char* src = data.ptr<char>();
    char* dst = outputs[0]->ptr<char>();
    for (int64_t t = 0; t < batches * tuples; ++t) std::memcpy(dst + t * bytes, src + offsets[t] * static_cast<int64_t>(es), bytes);
  }

 private:
  std::string where_;
  int64_t batch_dims_;
};

std::unique_ptr<Op> make_gather_nd(const BuildContext& bc) { return std::make_unique<GatherNDOp>(bc.node); }

}  // namespace

TERNION_REGISTER_OP(GatherND, make_gather_nd);

}  // namespace exec
}  // namespace ternion
