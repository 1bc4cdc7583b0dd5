// Ops that change only a tensor's shape, so the output shares the input's buffer (Reshape,
// Flatten, Squeeze, Unsqueeze, Identity, Dropout at inference), plus Shape and Constant.
//
// Reshape's shape and Squeeze/Unsqueeze's axes (inputs from opsets 5 / 13) are read in infer()
// from the input tensor's data, which the executor has computed by then, so they work whether
// they are initializers or run-time int64 tensors.
#include <cstring>

#include "exec/graph.h"
#include "exec/ops/op-args.h"

namespace ternion {
namespace exec {
namespace {

// An op whose output 0 is input 0's data under a new shape: run() has nothing to do.
class ViewOp : public Op {
 public:
  explicit ViewOp(const NodeDesc& node) : where_(node.where()), opset_(node.opset) {}

  void infer(const std::vector<const Tensor*>& inputs, std::vector<Tensor>& outputs) override {
    const Tensor& x = op_args::required(inputs, 0, where_, "data");
    if (outputs.empty()) fail("ERR_MODEL_FORMAT", where_ + ": expected an output");
    outputs[0].dtype = x.dtype;
    outputs[0].shape = view_shape(inputs);
    if (shape_size(outputs[0].shape) != x.size())
      fail("ERR_INTERNAL", where_ + ": view of " + shape_str(x.shape) + " as " + shape_str(outputs[0].shape));
    infer_extra(inputs, outputs);
  }
  void run(const std::vector<const Tensor*>&, std::vector<Tensor*>&, RunContext&) override {}
  int alias_of(int output) const override { return output == 0 ? 0 : -1; }

 protected:
  virtual Shape view_shape(const std::vector<const Tensor*>& inputs) const = 0;
  virtual void infer_extra(const std::vector<const Tensor*>&, std::vector<Tensor>& outputs) const {
    if (outputs.size() != 1) fail("ERR_MODEL_FORMAT", where_ + ": expected one output");
  }
  // Axes from the attribute (before opset 13) or from optional input 1 (from 13).
  std::vector<int64_t> axes_of(const std::vector<const Tensor*>& inputs, const std::vector<int64_t>& attr_axes,
                               bool* given) const {
    if (opset_ > 0 && opset_ < 13) {
      *given = !attr_axes.empty() || has_axes_attr_;
      return attr_axes;
    }
    const Tensor* t = op_args::optional(inputs, 1);
    *given = t != nullptr;
    return t ? op_args::read_ints(*t, where_, "axes") : std::vector<int64_t>{};
  }

  std::string where_;
  int opset_;
  bool has_axes_attr_ = false;
};

class ReshapeOp : public ViewOp {
 public:
  explicit ReshapeOp(const NodeDesc& node)
      : ViewOp(node), allowzero_(node.get_int("allowzero", 0) != 0),
        attr_shape_(node.opset > 0 && node.opset < 5 ? node.get_ints("shape") : std::vector<int64_t>{}),
        shape_from_attr_(node.opset > 0 && node.opset < 5) {}

 protected:
  Shape view_shape(const std::vector<const Tensor*>& inputs) const override {
    const Tensor& x = *inputs[0];
    const std::vector<int64_t> spec =
        shape_from_attr_ ? attr_shape_ : op_args::read_ints(op_args::required(inputs, 1, where_, "shape"), where_, "shape");
    Shape out(spec.size());
    int infer_at = -1;
    int64_t known = 1;
    for (size_t i = 0; i < spec.size(); ++i) {
      int64_t d = spec[i];
      if (d == 0 && !allowzero_) {
        if (i >= x.shape.size())
          fail("ERR_SHAPE_MISMATCH", where_ + ": shape " + shape_str(spec) + " copies dim " + std::to_string(i) +
                                         " (0) but the input " + shape_str(x.shape) + " has no such dim");
        d = x.shape[i];
      }
      if (d == -1) {
        if (infer_at >= 0) fail("ERR_SHAPE_MISMATCH", where_ + ": shape " + shape_str(spec) + " has more than one -1");
        if (allowzero_ && std::find(spec.begin(), spec.end(), 0) != spec.end())
          fail("ERR_SHAPE_MISMATCH", where_ + ": shape " + shape_str(spec) + " has both -1 and 0 with allowzero=1");
        infer_at = static_cast<int>(i);
        continue;
      }
      if (d < 0) fail("ERR_SHAPE_MISMATCH", where_ + ": shape " + shape_str(spec) + " has a negative dim");
      out[i] = d;
      known = (d == 0 || known == 0) ? 0 : (known > (int64_t(1) << 40) / d ? (int64_t(1) << 41) : known * d);
    }
    const int64_t total = x.size();
    if (infer_at >= 0) {
      if (known == 0 || total % known != 0)
        fail("ERR_SHAPE_MISMATCH", where_ + ": cannot reshape " + shape_str(x.shape) + " to " + shape_str(spec));
      out[infer_at] = total / known;
    } else if (known != total) {
      fail("ERR_SHAPE_MISMATCH", where_ + ": cannot reshape " + shape_str(x.shape) + " (" + std::to_string(total) +
                                     " elements) to " + shape_str(spec));
    }
    return out;
  }

 private:
  bool allowzero_;
  std::vector<int64_t> attr_shape_;
  bool shape_from_attr_;
};

class FlattenOp : public ViewOp {
 public:
  explicit FlattenOp(const NodeDesc& node) : ViewOp(node), axis_(node.get_int("axis", 1)) {}

 protected:
  Shape view_shape(const std::vector<const Tensor*>& inputs) const override {
    const Shape& s = inputs[0]->shape;
    const size_t axis = static_cast<size_t>(op_args::normalize_axis(axis_, static_cast<int64_t>(s.size()), where_, true));
    return {op_args::dims_product(s, 0, axis), op_args::dims_product(s, axis, s.size())};
  }

 private:
  int64_t axis_;
};

class SqueezeOp : public ViewOp {
 public:
  explicit SqueezeOp(const NodeDesc& node) : ViewOp(node), attr_axes_(node.get_ints("axes")) { has_axes_attr_ = node.has("axes"); }

 protected:
  Shape view_shape(const std::vector<const Tensor*>& inputs) const override {
    const Shape& s = inputs[0]->shape;
    bool given = false;
    const std::vector<int64_t> raw = axes_of(inputs, attr_axes_, &given);
    std::vector<bool> drop(s.size(), false);
    if (!given) {
      for (size_t i = 0; i < s.size(); ++i) drop[i] = s[i] == 1;  // no axes: every dim of size 1
    } else {
      for (int64_t a : op_args::normalize_axes(raw, static_cast<int64_t>(s.size()), where_)) {
        if (s[a] != 1)
          fail("ERR_SHAPE_MISMATCH", where_ + ": cannot squeeze axis " + std::to_string(a) + " of shape " + shape_str(s) + " (size is not 1)");
        drop[a] = true;
      }
    }
    Shape out;
    for (size_t i = 0; i < s.size(); ++i)
      if (!drop[i]) out.push_back(s[i]);
    return out;
  }

 private:
  std::vector<int64_t> attr_axes_;
};

class UnsqueezeOp : public ViewOp {
 public:
  explicit UnsqueezeOp(const NodeDesc& node) : ViewOp(node), attr_axes_(node.get_ints("axes")) { has_axes_attr_ = node.has("axes"); }

 protected:
  Shape view_shape(const std::vector<const Tensor*>& inputs) const override {
    const Shape& s = inputs[0]->shape;
    bool given = false;
    const std::vector<int64_t> raw = axes_of(inputs, attr_axes_, &given);
    if (!given || raw.empty()) fail("ERR_SHAPE_MISMATCH", where_ + ": axes are required");
    const int64_t rank = static_cast<int64_t>(s.size() + raw.size());
    std::vector<bool> inserted(static_cast<size_t>(rank), false);
    for (int64_t a : op_args::normalize_axes(raw, rank, where_)) inserted[a] = true;
    Shape out;
    size_t next = 0;
    for (int64_t i = 0; i < rank; ++i) out.push_back(inserted[i] ? 1 : s[next++]);
    return out;
  }

 private:
  std::vector<int64_t> attr_axes_;
};

class IdentityOp : public ViewOp {
 public:
  using ViewOp::ViewOp;

 protected:
  Shape view_shape(const std::vector<const Tensor*>& inputs) const override { return inputs[0]->shape; }
};

// Inference-time Dropout: the output is the input; the optional mask is all "kept".
class DropoutOp : public ViewOp {
 public:
  using ViewOp::ViewOp;

  void run(const std::vector<const Tensor*>& inputs, std::vector<Tensor*>& outputs, RunContext&) override {
    if (outputs.size() < 2 || outputs[1]->size() == 0) return;
    Tensor& mask = *outputs[1];
    if (mask.dtype == DType::F32) {
      std::fill(mask.ptr<float>(), mask.ptr<float>() + mask.size(), 1.0f);
    } else {
      std::memset(mask.data, 1, mask.bytes());  // Bool
    }
  }

 protected:
  Shape view_shape(const std::vector<const Tensor*>& inputs) const override {
    // From opset 12 a run-time training_mode may ask for real dropout, which inference lacks.
    const Tensor* training = opset_ >= 12 ? op_args::optional(inputs, 2) : nullptr;
    if (training && op_args::read_scalar(*training, where_, "training_mode") != 0) {
      const Tensor* ratio = op_args::optional(inputs, 1);
      if (!ratio || op_args::read_scalar(*ratio, where_, "ratio") != 0)
        fail("ERR_UNSUPPORTED_OP", where_ + ": training_mode=true (dropout at inference time) is not supported");
    }
    return inputs[0]->shape;
  }
  void infer_extra(const std::vector<const Tensor*>& inputs, std::vector<Tensor>& outputs) const override {
    if (outputs.size() > 2) fail("ERR_MODEL_FORMAT", where_ + ": expected at most two outputs");
    if (outputs.size() == 2) {
      // The mask is bool from opset 10; before, it had the input's type (only float32 here).
      outputs[1].dtype = opset_ > 0 && opset_ < 10 ? DType::F32 : DType::Bool;
      if (outputs[1].dtype == DType::F32) op_args::require_dtype(*inputs[0], {DType::F32}, where_, "data");
      outputs[1].shape = inputs[0]->shape;
    }
  }
};

// Shape: the input's dims [start, end) as int64 (start/end from opset 15, clamped to the rank).
class ShapeOp : public Op {
 public:
  explicit ShapeOp(const NodeDesc& node)
      : where_(node.where()), start_(node.get_int("start", 0)), end_(node.get_int("end", INT64_MAX)) {}

  void infer(const std::vector<const Tensor*>& inputs, std::vector<Tensor>& outputs) override {
    const Tensor& x = op_args::required(inputs, 0, where_, "data");
    if (outputs.size() != 1) fail("ERR_MODEL_FORMAT", where_ + ": expected one output");
    int64_t b, e;
    range(x, &b, &e);
    outputs[0].dtype = DType::I64;
    outputs[0].shape = {e - b};
  }
  void run(const std::vector<const Tensor*>& inputs, std::vector<Tensor*>& outputs, RunContext&) override {
    int64_t b, e;
    range(*inputs[0], &b, &e);
    for (int64_t i = b; i < e; ++i) outputs[0]->ptr<int64_t>()[i - b] = inputs[0]->shape[i];
  }

 private:
  void range(const Tensor& x, int64_t* b, int64_t* e) const {
    const int64_t rank = static_cast<int64_t>(x.shape.size());
    auto clamp = [rank](int64_t v) { return std::min(rank, std::max<int64_t>(0, v < 0 ? v + rank : v)); };
    *b = clamp(start_);
    *e = std::max(*b, clamp(end_));
  }
  std::string where_;
  int64_t start_, end_;
};

// Constant: a tensor from the node's attributes, copied out on every run.
// Size: the number of elements, an int64 scalar.
class SizeOp : public Op {
 public:
  explicit SizeOp(const NodeDesc& node) : where_(node.where()) {}
  void infer(const std::vector<const Tensor*>& inputs, std::vector<Tensor>& outputs) override {
    op_args::required(inputs, 0, where_, "data");
    if (outputs.size() != 1) fail("ERR_MODEL_FORMAT", where_ + ": expected one output");
    outputs[0].dtype = DType::I64;
    outputs[0].shape = {};
  }
  void run(const std::vector<const Tensor*>& inputs, std::vector<Tensor*>& outputs, RunContext&) override {
    outputs[0]->ptr<int64_t>()[0] = inputs[0]->size();
  }

 private:
  std::string where_;
};

class ConstantOp : public Op {
 public:
  explicit ConstantOp(const NodeDesc& node) : where_(node.where()) {
    if (const HostTensor* t = node.get_tensor("value")) {
      value_ = *t;
    } else if (node.has("value_float")) {
      value_ = make_host_tensor(DType::F32, {});
      *static_cast<float*>(value_.storage.get()) = node.get_float("value_float", 0);
    } else if (node.has("value_floats")) {
      const std::vector<float> v = node.get_floats("value_floats");
      value_ = make_host_tensor(DType::F32, {static_cast<int64_t>(v.size())});
      std::copy(v.begin(), v.end(), static_cast<float*>(value_.storage.get()));
    } else if (node.has("value_int")) {
      value_ = make_host_tensor(DType::I64, {});
      *static_cast<int64_t*>(value_.storage.get()) = node.get_int("value_int", 0);
    } else if (node.has("value_ints")) {
      const std::vector<int64_t> v = node.get_ints("value_ints");
      value_ = make_host_tensor(DType::I64, {static_cast<int64_t>(v.size())});
      std::copy(v.begin(), v.end(), static_cast<int64_t*>(value_.storage.get()));
    } else {
      fail("ERR_UNSUPPORTED_OP", where_ + ": needs a value, value_float(s) or value_int(s) attribute (strings and sparse values are not supported)");
    }
  }

  void infer(const std::vector<const Tensor*>&, std::vector<Tensor>& outputs) override {
    if (outputs.size() != 1) fail("ERR_MODEL_FORMAT", where_ + ": expected one output");
    outputs[0].dtype = value_.dtype;
    outputs[0].shape = value_.shape;
  }
  void run(const std::vector<const Tensor*>&, std::vector<Tensor*>& outputs, RunContext&) override {
    const Tensor v = value_.view();
    if (v.bytes()) std::memcpy(outputs[0]->data, v.data, v.bytes());
  }

 private:
  std::string where_;
  HostTensor value_;
};

template <typename T>
std::unique_ptr<Op> make(const BuildContext& bc) { return std::make_unique<T>(bc.node); }

}  // namespace

TERNION_REGISTER_OP(Reshape, make<ReshapeOp>);
TERNION_REGISTER_OP(Flatten, make<FlattenOp>);
TERNION_REGISTER_OP(Squeeze, make<SqueezeOp>);
TERNION_REGISTER_OP(Unsqueeze, make<UnsqueezeOp>);
TERNION_REGISTER_OP(Identity, make<IdentityOp>);
TERNION_REGISTER_OP(Dropout, make<DropoutOp>);
TERNION_REGISTER_OP(Shape, make<ShapeOp>);
TERNION_REGISTER_OP(Size, make<SizeOp>);
TERNION_REGISTER_OP(Constant, make<ConstantOp>);

}  // namespace exec
}  // namespace ternion
