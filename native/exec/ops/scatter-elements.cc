// ScatterElements (opset 11 on) and the Scatter it replaced (opsets 9-10): a copy of data in which
// each element of `updates` goes to the place of its own position with the coordinate along
// `axis` replaced by the matching value of `indices` (int64 or int32; negative values count from
// the end). Every dtype; `reduction` combines the update with what is there instead of replacing
// it: add / mul from opset 16, max / min from 18 (numbers; on bool, add and max are "or", mul and
// min "and"). Updates are applied in row-major order, so with repeated indices and no reduction
// the last one stays. Every index is checked before its element is written.
#include <algorithm>
#include <cstring>
#include <type_traits>

#include "exec/graph.h"
#include "exec/ops/op-args.h"

namespace ternion {
namespace exec {
namespace {

enum class Reduction { None, Add, Mul, Max, Min };

class ScatterElementsOp : public Op {
 public:
  explicit ScatterElementsOp(const NodeDesc& node) : where_(node.where()), axis_(node.get_int("axis", 0)) {
    const std::string r = node.get_string("reduction", "none");
    const int since = r == "add" || r == "mul" ? 16 : r == "max" || r == "min" ? 18 : r == "none" ? 0 : -1;
    if (since < 0) fail("ERR_UNSUPPORTED_OP", where_ + ": reduction '" + r + "' is not one of none, add, mul, max, min");
    if (node.opset < since)
      fail("ERR_MODEL_FORMAT", where_ + ": reduction '" + r + "' needs opset " + std::to_string(since) + " (the model imports " + std::to_string(node.opset) + ")");
    reduction_ = r == "add" ? Reduction::Add : r == "mul" ? Reduction::Mul : r == "max" ? Reduction::Max : r == "min" ? Reduction::Min : Reduction::None;
  }

  void infer(const std::vector<const Tensor*>& inputs, std::vector<Tensor>& outputs) override {
    const Tensor& data = op_args::required(inputs, 0, where_, "data");
    const Tensor& indices = op_args::required(inputs, 1, where_, "indices");
    const Tensor& updates = op_args::required(inputs, 2, where_, "updates");
    op_args::require_dtype(indices, {DType::I64, DType::I32}, where_, "indices");
    if (updates.dtype != data.dtype) fail("ERR_DTYPE", where_ + ": updates are " + dtype_name(updates.dtype) + " but data is " + dtype_name(data.dtype));
    const int64_t rank = static_cast<int64_t>(data.shape.size());
    if (rank < 1) fail("ERR_SHAPE_MISMATCH", where_ + ": data must have rank >= 1, got a scalar");
    const int64_t axis = op_args::normalize_axis(axis_, rank, where_);
    if (updates.shape != indices.shape)
      fail("ERR_SHAPE_MISMATCH", where_ + ": updates " + shape_str(updates.shape) + " and indices " + shape_str(indices.shape) + " must have one shape");
    if (static_cast<int64_t>(indices.shape.size()) != rank)
      fail("ERR_SHAPE_MISMATCH", where_ + ": indices " + shape_str(indices.shape) + " must have the rank of data " + shape_str(data.shape));
    for (int64_t i = 0; i < rank; ++i)
      if (i != axis && indices.shape[i] > data.shape[i])
        fail("ERR_SHAPE_MISMATCH", where_ + ": indices " + shape_str(indices.shape) + " exceed data " + shape_str(data.shape) + " in axis " + std::to_string(i));
    if (outputs.size() != 1) fail("ERR_MODEL_FORMAT", where_ + ": expected one output");
    outputs[0].dtype = data.dtype;
    outputs[0].shape = data.shape;
  }

  void run(const std::vector<const Tensor*>& inputs, std::vector<Tensor*>& outputs, RunContext&) override {
    const Tensor& data = *inputs[0];
    Tensor& out = *outputs[0];
    if (out.size() > 0) std::memcpy(out.data, data.data, out.bytes());
    switch (data.dtype) {
      case DType::F32: return scatter<float>(inputs, out);
      case DType::I32: return scatter<int32_t>(inputs, out);
      case DType::I64: return scatter<int64_t>(inputs, out);
      case DType::I8: return scatter<int8_t>(inputs, out);
      case DType::U8: return scatter<uint8_t>(inputs, out);
      case DType::Bool: return scatter<bool>(inputs, out);
    }
  }

 private:
  template <typename T>
  static T combine(Reduction r, T old, T update) {
    if constexpr (std::is_same<T, bool>::value) {
      return r == Reduction::Add || r == Reduction::Max ? (old || update) : (old && update);
    } else {
      switch (r) {
        case Reduction::Add: return static_cast<T>(old + update);
        case Reduction::Mul: return static_cast<T>(old * update);
        case Reduction::Max: return std::max(old, update);
        case Reduction::Min: return std::min(old, update);
        case Reduction::None: break;
      }
      return update;
    }
  }

  template <typename T>
  void scatter(const std::vector<const Tensor*>& inputs, Tensor& out) const {
    const Tensor& indices = *inputs[1];
    // bool is stored as one byte 0 / 1, as the executor holds it.
    using Stored = typename std::conditional<std::is_same<T, bool>::value, uint8_t, T>::type;
    const Stored* upd = inputs[2]->ptr<Stored>();
    Stored* y = out.ptr<Stored>();
    const size_t rank = out.shape.size();
    const size_t axis = static_cast<size_t>(op_args::normalize_axis(axis_, static_cast<int64_t>(rank), where_));
    const std::vector<int64_t> strides = op_args::row_major_strides(out.shape);
    const int64_t dim = out.shape[axis];
    std::vector<int64_t> pos(rank);  // the position of element i in indices (and updates)
    int64_t base = 0;                   // its offset in data with the axis coordinate left at 0
    for (int64_t i = 0, n = indices.size(); i < n; ++i) {
      const int64_t at = base + op_args::checked_index(op_args::index_at(indices, i), dim, where_, "index", i, static_cast<int64_t>(axis)) * strides[axis];
      if (reduction_ == Reduction::None) y[at] = upd[i];
      else y[at] = static_cast<Stored>(combine<T>(reduction_, static_cast<T>(y[at]), static_cast<T>(upd[i])));
      for (size_t k = rank; k-- > 0;) {
        if (k != axis) base += strides[k];
        if (++pos[k] < indices.shape[k]) break;
        if (k != axis) base -= pos[k] * strides[k];
        pos[k] = 0;
      }
    }
  }

  std::string where_;
  int64_t axis_;
  Reduction reduction_ = Reduction::None;
};

std::unique_ptr<Op> make_scatter_elements(const BuildContext& bc) { return std::make_unique<ScatterElementsOp>(bc.node); }

}  // namespace

TERNION_REGISTER_OP(ScatterElements, make_scatter_elements);
TERNION_REGISTER_OP(Scatter, make_scatter_elements);

}  // namespace exec
}  // namespace ternion
