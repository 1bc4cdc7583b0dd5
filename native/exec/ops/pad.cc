// Pad over every dtype in modes constant, reflect, edge (and wrap, opset 19). Forms: the
// `paddings` (opset 1) or `pads` (2-10) attribute with the float `value`; from opset 11 the
// pads input, the optional constant_value input and (opset 18) the optional axes input, read in
// infer() and run() from the tensors (computed by then). Negative pads crop.
//
// Each output row (all dims but the last) maps to one input row; the row's middle is one copy
// and only the padded ends are computed element by element.
#include <cstring>

#include "exec/graph.h"
#include "exec/ops/op-args.h"

namespace ternion {
namespace exec {
namespace {

enum class PadMode { Constant, Reflect, Edge, Wrap };

// The input index output index `i` reads along a dim of size n padded by `before`, or -1 for
// the constant. Reflect and wrap continue periodically when the pad exceeds the dim (numpy).
inline int64_t source_index(int64_t i, int64_t before, int64_t n, PadMode mode) {
  int64_t j = i - before;
  if (j >= 0 && j < n) return j;
  switch (mode) {
    case PadMode::Constant: return -1;
    case PadMode::Edge: return j < 0 ? 0 : n - 1;
    case PadMode::Wrap: return ((j % n) + n) % n;
    case PadMode::Reflect: {
      if (n == 1) return 0;
      const int64_t period = 2 * (n - 1);
      j = ((j % period) + period) % period;
      return j < n ? j : period - j;
    }
  }
  return -1;
}

struct PadSpec {
  std::vector<int64_t> before, after;  // per dim, negative to crop
  Shape out;
};

template <typename T>
void pad_rows(const Tensor& x, Tensor& y, const PadSpec& p, PadMode mode, T fill) {
  const size_t rank = x.shape.size();
  const T* in = x.ptr<T>();
  T* out = y.ptr<T>();
  const int64_t n = x.shape[rank - 1], width = p.out[rank - 1], before = p.before[rank - 1];
  // The output columns that copy input columns straight: [lo, hi).
  const int64_t lo = std::min(width, std::max<int64_t>(0, before)), hi = std::max(lo, std::min(width, before + n));
  std::vector<int64_t> in_stride(rank);
  for (size_t i = rank, s = 1; i-- > 0;) in_stride[i] = static_cast<int64_t>(s), s *= static_cast<size_t>(x.shape[i]);
  const int64_t rows = y.size() / std::max<int64_t>(width, 1);
  std::vector<int64_t> index(rank - 1, 0);
  for (int64_t row = 0; row < rows; ++row, out += width) {
    int64_t src = 0;
    bool fill_row = false;
    for (size_t k = 0; k + 1 < rank; ++k) {
      const int64_t j = source_index(index[k], p.before[k], x.shape[k], mode);
      if (j < 0) fill_row = true;
      src += j * in_stride[k];
    }
    if (fill_row) {
      std::fill(out, out + width, fill);
    } else {
      const T* row_in = in + src;
      for (int64_t c = 0; c < lo; ++c) {
        const int64_t j = source_index(c, before, n, mode);
        out[c] = j < 0 ? fill : row_in[j];
      }
      if (hi > lo) std::memcpy(out + lo, row_in + (lo - before), static_cast<size_t>(hi - lo) * sizeof(T));
      for (int64_t c = hi; c < width; ++c) {
        const int64_t j = source_index(c, before, n, mode);
        out[c] = j < 0 ? fill : row_in[j];
      }
    }
    for (size_t k = rank - 1; k-- > 0;) {
      if (++index[k] < p.out[k]) break;
      index[k] = 0;
    }
  }
}

class PadOp : public Op {
 public:
  explicit PadOp(const NodeDesc& node) : where_(node.where()), from_attributes_(node.opset > 0 && node.opset < 11) {
    const std::string mode = node.get_string("mode", "constant");
    if (mode == "constant") mode_ = PadMode::Constant;
    else if (mode == "reflect") mode_ = PadMode::Reflect;
    else if (mode == "edge") mode_ = PadMode::Edge;
    else if (mode == "wrap") mode_ = PadMode::Wrap;
    else fail("ERR_UNSUPPORTED_OP", where_ + ": mode '" + mode + "' (expected constant, reflect, edge or wrap)");
    if (from_attributes_) {
      attr_pads_ = node.get_ints(node.opset < 2 && node.has("paddings") ? "paddings" : "pads");
      attr_value_ = node.get_float("value", 0.0f);
    }
  }

  void infer(const std::vector<const Tensor*>& inputs, std::vector<Tensor>& outputs) override {
    const Tensor& x = op_args::required(inputs, 0, where_, "data");
    if (outputs.size() != 1) fail("ERR_MODEL_FORMAT", where_ + ": expected one output");
    const PadSpec p = spec(inputs);
    if (!from_attributes_ && op_args::optional(inputs, 2)) {
      const Tensor& v = *inputs[2];
      if (v.dtype != x.dtype) fail("ERR_DTYPE", where_ + ": constant_value is " + dtype_name(v.dtype) + " but data is " + dtype_name(x.dtype));
      if (v.size() > 1) fail("ERR_SHAPE_MISMATCH", where_ + ": constant_value must be a scalar, got shape " + shape_str(v.shape));
    }
    outputs[0].dtype = x.dtype;
    outputs[0].shape = p.out;
  }

  void run(const std::vector<const Tensor*>& inputs, std::vector<Tensor*>& outputs, RunContext&) override {
    const Tensor& x = *inputs[0];
    Tensor& y = *outputs[0];
    if (y.size() == 0) return;
    const PadSpec p = spec(inputs);
    if (x.shape.empty()) {  // a scalar has nothing to pad
      std::memcpy(y.data, x.data, x.bytes());
      return;
    }
    // The fill value as the bytes of one element of data's dtype.
    uint64_t fill = 0;
    const Tensor* v = from_attributes_ ? nullptr : op_args::optional(inputs, 2);
    if (v && v->size() == 1) {
      std::memcpy(&fill, v->data, dtype_size(x.dtype));
    } else {
      const double value = from_attributes_ ? attr_value_ : 0.0;
      switch (x.dtype) {
        case DType::F32: { const float f = static_cast<float>(value); std::memcpy(&fill, &f, 4); break; }
        case DType::I32: { const int32_t i = static_cast<int32_t>(value); std::memcpy(&fill, &i, 4); break; }
        case DType::I64: { const int64_t i = static_cast<int64_t>(value); std::memcpy(&fill, &i, 8); break; }
        case DType::I8: { const int8_t i = static_cast<int8_t>(value); std::memcpy(&fill, &i, 1); break; }
        default: { const uint8_t i = static_cast<uint8_t>(value); std::memcpy(&fill, &i, 1); break; }
      }
    }
    switch (dtype_size(x.dtype)) {
      case 1: return pad_rows<uint8_t>(x, y, p, mode_, static_cast<uint8_t>(fill));
      case 4: return pad_rows<uint32_t>(x, y, p, mode_, static_cast<uint32_t>(fill));
      case 8: return pad_rows<uint64_t>(x, y, p, mode_, fill);
      default: fail("ERR_DTYPE", where_ + ": unsupported dtype " + dtype_name(x.dtype));
    }
  }

 private:
  PadSpec spec(const std::vector<const Tensor*>& inputs) const {
    const Tensor& x = *inputs[0];
    const int64_t rank = static_cast<int64_t>(x.shape.size());
    std::vector<int64_t> pads = from_attributes_ ? attr_pads_ : op_args::read_ints(op_args::required(inputs, 1, where_, "pads"), where_, "pads");
    std::vector<int64_t> axes;
    const Tensor* axes_input = from_attributes_ ? nullptr : op_args::optional(inputs, 3);
    if (axes_input) {
      axes = op_args::normalize_axes(op_args::read_ints(*axes_input, where_, "axes"), rank, where_);
    } else {
      for (int64_t i = 0; i < rank; ++i) axes.push_back(i);
    }
    if (pads.size() != 2 * axes.size())
      fail("ERR_SHAPE_MISMATCH", where_ + ": pads " + shape_str(pads) + " must hold 2 values per padded axis of data " + shape_str(x.shape));
    PadSpec p;
    p.before.assign(rank, 0);
    p.after.assign(rank, 0);
    p.out = x.shape;
    const int64_t limit = int64_t(1) << 40;  // keeps the sums below from overflowing
    for (size_t k = 0; k < axes.size(); ++k) {
      const int64_t a = axes[k], b = pads[k], e = pads[k + axes.size()];
      if (b < -limit || b > limit || e < -limit || e > limit || x.shape[a] + b + e < 0)
        fail("ERR_SHAPE_MISMATCH", where_ + ": pads " + shape_str(pads) + " do not fit data " + shape_str(x.shape));
      p.before[a] = b, p.after[a] = e;
      p.out[a] = x.shape[a] + b + e;
      if (mode_ != PadMode::Constant && x.shape[a] == 0 && p.out[a] > 0)
        fail("ERR_SHAPE_MISMATCH", where_ + ": cannot pad an empty axis " + std::to_string(a) + " of " + shape_str(x.shape) + " in this mode");
    }
    shape_size(p.out);  // ERR_SHAPE_MISMATCH if absurdly large
    return p;
  }

  std::string where_;
  bool from_attributes_;
  PadMode mode_ = PadMode::Constant;
  std::vector<int64_t> attr_pads_;
  float attr_value_ = 0;
};

std::unique_ptr<Op> make_pad(const BuildContext& bc) { return std::make_unique<PadOp>(bc.node); }

}  // namespace

TERNION_REGISTER_OP(Pad, make_pad);

}  // namespace exec
}  // namespace ternion
