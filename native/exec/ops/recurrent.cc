// ONNX LSTM, GRU and RNN (opsets 7 to 21; `layout` from 14) in float32: one recurrent layer run
// forward, reverse or both ways over a batch of sequences padded to one length. sequence_lens
// gives each sequence its own length: past it Y holds zeros, Y_h / Y_c hold the state of its last
// step (a reverse pass starts at that step), and a sequence of length 0 has zero states, as
// onnxruntime gives.
//
// Per direction, the input projections X * W^T of every step (with the biases that do not meet
// the state) are one GEMM; each step is then one GEMM of the state by R^T (two for a GRU without
// linear_before_reset, whose reset gate scales the state before its product with R_h) and the gate
// arithmetic row by row, through the Sigmoid and Tanh ops' vector code for the default
// activations. Constant W, R and B are packed / folded once at build, others at each run.
//
// Gate order as ONNX stacks them: LSTM i, o, f, c (peepholes i, o, f); GRU z, r, h; RNN one.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>

#include "exec/graph.h"
#include "exec/ops/conv-common.h"
#include "exec/ops/op-args.h"
#include "exec/ops/vector-math.h"

namespace ternion {
namespace exec {
namespace ops {
namespace {

enum class Cell { Lstm, Gru, Rnn };

int gate_count(Cell c) { return c == Cell::Lstm ? 4 : c == Cell::Gru ? 3 : 1; }
int activations_per_direction(Cell c) { return c == Cell::Lstm ? 3 : c == Cell::Gru ? 2 : 1; }
size_t max_outputs(Cell c) { return c == Cell::Lstm ? 3 : 2; }

// ---------------------------------------------------------------- activations

// One of the spec's activation functions with its alpha and beta, applied in place after the
// optional clip of its input.
struct GateActivation {
  enum Kind { Relu, Tanh, Sigmoid, Affine, LeakyRelu, ThresholdedRelu, ScaledTanh, HardSigmoid, Elu, Softsign, Softplus } kind = Tanh;
  float alpha = 0.0f, beta = 0.0f;

  void apply(float* p, int64_t n) const {
    switch (kind) {
      case Sigmoid: return sigmoid_in_place(p, n);
      case Tanh: return tanh_in_place(p, n);
      case ScaledTanh:
        for (int64_t i = 0; i < n; ++i) p[i] *= beta;
        tanh_in_place(p, n);
        for (int64_t i = 0; i < n; ++i) p[i] *= alpha;
        return;
      case Relu:
        for (int64_t i = 0; i < n; ++i) p[i] = std::max(p[i], 0.0f);
        return;
      case Affine:
        for (int64_t i = 0; i < n; ++i) p[i] = alpha * p[i] + beta;
        return;
      case LeakyRelu:
        for (int64_t i = 0; i < n; ++i) p[i] = p[i] >= 0.0f ? p[i] : alpha * p[i];
        return;
      case ThresholdedRelu:
        for (int64_t i = 0; i < n; ++i) p[i] = p[i] >= alpha ? p[i] : 0.0f;
        return;
      case HardSigmoid:
        for (int64_t i = 0; i < n; ++i) p[i] = std::min(std::max(alpha * p[i] + beta, 0.0f), 1.0f);
        return;
      case Elu:
        for (int64_t i = 0; i < n; ++i) p[i] = p[i] >= 0.0f ? p[i] : alpha * std::expm1(p[i]);
        return;
      case Softsign:
        for (int64_t i = 0; i < n; ++i) p[i] = p[i] / (1.0f + std::fabs(p[i]));
        return;
      case Softplus:  // log(1 + e^x) without overflow
        for (int64_t i = 0; i < n; ++i) p[i] = p[i] > 0.0f ? p[i] + std::log1p(std::exp(-p[i])) : std::log1p(std::exp(p[i]));
        return;
    }
  }
};

struct ActivationInfo {
  const char* name;
  GateActivation::Kind kind;
  bool takes_alpha, takes_beta;
  // Defaults: the standalone ONNX ops' (Affine's from the experimental op; ScaledTanh had none:
  // 1, 1 leaves it Tanh), as the spec says. onnxruntime takes 0 where its table has none
  // (ThresholdedRelu, Affine, ScaledTanh).
  float alpha, beta;
};

constexpr ActivationInfo kActivations[] = {
    {"Relu", GateActivation::Relu, false, false, 0, 0},
    {"Tanh", GateActivation::Tanh, false, false, 0, 0},
    {"Sigmoid", GateActivation::Sigmoid, false, false, 0, 0},
    {"Affine", GateActivation::Affine, true, true, 1.0f, 0.0f},
    {"LeakyRelu", GateActivation::LeakyRelu, true, false, 0.01f, 0},
    {"ThresholdedRelu", GateActivation::ThresholdedRelu, true, false, 1.0f, 0},
    {"ScaledTanh", GateActivation::ScaledTanh, true, true, 1.0f, 1.0f},
    {"HardSigmoid", GateActivation::HardSigmoid, true, true, 0.2f, 0.5f},
    {"Elu", GateActivation::Elu, true, false, 1.0f, 0},
    {"Softsign", GateActivation::Softsign, false, false, 0, 0},
    {"Softplus", GateActivation::Softplus, false, false, 0, 0},
};

bool same_ignoring_case(const std::string& a, const char* b) {
  const size_t n = std::strlen(b);
  if (a.size() != n) return false;
  for (size_t i = 0; i < n; ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  return true;
}

// The node's activations, activations_per_direction(cell) for each direction in turn: the
// defaults when the attribute is absent. activation_alpha / activation_beta are consumed in order by the functions that take
// them (a Tanh before a LeakyRelu takes none); a function past the end of a list keeps its default.
std::vector<GateActivation> read_activations(const NodeDesc& node, Cell cell, int directions) {
  const int per_direction = activations_per_direction(cell);
  std::vector<std::string> names = node.get_strings("activations");
  if (names.empty()) {
    const std::vector<std::string> defaults = cell == Cell::Rnn ? std::vector<std::string>{"Tanh"}
                                              : cell == Cell::Gru ? std::vector<std::string>{"Sigmoid", "Tanh"}
                                                                  : std::vector<std::string>{"Sigmoid", "Tanh", "Tanh"};
    for (int d = 0; d < directions; ++d) names.insert(names.end(), defaults.begin(), defaults.end());
  }
  if (names.size() != static_cast<size_t>(per_direction * directions))
    fail("ERR_MODEL_FORMAT", node.where() + ": activations lists " + std::to_string(names.size()) + " functions, expected " +
                                 std::to_string(per_direction * directions) + " (" + std::to_string(per_direction) + " per direction)");
  const std::vector<float> alphas = node.get_floats("activation_alpha"), betas = node.get_floats("activation_beta");
  size_t next_alpha = 0, next_beta = 0;
  std::vector<GateActivation> out;
  for (const std::string& name : names) {
    const ActivationInfo* info = nullptr;
    for (const ActivationInfo& a : kActivations)
      if (same_ignoring_case(name, a.name)) info = &a;
    if (!info) {
      std::string known;
      for (const ActivationInfo& a : kActivations) known += std::string(known.empty() ? "" : ", ") + a.name;
      fail("ERR_MODEL_FORMAT", node.where() + ": unknown activation \"" + name + "\" (expected one of " + known + ")");
    }
    GateActivation g;
    g.kind = info->kind;
    g.alpha = info->takes_alpha && next_alpha < alphas.size() ? alphas[next_alpha++] : info->alpha;
    g.beta = info->takes_beta && next_beta < betas.size() ? betas[next_beta++] : info->beta;
    out.push_back(g);
  }
  return out;
}

// ---------------------------------------------------------------- the op

class RecurrentOp : public Op {
 public:
  RecurrentOp(const BuildContext& bc, Cell cell)
      : node_(bc.node), where_(bc.node.where()), table_(bc.table), cell_(cell), gates_(gate_count(cell)) {
    const std::string direction = node_.get_string("direction", "forward");
    if (direction != "forward" && direction != "reverse" && direction != "bidirectional")
      fail("ERR_MODEL_FORMAT", node_.where() + ": direction \"" + direction + "\" is not one of forward, reverse, bidirectional");
    directions_ = direction == "bidirectional" ? 2 : 1;
    reverse_only_ = direction == "reverse";
    hidden_ = node_.get_int("hidden_size", 0);
    if (node_.has("hidden_size") && (hidden_ < 1 || hidden_ > (int64_t(1) << 24)))
      fail("ERR_MODEL_FORMAT", node_.where() + ": hidden_size " + std::to_string(hidden_) + " must be in [1, 2^24]");
    if (node_.has("layout") && node_.opset < 14)
      fail("ERR_MODEL_FORMAT", node_.where() + ": the layout attribute exists from opset 14 (the model imports opset " + std::to_string(node_.opset) + ")");
    layout_ = node_.get_int("layout", 0);
    if (layout_ != 0 && layout_ != 1) fail("ERR_MODEL_FORMAT", node_.where() + ": layout " + std::to_string(layout_) + " is not 0 or 1");
    has_clip_ = node_.has("clip");
    clip_ = node_.get_float("clip", 0.0f);
    if (has_clip_ && !(clip_ > 0.0f)) fail("ERR_MODEL_FORMAT", node_.where() + ": clip " + std::to_string(clip_) + " must be positive");
    input_forget_ = cell_ == Cell::Lstm && node_.get_int("input_forget", 0) != 0;
    linear_before_reset_ = cell_ == Cell::Gru && node_.get_int("linear_before_reset", 0) != 0;
    activations_ = read_activations(node_, cell_, directions_);
    if (node_.outputs.size() > max_outputs(cell_))
      fail("ERR_MODEL_FORMAT", node_.where() + " has " + std::to_string(node_.outputs.size()) + " outputs, at most " + std::to_string(max_outputs(cell_)));
    if (node_.inputs.size() > (cell_ == Cell::Lstm ? 8u : 6u))
      fail("ERR_MODEL_FORMAT", node_.where() + " has " + std::to_string(node_.inputs.size()) + " inputs, at most " + (cell_ == Cell::Lstm ? "8" : "6"));
    pack_constant_weights(bc);
    fold_constant_bias(bc);
    node_.release_attrs();  // every attribute read above
  }

  void infer(const std::vector<const Tensor*>& in, std::vector<Tensor>& out) override {
    const Dims s = check_inputs(in);
    const Shape y = layout_ == 0 ? Shape{s.seq, directions_, s.batch, s.hidden} : Shape{s.batch, s.seq, directions_, s.hidden};
    const Shape state = layout_ == 0 ? Shape{directions_, s.batch, s.hidden} : Shape{s.batch, directions_, s.hidden};
    shape_size(y);
    out.resize(node_.outputs.size());
    for (size_t i = 0; i < out.size(); ++i) {
      out[i].dtype = DType::F32;
      out[i].shape = !wanted(i) ? Shape{0} : i == 0 ? y : state;  // an omitted output gets no storage
    }
  }

  bool keeps_copy_of(size_t input) const override {
    return (input == 1 && !packed_w_.empty()) || (input == 2 && !packed_r_.empty()) || (input == 3 && !bias_.empty());
  }
  size_t weight_bytes() const override { return packed_bytes_ + bias_.size() * sizeof(float); }

  void run(const std::vector<const Tensor*>& in, std::vector<Tensor*>& out, RunContext& ctx) override {
    const Dims s = check_inputs(in);
    std::vector<Direction> dirs;
    for (int64_t d = 0; d < directions_; ++d) dirs.push_back(prepare(in, ctx, s, d));
    if (directions_ == 2 && thread_count(ctx.gemm) >= 2) {
      // The two directions at once, one thread each: one fork-join for the layer instead of
      // one per step (each step's product is too small to split well).
      const GemmContext one{ctx.gemm.table, nullptr, 1};
      ctx.gemm.pool->parallel_for(2, 2, [&](int d) { recur(dirs[static_cast<size_t>(d)], in, out, one, s); });
    } else {
      for (const Direction& r : dirs) recur(r, in, out, ctx.gemm, s);
    }
  }

 private:
  struct Dims {
    int64_t seq = 0, batch = 0, input = 0, hidden = 0;
  };

  // The packed GEMM operands of one direction: W [G*H][I], and R [G*H][H] or, for a GRU without
  // linear_before_reset, R's z and r rows [2H][H] (r_zr) and its h rows [H][H] (r_h).
  struct Weights {
    const void* w = nullptr;
    const void* r = nullptr;
    const void* r_h = nullptr;
  };

  bool wanted(size_t output) const { return output < node_.outputs.size() && node_.outputs[output] >= 0; }
  bool split_r() const { return cell_ == Cell::Gru && !linear_before_reset_; }
  // The biases of one direction: xw [G*H] added to the input projections, rec [G*H] to R's
  // product (only a GRU with linear_before_reset has one: r scales R_h's product with its bias).
  bool has_rec_bias() const { return cell_ == Cell::Gru && linear_before_reset_; }

  // Every input's dtype and shape, and sequence_lens' values: ERR_DTYPE / ERR_SHAPE_MISMATCH
  // naming the node and the input.
  Dims check_inputs(const std::vector<const Tensor*>& in) const {
    const std::string& where = where_;
    const Tensor& x = op_args::required(in, 0, where, "X");
    const Tensor& w = op_args::required(in, 1, where, "W");
    const Tensor& r = op_args::required(in, 2, where, "R");
    static const char* const kNames[] = {"X", "W", "R", "B", "sequence_lens", "initial_h", "initial_c", "P"};
    for (size_t i = 0; i < in.size(); ++i)
      if (in[i] && i != 4) op_args::require_dtype(*in[i], {DType::F32}, where, kNames[i]);
    if (x.shape.size() != 3)
      fail("ERR_SHAPE_MISMATCH", where + ": X " + shape_str(x.shape) + " must be 3-D " +
                                     (layout_ == 0 ? "[seq_length, batch_size, input_size]" : "[batch_size, seq_length, input_size]"));
    Dims s;
    s.seq = x.shape[layout_ == 0 ? 0 : 1];
    s.batch = x.shape[layout_ == 0 ? 1 : 0];
    s.input = x.shape[2];
    if (s.input < 1) fail("ERR_SHAPE_MISMATCH", where + ": X " + shape_str(x.shape) + " has no input features");
    if (r.shape.size() != 3) fail("ERR_SHAPE_MISMATCH", where + ": R " + shape_str(r.shape) + " must be 3-D [num_directions, " + rows_name() + ", hidden_size]");
    s.hidden = hidden_ > 0 ? hidden_ : r.shape[2];
    if (s.hidden < 1) fail("ERR_SHAPE_MISMATCH", where + ": R " + shape_str(r.shape) + " gives a hidden_size of 0");
    const int64_t rows = gates_ * s.hidden;
    checked_int(rows, node_, "the gate rows");
    checked_int(s.batch, node_, "batch_size");
    checked_int(s.seq * s.batch, node_, "seq_length * batch_size");
    expect(w, "W", {directions_, rows, s.input}, "[num_directions, " + rows_name() + ", input_size]", s);
    expect(r, "R", {directions_, rows, s.hidden}, "[num_directions, " + rows_name() + ", hidden_size]", s);
    if (const Tensor* b = op_args::optional(in, 3)) expect(*b, "B", {directions_, 2 * rows}, "[num_directions, 2 * " + rows_name() + "]", s);
    if (const Tensor* lens = op_args::optional(in, 4)) {
      if (lens->dtype != DType::I32) fail("ERR_DTYPE", where + ": sequence_lens has dtype " + dtype_name(lens->dtype) + ", expected int32");
      expect(*lens, "sequence_lens", {s.batch}, "[batch_size]", s);
      for (int64_t b = 0; b < s.batch; ++b) {
        const int32_t len = lens->ptr<int32_t>()[b];
        if (len < 0 || len > s.seq)
          fail("ERR_SHAPE_MISMATCH", where + ": sequence_lens[" + std::to_string(b) + "] = " + std::to_string(len) + " is outside [0, seq_length = " +
                                         std::to_string(s.seq) + "]");
      }
    }
    const Shape state = layout_ == 0 ? Shape{directions_, s.batch, s.hidden} : Shape{s.batch, directions_, s.hidden};
    const std::string state_meaning = layout_ == 0 ? "[num_directions, batch_size, hidden_size]" : "[batch_size, num_directions, hidden_size]";
    if (const Tensor* h0 = op_args::optional(in, 5)) expect(*h0, "initial_h", state, state_meaning, s);
    if (cell_ == Cell::Lstm) {
      if (const Tensor* c0 = op_args::optional(in, 6)) expect(*c0, "initial_c", state, state_meaning, s);
      if (const Tensor* p = op_args::optional(in, 7)) expect(*p, "P", {directions_, 3 * s.hidden}, "[num_directions, 3 * hidden_size]", s);
    }
    return s;
  }

  void expect(const Tensor& t, const char* what, const Shape& want, const std::string& meaning, const Dims& s) const {
    if (t.shape == want) return;
    fail("ERR_SHAPE_MISMATCH", where_ + ": " + what + " " + shape_str(t.shape) + " must be " + meaning + " = " + shape_str(want) +
                                   " (hidden_size " + std::to_string(s.hidden) + ", " + std::to_string(directions_) + " direction" +
                                   (directions_ > 1 ? "s" : "") + ", X " + (layout_ == 0 ? "[seq, batch, input] " : "[batch, seq, input] ") +
                                   shape_str(layout_ == 0 ? Shape{s.seq, s.batch, s.input} : Shape{s.batch, s.seq, s.input}) + ")");
  }

  std::string rows_name() const { return std::to_string(gates_) + " * hidden_size"; }

  // Constant W and R, packed per direction (left to run() when malformed: infer() names the problem).
  void pack_constant_weights(const BuildContext& bc) {
    const HostTensor* w = bc.constant(1);
    const HostTensor* r = bc.constant(2);
    if (w && w->dtype == DType::F32 && w->shape.size() == 3 && w->shape[0] == directions_ && w->shape[2] > 0 && w->shape[1] % gates_ == 0 &&
        w->shape[1] / gates_ <= (int64_t(1) << 24) && w->shape[2] <= (int64_t(1) << 24)) {
      const int N = static_cast<int>(w->shape[1]), K = static_cast<int>(w->shape[2]);
      for (int64_t d = 0; d < directions_; ++d) pack(static_cast<const float*>(w->storage.get()) + d * N * K, N, K, packed_w_);
    }
    if (r && r->dtype == DType::F32 && r->shape.size() == 3 && r->shape[0] == directions_ && r->shape[2] > 0 &&
        r->shape[2] <= (int64_t(1) << 24) && r->shape[1] == gates_ * r->shape[2]) {
      const int H = static_cast<int>(r->shape[2]), N = gates_ * H;
      for (int64_t d = 0; d < directions_; ++d) {
        const float* rd = static_cast<const float*>(r->storage.get()) + d * N * H;
        if (split_r()) {
          pack(rd, 2 * H, H, packed_r_);
          pack(rd + 2 * H * H, H, H, packed_r_);
        } else {
          pack(rd, N, H, packed_r_);
        }
      }
    }
  }

  void pack(const float* rows, int N, int K, std::vector<std::shared_ptr<void>>& into) {
    into.push_back(pack_f32_weights(table_, rows, N, K));
    packed_bytes_ += table_->f32_packed_size(N, K);
  }

  // A constant B, folded per direction into the biases run() adds (bias_: [direction][xw, rec]).
  void fold_constant_bias(const BuildContext& bc) {
    const HostTensor* b = bc.constant(3);
    if (!b || b->dtype != DType::F32 || b->shape.size() != 2 || b->shape[0] != directions_ || b->shape[1] % (2 * gates_) != 0) return;
    const int64_t rows = b->shape[1] / 2;
    bias_.resize(static_cast<size_t>(directions_ * 2 * rows));
    for (int64_t d = 0; d < directions_; ++d)
      fold_bias(static_cast<const float*>(b->storage.get()) + d * 2 * rows, rows, bias_.data() + d * 2 * rows, bias_.data() + (d * 2 + 1) * rows);
  }

  // B's Wb and Rb halves of one direction as the two biases of the Weights' products: Rb joins Wb
  // wherever it is simply added (all but a linear_before_reset GRU's, which keeps it with R).
  void fold_bias(const float* b, int64_t rows, float* xw_bias, float* rec_bias) const {
    for (int64_t j = 0; j < rows; ++j) {
      xw_bias[j] = has_rec_bias() ? b[j] : b[j] + b[rows + j];
      rec_bias[j] = has_rec_bias() ? b[rows + j] : 0.0f;
    }
  }

  // This direction's packed operands: the build's, else packed now into scratch.
  Weights weights_of(const std::vector<const Tensor*>& in, RunContext& ctx, const Dims& s, int64_t d) const {
    const kernels::KernelTable* table = ctx.gemm.table;
    const int H = static_cast<int>(s.hidden), N = gates_ * H, I = static_cast<int>(s.input);
    auto pack_now = [&](const Tensor& t, const float* rows, int n, int k) -> const void* {
      if (!t.data) fail("ERR_INTERNAL", where_ + ": the weights were packed for another kernel set");
      void* p = ctx.scratch(table->f32_packed_size(n, k));
      table->f32_pack(rows, n, k, p);
      return p;
    };
    Weights w;
    const bool built = table == table_;
    if (built && !packed_w_.empty()) {
      w.w = packed_w_[static_cast<size_t>(d)].get();
    } else {
      w.w = pack_now(*in[1], in[1]->ptr<float>() + d * N * I, N, I);
    }
    const size_t per_direction = split_r() ? 2 : 1;
    if (built && !packed_r_.empty()) {
      w.r = packed_r_[static_cast<size_t>(d) * per_direction].get();
      if (split_r()) w.r_h = packed_r_[static_cast<size_t>(d) * per_direction + 1].get();
    } else {
      const float* rd = in[2]->ptr<float>() + d * N * H;
      w.r = pack_now(*in[2], rd, split_r() ? 2 * H : N, H);
      if (split_r()) w.r_h = pack_now(*in[2], rd + 2 * H * H, H, H);
    }
    return w;
  }

  // Clip (when set), then the activation, in place.
  void activate(const GateActivation& a, float* p, int64_t n) const {
    if (has_clip_)
      for (int64_t i = 0; i < n; ++i) p[i] = std::min(std::max(p[i], -clip_), clip_);
    a.apply(p, n);
  }

  // One direction's buffers (scratch), packed weights and biases, made on the calling thread
  // (scratch is not thread-safe) before the directions run, possibly at once.
  struct Direction {
    int64_t d = 0;
    bool reverse = false;
    Weights w;
    const float* xw_bias = nullptr;
    const float* rec_bias = nullptr;
    float* xw = nullptr;        // input projections of every step, rows in X's order
    float* h = nullptr;         // the state H, one row per batch entry
    float* c = nullptr;         // LSTM's C
    float* rec = nullptr;       // the step's product with R (R_zr for a split GRU)
    float* reset_h = nullptr;   // split GRU: r (.) H ...
    float* rec_h = nullptr;     // ... and its product with R_h
    float* cell_out = nullptr;  // LSTM: h(C) of a row
  };

  Direction prepare(const std::vector<const Tensor*>& in, RunContext& ctx, const Dims& s, int64_t d) const {
    const int64_t S = s.seq, B = s.batch, H = s.hidden, G = gates_;
    auto floats = [&](int64_t n) { return static_cast<float*>(ctx.scratch(static_cast<size_t>(std::max<int64_t>(n, 1)) * sizeof(float))); };
    Direction r;
    r.d = d;
    r.reverse = reverse_only_ || d == 1;
    r.w = weights_of(in, ctx, s, d);
    if (!bias_.empty()) {  // the build's fold of a constant B
      r.xw_bias = bias_.data() + d * 2 * G * H;
      r.rec_bias = has_rec_bias() ? r.xw_bias + G * H : nullptr;
    } else if (const Tensor* b = op_args::optional(in, 3)) {
      float* folded = floats(2 * G * H);
      fold_bias(b->ptr<float>() + d * 2 * G * H, G * H, folded, folded + G * H);
      r.xw_bias = folded;
      r.rec_bias = has_rec_bias() ? folded + G * H : nullptr;
    }
    r.xw = floats(S * B * G * H);
    r.h = floats(B * H);
    r.rec = floats(B * (split_r() ? 2 * H : G * H));
    if (cell_ == Cell::Lstm) {
      r.c = floats(B * H);
      r.cell_out = floats(H);
    }
    if (split_r()) {
      r.reset_h = floats(B * H);
      r.rec_h = floats(B * H);
    }
    return r;
  }

  // One direction's recurrence over the whole sequence, writing its part of Y, Y_h and Y_c.
  void recur(const Direction& r, const std::vector<const Tensor*>& in, std::vector<Tensor*>& out, const GemmContext& gemm, const Dims& s) const {
    const int64_t S = s.seq, B = s.batch, H = s.hidden, G = gates_, D = directions_, d = r.d;
    const GateActivation* act = activations_.data() + d * activations_per_direction(cell_);
    if (S * B > 0)
      gemm_f32(gemm, static_cast<int>(S * B), static_cast<int>(G * H), static_cast<int>(s.input), in[0]->ptr<float>(), static_cast<size_t>(s.input),
               r.w.w, r.xw_bias, nullptr, r.xw, static_cast<size_t>(G * H));
    load_state(op_args::optional(in, 5), r.h, s, d);
    if (r.c) load_state(op_args::optional(in, 6), r.c, s, d);

    const Tensor* lens_t = op_args::optional(in, 4);
    const int32_t* lens = lens_t ? lens_t->ptr<int32_t>() : nullptr;
    const int64_t rec_width = split_r() ? 2 * H : G * H;  // columns of the step's first product
    const float* peep = nullptr;
    if (const Tensor* p = cell_ == Cell::Lstm ? op_args::optional(in, 7) : nullptr) peep = p->ptr<float>() + d * 3 * H;
    float* y = wanted(0) ? out[0]->ptr<float>() : nullptr;
    // A step's products are small and there is one per step: split over the threads only when a
    // step holds 2^17 multiply-adds (~5 us on one core); below, the fork-joins cost more than
    // they save. (2^20 while the thread pool waited for every helper to check in: on a loaded
    // machine each per-step fork-join could then wait a time slice, 60 ms a run at the median.)
    // An LSTM layer of hidden 256, batch 1, 50 steps: 1.14 ms on one thread, 0.61 ms on two
    // (onnxruntime 0.67); beside a busy loop 1.22 ms (bench/contention.js).
    const GemmContext step_gemm = B * rec_width * H >= (int64_t(1) << 17) ? gemm : GemmContext{gemm.table, nullptr, 1};
    float* h = r.h;
    float* rec = r.rec;

    for (int64_t step = 0; step < S; ++step) {
      const int64_t t = r.reverse ? S - 1 - step : step;
      auto active = [&](int64_t b) { return !lens || t < lens[b]; };
      int64_t active_rows = 0;
      for (int64_t b = 0; b < B; ++b) active_rows += active(b);
      if (active_rows > 0) {
        gemm_f32(step_gemm, static_cast<int>(B), static_cast<int>(rec_width), static_cast<int>(H), h, static_cast<size_t>(H), r.w.r, r.rec_bias,
                 nullptr, rec, static_cast<size_t>(rec_width));
        const auto xw_row = [&](int64_t b) { return r.xw + (layout_ == 0 ? t * B + b : b * S + t) * G * H; };
        switch (cell_) {
          case Cell::Lstm:
            for (int64_t b = 0; b < B; ++b)
              if (active(b)) lstm_row(act, xw_row(b), rec + b * G * H, peep, r.c + b * H, h + b * H, r.cell_out, H);
            break;
          case Cell::Rnn:
            for (int64_t b = 0; b < B; ++b)
              if (active(b)) rnn_row(act, xw_row(b), rec + b * H, h + b * H, H);
            break;
          case Cell::Gru:
            if (split_r()) {
              for (int64_t b = 0; b < B; ++b) gru_gates(act, xw_row(b), rec + b * 2 * H, h + b * H, r.reset_h + b * H, H, active(b));
              gemm_f32(step_gemm, static_cast<int>(B), static_cast<int>(H), static_cast<int>(H), r.reset_h, static_cast<size_t>(H), r.w.r_h,
                       nullptr, nullptr, r.rec_h, static_cast<size_t>(H));
              for (int64_t b = 0; b < B; ++b)
                if (active(b)) gru_update(act, xw_row(b), rec + b * 2 * H, r.rec_h + b * H, h + b * H, H);
            } else {
              for (int64_t b = 0; b < B; ++b)
                if (active(b)) gru_row_linear_before_reset(act, xw_row(b), rec + b * 3 * H, h + b * H, H);
            }
            break;
        }
      }
      if (y)
        for (int64_t b = 0; b < B; ++b) {
          float* row = y + (layout_ == 0 ? (t * D + d) * B + b : (b * S + t) * D + d) * H;
          if (active(b)) std::memcpy(row, h + b * H, static_cast<size_t>(H) * sizeof(float));
          else std::fill(row, row + H, 0.0f);
        }
    }
    if (wanted(1)) store_state(h, out[1]->ptr<float>(), lens, s, d);
    if (wanted(2)) store_state(r.c, out[2]->ptr<float>(), lens, s, d);
  }

  // Rows of a [directions, batch, H] (layout 0) or [batch, directions, H] (layout 1) state tensor.
  int64_t state_row(const Dims& s, int64_t d, int64_t b) const {
    return (layout_ == 0 ? d * s.batch + b : b * directions_ + d) * s.hidden;
  }

  void load_state(const Tensor* initial, float* state, const Dims& s, int64_t d) const {
    for (int64_t b = 0; b < s.batch; ++b) {
      float* row = state + b * s.hidden;
      if (initial) std::memcpy(row, initial->ptr<float>() + state_row(s, d, b), static_cast<size_t>(s.hidden) * sizeof(float));
      else std::fill(row, row + s.hidden, 0.0f);
    }
  }

  // Y_h / Y_c: the state after each sequence's last step (zeros for an empty sequence).
  void store_state(const float* state, float* dst, const int32_t* lens, const Dims& s, int64_t d) const {
    for (int64_t b = 0; b < s.batch; ++b) {
      float* row = dst + state_row(s, d, b);
      if ((lens && lens[b] == 0) || s.seq == 0) std::fill(row, row + s.hidden, 0.0f);
      else std::memcpy(row, state + b * s.hidden, static_cast<size_t>(s.hidden) * sizeof(float));
    }
  }

  // One LSTM step of one sequence: g holds R's product [i, o, f, c], xw the input projection
  // with both biases; c and h are updated in place. Peepholes meet C before (i, f) and after (o)
  // its update; clip bounds each gate's input after them.
  void lstm_row(const GateActivation* act, const float* xw, float* g, const float* peep, float* c, float* h, float* tmp, int64_t H) const {
    for (int64_t j = 0; j < 4 * H; ++j) g[j] += xw[j];
    float* gi = g;
    float* go = g + H;
    float* gf = g + 2 * H;
    float* gc = g + 3 * H;
    if (peep) {
      for (int64_t j = 0; j < H; ++j) gi[j] += peep[j] * c[j];
      for (int64_t j = 0; j < H; ++j) gf[j] += peep[2 * H + j] * c[j];
      activate(act[0], gi, H);
      activate(act[0], gf, H);
    } else {
      activate(act[0], g, 3 * H);  // i, o and f are adjacent: one span
    }
    activate(act[1], gc, H);
    if (input_forget_)
      for (int64_t j = 0; j < H; ++j) gf[j] = 1.0f - gi[j];
    for (int64_t j = 0; j < H; ++j) c[j] = gf[j] * c[j] + gi[j] * gc[j];
    if (peep) {
      for (int64_t j = 0; j < H; ++j) go[j] += peep[H + j] * c[j];
      activate(act[0], go, H);
    }
    std::memcpy(tmp, c, static_cast<size_t>(H) * sizeof(float));
    act[2].apply(tmp, H);  // h(C): the cell itself is not clipped
    for (int64_t j = 0; j < H; ++j) h[j] = go[j] * tmp[j];
  }

  void rnn_row(const GateActivation* act, const float* xw, float* g, float* h, int64_t H) const {
    for (int64_t j = 0; j < H; ++j) g[j] += xw[j];
    activate(act[0], g, H);
    std::memcpy(h, g, static_cast<size_t>(H) * sizeof(float));
  }

  // GRU without linear_before_reset, first half: z and r from g (R_zr's product) and xw, then
  // r (.) H for R_h's product (zeros for a finished sequence, whose product is not used).
  void gru_gates(const GateActivation* act, const float* xw, float* g, const float* h, float* reset_h, int64_t H, bool active) const {
    if (!active) {
      std::fill(reset_h, reset_h + H, 0.0f);
      return;
    }
    for (int64_t j = 0; j < 2 * H; ++j) g[j] += xw[j];
    activate(act[0], g, 2 * H);
    for (int64_t j = 0; j < H; ++j) reset_h[j] = g[H + j] * h[j];
  }

  // Second half: h~ = g(xw_h + (r (.) H) R_h^T), H = (1 - z) h~ + z H.
  void gru_update(const GateActivation* act, const float* xw, const float* zr, float* hh, float* h, int64_t H) const {
    for (int64_t j = 0; j < H; ++j) hh[j] += xw[2 * H + j];
    activate(act[1], hh, H);
    for (int64_t j = 0; j < H; ++j) h[j] = (1.0f - zr[j]) * hh[j] + zr[j] * h[j];
  }

  // GRU with linear_before_reset: g is H R^T + Rb for all three gates, so h~ = g(xw_h + r (.) g_h).
  void gru_row_linear_before_reset(const GateActivation* act, const float* xw, float* g, float* h, int64_t H) const {
    for (int64_t j = 0; j < 2 * H; ++j) g[j] += xw[j];
    activate(act[0], g, 2 * H);
    float* gh = g + 2 * H;
    for (int64_t j = 0; j < H; ++j) gh[j] = xw[2 * H + j] + g[H + j] * gh[j];
    activate(act[1], gh, H);
    for (int64_t j = 0; j < H; ++j) h[j] = (1.0f - g[j]) * gh[j] + g[j] * h[j];
  }

  NodeDesc node_;
  std::string where_;
  const kernels::KernelTable* table_;
  Cell cell_;
  int64_t gates_;
  int64_t directions_ = 1;
  bool reverse_only_ = false;
  int64_t hidden_ = 0;  // 0: from R's shape
  int64_t layout_ = 0;
  bool has_clip_ = false;
  float clip_ = 0.0f;
  bool input_forget_ = false, linear_before_reset_ = false;
  std::vector<GateActivation> activations_;  // per direction, in the spec's order
  std::vector<std::shared_ptr<void>> packed_w_, packed_r_;  // constant W / R, per direction
  size_t packed_bytes_ = 0;
  std::vector<float> bias_;  // constant B folded: [direction][xw bias, rec bias]
};

std::unique_ptr<Op> make_lstm(const BuildContext& bc) { return std::make_unique<RecurrentOp>(bc, Cell::Lstm); }
std::unique_ptr<Op> make_gru(const BuildContext& bc) { return std::make_unique<RecurrentOp>(bc, Cell::Gru); }
std::unique_ptr<Op> make_rnn(const BuildContext& bc) { return std::make_unique<RecurrentOp>(bc, Cell::Rnn); }

}  // namespace
}  // namespace ops
}  // namespace exec
}  // namespace ternion

TERNION_REGISTER_OP(LSTM, ternion::exec::ops::make_lstm);
TERNION_REGISTER_OP(GRU, ternion::exec::ops::make_gru);
TERNION_REGISTER_OP(RNN, ternion::exec::ops::make_rnn);
