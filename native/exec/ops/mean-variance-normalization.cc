// MeanVarianceNormalization (opsets 9 and 13), float32: Y = (X - mean) / (sqrt(variance) + 1e-9)
// with the mean and variance taken over `axes` (default [0, 2, 3]: per channel of an NCHW
// batch), as the ONNX function body defines it. The variance is the centred one, accumulated in
// double (the body's E[X^2] - E[X]^2, without its cancellation: the same value in exact
// arithmetic, never negative).
#include <algorithm>
#include <cmath>

#include "exec/graph.h"
#include "exec/ops/broadcast.h"
#include "exec/ops/op-args.h"

namespace ternion {
namespace exec {
namespace {

class MeanVarianceNormalizationOp : public Op {
 public:
  explicit MeanVarianceNormalizationOp(const NodeDesc& node)
      : where_(node.where()), axes_(node.get_ints("axes", {0, 2, 3})) {}

  void infer(const std::vector<const Tensor*>& inputs, std::vector<Tensor>& outputs) override {
    const Tensor& x = op_args::required(inputs, 0, where_, "X");
    op_args::require_dtype(x, {DType::F32}, where_, "X");
    op_args::normalize_axes(axes_, static_cast<int64_t>(x.shape.size()), where_);
    if (outputs.size() != 1) fail("ERR_MODEL_FORMAT", where_ + ": expected one output");
    outputs[0].dtype = DType::F32;
    outputs[0].shape = x.shape;
  }

  void run(const std::vector<const Tensor*>& inputs, std::vector<Tensor*>& outputs, RunContext& ctx) override {
    const Tensor& x = *inputs[0];
    if (x.size() == 0) return;
    const size_t rank = x.shape.size();
    std::vector<bool> reduced(rank, false);
    for (int64_t a : op_args::normalize_axes(axes_, static_cast<int64_t>(rank), where_)) reduced[static_cast<size_t>(a)] = true;
    // The offsets of one group's elements (the reduced axes' positions) and of each group's
    // first element (the kept axes' positions), both in row-major order.
    const std::vector<int64_t> strides = op_args::row_major_strides(x.shape);
    std::vector<int64_t> members{0}, groups{0};
    for (size_t a = 0; a < rank; ++a) {
      std::vector<int64_t>& list = reduced[a] ? members : groups;
      std::vector<int64_t> grown;
      grown.reserve(list.size() * static_cast<size_t>(x.shape[a]));
      for (int64_t base : list)
        for (int64_t i = 0; i < x.shape[a]; ++i) grown.push_back(base + i * strides[a]);
      list.swap(grown);
    }
    const float* in = x.ptr<float>();
    float* out = outputs[0]->ptr<float>();
    const int64_t count = static_cast<int64_t>(members.size());
    broadcast::parallel_range(ctx, static_cast<int64_t>(groups.size()), std::max<int64_t>(1, (1 << 14) / count), [&](int64_t b, int64_t e) {
      for (int64_t g = b; g < e; ++g) {
        const float* xg = in + groups[g];
        float* yg = out + groups[g];
        double sum = 0;
        for (int64_t m : members) sum += xg[m];
        const double mean = sum / static_cast<double>(count);
        double squares = 0;
        for (int64_t m : members) squares += (xg[m] - mean) * (xg[m] - mean);
        const double scale = 1.0 / (std::sqrt(squares / static_cast<double>(count)) + 1e-9);
        for (int64_t m : members) yg[m] = static_cast<float>((xg[m] - mean) * scale);
      }
    });
  }

 private:
  std::string where_;
  std::vector<int64_t> axes_;
};

std::unique_ptr<Op> make_mvn(const BuildContext& bc) { return std::make_unique<MeanVarianceNormalizationOp>(bc.node); }

}  // namespace

TERNION_REGISTER_OP(MeanVarianceNormalization, make_mvn);

}  // namespace exec
}  // namespace ternion
