// RoiAlign (opset 10 and 16): pools each region of interest of a float32 feature map X
// [N, C, H, W] into an [output_height, output_width] grid. rois float32 [R, 4] hold
// (x1, y1, x2, y2) in input-image coordinates (scaled by spatial_scale); batch_indices int64 [R]
// pick each region's image. Y: [R, C, output_height, output_width].
//
// Each output bin averages (mode avg) or takes the max of (mode max) a sampling grid of
// sampling_ratio x sampling_ratio points (0: ceil(region size / output size) per axis, per
// region), each read by bilinear interpolation. coordinate_transformation_mode half_pixel
// shifts the region by -0.5 pixel; output_half_pixel does not, and then (as in onnxruntime and
// the spec's reference) regions are at least 1 x 1 pixel. The default is half_pixel from opset 16;
// opset 10 has no attribute and behaves as output_half_pixel.
//
// Where the spec is ambiguous we follow onnxruntime (and the ONNX reference implementation,
// which agree):
//  - max mode takes, over the bin's sample points, the max of the four weighted corner terms
//    w_i * v_i of each point's bilinear interpolation, not the max of interpolated values (the
//    spec's text only says samples are "computed through bilinear interpolation"; see
//    onnx/onnx#4764, microsoft/onnxruntime#6146);
//  - a sample point more than one pixel outside the map contributes 0 (and still counts in the
//    average); points between -1 and 0 read the border.
// A sample point that is not a finite number (a NaN or infinite region) contributes 0.
// Regions run in parallel; batch indices are checked in infer().
#include <algorithm>
#include <cmath>
#include <vector>

#include "exec/graph.h"
#include "exec/ops/conv-common.h"
#include "exec/ops/op-args.h"

namespace ternion {
namespace exec {
namespace {

// More sample points per region than this are refused: such a region (or sampling_ratio) is a
// corrupt input, and its sample table would not fit in memory.
constexpr double kMaxSamplesPerRegion = double(1 << 26);

// One sample point's bilinear taps: four flat positions in the plane and their weights.
struct Taps {
  int64_t pos[4] = {0, 0, 0, 0};
  float w[4] = {0, 0, 0, 0};
};

Taps bilinear_taps(float y, float x, int64_t height, int64_t width) {
  Taps t;
  if (!std::isfinite(y) || !std::isfinite(x) || y < -1.0f || y > height || x < -1.0f || x > width) return t;
  y = std::max(y, 0.0f);
  x = std::max(x, 0.0f);
  int64_t y_low = static_cast<int64_t>(y), x_low = static_cast<int64_t>(x), y_high, x_high;
  if (y_low >= height - 1) {
    y_high = y_low = height - 1;
    y = static_cast<float>(y_low);
  } else {
    y_high = y_low + 1;
  }
  if (x_low >= width - 1) {
    x_high = x_low = width - 1;
    x = static_cast<float>(x_low);
  } else {
    x_high = x_low + 1;
  }
  const float ly = y - y_low, lx = x - x_low, hy = 1 - ly, hx = 1 - lx;
  t.pos[0] = y_low * width + x_low;
  t.pos[1] = y_low * width + x_high;
  t.pos[2] = y_high * width + x_low;
  t.pos[3] = y_high * width + x_high;
  t.w[0] = hy * hx;
  t.w[1] = hy * lx;
  t.w[2] = ly * hx;
  t.w[3] = ly * lx;
  return t;
}

class RoiAlignOp : public Op {
 public:
  explicit RoiAlignOp(const NodeDesc& node)
      : where_(node.where()),
        output_height_(node.get_int("output_height", 1)),
        output_width_(node.get_int("output_width", 1)),
        sampling_ratio_(node.get_int("sampling_ratio", 0)),
        spatial_scale_(node.get_float("spatial_scale", 1.0f)) {
    const std::string mode = node.get_string("mode", "avg");
    if (mode != "avg" && mode != "max") fail("ERR_MODEL_FORMAT", where_ + ": mode must be 'avg' or 'max', got '" + mode + "'");
    max_mode_ = mode == "max";
    const std::string transform = node.get_string("coordinate_transformation_mode", node.opset >= 16 ? "half_pixel" : "output_half_pixel");
    if (transform != "half_pixel" && transform != "output_half_pixel")
      fail("ERR_MODEL_FORMAT", where_ + ": coordinate_transformation_mode must be 'half_pixel' or 'output_half_pixel', got '" + transform + "'");
    half_pixel_ = transform == "half_pixel";
    if (output_height_ < 1 || output_width_ < 1)
      fail("ERR_MODEL_FORMAT", where_ + ": output_height and output_width must be positive, got " + std::to_string(output_height_) +
                                       " and " + std::to_string(output_width_));
    if (sampling_ratio_ < 0) fail("ERR_MODEL_FORMAT", where_ + ": sampling_ratio must not be negative, got " + std::to_string(sampling_ratio_));
  }

  void infer(const std::vector<const Tensor*>& inputs, std::vector<Tensor>& outputs) override {
    const Tensor& x = op_args::required(inputs, 0, where_, "X");
    const Tensor& rois = op_args::required(inputs, 1, where_, "rois");
    const Tensor& batch_indices = op_args::required(inputs, 2, where_, "batch_indices");
    op_args::require_dtype(x, {DType::F32}, where_, "X");
    op_args::require_dtype(rois, {DType::F32}, where_, "rois");
    op_args::require_dtype(batch_indices, {DType::I64}, where_, "batch_indices");
    if (x.shape.size() != 4) fail("ERR_SHAPE_MISMATCH", where_ + ": X must be 4-D [N, C, H, W], got " + shape_str(x.shape));
    if (rois.shape.size() != 2 || rois.shape[1] != 4)
      fail("ERR_SHAPE_MISMATCH", where_ + ": rois must be [num_rois, 4], got " + shape_str(rois.shape));
    if (batch_indices.shape.size() != 1 || batch_indices.shape[0] != rois.shape[0])
      fail("ERR_SHAPE_MISMATCH", where_ + ": batch_indices " + shape_str(batch_indices.shape) + " must be [" +
                                     std::to_string(rois.shape[0]) + "], one per row of rois " + shape_str(rois.shape));
    const int64_t num_rois = rois.shape[0];
    for (int64_t r = 0; r < num_rois; ++r) {
      const int64_t b = batch_indices.ptr<int64_t>()[r];
      if (b < 0 || b >= x.shape[0])
        fail("ERR_INVALID_ARGUMENT", where_ + ": batch_indices[" + std::to_string(r) + "] = " + std::to_string(b) +
                                         " is out of range for X with batch size " + std::to_string(x.shape[0]));
      const Region g = region(rois.ptr<float>() + r * 4);
      if (double(g.grid_h) * g.grid_w * output_height_ * output_width_ > kMaxSamplesPerRegion)
        fail("ERR_INVALID_ARGUMENT", where_ + ": roi " + std::to_string(r) + " needs more than " +
                                         std::to_string(static_cast<int64_t>(kMaxSamplesPerRegion)) + " sample points");
    }
    if (outputs.size() != 1) fail("ERR_MODEL_FORMAT", where_ + ": expected one output");
    outputs[0].dtype = DType::F32;
    outputs[0].shape = {num_rois, x.shape[1], output_height_, output_width_};
  }

  void run(const std::vector<const Tensor*>& inputs, std::vector<Tensor*>& outputs, RunContext& ctx) override {
    const Tensor& x = *inputs[0];
    const float* rois = inputs[1]->ptr<float>();
    const int64_t* batch_indices = inputs[2]->ptr<int64_t>();
    const int64_t channels = x.shape[1], height = x.shape[2], width = x.shape[3];
    const int64_t bins = output_height_ * output_width_;
    float* y = outputs[0]->ptr<float>();
    ops::parallel_ranges(ctx.gemm, inputs[1]->shape[0], 1, [&](int64_t r0, int64_t r1) {
      std::vector<Taps> taps;
      for (int64_t r = r0; r < r1; ++r) {
        const Region g = region(rois + r * 4);
        const int64_t grid_h = static_cast<int64_t>(std::max(g.grid_h, 0.0f));
        const int64_t grid_w = static_cast<int64_t>(std::max(g.grid_w, 0.0f));
        const int64_t per_bin = grid_h * grid_w;
        // The sample points of every bin, shared by the region's channels.
        taps.clear();
        for (int64_t ph = 0; ph < output_height_; ++ph)
          for (int64_t pw = 0; pw < output_width_; ++pw)
            for (int64_t iy = 0; iy < grid_h; ++iy) {
              const float sy = g.start_h + ph * g.bin_h + (iy + 0.5f) * g.bin_h / grid_h;
              for (int64_t ix = 0; ix < grid_w; ++ix) {
                const float sx = g.start_w + pw * g.bin_w + (ix + 0.5f) * g.bin_w / grid_w;
                taps.push_back(bilinear_taps(sy, sx, height, width));
              }
            }
        const float count = static_cast<float>(std::max<int64_t>(per_bin, 1));
        for (int64_t c = 0; c < channels; ++c) {
          const float* plane = x.ptr<float>() + (batch_indices[r] * channels + c) * height * width;
          float* out = y + (r * channels + c) * bins;
          for (int64_t bin = 0; bin < bins; ++bin) {
            const Taps* t = taps.data() + bin * per_bin;
            float value = 0;
            if (max_mode_) {
              for (int64_t s = 0; s < per_bin; ++s) {
                const float v = std::max(std::max(std::max(t[s].w[0] * plane[t[s].pos[0]], t[s].w[1] * plane[t[s].pos[1]]),
                                                  t[s].w[2] * plane[t[s].pos[2]]),
                                         t[s].w[3] * plane[t[s].pos[3]]);
                value = s == 0 ? v : std::max(value, v);
              }
            } else {
              for (int64_t s = 0; s < per_bin; ++s)
                value += t[s].w[0] * plane[t[s].pos[0]] + t[s].w[1] * plane[t[s].pos[1]] + t[s].w[2] * plane[t[s].pos[2]] +
                         t[s].w[3] * plane[t[s].pos[3]];
              value /= count;
            }
            out[bin] = value;
          }
        }
      }
    });
  }

 private:
  // One region in feature-map pixels: its start, bin size and samples per bin (as floats: a
  // NaN or non-positive count means no samples).
  struct Region {
    float start_h, start_w, bin_h, bin_w, grid_h, grid_w;
  };

  Region region(const float* roi) const {
    const float offset = half_pixel_ ? 0.5f : 0.0f;
    const float start_w = roi[0] * spatial_scale_ - offset, start_h = roi[1] * spatial_scale_ - offset;
    const float end_w = roi[2] * spatial_scale_ - offset, end_h = roi[3] * spatial_scale_ - offset;
    float roi_w = end_w - start_w, roi_h = end_h - start_h;
    if (!half_pixel_) {
      roi_w = std::max(roi_w, 1.0f);
      roi_h = std::max(roi_h, 1.0f);
    }
    Region g{start_h, start_w, roi_h / output_height_, roi_w / output_width_, 0, 0};
    g.grid_h = sampling_ratio_ > 0 ? static_cast<float>(sampling_ratio_) : std::ceil(roi_h / output_height_);
    g.grid_w = sampling_ratio_ > 0 ? static_cast<float>(sampling_ratio_) : std::ceil(roi_w / output_width_);
    if (!(g.grid_h > 0)) g.grid_h = 0;
    if (!(g.grid_w > 0)) g.grid_w = 0;
    return g;
  }

  std::string where_;
  int64_t output_height_, output_width_, sampling_ratio_;
  float spatial_scale_;
  bool max_mode_ = false;
  bool half_pixel_ = true;
};

std::unique_ptr<Op> make_roi_align(const BuildContext& bc) { return std::make_unique<RoiAlignOp>(bc.node); }

}  // namespace

TERNION_REGISTER_OP(RoiAlign, make_roi_align);

}  // namespace exec
}  // namespace ternion
