// Pooling on the pixel-major (NHWC) activations of chained quantized layers
// (lib/ir/passes/channels-last.ts):
//
// TernionMaxPoolNhwc: MaxPool's attributes (kernel_shape 1-D / 2-D, strides, pads, auto_pad,
//   dilations, ceil_mode) on X [N, spatial..., C] -> [N, out spatial..., C], float32 or uint8.
//   For uint8 (quantized by the previous layer) the quantization is monotone, so the max of
//   quantized values is the quantized max: the result equals MaxPool in fp32 followed by that
//   quantization. A window entirely in the padding gives the lowest value (0 for uint8, the
//   quantized fp32 lowest). float32: the first tap starts the max, later taps replace it when
//   greater (so a NaN propagates only from the first tap, as MaxPool).
// TernionGlobalAveragePoolNhwc: float32 X [N, spatial..., C] -> float32 [N, C, 1, ...] (NCHW, as
//   GlobalAveragePool), summed in the same order as GlobalAveragePool on NCHW planes (eight
//   interleaved partial sums, then the tail, then the partials), so the results are identical.
#include <algorithm>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "exec/graph.h"
#include "exec/ops/conv-common.h"
#include "exec/ops/vector-math.h"

namespace ternion {
namespace exec {
namespace ops {
namespace {

class MaxPoolNhwcOp : public Op {
 public:
  explicit MaxPoolNhwcOp(const BuildContext& bc) : node_(bc.node) {
    attrs_ = read_window_attrs(node_);
    if (attrs_.kernel.empty() || attrs_.kernel.size() > 2)
      fail("ERR_MODEL_FORMAT", node_.where() + ": kernel_shape must have 1 or 2 dims");
    if (node_.outputs.size() != 1) fail("ERR_UNSUPPORTED_OP", node_.where() + " must have exactly one output");
    node_.release_attrs();  // every attribute read above
  }

  void infer(const std::vector<const Tensor*>& in, std::vector<Tensor>& out) override {
    const Tensor* x = require_input(node_, in, 0, "X");
    if (x->dtype != DType::U8) require_dtype(node_, x, "input X", DType::F32);
    const Window3 g = window(*x);
    Shape y{x->shape[0]};
    for (int i = 3 - g.nd; i < 3; ++i) y.push_back(g.out[i]);
    y.push_back(x->shape.back());
    out.resize(1);
    out[0].dtype = x->dtype;
    out[0].shape = y;
  }

  void run(const std::vector<const Tensor*>& in, std::vector<Tensor*>& out, RunContext& ctx) override {
    const Tensor& x = *in[0];
    if (x.dtype == DType::U8) pool<uint8_t>(x, *out[0], ctx);
    else pool<float>(x, *out[0], ctx);
  }

 private:
  template <typename T>
  void pool(const Tensor& x, Tensor& out, RunContext& ctx) const {
    const Window3 g = window(x);
    const int64_t N = x.shape[0], C = x.shape.back();
    const int64_t in_plane = g.in_size(), out_plane = g.out_size();
    const T* X = x.ptr<T>();
    T* Y = out.ptr<T>();
    const int64_t H = g.in[1], W = g.in[2], OW = g.out[2];
    parallel_ranges(ctx.gemm, N * out_plane, 16, [&](int64_t begin, int64_t end) {
      // The window's in-bounds taps (in kh, kw order), then the max over them per 64-byte block
      // of channels held in vector registers, so y is written once.
      std::vector<const T*> taps;
      taps.reserve(static_cast<size_t>(g.k[1] * g.k[2]));
      // 16-byte vectors (GCC vector extensions: SSE2 / NEON), four per 64-byte block.
      typedef T Vec __attribute__((vector_size(16)));
      constexpr int64_t kPer = 16 / sizeof(T), kVecs = 4, kLanes = kPer * kVecs;
      for (int64_t i = begin; i < end; ++i) {
        const int64_t n = i / out_plane, p = i % out_plane;
        const int64_t oh = p / OW, ow = p % OW;
        T* y = Y + i * C;
        taps.clear();
        for (int64_t kh = 0; kh < g.k[1]; ++kh) {
          const int64_t ih = oh * g.s[1] - g.pb[1] + kh * g.d[1];
          if (ih < 0 || ih >= H) continue;
          for (int64_t kw = 0; kw < g.k[2]; ++kw) {
            const int64_t iw = ow * g.s[2] - g.pb[2] + kw * g.d[2];
            if (iw >= 0 && iw < W) taps.push_back(X + (n * in_plane + ih * W + iw) * C);
          }
        }
        if (taps.empty()) {
          std::fill(y, y + C, std::is_same<T, uint8_t>::value ? T(0) : std::numeric_limits<T>::lowest());
          continue;
        }
        const T* const* tp = taps.data();
        const size_t nt = taps.size();
        int64_t c0 = 0;
        for (; c0 + kLanes <= C; c0 += kLanes) {
          Vec m[kVecs];
          for (int j = 0; j < kVecs; ++j) std::memcpy(&m[j], tp[0] + c0 + j * kPer, sizeof(Vec));
          for (size_t t = 1; t < nt; ++t)
            for (int j = 0; j < kVecs; ++j) {
              Vec v;
              std::memcpy(&v, tp[t] + c0 + j * kPer, sizeof(Vec));
              m[j] = v > m[j] ? v : m[j];
            }
          for (int j = 0; j < kVecs; ++j) std::memcpy(y + c0 + j * kPer, &m[j], sizeof(Vec));
        }
        // Then single vectors: 32 uint8 channels (a small stem's) would otherwise all take the
        // scalar loop below, which made such a MaxPool cost as much as the conv before it.
        for (; c0 + kPer <= C; c0 += kPer) {
          Vec m;
          std::memcpy(&m, tp[0] + c0, sizeof(Vec));
          for (size_t t = 1; t < nt; ++t) {
            Vec v;
            std::memcpy(&v, tp[t] + c0, sizeof(Vec));
            m = v > m ? v : m;
          }
          std::memcpy(y + c0, &m, sizeof(Vec));
        }
        for (int64_t c = c0; c < C; ++c) {
          T m = tp[0][c];
          for (size_t t = 1; t < nt; ++t) m = tp[t][c] > m ? tp[t][c] : m;
          y[c] = m;
        }
      }
  });
  }

 Window3 window(const Tensor& x) const {
    const int nd = static_cast<int>(attrs_.kernel.size());
    if (static_cast<int>(x.shape.size()) != nd + 2)
      fail("ERR_SHAPE_MISMATCH", node_.where() + ": input " + shape_str(x.shape) + " must have rank " + std::to_string(nd + 2));
    return resolve_window(node_, attrs_, x.shape.data() + 1, nd, attrs_.kernel);
  }

  NodeDesc node_;
  WindowAttrs attrs_;
};

// acc[c] += v[c], compiled wide (the same adds: the same bits at any width).
TERNION_WIDE_CLONES void add_into(float* acc, const float* v, int64_t n) {
  for (int64_t c = 0; c < n; ++c) acc[c] += v[c];
}

class GlobalAveragePoolNhwcOp : public Op {
 public:
  explicit GlobalAveragePoolNhwcOp(const BuildContext& bc) : node_(bc.node) {
    if (node_.outputs.size() != 1) fail("ERR_UNSUPPORTED_OP", node_.where() + " must have exactly one output");
    node_.release_attrs();  // every attribute read above
  }

  void infer(const std::vector<const Tensor*>& in, std::vector<Tensor>& out) override {
    const Tensor* x = require_input(node_, in, 0, "X");
    require_dtype(node_, x, "input X", DType::F32);
    if (x->shape.size() < 3)
      fail("ERR_SHAPE_MISMATCH", node_.where() + ": input " + shape_str(x->shape) + " must have rank >= 3 (N, spatial..., C)");
    Shape y{x->shape[0], x->shape.back()};
    for (size_t i = 2; i < x->shape.size(); ++i) y.push_back(1);
    out.resize(1);
    out[0].dtype = DType::F32;
    out[0].shape = y;
  }

  void run(const std::vector<const Tensor*>& in, std::vector<Tensor*>& out, RunContext& ctx) override {
    const Tensor& x = *in[0];
    const int64_t N = x.shape[0], C = x.shape.back();
    const int64_t plane = N * C != 0 ? x.size() / (N * C) : 0;
    const float* X = x.ptr<float>();
    float* Y = out[0]->ptr<float>();
    const int64_t whole = plane / 8 * 8;
    parallel_ranges(ctx.gemm, N, 1, [&](int64_t begin, int64_t end) {
      std::vector<float> part(static_cast<size_t>(8 * C));
      for (int64_t n = begin; n < end; ++n) {
        const float* xn = X + n * plane * C;
        std::fill(part.begin(), part.end(), 0.0f);
        for (int64_t i = 0; i < whole; ++i) add_into(part.data() + (i % 8) * C, xn + i * C, C);
        for (int64_t c = 0; c < C; ++c) {
          float sum = 0.0f;
          for (int64_t i = whole; i < plane; ++i) sum += xn[i * C + c];
          for (int j = 0; j < 8; ++j) sum += part[j * C + c];
          Y[n * C + c] = plane > 0 ? sum / static_cast<float>(plane) : 0.0f;
        }
      }
    });
  }

 private:
  NodeDesc node_;
};

std::unique_ptr<Op> make_max_pool_nhwc(const BuildContext& bc) { return std::make_unique<MaxPoolNhwcOp>(bc); }
std::unique_ptr<Op> make_global_average_pool_nhwc(const BuildContext& bc) { return std::make_unique<GlobalAveragePoolNhwcOp>(bc); }

}  // namespace
}  // namespace ops
}  // namespace exec
}  // namespace ternion

TERNION_REGISTER_OP(TernionMaxPoolNhwc, ternion::exec::ops::make_max_pool_nhwc);
TERNION_REGISTER_OP(TernionGlobalAveragePoolNhwc, ternion::exec::ops::make_global_average_pool_nhwc);
