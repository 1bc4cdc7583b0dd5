// Ops that make a tensor from shape values: ConstantOfShape, Range and Expand (bidirectional
// broadcast to a given shape). Their output shapes depend on input data, which infer() reads
// (the executor computes inputs first). Exporters emit them for masks and position indices.
#include <cmath>
#include <cstring>

#include "exec/graph.h"
#include "exec/ops/broadcast.h"
#include "exec/ops/op-args.h"

namespace ternion {
namespace exec {
namespace {

// Dims read from a 1-D int64 shape input, each checked to be >= 0.
Shape read_shape(const Tensor& t, const std::string& where) {
  Shape s = op_args::read_ints(t, where, "shape");
  for (int64_t d : s)
    if (d < 0) fail("ERR_SHAPE_MISMATCH", where + ": shape " + shape_str(s) + " has a negative dimension");
  shape_size(s);
  return s;
}

class ConstantOfShapeOp : public Op {
 public:
  explicit ConstantOfShapeOp(const NodeDesc& node) : where_(node.where()) {
    if (const HostTensor* v = node.get_tensor("value")) {
      if (shape_size(v->shape) != 1) fail("ERR_MODEL_FORMAT", where_ + ": value must hold one element");
      value_ = *v;
    } else {
      value_ = make_host_tensor(DType::F32, {1});  // 0.0f
    }
  }
  void infer(const std::vector<const Tensor*>& inputs, std::vector<Tensor>& outputs) override {
    const Tensor& s = op_args::required(inputs, 0, where_, "input");
    if (outputs.size() != 1) fail("ERR_MODEL_FORMAT", where_ + ": expected one output");
    outputs[0].dtype = value_.dtype;
    outputs[0].shape = read_shape(s, where_);
  }
  void run(const std::vector<const Tensor*>&, std::vector<Tensor*>& outputs, RunContext&) override {
    Tensor& y = *outputs[0];
    const size_t es = dtype_size(y.dtype);
    char* out = y.ptr<char>();
    for (int64_t i = 0, n = y.size(); i < n; ++i) std::memcpy(out + i * es, value_.storage.get(), es);
  }

 private:
  std::string where_;
  HostTensor value_;
};

class RangeOp : public Op {
 public:
  explicit RangeOp(const NodeDesc& node) : where_(node.where()) {}
  void infer(const std::vector<const Tensor*>& inputs, std::vector<Tensor>& outputs) override {
    const Tensor& start = op_args::required(inputs, 0, where_, "start");
    for (size_t i = 1; i < 3; ++i)
      if (op_args::required(inputs, i, where_, i == 1 ? "limit" : "delta").dtype != start.dtype)
        fail("ERR_DTYPE", where_ + ": start, limit and delta must have one dtype");
    op_args::require_dtype(start, {DType::F32, DType::I32, DType::I64}, where_, "start");
    const double s = op_args::read_scalar(start, where_, "start"), l = op_args::read_scalar(*inputs[1], where_, "limit"),
                 d = op_args::read_scalar(*inputs[2], where_, "delta");
    if (d == 0) fail("ERR_INVALID_ARGUMENT", where_ + ": delta is 0");
    const double n = std::ceil((l - s) / d);
    if (!(n < double(int64_t(1) << 40))) fail("ERR_SHAPE_MISMATCH", where_ + ": the range has too many elements");
    if (outputs.size() != 1) fail("ERR_MODEL_FORMAT", where_ + ": expected one output");
    outputs[0].dtype = start.dtype;
    outputs[0].shape = {n > 0 ? static_cast<int64_t>(n) : 0};
  }
  void run(const std::vector<const Tensor*>& inputs, std::vector<Tensor*>& outputs, RunContext&) override {
    Tensor& y = *outputs[0];
    switch (y.dtype) {
      case DType::F32: return fill<float>(inputs, y);
      case DType::I32: return fill<int32_t>(inputs, y);
      default: return fill<int64_t>(inputs, y);
    }
  }

 private:
  // start + i * delta, accumulated as ONNX's reference does (repeated addition).
  template <typename T>
  static void fill(const std::vector<const Tensor*>& inputs, Tensor& y) {
    T v = inputs[0]->ptr<T>()[0];
    const T d = inputs[2]->ptr<T>()[0];
    T* out = y.ptr<T>();
    for (int64_t i = 0, n = y.size(); i < n; ++i, v = static_cast<T>(v + d)) out[i] = v;
  }
  std::string where_;
};

class ExpandOp : public Op {
 public:
  explicit ExpandOp(const NodeDesc& node) : where_(node.where()) {}
  void infer(const std::vector<const Tensor*>& inputs, std::vector<Tensor>& outputs) override {
    const Tensor& x = op_args::required(inputs, 0, where_, "input");
    const Shape target = read_shape(op_args::required(inputs, 1, where_, "shape"), where_);
    if (outputs.size() != 1) fail("ERR_MODEL_FORMAT", where_ + ": expected one output");
    outputs[0].dtype = x.dtype;
    outputs[0].shape = broadcast::broadcast_shapes(x.shape, target, where_);
  }
  void run(const std::vector<const Tensor*>& inputs, std::vector<Tensor*>& outputs, RunContext&) override {
    const Tensor& x = *inputs[0];
    Tensor& y = *outputs[0];
    const int64_t n = y.size();
    if (n == 0) return;
    const size_t es = dtype_size(x.dtype), rank = y.shape.size();
    // Input strides seen through the broadcast (0 where repeated); the innermost run is copied
    // whole when the input steps through it contiguously.
    const std::vector<int64_t> st = broadcast::broadcast_strides(x.shape, y.shape);
    const int64_t inner = rank ? y.shape[rank - 1] : 1;
    const bool contiguous = rank && st[rank - 1] == 1;
    const char* in = x.ptr<char>();
    char* out = y.ptr<char>();
    std::vector<int64_t> idx(rank, 0);
    int64_t off = 0;
    for (int64_t row = 0; row < n / inner; ++row) {
      char* o = out + row * inner * es;
      if (contiguous) {
        std::memcpy(o, in + off * es, static_cast<size_t>(inner) * es);
      } else {
        for (int64_t i = 0; i < inner; ++i) std::memcpy(o + i * es, in + (off + i * (rank ? st[rank - 1] : 0)) * es, es);
      }
      for (size_t k = rank > 1 ? rank - 1 : 0; k-- > 0;) {
        off += st[k];
        if (++idx[k] < y.shape[k]) break;
        off -= idx[k] * st[k];
        idx[k] = 0;
      }
    }
  }

 private:
  std::string where_;
};

std::unique_ptr<Op> make_constant_of_shape(const BuildContext& bc) { return std::make_unique<ConstantOfShapeOp>(bc.node); }
std::unique_ptr<Op> make_range(const BuildContext& bc) { return std::make_unique<RangeOp>(bc.node); }
std::unique_ptr<Op> make_expand(const BuildContext& bc) { return std::make_unique<ExpandOp>(bc.node); }

}  // namespace

TERNION_REGISTER_OP(ConstantOfShape, make_constant_of_shape);
TERNION_REGISTER_OP(Range, make_range);
TERNION_REGISTER_OP(Expand, make_expand);

}  // namespace exec
}  // namespace ternion
