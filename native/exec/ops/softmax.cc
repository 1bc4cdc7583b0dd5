// Softmax, LogSoftmax and Hardmax over float32, with the opset-dependent meaning of `axis`:
//  - opset < 13: the input is coerced to 2-D [prod(dims < axis), prod(dims >= axis)] (axis
//    default 1) and each row is normalized;
//  - opset >= 13: normalized along the single dim `axis` (default -1).
// Both become "normalize [outer, n, inner] along n". Max-subtraction keeps exp() from
// overflowing. inner == 1 (the usual classifier head) walks contiguous rows; otherwise the
// loops run across `inner` so they stay contiguous too.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "exec/graph.h"
#include "exec/ops/broadcast.h"
#include "exec/ops/op-args.h"
#include "exec/ops/vector-math.h"

namespace ternion {
namespace exec {
namespace {

// e^(x - max) for one value of a row whose maximum is `max`: exp_in_range on
// max(x - max, -87.3365), and 0 where x - max < -87.33655 (e^-87.33655 is the smallest normal
// float; below it libm gives subnormals or 0, which the normalization takes to 0 or next to it; a
// -inf attention mask gives exactly 0). (libm's expf, one call per value, was a fifth of
// ViT-B/16's time.)
inline float exp_from_max(float x, float max) {
  const float d = x - max;
  const float e = exp_in_range(std::max(d, -87.3365f));  // std::max(NaN, c) keeps the NaN
  int32_t d_bits, e_bits;
  std::memcpy(&d_bits, &d, 4);
  std::memcpy(&e_bits, &e, 4);
  // d < -87.33, -inf included (NaN not): a negative d whose magnitude's bits lie in
  // (bits(87.33), bits(inf)].
  const int32_t mag = d_bits & 0x7fffffff;
  const int32_t flush = -static_cast<int32_t>((d_bits < 0) & (mag > 0x42aeac50) & (mag <= 0x7f800000));
  e_bits &= ~flush;
  float r;
  std::memcpy(&r, &e_bits, 4);
  return r;
}

// The same on a vector of lanes (vector-math.h: bit-identical to the scalar function).
template <typename V>
TERNION_LANES V exp_from_max_lanes(V x, float max) {
  typedef Lanes<V> L;
  const V d = x - max;
  const V floor = L::splat(-87.3365f);
  const V e = L::exp_in_range(d < floor ? floor : d);  // as std::max: NaN stays
  // The scalar test on the bits is d < -(the float of bits 0x42aeac50) (false for NaN); as a
  // float compare and select here, which vectorizes (GCC splits an and of integer compares).
  const int32_t bound_bits = static_cast<int32_t>(0xc2aeac50u);
  float bound;
  std::memcpy(&bound, &bound_bits, 4);
  return d < bound ? V{} : e;
}

// y[i] = exp_from_max(x[i], max) and their sum: the values at offset j of each run of 16 summed
// in float over blocks of 256 values, then added to double sum j; the tail's values go into the
// double sums directly, and those are combined in a fixed order at the end. Every offset is
// summed in the same order at any vector width, so every width gives the same bits; a float sum
// never runs over more than 16 values (long rows, vocabularies, keep double precision).
template <typename V>
TERNION_LANES double exp_row(const float* x, float* y, int64_t n, float max) {
  typedef Lanes<V> L;
  double part[16] = {};
  int64_t i = 0;
  const int64_t whole = n - n % 16;
  while (i < whole) {
    const int64_t end = std::min<int64_t>(whole, i + 256);
    V acc[16 / L::N] = {};
    for (; i < end; i += 16) {
#pragma GCC unroll 4
      for (int k = 0; k < 16 / L::N; ++k) {
        const V e = exp_from_max_lanes(L::load(x + i + k * L::N), max);
        L::store(y + i + k * L::N, e);
        acc[k] += e;
      }
    }
#pragma GCC unroll 16
    for (int j = 0; j < 16; ++j) part[j] += static_cast<double>(acc[j / L::N][j % L::N]);
  }
  for (int j = 0; i < n; ++i, ++j) {
    y[i] = exp_from_max(x[i], max);
    part[j] += static_cast<double>(y[i]);
  }
  double pairs[8];
  for (int j = 0; j < 8; ++j) pairs[j] = part[2 * j] + part[2 * j + 1];
  return ((pairs[0] + pairs[1]) + (pairs[2] + pairs[3])) + ((pairs[4] + pairs[5]) + (pairs[6] + pairs[7]));
}

// The largest of the lanes and of a running scalar maximum r (lanes in halves: a tree, as a
// chain of sixteen maxima per row cost as much as its exps). The maximum is the same whatever
// the order.
template <typename V>
TERNION_LANES float lanes_max(V m, float r) {
  typedef Lanes<V> L;
  float lane[L::N];
  std::memcpy(lane, &m, sizeof lane);
#pragma GCC unroll 4
  for (int w = L::N / 2; w >= 1; w /= 2)
    for (int j = 0; j < w; ++j) lane[j] = std::max(lane[j], lane[j + w]);
  return std::max(lane[0], r);
}

// The largest of n floats, NaN skipped (std::max(m, NaN) keeps m; the NaN reaches the output
// through x - max): running maxima in lanes (a single chain does not vectorize).
template <typename V>
TERNION_LANES float row_max(const float* x, int64_t n) {
  typedef Lanes<V> L;
  V m = L::splat(-std::numeric_limits<float>::infinity());
  int64_t i = 0;
  for (; i + L::N <= n; i += L::N) {
    const V v = L::load(x + i);
    m = m < v ? v : m;
  }
  float r = -std::numeric_limits<float>::infinity();
  for (; i < n; ++i) r = std::max(r, x[i]);
  return lanes_max(m, r);
}

// The rest of a row's Softmax once its maximum is known: e^(x - max) and their sum, then the
// products by 1 / sum (in double: rows can be long, vocabularies, and the sum is all that matters).
template <typename V>
TERNION_LANES void softmax_from_max(const float* x, float* y, int64_t n, float max) {
  typedef Lanes<V> L;
  const float scale = static_cast<float>(1.0 / exp_row<V>(x, y, n, max));
  int64_t i = 0;
  for (; i + L::N <= n; i += L::N) L::store(y + i, L::load(y + i) * scale);
  for (; i < n; ++i) y[i] *= scale;
}

// One row of Softmax: its maximum, then the rest, in one function per width with the passes
// inlined (an attention layer's rows are short).
template <typename V>
TERNION_LANES void softmax_of_row(const float* x, float* y, int64_t n) {
  softmax_from_max<V>(x, y, n, row_max<V>(x, n));
}

template <typename V>
TERNION_LANES void softmax_row_lanes(const float* x, float* y, int64_t n) {
  softmax_of_row<V>(x, y, n);
}
TERNION_LANE_WIDTHS(void, softmax_row, (const float* x, float* y, int64_t n), (x, y, n))

// A row of TernionScaledMaskedSoftmax, in the same one function per width: v = s / c or s * c
// (or s as it is), plus the mask (stepping by 0, one value for the row, or 1), stored in y with
// the row's maximum taken in the same pass, then the rest of the row's Softmax: the Div, Mul, Add
// and Softmax ops' float operations. y may be s.
enum class RowScale : int { None, Divide, Multiply };
TERNION_LANES float scale_mask_one(float v, RowScale op, float c, const float* m, int64_t step, int64_t i) {
  if (op == RowScale::Divide) v = v / c;
  else if (op == RowScale::Multiply) v = v * c;
  return m ? v + m[step == 0 ? 0 : i] : v;
}
template <typename V>
TERNION_LANES void scaled_masked_softmax_row_lanes(const float* s, float* y, int64_t n, RowScale op, float c, const float* m, int64_t step) {
  typedef Lanes<V> L;
  const V vc = L::splat(c), same = L::splat(m && step == 0 ? *m : 0.0f);
  V mx = L::splat(-std::numeric_limits<float>::infinity());
  int64_t i = 0;
  for (; i + L::N <= n; i += L::N) {
    V v = L::load(s + i);
    if (op == RowScale::Divide) v = v / vc;
    else if (op == RowScale::Multiply) v = v * vc;
    if (m) v = v + (step == 0 ? same : L::load(m + i));
    L::store(y + i, v);
    mx = mx < v ? v : mx;
  }
  float r = -std::numeric_limits<float>::infinity();
  for (; i < n; ++i) {
    y[i] = scale_mask_one(s[i], op, c, m, step, i);
    r = std::max(r, y[i]);
  }
  softmax_from_max<V>(y, y, n, lanes_max(mx, r));
}
TERNION_LANE_WIDTHS(void, scaled_masked_softmax_row, (const float* s, float* y, int64_t n, RowScale op, float c, const float* m, int64_t step),
                    (s, y, n, op, c, m, step))

// LogSoftmax's row: (x - max) - log(sum), not x - (max + log(sum)): near-zero outputs keep
// their precision.
template <typename V>
TERNION_LANES void log_softmax_row_lanes(const float* x, float* y, int64_t n) {
  const float max = row_max<V>(x, n);
  const float log_sum = static_cast<float>(std::log(exp_row<V>(x, y, n, max)));
  for (int64_t i = 0; i < n; ++i) y[i] = (x[i] - max) - log_sum;
}
TERNION_LANE_WIDTHS(void, log_softmax_row, (const float* x, float* y, int64_t n), (x, y, n))

// The input of Softmax, LogSoftmax or Hardmax seen as [outer, n, inner]: each of the
// outer * inner lines of n values (stride inner) is normalized on its own. `axis` as the node
// has it, `coerce_2d` before opset 13 (a line is then everything from axis on, and axis == rank
// is allowed).
struct AxisLines {
  int64_t outer, n, inner;
};

// The node's float32 input checked for its axis; output 0 takes its shape.
void infer_axis_op(const std::vector<const Tensor*>& inputs, std::vector<Tensor>& outputs, int64_t axis, bool coerce_2d,
                   const std::string& where) {
  const Tensor& x = op_args::required(inputs, 0, where, "input");
  op_args::require_dtype(x, {DType::F32}, where, "input");
  const int64_t rank = static_cast<int64_t>(x.shape.size());
  if (rank == 0 && !coerce_2d) fail("ERR_SHAPE_MISMATCH", where + ": input must have rank >= 1, got a scalar");
  op_args::normalize_axis(axis, rank, where, coerce_2d);
  if (outputs.size() != 1) fail("ERR_MODEL_FORMAT", where + ": expected one output");
  outputs[0].dtype = DType::F32;
  outputs[0].shape = x.shape;
}

AxisLines axis_lines(const Shape& shape, int64_t axis_attr, bool coerce_2d, const std::string& where) {
  const size_t rank = shape.size();
  const size_t axis = static_cast<size_t>(op_args::normalize_axis(axis_attr, static_cast<int64_t>(rank), where, coerce_2d));
  return {op_args::dims_product(shape, 0, axis), coerce_2d ? op_args::dims_product(shape, axis, rank) : shape[axis],
          coerce_2d ? 1 : op_args::dims_product(shape, axis + 1, rank)};
}

class SoftmaxOp : public Op {
 public:
  SoftmaxOp(const NodeDesc& node, bool log)
      : where_(node.where()), log_(log), coerce_2d_(node.opset > 0 && node.opset < 13),
        axis_(node.get_int("axis", coerce_2d_ ? 1 : -1)) {}

  void infer(const std::vector<const Tensor*>& inputs, std::vector<Tensor>& outputs) override {
    infer_axis_op(inputs, outputs, axis_, coerce_2d_, where_);
  }

  void run(const std::vector<const Tensor*>& inputs, std::vector<Tensor*>& outputs, RunContext& ctx) override {
    const Tensor& x = *inputs[0];
    const AxisLines lines = axis_lines(x.shape, axis_, coerce_2d_, where_);
    const int64_t outer = lines.outer, n = lines.n, inner = lines.inner;
    if (x.size() == 0) return;
    const float* in = x.ptr<float>();
    float* out = outputs[0]->ptr<float>();
    const int64_t slice = n * inner;
    // One task per group of whole slices; each slice is independent.
    const int64_t slices_per_task = std::max<int64_t>(1, (1 << 13) / std::max<int64_t>(slice, 1));
    broadcast::parallel_range(ctx, outer, slices_per_task, [&](int64_t b, int64_t e) {
      for (int64_t o = b; o < e; ++o) {
        if (inner == 1) normalize_row(in + o * slice, out + o * slice, n);
        else normalize_columns(in + o * slice, out + o * slice, n, inner);
      }
    });
  }

 private:
  void normalize_row(const float* x, float* y, int64_t n) const {
    if (log_) log_softmax_row(x, y, n);
    else softmax_row(x, y, n);
  }

  // x is [n, inner]: normalize each of the `inner` columns, a block of columns at a time so the
  // running max and sum stay in cache.
  void normalize_columns(const float* x, float* y, int64_t n, int64_t inner) const {
    constexpr int64_t kBlock = 256;
    float max[kBlock];
    double sum[kBlock];  // double: long columns would otherwise blur log(sum) near 0
    for (int64_t c0 = 0; c0 < inner; c0 += kBlock) {
      const int64_t w = std::min(kBlock, inner - c0);
      for (int64_t c = 0; c < w; ++c) max[c] = -std::numeric_limits<float>::infinity(), sum[c] = 0;
      for (int64_t k = 0; k < n; ++k)
        for (int64_t c = 0; c < w; ++c) max[c] = std::max(max[c], x[k * inner + c0 + c]);
      for (int64_t k = 0; k < n; ++k)
        for (int64_t c = 0; c < w; ++c) {
          const float e = std::exp(x[k * inner + c0 + c] - max[c]);
          y[k * inner + c0 + c] = e;
          sum[c] += e;
        }
      if (log_) {
        float log_sum[kBlock];
        for (int64_t c = 0; c < w; ++c) log_sum[c] = static_cast<float>(std::log(sum[c]));
        for (int64_t k = 0; k < n; ++k)
          for (int64_t c = 0; c < w; ++c) y[k * inner + c0 + c] = (x[k * inner + c0 + c] - max[c]) - log_sum[c];
      } else {
        float scale[kBlock];
        for (int64_t c = 0; c < w; ++c) scale[c] = static_cast<float>(1.0 / sum[c]);
        for (int64_t k = 0; k < n; ++k)
          for (int64_t c = 0; c < w; ++c) y[k * inner + c0 + c] *= scale[c];
      }
    }
  }

  std::string where_;
  bool log_;
  bool coerce_2d_;
  int64_t axis_;
};

// Hardmax: 1 at the first largest value of each line, 0 elsewhere (a NaN is passed over unless
// it opens the line, as std::max_element does).
class HardmaxOp : public Op {
 public:
  explicit HardmaxOp(const NodeDesc& node)
      : where_(node.where()), coerce_2d_(node.opset > 0 && node.opset < 13), axis_(node.get_int("axis", coerce_2d_ ? 1 : -1)) {}

  void infer(const std::vector<const Tensor*>& inputs, std::vector<Tensor>& outputs) override {
    infer_axis_op(inputs, outputs, axis_, coerce_2d_, where_);
  }

  void run(const std::vector<const Tensor*>& inputs, std::vector<Tensor*>& outputs, RunContext& ctx) override {
    const Tensor& x = *inputs[0];
    const AxisLines lines = axis_lines(x.shape, axis_, coerce_2d_, where_);
    if (x.size() == 0) return;
    const float* in = x.ptr<float>();
    float* out = outputs[0]->ptr<float>();
    std::memset(out, 0, x.bytes());
    const int64_t n = lines.n, inner = lines.inner;
    broadcast::parallel_range(ctx, lines.outer * inner, std::max<int64_t>(1, (1 << 13) / n), [&](int64_t b, int64_t e) {
      for (int64_t line = b; line < e; ++line) {
        const int64_t base = (line / inner) * n * inner + line % inner;
        int64_t best = 0;
        for (int64_t k = 1; k < n; ++k)
          if (in[base + best * inner] < in[base + k * inner]) best = k;
        out[base + best * inner] = 1.0f;
      }
    });
  }

 private:
  std::string where_;
  bool coerce_2d_;
  int64_t axis_;
};

// TernionScaledMaskedSoftmax (lib/ir/passes/fuse-attention-softmax.ts): an attention layer's
// Softmax(Add(Div(S, c), mask)) over the last axis as one pass per row, the ops' own float
// operations in their order: v = s / c (or s * c; or no scaling), then v + mask (mask read
// through numpy broadcasting to S's shape; optional), then the row's Softmax as SoftmaxOp takes
// it (softmax_row). So the outputs are the chain's, bit for bit, without the two passes over the
// scores (and the two buffers) in between.
class ScaledMaskedSoftmaxOp : public Op {
 public:
  explicit ScaledMaskedSoftmaxOp(const BuildContext& bc) : where_(bc.node.where()), scale_(bc.node.get_float("scale", 1.0f)) {
    const std::string op = bc.node.get_string("scale_op", "none");
    if (op == "div") op_ = RowScale::Divide;
    else if (op == "mul") op_ = RowScale::Multiply;
    else if (op != "none") fail("ERR_MODEL_FORMAT", where_ + ": scale_op must be div, mul or none, got '" + op + "'");
    if (bc.node.inputs.empty() || bc.node.inputs.size() > 2 || bc.node.outputs.size() != 1)
      fail("ERR_MODEL_FORMAT", where_ + " must have 1 or 2 inputs and one output");
  }

  void infer(const std::vector<const Tensor*>& inputs, std::vector<Tensor>& outputs) override {
    const Tensor& x = op_args::required(inputs, 0, where_, "scores");
    op_args::require_dtype(x, {DType::F32}, where_, "scores");
    if (x.shape.empty()) fail("ERR_SHAPE_MISMATCH", where_ + ": the scores must have rank >= 1, got a scalar");
    outputs[0].dtype = DType::F32;
    outputs[0].shape = x.shape;
    if (const Tensor* m = op_args::optional(inputs, 1)) {
      op_args::require_dtype(*m, {DType::F32}, where_, "mask");
      outputs[0].shape = broadcast::broadcast_shapes(x.shape, m->shape, where_);  // as the Add broadcasts
    }
  }

  void run(const std::vector<const Tensor*>& inputs, std::vector<Tensor*>& outputs, RunContext& ctx) override {
    const Tensor& x = *inputs[0];
    const Tensor* m = op_args::optional(inputs, 1);
    Tensor& y = *outputs[0];
    if (y.size() == 0) return;
    const Shape& shape = y.shape;  // the scores' shape, or wider where the mask broadcast them
    const size_t rank = shape.size();
    const int64_t n = shape.back(), rows = y.size() / n;
    const float* in = x.ptr<float>();
    float* out = y.ptr<float>();
    const float* mask = m ? m->ptr<float>() : nullptr;
    // Element strides of the scores and the mask read through the broadcast to the output.
    const std::vector<int64_t> xs = broadcast::broadcast_strides(x.shape, shape);
    const std::vector<int64_t> ms = m ? broadcast::broadcast_strides(m->shape, shape) : std::vector<int64_t>(rank, 0);
    const bool whole = x.shape == shape;  // the usual case: rows of the scores as they lie
    broadcast::parallel_range(ctx, rows, std::max<int64_t>(1, (1 << 13) / n), [&](int64_t b, int64_t e) {
      for (int64_t r = b; r < e; ++r) {
        int64_t xo = 0, mo = 0, rest = r;
        for (size_t d = rank - 1; d-- > 0;) {
          const int64_t i = rest % shape[d];
          rest /= shape[d];
          xo += i * xs[d];
          mo += i * ms[d];
        }
        float* row = out + r * n;
        const float* m = mask ? mask + mo : nullptr;
        if (whole) {
          scaled_masked_softmax_row(in + r * n, row, n, op_, scale_, m, ms[rank - 1]);
        } else {  // scores broadcast by the mask: gathered through their strides first
          for (int64_t i = 0; i < n; ++i) row[i] = in[xo + i * xs[rank - 1]];
          scaled_masked_softmax_row(row, row, n, op_, scale_, m, ms[rank - 1]);
        }
      }
    });
  }

 private:
  std::string where_;
  float scale_;
  RowScale op_ = RowScale::None;
};

std::unique_ptr<Op> make_softmax(const BuildContext& bc) { return std::make_unique<SoftmaxOp>(bc.node, false); }
std::unique_ptr<Op> make_scaled_masked_softmax(const BuildContext& bc) { return std::make_unique<ScaledMaskedSoftmaxOp>(bc); }
std::unique_ptr<Op> make_log_softmax(const BuildContext& bc) { return std::make_unique<SoftmaxOp>(bc.node, true); }
std::unique_ptr<Op> make_hardmax(const BuildContext& bc) { return std::make_unique<HardmaxOp>(bc.node); }

}  // namespace

TERNION_REGISTER_OP(Softmax, make_softmax);
TERNION_REGISTER_OP(LogSoftmax, make_log_softmax);
TERNION_REGISTER_OP(Hardmax, make_hardmax);
TERNION_REGISTER_OP(TernionScaledMaskedSoftmax, make_scaled_masked_softmax);

}  // namespace exec
}  // namespace ternion
