// ONNX ConvTranspose (1-D to 3-D, groups, strides, dilations, pads / auto_pad, output_padding,
// output_shape), fp32.
//
// Per image and group: C[in pixels][Cout/group * k] = X^T[in pixels][Cin/group] x
// W'[Cout/group * k][Cin/group]^T through the table's GEMM (W' is the group's weights
// transposed, packed once when constant), then col2im scatters every column entry to the
// output pixel it lands on, threads splitting the output channels.
//
// Pixel-major layouts (lib/ir/passes/channels-last.ts), so U-Net decoders stay chained:
//   input_layout "nhwc"   X is [N, spatial..., C]: its pixel rows are the GEMM's A as they are
//                         (no transpose).
//   output_layout "nhwc"  Y is [N, out spatial..., Cout]; W' has its columns in (tap, channel)
//                         order, so each tap of each input pixel adds a contiguous channel
//                         vector to its output pixel. The same sums in the same order as planar.
#include <algorithm>
#include <cstring>

#include "exec/graph.h"
#include "exec/ops/conv-common.h"
#include "exec/ops/im2col.h"

namespace ternion {
namespace exec {
namespace ops {
namespace {

// Geometry of a transposed convolution, right-aligned into D, H, W like Window3. `in` and
// `out` are the op's input and output extents; pads may be negative when output_shape asks
// for more output than the windows cover.
struct TransposeGeometry {
  int nd = 0;
  int64_t in[3] = {1, 1, 1}, out[3] = {1, 1, 1}, k[3] = {1, 1, 1}, s[3] = {1, 1, 1}, d[3] = {1, 1, 1};
  int64_t pb[3] = {0, 0, 0};
  int64_t in_size() const { return in[0] * in[1] * in[2]; }
  int64_t out_size() const { return out[0] * out[1] * out[2]; }
  int64_t k_size() const { return k[0] * k[1] * k[2]; }
};

class ConvTransposeOp : public Op {
 public:
  explicit ConvTransposeOp(const BuildContext& bc) : node_(bc.node), table_(bc.table) {
    attrs_ = read_window_attrs(node_);
    output_padding_ = node_.get_ints("output_padding");
    output_shape_ = node_.get_ints("output_shape");
    group_ = node_.get_int("group", 1);
    if (group_ < 1) fail("ERR_SHAPE_MISMATCH", node_.where() + ": group " + std::to_string(group_) + " must be positive");
    if (node_.outputs.size() != 1) fail("ERR_UNSUPPORTED_OP", node_.where() + " must have exactly one output");
    in_nhwc_ = read_layout("input_layout");
    out_nhwc_ = read_layout("output_layout");
    if (const HostTensor* w = bc.constant(1)) {
      if (w->dtype != DType::F32 || w->shape.size() < 3)
        fail("ERR_DTYPE", node_.where() + ": weights must be a float32 tensor of rank >= 3, got " + dtype_name(w->dtype) + " " + shape_str(w->shape));
      if (w->shape[0] % group_ != 0)
        fail("ERR_SHAPE_MISMATCH", node_.where() + ": weights " + shape_str(w->shape) + " have " + std::to_string(w->shape[0]) +
                                       " input channels, not divisible by group " + std::to_string(group_));
      const int64_t Cg = w->shape[0] / group_;
      const int64_t cols = shape_size(w->shape) / std::max<int64_t>(w->shape[0], 1);  // Mg * k
      checked_int(Cg, node_, "input channels per group");
      checked_int(cols, node_, "output channels per group * kernel size");
      std::vector<float> t(static_cast<size_t>(Cg * cols)), order(out_nhwc_ ? t.size() : 0);
      const float* W = static_cast<const float*>(w->storage.get());
      const int64_t KK = cols / std::max<int64_t>(w->shape[1], 1);
      for (int64_t g = 0; g < group_; ++g) {
        const float* Wt = transposed_weights(table_, W + g * Cg * cols, Cg, cols, KK, t.data(), order.data());
        packed_.push_back(pack_f32_weights(table_, Wt, static_cast<int>(cols), static_cast<int>(Cg)));
        packed_bytes_ += table_->f32_packed_size(static_cast<int>(cols), static_cast<int>(Cg));
      }
    }
    node_.release_attrs();  // every attribute read above
  }

  void infer(const std::vector<const Tensor*>& in, std::vector<Tensor>& out) override {
    const Tensor* x = require_input(node_, in, 0, "X");
    const Tensor* w = require_input(node_, in, 1, "W");
    require_dtype(node_, x, "input X", DType::F32);
    require_dtype(node_, w, "weights W", DType::F32);
    const TransposeGeometry g = geometry(planar_shape(*x), *w);
    const int64_t M = w->shape[1] * group_;
    if (const Tensor* b = optional_input(in, 2)) {
      require_dtype(node_, b, "bias B", DType::F32);
      if (b->shape.size() != 1 || b->shape[0] != M)
        fail("ERR_SHAPE_MISMATCH", node_.where() + ": bias " + shape_str(b->shape) + " must be [" + std::to_string(M) + "]");
    }
    checked_int(M, node_, "output channels");
    Shape y{x->shape[0]};
    if (!out_nhwc_) y.push_back(M);
    for (int i = 3 - g.nd; i < 3; ++i) y.push_back(g.out[i]);
    if (out_nhwc_) y.push_back(M);
    shape_size(y);
    out.resize(1);
    out[0].dtype = DType::F32;
    out[0].shape = y;
  }

  void run(const std::vector<const Tensor*>& in, std::vector<Tensor*>& out, RunContext& ctx) override {
    const Tensor& x = *in[0];
    const Tensor& w = *in[1];
    const Tensor* b = optional_input(in, 2);
    const Shape xs = planar_shape(x);
    const TransposeGeometry g = geometry(xs, w);
    const int64_t N = xs[0], C = xs[1];
    const int64_t Cg = C / group_, Mg = w.shape[1], M = Mg * group_;
    const int64_t KK = g.k_size(), cols = Mg * KK;
    const int64_t P = g.in_size(), Q = g.out_size();
    const float* X = x.ptr<float>();
    float* Y = out[0]->ptr<float>();
    const float* bias = b ? b->ptr<float>() : nullptr;
    if (out[0]->size() == 0) return;

    const kernels::KernelTable* table = ctx.gemm.table;
    std::vector<const void*> packed(static_cast<size_t>(group_));
    if (!packed_.empty() && table == table_) {
      for (int64_t i = 0; i < group_; ++i) packed[i] = packed_[i].get();
    } else {
      const size_t n = static_cast<size_t>(std::max<int64_t>(Cg * cols, 1));
      float* t = static_cast<float*>(ctx.scratch(n * sizeof(float)));
      float* order = out_nhwc_ ? static_cast<float*>(ctx.scratch(n * sizeof(float))) : nullptr;
      for (int64_t i = 0; i < group_; ++i) {
        const float* Wt = transposed_weights(table, w.ptr<float>() + i * Cg * cols, Cg, cols, KK, t, order);
        void* p = ctx.scratch(table->f32_packed_size(static_cast<int>(cols), static_cast<int>(Cg)));
        table->f32_pack(Wt, static_cast<int>(cols), static_cast<int>(Cg), p);
        packed[i] = p;
      }
    }

    const int64_t rows = std::min<int64_t>(P, std::max<int64_t>(64, (int64_t(1) << 18) / std::max<int64_t>(cols, 1)));
    float* a = static_cast<float*>(ctx.scratch(static_cast<size_t>(std::max<int64_t>(rows * Cg, 1)) * sizeof(float)));
    float* col = static_cast<float*>(ctx.scratch(static_cast<size_t>(std::max<int64_t>(rows * cols, 1)) * sizeof(float)));
    if (in_nhwc_ || out_nhwc_) {
      run_pixel_major(ctx, X, Y, bias, g, N, C, Cg, Mg, M, packed, rows, a, col);
      return;
    }
    for (int64_t n = 0; n < N; ++n) {
      for (int64_t gi = 0; gi < group_; ++gi) {
        const float* xg = X + (n * C + gi * Cg) * P;
        float* yg = Y + (n * M + gi * Mg) * Q;
        for (int64_t m = 0; m < Mg; ++m) std::fill(yg + m * Q, yg + (m + 1) * Q, bias ? bias[gi * Mg + m] : 0.0f);
        for (int64_t p0 = 0; p0 < P; p0 += rows) {
          const int64_t p1 = std::min(P, p0 + rows);
          table->transpose_f32(xg + p0, static_cast<int>(Cg), static_cast<int>(p1 - p0), static_cast<size_t>(P), a, static_cast<size_t>(Cg));
          gemm_f32(ctx.gemm, static_cast<int>(p1 - p0), static_cast<int>(cols), static_cast<int>(Cg), a,
                   static_cast<size_t>(Cg), packed[gi], nullptr, nullptr, col, static_cast<size_t>(cols));
          parallel_ranges(ctx.gemm, Mg, 1, [&](int64_t m0, int64_t m1) {
            col2im(col, p0, p1, m0, m1, KK, cols, g, yg, Q);
          });
        }
      }
    }
  }

  size_t weight_bytes() const override { return packed_bytes_; }

 private:
  // A group's weights W[Cg][Mg * KK] as the GEMM's W' [cols][Cg]: transposed into t, and for a
  // pixel-major output reordered from (channel, tap) to (tap, channel) rows into `order`.
  const float* transposed_weights(const kernels::KernelTable* table, const float* W, int64_t Cg, int64_t cols, int64_t KK, float* t,
                                  float* order) const {
    table->transpose_f32(W, static_cast<int>(Cg), static_cast<int>(cols), static_cast<size_t>(cols), t, static_cast<size_t>(Cg));
    if (!out_nhwc_) return t;
    const int64_t Mg = cols / std::max<int64_t>(KK, 1);
    for (int64_t m = 0; m < Mg; ++m)
      for (int64_t k = 0; k < KK; ++k) std::memcpy(order + (k * Mg + m) * Cg, t + (m * KK + k) * Cg, static_cast<size_t>(Cg) * sizeof(float));
    return order;
  }

  // Either layout pixel-major: A straight from an NHWC input (else a transposed block of
  // planes), and a planar or pixel-major scatter of the columns.
  void run_pixel_major(RunContext& ctx, const float* X, float* Y, const float* bias, const TransposeGeometry& g, int64_t N, int64_t C,
                       int64_t Cg, int64_t Mg, int64_t M, const std::vector<const void*>& packed, int64_t rows, float* a, float* col) const {
    const kernels::KernelTable* table = ctx.gemm.table;
    const int64_t KK = g.k_size(), cols = Mg * KK, P = g.in_size(), Q = g.out_size();
    for (int64_t n = 0; n < N; ++n) {
      float* yn = Y + n * M * Q;
      if (out_nhwc_) {
        parallel_ranges(ctx.gemm, Q, 256, [&](int64_t q0, int64_t q1) {
          for (int64_t q = q0; q < q1; ++q) {
            if (bias) std::memcpy(yn + q * M, bias, static_cast<size_t>(M) * sizeof(float));
            else std::fill(yn + q * M, yn + (q + 1) * M, 0.0f);
          }
        });
      }
      for (int64_t gi = 0; gi < group_; ++gi) {
        if (!out_nhwc_) {
          for (int64_t m = 0; m < Mg; ++m) std::fill(yn + (gi * Mg + m) * Q, yn + (gi * Mg + m + 1) * Q, bias ? bias[gi * Mg + m] : 0.0f);
        }
        for (int64_t p0 = 0; p0 < P; p0 += rows) {
          const int64_t p1 = std::min(P, p0 + rows);
          const float* A = a;
          size_t lda = static_cast<size_t>(Cg);
          if (in_nhwc_) {
            A = X + (n * P + p0) * C + gi * Cg;
            lda = static_cast<size_t>(C);
          } else {
            table->transpose_f32(X + (n * C + gi * Cg) * P + p0, static_cast<int>(Cg), static_cast<int>(p1 - p0), static_cast<size_t>(P), a,
                                 static_cast<size_t>(Cg));
          }
          gemm_f32(ctx.gemm, static_cast<int>(p1 - p0), static_cast<int>(cols), static_cast<int>(Cg), A, lda, packed[gi], nullptr, nullptr, col,
                   static_cast<size_t>(cols));
          if (out_nhwc_) {
            // Channel ranges per thread: each writes its own span of every output pixel.
            parallel_ranges(ctx.gemm, Mg, 16, [&](int64_t m0, int64_t m1) { col2im_nhwc(col, p0, p1, m0, m1, Mg, g, yn + gi * Mg, M); });
          } else {
            parallel_ranges(ctx.gemm, Mg, 1, [&](int64_t m0, int64_t m1) { col2im(col, p0, p1, m0, m1, KK, cols, g, yn + gi * Mg * Q, Q); });
          }
        }
      }
    }
  }

  // col2im for columns in (tap, channel) order and a pixel-major output of M channels per pixel:
  // adds col[p][k][m] to y[output pixel][m] for channels [m0, m1) of one group.
  static void col2im_nhwc(const float* col, int64_t p0, int64_t p1, int64_t m0, int64_t m1, int64_t Mg, const TransposeGeometry& g, float* y,
                          int64_t M) {
    const int64_t cols = Mg * g.k_size(), len = m1 - m0;
    for (int64_t p = p0; p < p1; ++p) {
      const float* c = col + (p - p0) * cols + m0;
      for_each_landing(g, p, [&](int64_t k, int64_t q) {
        const float* ck = c + k * Mg;
        float* yq = y + q * M + m0;
        for (int64_t m = 0; m < len; ++m) yq[m] += ck[m];
      });
    }
  }

  // The input's dims as [N, C, spatial...] whatever its layout.
  Shape planar_shape(const Tensor& x) const {
    if (!in_nhwc_ || x.shape.size() < 3) return x.shape;
    Shape s{x.shape[0], x.shape.back()};
    s.insert(s.end(), x.shape.begin() + 1, x.shape.end() - 1);
    return s;
  }

  bool read_layout(const char* key) const {
    const std::string v = node_.get_string(key, "nchw");
    if (v != "nchw" && v != "nhwc") fail("ERR_MODEL_FORMAT", node_.where() + ": " + key + " must be \"nchw\" or \"nhwc\", got \"" + v + "\"");
    return v == "nhwc";
  }

  // Calls fn(tap, output pixel) for every tap of input pixel p that lands inside the output, in
  // tap order.
  template <typename Fn>
  static void for_each_landing(const TransposeGeometry& g, int64_t p, Fn&& fn) {
    const int64_t id = p / (g.in[1] * g.in[2]), ih = (p / g.in[2]) % g.in[1], iw = p % g.in[2];
    for (int64_t kd = 0; kd < g.k[0]; ++kd) {
      const int64_t od = id * g.s[0] - g.pb[0] + kd * g.d[0];
      if (od < 0 || od >= g.out[0]) continue;
      for (int64_t kh = 0; kh < g.k[1]; ++kh) {
        const int64_t oh = ih * g.s[1] - g.pb[1] + kh * g.d[1];
        if (oh < 0 || oh >= g.out[1]) continue;
        for (int64_t kw = 0; kw < g.k[2]; ++kw) {
          const int64_t ow = iw * g.s[2] - g.pb[2] + kw * g.d[2];
          if (ow >= 0 && ow < g.out[2]) fn((kd * g.k[1] + kh) * g.k[2] + kw, (od * g.out[1] + oh) * g.out[2] + ow);
        }
      }
    }
  }

  // Adds col[p][m][k] to the output pixel that input pixel p and tap k reach, for channels
  // [m0, m1) of one group.
  static void col2im(const float* col, int64_t p0, int64_t p1, int64_t m0, int64_t m1, int64_t KK, int64_t cols,
                     const TransposeGeometry& g, float* y, int64_t Q) {
    // An input pixel's taps land on distinct output pixels: every output value still takes its
    // terms in input pixel order.
    for (int64_t p = p0; p < p1; ++p) {
      const float* c = col + (p - p0) * cols;
      for_each_landing(g, p, [&](int64_t k, int64_t q) {
        for (int64_t m = m0; m < m1; ++m) y[m * Q + q] += c[m * KK + k];
      });
    }
  }

  // From the input's [N, C, spatial...] dims (planar_shape).
  TransposeGeometry geometry(const Shape& xs, const Tensor& w) const {
    auto bad = [&](const std::string& why) {
      fail("ERR_SHAPE_MISMATCH", node_.where() + ": input " + shape_str(xs) + ", weights " + shape_str(w.shape) + ": " + why);
    };
    const size_t rank = xs.size();
    if (rank < 3 || w.shape.size() != rank) bad("input and weights must have the same rank >= 3");
    const int nd = static_cast<int>(rank - 2);
    if (nd > 3) fail("ERR_UNSUPPORTED_OP", node_.where() + ": " + std::to_string(nd) + "-D ConvTranspose is not supported (1-D to 3-D only)");
    if (xs[1] != w.shape[0]) bad("input channels differ from the weights' first dimension");
    if (xs[1] % group_ != 0) bad("input channels are not divisible by group " + std::to_string(group_));
    const std::vector<int64_t> wk(w.shape.begin() + 2, w.shape.end());
    if (!attrs_.kernel.empty() && attrs_.kernel != wk) bad("kernel_shape " + shape_str(attrs_.kernel) + " does not match the weights");
    auto check_len = [&](const std::vector<int64_t>& v, size_t n, const char* name) {
      if (!v.empty() && v.size() != n) bad(std::string(name) + " " + shape_str(v) + " must have " + std::to_string(n) + " values");
    };
    check_len(attrs_.strides, nd, "strides");
    check_len(attrs_.dilations, nd, "dilations");
    check_len(attrs_.pads, 2 * nd, "pads");
    check_len(output_padding_, nd, "output_padding");
    if (!output_shape_.empty() && output_shape_.size() != static_cast<size_t>(nd) && output_shape_.size() != rank)
      bad("output_shape " + shape_str(output_shape_) + " must have " + std::to_string(nd) + " values");
    TransposeGeometry g;
    g.nd = nd;
    const bool same = attrs_.auto_pad == "SAME_UPPER" || attrs_.auto_pad == "SAME_LOWER";
    for (int i = 0; i < nd; ++i) {
      const int j = 3 - nd + i;
      g.in[j] = xs[2 + i];
      g.k[j] = wk[i];
      g.s[j] = attrs_.strides.empty() ? 1 : attrs_.strides[i];
      g.d[j] = attrs_.dilations.empty() ? 1 : attrs_.dilations[i];
      const int64_t op = output_padding_.empty() ? 0 : output_padding_[i];
      const int64_t limit = int64_t(1) << 20;
      if (g.k[j] < 1 || g.s[j] < 1 || g.d[j] < 1 || g.k[j] > limit || g.s[j] > limit || g.d[j] > limit || op < 0 || op > limit)
        bad("kernel, strides and dilations must be positive and output_padding non-negative");
      const int64_t span = (g.k[j] - 1) * g.d[j] + 1;
      const int64_t full = g.s[j] * (g.in[j] - 1) + op + span;  // output extent without padding
      if (!output_shape_.empty() || same) {
        const int64_t want = !output_shape_.empty() ? output_shape_[output_shape_.size() - nd + i] : g.in[j] * g.s[j];
        if (want < 0 || want > (int64_t(1) << 32)) bad("output_shape " + shape_str(output_shape_) + " is out of range");
        const int64_t total = full - want;
        // ONNX: SAME_UPPER puts the larger half of the padding at the end. Floor division as
        // in the reference: output_shape may ask for more than the windows cover (total < 0),
        // and the extra rows then go at the end.
        const int64_t half = total >= 0 ? total / 2 : -((-total + 1) / 2);
        g.pb[j] = attrs_.auto_pad == "SAME_UPPER" ? half : total - half;
        g.out[j] = want;
      } else {
        int64_t pb = 0, pe = 0;
        if (attrs_.auto_pad != "VALID" && !attrs_.pads.empty()) pb = attrs_.pads[i], pe = attrs_.pads[i + nd];
        if (pb < 0 || pe < 0 || pb > limit || pe > limit) bad("pads " + shape_str(attrs_.pads) + " must be non-negative");
        g.pb[j] = pb;
        g.out[j] = full - pb - pe;
        if (g.out[j] < 0) bad("the pads " + shape_str(attrs_.pads) + " exceed the output extent");
      }
    }
    if (g.in_size() > 0 && g.k_size() * w.shape[1] > std::numeric_limits<int>::max()) bad("output channels per group * kernel size is too large");
    return g;
  }

  NodeDesc node_;
  const kernels::KernelTable* table_;
  WindowAttrs attrs_;
  std::vector<int64_t> output_padding_, output_shape_;
  int64_t group_ = 1;
  bool in_nhwc_ = false, out_nhwc_ = false;
  std::vector<std::shared_ptr<void>> packed_;  // per group: W'[Mg * k][Cin/group], packed
  size_t packed_bytes_ = 0;
};

std::unique_ptr<Op> make_conv_transpose(const BuildContext& bc) { return std::make_unique<ConvTransposeOp>(bc); }

}  // namespace
}  // namespace ops
}  // namespace exec
}  // namespace ternion

TERNION_REGISTER_OP(ConvTranspose, ternion::exec::ops::make_conv_transpose);
