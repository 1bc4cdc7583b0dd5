// Elementwise math: Sqrt, Exp, Log, Reciprocal, Floor, Ceil, Round, the trigonometric and
// hyperbolic functions and their inverses (Sin, Cos, Tan, Asin, Acos, Atan, Sinh, Cosh, Asinh,
// Acosh, Atanh; float32), Neg, Abs and Sign (float32 and signed integers), IsNaN and IsInf
// (float32 in, bool out), Shrink (float32 and integers), Pow (float32 base; float32, int32 or
// int64 exponent, broadcast) and Mod (integers with the divisor's sign, or C's fmod with fmod=1;
// float32 needs fmod=1, as ONNX says). These are what normalization layers written out by
// exporters (x - mean, Pow(., 2), ReduceMean, Sqrt, Div) and softmax-like blocks are made of.
// Results follow C's <cmath>, as onnxruntime's do.
#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

#include "exec/graph.h"
#include "exec/ops/broadcast.h"
#include "exec/ops/op-args.h"

namespace ternion {
namespace exec {
namespace {

enum class UnaryKind {
  Sqrt, Exp, Log, Reciprocal, Neg, Abs, Sign, Floor, Ceil, Round,
  Sin, Cos, Tan, Asin, Acos, Atan, Sinh, Cosh, Asinh, Acosh, Atanh,
};

class UnaryMathOp : public Op {
 public:
  UnaryMathOp(const NodeDesc& node, UnaryKind kind) : where_(node.where()), kind_(kind) {}

  void infer(const std::vector<const Tensor*>& inputs, std::vector<Tensor>& outputs) override {
    const Tensor& x = op_args::required(inputs, 0, where_, "X");
    if (kind_ == UnaryKind::Neg || kind_ == UnaryKind::Abs || kind_ == UnaryKind::Sign)
      op_args::require_dtype(x, {DType::F32, DType::I32, DType::I64, DType::I8}, where_, "X");
    else
      op_args::require_dtype(x, {DType::F32}, where_, "X");
    if (outputs.size() != 1) fail("ERR_MODEL_FORMAT", where_ + ": expected one output");
    outputs[0].dtype = x.dtype;
    outputs[0].shape = x.shape;
  }

  void run(const std::vector<const Tensor*>& inputs, std::vector<Tensor*>& outputs, RunContext& ctx) override {
    const Tensor& x = *inputs[0];
    Tensor& y = *outputs[0];
    switch (x.dtype) {
      case DType::F32: return apply<float>(ctx, x, y);
      case DType::I32: return apply<int32_t>(ctx, x, y);
      case DType::I64: return apply<int64_t>(ctx, x, y);
      case DType::I8: return apply<int8_t>(ctx, x, y);
      default: fail("ERR_DTYPE", where_ + ": unsupported dtype " + dtype_name(x.dtype));
    }
  }

 private:
  template <typename T>
  void apply(const RunContext& ctx, const Tensor& x, Tensor& y) const {
    const T* in = x.ptr<T>();
    T* out = y.ptr<T>();
    const UnaryKind kind = kind_;
    broadcast::parallel_range(ctx, x.size(), 1 << 14, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) out[i] = compute(kind, in[i]);
    });
  }

  template <typename T>
  static T compute(UnaryKind kind, T v) {
    if constexpr (std::is_floating_point<T>::value) {
      switch (kind) {
        case UnaryKind::Sqrt: return std::sqrt(v);
        case UnaryKind::Exp: return std::exp(v);
        case UnaryKind::Log: return std::log(v);
        case UnaryKind::Reciprocal: return T(1) / v;
        case UnaryKind::Neg: return -v;
        case UnaryKind::Abs: return std::fabs(v);
        case UnaryKind::Sign: return v > 0 ? T(1) : v < 0 ? T(-1) : v;  // 0 and NaN stay
        case UnaryKind::Floor: return std::floor(v);
        case UnaryKind::Ceil: return std::ceil(v);
        case UnaryKind::Round: return std::nearbyint(v);  // halves to even (the default rounding mode)
        case UnaryKind::Sin: return std::sin(v);
        case UnaryKind::Cos: return std::cos(v);
        case UnaryKind::Tan: return std::tan(v);
        case UnaryKind::Asin: return std::asin(v);  // NaN outside [-1, 1], as C and numpy give
        case UnaryKind::Acos: return std::acos(v);
        case UnaryKind::Atan: return std::atan(v);
        case UnaryKind::Sinh: return std::sinh(v);
        case UnaryKind::Cosh: return std::cosh(v);
        case UnaryKind::Asinh: return std::asinh(v);
        case UnaryKind::Acosh: return std::acosh(v);  // NaN below 1
        case UnaryKind::Atanh: return std::atanh(v);  // +-inf at +-1, NaN beyond
      }
      return v;
    } else {
      if (kind == UnaryKind::Sign) return static_cast<T>(v > 0 ? 1 : v < 0 ? -1 : 0);
      // Signed integers wrap like two's complement: -INT_MIN is INT_MIN (as numpy gives).
      using U = std::make_unsigned_t<T>;
      const T neg = static_cast<T>(U(0) - static_cast<U>(v));
      return kind == UnaryKind::Neg ? neg : (v < 0 ? neg : v);
    }
  }

  std::string where_;
  UnaryKind kind_;
};

// IsNaN and IsInf (detect_positive / detect_negative, both 1 by default): float32 in, bool out.
class FloatClassOp : public Op {
 public:
  FloatClassOp(const NodeDesc& node, bool nan)
      : where_(node.where()), nan_(nan), positive_(node.get_int("detect_positive", 1) != 0),
        negative_(node.get_int("detect_negative", 1) != 0) {}

  void infer(const std::vector<const Tensor*>& inputs, std::vector<Tensor>& outputs) override {
    const Tensor& x = op_args::required(inputs, 0, where_, "X");
    op_args::require_dtype(x, {DType::F32}, where_, "X");
    if (outputs.size() != 1) fail("ERR_MODEL_FORMAT", where_ + ": expected one output");
    outputs[0].dtype = DType::Bool;
    outputs[0].shape = x.shape;
  }

  void run(const std::vector<const Tensor*>& inputs, std::vector<Tensor*>& outputs, RunContext& ctx) override {
    const float* in = inputs[0]->ptr<float>();
    uint8_t* out = outputs[0]->ptr<uint8_t>();
    const float inf = std::numeric_limits<float>::infinity();
    const bool nan = nan_, positive = positive_, negative = negative_;
    broadcast::parallel_range(ctx, inputs[0]->size(), 1 << 15, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        const float v = in[i];
        out[i] = nan ? v != v : (positive && v == inf) || (negative && v == -inf);
      }
    });
  }

 private:
  std::string where_;
  bool nan_, positive_, negative_;
};

// Shrink: x < -lambd -> x + bias, x > lambd -> x - bias, else 0. Integers are compared and
// shifted as floats and truncated back to their type (as onnxruntime does), saturating at the
// type's range rather than wrapping.
class ShrinkOp : public Op {
 public:
  explicit ShrinkOp(const NodeDesc& node)
      : where_(node.where()), lambd_(node.get_float("lambd", 0.5f)), bias_(node.get_float("bias", 0.0f)) {}

  void infer(const std::vector<const Tensor*>& inputs, std::vector<Tensor>& outputs) override {
    const Tensor& x = op_args::required(inputs, 0, where_, "input");
    op_args::require_dtype(x, {DType::F32, DType::I32, DType::I64, DType::I8, DType::U8}, where_, "input");
    if (outputs.size() != 1) fail("ERR_MODEL_FORMAT", where_ + ": expected one output");
    outputs[0].dtype = x.dtype;
    outputs[0].shape = x.shape;
  }

  void run(const std::vector<const Tensor*>& inputs, std::vector<Tensor*>& outputs, RunContext& ctx) override {
    const Tensor& x = *inputs[0];
    Tensor& y = *outputs[0];
    switch (x.dtype) {
      case DType::F32: return apply<float>(ctx, x, y);
      case DType::I32: return apply<int32_t>(ctx, x, y);
      case DType::I64: return apply<int64_t>(ctx, x, y);
      case DType::I8: return apply<int8_t>(ctx, x, y);
      case DType::U8: return apply<uint8_t>(ctx, x, y);
      default: fail("ERR_DTYPE", where_ + ": unsupported dtype " + dtype_name(x.dtype));
    }
  }

 private:
  template <typename T>
  void apply(const RunContext& ctx, const Tensor& x, Tensor& y) const {
    const T* in = x.ptr<T>();
    T* out = y.ptr<T>();
    const float lambd = lambd_, bias = bias_;
    broadcast::parallel_range(ctx, x.size(), 1 << 15, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        const float v = static_cast<float>(in[i]);
        const float r = v < -lambd ? v + bias : v > lambd ? v - bias : 0.0f;
        if constexpr (std::is_floating_point<T>::value) {
          out[i] = r;
        } else {
          // Clamped in double: float(INT32_MAX) rounds up past the type's range.
          const double lo = static_cast<double>(std::numeric_limits<T>::lowest());
          const double hi = static_cast<double>(std::numeric_limits<T>::max());
          out[i] = static_cast<T>(std::min(std::max(static_cast<double>(std::trunc(r)), lo), hi));
        }
      }
    });
  }

  std::string where_;
  float lambd_, bias_;
};

// Pow(X, Y): float32 X; Y float32, int32 or int64 (converted to float32), broadcast.
class PowOp : public Op {
 public:
  explicit PowOp(const NodeDesc& node) : where_(node.where()) {}

  void infer(const std::vector<const Tensor*>& inputs, std::vector<Tensor>& outputs) override {
    const Tensor& x = op_args::required(inputs, 0, where_, "X");
    const Tensor& y = op_args::required(inputs, 1, where_, "Y");
    op_args::require_dtype(x, {DType::F32}, where_, "X");
    op_args::require_dtype(y, {DType::F32, DType::I32, DType::I64}, where_, "Y");
    if (outputs.size() != 1) fail("ERR_MODEL_FORMAT", where_ + ": expected one output");
    outputs[0].dtype = DType::F32;
    outputs[0].shape = broadcast::broadcast_shapes(x.shape, y.shape, where_);
  }

  void run(const std::vector<const Tensor*>& inputs, std::vector<Tensor*>& outputs, RunContext& ctx) override {
    const Tensor& x = *inputs[0];
    const Tensor& y = *inputs[1];
    Tensor& out = *outputs[0];
    if (out.size() == 0) return;
    std::vector<float> converted;
    const float* py = y.ptr<float>();
    if (y.dtype != DType::F32) {
      converted.resize(static_cast<size_t>(y.size()));
      for (int64_t i = 0; i < y.size(); ++i)
        converted[i] = static_cast<float>(y.dtype == DType::I64 ? y.ptr<int64_t>()[i] : y.ptr<int32_t>()[i]);
      py = converted.data();
    }
    const broadcast::BinaryPlan plan = broadcast::plan_binary(x.shape, y.shape, out.shape);
    broadcast::run_binary(ctx, plan, x.ptr<float>(), py, out.ptr<float>(), [](float a, float b) {
      // Squares (LayerNorm's variance) and cubes (GELU's tanh form, x + 0.044715 x^3) are the
      // common cases: the square rounded once, as powf; the cube from the exact square in
      // double, rounded twice (to double, to float; powf's own error is below 1 ulp as well).
      if (b == 2.0f) return a * a;
      if (b == 3.0f) return static_cast<float>(static_cast<double>(a) * a * a);
      return std::pow(a, b);
    });
  }

 private:
  std::string where_;
};

// Mod(A, B), broadcast: fmod=0 (integers only) takes the sign of the divisor, as Python's %;
// fmod=1 takes the dividend's, as C's fmod and %.
class ModOp : public Op {
 public:
  explicit ModOp(const NodeDesc& node) : where_(node.where()), fmod_(node.get_int("fmod", 0) != 0) {}

  void infer(const std::vector<const Tensor*>& inputs, std::vector<Tensor>& outputs) override {
    const Tensor& a = op_args::required(inputs, 0, where_, "A");
    const Tensor& b = op_args::required(inputs, 1, where_, "B");
    op_args::require_dtype(a, {DType::F32, DType::I32, DType::I64, DType::I8, DType::U8}, where_, "A");
    op_args::require_same_dtype(a, b, where_, "A", "B");
    if (a.dtype == DType::F32 && !fmod_) fail("ERR_MODEL_FORMAT", where_ + ": float Mod needs fmod=1");
    if (outputs.size() != 1) fail("ERR_MODEL_FORMAT", where_ + ": expected one output");
    outputs[0].dtype = a.dtype;
    outputs[0].shape = broadcast::broadcast_shapes(a.shape, b.shape, where_);
  }

  void run(const std::vector<const Tensor*>& inputs, std::vector<Tensor*>& outputs, RunContext& ctx) override {
    const Tensor& a = *inputs[0];
    const Tensor& b = *inputs[1];
    Tensor& out = *outputs[0];
    if (out.size() == 0) return;
    const broadcast::BinaryPlan plan = broadcast::plan_binary(a.shape, b.shape, out.shape);
    switch (a.dtype) {
      case DType::F32:
        return broadcast::run_binary(ctx, plan, a.ptr<float>(), b.ptr<float>(), out.ptr<float>(), [](float x, float y) { return std::fmod(x, y); });
      case DType::I32: return integer<int32_t>(ctx, plan, a, b, out);
      case DType::I64: return integer<int64_t>(ctx, plan, a, b, out);
      case DType::I8: return integer<int8_t>(ctx, plan, a, b, out);
      case DType::U8: return integer<uint8_t>(ctx, plan, a, b, out);
      default: fail("ERR_DTYPE", where_ + ": unsupported dtype " + dtype_name(a.dtype));
    }
  }

 private:
  template <typename T>
  void integer(const RunContext& ctx, const broadcast::BinaryPlan& plan, const Tensor& a, const Tensor& b, Tensor& out) const {
    const T* pb = b.ptr<T>();
    for (int64_t i = 0, n = b.size(); i < n; ++i)
      if (pb[i] == 0) fail("ERR_INVALID_ARGUMENT", where_ + ": integer modulo by zero (B[" + std::to_string(i) + "] is 0)");
    const bool c_style = fmod_;
    broadcast::run_binary(ctx, plan, a.ptr<T>(), pb, out.ptr<T>(), [c_style](T x, T y) {
      if (std::is_signed<T>::value && y == static_cast<T>(-1)) return T(0);  // INT_MIN % -1 traps on x86
      T r = static_cast<T>(x % y);
      if (!c_style && r != 0 && ((r < 0) != (y < 0))) r = static_cast<T>(r + y);
      return r;
    });
  }

  std::string where_;
  bool fmod_;
};

template <UnaryKind K>
std::unique_ptr<Op> make_unary(const BuildContext& bc) { return std::make_unique<UnaryMathOp>(bc.node, K); }
std::unique_ptr<Op> make_is_nan(const BuildContext& bc) { return std::make_unique<FloatClassOp>(bc.node, true); }
std::unique_ptr<Op> make_is_inf(const BuildContext& bc) { return std::make_unique<FloatClassOp>(bc.node, false); }
std::unique_ptr<Op> make_shrink(const BuildContext& bc) { return std::make_unique<ShrinkOp>(bc.node); }
std::unique_ptr<Op> make_pow(const BuildContext& bc) { return std::make_unique<PowOp>(bc.node); }
std::unique_ptr<Op> make_mod(const BuildContext& bc) { return std::make_unique<ModOp>(bc.node); }

}  // namespace

TERNION_REGISTER_OP(Sqrt, make_unary<UnaryKind::Sqrt>);
TERNION_REGISTER_OP(Exp, make_unary<UnaryKind::Exp>);
TERNION_REGISTER_OP(Log, make_unary<UnaryKind::Log>);
TERNION_REGISTER_OP(Reciprocal, make_unary<UnaryKind::Reciprocal>);
TERNION_REGISTER_OP(Neg, make_unary<UnaryKind::Neg>);
TERNION_REGISTER_OP(Abs, make_unary<UnaryKind::Abs>);
TERNION_REGISTER_OP(Sign, make_unary<UnaryKind::Sign>);
TERNION_REGISTER_OP(Floor, make_unary<UnaryKind::Floor>);
TERNION_REGISTER_OP(Ceil, make_unary<UnaryKind::Ceil>);
TERNION_REGISTER_OP(Round, make_unary<UnaryKind::Round>);
TERNION_REGISTER_OP(Sin, make_unary<UnaryKind::Sin>);
TERNION_REGISTER_OP(Cos, make_unary<UnaryKind::Cos>);
TERNION_REGISTER_OP(Tan, make_unary<UnaryKind::Tan>);
TERNION_REGISTER_OP(Asin, make_unary<UnaryKind::Asin>);
TERNION_REGISTER_OP(Acos, make_unary<UnaryKind::Acos>);
TERNION_REGISTER_OP(Atan, make_unary<UnaryKind::Atan>);
TERNION_REGISTER_OP(Sinh, make_unary<UnaryKind::Sinh>);
TERNION_REGISTER_OP(Cosh, make_unary<UnaryKind::Cosh>);
TERNION_REGISTER_OP(Asinh, make_unary<UnaryKind::Asinh>);
TERNION_REGISTER_OP(Acosh, make_unary<UnaryKind::Acosh>);
TERNION_REGISTER_OP(Atanh, make_unary<UnaryKind::Atanh>);
TERNION_REGISTER_OP(IsNaN, make_is_nan);
TERNION_REGISTER_OP(IsInf, make_is_inf);
TERNION_REGISTER_OP(Shrink, make_shrink);
TERNION_REGISTER_OP(Pow, make_pow);
TERNION_REGISTER_OP(Mod, make_mod);

}  // namespace exec
}  // namespace ternion
