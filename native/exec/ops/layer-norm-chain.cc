// TernionLayerNormChain (lib/ir/passes/fuse-layer-norm.ts): a LayerNorm written out as ops over
// the last axis, computed per row with those ops' own float arithmetic in their order:
//   m = (float)(sum / D)                  ReduceMean: the last-axis run summed as reduce.cc does
//   d = x - m                             Sub
//   v = (float)(sum of (d * d) / D)       Pow(d, 2) rounds the square; ReduceMean again
//   s = sqrtf(v + epsilon)                Add, Sqrt
//   y = d / s  [* scale]  [+ bias]        Div, then the optional Mul and Add per position
// so its outputs are the chain's, bit for bit, in one pass per row instead of nine over the tensor.
#include <cmath>
#include <cstring>

#include "exec/graph.h"
#include "exec/ops/broadcast.h"
#include "exec/ops/op-args.h"
#include "exec/ops/vector-math.h"

namespace ternion {
namespace exec {
namespace {

TERNION_WIDE_CLONES void layer_norm_chain_row(const float* x, float* y, int64_t D, float epsilon, const float* scale,
                                              const float* bias) {
  float var;
  centre_row(x, y, D, var);
  const float s = std::sqrt(var + epsilon);
  for (int64_t j = 0; j < D; ++j) y[j] = y[j] / s;
  if (scale)
    for (int64_t j = 0; j < D; ++j) y[j] = y[j] * scale[j];
  if (bias)
    for (int64_t j = 0; j < D; ++j) y[j] = y[j] + bias[j];
}

class LayerNormChainOp : public Op {
 public:
  explicit LayerNormChainOp(const BuildContext& bc)
      : where_(bc.node.where()), epsilon_(bc.node.get_float("epsilon", 1e-5f)) {
    if (bc.node.inputs.empty() || bc.node.inputs.size() > 3 || bc.node.outputs.size() != 1)
      fail("ERR_MODEL_FORMAT", where_ + " must have 1 to 3 inputs and one output");
  }

  void infer(const std::vector<const Tensor*>& in, std::vector<Tensor>& out) override {
    const Tensor& x = op_args::required(in, 0, where_, "X");
    op_args::require_dtype(x, {DType::F32}, where_, "X");
    if (x.shape.empty()) fail("ERR_SHAPE_MISMATCH", where_ + ": X must have rank >= 1, got a scalar");
    const int64_t D = x.shape.back();
    for (size_t i = 1; i < in.size(); ++i) {
      const Tensor* p = op_args::optional(in, i);
      if (!p) continue;
      op_args::require_dtype(*p, {DType::F32}, where_, i == 1 ? "scale" : "bias");
      if (p->size() != D)
        fail("ERR_SHAPE_MISMATCH", where_ + ": " + (i == 1 ? "scale " : "bias ") + shape_str(p->shape) + " must hold one value per position of the last axis (" +
                                       std::to_string(D) + ") of X " + shape_str(x.shape));
    }
    out[0].dtype = DType::F32;
    out[0].shape = x.shape;
  }

  void run(const std::vector<const Tensor*>& in, std::vector<Tensor*>& out, RunContext& ctx) override {
    const Tensor& x = *in[0];
    const int64_t D = x.shape.back();
    if (x.size() == 0) return;
    const Tensor* scale = op_args::optional(in, 1);
    const Tensor* bias = op_args::optional(in, 2);
    const float* X = x.ptr<float>();
    float* Y = out[0]->ptr<float>();
    const float* sp = scale ? scale->ptr<float>() : nullptr;
    const float* bp = bias ? bias->ptr<float>() : nullptr;
    broadcast::parallel_range(ctx, x.size() / D, std::max<int64_t>(1, 8192 / D), [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) layer_norm_chain_row(X + r * D, Y + r * D, D, epsilon_, sp, bp);
    });
  }

 private:
  std::string where_;
  float epsilon_;
};

std::unique_ptr<Op> make_layer_norm_chain(const BuildContext& bc) { return std::make_unique<LayerNormChainOp>(bc); }

}  // namespace

TERNION_REGISTER_OP(TernionLayerNormChain, make_layer_norm_chain);

}  // namespace exec
}  // namespace ternion
