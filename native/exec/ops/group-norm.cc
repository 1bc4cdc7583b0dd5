// ONNX GroupNormalization (opsets 18 and 21), fp32: X [N, C, D1, ...] (rank >= 3) split into
// num_groups groups of C / num_groups channels; each group of each image is normalized over its
// channels and spatial positions, y = (x - mean) / sqrt(var + epsilon) * scale + bias. Opset 18
// gives scale and bias one value per group, opset 21 one per channel (the change that fixed the
// op); opset 21's stash_type may only be 1 (statistics in float32, which is all this op computes).
// A group of an image is one contiguous block of X, so its statistics are those of a
// LayerNormalization row (centre_row, vector-math.h).
#include <cmath>

#include "exec/graph.h"
#include "exec/ops/conv-common.h"
#include "exec/ops/op-args.h"
#include "exec/ops/vector-math.h"

namespace ternion {
namespace exec {
namespace ops {
namespace {

// One group of one image: `channels` runs of `spatial` values. y = (x - mean) * inv * scale + bias,
// with scale and bias per channel (per_channel) or the group's one value.
TERNION_WIDE_CLONES void group_norm_block(const float* x, float* y, int64_t channels, int64_t spatial, float epsilon,
                                          const float* scale, const float* bias, bool per_channel) {
  float var;
  centre_row(x, y, channels * spatial, var);
  const float inv = 1.0f / std::sqrt(var + epsilon);
  for (int64_t c = 0; c < channels; ++c) {
    const float s = scale[per_channel ? c : 0], b = bias[per_channel ? c : 0];
    float* row = y + c * spatial;
    for (int64_t j = 0; j < spatial; ++j) row[j] = row[j] * inv * s + b;
  }
}

class GroupNormOp : public Op {
 public:
  explicit GroupNormOp(const BuildContext& bc) : where_(bc.node.where()), per_channel_(bc.node.opset >= 21) {
    epsilon_ = bc.node.get_float("epsilon", 1e-5f);
    if (!bc.node.has("num_groups")) fail("ERR_MODEL_FORMAT", where_ + ": attribute num_groups is required");
    groups_ = bc.node.get_int("num_groups", 0);
    if (groups_ < 1) fail("ERR_MODEL_FORMAT", where_ + ": num_groups " + std::to_string(groups_) + " must be positive");
    const int64_t stash = bc.node.get_int("stash_type", 1);
    if (stash != 1)
      fail("ERR_UNSUPPORTED_OP", where_ + ": stash_type " + std::to_string(stash) + " is not supported (1, float32, is)");
    if (bc.node.outputs.size() != 1) fail("ERR_MODEL_FORMAT", where_ + ": expected one output");
  }

  void infer(const std::vector<const Tensor*>& in, std::vector<Tensor>& out) override {
    const Tensor& x = op_args::required(in, 0, where_, "X");
    const Tensor& scale = op_args::required(in, 1, where_, "scale");
    const Tensor& bias = op_args::required(in, 2, where_, "bias");
    op_args::require_dtype(x, {DType::F32}, where_, "X");
    op_args::require_dtype(scale, {DType::F32}, where_, "scale");
    op_args::require_dtype(bias, {DType::F32}, where_, "bias");
    if (x.shape.size() < 3) fail("ERR_SHAPE_MISMATCH", where_ + ": X must be [N, C, D1, ...] (rank >= 3), got " + shape_str(x.shape));
    const int64_t C = x.shape[1];
    if (C % groups_ != 0)
      fail("ERR_SHAPE_MISMATCH", where_ + ": " + std::to_string(C) + " channels of X " + shape_str(x.shape) +
                                     " are not divisible by num_groups " + std::to_string(groups_));
    const int64_t want = per_channel_ ? C : groups_;
    const char* per = per_channel_ ? "channel (opset 21)" : "group (opset 18)";
    for (const Tensor* p : {&scale, &bias})
      if (p->shape.size() != 1 || p->shape[0] != want)
        fail("ERR_SHAPE_MISMATCH", where_ + ": " + (p == &scale ? "scale " : "bias ") + shape_str(p->shape) + " must be [" +
                                       std::to_string(want) + "], one value per " + per);
    out[0].dtype = DType::F32;
    out[0].shape = x.shape;
  }

  void run(const std::vector<const Tensor*>& in, std::vector<Tensor*>& out, RunContext& ctx) override {
    const Tensor& x = *in[0];
    const int64_t N = x.shape[0], C = x.shape[1], group_channels = C / groups_;
    const int64_t spatial = op_args::dims_product(x.shape, 2, x.shape.size());
    const int64_t block = group_channels * spatial;
    if (block == 0) return;
    const float* X = x.ptr<float>();
    const float* scale = in[1]->ptr<float>();
    const float* bias = in[2]->ptr<float>();
    float* Y = out[0]->ptr<float>();
    parallel_ranges(ctx.gemm, N * groups_, std::max<int64_t>(1, 4096 / block), [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const int64_t g = i % groups_;
        const int64_t first = per_channel_ ? g * group_channels : g;
        group_norm_block(X + i * block, Y + i * block, group_channels, spatial, epsilon_, scale + first, bias + first, per_channel_);
      }
    });
  }

 private:
  std::string where_;
  bool per_channel_;
  float epsilon_;
  int64_t groups_;
};

std::unique_ptr<Op> make_group_norm(const BuildContext& bc) { return std::make_unique<GroupNormOp>(bc); }

}  // namespace
}  // namespace ops
}  // namespace exec
}  // namespace ternion

TERNION_REGISTER_OP(GroupNormalization, ternion::exec::ops::make_group_norm);
