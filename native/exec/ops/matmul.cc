// ONNX MatMul (numpy semantics: batched, broadcast batch dims, 1-D operands promoted and their
// dimension removed from the result) in fp32, plus the fused activation of the graph passes.
//
// The kernel computes A[M][K] x W[N][K]^T, so each batch matrix of B is transposed to [N][K]
// and packed: once at build for a constant B (the weights of a Linear layer), per run otherwise.
// When B has no batch (or only 1s) every row of A meets the same matrix, so all of A's batch
// dims fold into M and the whole product is one GEMM.
#include <algorithm>
#include <cstring>

#include "exec/graph.h"
#include "exec/ops/conv-common.h"
#include "exec/ops/im2col.h"

namespace ternion {
namespace exec {
namespace ops {
namespace {

class MatMulOp : public Op {
 public:
  explicit MatMulOp(const BuildContext& bc) : node_(bc.node), table_(bc.table) {
    act_ = read_activation(node_);
    if (node_.outputs.size() != 1) fail("ERR_UNSUPPORTED_OP", node_.where() + " must have exactly one output");
    if (const HostTensor* b = bc.constant(1)) {
      if (b->dtype != DType::F32) fail("ERR_DTYPE", node_.where() + ": B must be float32, got " + dtype_name(b->dtype));
      if (b->shape.empty()) fail("ERR_SHAPE_MISMATCH", node_.where() + ": B must have rank >= 1");
      const Shape b2 = b->shape.size() == 1 ? Shape{b->shape[0], 1} : b->shape;
      const int K = checked_int(b2[b2.size() - 2], node_, "K");
      const int N = checked_int(b2.back(), node_, "N");
      const int64_t count = shape_size(Shape(b2.begin(), b2.end() - 2));
      const float* B = static_cast<const float*>(b->storage.get());
      std::vector<float> w(static_cast<size_t>(N) * K);
      for (int64_t i = 0; i < count; ++i) {
        table_->transpose_f32(B + i * K * N, K, N, static_cast<size_t>(N), w.data(), static_cast<size_t>(K));
        packed_.push_back(pack_f32_weights(table_, w.data(), N, K));
        packed_bytes_ += table_->f32_packed_size(N, K);
      }
    }
    node_.release_attrs();  // every attribute read above
  }

  void infer(const std::vector<const Tensor*>& in, std::vector<Tensor>& out) override {
    const Tensor* a = require_input(node_, in, 0, "A");
    const Tensor* b = require_input(node_, in, 1, "B");
    require_dtype(node_, a, "A", DType::F32);
    require_dtype(node_, b, "B", DType::F32);
    const MatMulShape s = matmul_shape(node_, a->shape, b->shape);
    checked_int(s.K, node_, "K");
    checked_int(s.N, node_, "N");
    checked_int(s.M, node_, "M");
    out.resize(1);
    out[0].dtype = DType::F32;
    out[0].shape = s.out;
    shape_size(s.out);
  }

  // A constant B is packed at build.
  bool keeps_copy_of(size_t input) const override { return input == 1 && !packed_.empty(); }
  size_t weight_bytes() const override { return packed_bytes_; }

  void run(const std::vector<const Tensor*>& in, std::vector<Tensor*>& out, RunContext& ctx) override {
    const Tensor& a = *in[0];
    const Tensor& b = *in[1];
    float* Y = out[0]->ptr<float>();
    const MatMulShape s = matmul_shape(node_, a.shape, b.shape);
    const int64_t M = s.M, K = s.K, N = s.N;
    if (out[0]->size() == 0) return;
    const int64_t b_count = shape_size(s.b_batch);
    const int64_t batches = shape_size(s.batch);

    // The packed [N][K] matrices of B, one per batch matrix of B.
    std::vector<const void*> packed(static_cast<size_t>(b_count));
    const kernels::KernelTable* table = ctx.gemm.table;
    if (!packed_.empty() && table == table_) {
      for (int64_t i = 0; i < b_count; ++i) packed[i] = packed_[i].get();
    } else {
      if (!b.data && N * K > 0) fail("ERR_INTERNAL", node_.where() + ": B was packed for another kernel set");
      // Each [K][N] matrix packed as it lies (no transposed copy first: that and the strided
      // packing of it were a third of an attention head's MatMul).
      const size_t bytes = table->f32_packed_size(static_cast<int>(N), static_cast<int>(K));
      for (int64_t i = 0; i < b_count; ++i) {
        void* p = ctx.scratch(bytes);
        table->f32_pack_kn(b.ptr<float>() + i * K * N, static_cast<int>(K), static_cast<int>(N), static_cast<size_t>(N), p);
        packed[i] = p;
      }
    }

    float clamp_values[2];
    const float* clamp = act_.as_clamp(clamp_values) ? clamp_values : nullptr;
    const float* A = a.ptr<float>();
    if (b_count == 1) {  // one B for every row of A: A's batch folds into M
      const int64_t rows = batches * M;
      gemm_f32(ctx.gemm, checked_int(rows, node_, "rows of A"), static_cast<int>(N), static_cast<int>(K), A,
               static_cast<size_t>(K), packed[0], nullptr, clamp, Y, static_cast<size_t>(N));
    } else {
      auto product = [&](const GemmContext& gc, int64_t i) {
        const float* ai = A + broadcast_index(s.a_batch, s.batch, i) * M * K;
        const void* bi = packed[broadcast_index(s.b_batch, s.batch, i)];
        gemm_f32(gc, static_cast<int>(M), static_cast<int>(N), static_cast<int>(K), ai, static_cast<size_t>(K), bi,
                 nullptr, clamp, Y + i * M * N, static_cast<size_t>(N));
      };
      // Many small products (an attention layer's heads: 12 of 128 x 128 x 32) go whole to the
      // threads, one product per thread at a time, rather than each split over the threads: a
      // fork-join per head cost more than half the head's work on two cores. The same sums
      // either way (a GEMM's outputs do not depend on how its tiles are split).
      const int threads = thread_count(ctx.gemm);
      if (threads > 1 && batches >= threads && M * N * K <= (int64_t(1) << 22)) {
        const GemmContext one{ctx.gemm.table, nullptr, 1};
        parallel_ranges(ctx.gemm, batches, 1, [&](int64_t b0, int64_t b1) {
          for (int64_t i = b0; i < b1; ++i) product(one, i);
        });
      } else {
        for (int64_t i = 0; i < batches; ++i) product(ctx.gemm, i);
      }
    }
    if (!clamp) act_.apply(Y, static_cast<size_t>(out[0]->size()));
  }

 private:
  NodeDesc node_;
  const kernels::KernelTable* table_;
  Activation act_;
  std::vector<std::shared_ptr<void>> packed_;  // constant B: one packed [N][K] per batch matrix
  size_t packed_bytes_ = 0;
};

std::unique_ptr<Op> make_matmul(const BuildContext& bc) { return std::make_unique<MatMulOp>(bc); }

}  // namespace
}  // namespace ops
}  // namespace exec
}  // namespace ternion

TERNION_REGISTER_OP(MatMul, ternion::exec::ops::make_matmul);
