// EyeLike: a 2-D tensor of the input's shape, zero but for ones on the diagonal shifted by k
// (k > 0 above the main diagonal, k < 0 below; a diagonal wholly outside leaves all zeros). The
// element type is `dtype` when given (an ONNX type code), else the input's; only the input's
// shape is read.
#include <cstring>

#include "exec/graph.h"
#include "exec/ops/op-args.h"

namespace ternion {
namespace exec {
namespace {

class EyeLikeOp : public Op {
 public:
  explicit EyeLikeOp(const NodeDesc& node) : where_(node.where()), k_(node.get_int("k", 0)) {
    if (node.has("dtype")) {
      const int64_t code = node.get_int("dtype", 0);
      if (!op_args::dtype_from_onnx(code, dtype_))
        fail("ERR_DTYPE", where_ + ": dtype " + std::to_string(code) + " is not supported (float32, int32, int64, int8, uint8 and bool are)");
      has_dtype_ = true;
    }
  }

  void infer(const std::vector<const Tensor*>& inputs, std::vector<Tensor>& outputs) override {
    const Tensor& x = op_args::required(inputs, 0, where_, "input");
    if (x.shape.size() != 2) fail("ERR_SHAPE_MISMATCH", where_ + ": input must be 2-D, got shape " + shape_str(x.shape));
    if (outputs.size() != 1) fail("ERR_MODEL_FORMAT", where_ + ": expected one output");
    outputs[0].dtype = has_dtype_ ? dtype_ : x.dtype;
    outputs[0].shape = x.shape;
  }

  void run(const std::vector<const Tensor*>&, std::vector<Tensor*>& outputs, RunContext&) override {
    Tensor& y = *outputs[0];
    if (y.size() == 0) return;
    std::memset(y.data, 0, y.bytes());
    const int64_t rows = y.shape[0], cols = y.shape[1];
    switch (y.dtype) {
      case DType::F32: return diagonal<float>(y.ptr<float>(), rows, cols);
      case DType::I32: return diagonal<int32_t>(y.ptr<int32_t>(), rows, cols);
      case DType::I64: return diagonal<int64_t>(y.ptr<int64_t>(), rows, cols);
      case DType::I8: return diagonal<int8_t>(y.ptr<int8_t>(), rows, cols);
      case DType::U8: case DType::Bool: return diagonal<uint8_t>(y.ptr<uint8_t>(), rows, cols);
    }
  }

 private:
  template <typename T>
  void diagonal(T* out, int64_t rows, int64_t cols) const {
    if (k_ >= cols || k_ <= -rows) return;  // also keeps -k_ below from overflowing
    // Row r holds its one at column r + k: rows from max(0, -k) while the column is inside.
    for (int64_t r = k_ < 0 ? -k_ : 0; r < rows && r + k_ < cols; ++r) out[r * cols + r + k_] = T(1);
  }

  std::string where_;
  int64_t k_;
  DType dtype_ = DType::F32;
  bool has_dtype_ = false;
};

std::unique_ptr<Op> make_eye_like(const BuildContext& bc) { return std::make_unique<EyeLikeOp>(bc.node); }

}  // namespace

TERNION_REGISTER_OP(EyeLike, make_eye_like);

}  // namespace exec
}  // namespace ternion
