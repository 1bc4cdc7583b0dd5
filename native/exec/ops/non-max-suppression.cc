// NonMaxSuppression (opset 10 / 11): per batch and per class, greedily selects boxes by score,
// dropping each box whose IoU with an already selected box of that class exceeds
// iou_threshold. Output: int64 [num_selected, 3] rows of (batch, class, box index), ordered by
// batch, then class, then selection order (score descending, ties by lower box index).
//
// Inputs: boxes float32 [B, N, 4], scores float32 [B, C, N]; optional one-element
// max_output_boxes_per_class (int64; absent or <= 0 selects nothing), iou_threshold (float32,
// default 0, must lie in [0, 1]) and score_threshold (float32; when given, a box is a candidate
// only when its score is strictly greater). These follow onnxruntime, which users compare with:
//  - corner boxes (center_point_box 0, [y1, x1, y2, x2]) may list either diagonal: each box is
//    taken as the min / max of its coordinates; center boxes are [x_c, y_c, w, h];
//  - suppression is `iou > iou_threshold`, computed in float32 as onnxruntime does; boxes that do
//    not overlap, or of zero area, never suppress;
//  - the spec says boxes "with score less than score_threshold are removed" without saying what
//    happens at equality: onnxruntime keeps only scores above it, and so do we.
// The output's length depends on the data, so infer() runs the selection to size it and run()
// runs it again to write it (an op keeps no per-run state).
#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "exec/graph.h"
#include "exec/ops/op-args.h"

namespace ternion {
namespace exec {
namespace {

struct Corners {
  float y_min, x_min, y_max, x_max;
};

Corners box_corners(const float* b, bool center_point_box) {
  if (center_point_box) {
    const float half_w = b[2] / 2, half_h = b[3] / 2;
    return {b[1] - half_h, b[0] - half_w, b[1] + half_h, b[0] + half_w};
  }
  return {std::min(b[0], b[2]), std::min(b[1], b[3]), std::max(b[0], b[2]), std::max(b[1], b[3])};
}

// Whether a candidate overlapping a selected box by more than the threshold is suppressed.
bool suppressed_by(const Corners& a, const Corners& b, float iou_threshold) {
  const float ix_min = std::max(a.x_min, b.x_min), ix_max = std::min(a.x_max, b.x_max);
  if (ix_max <= ix_min) return false;
  const float iy_min = std::max(a.y_min, b.y_min), iy_max = std::min(a.y_max, b.y_max);
  if (iy_max <= iy_min) return false;
  const float intersection = (ix_max - ix_min) * (iy_max - iy_min);
  const float area_a = (a.x_max - a.x_min) * (a.y_max - a.y_min);
  const float area_b = (b.x_max - b.x_min) * (b.y_max - b.y_min);
  const float union_area = area_a + area_b - intersection;
  if (intersection <= 0 || area_a <= 0 || area_b <= 0 || union_area <= 0) return false;
  return intersection / union_area > iou_threshold;
}

class NonMaxSuppressionOp : public Op {
 public:
  explicit NonMaxSuppressionOp(const NodeDesc& node)
      : where_(node.where()), center_point_box_(node.get_int("center_point_box", 0)) {
    if (center_point_box_ != 0 && center_point_box_ != 1)
      fail("ERR_MODEL_FORMAT", where_ + ": center_point_box must be 0 or 1, got " + std::to_string(center_point_box_));
  }

  void infer(const std::vector<const Tensor*>& inputs, std::vector<Tensor>& outputs) override {
    if (outputs.size() != 1) fail("ERR_MODEL_FORMAT", where_ + ": expected one output");
    outputs[0].dtype = DType::I64;
    outputs[0].shape = {static_cast<int64_t>(select(inputs).size() / 3), 3};
  }

  void run(const std::vector<const Tensor*>& inputs, std::vector<Tensor*>& outputs, RunContext&) override {
    const std::vector<int64_t> selected = select(inputs);
    std::copy(selected.begin(), selected.end(), outputs[0]->ptr<int64_t>());
  }

 private:
  // The selected (batch, class, box) triples, flattened; checks every input first.
  std::vector<int64_t> select(const std::vector<const Tensor*>& inputs) const {
    const Tensor& boxes = op_args::required(inputs, 0, where_, "boxes");
    const Tensor& scores = op_args::required(inputs, 1, where_, "scores");
    op_args::require_dtype(boxes, {DType::F32}, where_, "boxes");
    op_args::require_dtype(scores, {DType::F32}, where_, "scores");
    if (boxes.shape.size() != 3 || boxes.shape[2] != 4)
      fail("ERR_SHAPE_MISMATCH", where_ + ": boxes must be [batch, boxes, 4], got " + shape_str(boxes.shape));
    if (scores.shape.size() != 3)
      fail("ERR_SHAPE_MISMATCH", where_ + ": scores must be [batch, classes, boxes], got " + shape_str(scores.shape));
    if (scores.shape[0] != boxes.shape[0] || scores.shape[2] != boxes.shape[1])
      fail("ERR_SHAPE_MISMATCH", where_ + ": boxes " + shape_str(boxes.shape) + " and scores " + shape_str(scores.shape) +
                                     " disagree: expected scores [" + std::to_string(boxes.shape[0]) + ", classes, " +
                                     std::to_string(boxes.shape[1]) + "]");
    int64_t max_per_class = 0;
    if (const Tensor* t = op_args::optional(inputs, 2)) {
      op_args::require_dtype(*t, {DType::I64}, where_, "max_output_boxes_per_class");
      if (t->size() != 1)
        fail("ERR_SHAPE_MISMATCH", where_ + ": max_output_boxes_per_class must hold one value, got shape " + shape_str(t->shape));
      max_per_class = t->ptr<int64_t>()[0];
    }
    float iou_threshold = 0;
    if (const Tensor* t = op_args::optional(inputs, 3)) {
      op_args::require_dtype(*t, {DType::F32}, where_, "iou_threshold");
      iou_threshold = static_cast<float>(op_args::read_scalar(*t, where_, "iou_threshold"));
      if (!(iou_threshold >= 0 && iou_threshold <= 1))
        fail("ERR_INVALID_ARGUMENT", where_ + ": iou_threshold must be in [0, 1], got " + std::to_string(iou_threshold));
    }
    const Tensor* score_threshold_tensor = op_args::optional(inputs, 4);
    float score_threshold = 0;
    if (score_threshold_tensor) {
      op_args::require_dtype(*score_threshold_tensor, {DType::F32}, where_, "score_threshold");
      score_threshold = static_cast<float>(op_args::read_scalar(*score_threshold_tensor, where_, "score_threshold"));
    }

    std::vector<int64_t> out;
    const int64_t batches = boxes.shape[0], classes = scores.shape[1], count = boxes.shape[1];
    if (max_per_class <= 0 || count == 0) return out;
    std::vector<Corners> corners(static_cast<size_t>(count));
    std::vector<int64_t> order;
    std::vector<int64_t> chosen;
    for (int64_t b = 0; b < batches; ++b) {
      const float* box_data = boxes.ptr<float>() + b * count * 4;
      for (int64_t i = 0; i < count; ++i) corners[i] = box_corners(box_data + i * 4, center_point_box_ != 0);
      for (int64_t c = 0; c < classes; ++c) {
        const float* s = scores.ptr<float>() + (b * classes + c) * count;
        order.clear();
        for (int64_t i = 0; i < count; ++i)
          if (!score_threshold_tensor || s[i] > score_threshold) order.push_back(i);
        // Score descending, ties by lower index (stable on ascending indices); NaN scores last,
        // so the comparison stays a strict weak order.
        std::stable_sort(order.begin(), order.end(), [s](int64_t a, int64_t z) {
          if (std::isnan(s[a])) return false;
          return std::isnan(s[z]) || s[a] > s[z];
        });
        chosen.clear();
        for (int64_t i : order) {
          if (static_cast<int64_t>(chosen.size()) >= max_per_class) break;
          bool keep = true;
          for (int64_t j : chosen)
            if (suppressed_by(corners[i], corners[j], iou_threshold)) {
              keep = false;
              break;
            }
          if (!keep) continue;
          chosen.push_back(i);
          out.insert(out.end(), {b, c, i});
        }
      }
    }
    return out;
  }

  std::string where_;
  int64_t center_point_box_;
};

std::unique_ptr<Op> make_non_max_suppression(const BuildContext& bc) { return std::make_unique<NonMaxSuppressionOp>(bc.node); }

}  // namespace

TERNION_REGISTER_OP(NonMaxSuppression, make_non_max_suppression);

}  // namespace exec
}  // namespace ternion
