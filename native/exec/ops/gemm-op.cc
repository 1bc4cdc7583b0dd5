// ONNX Gemm: Y = alpha * A' * B' + beta * C, A' = transA ? A^T : A, B' = transB ? B^T : B, C
// unidirectionally broadcast to [M, N], plus the fused activation the graph passes may add.
//
// The table's kernel computes A[M][K] x W[N][K]^T, so W = B'^T (B itself when transB). With a
// constant B, W is scaled by alpha and packed once; a constant C that varies only along N
// (bias vectors, scalars) becomes the kernel's bias, so the common Linear layer is one GEMM call.
#include <algorithm>
#include <cstring>

#include "exec/graph.h"
#include "exec/ops/conv-common.h"
#include "exec/ops/im2col.h"

namespace ternion {
namespace exec {
namespace ops {
namespace {

class GemmOp : public Op {
 public:
  explicit GemmOp(const BuildContext& bc) : node_(bc.node), table_(bc.table) {
    trans_a_ = node_.get_int("transA", 0) != 0;
    trans_b_ = node_.get_int("transB", 0) != 0;
    alpha_ = node_.get_float("alpha", 1.0f);
    beta_ = node_.get_float("beta", 1.0f);
    act_ = read_activation(node_);
    if (node_.outputs.size() != 1) fail("ERR_UNSUPPORTED_OP", node_.where() + " must have exactly one output");
    if (const HostTensor* b = bc.constant(1)) {
      if (b->dtype != DType::F32 || b->shape.size() != 2)
        fail("ERR_DTYPE", node_.where() + ": B must be a 2-D float32 tensor, got " + dtype_name(b->dtype) + " " + shape_str(b->shape));
      const int64_t rows = b->shape[0], cols = b->shape[1];
      const int N = checked_int(trans_b_ ? rows : cols, node_, "N");
      const int K = checked_int(trans_b_ ? cols : rows, node_, "K");
      std::vector<float> w(static_cast<size_t>(N) * K);
      write_weights(static_cast<const float*>(b->storage.get()), N, K, w.data());
      packed_ = pack_f32_weights(table_, w.data(), N, K);
      packed_bytes_ = table_->f32_packed_size(N, K);
      if (const HostTensor* c = bc.constant(2)) fold_bias(*c, N);
    }
    node_.release_attrs();  // every attribute read above
  }

  void infer(const std::vector<const Tensor*>& in, std::vector<Tensor>& out) override {
    const Tensor* a = require_input(node_, in, 0, "A");
    const Tensor* b = require_input(node_, in, 1, "B");
    require_dtype(node_, a, "A", DType::F32);
    require_dtype(node_, b, "B", DType::F32);
    if (a->shape.size() != 2 || b->shape.size() != 2)
      fail("ERR_SHAPE_MISMATCH", node_.where() + ": A " + shape_str(a->shape) + " and B " + shape_str(b->shape) + " must be 2-D");
    const int64_t M = trans_a_ ? a->shape[1] : a->shape[0];
    const int64_t K = trans_a_ ? a->shape[0] : a->shape[1];
    const int64_t Kb = trans_b_ ? b->shape[1] : b->shape[0];
    const int64_t N = trans_b_ ? b->shape[0] : b->shape[1];
    if (K != Kb)
      fail("ERR_SHAPE_MISMATCH", node_.where() + ": A " + shape_str(a->shape) + (trans_a_ ? " (transposed)" : "") + " and B " +
                                     shape_str(b->shape) + (trans_b_ ? " (transposed)" : "") + " disagree on K");
    checked_int(M, node_, "M");
    checked_int(N, node_, "N");
    checked_int(K, node_, "K");
    if (const Tensor* c = optional_input(in, 2)) {
      require_dtype(node_, c, "C", DType::F32);
      const Shape& cs = c->shape;
      const bool ok = cs.size() <= 2 && (cs.size() < 1 || cs.back() == 1 || cs.back() == N) &&
                      (cs.size() < 2 || cs[0] == 1 || cs[0] == M);
      if (!ok)
        fail("ERR_SHAPE_MISMATCH", node_.where() + ": C " + shape_str(cs) + " does not broadcast to [" + std::to_string(M) + ", " +
                                       std::to_string(N) + "]");
    }
    out.resize(1);
    out[0].dtype = DType::F32;
    out[0].shape = {M, N};
  }

  // B is packed at build when constant; a per-column constant C is folded into the bias.
  bool keeps_copy_of(size_t input) const override { return packed_ && (input == 1 || (input == 2 && has_bias_)); }
  size_t weight_bytes() const override { return packed_bytes_ + bias_.size() * sizeof(float); }

  void run(const std::vector<const Tensor*>& in, std::vector<Tensor*>& out, RunContext& ctx) override {
    const Tensor& a = *in[0];
    const Tensor& b = *in[1];
    const Tensor* c = optional_input(in, 2);
    float* Y = out[0]->ptr<float>();
    const int M = static_cast<int>(trans_a_ ? a.shape[1] : a.shape[0]);
    const int K = static_cast<int>(trans_a_ ? a.shape[0] : a.shape[1]);
    const int N = static_cast<int>(trans_b_ ? b.shape[0] : b.shape[1]);
    if (M == 0 || N == 0) return;

    const float* A = a.ptr<float>();
    if (trans_a_) {
      float* t = static_cast<float*>(ctx.scratch(static_cast<size_t>(M) * K * sizeof(float)));
      ctx.gemm.table->transpose_f32(A, K, M, static_cast<size_t>(M), t, static_cast<size_t>(K));
      A = t;
    }
    const void* packed = packed_.get();
    if (!packed || ctx.gemm.table != table_) {
      if (!b.data) fail("ERR_INTERNAL", node_.where() + ": B was packed for another kernel set");
      float* w = static_cast<float*>(ctx.scratch(static_cast<size_t>(N) * K * sizeof(float)));
      write_weights(b.ptr<float>(), N, K, w);
      void* p = ctx.scratch(ctx.gemm.table->f32_packed_size(N, K));
      ctx.gemm.table->f32_pack(w, N, K, p);
      packed = p;
    }
    const bool bias_folded = has_bias_ && packed_;
    const bool c_after = c && !bias_folded && beta_ != 0.0f;
    float clamp[2];
    const bool act_in_gemm = !c_after && act_.as_clamp(clamp);
    gemm_f32(ctx.gemm, M, N, K, A, static_cast<size_t>(K), packed, bias_folded ? bias_.data() : nullptr, act_in_gemm ? clamp : nullptr, Y,
             static_cast<size_t>(N));
    if (c_after) {
      const Shape& cs = c->shape;
      const float* C = c->ptr<float>();
      // Broadcast strides of C over Y's rows and columns (0 along a dimension of extent 1).
      const int64_t row_step = cs.size() == 2 && cs[0] != 1 ? cs[1] : 0;
      const int64_t cstep = !cs.empty() && cs.back() != 1 ? 1 : 0;
      for (int m = 0; m < M; ++m) {
        float* y = Y + static_cast<size_t>(m) * N;
        const float* cr = C + m * row_step;
        for (int n = 0; n < N; ++n) y[n] += beta_ * cr[n * cstep];
      }
    }
    if (!act_in_gemm) act_.apply(Y, static_cast<size_t>(M) * N);
  }

 private:
  // W[n][k] = alpha * B'[k][n], the kernel's [N][K] operand.
  void write_weights(const float* B, int N, int K, float* W) const {
    if (trans_b_) {
      std::memcpy(W, B, static_cast<size_t>(N) * K * sizeof(float));
    } else {
      table_->transpose_f32(B, K, N, static_cast<size_t>(N), W, static_cast<size_t>(K));
    }
    if (alpha_ != 1.0f)
      for (size_t i = 0; i < static_cast<size_t>(N) * K; ++i) W[i] *= alpha_;
  }

  // A constant C that is the same for every row (shape [], [1], [N], [1, 1], [1, N]) becomes
  // the kernel's bias: beta * C broadcast along N.
  void fold_bias(const HostTensor& c, int N) {
    if (c.dtype != DType::F32) return;  // infer() reports it
    const Shape& s = c.shape;
    const bool per_column = s.size() <= 1 || (s.size() == 2 && s[0] == 1);
    if (!per_column) return;
    const int64_t len = s.empty() ? 1 : s.back();
    if (len != 1 && len != N) return;
    const float* data = static_cast<const float*>(c.storage.get());
    bias_.resize(static_cast<size_t>(N));
    for (int n = 0; n < N; ++n) bias_[n] = beta_ * data[len == 1 ? 0 : n];
    has_bias_ = true;
  }

  NodeDesc node_;
  const kernels::KernelTable* table_;
  bool trans_a_ = false, trans_b_ = false;
  float alpha_ = 1.0f, beta_ = 1.0f;
  Activation act_;
  std::shared_ptr<void> packed_;  // alpha * B'^T, packed (constant B only)
  size_t packed_bytes_ = 0;
  std::vector<float> bias_;  // beta * C along N (constant per-column C only)
  bool has_bias_ = false;
};

std::unique_ptr<Op> make_gemm(const BuildContext& bc) { return std::make_unique<GemmOp>(bc); }

}  // namespace
}  // namespace ops
}  // namespace exec
}  // namespace ternion

TERNION_REGISTER_OP(Gemm, ternion::exec::ops::make_gemm);
