// GridSample (opset 16; opset 20's names too) on 4-D float32 input: Y[n, c, h, w] samples
// X[n, c] at the point grid[n, h, w] = (x, y), normalized to [-1, 1] over the input's width and
// height. Y: [N, C, H_out, W_out] for grid [N, H_out, W_out, 2].
//  - mode: bilinear (opset 20: linear), nearest (round half to even), bicubic (opset 20: cubic;
//    Keys' convolution with a = -0.75 over 4 x 4 pixels);
//  - align_corners 1 maps -1 / 1 to the centers of the corner pixels, 0 to their outer edges;
//  - padding_mode for the interpolation taps outside the image: zeros (they read 0), border (they
//    read the nearest edge pixel), reflection (the point, when outside the image's extent
//    [-0.5, size - 0.5] or [0, size - 1] with align_corners, is first reflected into it at its
//    edges; taps still outside are reflected back in one by one).
// Border moves taps, never the point: for bicubic near an edge this differs from clamping the
// point first. The spec's text does not settle it; onnxruntime (1.30) reads it so, and so do we.
// A grid value that is not finite gives 0.
// Rows of the output run in parallel; each point's taps are worked out once for all channels.
#include <algorithm>
#include <cmath>
#include <vector>

#include "exec/graph.h"
#include "exec/ops/conv-common.h"
#include "exec/ops/op-args.h"

namespace ternion {
namespace exec {
namespace {

enum class SampleMode { Linear, Nearest, Cubic };
enum class Padding { Zeros, Border, Reflection };

// Keys' cubic convolution weights for the taps at offsets -1, 0, 1, 2 from floor(x), t = x - floor(x).
void cubic_weights(float t, float w[4]) {
  constexpr float a = -0.75f;
  const float d0 = t + 1, d1 = t, d2 = 1 - t, d3 = 2 - t;
  w[0] = ((a * d0 - 5 * a) * d0 + 8 * a) * d0 - 4 * a;
  w[1] = ((a + 2) * d1 - (a + 3)) * d1 * d1 + 1;
  w[2] = ((a + 2) * d2 - (a + 3)) * d2 * d2 + 1;
  w[3] = ((a * d3 - 5 * a) * d3 + 8 * a) * d3 - 4 * a;
}

// x folded into [lo, hi] by reflecting at its ends as many times as it takes.
float reflect(float x, float lo, float hi) {
  const float range = hi - lo;
  if (!(range > 0)) return lo;
  if (x < lo || x > hi) {
    const float d = x < lo ? lo - x : x - hi;
    const float folds = std::floor(d / range);
    const float rest = d - folds * range;
    const bool even = std::fmod(folds, 2.0f) == 0;
    // An even number of folds leaves the point reflected off the end it crossed.
    if (x < lo) return even ? lo + rest : hi - rest;
    return even ? hi - rest : lo + rest;
  }
  return x;
}

// One axis of a point: up to 4 pixel indices (-1: outside, reads 0) and their weights.
struct AxisTaps {
  int count = 0;
  int64_t index[4];
  float weight[4];
};

class GridSampleOp : public Op {
 public:
  explicit GridSampleOp(const NodeDesc& node) : where_(node.where()), align_corners_(node.get_int("align_corners", 0) != 0) {
    const bool new_names = node.opset >= 20;
    const std::string mode = node.get_string("mode", new_names ? "linear" : "bilinear");
    if (mode == (new_names ? "linear" : "bilinear")) mode_ = SampleMode::Linear;
    else if (mode == "nearest") mode_ = SampleMode::Nearest;
    else if (mode == (new_names ? "cubic" : "bicubic")) mode_ = SampleMode::Cubic;
    else
      fail("ERR_MODEL_FORMAT", where_ + ": mode '" + mode + "' is not one of " +
                                       (new_names ? "linear, nearest, cubic" : "bilinear, nearest, bicubic") + " (opset " +
                                       std::to_string(node.opset) + ")");
    const std::string padding = node.get_string("padding_mode", "zeros");
    if (padding == "zeros") padding_ = Padding::Zeros;
    else if (padding == "border") padding_ = Padding::Border;
    else if (padding == "reflection") padding_ = Padding::Reflection;
    else fail("ERR_MODEL_FORMAT", where_ + ": padding_mode '" + padding + "' is not one of zeros, border, reflection");
  }

  void infer(const std::vector<const Tensor*>& inputs, std::vector<Tensor>& outputs) override {
    const Tensor& x = op_args::required(inputs, 0, where_, "X");
    const Tensor& grid = op_args::required(inputs, 1, where_, "grid");
    op_args::require_dtype(x, {DType::F32}, where_, "X");
    op_args::require_dtype(grid, {DType::F32}, where_, "grid");
    if (x.shape.size() != 4) fail("ERR_SHAPE_MISMATCH", where_ + ": X must be 4-D [N, C, H, W], got " + shape_str(x.shape));
    if (grid.shape.size() != 4 || grid.shape[3] != 2)
      fail("ERR_SHAPE_MISMATCH", where_ + ": grid must be [N, H_out, W_out, 2] for 4-D X, got " + shape_str(grid.shape));
    if (grid.shape[0] != x.shape[0])
      fail("ERR_SHAPE_MISMATCH", where_ + ": grid " + shape_str(grid.shape) + " and X " + shape_str(x.shape) + " differ in batch size");
    if ((x.shape[2] == 0 || x.shape[3] == 0) && x.shape[1] > 0 && grid.shape[1] * grid.shape[2] > 0)
      fail("ERR_SHAPE_MISMATCH", where_ + ": X " + shape_str(x.shape) + " has no pixels to sample");
    if (outputs.size() != 1) fail("ERR_MODEL_FORMAT", where_ + ": expected one output");
    outputs[0].dtype = DType::F32;
    outputs[0].shape = {x.shape[0], x.shape[1], grid.shape[1], grid.shape[2]};
  }

  void run(const std::vector<const Tensor*>& inputs, std::vector<Tensor*>& outputs, RunContext& ctx) override {
    const Tensor& x = *inputs[0];
    const Tensor& grid = *inputs[1];
    const int64_t channels = x.shape[1], height = x.shape[2], width = x.shape[3];
    const int64_t out_h = grid.shape[1], out_w = grid.shape[2];
    const int64_t plane = height * width, out_plane = out_h * out_w;
    float* y = outputs[0]->ptr<float>();
    ops::parallel_ranges(ctx.gemm, x.shape[0] * out_h, 1, [&](int64_t row0, int64_t row1) {
      for (int64_t row = row0; row < row1; ++row) {
        const int64_t n = row / out_h;
        const float* g = grid.ptr<float>() + row * out_w * 2;
        const float* image = x.ptr<float>() + n * channels * plane;
        float* out = y + n * channels * out_plane + (row % out_h) * out_w;
        for (int64_t ox = 0; ox < out_w; ++ox) {
          AxisTaps tx, ty;
          axis_taps(g[ox * 2], width, tx);
          axis_taps(g[ox * 2 + 1], height, ty);
          for (int64_t c = 0; c < channels; ++c) {
            const float* p = image + c * plane;
            float value = 0;
            for (int i = 0; i < ty.count; ++i) {
              float along_x = 0;
              for (int j = 0; j < tx.count; ++j) {
                const float pixel = ty.index[i] < 0 || tx.index[j] < 0 ? 0.0f : p[ty.index[i] * width + tx.index[j]];
                along_x += tx.weight[j] * pixel;
              }
              value += ty.weight[i] * along_x;
            }
            out[c * out_plane + ox] = value;
          }
        }
      }
    });
  }

 private:
  // The taps along one axis of `size` pixels for the normalized coordinate v.
  void axis_taps(float v, int64_t size, AxisTaps& t) const {
    // The point's extent: beyond it, reflection moves the point.
    const float lo = align_corners_ ? 0.0f : -0.5f;
    const float hi = align_corners_ ? static_cast<float>(size - 1) : size - 0.5f;
    float p = align_corners_ ? (v + 1) / 2 * (size - 1) : ((v + 1) * size - 1) / 2;
    if (mode_ == SampleMode::Nearest) p = std::nearbyint(p);
    if (padding_ == Padding::Reflection && (p < lo || p > hi)) p = reflect(p, lo, hi);
    if (!std::isfinite(p)) {
      t.count = 1;
      t.index[0] = -1;
      t.weight[0] = 0;
      return;
    }
    // Far outside, every tap reads zero padding or the same edge pixel: clamping the point there
    // changes nothing and keeps the integer conversion defined.
    p = std::min(std::max(p, -8.0f), static_cast<float>(size) + 8);
    const float base = std::floor(p);
    const int64_t first = static_cast<int64_t>(base);
    switch (mode_) {
      case SampleMode::Nearest:
        t.count = 1;
        t.index[0] = first;
        t.weight[0] = 1;
        break;
      case SampleMode::Linear:
        t.count = 2;
        t.index[0] = first;
        t.index[1] = first + 1;
        t.weight[0] = (base + 1) - p;
        t.weight[1] = p - base;
        break;
      case SampleMode::Cubic:
        t.count = 4;
        for (int k = 0; k < 4; ++k) t.index[k] = first - 1 + k;
        cubic_weights(p - base, t.weight);
        break;
    }
    for (int k = 0; k < t.count; ++k) t.index[k] = resolve(t.index[k], size, lo, hi);
  }

  // A tap's pixel under the padding mode (-1 for zero padding).
  int64_t resolve(int64_t i, int64_t size, float lo, float hi) const {
    if (i >= 0 && i < size) return i;
    switch (padding_) {
      case Padding::Zeros: return -1;
      case Padding::Border: return std::min(std::max<int64_t>(i, 0), size - 1);
      case Padding::Reflection: {
        const int64_t r = static_cast<int64_t>(reflect(static_cast<float>(i), lo, hi));
        return std::min(std::max<int64_t>(r, 0), size - 1);
      }
    }
    return -1;
  }

  std::string where_;
  bool align_corners_;
  SampleMode mode_ = SampleMode::Linear;
  Padding padding_ = Padding::Zeros;
};

std::unique_ptr<Op> make_grid_sample(const BuildContext& bc) { return std::make_unique<GridSampleOp>(bc.node); }

}  // namespace

TERNION_REGISTER_OP(GridSample, make_grid_sample);

}  // namespace exec
}  // namespace ternion
