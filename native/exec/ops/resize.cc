// Resize (opset 10-19) and Upsample (7-9): nearest, linear and cubic, along any axes, with the
// coordinate transformations half_pixel, pytorch_half_pixel, align_corners and asymmetric, and
// nearest_mode round_prefer_floor / round_prefer_ceil / floor / ceil. Every mode is separable,
// so the op resizes one axis at a time: each pass maps [outer, in, inner] to [outer, out, inner]
// with up to four taps per output index (their positions and weights computed once per axis).
// tf_crop_and_resize, antialias and keep_aspect_ratio_policy other than "stretch" are refused
// at build with ERR_UNSUPPORTED_OP naming the attribute.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "exec/graph.h"
#include "exec/ops/broadcast.h"
#include "exec/ops/op-args.h"
#include "exec/ops/vector-math.h"

namespace ternion {
namespace exec {
namespace {

enum class Mode { Nearest, Linear, Cubic };
enum class Transform { HalfPixel, PytorchHalfPixel, AlignCorners, Asymmetric };
enum class NearestRound { PreferFloor, PreferCeil, Floor, Ceil };

// Output index -> up to four input taps and their weights, for one axis.
struct AxisMap {
  int taps = 1;
  std::vector<int64_t> index;  // [out][taps]
  std::vector<float> weight;   // [out][taps]
};

// The innermost axis: one gathered value per tap and output (the same operations, in the same
// order, as the row loops of resize_axis).
TERNION_WIDE_CLONES void resize_row(const float* s, float* d, int64_t out_len, int taps, const int64_t* index, const float* weight) {
  if (taps == 1) {
    for (int64_t o = 0; o < out_len; ++o) d[o] = s[index[o]];
  } else if (taps == 2) {
    for (int64_t o = 0; o < out_len; ++o) d[o] = weight[2 * o] * s[index[2 * o]] + weight[2 * o + 1] * s[index[2 * o + 1]];
  } else {
    for (int64_t o = 0; o < out_len; ++o) {
      float v = weight[o * taps] * s[index[o * taps]];
      for (int k = 1; k < taps; ++k) v += weight[o * taps + k] * s[index[o * taps + k]];
      d[o] = v;
    }
  }
}

// Two rows blended (linear mode along an outer axis): w0 * a + w1 * b per value, one pass.
TERNION_WIDE_CLONES void resize_lerp(const float* a, const float* b, float* d, int64_t n, float w0, float w1) {
  for (int64_t i = 0; i < n; ++i) d[i] = w0 * a[i] + w1 * b[i];
}

class ResizeOp : public Op {
 public:
  ResizeOp(const NodeDesc& node, bool upsample) : where_(node.where()), upsample_(upsample), opset_(node.opset) {
    const std::string mode = node.get_string("mode", "nearest");
    if (mode == "nearest") mode_ = Mode::Nearest;
    else if (mode == "linear" || mode == "bilinear") mode_ = Mode::Linear;
    else if (mode == "cubic" && !upsample) mode_ = Mode::Cubic;
    else fail("ERR_UNSUPPORTED_OP", where_ + ": mode '" + mode + "' is not supported");
    if (upsample) {
      transform_ = Transform::Asymmetric;  // Upsample: x_in = x_out / scale, nearest floors
      round_ = NearestRound::Floor;
      if (opset_ < 9) attr_scales_ = node.get_floats("scales");
    } else {
      const std::string t = node.get_string("coordinate_transformation_mode", opset_ < 11 ? "asymmetric" : "half_pixel");
      if (t == "half_pixel") transform_ = Transform::HalfPixel;
      else if (t == "pytorch_half_pixel") transform_ = Transform::PytorchHalfPixel;
      else if (t == "align_corners") transform_ = Transform::AlignCorners;
      else if (t == "asymmetric") transform_ = Transform::Asymmetric;
      else fail("ERR_UNSUPPORTED_OP", where_ + ": coordinate_transformation_mode '" + t + "' is not supported");
      const std::string r = node.get_string("nearest_mode", opset_ < 11 ? "floor" : "round_prefer_floor");
      if (r == "round_prefer_floor") round_ = NearestRound::PreferFloor;
      else if (r == "round_prefer_ceil") round_ = NearestRound::PreferCeil;
      else if (r == "floor") round_ = NearestRound::Floor;
      else if (r == "ceil") round_ = NearestRound::Ceil;
      else fail("ERR_UNSUPPORTED_OP", where_ + ": nearest_mode '" + r + "' is not supported");
      cubic_a_ = node.get_float("cubic_coeff_a", -0.75f);
      exclude_outside_ = node.get_int("exclude_outside", 0) != 0;
      if (node.get_int("antialias", 0) != 0) fail("ERR_UNSUPPORTED_OP", where_ + ": antialias is not supported");
      if (node.get_string("keep_aspect_ratio_policy", "stretch") != "stretch")
        fail("ERR_UNSUPPORTED_OP", where_ + ": keep_aspect_ratio_policy other than 'stretch' is not supported");
      axes_ = node.get_ints("axes");
    }
  }

  void infer(const std::vector<const Tensor*>& inputs, std::vector<Tensor>& outputs) override {
    const Tensor& x = op_args::required(inputs, 0, where_, "X");
    op_args::require_dtype(x, {DType::F32}, where_, "X");
    if (outputs.size() != 1) fail("ERR_MODEL_FORMAT", where_ + ": expected one output");
    std::vector<double> scales;
    outputs[0].dtype = DType::F32;
    outputs[0].shape = output_shape(inputs, x.shape, scales);
  }

  void run(const std::vector<const Tensor*>& inputs, std::vector<Tensor*>& outputs, RunContext& ctx) override {
    const Tensor& x = *inputs[0];
    Tensor& y = *outputs[0];
    if (y.size() == 0) return;
    std::vector<double> scales;
    const Shape out = output_shape(inputs, x.shape, scales);
    // One pass per resized axis, ping-ponging between two scratch buffers; the last writes y.
    // Innermost axis first: its pass gathers one value at a time, so it goes where the tensor is
    // smallest when upsampling (a segmentation head's 28 -> 224), and the outer axes' passes then
    // run whole rows as vectors.
    std::vector<size_t> axes;
    for (size_t a = out.size(); a-- > 0;)
      if (out[a] != x.shape[a] || scales[a] != 1.0) axes.push_back(a);
    if (axes.empty()) {
      std::memcpy(y.data, x.data, y.bytes());
      return;
    }
    Shape cur = x.shape;
    const float* src = x.ptr<float>();
    float* bufs[2] = {nullptr, nullptr};
    for (size_t i = 0; i < axes.size(); ++i) {
      const size_t a = axes[i];
      Shape next = cur;
      next[a] = out[a];
      float* dst = y.ptr<float>();
      if (i + 1 < axes.size()) {
        float*& b = bufs[i % 2];
        b = static_cast<float*>(ctx.scratch(static_cast<size_t>(shape_size(next)) * sizeof(float)));
        dst = b;
      }
      resize_axis(ctx, src, cur, a, axis_map(cur[a], out[a], scales[a]), dst);
      src = dst;
      cur = next;
    }
  }

 private:
  // The output shape, and each axis's scale (given, or out / in when sizes are given).
  Shape output_shape(const std::vector<const Tensor*>& inputs, const Shape& in, std::vector<double>& scales) const {
    const size_t rank = in.size();
    scales.assign(rank, 1.0);
    std::vector<int64_t> axes(rank);
    for (size_t i = 0; i < rank; ++i) axes[i] = static_cast<int64_t>(i);
    if (!axes_.empty()) axes = op_args::normalize_axes(axes_, static_cast<int64_t>(rank), where_);
    std::vector<float> given = attr_scales_;
    const Tensor* sizes = nullptr;
    if (upsample_) {
      if (opset_ >= 9) given = read_floats(op_args::required(inputs, 1, where_, "scales"));
    } else {
      const size_t scales_at = opset_ < 11 ? 1 : 2;
      if (const Tensor* s = op_args::optional(inputs, scales_at)) given = read_floats(*s);
      if (opset_ >= 11) sizes = op_args::optional(inputs, 3);
      if (sizes && sizes->size() == 0) sizes = nullptr;
      if (!given.empty() && sizes) fail("ERR_MODEL_FORMAT", where_ + ": give scales or sizes, not both");
      if (given.empty() && !sizes) fail("ERR_MODEL_FORMAT", where_ + ": one of scales and sizes is required");
    }
    Shape out = in;
    if (sizes) {
      const std::vector<int64_t> s = op_args::read_ints(*sizes, where_, "sizes");
      if (s.size() != axes.size()) fail("ERR_SHAPE_MISMATCH", where_ + ": sizes has " + std::to_string(s.size()) + " values for " + std::to_string(axes.size()) + " axes");
      for (size_t i = 0; i < axes.size(); ++i) {
        if (s[i] < 0) fail("ERR_SHAPE_MISMATCH", where_ + ": sizes " + shape_str(s) + " has a negative value");
        out[axes[i]] = s[i];
        scales[axes[i]] = in[axes[i]] ? static_cast<double>(s[i]) / static_cast<double>(in[axes[i]]) : 1.0;
      }
    } else {
      if (given.size() != axes.size()) fail("ERR_SHAPE_MISMATCH", where_ + ": scales has " + std::to_string(given.size()) + " values for " + std::to_string(axes.size()) + " axes");
      for (size_t i = 0; i < axes.size(); ++i) {
        if (!(given[i] > 0)) fail("ERR_SHAPE_MISMATCH", where_ + ": scale " + std::to_string(given[i]) + " is not positive");
        scales[axes[i]] = given[i];
        out[axes[i]] = static_cast<int64_t>(std::floor(static_cast<double>(in[axes[i]]) * given[i]));
      }
    }
    shape_size(out);
    return out;
  }

  std::vector<float> read_floats(const Tensor& t) const {
    op_args::require_dtype(t, {DType::F32}, where_, "scales");
    return std::vector<float>(t.ptr<float>(), t.ptr<float>() + t.size());
  }

  // The input coordinate output index o maps to.
  double source(int64_t o, int64_t in_len, int64_t out_len, double scale) const {
    switch (transform_) {
      case Transform::HalfPixel: return (o + 0.5) / scale - 0.5;
      case Transform::PytorchHalfPixel: return out_len > 1 ? (o + 0.5) / scale - 0.5 : 0.0;
      case Transform::AlignCorners: {
        // ONNX divides by in * scale - 1, the unrounded output length (scales given); with
        // sizes given that is the output length itself.
        const double span = static_cast<double>(in_len) * scale - 1;
        return out_len == 1 || span <= 0 ? 0.0 : static_cast<double>(o) * (in_len - 1) / span;
      }
      case Transform::Asymmetric: return o / scale;
    }
    return 0;
  }

  AxisMap axis_map(int64_t in_len, int64_t out_len, double scale) const {
    AxisMap m;
    m.taps = mode_ == Mode::Nearest ? 1 : mode_ == Mode::Linear ? 2 : 4;
    m.index.resize(static_cast<size_t>(out_len * m.taps));
    m.weight.resize(m.index.size());
    const int64_t last = std::max<int64_t>(in_len - 1, 0);
    for (int64_t o = 0; o < out_len; ++o) {
      const double x = source(o, in_len, out_len, scale);
      int64_t* idx = &m.index[o * m.taps];
      float* w = &m.weight[o * m.taps];
      if (mode_ == Mode::Nearest) {
        double r;
        const double f = std::floor(x), frac = x - f;
        switch (round_) {
          case NearestRound::PreferFloor: r = frac == 0.5 ? f : std::round(x); break;
          case NearestRound::PreferCeil: r = frac == 0.5 ? f + 1 : std::round(x); break;
          case NearestRound::Floor: r = f; break;
          default: r = std::ceil(x); break;
        }
        idx[0] = std::min<int64_t>(std::max<int64_t>(static_cast<int64_t>(r), 0), last);
        w[0] = 1.0f;
      } else if (mode_ == Mode::Linear) {
        const double c = std::min<double>(std::max(x, 0.0), static_cast<double>(last));
        const int64_t i0 = static_cast<int64_t>(std::floor(c));
        const double t = c - i0;
        idx[0] = i0, idx[1] = std::min(i0 + 1, last);
        w[0] = static_cast<float>(1 - t), w[1] = static_cast<float>(t);
      } else {
        const int64_t i0 = static_cast<int64_t>(std::floor(x));
        const double t = x - i0, a = cubic_a_;
        const double d[4] = {t + 1, t, 1 - t, 2 - t};
        double sum = 0;
        for (int k = 0; k < 4; ++k) {
          const double v = d[k];
          double wk = v <= 1 ? ((a + 2) * v - (a + 3)) * v * v + 1 : ((a * v - 5 * a) * v + 8 * a) * v - 4 * a;
          const int64_t at = i0 - 1 + k;
          if (exclude_outside_ && (at < 0 || at > last)) wk = 0;
          idx[k] = std::min<int64_t>(std::max<int64_t>(at, 0), last);
          w[k] = static_cast<float>(wk);
          sum += wk;
        }
        if (exclude_outside_ && sum != 0)
          for (int k = 0; k < 4; ++k) w[k] = static_cast<float>(w[k] / sum);
      }
    }
    return m;
  }

  // [outer, in_len, inner] -> [outer, out_len, inner] along `axis` of `shape`, blocks of outer
  // rows spread over the threads. Each output is w[0] * s[0] + w[1] * s[1] + ..., in that order.
  static void resize_axis(const RunContext& ctx, const float* src, const Shape& shape, size_t axis, const AxisMap& m, float* dst) {
    const int64_t outer = op_args::dims_product(shape, 0, axis), inner = op_args::dims_product(shape, axis + 1, shape.size());
    const int64_t in_len = shape[axis], out_len = static_cast<int64_t>(m.index.size()) / m.taps;
    const int64_t per_row = std::max<int64_t>(out_len * inner, 1);
    broadcast::parallel_range(ctx, outer, std::max<int64_t>(1, (1 << 14) / per_row), [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        const float* s = src + b * in_len * inner;
        float* d = dst + b * out_len * inner;
        if (inner == 1) {
          resize_row(s, d, out_len, m.taps, m.index.data(), m.weight.data());
          continue;
        }
        for (int64_t o = 0; o < out_len; ++o) {
          float* row = d + o * inner;
          const int64_t* idx = &m.index[o * m.taps];
          const float* w = &m.weight[o * m.taps];
          if (m.taps == 1) {
            std::memcpy(row, s + idx[0] * inner, static_cast<size_t>(inner) * sizeof(float));
            continue;
          }
          if (m.taps == 2) {
            resize_lerp(s + idx[0] * inner, s + idx[1] * inner, row, inner, w[0], w[1]);
            continue;
          }
          for (int64_t i = 0; i < inner; ++i) row[i] = w[0] * s[idx[0] * inner + i];
          for (int k = 1; k < m.taps; ++k)
            for (int64_t i = 0; i < inner; ++i) row[i] += w[k] * s[idx[k] * inner + i];
        }
      }
    });
  }

  std::string where_;
  bool upsample_;
  int opset_;
  Mode mode_ = Mode::Nearest;
  Transform transform_ = Transform::HalfPixel;
  NearestRound round_ = NearestRound::PreferFloor;
  float cubic_a_ = -0.75f;
  bool exclude_outside_ = false;
  std::vector<float> attr_scales_;
  std::vector<int64_t> axes_;
};

std::unique_ptr<Op> make_resize(const BuildContext& bc) { return std::make_unique<ResizeOp>(bc.node, false); }
std::unique_ptr<Op> make_upsample(const BuildContext& bc) { return std::make_unique<ResizeOp>(bc.node, true); }

}  // namespace

TERNION_REGISTER_OP(Resize, make_resize);
TERNION_REGISTER_OP(Upsample, make_upsample);

}  // namespace exec
}  // namespace ternion
