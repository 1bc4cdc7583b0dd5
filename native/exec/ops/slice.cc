// Slice over every dtype: the attribute form (starts/ends/axes) before opset 10, the input form
// (starts, ends, optional axes and steps, negative steps included) from 10. Starts and ends are
// clamped as the spec says, so INT64_MAX / INT64_MIN ("to the end") work. Their values are read in
// infer() and again in run() from the input tensors (computed by then), so they may be run-time
// tensors; the op keeps no state between the two.
#include <cstring>

#include "exec/graph.h"
#include "exec/ops/op-args.h"

namespace ternion {
namespace exec {
namespace {

// Per input dim: first index, step, and how many elements the output takes.
struct SliceRegion {
  std::vector<int64_t> in_dims, start, step, count;
};

// Copies the region of `in` (dims region.in_dims) into the dense `out`.
template <typename T>
void copy_region(const SliceRegion& r, const T* in, T* out) {
  // Merge trailing dims taken whole into their outer neighbour, so the inner copy is long.
  std::vector<int64_t> dims = r.in_dims, start = r.start, step = r.step, count = r.count;
  while (dims.size() > 1) {
    const size_t k = dims.size() - 1;
    const bool whole = start[k] == 0 && step[k] == 1 && count[k] == dims[k];
    if (!whole || step[k - 1] != 1) break;
    dims[k - 1] *= dims[k], start[k - 1] *= dims[k], count[k - 1] *= dims[k];
    dims.pop_back(), start.pop_back(), step.pop_back(), count.pop_back();
  }
  const size_t rank = dims.size();
  std::vector<int64_t> stride(rank);  // input element stride of each dim
  for (size_t i = rank, s = 1; i-- > 0;) stride[i] = static_cast<int64_t>(s), s *= static_cast<size_t>(dims[i]);
  int64_t base = 0, rows = 1;
  for (size_t i = 0; i < rank; ++i) base += start[i] * stride[i];
  for (size_t i = 0; i + 1 < rank; ++i) rows *= count[i];
  const int64_t inner = count[rank - 1], inner_step = step[rank - 1];
  std::vector<int64_t> index(rank - 1, 0);
  int64_t off = base;
  for (int64_t row = 0; row < rows; ++row, out += inner) {
    if (inner_step == 1) {
      std::memcpy(out, in + off, static_cast<size_t>(inner) * sizeof(T));
    } else {
      for (int64_t j = 0; j < inner; ++j) out[j] = in[off + j * inner_step];
    }
    for (size_t k = rank - 1; k-- > 0;) {  // odometer over the outer dims
      off += step[k] * stride[k];
      if (++index[k] < count[k]) break;
      off -= index[k] * step[k] * stride[k];
      index[k] = 0;
    }
  }
}

class SliceOp : public Op {
 public:
  explicit SliceOp(const NodeDesc& node)
      : where_(node.where()), from_attributes_(node.opset > 0 && node.opset < 10) {
    if (from_attributes_) {
      if (!node.has("starts") || !node.has("ends")) fail("ERR_MODEL_FORMAT", where_ + ": starts and ends attributes are required");
      attr_starts_ = node.get_ints("starts");
      attr_ends_ = node.get_ints("ends");
      attr_axes_ = node.get_ints("axes");
      has_attr_axes_ = node.has("axes");
    }
  }

  void infer(const std::vector<const Tensor*>& inputs, std::vector<Tensor>& outputs) override {
    if (outputs.size() != 1) fail("ERR_MODEL_FORMAT", where_ + ": expected one output");
    const Tensor& x = op_args::required(inputs, 0, where_, "data");
    outputs[0].dtype = x.dtype;
    outputs[0].shape = region(inputs).count;
  }

  void run(const std::vector<const Tensor*>& inputs, std::vector<Tensor*>& outputs, RunContext&) override {
    if (outputs[0]->size() == 0) return;
    const SliceRegion r = region(inputs);
    const Tensor& x = *inputs[0];
    if (r.in_dims.empty()) {  // a scalar: nothing to slice
      std::memcpy(outputs[0]->data, x.data, x.bytes());
      return;
    }
    switch (dtype_size(x.dtype)) {
      case 1: return copy_region(r, x.ptr<uint8_t>(), outputs[0]->ptr<uint8_t>());
      case 4: return copy_region(r, x.ptr<uint32_t>(), outputs[0]->ptr<uint32_t>());
      case 8: return copy_region(r, x.ptr<uint64_t>(), outputs[0]->ptr<uint64_t>());
      default: fail("ERR_DTYPE", where_ + ": unsupported dtype " + dtype_name(x.dtype));
    }
  }

 private:
  SliceRegion region(const std::vector<const Tensor*>& inputs) const {
    const Tensor& x = *inputs[0];
    const int64_t rank = static_cast<int64_t>(x.shape.size());
    std::vector<int64_t> starts, ends, axes, steps;
    bool axes_given;
    if (from_attributes_) {
      starts = attr_starts_, ends = attr_ends_, axes = attr_axes_, axes_given = has_attr_axes_;
    } else {
      starts = op_args::read_ints(op_args::required(inputs, 1, where_, "starts"), where_, "starts");
      ends = op_args::read_ints(op_args::required(inputs, 2, where_, "ends"), where_, "ends");
      const Tensor* a = op_args::optional(inputs, 3);
      const Tensor* s = op_args::optional(inputs, 4);
      axes_given = a != nullptr;
      if (a) axes = op_args::read_ints(*a, where_, "axes");
      if (s) steps = op_args::read_ints(*s, where_, "steps");
    }
    const size_t n = starts.size();
    if (!axes_given) {
      for (size_t i = 0; i < n; ++i) axes.push_back(static_cast<int64_t>(i));
    }
    if (steps.empty()) steps.assign(n, 1);
    if (ends.size() != n || axes.size() != n || steps.size() != n)
      fail("ERR_SHAPE_MISMATCH", where_ + ": starts " + shape_str(starts) + ", ends " + shape_str(ends) + ", axes " +
                                     shape_str(axes) + " and steps " + shape_str(steps) + " differ in length");
    axes = op_args::normalize_axes(axes, rank, where_);

    SliceRegion r;
    r.in_dims = x.shape;
    r.start.assign(rank, 0);
    r.step.assign(rank, 1);
    r.count = x.shape;
    for (size_t k = 0; k < n; ++k) {
      const int64_t a = axes[k], d = x.shape[a], st = steps[k];
      if (st == 0) fail("ERR_SHAPE_MISMATCH", where_ + ": steps " + shape_str(steps) + " contain 0");
      int64_t s = starts[k], e = ends[k];
      if (s < 0) s += d;
      if (e < 0) e += d;
      int64_t count;
      if (st > 0) {
        s = std::min(std::max<int64_t>(s, 0), d);
        e = std::min(std::max<int64_t>(e, 0), d);
        count = e > s ? (st >= d ? 1 : (e - s - 1) / st + 1) : 0;
      } else {
        s = std::min(std::max<int64_t>(s, 0), d - 1);
        e = std::min(std::max<int64_t>(e, -1), d - 1);
        count = s > e ? (st <= -d ? 1 : (s - e - 1) / -st + 1) : 0;
      }
      r.start[a] = count ? s : 0;
      r.step[a] = count > 1 ? st : 1;  // a huge step that takes one element is a step of 1
      r.count[a] = count;
    }
    return r;
  }

  std::string where_;
  bool from_attributes_;
  std::vector<int64_t> attr_starts_, attr_ends_, attr_axes_;
  bool has_attr_axes_ = false;
};

std::unique_ptr<Op> make_slice(const BuildContext& bc) { return std::make_unique<SliceOp>(bc.node); }

}  // namespace

TERNION_REGISTER_OP(Slice, make_slice);

}  // namespace exec
}  // namespace ternion
