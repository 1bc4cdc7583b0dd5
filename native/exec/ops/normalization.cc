// ONNX BatchNormalization (inference form), LayerNormalization (with its optional Mean and
// InvStdDev outputs), InstanceNormalization and LRN, fp32.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "exec/graph.h"
#include "exec/ops/conv-common.h"
#include "exec/ops/op-args.h"
#include "exec/ops/vector-math.h"

namespace ternion {
namespace exec {
namespace ops {
namespace {

// y = (x - mean[c]) * (scale[c] / sqrt(var[c] + epsilon)) + B[c] over X [N, C, ...].
class BatchNormOp : public Op {
 public:
  explicit BatchNormOp(const BuildContext& bc) : node_(bc.node) {
    epsilon_ = node_.get_float("epsilon", 1e-5f);
    if (node_.get_int("training_mode", 0) != 0)
      fail("ERR_UNSUPPORTED_OP", node_.where() + ": training_mode is not supported (inference only)");
    if (node_.get_int("spatial", 1) == 0)
      fail("ERR_UNSUPPORTED_OP", node_.where() + ": spatial = 0 is not supported");
    for (size_t i = 1; i < node_.outputs.size(); ++i)
      if (node_.outputs[i] >= 0)
        fail("ERR_UNSUPPORTED_OP", node_.where() + ": the training outputs (running mean / variance) are not supported");
    if (node_.inputs.size() != 5) fail("ERR_MODEL_FORMAT", node_.where() + " needs 5 inputs (X, scale, B, mean, var)");
    node_.release_attrs();  // every attribute read above
  }

  void infer(const std::vector<const Tensor*>& in, std::vector<Tensor>& out) override {
    const Tensor* x = require_input(node_, in, 0, "X");
    require_dtype(node_, x, "input X", DType::F32);
    if (x->shape.size() < 2)
      fail("ERR_SHAPE_MISMATCH", node_.where() + ": input " + shape_str(x->shape) + " must have rank >= 2 (N, C, ...)");
    const int64_t C = x->shape[1];
    static const char* const kNames[] = {"", "scale", "B", "mean", "var"};
    for (size_t i = 1; i < 5; ++i) {
      const Tensor* p = require_input(node_, in, i, kNames[i]);
      require_dtype(node_, p, kNames[i], DType::F32);
      if (p->shape.size() != 1 || p->shape[0] != C)
        fail("ERR_SHAPE_MISMATCH", node_.where() + ": " + kNames[i] + " " + shape_str(p->shape) + " must be [" + std::to_string(C) +
                                       "] for input " + shape_str(x->shape));
    }
    out.resize(node_.outputs.size());
    out[0].dtype = DType::F32;
    out[0].shape = x->shape;
    for (size_t i = 1; i < out.size(); ++i) out[i].dtype = DType::F32, out[i].shape = {0};
  }

  void run(const std::vector<const Tensor*>& in, std::vector<Tensor*>& out, RunContext& ctx) override {
    const Tensor& x = *in[0];
    const float* scale = in[1]->ptr<float>();
    const float* bias = in[2]->ptr<float>();
    const float* mean = in[3]->ptr<float>();
    const float* var = in[4]->ptr<float>();
    const int64_t N = x.shape[0], C = x.shape[1];
    const int64_t plane = N * C != 0 ? x.size() / (N * C) : 0;
    const float* X = x.ptr<float>();
    float* Y = out[0]->ptr<float>();
    parallel_ranges(ctx.gemm, N * C, 8, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const int64_t c = i % C;
        const float m = mean[c], b = bias[c];
        const float a = scale[c] / std::sqrt(var[c] + epsilon_);
        const float* xs = X + i * plane;
        float* ys = Y + i * plane;
        for (int64_t j = 0; j < plane; ++j) ys[j] = (xs[j] - m) * a + b;
      }
    });
  }

 private:
  NodeDesc node_;
  float epsilon_;
};

// InstanceNormalization: per image and channel, over the spatial dims, then scale[c], B[c].
class InstanceNormOp : public Op {
 public:
  explicit InstanceNormOp(const BuildContext& bc) : where_(bc.node.where()), epsilon_(bc.node.get_float("epsilon", 1e-5f)) {}
  void infer(const std::vector<const Tensor*>& in, std::vector<Tensor>& out) override {
    if (in.size() < 3 || !in[0] || !in[1] || !in[2]) fail("ERR_MODEL_FORMAT", where_ + " needs 3 inputs (input, scale, B)");
    const Tensor& x = *in[0];
    if (x.dtype != DType::F32 || in[1]->dtype != DType::F32 || in[2]->dtype != DType::F32) fail("ERR_DTYPE", where_ + ": inputs must be float32");
    if (x.shape.size() < 3) fail("ERR_SHAPE_MISMATCH", where_ + ": input must be [N, C, D1, ...], got " + shape_str(x.shape));
    if (in[1]->size() != x.shape[1] || in[2]->size() != x.shape[1])
      fail("ERR_SHAPE_MISMATCH", where_ + ": scale and B must hold one value per channel (" + std::to_string(x.shape[1]) + ")");
    if (out.size() != 1) fail("ERR_MODEL_FORMAT", where_ + ": expected one output");
    out[0].dtype = DType::F32;
    out[0].shape = x.shape;
  }
  void run(const std::vector<const Tensor*>& in, std::vector<Tensor*>& out, RunContext&) override {
    const Tensor& x = *in[0];
    const int64_t N = x.shape[0], C = x.shape[1], S = op_args::dims_product(x.shape, 2, x.shape.size());
    const float* scale = in[1]->ptr<float>();
    const float* bias = in[2]->ptr<float>();
    for (int64_t n = 0; n < N; ++n)
      for (int64_t c = 0; c < C; ++c) {
        const float* p = x.ptr<float>() + (n * C + c) * S;
        float* q = out[0]->ptr<float>() + (n * C + c) * S;
        double sum = 0, sq = 0;
        for (int64_t i = 0; i < S; ++i) sum += p[i];
        const double mean = S ? sum / S : 0;
        for (int64_t i = 0; i < S; ++i) sq += (p[i] - mean) * (p[i] - mean);
        const double inv = 1.0 / std::sqrt((S ? sq / S : 0) + epsilon_);
        const float k = static_cast<float>(scale[c] * inv), b = static_cast<float>(bias[c] - scale[c] * inv * mean);
        for (int64_t i = 0; i < S; ++i) q[i] = p[i] * k + b;
      }
  }

 private:
  std::string where_;
  float epsilon_;
};

// LRN across channels: x / (bias + alpha / size * sum of x^2 over the channel window)^beta.
class LrnOp : public Op {
 public:
  explicit LrnOp(const BuildContext& bc)
      : where_(bc.node.where()), alpha_(bc.node.get_float("alpha", 1e-4f)), beta_(bc.node.get_float("beta", 0.75f)),
        bias_(bc.node.get_float("bias", 1.0f)), size_(bc.node.get_int("size", 0)) {
    if (size_ < 1) fail("ERR_MODEL_FORMAT", where_ + ": size must be at least 1");
  }
  void infer(const std::vector<const Tensor*>& in, std::vector<Tensor>& out) override {
    if (in.empty() || !in[0]) fail("ERR_MODEL_FORMAT", where_ + ": missing input X");
    const Tensor& x = *in[0];
    if (x.dtype != DType::F32) fail("ERR_DTYPE", where_ + ": X must be float32");
    if (x.shape.size() < 3) fail("ERR_SHAPE_MISMATCH", where_ + ": X must be [N, C, D1, ...], got " + shape_str(x.shape));
    if (out.size() != 1) fail("ERR_MODEL_FORMAT", where_ + ": expected one output");
    out[0].dtype = DType::F32;
    out[0].shape = x.shape;
  }
  void run(const std::vector<const Tensor*>& in, std::vector<Tensor*>& out, RunContext&) override {
    const Tensor& x = *in[0];
    const int64_t N = x.shape[0], C = x.shape[1], S = op_args::dims_product(x.shape, 2, x.shape.size());
    const int64_t before = (size_ - 1) / 2, after = size_ - 1 - before;
    const float* p = x.ptr<float>();
    float* q = out[0]->ptr<float>();
    for (int64_t n = 0; n < N; ++n)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t i = 0; i < S; ++i) {
          double sq = 0;
          for (int64_t j = std::max<int64_t>(0, c - before); j <= std::min(C - 1, c + after); ++j) {
            const double v = p[(n * C + j) * S + i];
            sq += v * v;
          }
          const int64_t at = (n * C + c) * S + i;
          q[at] = static_cast<float>(p[at] / std::pow(bias_ + alpha_ / size_ * sq, beta_));
        }
  }

 private:
  std::string where_;
  float alpha_, beta_, bias_;
  int64_t size_;
};

// One row of LayerNormalization as its opset-17 definition computes it in float32: Mean, D = X -
// Mean, Var = the mean of D * D (centre_row, vector-math.h: the written-out chain's statistics),
// InvStdDev = 1 / sqrt(Var + epsilon), Y = D * InvStdDev * Scale (+ B), compiled wide (a
// sequential double sum per value had made it four times slower than TernionLayerNormChain).
// Writes the row's mean and InvStdDev.
TERNION_WIDE_CLONES void layer_norm_row(const float* x, float* y, int64_t D, float epsilon, const float* scale, const float* bias, float& mean_out,
                                        float& inv_out) {
  float var;
  const float mean = centre_row(x, y, D, var);
  const float inv = 1.0f / std::sqrt(var + epsilon);
  if (bias) {
    for (int64_t j = 0; j < D; ++j) y[j] = y[j] * inv * scale[j] + bias[j];
  } else {
    for (int64_t j = 0; j < D; ++j) y[j] = y[j] * inv * scale[j];
  }
  mean_out = mean;
  inv_out = inv;
}

// Normalizes over the axes [axis, rank): y = (x - mean) / sqrt(var + epsilon) * scale + bias,
// scale and bias broadcast to the normalized shape.
class LayerNormOp : public Op {
 public:
  explicit LayerNormOp(const BuildContext& bc) : node_(bc.node) {
    axis_ = node_.get_int("axis", -1);
    epsilon_ = node_.get_float("epsilon", 1e-5f);
    if (node_.outputs.empty() || node_.outputs.size() > 3) fail("ERR_MODEL_FORMAT", node_.where() + " must have 1 to 3 outputs");
    node_.release_attrs();  // every attribute read above
  }

  void infer(const std::vector<const Tensor*>& in, std::vector<Tensor>& out) override {
    const Tensor* x = require_input(node_, in, 0, "X");
    require_dtype(node_, x, "input X", DType::F32);
    const int64_t axis = resolve_axis(x->shape);
    const Shape norm(x->shape.begin() + axis, x->shape.end());
    const Tensor* scale = require_input(node_, in, 1, "Scale");
    require_dtype(node_, scale, "Scale", DType::F32);
    check_broadcast(scale, "Scale", norm);
    if (const Tensor* b = optional_input(in, 2)) {
      require_dtype(node_, b, "B", DType::F32);
      check_broadcast(b, "B", norm);
    }
    out.resize(node_.outputs.size());
    out[0].dtype = DType::F32;
    out[0].shape = x->shape;
    Shape stat(x->shape.begin(), x->shape.begin() + axis);
    stat.resize(x->shape.size(), 1);
    for (size_t i = 1; i < out.size(); ++i) out[i].dtype = DType::F32, out[i].shape = stat;
  }

  void run(const std::vector<const Tensor*>& in, std::vector<Tensor*>& out, RunContext& ctx) override {
    const Tensor& x = *in[0];
    const int64_t axis = resolve_axis(x.shape);
    const Shape norm(x.shape.begin() + axis, x.shape.end());
    const int64_t D = shape_size(norm);
    const int64_t rows = D ? x.size() / D : shape_size(Shape(x.shape.begin(), x.shape.begin() + axis));
    const float* scale = expand(in[1], norm, ctx);
    const Tensor* b = optional_input(in, 2);
    const float* bias = b ? expand(b, norm, ctx) : nullptr;
    const float* X = x.ptr<float>();
    float* Y = out[0]->ptr<float>();
    float* mean_out = out.size() > 1 && node_.outputs[1] >= 0 ? out[1]->ptr<float>() : nullptr;
    float* inv_out = out.size() > 2 && node_.outputs[2] >= 0 ? out[2]->ptr<float>() : nullptr;
    parallel_ranges(ctx.gemm, rows, std::max<int64_t>(1, 4096 / std::max<int64_t>(D, 1)), [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        float mean = 0.0f, inv = 1.0f / std::sqrt(epsilon_);
        if (D) layer_norm_row(X + r * D, Y + r * D, D, epsilon_, scale, bias, mean, inv);
        if (mean_out) mean_out[r] = mean;
        if (inv_out) inv_out[r] = inv;
      }
    });
  }

 private:
  int64_t resolve_axis(const Shape& x) const {
    const int64_t rank = static_cast<int64_t>(x.size());
    const int64_t axis = axis_ < 0 ? axis_ + rank : axis_;
    if (rank < 1 || axis < 0 || axis >= rank)
      fail("ERR_SHAPE_MISMATCH", node_.where() + ": axis " + std::to_string(axis_) + " is out of range for input " + shape_str(x));
    return axis;
  }

  void check_broadcast(const Tensor* t, const char* what, const Shape& norm) const {
    const Shape& s = t->shape;
    bool ok = s.size() <= norm.size();
    for (size_t i = 0; ok && i < s.size(); ++i) {
      const int64_t d = s[s.size() - 1 - i], n = norm[norm.size() - 1 - i];
      ok = d == n || d == 1;
    }
    if (!ok)
      fail("ERR_SHAPE_MISMATCH", node_.where() + ": " + what + " " + shape_str(s) + " does not broadcast to the normalized shape " + shape_str(norm));
  }

  // The tensor's values for each of the D normalized positions (itself when it already has D).
  const float* expand(const Tensor* t, const Shape& norm, RunContext& ctx) const {
    const int64_t D = shape_size(norm);
    if (t->size() == D) return t->ptr<float>();
    float* e = static_cast<float*>(ctx.scratch(static_cast<size_t>(std::max<int64_t>(D, 1)) * sizeof(float)));
    const Shape& s = t->shape;
    const size_t lead = norm.size() - s.size();
    for (int64_t j = 0; j < D; ++j) {
      int64_t rest = j, src = 0, stride = 1;
      for (size_t a = norm.size(); a-- > 0;) {
        const int64_t coord = rest % norm[a];
        rest /= norm[a];
        if (a >= lead) {
          const int64_t extent = s[a - lead];
          if (extent != 1) src += coord * stride;
          stride *= extent;
        }
      }
      e[j] = t->ptr<float>()[src];
    }
    return e;
  }

  NodeDesc node_;
  int64_t axis_;
  float epsilon_;
};

std::unique_ptr<Op> make_batch_norm(const BuildContext& bc) { return std::make_unique<BatchNormOp>(bc); }
std::unique_ptr<Op> make_layer_norm(const BuildContext& bc) { return std::make_unique<LayerNormOp>(bc); }
std::unique_ptr<Op> make_instance_norm(const BuildContext& bc) { return std::make_unique<InstanceNormOp>(bc); }
std::unique_ptr<Op> make_lrn(const BuildContext& bc) { return std::make_unique<LrnOp>(bc); }

}  // namespace
}  // namespace ops
}  // namespace exec
}  // namespace ternion

TERNION_REGISTER_OP(BatchNormalization, ternion::exec::ops::make_batch_norm);
TERNION_REGISTER_OP(LayerNormalization, ternion::exec::ops::make_layer_norm);
TERNION_REGISTER_OP(InstanceNormalization, ternion::exec::ops::make_instance_norm);
TERNION_REGISTER_OP(LRN, ternion::exec::ops::make_lrn);
