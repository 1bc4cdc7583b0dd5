// Shared pieces of the window ops (Conv, ConvTranspose, pooling, the quantized convs) and of
// the GEMM-backed ops: fused activations, window geometry with ONNX padding rules, checked
// narrowing, packing of fp32 weights, numpy MatMul shapes, and a parallel-for over row ranges
// on the run's thread pool.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "exec/graph.h"

namespace ternion {
namespace exec {
namespace ops {

// ---------------------------------------------------------------- fused activation

// The activation a fusion pass folded into Conv/Gemm/MatMul. Two spellings are accepted: the
// integer form (`fused_activation` 0 none, 1 Relu, 2 Clip with `fused_min`/`fused_max`,
// 3 LeakyRelu with `fused_alpha`) and the IR's (`activation` "Relu"/"Clip"/"LeakyRelu" with
// `activation_params` [min, max] or [alpha]).
// SiLU and HardSwish over a span in place, the TernionSilu / HardSwish ops' arithmetic
// (activations.cc, compiled wide): a conv that applies them as its activation gives the bits of
// the separate op.
void silu_in_place(float* p, int64_t n);
void hard_swish_in_place(float* p, int64_t n);

struct Activation {
  enum Kind { None = 0, Relu = 1, Clip = 2, LeakyRelu = 3, Silu = 4, HardSwish = 5 } kind = None;
  float lo = -std::numeric_limits<float>::infinity();
  float hi = std::numeric_limits<float>::infinity();
  float alpha = 0.01f;

  bool none() const { return kind == None; }
  bool relu_only() const { return kind == Relu; }

  // Relu and Clip as the fp32 GEMM's clamp {lo, hi} (kernels.h: the same comparisons as of()):
  // true and `out` set when the kernel can apply this activation itself.
  bool as_clamp(float out[2]) const {
    if (kind != Relu && kind != Clip) return false;
    out[0] = kind == Relu ? 0.0f : lo;
    out[1] = kind == Relu ? std::numeric_limits<float>::infinity() : hi;
    return true;
  }

  // The formulas, written once; KIND is a compile-time kind so loops over it vectorize.
  template <int KIND>
  float of(float v) const {
    if (KIND == Relu) return v < 0.0f ? 0.0f : v;
    if (KIND == Clip) return std::min(std::max(v, lo), hi);
    if (KIND == LeakyRelu) return v < 0.0f ? v * alpha : v;
    return v;
  }

  void apply(float* p, size_t n) const {
    switch (kind) {
      case None: return;
      case Relu: return apply_as<Relu>(p, n);
      case Clip: return apply_as<Clip>(p, n);
      case LeakyRelu: return apply_as<LeakyRelu>(p, n);
      case Silu: return silu_in_place(p, static_cast<int64_t>(n));
      case HardSwish: return hard_swish_in_place(p, static_cast<int64_t>(n));
    }
  }
  float apply1(float v) const {
    switch (kind) {
      case Relu: return of<Relu>(v);
      case Clip: return of<Clip>(v);
      case LeakyRelu: return of<LeakyRelu>(v);
      case Silu:
      case HardSwish: apply(&v, 1); return v;
      default: return v;
    }
  }

 private:
  template <int KIND>
  void apply_as(float* p, size_t n) const {
    for (size_t i = 0; i < n; ++i) p[i] = of<KIND>(p[i]);
  }
};

inline Activation read_activation(const NodeDesc& node) {
  Activation a;
  if (node.has("fused_activation")) {
    const int64_t kind = node.get_int("fused_activation", 0);
    if (kind < 0 || kind > 5) fail("ERR_MODEL_FORMAT", node.where() + ": unknown fused_activation " + std::to_string(kind));
    a.kind = static_cast<Activation::Kind>(kind);
    a.lo = node.get_float("fused_min", a.lo);
    a.hi = node.get_float("fused_max", a.hi);
    a.alpha = node.get_float("fused_alpha", a.alpha);
  } else if (node.has("activation")) {
    const std::string name = node.get_string("activation", "");
    const std::vector<float> params = node.get_floats("activation_params");
    if (name == "Relu") {
      a.kind = Activation::Relu;
    } else if (name == "Clip") {
      a.kind = Activation::Clip;
      if (params.size() >= 1) a.lo = params[0];
      if (params.size() >= 2) a.hi = params[1];
    } else if (name == "LeakyRelu") {
      a.kind = Activation::LeakyRelu;
      if (!params.empty()) a.alpha = params[0];
    } else if (name == "Silu") {
      a.kind = Activation::Silu;
    } else if (name == "HardSwish") {
      a.kind = Activation::HardSwish;
    } else if (!name.empty()) {
      fail("ERR_UNSUPPORTED_OP", node.where() + ": unknown fused activation '" + name + "'");
    }
  }
  return a;
}

// ---------------------------------------------------------------- checks

inline int checked_int(int64_t v, const NodeDesc& node, const char* what) {
  if (v < 0 || v > std::numeric_limits<int>::max())
    fail("ERR_SHAPE_MISMATCH", node.where() + ": " + what + " " + std::to_string(v) + " is out of range");
  return static_cast<int>(v);
}

inline void require_dtype(const NodeDesc& node, const Tensor* t, const char* what, DType want) {
  if (t->dtype != want)
    fail("ERR_DTYPE", node.where() + ": " + what + " must be " + dtype_name(want) + ", got " + dtype_name(t->dtype));
}

inline const Tensor* require_input(const NodeDesc& node, const std::vector<const Tensor*>& in, size_t i, const char* what) {
  if (i >= in.size() || !in[i]) fail("ERR_SHAPE_MISMATCH", node.where() + ": missing input " + what);
  return in[i];
}

// A fused residual input (the Add a fusion pass folded in): float32 with the output's shape.
inline void check_residual(const NodeDesc& node, const Tensor* r, const Shape& y) {
  if (!r) return;
  require_dtype(node, r, "residual", DType::F32);
  if (r->shape != y)
    fail("ERR_SHAPE_MISMATCH", node.where() + ": residual " + shape_str(r->shape) + " must have the output shape " + shape_str(y));
}

inline const Tensor* optional_input(const std::vector<const Tensor*>& in, size_t i) {
  return i < in.size() ? in[i] : nullptr;
}

// ---------------------------------------------------------------- window geometry

// Window attributes as written on the node (kernel_shape may be empty: taken from the weights).
struct WindowAttrs {
  std::vector<int64_t> kernel, strides, dilations, pads;
  std::string auto_pad;
  bool ceil_mode = false;
};

inline WindowAttrs read_window_attrs(const NodeDesc& node) {
  WindowAttrs w;
  w.kernel = node.get_ints("kernel_shape");
  w.strides = node.get_ints("strides");
  w.dilations = node.get_ints("dilations");
  w.pads = node.get_ints("pads");
  w.auto_pad = node.get_string("auto_pad", "NOTSET");
  w.ceil_mode = node.get_int("ceil_mode", 0) != 0;
  if (w.auto_pad != "NOTSET" && w.auto_pad != "SAME_UPPER" && w.auto_pad != "SAME_LOWER" && w.auto_pad != "VALID")
    fail("ERR_MODEL_FORMAT", node.where() + ": unknown auto_pad '" + w.auto_pad + "'");
  return w;
}

// Resolved geometry of up to 3 spatial axes, right-aligned into D, H, W (a 1-D window is
// D = H = 1), so one loop nest serves 1-D, 2-D and 3-D.
struct Window3 {
  int nd = 0;                 // spatial rank of the node
  int64_t in[3] = {1, 1, 1};  // input extent
  int64_t k[3] = {1, 1, 1};   // kernel
  int64_t out[3] = {1, 1, 1};
  int64_t s[3] = {1, 1, 1};
  int64_t d[3] = {1, 1, 1};
  int64_t pb[3] = {0, 0, 0};  // padding before
  int64_t pe[3] = {0, 0, 0};  // padding after
  int64_t in_size() const { return in[0] * in[1] * in[2]; }
  int64_t out_size() const { return out[0] * out[1] * out[2]; }
  int64_t k_size() const { return k[0] * k[1] * k[2]; }
  bool is_pointwise() const {  // 1x1 kernel, stride 1, no padding: output pixel p reads input pixel p
    for (int i = 0; i < 3; ++i)
      if (k[i] != 1 || s[i] != 1 || pb[i] != 0 || pe[i] != 0) return false;
    return true;
  }
};

// Output pixel i of a batch as (image n, od, oh, ow), stepped one pixel at a time: one set of
// divisions per range of pixels instead of several per pixel (the depthwise convs build tap
// pointers pixel by pixel).
struct PixelCursor {
  int64_t n, od, oh, ow;
  PixelCursor(int64_t i, const Window3& g) {
    const int64_t OP = g.out_size(), p = i % OP;
    n = i / OP;
    od = p / (g.out[1] * g.out[2]);
    oh = (p / g.out[2]) % g.out[1];
    ow = p % g.out[2];
  }
  void next(const Window3& g) {
    if (++ow < g.out[2]) return;
    ow = 0;
    if (++oh < g.out[1]) return;
    oh = 0;
    if (++od < g.out[0]) return;
    od = 0;
    ++n;
  }
};

// The input pixels under a depthwise window, for kernels over an indirection buffer: taps
// [t0, t1) of output pixel `at` (in (kd, kh, kw) order) of an image of C values per pixel, with
// `outside` for taps in the padding. A window wholly inside the image (most pixels) is its
// origin plus offsets computed once, instead of bounds checks and index arithmetic per tap.
template <typename T>
class TapPointers {
 public:
  TapPointers(const Window3& g, int64_t C) : g_(g), C_(C) {
    for (int64_t kd = 0; kd < g.k[0]; ++kd)
      for (int64_t kh = 0; kh < g.k[1]; ++kh)
        for (int64_t kw = 0; kw < g.k[2]; ++kw) offsets_.push_back(((kd * g.d[0] * g.in[1] + kh * g.d[1]) * g.in[2] + kw * g.d[2]) * C);
  }

  // Returns true when the window lies wholly inside the image.
  bool fill(const T* img, const PixelCursor& at, const T* outside, int64_t t0, int64_t t1, const T** out) const {
    const Window3& g = g_;
    const int64_t D = g.in[0], H = g.in[1], W = g.in[2];
    const int64_t id0 = at.od * g.s[0] - g.pb[0], ih0 = at.oh * g.s[1] - g.pb[1], iw0 = at.ow * g.s[2] - g.pb[2];
    if (id0 >= 0 && id0 + (g.k[0] - 1) * g.d[0] < D && ih0 >= 0 && ih0 + (g.k[1] - 1) * g.d[1] < H && iw0 >= 0 &&
        iw0 + (g.k[2] - 1) * g.d[2] < W) {
      const T* origin = img + ((id0 * H + ih0) * W + iw0) * C_;
      for (int64_t t = t0; t < t1; ++t) out[t - t0] = origin + offsets_[static_cast<size_t>(t)];
      return true;
    }
    int64_t t = 0;
    for (int64_t kd = 0; kd < g.k[0]; ++kd) {
      const int64_t id = id0 + kd * g.d[0];
      for (int64_t kh = 0; kh < g.k[1]; ++kh) {
        const int64_t ih = ih0 + kh * g.d[1];
        const bool row = id >= 0 && id < D && ih >= 0 && ih < H;
        for (int64_t kw = 0; kw < g.k[2]; ++kw, ++t) {
          if (t < t0 || t >= t1) continue;
          const int64_t iw = iw0 + kw * g.d[2];
          out[t - t0] = row && iw >= 0 && iw < W ? img + ((id * H + ih) * W + iw) * C_ : outside;
        }
      }
    }
    return false;
  }

  // All taps of n consecutive output pixels from `at` (image at.n at img + at.n * image_size),
  // `taps` pointers each. Along an output row, a window inside the image after one inside is the
  // previous pixel's pointers moved by one stride: an add per tap instead of the bounds tests
  // and the origin's index arithmetic (which cost as much as a small depthwise kernel's work).
  void fill_pixels(const T* img, int64_t image_size, PixelCursor at, int64_t n, const T* outside, int64_t taps, const T** out) const {
    const Window3& g = g_;
    const int64_t step = g.s[2] * C_, last_iw = g.in[2] - 1 - (g.k[2] - 1) * g.d[2];
    bool prev_inside = false;
    for (int64_t i = 0; i < n; ++i, at.next(g)) {
      const T** o = out + i * taps;
      if (prev_inside && at.ow > 0 && at.ow * g.s[2] - g.pb[2] <= last_iw) {
        for (int64_t t = 0; t < taps; ++t) o[t] = o[t - taps] + step;
        continue;
      }
      prev_inside = fill(img + at.n * image_size, at, outside, 0, taps, o);
    }
  }

 private:
  Window3 g_;
  int64_t C_;
  std::vector<int64_t> offsets_;
};

// Output extents and pads of a conv or pool over `in_spatial` (ONNX rules, ceil_mode for pools).
inline Window3 resolve_window(const NodeDesc& node, const WindowAttrs& a, const int64_t* in_spatial, int nd,
                              const std::vector<int64_t>& kernel) {
  if (nd < 1 || nd > 3)
    fail("ERR_UNSUPPORTED_OP", node.where() + ": " + std::to_string(nd) + "-D windows are not supported (1-D to 3-D only)");
  auto bad = [&](const std::string& what) { fail("ERR_SHAPE_MISMATCH", node.where() + ": " + what); };
  if (static_cast<int>(kernel.size()) != nd)
    bad("kernel has " + std::to_string(kernel.size()) + " dims but the input has " + std::to_string(nd) + " spatial dims");
  if (!a.strides.empty() && static_cast<int>(a.strides.size()) != nd) bad("strides has " + std::to_string(a.strides.size()) + " values, expected " + std::to_string(nd));
  if (!a.dilations.empty() && static_cast<int>(a.dilations.size()) != nd) bad("dilations has " + std::to_string(a.dilations.size()) + " values, expected " + std::to_string(nd));
  if (!a.pads.empty() && static_cast<int>(a.pads.size()) != 2 * nd) bad("pads has " + std::to_string(a.pads.size()) + " values, expected " + std::to_string(2 * nd));
  Window3 w;
  w.nd = nd;
  const int off = 3 - nd;
  for (int i = 0; i < nd; ++i) {
    const int j = off + i;
    w.in[j] = in_spatial[i];
    w.k[j] = kernel[i];
    w.s[j] = a.strides.empty() ? 1 : a.strides[i];
    w.d[j] = a.dilations.empty() ? 1 : a.dilations[i];
    if (w.k[j] < 1 || w.s[j] < 1 || w.d[j] < 1 || w.k[j] > (int64_t(1) << 20) || w.s[j] > (int64_t(1) << 20) || w.d[j] > (int64_t(1) << 20))
      bad("kernel " + shape_str(kernel) + ", strides and dilations must be positive");
    const int64_t span = (w.k[j] - 1) * w.d[j] + 1;
    if (a.auto_pad == "SAME_UPPER" || a.auto_pad == "SAME_LOWER") {
      w.out[j] = (w.in[j] + w.s[j] - 1) / w.s[j];
      const int64_t total = std::max<int64_t>(0, (w.out[j] - 1) * w.s[j] + span - w.in[j]);
      w.pb[j] = a.auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
      w.pe[j] = total - w.pb[j];
      continue;
    }
    if (a.auto_pad == "NOTSET" && !a.pads.empty()) {
      w.pb[j] = a.pads[i];
      w.pe[j] = a.pads[i + nd];
      if (w.pb[j] < 0 || w.pe[j] < 0 || w.pb[j] > (int64_t(1) << 20) || w.pe[j] > (int64_t(1) << 20))
        bad("pads " + shape_str(a.pads) + " must be non-negative");
    }
    const int64_t padded = w.in[j] + w.pb[j] + w.pe[j] - span;
    if (padded < 0)
      bad("the window (kernel " + shape_str(kernel) + ", dilations " + shape_str(a.dilations) + ") is larger than the padded input on spatial axis " + std::to_string(i) + " (input extent " + std::to_string(w.in[j]) + ")");
    if (!a.ceil_mode) {
      w.out[j] = padded / w.s[j] + 1;
    } else {
      w.out[j] = (padded + w.s[j] - 1) / w.s[j] + 1;
      // The last window must start inside the input or its begin padding (as ORT/PyTorch).
      if ((w.out[j] - 1) * w.s[j] >= w.in[j] + w.pb[j]) --w.out[j];
    }
  }
  return w;
}

// ---------------------------------------------------------------- packed fp32 weights

// W [N][K] packed for `table` into a new 64-byte aligned block that lives as long as the op.
inline std::shared_ptr<void> pack_f32_weights(const kernels::KernelTable* table, const float* W, int N, int K) {
  const size_t bytes = table->f32_packed_size(N, K);
  HostTensor block = make_host_tensor(DType::U8, {static_cast<int64_t>(bytes)});
  table->f32_pack(W, N, K, block.storage.get());
  return block.storage;
}

// ---------------------------------------------------------------- MatMul shapes

// Shapes of one MatMul after promoting 1-D operands.
struct MatMulShape {
  int64_t M = 0, K = 0, N = 0;
  Shape batch;             // broadcast batch dims of the output
  Shape a_batch, b_batch;  // each operand's batch dims, left-padded with 1 to batch's rank
  Shape out;
};

inline MatMulShape matmul_shape(const NodeDesc& node, const Shape& a, const Shape& b) {
  auto bad = [&](const std::string& why) {
    fail("ERR_SHAPE_MISMATCH", node.where() + ": A " + shape_str(a) + " and B " + shape_str(b) + " " + why);
  };
  if (a.empty() || b.empty()) bad("must have rank >= 1");
  MatMulShape s;
  const Shape a2 = a.size() == 1 ? Shape{1, a[0]} : a;
  const Shape b2 = b.size() == 1 ? Shape{b[0], 1} : b;
  s.M = a2[a2.size() - 2];
  s.K = a2.back();
  s.N = b2.back();
  if (b2[b2.size() - 2] != s.K) bad("disagree on K");
  const Shape ab(a2.begin(), a2.end() - 2), bb(b2.begin(), b2.end() - 2);
  const size_t rank = std::max(ab.size(), bb.size());
  s.a_batch.assign(rank - ab.size(), 1);
  s.a_batch.insert(s.a_batch.end(), ab.begin(), ab.end());
  s.b_batch.assign(rank - bb.size(), 1);
  s.b_batch.insert(s.b_batch.end(), bb.begin(), bb.end());
  for (size_t i = 0; i < rank; ++i) {
    const int64_t x = s.a_batch[i], y = s.b_batch[i];
    if (x != y && x != 1 && y != 1) bad("have batch dims that do not broadcast");
    s.batch.push_back(x == 1 ? y : x);
  }
  s.out = s.batch;
  if (a.size() != 1) s.out.push_back(s.M);
  if (b.size() != 1) s.out.push_back(s.N);
  return s;
}

// Offset (in matrices) of the operand's batch matrix for output batch index `i`.
inline int64_t broadcast_index(const Shape& operand_batch, const Shape& batch, int64_t i) {
  int64_t index = 0, stride = 1;
  for (size_t d = batch.size(); d-- > 0;) {
    const int64_t coord = i % batch[d];
    i /= batch[d];
    if (operand_batch[d] != 1) index += coord * stride;
    stride *= operand_batch[d];
  }
  return index;
}

// ---------------------------------------------------------------- threads

inline int thread_count(const GemmContext& ctx) {
  return ctx.pool ? std::max(1, std::min(ctx.threads, ctx.pool->size())) : 1;
}

// Calls fn(begin, end) over disjoint ranges covering [0, n), on the run's threads when the
// work is worth it (at least `grain` items per range). fn must not throw.
template <typename Fn>
void parallel_ranges(const GemmContext& ctx, int64_t n, int64_t grain, Fn&& fn) {
  if (n <= 0) return;
  const int threads = thread_count(ctx);
  const int64_t chunks = std::min<int64_t>(int64_t(threads) * 4, (n + grain - 1) / std::max<int64_t>(grain, 1));
  if (threads <= 1 || chunks <= 1) {
    fn(int64_t(0), n);
    return;
  }
  ctx.pool->parallel_for(static_cast<int>(chunks), threads, [&](int i) {
    fn(n * i / chunks, n * (i + 1) / chunks);
  });
}

}  // namespace ops
}  // namespace exec
}  // namespace ternion
