// ScatterND: a copy of data with slices replaced (reduction "none"), or combined by add / mul,
// at the index tuples of `indices` ([..., k], int64; negative indices count from the end).
// Exporters emit it for in-place slice assignment (attention masks of windowed attention).
#include <cstring>

#include "exec/graph.h"
#include "exec/ops/op-args.h"

namespace ternion {
namespace exec {
namespace {

class ScatterNDOp : public Op {
 public:
  explicit ScatterNDOp(const NodeDesc& node) : where_(node.where()) {
    const std::string r = node.get_string("reduction", "none");
    if (r == "add") reduction_ = 1;
    else if (r == "mul") reduction_ = 2;
    else if (r != "none") fail("ERR_UNSUPPORTED_OP", where_ + ": reduction '" + r + "' is not supported (none, add, mul are)");
  }

  void infer(const std::vector<const Tensor*>& inputs, std::vector<Tensor>& outputs) override {
    const Tensor& data = op_args::required(inputs, 0, where_, "data");
    const Tensor& idx = op_args::required(inputs, 1, where_, "indices");
    const Tensor& upd = op_args::required(inputs, 2, where_, "updates");
    op_args::require_dtype(idx, {DType::I64}, where_, "indices");
    if (upd.dtype != data.dtype) fail("ERR_DTYPE", where_ + ": updates are " + dtype_name(upd.dtype) + " but data is " + dtype_name(data.dtype));
    if (reduction_ && data.dtype != DType::F32 && data.dtype != DType::I32 && data.dtype != DType::I64)
      fail("ERR_DTYPE", where_ + ": add / mul need float32, int32 or int64 data");
    const size_t q = idx.shape.size(), r = data.shape.size();
    const int64_t k = q ? idx.shape[q - 1] : -1;
    if (q < 1 || k < 1 || static_cast<size_t>(k) > r) fail("ERR_SHAPE_MISMATCH", where_ + ": indices " + shape_str(idx.shape) + " do not fit data " + shape_str(data.shape));
    // updates: indices.shape[:-1] + data.shape[k:]
    Shape want(idx.shape.begin(), idx.shape.end() - 1);
    want.insert(want.end(), data.shape.begin() + k, data.shape.end());
    if (upd.shape != want) fail("ERR_SHAPE_MISMATCH", where_ + ": updates are " + shape_str(upd.shape) + ", expected " + shape_str(want));
    if (outputs.size() != 1) fail("ERR_MODEL_FORMAT", where_ + ": expected one output");
    outputs[0].dtype = data.dtype;
    outputs[0].shape = data.shape;
  }

  void run(const std::vector<const Tensor*>& inputs, std::vector<Tensor*>& outputs, RunContext&) override {
    const Tensor& data = *inputs[0];
    const Tensor& idx = *inputs[1];
    const Tensor& upd = *inputs[2];
    Tensor& out = *outputs[0];
    std::memcpy(out.data, data.data, out.bytes());
    const int64_t k = idx.shape.back(), tuples = idx.size() / k;
    int64_t slice = 1;  // elements per updated slice
    for (size_t i = static_cast<size_t>(k); i < data.shape.size(); ++i) slice *= data.shape[i];
    const size_t es = dtype_size(data.dtype);
    const int64_t* ip = idx.ptr<int64_t>();
    for (int64_t t = 0; t < tuples; ++t) {
      int64_t off = 0;
      for (int64_t j = 0; j < k; ++j) {
        int64_t v = ip[t * k + j];
        const int64_t d = data.shape[static_cast<size_t>(j)];
        if (v < 0) v += d;
        if (v < 0 || v >= d) fail("ERR_INVALID_ARGUMENT", where_ + ": index " + std::to_string(ip[t * k + j]) + " is out of range for a dimension of " + std::to_string(d));
        off = off * d + v;
      }
      off *= slice;
      if (reduction_ == 0) {
        std::memcpy(out.ptr<char>() + off * es, upd.ptr<char>() + t * slice * es, static_cast<size_t>(slice) * es);
      } else if (data.dtype == DType::F32) {
        combine(out.ptr<float>() + off, upd.ptr<float>() + t * slice, slice);
      } else if (data.dtype == DType::I32) {
        combine(out.ptr<int32_t>() + off, upd.ptr<int32_t>() + t * slice, slice);
      } else {
        combine(out.ptr<int64_t>() + off, upd.ptr<int64_t>() + t * slice, slice);
      }
    }
  }

 private:
  template <typename T>
  void combine(T* out, const T* upd, int64_t n) const {
    for (int64_t i = 0; i < n; ++i) out[i] = reduction_ == 1 ? static_cast<T>(out[i] + upd[i]) : static_cast<T>(out[i] * upd[i]);
  }

  std::string where_;
  int reduction_ = 0;  // 0 none, 1 add, 2 mul
};

std::unique_ptr<Op> make_scatter_nd(const BuildContext& bc) { return std::make_unique<ScatterNDOp>(bc.node); }

}  // namespace

TERNION_REGISTER_OP(ScatterND, make_scatter_nd);

}  // namespace exec
}  // namespace ternion
