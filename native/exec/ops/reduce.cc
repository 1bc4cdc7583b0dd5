// ReduceMean, ReduceSum, ReduceMax, ReduceMin, ReduceProd, ReduceSumSquare, ReduceL1, ReduceL2,
// ReduceLogSum and ReduceLogSumExp over any set of axes, with keepdims and noop_with_empty_axes,
// and ArgMax / ArgMin along one axis. Axes come from the attribute (before opset 18; ReduceSum:
// 13) or from the optional second input. Sums accumulate in double. Exporters write LayerNorm, global
// pooling and attention statistics with these.
#include <cmath>
#include <limits>
#include <type_traits>

#include "exec/graph.h"
#include "exec/ops/broadcast.h"
#include "exec/ops/op-args.h"
#include "exec/ops/vector-math.h"

namespace ternion {
namespace exec {
namespace {

enum class ReduceKind { Mean, Sum, Max, Min, Prod, SumSquare, L1, L2, LogSum, LogSumExp };

// sum_in_double (vector-math.h) in a wide clone. The last-axis ReduceMean of a LayerNorm written
// out (ViT, ConvNeXt) went through the general index walk below at 1.5 ns a value.
TERNION_WIDE_CLONES double sum_contiguous(const float* x, int64_t n) { return sum_in_double(x, n); }

class ReduceOp : public Op {
 public:
  ReduceOp(const NodeDesc& node, ReduceKind kind)
      : where_(node.where()), kind_(kind), keepdims_(node.get_int("keepdims", 1) != 0),
        noop_empty_(node.get_int("noop_with_empty_axes", 0) != 0), attr_axes_(node.get_ints("axes")) {
    const int input_from = kind == ReduceKind::Sum ? 13 : 18;
    axes_from_input_ = node.opset >= input_from;
  }

  void infer(const std::vector<const Tensor*>& inputs, std::vector<Tensor>& outputs) override {
    const Tensor& x = op_args::required(inputs, 0, where_, "data");
    if (kind_ == ReduceKind::Mean || kind_ == ReduceKind::L2 || kind_ == ReduceKind::LogSum || kind_ == ReduceKind::LogSumExp)
      op_args::require_dtype(x, {DType::F32}, where_, "data");
    else
      op_args::require_dtype(x, {DType::F32, DType::I32, DType::I64}, where_, "data");
    if (outputs.size() != 1) fail("ERR_MODEL_FORMAT", where_ + ": expected one output");
    const std::vector<bool> reduced = reduced_axes(inputs, x.shape);
    Shape out;
    for (size_t i = 0; i < x.shape.size(); ++i) {
      if (!reduced[i]) out.push_back(x.shape[i]);
      else if (keepdims_) out.push_back(1);
    }
    outputs[0].dtype = x.dtype;
    outputs[0].shape = out;
  }

  void run(const std::vector<const Tensor*>& inputs, std::vector<Tensor*>& outputs, RunContext& ctx) override {
    const Tensor& x = *inputs[0];
    const std::vector<bool> reduced = reduced_axes(inputs, x.shape);
    switch (x.dtype) {
      case DType::F32: return reduce<float>(ctx, x, reduced, *outputs[0]);
      case DType::I32: return reduce<int32_t>(ctx, x, reduced, *outputs[0]);
      case DType::I64: return reduce<int64_t>(ctx, x, reduced, *outputs[0]);
      default: fail("ERR_DTYPE", where_ + ": unsupported dtype " + dtype_name(x.dtype));
    }
  }

 private:
  // Which axes of x are reduced (all of them when no axes are given, none for a no-op).
  std::vector<bool> reduced_axes(const std::vector<const Tensor*>& inputs, const Shape& shape) const {
    std::vector<int64_t> axes = attr_axes_;
    if (axes_from_input_) {
      const Tensor* a = op_args::optional(inputs, 1);
      axes = a ? op_args::read_ints(*a, where_, "axes") : std::vector<int64_t>{};
    }
    const int64_t rank = static_cast<int64_t>(shape.size());
    std::vector<bool> reduced(shape.size(), axes.empty() && !noop_empty_);
    for (int64_t a : op_args::normalize_axes(axes, rank, where_)) reduced[a] = true;
    return reduced;
  }

  template <typename T>
  void reduce(const RunContext& ctx, const Tensor& x, const std::vector<bool>& reduced, Tensor& y) const {
    // Merge neighbouring axes of the same kind: the walk is then over alternating kept and
    // reduced blocks, usually one of each ([rows, R] for a last-axis LayerNorm statistic).
    std::vector<int64_t> dims;
    std::vector<bool> red;
    for (size_t i = 0; i < x.shape.size(); ++i) {
      if (x.shape[i] == 1) continue;
      if (!dims.empty() && red.back() == reduced[i]) {
        dims.back() *= x.shape[i];
      } else {
        dims.push_back(x.shape[i]);
        red.push_back(reduced[i]);
      }
    }
    const int64_t total = y.size();
    int64_t count = 1;  // elements per output
    for (size_t i = 0; i < dims.size(); ++i)
      if (red[i]) count *= dims[i];
    const T* in = x.ptr<T>();
    T* out = y.ptr<T>();
    // Strides of the merged input dims, and the kept dims in output order.
    std::vector<int64_t> stride(dims.size(), 1);
    for (size_t i = dims.size(); i-- > 1;) stride[i - 1] = stride[i] * dims[i];
    std::vector<size_t> kept, summed;
    for (size_t i = 0; i < dims.size(); ++i) (red[i] ? summed : kept).push_back(i);
    const ReduceKind kind = kind_;
    const int64_t grain = std::max<int64_t>(1, (1 << 14) / std::max<int64_t>(count, 1));
    // Sum / Mean / LogSum of float32 over the trailing axes only: each output sums one
    // contiguous run.
    if (std::is_same<T, float>::value && (kind == ReduceKind::Sum || kind == ReduceKind::Mean || kind == ReduceKind::LogSum) && count > 0 &&
        summed.size() == 1 && summed[0] == dims.size() - 1) {
      const float* xf = reinterpret_cast<const float*>(in);
      float* yf = reinterpret_cast<float*>(out);
      broadcast::parallel_range(ctx, total, grain, [&](int64_t b, int64_t e) {
        for (int64_t o = b; o < e; ++o) {
          const double acc = sum_contiguous(xf + o * count, count);
          yf[o] = static_cast<float>(kind == ReduceKind::Mean ? acc / static_cast<double>(count)
                                     : kind == ReduceKind::LogSum ? std::log(acc) : acc);
        }
      });
      return;
    }
    broadcast::parallel_range(ctx, total, grain, [&](int64_t b, int64_t e) {
      std::vector<int64_t> idx(summed.size());
      for (int64_t o = b; o < e; ++o) {
        // The input offset of output o's first element.
        int64_t base = 0, rest = o;
        for (size_t k = kept.size(); k-- > 0;) {
          base += (rest % dims[kept[k]]) * stride[kept[k]];
          rest /= dims[kept[k]];
        }
        double acc = kind == ReduceKind::Max ? -std::numeric_limits<double>::infinity()
                     : kind == ReduceKind::Min ? std::numeric_limits<double>::infinity()
                     : kind == ReduceKind::Prod ? 1.0 : 0.0;
        T best = T(0);
        bool first = true;
        std::fill(idx.begin(), idx.end(), 0);
        int64_t off = base;
        for (int64_t n = 0; n < count; ++n) {
          const T v = in[off];
          if (kind == ReduceKind::Sum || kind == ReduceKind::Mean || kind == ReduceKind::LogSum) {
            acc += static_cast<double>(v);
          } else if (kind == ReduceKind::Prod) {
            acc *= static_cast<double>(v);
          } else if (kind == ReduceKind::SumSquare || kind == ReduceKind::L2) {
            acc += static_cast<double>(v) * static_cast<double>(v);
          } else if (kind == ReduceKind::L1) {
            acc += std::fabs(static_cast<double>(v));
          } else if (kind == ReduceKind::LogSumExp) {
            acc += std::exp(static_cast<double>(v));
          } else if (first) {
            best = v;
            first = false;
          } else if (best == best && (v != v || (kind == ReduceKind::Max ? v > best : v < best))) {
            best = v;  // a NaN, once met, stays (as numpy's max does)
          }
          for (size_t k = summed.size(); k-- > 0;) {
            off += stride[summed[k]];
            if (++idx[k] < dims[summed[k]]) break;
            off -= idx[k] * stride[summed[k]];
            idx[k] = 0;
          }
        }
        if (kind == ReduceKind::Sum || kind == ReduceKind::Prod || kind == ReduceKind::SumSquare || kind == ReduceKind::L1) out[o] = static_cast<T>(acc);
        else if (kind == ReduceKind::L2) out[o] = static_cast<T>(std::sqrt(acc));
        else if (kind == ReduceKind::LogSum || kind == ReduceKind::LogSumExp) out[o] = static_cast<T>(std::log(acc));
        else if (kind == ReduceKind::Mean) out[o] = static_cast<T>(count ? acc / static_cast<double>(count) : std::nan(""));
        else if (count > 0) out[o] = best;
        else if (std::is_floating_point<T>::value) out[o] = static_cast<T>(acc);  // -inf / +inf
        else out[o] = kind == ReduceKind::Max ? std::numeric_limits<T>::lowest() : std::numeric_limits<T>::max();
      }
    });
  }

  std::string where_;
  ReduceKind kind_;
  bool keepdims_, noop_empty_;
  std::vector<int64_t> attr_axes_;
  bool axes_from_input_ = false;
};

// ArgMax / ArgMin along one axis: int64 indices of the first extreme (or the last, with
// select_last_index=1).
class ArgExtremeOp : public Op {
 public:
  ArgExtremeOp(const NodeDesc& node, bool max)
      : where_(node.where()), max_(max), axis_(node.get_int("axis", 0)), keepdims_(node.get_int("keepdims", 1) != 0),
        last_(node.get_int("select_last_index", 0) != 0) {}

  void infer(const std::vector<const Tensor*>& inputs, std::vector<Tensor>& outputs) override {
    const Tensor& x = op_args::required(inputs, 0, where_, "data");
    op_args::require_dtype(x, {DType::F32, DType::I32, DType::I64, DType::U8, DType::I8}, where_, "data");
    const int64_t axis = op_args::normalize_axis(axis_, static_cast<int64_t>(x.shape.size()), where_);
    if (x.shape[static_cast<size_t>(axis)] == 0) fail("ERR_SHAPE_MISMATCH", where_ + ": the reduced axis is empty");
    if (outputs.size() != 1) fail("ERR_MODEL_FORMAT", where_ + ": expected one output");
    Shape out = x.shape;
    if (keepdims_) out[static_cast<size_t>(axis)] = 1;
    else out.erase(out.begin() + axis);
    outputs[0].dtype = DType::I64;
    outputs[0].shape = out;
  }

  void run(const std::vector<const Tensor*>& inputs, std::vector<Tensor*>& outputs, RunContext&) override {
    const Tensor& x = *inputs[0];
    switch (x.dtype) {
      case DType::F32: return pick<float>(x, *outputs[0]);
      case DType::I32: return pick<int32_t>(x, *outputs[0]);
      case DType::I64: return pick<int64_t>(x, *outputs[0]);
      case DType::U8: return pick<uint8_t>(x, *outputs[0]);
      case DType::I8: return pick<int8_t>(x, *outputs[0]);
      default: fail("ERR_DTYPE", where_ + ": unsupported dtype " + dtype_name(x.dtype));
    }
  }

 private:
  template <typename T>
  void pick(const Tensor& x, Tensor& y) const {
    const size_t axis = static_cast<size_t>(op_args::normalize_axis(axis_, static_cast<int64_t>(x.shape.size()), where_));
    const int64_t outer = op_args::dims_product(x.shape, 0, axis), inner = op_args::dims_product(x.shape, axis + 1, x.shape.size());
    const int64_t len = x.shape[axis];
    const T* in = x.ptr<T>();
    int64_t* out = y.ptr<int64_t>();
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t i = 0; i < inner; ++i) {
        const T* p = in + o * len * inner + i;
        int64_t best = 0;
        for (int64_t k = 1; k < len; ++k) {
          const T v = p[k * inner], b = p[best * inner];
          const bool better = max_ ? (v > b || (last_ && v == b)) : (v < b || (last_ && v == b));
          if (better) best = k;
        }
        out[o * inner + i] = best;
      }
  }

  std::string where_;
  bool max_;
  int64_t axis_;
  bool keepdims_, last_;
};

std::unique_ptr<Op> make_argmax(const BuildContext& bc) { return std::make_unique<ArgExtremeOp>(bc.node, true); }
std::unique_ptr<Op> make_argmin(const BuildContext& bc) { return std::make_unique<ArgExtremeOp>(bc.node, false); }

template <ReduceKind K>
std::unique_ptr<Op> make_reduce(const BuildContext& bc) { return std::make_unique<ReduceOp>(bc.node, K); }

}  // namespace

TERNION_REGISTER_OP(ReduceMean, make_reduce<ReduceKind::Mean>);
TERNION_REGISTER_OP(ReduceSum, make_reduce<ReduceKind::Sum>);
TERNION_REGISTER_OP(ReduceMax, make_reduce<ReduceKind::Max>);
TERNION_REGISTER_OP(ReduceMin, make_reduce<ReduceKind::Min>);
TERNION_REGISTER_OP(ReduceProd, make_reduce<ReduceKind::Prod>);
TERNION_REGISTER_OP(ReduceSumSquare, make_reduce<ReduceKind::SumSquare>);
TERNION_REGISTER_OP(ReduceL1, make_reduce<ReduceKind::L1>);
TERNION_REGISTER_OP(ReduceL2, make_reduce<ReduceKind::L2>);
TERNION_REGISTER_OP(ReduceLogSum, make_reduce<ReduceKind::LogSum>);
TERNION_REGISTER_OP(ReduceLogSumExp, make_reduce<ReduceKind::LogSumExp>);
TERNION_REGISTER_OP(ArgMax, make_argmax);
TERNION_REGISTER_OP(ArgMin, make_argmin);

}  // namespace exec
}  // namespace ternion
