// ONNX Conv (1-D to 3-D, groups, depthwise, pads / auto_pad, strides, dilations) with the
// fusions the graph passes add: `fused_activation` / `activation` and a residual input (3)
// added before the activation.
//
// Dense groups run as im2col + the table's fp32 GEMM against weights packed once at build:
// C[pixels][Cout/group] = im2col[pixels][Cin/group * k] x W[Cout/group][Cin/group * k]^T, then a
// blocked transpose into NCHW. Pixels go in chunks so the im2col block stays in cache. Groups
// with one input channel each (depthwise, with or without a channel multiplier) use a direct
// loop instead of GEMMs with a tiny K.
//
// Pixel-major layouts (lib/ir/passes/channels-last.ts chains convs this way):
//   input_layout "nhwc"   X is float32 [N, spatial..., C]. Dense groups read im2col rows from
//                         it with contiguous copies (a pointwise conv reads X itself); the
//                         weights (constant only) are reordered to (kernel offset, channel).
//   output_layout "nhwc"  Y (and the residual) are [N, out spatial..., M]: the GEMM writes Y
//                         directly, no transpose. A dense planar input (the graph's first
//                         conv) is then staged pixel-major per image for im2col.
// Depthwise convs with a pixel-major output (one channel per group, no multiplier; a planar
// input is staged pixel-major first) run the kernel table's dw_f32, which sums the taps in the
// same order and with the same roundings as the planar loop (bit-identical results); dense convs
// in pixel-major order sum K in another order, so they agree with the planar path to fp32
// rounding.
#include <algorithm>
#include <cstring>

#include "exec/graph.h"
#include "exec/ops/conv-common.h"
#include "exec/ops/im2col.h"

namespace ternion {
namespace exec {
namespace ops {
namespace {

// Direct convolution of one image's channel m whose group has a single input channel:
// out[p] = bias + sum_k w[k] * x[window(p, k)], accumulated kernel tap by tap over output rows
// so the inner loop runs over contiguous outputs.
void depthwise_channel(const float* x, const float* w, float bias, const Window3& g, float* out) {
  const int64_t OD = g.out[0], OH = g.out[1], OW = g.out[2];
  const int64_t D = g.in[0], H = g.in[1], W = g.in[2];
  for (int64_t od = 0; od < OD; ++od) {
    for (int64_t oh = 0; oh < OH; ++oh) {
      float* o = out + (od * OH + oh) * OW;
      for (int64_t ow = 0; ow < OW; ++ow) o[ow] = bias;
      for (int64_t kd = 0; kd < g.k[0]; ++kd) {
        const int64_t id = od * g.s[0] - g.pb[0] + kd * g.d[0];
        if (id < 0 || id >= D) continue;
        for (int64_t kh = 0; kh < g.k[1]; ++kh) {
          const int64_t ih = oh * g.s[1] - g.pb[1] + kh * g.d[1];
          if (ih < 0 || ih >= H) continue;
          const float* xr = x + (id * H + ih) * W;
          const float* wr = w + (kd * g.k[1] + kh) * g.k[2];
          for (int64_t kw = 0; kw < g.k[2]; ++kw) {
            const float wv = wr[kw];
            // Outputs whose input column iw = ow * s - pb + kw * d lies inside [0, W).
            const int64_t shift = kw * g.d[2] - g.pb[2];
            int64_t lo = shift >= 0 ? 0 : (-shift + g.s[2] - 1) / g.s[2];
            int64_t hi = W - 1 - shift < 0 ? 0 : (W - 1 - shift) / g.s[2] + 1;
            hi = std::min(hi, OW);
            if (g.s[2] == 1) {
              const float* xs = xr + shift;
              for (int64_t ow = lo; ow < hi; ++ow) o[ow] += wv * xs[ow];
            } else {
              for (int64_t ow = lo; ow < hi; ++ow) o[ow] += wv * xr[ow * g.s[2] + shift];
            }
          }
        }
      }
    }
  }
}

// The epilogue after a pixel-major GEMM: `rows` rows of `width` outputs, `ld` apart, get the
// residual (same layout) added, then the activation. Contiguous rows go as one span: a SiLU
// per row of a few dozen channels spent more on the call and vector tails than on the math.
void finish_rows(float* y, const float* residual, int64_t rows, int64_t width, int64_t ld, const Activation& act) {
  if (width == ld) {
    const int64_t n = rows * width;
    if (residual)
      for (int64_t i = 0; i < n; ++i) y[i] += residual[i];
    act.apply(y, static_cast<size_t>(n));
    return;
  }
  for (int64_t p = 0; p < rows; ++p) {
    float* o = y + p * ld;
    if (residual)
      for (int64_t m = 0; m < width; ++m) o[m] += residual[p * ld + m];
    act.apply(o, static_cast<size_t>(width));
  }
}

class ConvOp : public Op {
 public:
  explicit ConvOp(const BuildContext& bc)
      : where_(bc.node.where()), node_(bc.node), table_(bc.table) {
    attrs_ = read_window_attrs(bc.node);
    group_ = bc.node.get_int("group", 1);
    if (group_ < 1) fail("ERR_SHAPE_MISMATCH", where_ + ": group " + std::to_string(group_) + " must be positive");
    act_ = read_activation(bc.node);
    if (bc.node.outputs.size() != 1) fail("ERR_UNSUPPORTED_OP", where_ + " must have exactly one output");
    if (bc.node.inputs.size() > 4) fail("ERR_UNSUPPORTED_OP", where_ + " has more than 4 inputs");
    in_nhwc_ = read_layout("input_layout");
    out_nhwc_ = read_layout("output_layout");
    const HostTensor* wc = bc.constant(1);
    if ((in_nhwc_ || out_nhwc_) && !wc) fail("ERR_MODEL_FORMAT", where_ + ": pixel-major layouts need constant weights");
    if (wc) prepare_weights(*wc);
    if (const HostTensor* b = bc.constant(2)) {
      if (b->dtype != DType::F32 || b->shape.size() != 1)
        fail("ERR_DTYPE", where_ + ": bias must be a 1-D float32 tensor, got " + dtype_name(b->dtype) + " " + shape_str(b->shape));
      const float* p = static_cast<const float*>(b->storage.get());
      const_bias_.assign(p, p + shape_size(b->shape));
      has_const_bias_ = true;
    }
    node_.release_attrs();  // every attribute read above
  }

  void infer(const std::vector<const Tensor*>& in, std::vector<Tensor>& out) override {
    const Tensor* x = require_input(node_, in, 0, "X");
    const Tensor* w = require_input(node_, in, 1, "W");
    require_dtype(node_, x, "input X", DType::F32);
    require_dtype(node_, w, "weights W", DType::F32);
    const size_t rank = x->shape.size();
    if (rank < 3) fail("ERR_SHAPE_MISMATCH", where_ + ": input " + shape_str(x->shape) + " must have rank >= 3 (N, C, spatial...)");
    if (w->shape.size() != rank)
      fail("ERR_SHAPE_MISMATCH", where_ + ": weights " + shape_str(w->shape) + " must have the rank of the input " + shape_str(x->shape));
    const int64_t C = in_nhwc_ ? x->shape.back() : x->shape[1], M = w->shape[0];
    if (w->shape[1] * group_ != C)
      fail("ERR_SHAPE_MISMATCH", where_ + ": input " + shape_str(x->shape) + " has " + std::to_string(C) + " channels but weights " +
                                     shape_str(w->shape) + " with group " + std::to_string(group_) + " expect " + std::to_string(w->shape[1] * group_));
    if (M % group_ != 0)
      fail("ERR_SHAPE_MISMATCH", where_ + ": " + std::to_string(M) + " output channels of weights " + shape_str(w->shape) +
                                     " are not divisible by group " + std::to_string(group_));
    const std::vector<int64_t> wk(w->shape.begin() + 2, w->shape.end());
    if (!attrs_.kernel.empty() && attrs_.kernel != wk)
      fail("ERR_SHAPE_MISMATCH", where_ + ": kernel_shape " + shape_str(attrs_.kernel) + " does not match weights " + shape_str(w->shape));
    const Window3 geom = window(*x, *w);
    if (const Tensor* b = optional_input(in, 2)) {
      require_dtype(node_, b, "bias B", DType::F32);
      if (b->shape.size() != 1 || b->shape[0] != M)
        fail("ERR_SHAPE_MISMATCH", where_ + ": bias " + shape_str(b->shape) + " must be [" + std::to_string(M) + "]");
    }
    if ((in_nhwc_ || out_nhwc_) && w->shape[1] == 1 && group_ > 1 && (!out_nhwc_ || M != C))
      fail("ERR_UNSUPPORTED_OP", where_ + ": a pixel-major depthwise conv needs a pixel-major output and no channel multiplier");
    Shape y{x->shape[0]};
    if (!out_nhwc_) y.push_back(M);
    for (int i = 3 - geom.nd; i < 3; ++i) y.push_back(geom.out[i]);
    if (out_nhwc_) y.push_back(M);
    check_residual(node_, optional_input(in, 3), y);
    const int64_t K = w->shape[1] * geom.k_size();
    checked_int(K, node_, "reduction length Cin/group * kernel size");
    checked_int(M, node_, "output channels");
    shape_size(y);
    out.resize(1);
    out[0].dtype = DType::F32;
    out[0].shape = y;
  }

  void run(const std::vector<const Tensor*>& in, std::vector<Tensor*>& out, RunContext& ctx) override {
    const Tensor& x = *in[0];
    const Tensor& w = *in[1];
    const Tensor* b = optional_input(in, 2);
    const Tensor* r = optional_input(in, 3);
    Tensor& y = *out[0];
    const Window3 geom = window(x, w);
    const int64_t N = x.shape[0], C = in_nhwc_ ? x.shape.back() : x.shape[1], M = w.shape[0];
    const int64_t Cg = C / group_, Mg = M / group_;
    const int64_t K = Cg * geom.k_size();
    const int64_t in_plane = geom.in_size(), P = geom.out_size();
    const float* bias = has_const_bias_ ? const_bias_.data() : b ? b->ptr<float>() : nullptr;
    const float* X = x.ptr<float>();
    const float* R = r ? r->ptr<float>() : nullptr;
    float* Y = y.ptr<float>();
    if (y.size() == 0) return;

    if (depthwise(Cg) && out_nhwc_) {  // pixel-major depthwise (M == C, checked in infer)
      const float* pixels = X;
      if (!in_nhwc_) {
        // A planar input (after a reshape or concat the chain does not follow) is staged
        // pixel-major: one transpose, then the vector kernel instead of the planar loop
        // (stride-2 taps there read every other float).
        float* staged = static_cast<float*>(ctx.scratch(static_cast<size_t>(N * C * in_plane) * sizeof(float)));
        parallel_ranges(ctx.gemm, N * in_plane, 1024, [&](int64_t b0, int64_t b1) {
          for (int64_t i = b0; i < b1;) {
            const int64_t n = i / in_plane, p = i % in_plane, len = std::min(b1 - i, in_plane - p);
            ctx.gemm.table->transpose_f32(X + n * C * in_plane + p, static_cast<int>(C), static_cast<int>(len),
                                          static_cast<size_t>(in_plane), staged + i * C, static_cast<size_t>(C));
            i += len;
          }
        });
        pixels = staged;
      }
      run_depthwise_pixel_major(pixels, bias, R, Y, geom, N, C, ctx);
      return;
    }
    if (depthwise(Cg) && M > 0) {  // depthwise (optionally with a channel multiplier): direct loop
      const float* W = w.ptr<float>();
      const int64_t ksize = geom.k_size();
      parallel_ranges(ctx.gemm, N * M, 1, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) {
          const int64_t n = i / M, m = i % M;
          const int64_t c = m / Mg;
          float* o = Y + i * P;
          depthwise_channel(X + (n * C + c) * in_plane, W + m * ksize, bias ? bias[m] : 0.0f, geom, o);
          if (R) {
            const float* rr = R + i * P;
            for (int64_t p = 0; p < P; ++p) o[p] += rr[p];
          }
          act_.apply(o, static_cast<size_t>(P));
        }
      });
      return;
    }

    // Packed weights of every group: built once for constant weights, per run otherwise.
    const kernels::KernelTable* table = ctx.gemm.table;
    std::vector<const void*> packed(group_);
    if (!packed_.empty() && table == table_) {
      for (int64_t g = 0; g < group_; ++g) packed[g] = packed_[g].get();
    } else {
      const size_t bytes = table->f32_packed_size(static_cast<int>(Mg), static_cast<int>(K));
      const float* wsrc = in_nhwc_ || stage_nhwc_ ? nullptr : w.ptr<float>();  // pixel-major weights exist packed only
      if (!wsrc) fail("ERR_INTERNAL", where_ + ": the weights were packed for another kernel set");
      for (int64_t g = 0; g < group_; ++g) {
        void* p = ctx.scratch(bytes);
        table->f32_pack(wsrc + g * Mg * K, static_cast<int>(Mg), static_cast<int>(K), p);
        packed[g] = p;
      }
    }

    const bool pointwise = geom.is_pointwise();
    if (in_nhwc_ || out_nhwc_ || stage_nhwc_) {
      run_pixel_major(x, packed, bias, R, y, geom, K, Cg, Mg, ctx);
      return;
    }
    const int threads = thread_count(ctx.gemm);
    // Pixels per chunk: the im2col block within ~1 MB, but enough rows for every thread.
    int64_t rows = std::max<int64_t>((int64_t(1) << 18) / std::max<int64_t>(K, 1), 48 * threads);
    rows = std::min(std::max<int64_t>(rows, 64), P);
    float* col = static_cast<float*>(ctx.scratch(static_cast<size_t>(rows * std::max<int64_t>(K, 1)) * sizeof(float)));
    float* cbuf = static_cast<float*>(ctx.scratch(static_cast<size_t>(rows * Mg) * sizeof(float)));
    float clamp_values[2];  // Relu / Clip run in the GEMM unless a residual comes first
    const float* clamp = !R && act_.as_clamp(clamp_values) ? clamp_values : nullptr;
    const Activation post = clamp ? Activation{} : act_;

    for (int64_t n = 0; n < N; ++n) {
      for (int64_t g = 0; g < group_; ++g) {
        const float* xg = X + (n * C + g * Cg) * in_plane;
        float* yg = Y + (n * M + g * Mg) * P;
        const float* rg = R ? R + (n * M + g * Mg) * P : nullptr;
        for (int64_t p0 = 0; p0 < P; p0 += rows) {
          const int64_t p1 = std::min(P, p0 + rows);
          parallel_ranges(ctx.gemm, p1 - p0, 32, [&](int64_t b0, int64_t b1) {
            if (pointwise)
              table->transpose_f32(xg + p0 + b0, static_cast<int>(Cg), static_cast<int>(b1 - b0), static_cast<size_t>(in_plane),
                                   col + b0 * K, static_cast<size_t>(K));
            else
              im2col_rows(xg, Cg, geom, p0 + b0, p0 + b1, 0.0f, col + b0 * K, static_cast<size_t>(K));
          });
          gemm_f32(ctx.gemm, static_cast<int>(p1 - p0), static_cast<int>(Mg), static_cast<int>(K), col,
                   static_cast<size_t>(K), packed[g], bias ? bias + g * Mg : nullptr, clamp, cbuf,
                   static_cast<size_t>(Mg));
          parallel_ranges(ctx.gemm, p1 - p0, 64, [&](int64_t b0, int64_t b1) {
            store_pixels_to_planes(ctx.gemm.table, cbuf + b0 * Mg, b1 - b0, Mg, static_cast<size_t>(Mg), yg + p0 + b0,
                                   static_cast<size_t>(P), rg ? rg + p0 + b0 : nullptr, post);
          });
        }
      }
    }
  }

  // Packed dense weights (or the pixel-major depthwise taps) and a constant bias are copies.
  size_t weight_bytes() const override { return packed_bytes_ + (dw_taps_.size() + const_bias_.size()) * sizeof(float); }
  bool keeps_copy_of(size_t input) const override {
    return (input == 1 && (!packed_.empty() || !dw_taps_.empty())) || (input == 2 && has_const_bias_);
  }

 private:
  // Dense groups with a pixel-major input and / or output. A pixel-major output is written by
  // the GEMM itself (row stride M); a planar one goes through the blocked transpose.
  void run_pixel_major(const Tensor& x, const std::vector<const void*>& packed, const float* bias, const float* R, Tensor& y,
                       const Window3& geom, int64_t K, int64_t Cg, int64_t Mg, RunContext& ctx) const {
    const int64_t N = x.shape[0], M = Mg * group_, C = Cg * group_;
    const int64_t in_plane = geom.in_size(), P = geom.out_size();
    const float* X = x.ptr<float>();
    float* Y = y.ptr<float>();
    const bool pointwise = geom.is_pointwise();
    const bool direct_a = in_nhwc_ && pointwise;  // A = X's pixels themselves
    // A planar pointwise input: A is its planes transposed in tiles (im2col would copy one
    // float per channel and pixel).
    const bool planar_pointwise = !in_nhwc_ && !stage_nhwc_ && pointwise;
    const int threads = thread_count(ctx.gemm);
    // Batches: with at least as many images as threads, each thread takes whole images (no join
    // per chunk, which on small images costs more than the work it splits), as TernionQConv.
    const bool by_image = threads > 1 && N >= threads && (N % threads == 0 || N >= 4 * threads);
    const int slots = by_image ? threads : 1;
    const int inner = by_image ? 1 : threads;
    // Pixels per chunk: the im2col block within ~1 MB and, for a planar output, the GEMM result
    // the transpose reads back within ~256 KB, so it is still in cache (a 1x1 expansion of 16 to
    // 96 channels at 112x112 wrote its whole 4.8 MB result to memory, read it back and wrote it
    // again: 1.6 ms, against 0.44 ms pixel-major).
    int64_t rows = (int64_t(1) << 18) / std::max<int64_t>(K, 1);
    if (!out_nhwc_) rows = std::min(rows, (int64_t(1) << 16) / std::max<int64_t>(Mg, 1));
    rows = std::max<int64_t>(rows, 48 * inner);
    rows = std::min(std::max<int64_t>(rows, 64), P);
    // On a table with the segment GEMM, a window's kernel rows (KW pixels of C values, one span
    // in a pixel-major image) are read in place: an implicit im2col, whose copies were a tenth
    // of a small-channel network's time. Rows crossing the left or right edge are copied.
    const int64_t seg_len = C * geom.k[2], seg_count = geom.k[0] * geom.k[1];
    const bool segments = ctx.gemm.table->f32_gemm_segs != nullptr && !pointwise && group_ == 1 && (in_nhwc_ || stage_nhwc_) &&
                          kernel_rows_are_spans(static_cast<size_t>(C), C, geom);
    std::vector<float*> cols(static_cast<size_t>(slots), nullptr), cbufs(static_cast<size_t>(slots), nullptr),
        stages(static_cast<size_t>(slots), nullptr), pads(static_cast<size_t>(slots), nullptr);
    std::vector<const float**> seg_ptrs(static_cast<size_t>(slots), nullptr);
    for (int i = 0; i < slots; ++i) {
      if (!direct_a) cols[i] = static_cast<float*>(ctx.scratch(static_cast<size_t>(rows * std::max<int64_t>(K, 1)) * sizeof(float)));
      if (!out_nhwc_) cbufs[i] = static_cast<float*>(ctx.scratch(static_cast<size_t>(rows * Mg) * sizeof(float)));
      if (stage_nhwc_) stages[i] = static_cast<float*>(ctx.scratch(static_cast<size_t>(in_plane * C) * sizeof(float)));
      if (segments) {
        seg_ptrs[i] = static_cast<const float**>(ctx.scratch(static_cast<size_t>(rows * seg_count) * sizeof(const float*)));
        pads[i] = static_cast<float*>(ctx.scratch(static_cast<size_t>(seg_len) * sizeof(float)));
        std::fill(pads[i], pads[i] + seg_len, 0.0f);
      }
    }
    float clamp_values[2];  // Relu / Clip run in the GEMM unless a residual comes first
    const float* clamp = !R && act_.as_clamp(clamp_values) ? clamp_values : nullptr;
    const Activation post = clamp ? Activation{} : act_;
    // Image n with the threads of gc, in chunks of output pixels through im2col (or the image
    // itself for a pixel-major pointwise conv), the GEMM and the epilogue.
    auto image = [&](int64_t n, const GemmContext& gc, float* col, float* cbuf, float* stage, const float** segs, const float* pad) {
      const int gthreads = thread_count(gc);
      // Image n pixel-major: X itself, or its planes staged (stage_nhwc_).
      const float* pixels = in_nhwc_ ? X + n * in_plane * C : stage;
      if (stage_nhwc_)
        parallel_ranges(gc, in_plane, 1024, [&](int64_t b0, int64_t b1) {
          gc.table->transpose_f32(X + n * C * in_plane + b0, static_cast<int>(C), static_cast<int>(b1 - b0), static_cast<size_t>(in_plane),
                                  stage + b0 * C, static_cast<size_t>(C));
        });
      for (int64_t g = 0; g < group_; ++g) {
        for (int64_t p0 = 0; p0 < P; p0 += rows) {
          const int64_t p1 = std::min(P, p0 + rows);
          if (out_nhwc_ && gthreads > 1 && p1 - p0 >= 64 * gthreads) {
            // Enough pixels: each thread runs its block through im2col, the GEMM (all output
            // channels, one thread) and the epilogue: one join, the block stays in its cache.
            GemmContext one = gc;
            one.pool = nullptr;
            one.threads = 1;
            const float* bg = bias ? bias + g * Mg : nullptr;
            parallel_ranges(gc, p1 - p0, 32, [&](int64_t b0, int64_t b1) {
              float* yo = Y + (n * P + p0 + b0) * M + g * Mg;
              if (segments) {
                const float** sp = segs + b0 * seg_count;
                segment_pixels(pixels, C, geom, p0 + b0, p0 + b1, 0.0f, pad, col + b0 * K, static_cast<size_t>(K), sp);
                gemm_f32_segs(one, static_cast<int>(b1 - b0), static_cast<int>(Mg), static_cast<int>(seg_count), static_cast<int>(seg_len), sp,
                              packed[g], bg, clamp, yo, static_cast<size_t>(M));
                if (R || !post.none())
                  finish_rows(yo, R ? R + (n * P + p0 + b0) * M + g * Mg : nullptr, b1 - b0, Mg, M, post);
                return;
              }
              const float* A;
              size_t lda;
              if (direct_a) {
                A = X + (n * in_plane + p0 + b0) * C + g * Cg;
                lda = static_cast<size_t>(C);
              } else {
                float* rows_col = col + b0 * K;
                if (planar_pointwise)
                  gc.table->transpose_f32(X + (n * C + g * Cg) * in_plane + p0 + b0, static_cast<int>(Cg), static_cast<int>(b1 - b0),
                                          static_cast<size_t>(in_plane), rows_col, static_cast<size_t>(K));
                else if (pixels)
                  im2col_pixels(pixels + g * Cg, static_cast<size_t>(C), Cg, geom, p0 + b0, p0 + b1, 0.0f, rows_col,
                                static_cast<size_t>(K));
                else
                  im2col_rows(X + (n * C + g * Cg) * in_plane, Cg, geom, p0 + b0, p0 + b1, 0.0f, rows_col, static_cast<size_t>(K));
                A = rows_col;
                lda = static_cast<size_t>(K);
              }
              gemm_f32(one, static_cast<int>(b1 - b0), static_cast<int>(Mg), static_cast<int>(K), A, lda, packed[g], bg, clamp, yo,
                       static_cast<size_t>(M));
              if (R || !post.none())
                finish_rows(yo, R ? R + (n * P + p0 + b0) * M + g * Mg : nullptr, b1 - b0, Mg, M, post);
            });
            continue;
          }
          const float* A = col;
          size_t lda = static_cast<size_t>(K);
          if (direct_a) {
            A = X + (n * in_plane + p0) * C + g * Cg;
            lda = static_cast<size_t>(C);
          } else if (planar_pointwise) {
            const float* xg = X + (n * C + g * Cg) * in_plane;
            parallel_ranges(gc, p1 - p0, 32, [&](int64_t b0, int64_t b1) {
              gc.table->transpose_f32(xg + p0 + b0, static_cast<int>(Cg), static_cast<int>(b1 - b0), static_cast<size_t>(in_plane),
                                      col + b0 * K, static_cast<size_t>(K));
            });
          } else if (segments) {
            parallel_ranges(gc, p1 - p0, 32, [&](int64_t b0, int64_t b1) {
              segment_pixels(pixels, C, geom, p0 + b0, p0 + b1, 0.0f, pad, col + b0 * K, static_cast<size_t>(K), segs + b0 * seg_count);
            });
          } else if (pixels) {
            const float* img = pixels + g * Cg;
            parallel_ranges(gc, p1 - p0, 32, [&](int64_t b0, int64_t b1) {
              im2col_pixels(img, static_cast<size_t>(C), Cg, geom, p0 + b0, p0 + b1, 0.0f, col + b0 * K, static_cast<size_t>(K));
            });
          } else {
            const float* xg = X + (n * C + g * Cg) * in_plane;
            parallel_ranges(gc, p1 - p0, 32, [&](int64_t b0, int64_t b1) {
              im2col_rows(xg, Cg, geom, p0 + b0, p0 + b1, 0.0f, col + b0 * K, static_cast<size_t>(K));
            });
          }
          const float* bg = bias ? bias + g * Mg : nullptr;
          // The chunk's GEMM into C (ldc values per row): on the segments, or on A.
          auto chunk_gemm = [&](float* out, size_t ldc) {
            if (segments)
              gemm_f32_segs(gc, static_cast<int>(p1 - p0), static_cast<int>(Mg), static_cast<int>(seg_count), static_cast<int>(seg_len), segs,
                            packed[g], bg, clamp, out, ldc);
            else
              gemm_f32(gc, static_cast<int>(p1 - p0), static_cast<int>(Mg), static_cast<int>(K), A, lda, packed[g], bg, clamp, out, ldc);
          };
          if (out_nhwc_) {
            float* yo = Y + (n * P + p0) * M + g * Mg;
            chunk_gemm(yo, static_cast<size_t>(M));
            if (R || !post.none()) {
              const float* rr = R ? R + (n * P + p0) * M + g * Mg : nullptr;
              parallel_ranges(gc, p1 - p0, 64, [&](int64_t b0, int64_t b1) {
                finish_rows(yo + b0 * M, rr ? rr + b0 * M : nullptr, b1 - b0, Mg, M, post);
              });
            }
          } else {
            chunk_gemm(cbuf, static_cast<size_t>(Mg));
            float* yg = Y + (n * M + g * Mg) * P;
            const float* rg = R ? R + (n * M + g * Mg) * P : nullptr;
            parallel_ranges(gc, p1 - p0, 64, [&](int64_t b0, int64_t b1) {
              store_pixels_to_planes(gc.table, cbuf + b0 * Mg, b1 - b0, Mg, static_cast<size_t>(Mg), yg + p0 + b0, static_cast<size_t>(P),
                                     rg ? rg + p0 + b0 : nullptr, post);
            });
          }
        }
      }
    };
    if (!by_image) {
      for (int64_t n = 0; n < N; ++n) image(n, ctx.gemm, cols[0], cbufs[0], stages[0], seg_ptrs[0], pads[0]);
      return;
    }
    GemmContext one = ctx.gemm;
    one.pool = nullptr;
    one.threads = 1;
    ctx.gemm.pool->parallel_for(slots, threads, [&](int i) {
      const size_t k = static_cast<size_t>(i);
      for (int64_t n = N * i / slots; n < N * (i + 1) / slots; ++n) image(n, one, cols[k], cbufs[k], stages[k], seg_ptrs[k], pads[k]);
    });
  }

  // Pixel-major depthwise: the table's dw_f32 over tap pointers built per block of output
  // pixels (on the stack: no allocation on the threads). Relu / Clip run in the kernel unless a
  // residual must be added first. A kernel with more taps than the buffer holds runs pixel by
  // pixel in tap slices, each continuing from the previous one's sums (its output as the bias),
  // the same additions in the same order.
  void run_depthwise_pixel_major(const float* X, const float* bias, const float* R, float* Y, const Window3& geom, int64_t N,
                                 int64_t C, RunContext& ctx) const {
    const kernels::KernelTable* table = ctx.gemm.table;
    const int64_t OP = geom.out_size(), taps = geom.k_size(), in_plane = geom.in_size();
    const float inf = std::numeric_limits<float>::infinity();
    float clamp[2] = {-inf, inf};  // no activation: the kernel's clamp lets everything through
    const bool fused = !R && (act_.none() || act_.as_clamp(clamp));
    const float lo = clamp[0], hi = clamp[1];
    const int c = static_cast<int>(C);
    auto finish = [&](int64_t i0, int64_t i1) {
      if (!fused) finish_rows(Y + i0 * C, R ? R + i0 * C : nullptr, i1 - i0, C, C, act_);
    };
    constexpr int64_t kPtrs = 2048;
    // Taps outside the input are null: the kernel skips them, as the planar loop does.
    const TapPointers<float> tap_ptrs(geom, C);
    parallel_ranges(ctx.gemm, N * OP, 8, [&](int64_t begin, int64_t end) {
      const float* ptrs[kPtrs];
      if (taps <= kPtrs) {
        const int64_t per = kPtrs / taps;
        for (int64_t a = begin; a < end; a += per) {
          const int64_t b = std::min(end, a + per);
          tap_ptrs.fill_pixels(X, in_plane * C, PixelCursor(a, geom), b - a, nullptr, taps, ptrs);
          table->dw_f32(static_cast<int>(b - a), c, static_cast<int>(taps), ptrs, dw_taps_.data(), bias, lo, hi, Y + a * C,
                        static_cast<size_t>(C));
          finish(a, b);
        }
        return;
      }
      PixelCursor at(begin, geom);
      for (int64_t i = begin; i < end; ++i, at.next(geom)) {
        float* o = Y + i * C;
        for (int64_t t0 = 0; t0 < taps; t0 += kPtrs) {
          const int64_t t1 = std::min(taps, t0 + kPtrs);
          tap_ptrs.fill(X + at.n * in_plane * C, at, nullptr, t0, t1, ptrs);
          const bool last = t1 == taps;
          table->dw_f32(1, c, static_cast<int>(t1 - t0), ptrs, dw_taps_.data() + t0 * C, t0 == 0 ? bias : o, last ? lo : -inf,
                        last ? hi : inf, o, static_cast<size_t>(C));
        }
        finish(i, i + 1);
      }
    });
  }

  // Groups of one input channel run the depthwise loops; a single-channel input without groups
  // (a grayscale stem) does too when planar, but the dense path when either side is
  // pixel-major (a GEMM with K = kernel size writes pixel-major rows), or when its constant
  // kernel is long (an STFT written as a 1-D conv: 256 taps over a few frames spends its time in
  // the loop's per-tap setup, where a GEMM with K = 256 streams).
  bool depthwise(int64_t Cg) const { return Cg == 1 && (group_ > 1 || (!in_nhwc_ && !out_nhwc_ && !long_kernel_)); }

  bool read_layout(const char* key) const {
    const std::string v = node_.get_string(key, "nchw");
    if (v != "nchw" && v != "nhwc") fail("ERR_MODEL_FORMAT", where_ + ": " + key + " must be \"nchw\" or \"nhwc\", got \"" + v + "\"");
    return v == "nhwc";
  }

  // Recomputed in run(): concurrent runs must not share mutable state.
  Window3 window(const Tensor& x, const Tensor& w) const {
    const std::vector<int64_t> wk(w.shape.begin() + 2, w.shape.end());
    return resolve_window(node_, attrs_, x.shape.data() + (in_nhwc_ ? 1 : 2), static_cast<int>(x.shape.size() - 2), wk);
  }

  void prepare_weights(const HostTensor& w) {
    if (w.dtype != DType::F32) fail("ERR_DTYPE", where_ + ": weights must be float32, got " + dtype_name(w.dtype));
    if (w.shape.size() < 3) fail("ERR_SHAPE_MISMATCH", where_ + ": weights " + shape_str(w.shape) + " must have rank >= 3");
    const int64_t M = w.shape[0];
    if (M % group_ != 0)
      fail("ERR_SHAPE_MISMATCH", where_ + ": " + std::to_string(M) + " output channels of weights " + shape_str(w.shape) +
                                     " are not divisible by group " + std::to_string(group_));
    int64_t S = 1;  // kernel offsets
    for (size_t i = 2; i < w.shape.size(); ++i) S *= w.shape[i];
    const float* data = static_cast<const float*>(w.storage.get());
    long_kernel_ = group_ == 1 && S > kLongKernel;
    if (depthwise(w.shape[1])) {  // the planar depthwise loop reads the weights as they are
      if (out_nhwc_) {       // the pixel-major one reads them tap-major: taps[s][m]
        dw_taps_.resize(static_cast<size_t>(S * M));
        for (int64_t m = 0; m < M; ++m)
          for (int64_t t = 0; t < S; ++t) dw_taps_[t * M + m] = data[m * S + t];
      }
      return;
    }
    const int64_t Mg = M / group_;
    int64_t K = 1;
    for (size_t i = 1; i < w.shape.size(); ++i) K *= w.shape[i];
    checked_int(K, node_, "reduction length Cin/group * kernel size");
    checked_int(Mg, node_, "output channels");
    // A planar input (a channels-last graph's first conv, e.g. the 3-channel stem of an image
    // model, or a conv between ops that need planes: a U-Net's Resize, a ceil-mode MaxPool) is
    // staged pixel-major per image: im2col then copies kernel rows of KW * C values instead of
    // gathering C * KH runs of KW values from C planes per pixel chunk (runs of three floats
    // cost more than the GEMM on them; a 3x3 conv of 128 -> 64 channels at 128x128 with planes
    // in and out ran at half the GEMM's speed). Same columns as a pixel-major input.
    stage_nhwc_ = !in_nhwc_ && group_ == 1 && S > 1;
    if (in_nhwc_ || stage_nhwc_) {  // columns (ci, s) -> (s, ci), the order of pixel-major im2col rows
      const int64_t Cg = w.shape[1];
      w_pixel_major_.resize(static_cast<size_t>(M * K));
      for (int64_t m = 0; m < M; ++m)
        for (int64_t ci = 0; ci < Cg; ++ci)
          for (int64_t t = 0; t < S; ++t) w_pixel_major_[m * K + t * Cg + ci] = data[(m * Cg + ci) * S + t];
      data = w_pixel_major_.data();
    }
    const size_t bytes = table_->f32_packed_size(static_cast<int>(Mg), static_cast<int>(K));
    for (int64_t g = 0; g < group_; ++g) {
      HostTensor block = make_host_tensor(DType::U8, {static_cast<int64_t>(bytes)});
      table_->f32_pack(data + g * Mg * K, static_cast<int>(Mg), static_cast<int>(K), block.storage.get());
      packed_.push_back(block.storage);
      packed_bytes_ += bytes;
    }
    std::vector<float>().swap(w_pixel_major_);  // packed now: the session keeps only the packed form
  }

  std::string where_;
  NodeDesc node_;
  const kernels::KernelTable* table_;
  WindowAttrs attrs_;
  int64_t group_ = 1;
  static constexpr int64_t kLongKernel = 32;  // taps from which a single-channel conv is a GEMM
  bool long_kernel_ = false;                 // set with constant weights only (prepare_weights)
  Activation act_;
  bool in_nhwc_ = false, out_nhwc_ = false, stage_nhwc_ = false;
  std::vector<float> w_pixel_major_;  // dense weights with columns (s, ci) while packing them
  std::vector<float> dw_taps_;        // depthwise weights taps[s][m], for a pixel-major output
  std::vector<std::shared_ptr<void>> packed_;  // one packed block per group (constant weights)
  size_t packed_bytes_ = 0;
  std::vector<float> const_bias_;
  bool has_const_bias_ = false;
};

std::unique_ptr<Op> make_conv(const BuildContext& bc) { return std::make_unique<ConvOp>(bc); }

}  // namespace
}  // namespace ops
}  // namespace exec
}  // namespace ternion

TERNION_REGISTER_OP(Conv, ternion::exec::ops::make_conv);
