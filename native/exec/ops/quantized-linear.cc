// The ONNX integer ops: QLinearConv, ConvInteger, QLinearMatMul, MatMulInteger.
//
// All four compute acc = sum (x - x_zero_point) * (w - w_zero_point) exactly in int32 (inputs
// uint8 or int8, zero points per tensor, per output channel for weights, per row / column for
// MatMulInteger). ConvInteger / MatMulInteger store acc; the QLinear ops requantize it the way
// the ONNX reference does: (acc + bias) * (x_scale * w_scale / y_scale) rounded half to even,
// plus y_zero_point, saturated to the output type.
//
// Operands are widened to int16 once (x - zero point, w - zero point: both fit in [-255, 255])
// so the inner dot products are plain int16 x int16 -> int32 loops the compiler vectorizes.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "exec/graph.h"
#include "exec/ops/conv-common.h"
#include "exec/ops/im2col.h"

namespace ternion {
namespace exec {
namespace ops {
namespace {

bool is_8bit(DType t) { return t == DType::U8 || t == DType::I8; }

int32_t int_at(const Tensor& t, int64_t i) {
  return t.dtype == DType::U8 ? t.ptr<uint8_t>()[i] : t.ptr<int8_t>()[i];
}

// Entry i of a per-tensor (one element) or per-channel quantization parameter.
int32_t zero_point_at(const Tensor* t, int64_t i) {
  if (!t) return 0;
  return int_at(*t, t->size() == 1 ? 0 : i);
}
float scale_at(const Tensor* t, int64_t i) { return t->ptr<float>()[t->size() == 1 ? 0 : i]; }

// Checks a quantization parameter: its dtype, and that it holds 1 element or `per` elements
// (per <= 0: per-tensor only). Scalars and 1-D tensors are accepted.
void check_param(const NodeDesc& node, const Tensor* t, const char* what, bool is_scale, DType want_zp, int64_t per) {
  if (!t) return;
  if (is_scale) {
    require_dtype(node, t, what, DType::F32);
  } else if (t->dtype != want_zp) {
    fail("ERR_DTYPE", node.where() + ": " + what + " must be " + dtype_name(want_zp) + " like its tensor, got " + dtype_name(t->dtype));
  }
  const int64_t n = t->size();
  if (t->shape.size() > 1 || (n != 1 && (per <= 0 || n != per)))
    fail("ERR_SHAPE_MISMATCH", node.where() + ": " + what + " " + shape_str(t->shape) + " must be a scalar" +
                                   (per > 0 ? " or have " + std::to_string(per) + " elements" : std::string()));
}

// Requantizes one accumulator: the ONNX reference multiplies the integer result by the fp32
// product x_scale * w_scale / y_scale in double precision, then rounds half to even.
inline int32_t requantize(int32_t acc, float multiplier, int32_t zero_point, int32_t qmin, int32_t qmax) {
  const double v = std::nearbyint(static_cast<double>(acc) * static_cast<double>(multiplier)) + zero_point;
  return static_cast<int32_t>(std::min<double>(std::max<double>(v, qmin), qmax));
}

// dst[i] = src[i] - zero_point for a uint8 or int8 tensor region.
void widen(const Tensor& t, int64_t offset, int64_t n, int32_t zero_point, int16_t* dst) {
  if (t.dtype == DType::U8) {
    const uint8_t* s = t.ptr<uint8_t>() + offset;
    for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<int16_t>(s[i] - zero_point);
  } else {
    const int8_t* s = t.ptr<int8_t>() + offset;
    for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<int16_t>(s[i] - zero_point);
  }
}

inline int32_t dot(const int16_t* a, const int16_t* b, int64_t n) {
  int32_t acc = 0;
  for (int64_t i = 0; i < n; ++i) acc += static_cast<int32_t>(a[i]) * b[i];
  return acc;
}

// Where the output of a QLinear op goes: type, zero point and saturation range.
struct QuantOut {
  DType dtype = DType::U8;
  int32_t zero_point = 0, qmin = 0, qmax = 255;
  void store(void* y, int64_t i, int32_t q) const {
    if (dtype == DType::U8) static_cast<uint8_t*>(y)[i] = static_cast<uint8_t>(q);
    else static_cast<int8_t*>(y)[i] = static_cast<int8_t>(q);
  }
};

QuantOut quant_out(const Tensor* y_zero_point) {
  QuantOut q;
  if (y_zero_point && y_zero_point->dtype == DType::I8) q.dtype = DType::I8, q.qmin = -128, q.qmax = 127;
  q.zero_point = zero_point_at(y_zero_point, 0);
  return q;
}

// ---------------------------------------------------------------- QLinearConv / ConvInteger

class IntegerConvOp : public Op {
 public:
  IntegerConvOp(const BuildContext& bc, bool qlinear) : node_(bc.node), qlinear_(qlinear) {
    attrs_ = read_window_attrs(node_);
    group_ = node_.get_int("group", 1);
    if (group_ < 1) fail("ERR_SHAPE_MISMATCH", node_.where() + ": group " + std::to_string(group_) + " must be positive");
    if (node_.outputs.size() != 1) fail("ERR_UNSUPPORTED_OP", node_.where() + " must have exactly one output");
    w_index_ = qlinear ? 3 : 1;
    node_.release_attrs();  // every attribute read above
  }

  void infer(const std::vector<const Tensor*>& in, std::vector<Tensor>& out) override {
    const Tensor* x = require_input(node_, in, 0, "x");
    const Tensor* w = require_input(node_, in, w_index_, "w");
    if (!is_8bit(x->dtype) || !is_8bit(w->dtype))
      fail("ERR_DTYPE", node_.where() + ": x and w must be uint8 or int8, got " + dtype_name(x->dtype) + " and " + dtype_name(w->dtype));
    const Window3 g = window(*x, *w);
    const int64_t M = w->shape[0];
    if (qlinear_) {
      check_param(node_, require_input(node_, in, 1, "x_scale"), "x_scale", true, x->dtype, 0);
      check_param(node_, require_input(node_, in, 2, "x_zero_point"), "x_zero_point", false, x->dtype, 0);
      check_param(node_, require_input(node_, in, 4, "w_scale"), "w_scale", true, w->dtype, M);
      check_param(node_, require_input(node_, in, 5, "w_zero_point"), "w_zero_point", false, w->dtype, M);
      check_param(node_, require_input(node_, in, 6, "y_scale"), "y_scale", true, x->dtype, 0);
      const Tensor* yzp = optional_input(in, 7);
      if (yzp && !is_8bit(yzp->dtype)) fail("ERR_DTYPE", node_.where() + ": y_zero_point must be uint8 or int8");
      if (yzp) check_param(node_, yzp, "y_zero_point", false, yzp->dtype, 0);
      if (const Tensor* b = optional_input(in, 8)) {
        require_dtype(node_, b, "bias B", DType::I32);
        if (b->shape.size() != 1 || b->shape[0] != M)
          fail("ERR_SHAPE_MISMATCH", node_.where() + ": bias " + shape_str(b->shape) + " must be [" + std::to_string(M) + "]");
      }
    } else {
      check_param(node_, optional_input(in, 2), "x_zero_point", false, x->dtype, 0);
      check_param(node_, optional_input(in, 3), "w_zero_point", false, w->dtype, M);
    }
    checked_int(w->shape[1] * g.k_size(), node_, "reduction length");
    Shape y{x->shape[0], M};
    for (int i = 3 - g.nd; i < 3; ++i) y.push_back(g.out[i]);
    shape_size(y);
    out.resize(1);
    out[0].dtype = qlinear_ ? quant_out(optional_input(in, 7)).dtype : DType::I32;
    out[0].shape = y;
  }

  void run(const std::vector<const Tensor*>& in, std::vector<Tensor*>& out, RunContext& ctx) override {
    const Tensor& x = *in[0];
    const Tensor& w = *in[w_index_];
    const Window3 g = window(x, w);
    const Tensor* x_zp = optional_input(in, 2);
    const Tensor* w_zp = optional_input(in, qlinear_ ? 5 : 3);
    const int64_t N = x.shape[0], C = x.shape[1], M = w.shape[0];
    const int64_t Cg = C / group_, Mg = M / group_, K = Cg * g.k_size();
    const int64_t in_plane = g.in_size(), P = g.out_size();
    Tensor& y = *out[0];
    if (y.size() == 0) return;
    const int32_t xz = zero_point_at(x_zp, 0);

    // Weights minus their zero points, [M][K].
    int16_t* wq = static_cast<int16_t*>(ctx.scratch(static_cast<size_t>(std::max<int64_t>(M * K, 1)) * sizeof(int16_t)));
    for (int64_t m = 0; m < M; ++m) widen(w, m * K, K, zero_point_at(w_zp, m), wq + m * K);

    // Requantization constants per output channel (QLinearConv only).
    std::vector<float> multiplier;
    const int32_t* bias = nullptr;
    QuantOut q;
    if (qlinear_) {
      const float xs = scale_at(in[1], 0), ys = scale_at(in[6], 0);
      multiplier.resize(static_cast<size_t>(M));
      for (int64_t m = 0; m < M; ++m) multiplier[m] = xs * scale_at(in[4], m) / ys;
      if (const Tensor* b = optional_input(in, 8)) bias = b->ptr<int32_t>();
      q = quant_out(optional_input(in, 7));
    }

    const int64_t rows = std::min<int64_t>(P, std::max<int64_t>(64, (int64_t(1) << 18) / std::max<int64_t>(K, 1)));
    int16_t* xq = static_cast<int16_t*>(ctx.scratch(static_cast<size_t>(std::max<int64_t>(Cg * in_plane, 1)) * sizeof(int16_t)));
    int16_t* col = static_cast<int16_t*>(ctx.scratch(static_cast<size_t>(std::max<int64_t>(rows * K, 1)) * sizeof(int16_t)));
    for (int64_t n = 0; n < N; ++n) {
      for (int64_t gi = 0; gi < group_; ++gi) {
        widen(x, (n * C + gi * Cg) * in_plane, Cg * in_plane, xz, xq);
        for (int64_t p0 = 0; p0 < P; p0 += rows) {
          const int64_t p1 = std::min(P, p0 + rows);
          parallel_ranges(ctx.gemm, p1 - p0, 16, [&](int64_t b0, int64_t b1) {
            im2col_rows<int16_t>(xq, Cg, g, p0 + b0, p0 + b1, 0, col + b0 * K, static_cast<size_t>(K));
            for (int64_t p = p0 + b0; p < p0 + b1; ++p) {
              const int16_t* a = col + (p - p0) * K;
              for (int64_t mg = 0; mg < Mg; ++mg) {
                const int64_t m = gi * Mg + mg;
                const int32_t acc = dot(a, wq + m * K, K);
                const int64_t at = (n * M + m) * P + p;
                if (qlinear_) {
                  q.store(y.data, at, requantize(acc + (bias ? bias[m] : 0), multiplier[m], q.zero_point, q.qmin, q.qmax));
                } else {
                  y.ptr<int32_t>()[at] = acc;
                }
              }
            }
          });
        }
      }
    }
  }

 private:
  Window3 window(const Tensor& x, const Tensor& w) const {
    const size_t rank = x.shape.size();
    if (rank < 3 || w.shape.size() != rank)
      fail("ERR_SHAPE_MISMATCH", node_.where() + ": input " + shape_str(x.shape) + " and weights " + shape_str(w.shape) +
                                     " must have the same rank >= 3");
    if (w.shape[1] * group_ != x.shape[1])
      fail("ERR_SHAPE_MISMATCH", node_.where() + ": input " + shape_str(x.shape) + " has " + std::to_string(x.shape[1]) +
                                     " channels but weights " + shape_str(w.shape) + " with group " + std::to_string(group_) + " expect " +
                                     std::to_string(w.shape[1] * group_));
    if (w.shape[0] % group_ != 0)
      fail("ERR_SHAPE_MISMATCH", node_.where() + ": output channels of weights " + shape_str(w.shape) + " are not divisible by group " +
                                     std::to_string(group_));
    const std::vector<int64_t> wk(w.shape.begin() + 2, w.shape.end());
    if (!attrs_.kernel.empty() && attrs_.kernel != wk)
      fail("ERR_SHAPE_MISMATCH", node_.where() + ": kernel_shape " + shape_str(attrs_.kernel) + " does not match weights " + shape_str(w.shape));
    return resolve_window(node_, attrs_, x.shape.data() + 2, static_cast<int>(rank - 2), wk);
  }

  NodeDesc node_;
  bool qlinear_;
  WindowAttrs attrs_;
  int64_t group_ = 1;
  size_t w_index_ = 1;
};

// ---------------------------------------------------------------- QLinearMatMul / MatMulInteger

// MatMulInteger with constant 2-D weights (onnxruntime's quantize_dynamic writes one per Linear
// layer, after a DynamicQuantizeLinear of its input) runs on the kernel table's int8 GEMM: B minus
// its zero points, transposed and packed once here (when every value fits int8), A's rows as they
// are (int8 A shifted to uint8), the raw int32 accumulators stored (OutType::I32): the same
// integers as the reference loop, which serves everything else.
//
// TernionMatMulIntegerScaled (lib/ir/passes/fuse-matmul-integer-scaled.ts) is such a layer's
// MatMulInteger(a, b, a_zero_point, b_zero_point) with the Cast to float and the Mul by
// Mul(a_scale, b_scale) after it: inputs 4 and 5 are a_scale (a scalar) and b_scale (a scalar or
// one per column), the output float32 y = (float)acc * (a_scale * b_scale[n]), the same
// roundings as the three ops (positive scales: the GEMM's float epilogue, fmaf(acc, s, 0), is
// then that product). Optional input 6, bias float32 [N]: y = fmaf((float)acc, s[n], bias[n]),
// the layer's bias Add in the same epilogue (one rounding where Mul and Add had two).
// The Scaled output of one accumulator: the product alone (the graph's Mul), or with the bias as
// the GEMM epilogue adds it.
inline float scaled_value(int32_t acc, const float* scale, const float* bias, int64_t n) {
  return bias ? std::fma(static_cast<float>(acc), scale[n], bias[n]) : static_cast<float>(acc) * scale[n];
}

class IntegerMatMulOp : public Op {
 public:
  enum class Mode { Integer, QLinear, Scaled };
  IntegerMatMulOp(const BuildContext& bc, Mode mode) : node_(bc.node), qlinear_(mode == Mode::QLinear), scaled_(mode == Mode::Scaled), table_(bc.table) {
    if (node_.outputs.size() != 1) fail("ERR_UNSUPPORTED_OP", node_.where() + " must have exactly one output");
    b_index_ = qlinear_ ? 3 : 1;
    if (!qlinear_) pack_constant_weights(bc);
    node_.release_attrs();  // every attribute read above
  }

  size_t weight_bytes() const override { return packed_bytes_; }
  // Packed B replaces B and its zero point (the session then frees them).
  bool keeps_copy_of(size_t input) const override { return packed_ && (input == 1 || input == 3); }

  void infer(const std::vector<const Tensor*>& in, std::vector<Tensor>& out) override {
    const Tensor* a = require_input(node_, in, 0, "A");
    const Tensor* b = require_input(node_, in, b_index_, "B");
    if (!is_8bit(a->dtype) || !is_8bit(b->dtype))
      fail("ERR_DTYPE", node_.where() + ": A and B must be uint8 or int8, got " + dtype_name(a->dtype) + " and " + dtype_name(b->dtype));
    const MatMulShape s = matmul_shape(node_, a->shape, b->shape);
    // Per-row parameters of A and per-column ones of B need A (B) to be a matrix (not 1-D).
    const int64_t rows = a->shape.size() > 1 ? s.M : 0, cols = b->shape.size() > 1 ? s.N : 0;
    if (qlinear_) {
      check_param(node_, require_input(node_, in, 1, "a_scale"), "a_scale", true, a->dtype, rows);
      check_param(node_, require_input(node_, in, 2, "a_zero_point"), "a_zero_point", false, a->dtype, rows);
      check_param(node_, require_input(node_, in, 4, "b_scale"), "b_scale", true, b->dtype, cols);
      check_param(node_, require_input(node_, in, 5, "b_zero_point"), "b_zero_point", false, b->dtype, cols);
      check_param(node_, require_input(node_, in, 6, "y_scale"), "y_scale", true, a->dtype, 0);
      const Tensor* yzp = optional_input(in, 7);
      if (yzp && !is_8bit(yzp->dtype)) fail("ERR_DTYPE", node_.where() + ": y_zero_point must be uint8 or int8");
      if (yzp) check_param(node_, yzp, "y_zero_point", false, yzp->dtype, 0);
    } else {
      check_param(node_, optional_input(in, 2), "a_zero_point", false, a->dtype, rows);
      check_param(node_, optional_input(in, 3), "b_zero_point", false, b->dtype, cols);
    }
    if (scaled_) {
      check_param(node_, require_input(node_, in, 4, "a_scale"), "a_scale", true, a->dtype, 0);
      check_param(node_, require_input(node_, in, 5, "b_scale"), "b_scale", true, b->dtype, cols);
      if (const Tensor* bias = optional_input(in, 6)) {
        require_dtype(node_, bias, "bias", DType::F32);
        if (bias->shape.size() != 1 || bias->shape[0] != s.N)
          fail("ERR_SHAPE_MISMATCH", node_.where() + ": bias " + shape_str(bias->shape) + " must be [" + std::to_string(s.N) + "]");
      }
    }
    checked_int(s.K, node_, "K");
    shape_size(s.out);
    out.resize(1);
    out[0].dtype = qlinear_ ? quant_out(optional_input(in, 7)).dtype : scaled_ ? DType::F32 : DType::I32;
    out[0].shape = s.out;
  }

  void run(const std::vector<const Tensor*>& in, std::vector<Tensor*>& out, RunContext& ctx) override {
    const Tensor& a = *in[0];
    const Tensor& b = *in[b_index_];
    const MatMulShape s = matmul_shape(node_, a.shape, b.shape);
    const int64_t M = s.M, K = s.K, N = s.N;
    Tensor& y = *out[0];
    if (y.size() == 0) return;
    const Tensor* a_zp = optional_input(in, 2);
    // Scaled: s[n] = a_scale * b_scale[n], as the graph's Mul computed it.
    float* scale = nullptr;
    const float* bias = scaled_ && optional_input(in, 6) ? in[6]->ptr<float>() : nullptr;
    bool positive = true;
    if (scaled_) {
      scale = static_cast<float*>(ctx.scratch(static_cast<size_t>(N) * sizeof(float)));
      for (int64_t n = 0; n < N; ++n) {
        scale[n] = scale_at(in[4], 0) * scale_at(in[5], n);
        positive = positive && scale[n] > 0.0f;
      }
    }
    if (packed_) {
      if (ctx.gemm.table != table_ || K != packed_k_ || N != packed_n_)
        fail("ERR_INTERNAL", node_.where() + ": the weights were packed for another kernel set or shape");
      const int64_t rows = y.size() / N;
      kernels::Requant rq;
      rq.out = kernels::OutType::I32;
      if (scaled_ && positive) {  // the float epilogue writes y itself
        rq.out = kernels::OutType::F32;
        rq.scale = scale;
        rq.bias = bias;
      }
      if (!a_zp || a_zp->size() == 1) {
        run_packed(a, 0, rows, zero_point_at(a_zp, 0), rq, y.data, ctx);
      } else {  // a zero point per row of A (row m of every batch): one GEMM row each
        for (int64_t m = 0; m < rows; ++m) run_packed(a, m, 1, zero_point_at(a_zp, m % M), rq, y.ptr<int32_t>() + m * N, ctx);
      }
      if (scaled_ && !positive) {  // the int32 sums in y's memory become floats in place
        int32_t* acc = y.ptr<int32_t>();
        float* f = y.ptr<float>();
        for (int64_t i = 0; i < rows * N; ++i) f[i] = scaled_value(acc[i], scale, bias, i % N);
      }
      return;
    }
    const Tensor* b_zp = optional_input(in, qlinear_ ? 5 : 3);
    const int64_t batches = shape_size(s.batch);
    const int64_t a_count = shape_size(s.a_batch), b_count = shape_size(s.b_batch);

    // A minus its zero points as [a_count][M][K]; B transposed minus its zero points as
    // [b_count][N][K].
    int16_t* aq = static_cast<int16_t*>(ctx.scratch(static_cast<size_t>(std::max<int64_t>(a_count * M * K, 1)) * sizeof(int16_t)));
    int16_t* bq = static_cast<int16_t*>(ctx.scratch(static_cast<size_t>(std::max<int64_t>(b_count * N * K, 1)) * sizeof(int16_t)));
    for (int64_t i = 0; i < a_count * M; ++i) widen(a, i * K, K, zero_point_at(a_zp, i % M), aq + i * K);
    for (int64_t i = 0; i < b_count; ++i)
      for (int64_t k = 0; k < K; ++k)
        for (int64_t n = 0; n < N; ++n) {
          const int64_t src = (i * K + k) * N + n;
          bq[(i * N + n) * K + k] = static_cast<int16_t>(int_at(b, src) - zero_point_at(b_zp, n));
        }

    std::vector<float> multiplier;  // [M][N] (QLinearMatMul)
    QuantOut q;
    if (qlinear_) {
      const float ys = scale_at(in[6], 0);
      multiplier.resize(static_cast<size_t>(M * N));
      for (int64_t m = 0; m < M; ++m)
        for (int64_t n = 0; n < N; ++n) multiplier[m * N + n] = scale_at(in[1], m) * scale_at(in[4], n) / ys;
      q = quant_out(optional_input(in, 7));
    }
    parallel_ranges(ctx.gemm, batches * M, 4, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const int64_t i = r / M, m = r % M;
        const int16_t* arow = aq + (broadcast_index(s.a_batch, s.batch, i) * M + m) * K;
        const int16_t* bmat = bq + broadcast_index(s.b_batch, s.batch, i) * N * K;
        for (int64_t n = 0; n < N; ++n) {
          const int32_t acc = dot(arow, bmat + n * K, K);
          if (qlinear_) q.store(y.data, r * N + n, requantize(acc, multiplier[m * N + n], q.zero_point, q.qmin, q.qmax));
          else if (scaled_) y.ptr<float>()[r * N + n] = scaled_value(acc, scale, bias, n);
          else y.ptr<int32_t>()[r * N + n] = acc;
        }
      }
    });
  }

 private:
  // B [K][N] constant int8 / uint8 with constant zero points: W[n][k] = B[k][n] - zp[n] packed for
  // the table's q8 GEMM, if every W fits int8 (always for int8 B with zero point 0, onnxruntime's
  // default; uint8 B when its values lie within 128 of their zero point).
  void pack_constant_weights(const BuildContext& bc) {
    const HostTensor* b = bc.constant(1);
    if (!b || b->shape.size() != 2 || !is_8bit(b->dtype)) return;
    const int64_t K = b->shape[0], N = b->shape[1];
    if (K < 1 || N < 1 || K > kernels::kMaxIntegerK || N > std::numeric_limits<int>::max()) return;
    const bool has_zp = node_.inputs.size() > 3 && node_.inputs[3] >= 0;
    const HostTensor* zp = has_zp ? bc.constant(3) : nullptr;
    if (has_zp && !zp) return;  // a zero point computed at run time
    if (zp && (zp->dtype != b->dtype || zp->shape.size() > 1 || (shape_size(zp->shape) != 1 && shape_size(zp->shape) != N))) return;
    auto value = [](const HostTensor& t, int64_t i) -> int32_t {
      return t.dtype == DType::U8 ? static_cast<const uint8_t*>(t.storage.get())[i] : static_cast<const int8_t*>(t.storage.get())[i];
    };
    std::vector<int8_t> w(static_cast<size_t>(N * K));
    for (int64_t k = 0; k < K; ++k)
      for (int64_t n = 0; n < N; ++n) {
        const int32_t v = value(*b, k * N + n) - (zp ? value(*zp, shape_size(zp->shape) == 1 ? 0 : n) : 0);
        if (v < -128 || v > 127) return;
        w[n * K + k] = static_cast<int8_t>(v);
      }
    const size_t bytes = table_->q8_packed_size(static_cast<int>(N), static_cast<int>(K));
    HostTensor block = make_host_tensor(DType::U8, {static_cast<int64_t>(bytes)});
    table_->q8_pack(w.data(), static_cast<int>(N), static_cast<int>(K), block.storage.get());
    packed_ = block.storage;
    packed_bytes_ = bytes;
    packed_k_ = K;
    packed_n_ = N;
  }

  // Rows [row0, row0 + rows) of A (all batches in a row: B is shared) against the packed B, into y
  // (int32 sums, or floats through rq's scale).
  void run_packed(const Tensor& a, int64_t row0, int64_t rows, int32_t a_zero, const kernels::Requant& rq, void* y, RunContext& ctx) const {
    const int64_t K = packed_k_;
    const uint8_t* A = a.ptr<uint8_t>() + row0 * K;
    if (a.dtype == DType::I8) {  // x + 128 as uint8, the zero point with it
      uint8_t* shifted = static_cast<uint8_t*>(ctx.scratch(static_cast<size_t>(rows * K)));
      const int8_t* src = a.ptr<int8_t>() + row0 * K;
      for (int64_t i = 0; i < rows * K; ++i) shifted[i] = static_cast<uint8_t>(static_cast<int32_t>(src[i]) + 128);
      A = shifted;
      a_zero += 128;
    }
    gemm_q8(ctx.gemm, static_cast<int>(rows), static_cast<int>(packed_n_), static_cast<int>(K), A, static_cast<size_t>(K),
            static_cast<uint8_t>(a_zero), packed_.get(), rq, y, static_cast<size_t>(packed_n_));
  }

  NodeDesc node_;
  bool qlinear_, scaled_;
  size_t b_index_ = 1;
  const kernels::KernelTable* table_;
  std::shared_ptr<void> packed_;  // constant B for the q8 GEMM (MatMulInteger only)
  size_t packed_bytes_ = 0;
  int64_t packed_k_ = 0, packed_n_ = 0;
};

std::unique_ptr<Op> make_qlinear_conv(const BuildContext& bc) { return std::make_unique<IntegerConvOp>(bc, true); }
std::unique_ptr<Op> make_conv_integer(const BuildContext& bc) { return std::make_unique<IntegerConvOp>(bc, false); }
std::unique_ptr<Op> make_qlinear_matmul(const BuildContext& bc) { return std::make_unique<IntegerMatMulOp>(bc, IntegerMatMulOp::Mode::QLinear); }
std::unique_ptr<Op> make_matmul_integer(const BuildContext& bc) { return std::make_unique<IntegerMatMulOp>(bc, IntegerMatMulOp::Mode::Integer); }
std::unique_ptr<Op> make_matmul_integer_scaled(const BuildContext& bc) { return std::make_unique<IntegerMatMulOp>(bc, IntegerMatMulOp::Mode::Scaled); }

}  // namespace
}  // namespace ops
}  // namespace exec
}  // namespace ternion

TERNION_REGISTER_OP(QLinearConv, ternion::exec::ops::make_qlinear_conv);
TERNION_REGISTER_OP(ConvInteger, ternion::exec::ops::make_conv_integer);
TERNION_REGISTER_OP(QLinearMatMul, ternion::exec::ops::make_qlinear_matmul);
TERNION_REGISTER_OP(MatMulInteger, ternion::exec::ops::make_matmul_integer);
TERNION_REGISTER_OP(TernionMatMulIntegerScaled, ternion::exec::ops::make_matmul_integer_scaled);
