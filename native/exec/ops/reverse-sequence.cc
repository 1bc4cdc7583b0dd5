// ReverseSequence (opset 10) over every dtype: for each batch entry b (along batch_axis, default
// 1), the first sequence_lens[b] steps along time_axis (default 0) are reversed and the rest are
// copied as they are. The two axes are 0 and 1, one each; sequence_lens is int64 (or int32) with
// one length per batch entry, each in [0, the time axis's size].
#include <cstring>

#include "exec/graph.h"
#include "exec/ops/op-args.h"

namespace ternion {
namespace exec {
namespace {

class ReverseSequenceOp : public Op {
 public:
  explicit ReverseSequenceOp(const NodeDesc& node)
      : where_(node.where()), batch_axis_(node.get_int("batch_axis", 1)), time_axis_(node.get_int("time_axis", 0)) {
    const bool valid = (batch_axis_ == 0 && time_axis_ == 1) || (batch_axis_ == 1 && time_axis_ == 0);
    if (!valid)
      fail("ERR_MODEL_FORMAT", where_ + ": batch_axis " + std::to_string(batch_axis_) + " and time_axis " + std::to_string(time_axis_) +
                                   " must be 0 and 1, one each");
  }

  void infer(const std::vector<const Tensor*>& inputs, std::vector<Tensor>& outputs) override {
    const Tensor& x = op_args::required(inputs, 0, where_, "input");
    const Tensor& lens = op_args::required(inputs, 1, where_, "sequence_lens");
    op_args::require_dtype(lens, {DType::I64, DType::I32}, where_, "sequence_lens");
    if (x.shape.size() < 2) fail("ERR_SHAPE_MISMATCH", where_ + ": input must have rank >= 2, got shape " + shape_str(x.shape));
    const int64_t batch = x.shape[static_cast<size_t>(batch_axis_)];
    if (lens.shape != Shape{batch})
      fail("ERR_SHAPE_MISMATCH", where_ + ": sequence_lens " + shape_str(lens.shape) + " must be [" + std::to_string(batch) +
                                     "], one length per entry of batch axis " + std::to_string(batch_axis_) + " of input " + shape_str(x.shape));
    if (outputs.size() != 1) fail("ERR_MODEL_FORMAT", where_ + ": expected one output");
    outputs[0].dtype = x.dtype;
    outputs[0].shape = x.shape;
  }

  void run(const std::vector<const Tensor*>& inputs, std::vector<Tensor*>& outputs, RunContext&) override {
    const Tensor& x = *inputs[0];
    const Tensor& lens = *inputs[1];
    const int64_t batch = x.shape[static_cast<size_t>(batch_axis_)], steps = x.shape[static_cast<size_t>(time_axis_)];
    // One (batch, step) cell is a contiguous block of the trailing axes.
    const size_t block = static_cast<size_t>(op_args::dims_product(x.shape, 2, x.shape.size())) * dtype_size(x.dtype);
    const int64_t batch_stride = batch_axis_ == 0 ? steps : 1, step_stride = time_axis_ == 0 ? batch : 1;
    const char* src = x.ptr<char>();
    char* dst = outputs[0]->ptr<char>();
    for (int64_t b = 0; b < batch; ++b) {
      const int64_t len = op_args::index_at(lens, b);
      if (len < 0 || len > steps)
        fail("ERR_INVALID_ARGUMENT", where_ + ": sequence_lens[" + std::to_string(b) + "] is " + std::to_string(len) +
                                         ", outside [0, " + std::to_string(steps) + "] (the time axis's size)");
      for (int64_t t = 0; t < steps; ++t) {
        const int64_t from = t < len ? len - 1 - t : t;
        std::memcpy(dst + (b * batch_stride + t * step_stride) * static_cast<int64_t>(block),
                    src + (b * batch_stride + from * step_stride) * static_cast<int64_t>(block), block);
      }
    }
  }

 private:
  std::string where_;
  int64_t batch_axis_, time_axis_;
};

std::unique_ptr<Op> make_reverse_sequence(const BuildContext& bc) { return std::make_unique<ReverseSequenceOp>(bc.node); }

}  // namespace

TERNION_REGISTER_OP(ReverseSequence, make_reverse_sequence);

}  // namespace exec
}  // namespace ternion
