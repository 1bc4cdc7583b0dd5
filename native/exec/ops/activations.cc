// Elementwise activations: Relu (float and signed integers), LeakyRelu, Clip (attribute form
// before opset 11, optional min/max inputs from 11, every numeric dtype from 12), Sigmoid, Tanh,
// HardSigmoid, HardSwish, Gelu (opset 20; approximate "none" or "tanh"), Erf, Elu, Selu,
// Celu, Softplus, Softsign, ThresholdedRelu, Mish, and PRelu (a slope tensor broadcast to X);
// ternion's TernionSilu (x * sigmoid(x), fused by lib/ir/passes/fuse-silu.ts) and TernionGeluErf
// (x * (erf(x / c) + 1) * 0.5 as exporters write GELU, lib/ir/passes/fuse-gelu.ts).
//
// Each float activation is a loop over a contiguous chunk, written so -O3 vectorizes the ones
// without transcendental calls; large tensors are split over the run's threads.
#include <cmath>
#include <cstring>
#include <limits>

#include "exec/graph.h"
#include "exec/ops/broadcast.h"
#include "exec/ops/conv-common.h"
#include "exec/ops/op-args.h"
#include "exec/ops/vector-math.h"

namespace ternion {
namespace exec {
namespace {

// Smallest chunk worth a thread: cheap loops are memory-bound, transcendental ones are not.
constexpr int64_t kCheapChunk = 1 << 15;
constexpr int64_t kCostlyChunk = 1 << 12;

// A float32 -> float32 map of one input; Kernel(x, y, n) computes one contiguous chunk.
template <typename Kernel>
class FloatMapOp : public Op {
 public:
  FloatMapOp(const NodeDesc& node, Kernel kernel, int64_t min_chunk)
      : where_(node.where()), kernel_(kernel), min_chunk_(min_chunk) {}

  void infer(const std::vector<const Tensor*>& inputs, std::vector<Tensor>& outputs) override {
    const Tensor& x = op_args::required(inputs, 0, where_, "X");
    op_args::require_dtype(x, {DType::F32}, where_, "X");
    if (outputs.size() != 1) fail("ERR_MODEL_FORMAT", where_ + ": expected one output");
    outputs[0].dtype = DType::F32;
    outputs[0].shape = x.shape;
  }

  void run(const std::vector<const Tensor*>& inputs, std::vector<Tensor*>& outputs, RunContext& ctx) override {
    const float* x = inputs[0]->ptr<float>();
    float* y = outputs[0]->ptr<float>();
    broadcast::parallel_range(ctx, outputs[0]->size(), min_chunk_,
                              [&](int64_t b, int64_t e) { kernel_(x + b, y + b, e - b); });
  }

 private:
  std::string where_;
  Kernel kernel_;
  int64_t min_chunk_;
};

template <typename Kernel>
std::unique_ptr<Op> make_map(const NodeDesc& node, Kernel kernel, int64_t min_chunk) {
  return std::make_unique<FloatMapOp<Kernel>>(node, kernel, min_chunk);
}

// ---------------------------------------------------------------- float activations
std::unique_ptr<Op> make_leaky_relu(const BuildContext& bc) {
  const float alpha = bc.node.get_float("alpha", 0.01f);
  return make_map(bc.node, [alpha](const float* x, float* y, int64_t n) {
    // max/min instead of a select around alpha * x: GCC if-converts (and so vectorizes) only
    // the former under -ftrapping-math.
    for (int64_t i = 0; i < n; ++i) y[i] = std::max(x[i], 0.0f) + alpha * std::min(x[i], 0.0f);
  }, kCheapChunk);
}

// 1 / (1 + e^-x) loses no precision on either side (sigmoid_of, vector-math.h). One loop: one
// pass over memory (the clamp in a loop of its own, which baseline GCC needed to vectorize, cost
// a second one; the clones vectorize it fused).
struct SigmoidF {
  template <typename V>
  TERNION_LANES V lanes(V v) const { return sigmoid_lanes(v); }
  TERNION_LANES float one(float v) const { return sigmoid_of(v); }
};
TERNION_MAP_SPAN(sigmoid_span, SigmoidF)

std::unique_ptr<Op> make_sigmoid(const BuildContext& bc) {
  return make_map(bc.node, [](const float* x, float* y, int64_t n) { sigmoid_span(x, y, n); }, kCheapChunk);
}

// TernionSilu (lib/ir/passes/fuse-silu.ts): x * sigmoid(x), the Sigmoid's arithmetic then the
// product, bit for bit Sigmoid followed by Mul. (y is never x: outputs get their own buffer.)
struct SiluF {
  template <typename V>
  TERNION_LANES V lanes(V v) const { return v * sigmoid_lanes(v); }
  TERNION_LANES float one(float v) const { return v * sigmoid_of(v); }
};
TERNION_MAP_SPAN(silu_span, SiluF)

void silu_span_in_place(float* p, int64_t n) { silu_span(p, p, n); }

std::unique_ptr<Op> make_silu(const BuildContext& bc) {
  return make_map(bc.node, [](const float* x, float* y, int64_t n) { silu_span(x, y, n); }, kCheapChunk);
}

// tanh_approx's polynomial (tools/fit-tanh.py), shared by the scalar and the lane form.
constexpr float kTanhPoly[] = {2.146868501e-03f, -8.181520738e-03f, 2.170220576e-02f, -5.394696072e-02f,
                               1.333320588e-01f, -3.333333135e-01f, 1.000000000e+00f};

// tanh within 1 ulp of the rounded value (tools/fit-tanh.py fits and checks it), branch-free so
// its loops vectorize (libm's tanhf, one call per value: the tanh form of GELU, as GPT-2-style
// models are exported, runs one per activation):
//   |x| <= 0.625:        x P(x^2)
//   0.625 < |x| <= 9.1:  1 - 2 / (1 + e^(2|x|))    (tanh > 0.55 there: no cancellation)
//   beyond:              1 (tanh(9.1) rounds to 1), with x's sign; NaN stays NaN.
inline float tanh_approx(float x) {
  const float xc = std::min(std::fabs(x), 9.1f);  // NaN stays NaN
  const float x2 = xc * xc;
  const float small = xc * horner(x2, kTanhPoly);
  const float large = 1.0f - 2.0f / (1.0f + exp_in_range(2.0f * xc));
  return select_by_magnitude(xc, 0x3f200000, small, large, x);  // 0x3f200000: 0.625
}

template <typename V>
TERNION_LANES V tanh_lanes(V x) {
  typedef Lanes<V> L;
  const V xc = min_lanes(abs_lanes(x), L::splat(9.1f));
  const V x2 = xc * xc;
  const V small = xc * L::horner(x2, kTanhPoly);
  const V large = 1.0f - 2.0f / (1.0f + L::exp_in_range(2.0f * xc));
  return select_by_magnitude_lanes(xc, 0x3f200000, small, large, x);
}

struct TanhF {
  template <typename V>
  TERNION_LANES V lanes(V v) const { return tanh_lanes(v); }
  TERNION_LANES float one(float v) const { return tanh_approx(v); }
};
TERNION_MAP_SPAN(tanh_span, TanhF)

std::unique_ptr<Op> make_tanh(const BuildContext& bc) {
  return make_map(bc.node, [](const float* x, float* y, int64_t n) { tanh_span(x, y, n); }, kCheapChunk);
}

TERNION_WIDE_CLONES void hard_sigmoid_span(const float* x, float* y, int64_t n, float alpha, float beta) {
  for (int64_t i = 0; i < n; ++i) y[i] = std::min(1.0f, std::max(0.0f, alpha * x[i] + beta));
}

std::unique_ptr<Op> make_hard_sigmoid(const BuildContext& bc) {
  const float alpha = bc.node.get_float("alpha", 0.2f), beta = bc.node.get_float("beta", 0.5f);
  return make_map(bc.node, [alpha, beta](const float* x, float* y, int64_t n) { hard_sigmoid_span(x, y, n, alpha, beta); }, kCheapChunk);
}

// HardSigmoid(alpha = 1/6, beta = 0.5) times x: also what lib/ir/passes/fuse-hard-swish.ts makes
// of Mul(x, HardSigmoid(x)), so the constants and the order are the HardSigmoid's.
// Two loops: GCC vectorizes the clamp alone but not fused with the product.
TERNION_WIDE_CLONES void hard_swish_span(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = std::min(1.0f, std::max(0.0f, (1.0f / 6.0f) * x[i] + 0.5f));
  for (int64_t i = 0; i < n; ++i) y[i] *= x[i];
}

// In place (a conv's activation): the clamp into a stack block, then the product.
TERNION_WIDE_CLONES void hard_swish_span_in_place(float* p, int64_t n) {
  float gate[256];
  for (int64_t i0 = 0; i0 < n; i0 += 256) {
    const int64_t m = std::min<int64_t>(256, n - i0);
    float* q = p + i0;
    for (int64_t i = 0; i < m; ++i) gate[i] = std::min(1.0f, std::max(0.0f, (1.0f / 6.0f) * q[i] + 0.5f));
    for (int64_t i = 0; i < m; ++i) q[i] = gate[i] * q[i];
  }
}

std::unique_ptr<Op> make_hard_swish(const BuildContext& bc) {
  return make_map(bc.node, [](const float* x, float* y, int64_t n) { hard_swish_span(x, y, n); }, kCheapChunk);
}

// erf_approx's polynomials (tools/fit-erf.py), shared by the scalar and the lane form: |x| <= 1,
// and Q of |x| - 2.5 above.
constexpr float kErfSmall[] = {7.933350571e-05f, -8.034805069e-04f, 5.191213917e-03f, -2.685539797e-02f,
                               1.128362566e-01f, -3.761262894e-01f, 1.128379226e+00f};
constexpr float kErfLarge[] = {-3.835866664e-07f, 1.658872520e-06f, -4.009317308e-06f, 1.442562552e-05f,
                               -5.894272908e-05f, 2.128323104e-04f, -7.337129791e-04f, 2.466092585e-03f,
                               -8.001474664e-03f, 2.493817359e-02f, -7.434736192e-02f, 2.108063549e-01f};

// erf within 2 ulps (tools/fit-erf.py fits and checks it), branch-free so its loops vectorize
// (libm's erff, one call per value, was a fifth of ConvNeXt-T's time):
//   |x| <= 1:      x P(x^2)
//   1 < |x| <= 4:  1 - e^(-x^2) Q(|x| - 2.5)
//   |x| > 4:       1 (erfc(4) is below half an ulp of 1), with x's sign; NaN stays NaN.
// Both forms are computed and one kept by a bit mask (select_by_magnitude).
inline float erf_approx(float x) {
  const float xc = std::min(std::fabs(x), 4.0f);  // NaN stays NaN
  const float x2 = xc * xc;
  const float small = xc * horner(x2, kErfSmall);
  const float q = horner(xc - 2.5f, kErfLarge);
  const float large = fma1(-exp_in_range(-x2), q, 1.0f);
  return select_by_magnitude(xc, 0x3f800000, small, large, x);  // 0x3f800000: 1
}

template <typename V>
TERNION_LANES V erf_lanes(V x) {
  typedef Lanes<V> L;
  const V xc = min_lanes(abs_lanes(x), L::splat(4.0f));
  const V x2 = xc * xc;
  const V small = xc * L::horner(x2, kErfSmall);
  const V q = L::horner(xc - 2.5f, kErfLarge);
  const V large = L::fma(-L::exp_in_range(-x2), q, L::splat(1.0f));
  return select_by_magnitude_lanes(xc, 0x3f800000, small, large, x);
}

struct ErfF {
  template <typename V>
  TERNION_LANES V lanes(V v) const { return erf_lanes(v); }
  TERNION_LANES float one(float v) const { return erf_approx(v); }
};
TERNION_MAP_SPAN(erf_span, ErfF)

struct GeluF {
  template <typename V>
  TERNION_LANES V lanes(V v) const { return 0.5f * v * (1.0f + erf_lanes(v * 0.7071067811865476f)); }
  TERNION_LANES float one(float v) const { return 0.5f * v * (1.0f + erf_approx(v * 0.7071067811865476f)); }
};
TERNION_MAP_SPAN(gelu_span, GeluF)

// TernionGeluErf (lib/ir/passes/fuse-gelu.ts): Div, Erf, Add, Mul by x, Mul by the scale, in
// that order, each rounded to float as the ops are.
struct GeluErfChainF {
  float divisor, addend, scale;
  template <typename V>
  TERNION_LANES V lanes(V v) const { return (v * (erf_lanes(v / divisor) + addend)) * scale; }
  TERNION_LANES float one(float v) const { return (v * (erf_approx(v / divisor) + addend)) * scale; }
};
template <typename V>
TERNION_LANES void gelu_erf_chain_span_lanes(const float* x, float* y, int64_t n, float divisor, float addend, float scale) {
  map_lanes<V>(x, y, n, GeluErfChainF{divisor, addend, scale});
}
TERNION_LANE_WIDTHS(void, gelu_erf_chain_span, (const float* x, float* y, int64_t n, float divisor, float addend, float scale),
                    (x, y, n, divisor, addend, scale))

std::unique_ptr<Op> make_gelu_erf_chain(const BuildContext& bc) {
  const float divisor = bc.node.get_float("divisor", 1.4142135381698608f), addend = bc.node.get_float("addend", 1.0f),
              scale = bc.node.get_float("scale", 0.5f);
  return make_map(bc.node, [divisor, addend, scale](const float* x, float* y, int64_t n) {
    gelu_erf_chain_span(x, y, n, divisor, addend, scale);
  }, kCheapChunk);
}

std::unique_ptr<Op> make_erf(const BuildContext& bc) {
  return make_map(bc.node, [](const float* x, float* y, int64_t n) { erf_span(x, y, n); }, kCheapChunk);
}

std::unique_ptr<Op> make_elu(const BuildContext& bc) {
  const float alpha = bc.node.get_float("alpha", 1.0f);
  return make_map(bc.node, [alpha](const float* x, float* y, int64_t n) {
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] >= 0 ? x[i] : alpha * std::expm1(x[i]);
  }, kCostlyChunk);
}

std::unique_ptr<Op> make_selu(const BuildContext& bc) {
  const float alpha = bc.node.get_float("alpha", 1.67326319217681884765625f), gamma = bc.node.get_float("gamma", 1.05070102214813232421875f);
  return make_map(bc.node, [alpha, gamma](const float* x, float* y, int64_t n) {
    for (int64_t i = 0; i < n; ++i) y[i] = gamma * (x[i] > 0 ? x[i] : alpha * std::expm1(x[i]));
  }, kCostlyChunk);
}

std::unique_ptr<Op> make_celu(const BuildContext& bc) {
  const float alpha = bc.node.get_float("alpha", 1.0f);
  return make_map(bc.node, [alpha](const float* x, float* y, int64_t n) {
    for (int64_t i = 0; i < n; ++i) y[i] = std::max(0.0f, x[i]) + std::min(0.0f, alpha * std::expm1(x[i] / alpha));
  }, kCostlyChunk);
}

// log(1 + e^x) without overflow: x + log1p(e^-x) for x > 0.
inline float softplus(float v) { return v > 0 ? v + std::log1p(std::exp(-v)) : std::log1p(std::exp(v)); }

std::unique_ptr<Op> make_softplus(const BuildContext& bc) {
  return make_map(bc.node, [](const float* x, float* y, int64_t n) {
    for (int64_t i = 0; i < n; ++i) y[i] = softplus(x[i]);
  }, kCostlyChunk);
}

std::unique_ptr<Op> make_softsign(const BuildContext& bc) {
  return make_map(bc.node, [](const float* x, float* y, int64_t n) {
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] / (1.0f + std::fabs(x[i]));
  }, kCheapChunk);
}

std::unique_ptr<Op> make_thresholded_relu(const BuildContext& bc) {
  const float alpha = bc.node.get_float("alpha", 1.0f);
  return make_map(bc.node, [alpha](const float* x, float* y, int64_t n) {
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] > alpha ? x[i] : 0.0f;
  }, kCheapChunk);
}

std::unique_ptr<Op> make_mish(const BuildContext& bc) {
  return make_map(bc.node, [](const float* x, float* y, int64_t n) {
    for (int64_t i = 0; i < n; ++i) y[i] = x[i] * std::tanh(softplus(x[i]));
  }, kCostlyChunk);
}

// PRelu(X, slope): slope broadcast to X (unidirectionally: the output has X's shape).
class PReluOp : public Op {
 public:
  explicit PReluOp(const NodeDesc& node) : where_(node.where()) {}
  void infer(const std::vector<const Tensor*>& inputs, std::vector<Tensor>& outputs) override {
    const Tensor& x = op_args::required(inputs, 0, where_, "X");
    const Tensor& slope = op_args::required(inputs, 1, where_, "slope");
    op_args::require_dtype(x, {DType::F32}, where_, "X");
    op_args::require_dtype(slope, {DType::F32}, where_, "slope");
    if (broadcast::broadcast_shapes(x.shape, slope.shape, where_) != x.shape)
      fail("ERR_SHAPE_MISMATCH", where_ + ": slope " + shape_str(slope.shape) + " does not broadcast to X " + shape_str(x.shape));
    if (outputs.size() != 1) fail("ERR_MODEL_FORMAT", where_ + ": expected one output");
    outputs[0].dtype = DType::F32;
    outputs[0].shape = x.shape;
  }
  void run(const std::vector<const Tensor*>& inputs, std::vector<Tensor*>& outputs, RunContext& ctx) override {
    Tensor& y = *outputs[0];
    if (y.size() == 0) return;
    const broadcast::BinaryPlan plan = broadcast::plan_binary(inputs[0]->shape, inputs[1]->shape, y.shape);
    broadcast::run_binary(ctx, plan, inputs[0]->ptr<float>(), inputs[1]->ptr<float>(), y.ptr<float>(),
                          [](float v, float a) { return v < 0 ? a * v : v; });
  }

 private:
  std::string where_;
};

std::unique_ptr<Op> make_prelu(const BuildContext& bc) { return std::make_unique<PReluOp>(bc.node); }

std::unique_ptr<Op> make_gelu(const BuildContext& bc) {
  const std::string approximate = bc.node.get_string("approximate", "none");
  if (approximate == "tanh") {
    // 0.5 x (1 + tanh(u)) == x * sigmoid(2u): the same function without the cancellation of
    // 1 + tanh(u) for negative u.
    return make_map(bc.node, [](const float* x, float* y, int64_t n) {
      const float k = 2 * 0.7978845608028654f;  // 2 sqrt(2 / pi)
      for (int64_t i = 0; i < n; ++i) {
        const float u2 = k * (x[i] + 0.044715f * x[i] * x[i] * x[i]);
        const float e = std::exp(-std::fabs(u2));
        const float r = 1.0f / (1.0f + e);
        y[i] = x[i] * (u2 >= 0 ? r : e * r);
      }
    }, kCostlyChunk);
  }
  if (approximate != "none")
    fail("ERR_UNSUPPORTED_OP", bc.node.where() + ": approximate='" + approximate + "' (expected 'none' or 'tanh')");
  return make_map(bc.node, [](const float* x, float* y, int64_t n) {
    gelu_span(x, y, n);
  }, kCostlyChunk);
}

// ---------------------------------------------------------------- ops over several dtypes
// Relu (signed integers from opset 14) and Clip share this: one input plus optional scalar
// bounds, output of the input's dtype and shape.
class RangeMapOp : public Op {
 public:
  enum Kind { Relu, Clip };
  RangeMapOp(const NodeDesc& node, Kind kind) : where_(node.where()), kind_(kind), opset_(node.opset) {
    if (kind == Clip && uses_clip_attributes()) {
      attr_min_ = node.get_float("min", -std::numeric_limits<float>::infinity());
      attr_max_ = node.get_float("max", std::numeric_limits<float>::infinity());
    }
  }

  void infer(const std::vector<const Tensor*>& inputs, std::vector<Tensor>& outputs) override {
    const Tensor& x = op_args::required(inputs, 0, where_, "X");
    if (kind_ == Relu)
      op_args::require_dtype(x, {DType::F32, DType::I32, DType::I64, DType::I8}, where_, "X");
    else
      op_args::require_dtype(x, {DType::F32, DType::I32, DType::I64, DType::U8, DType::I8}, where_, "X");
    if (kind_ == Clip && uses_clip_attributes() && x.dtype != DType::F32)
      op_args::require_dtype(x, {DType::F32}, where_, "X");
    for (size_t i = 1; i < 3 && i < inputs.size(); ++i) {
      if (!inputs[i] || kind_ != Clip || uses_clip_attributes()) continue;
      if (inputs[i]->dtype != x.dtype)
        fail("ERR_DTYPE", where_ + ": bound " + std::to_string(i) + " is " + dtype_name(inputs[i]->dtype) + " but X is " + dtype_name(x.dtype));
      op_args::read_scalar(*inputs[i], where_, i == 1 ? "min" : "max");
    }
    if (outputs.size() != 1) fail("ERR_MODEL_FORMAT", where_ + ": expected one output");
    outputs[0].dtype = x.dtype;
    outputs[0].shape = x.shape;
  }

  void run(const std::vector<const Tensor*>& inputs, std::vector<Tensor*>& outputs, RunContext& ctx) override {
    switch (inputs[0]->dtype) {
      case DType::F32: return compute<float>(inputs, *outputs[0], ctx);
      case DType::I32: return compute<int32_t>(inputs, *outputs[0], ctx);
      case DType::I64: return compute<int64_t>(inputs, *outputs[0], ctx);
      case DType::U8: return compute<uint8_t>(inputs, *outputs[0], ctx);
      case DType::I8: return compute<int8_t>(inputs, *outputs[0], ctx);
      default: fail("ERR_DTYPE", where_ + ": unsupported dtype " + dtype_name(inputs[0]->dtype));
    }
  }

 private:
  bool uses_clip_attributes() const { return opset_ > 0 && opset_ < 11; }

  template <typename T>
  void compute(const std::vector<const Tensor*>& inputs, Tensor& out, const RunContext& ctx) const {
    T lo = std::numeric_limits<T>::lowest(), hi = std::numeric_limits<T>::max();
    if (std::is_floating_point<T>::value) lo = -std::numeric_limits<T>::infinity(), hi = std::numeric_limits<T>::infinity();
    if (kind_ == Relu) {
      lo = 0;
    } else if (uses_clip_attributes()) {
      lo = static_cast<T>(attr_min_), hi = static_cast<T>(attr_max_);
    } else {
      if (const Tensor* t = op_args::optional(inputs, 1)) lo = t->ptr<T>()[0];
      if (const Tensor* t = op_args::optional(inputs, 2)) hi = t->ptr<T>()[0];
    }
    const T* x = inputs[0]->ptr<T>();
    T* y = out.ptr<T>();
    // max first, then min: with lo > hi every value becomes hi, as the spec says; NaN stays NaN.
    broadcast::parallel_range(ctx, out.size(), kCheapChunk, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        const T v = x[i] < lo ? lo : x[i];
        y[i] = hi < v ? hi : v;
      }
    });
  }

  std::string where_;
  Kind kind_;
  int opset_;
  float attr_min_ = 0, attr_max_ = 0;
};

std::unique_ptr<Op> make_relu(const BuildContext& bc) { return std::make_unique<RangeMapOp>(bc.node, RangeMapOp::Relu); }
std::unique_ptr<Op> make_clip(const BuildContext& bc) { return std::make_unique<RangeMapOp>(bc.node, RangeMapOp::Clip); }

}  // namespace

void sigmoid_in_place(float* p, int64_t n) { sigmoid_span(p, p, n); }
void tanh_in_place(float* p, int64_t n) { tanh_span(p, p, n); }

namespace ops {
void silu_in_place(float* p, int64_t n) { silu_span_in_place(p, n); }
void hard_swish_in_place(float* p, int64_t n) { hard_swish_span_in_place(p, n); }
}  // namespace ops

TERNION_REGISTER_OP(Relu, make_relu);
TERNION_REGISTER_OP(LeakyRelu, make_leaky_relu);
TERNION_REGISTER_OP(Clip, make_clip);
TERNION_REGISTER_OP(Sigmoid, make_sigmoid);
TERNION_REGISTER_OP(TernionSilu, make_silu);
TERNION_REGISTER_OP(TernionGeluErf, make_gelu_erf_chain);
TERNION_REGISTER_OP(Tanh, make_tanh);
TERNION_REGISTER_OP(HardSigmoid, make_hard_sigmoid);
TERNION_REGISTER_OP(HardSwish, make_hard_swish);
TERNION_REGISTER_OP(Gelu, make_gelu);
TERNION_REGISTER_OP(Erf, make_erf);
TERNION_REGISTER_OP(Elu, make_elu);
TERNION_REGISTER_OP(Selu, make_selu);
TERNION_REGISTER_OP(Celu, make_celu);
TERNION_REGISTER_OP(Softplus, make_softplus);
TERNION_REGISTER_OP(Softsign, make_softsign);
TERNION_REGISTER_OP(ThresholdedRelu, make_thresholded_relu);
TERNION_REGISTER_OP(Mish, make_mish);
TERNION_REGISTER_OP(PRelu, make_prelu);

}  // namespace exec
}  // namespace ternion
