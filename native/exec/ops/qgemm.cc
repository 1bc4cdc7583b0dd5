// TernionQGemm: a Gemm / MatMul layer with constant 2-D weights on quantized weights (int8 per
// channel, ternary or 4-bit FGQ, group-scaled or folded) and uint8 activations, producing
// float32. Contract: quant-common.h (weights, activations) and:
//
//   inputs   0 X float32 [..., in_channels] (all leading dims fold into M; rank >= 1)
//            1 codes int8 [Co, K], row co = output co, column k = input k (k >= in_channels:
//              padding, code 0)
//            2, 5, 6 weight parameters (quant-common.h)
//            3 bias float32 [Co] (optional)      4 residual float32, the output's shape (optional)
//   attrs    in_channels (default K), padded_channels (default K; must equal K), weight_bits,
//            group_size, form, asym, act_mode, act_scale, act_zero_point, act_bits,
//            activation / activation_params or fused_activation
//   output   float32 [..., Co] = act(X W^T + bias + residual)
// There is no alpha / beta / transA / transB: the graph pass folds alpha into the weights
// before quantizing, beta into the bias, and orients the weights output-channel major.
#include <algorithm>
#include <cstring>

#include "exec/graph.h"
#include "exec/ops/conv-common.h"
#include "exec/ops/quant-common.h"

namespace ternion {
namespace exec {
namespace ops {
namespace {

class QGemmOp : public Op {
 public:
  explicit QGemmOp(const BuildContext& bc) : node_(bc.node), where_(bc.node.where()) {
    if (node_.outputs.size() != 1) fail("ERR_UNSUPPORTED_OP", where_ + " must have exactly one output");
    if (node_.inputs.size() > 7) fail("ERR_MODEL_FORMAT", where_ + " has more than 7 inputs");
    for (const char* a : {"transA", "transB", "alpha", "beta"})
      if (node_.has(a)) fail("ERR_MODEL_FORMAT", where_ + ": attribute " + a + " is not supported (fold it into the quantized weights / bias)");
    if (node_.has("group") && node_.get_int("group", 1) != 1) fail("ERR_UNSUPPORTED_OP", where_ + ": group must be 1");
    act_ = read_activation(node_);
    act_config_ = quant::read_act_config(node_);
    // K comes from the codes; peek at it to default in_channels / padded_channels.
    const HostTensor* codes = bc.constant(1);
    const int64_t K = codes && codes->shape.size() == 2 ? codes->shape[1] : 0;
    const int64_t P = node_.get_int("padded_channels", K);
    layer_ = quant::pack_layer(bc, 1, P);
    if (P != layer_.K)
      fail("ERR_SHAPE_MISMATCH", where_ + ": padded_channels " + std::to_string(P) + " must equal K = " + std::to_string(layer_.K) +
                                     " (the codes' columns) for a Gemm");
    cin_ = node_.get_int("in_channels", layer_.K);
    if (cin_ < 1 || cin_ > layer_.K)
      fail("ERR_SHAPE_MISMATCH", where_ + ": in_channels " + std::to_string(cin_) + " must be in [1, K = " + std::to_string(layer_.K) + "]");
    bias_ = quant::constant_bias(bc, 3, layer_.Co);
    node_.release_attrs();  // every attribute read above
  }

  void infer(const std::vector<const Tensor*>& in, std::vector<Tensor>& out) override {
    const Tensor* x = require_input(node_, in, 0, "X");
    require_dtype(node_, x, "input X", DType::F32);
    if (x->shape.empty() || x->shape.back() != cin_)
      fail("ERR_SHAPE_MISMATCH", where_ + ": input " + shape_str(x->shape) + " must have in_channels = " + std::to_string(cin_) +
                                     " as its last dim");
    quant::check_bias(node_, optional_input(in, 3), layer_.Co);
    Shape y(x->shape.begin(), x->shape.end() - 1);
    y.push_back(layer_.Co);
    check_residual(node_, optional_input(in, 4), y);
    const int64_t M = shape_size(x->shape) / cin_;
    checked_int(M, node_, "rows M");
    shape_size(Shape{M, layer_.K});
    shape_size(y);
    out.resize(1);
    out[0].dtype = DType::F32;
    out[0].shape = y;
  }

  // Codes and weight parameters are packed at build; a constant bias is copied.
  size_t weight_bytes() const override { return layer_.bytes + (bias_.size() + layer_.channel_scale.size()) * sizeof(float); }
  bool keeps_copy_of(size_t input) const override {
    return input == 1 || input == 2 || input == 5 || input == 6 || (input == 3 && !bias_.empty());
  }

  void run(const std::vector<const Tensor*>& in, std::vector<Tensor*>& out, RunContext& ctx) override {
    const Tensor& x = *in[0];
    const Tensor* b = optional_input(in, 3);
    const Tensor* r = optional_input(in, 4);
    Tensor& y = *out[0];
    if (y.size() == 0) return;
    const int64_t K = layer_.K, Co = layer_.Co, M = x.size() / cin_;
    const float* X = x.ptr<float>();
    float* Y = y.ptr<float>();
    const float* bias = !bias_.empty() ? bias_.data() : b ? b->ptr<float>() : nullptr;

    const quant::ActParams aq = quant::act_params(act_config_, ctx.gemm, X, x.size());
    const uint8_t zp = static_cast<uint8_t>(aq.zero_point);
    const float* scales = quant::run_scales(layer_, aq.scale, ctx);
    uint8_t* A = static_cast<uint8_t*>(ctx.scratch(static_cast<size_t>(M * K)));
    if (cin_ == K) {
      parallel_ranges(ctx.gemm, M * K, int64_t(1) << 14, [&](int64_t b0, int64_t b1) {
        quant::quantize_span(ctx.gemm.table, X + b0, A + b0, b1 - b0, aq);
      });
    } else {
      parallel_ranges(ctx.gemm, M, std::max<int64_t>(1, (int64_t(1) << 14) / K), [&](int64_t b0, int64_t b1) {
        for (int64_t m = b0; m < b1; ++m) {
          quant::quantize_span(ctx.gemm.table, X + m * cin_, A + m * K, cin_, aq);
          std::memset(A + m * K + cin_, zp, static_cast<size_t>(K - cin_));
        }
      });
    }
    const bool relu_in_gemm = act_.relu_only() && !r;
    quant::run_group_gemm(layer_, ctx.gemm, 0, static_cast<int>(M), A, static_cast<size_t>(K), zp, scales, bias, relu_in_gemm, Y,
                          static_cast<size_t>(Co));
    if (relu_in_gemm || (!r && act_.none())) return;
    const float* R = r ? r->ptr<float>() : nullptr;
    parallel_ranges(ctx.gemm, M, std::max<int64_t>(1, (int64_t(1) << 14) / Co), [&](int64_t b0, int64_t b1) {
      float* o = Y + b0 * Co;
      const size_t n = static_cast<size_t>((b1 - b0) * Co);
      if (R) {
        const float* rr = R + b0 * Co;
        for (size_t i = 0; i < n; ++i) o[i] += rr[i];
      }
      act_.apply(o, n);
    });
  }

 private:
  NodeDesc node_;
  std::string where_;
  int64_t cin_ = 1;
  Activation act_;
  quant::ActConfig act_config_;
  quant::PackedLayer layer_;
  std::vector<float> bias_;  // constant bias (empty: from input 3 at run time, or none)
};

std::unique_ptr<Op> make_qgemm(const BuildContext& bc) { return std::make_unique<QGemmOp>(bc); }

}  // namespace
}  // namespace ops
}  // namespace exec
}  // namespace ternion

TERNION_REGISTER_OP(TernionQGemm, ternion::exec::ops::make_qgemm);
