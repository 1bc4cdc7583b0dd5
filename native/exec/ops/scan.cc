// Scan (opsets 9-21; opset 8's batched form with sequence_lens is refused). Node inputs
// [state_init..., scan_in..., capture...] with num_scan_inputs scan inputs; body inputs
// [state..., scan_in_slice..., capture...]; body outputs [state_out..., scan_out_slice...]; node
// outputs [state_final..., scan_out...].
//
// Iteration t reads slice t of every scan input along its scan_input_axes entry (from the end
// when its scan_input_directions entry is 1); all scan inputs have the same length there. Each
// iteration's scan_out slice (the same dtype and shape every time) is written at position t of
// a new axis (scan_output_axes; from the end with scan_output_directions 1). With length 0 the
// states pass through and the scan outputs are empty, shaped from the body outputs' declared
// dims as Loop does (onnxruntime refuses a zero-length Scan).
#include <cstring>

#include "exec/graph.h"
#include "exec/ops/control-flow.h"
#include "exec/ops/op-args.h"

namespace ternion {
namespace exec {
namespace {

using control_flow::Subgraph;

// A tensor seen as [outer, length, inner] around one axis (elements of `bytes` each).
struct AxisView {
  int64_t outer = 1, length = 0, inner = 1;
  size_t bytes = 0;
  AxisView(const Shape& s, size_t axis, DType dtype)
      : outer(op_args::dims_product(s, 0, axis)), length(s[axis]), inner(op_args::dims_product(s, axis + 1, s.size())),
        bytes(dtype_size(dtype)) {}
  size_t row() const { return static_cast<size_t>(inner) * bytes; }  // one [inner] run
};

class ScanOp : public control_flow::ControlFlowOp {
 public:
  explicit ScanOp(const BuildContext& bc) : ControlFlowOp(bc, 0, 0), body_(bc, "body", where_) {
    const NodeDesc& n = bc.node;
    const int64_t m = n.get_int("num_scan_inputs", -1);
    if (m < 1 || static_cast<uint64_t>(m) + captures_ > n.inputs.size())
      fail("ERR_MODEL_FORMAT", where_ + ": num_scan_inputs " + std::to_string(m) + " does not fit its " + std::to_string(n.inputs.size()) +
                                   " inputs and " + std::to_string(captures_) + " captures");
    scan_inputs_ = static_cast<size_t>(m);
    states_ = n.inputs.size() - captures_ - scan_inputs_;
    if (n.outputs.size() < states_)
      fail("ERR_MODEL_FORMAT", where_ + ": " + std::to_string(states_) + " states but only " + std::to_string(n.outputs.size()) + " outputs");
    scan_outputs_ = n.outputs.size() - states_;
    if (body_.inputs() != n.inputs.size())
      fail("ERR_MODEL_FORMAT", where_ + ": the body has " + std::to_string(body_.inputs()) + " inputs but the node has " + std::to_string(n.inputs.size()));
    if (body_.outputs() != n.outputs.size())
      fail("ERR_MODEL_FORMAT", where_ + ": the body has " + std::to_string(body_.outputs()) + " outputs but the node has " + std::to_string(n.outputs.size()));
    in_axes_ = list(n, "scan_input_axes", scan_inputs_);
    in_reverse_ = list(n, "scan_input_directions", scan_inputs_);
    out_axes_ = list(n, "scan_output_axes", scan_outputs_);
    out_reverse_ = list(n, "scan_output_directions", scan_outputs_);
    for (int64_t d : in_reverse_) check_direction(d, "scan_input_directions");
    for (int64_t d : out_reverse_) check_direction(d, "scan_output_directions");
    for (size_t j = 0; j < states_; ++j) {
      if (body_.output(j).dtype != body_.input(j).dtype)
        fail("ERR_MODEL_FORMAT", where_ + ": state " + std::to_string(j) + " enters the body as " + dtype_name(body_.input(j).dtype) +
                                     " but leaves it as " + dtype_name(body_.output(j).dtype));
      check_binding(bc, n.inputs[j], body_.input(j), "initial state");
      check_binding(bc, n.outputs[j], body_.output(j), "final state");
    }
    for (size_t s = 0; s < scan_inputs_; ++s) check_binding(bc, n.inputs[states_ + s], body_.input(states_ + s), "scan input");
    for (size_t k = 0; k < scan_outputs_; ++k) check_binding(bc, n.outputs[states_ + k], body_.output(states_ + k), "scan output");
    for (size_t c = 0; c < captures_; ++c) {
      const size_t i = states_ + scan_inputs_ + c;
      check_binding(bc, n.inputs[i], body_.input(i), "capture");
    }
  }

  void run_dynamic(const std::vector<const OwnedTensor*>& inputs, std::vector<OwnedTensor>& outputs, RunContext& ctx) override {
    BlockPool& pool = *ctx.blocks;
    // The scan inputs around their axes, all of one length.
    std::vector<AxisView> in_views;
    std::vector<Shape> slice_shapes;
    for (size_t s = 0; s < scan_inputs_; ++s) {
      const Tensor& x = inputs[states_ + s]->tensor;
      const int64_t rank = static_cast<int64_t>(x.shape.size());
      if (rank == 0) fail("ERR_SHAPE_MISMATCH", where_ + ": scan input " + std::to_string(s) + " is a scalar, with no axis to scan");
      const size_t axis = static_cast<size_t>(op_args::normalize_axis(in_axes_[s], rank, where_));
      in_views.emplace_back(x.shape, axis, x.dtype);
      if (in_views[s].length != in_views[0].length)
        fail("ERR_SHAPE_MISMATCH", where_ + ": scan input " + std::to_string(s) + " has length " + std::to_string(in_views[s].length) +
                                       " along axis " + std::to_string(axis) + " but scan input 0 has " + std::to_string(in_views[0].length));
      Shape slice = x.shape;
      slice.erase(slice.begin() + axis);
      slice_shapes.push_back(std::move(slice));
    }
    const int64_t length = in_views[0].length;

    std::vector<OwnedTensor> states;
    for (size_t j = 0; j < states_; ++j) states.push_back(*inputs[j]);
    // Allocated once the first iteration tells the slices' shapes.
    std::vector<OwnedTensor> stacked(scan_outputs_);
    std::vector<AxisView> out_views;
    std::vector<Tensor> firsts;  // each scan output's slice at iteration 0 (dtype and shape)
    for (int64_t t = 0; t < length; ++t) {
      ctx.check_cancel();
      std::vector<OwnedTensor> args;
      args.reserve(inputs.size());
      for (auto& v : states) args.push_back(std::move(v));  // handed over, as Loop's carried values
      for (size_t s = 0; s < scan_inputs_; ++s) {
        const int64_t at = in_reverse_[s] ? length - 1 - t : t;
        args.push_back(slice(*inputs[states_ + s], in_views[s], slice_shapes[s], at, pool));
      }
      append_captures(inputs, args);
      std::vector<OwnedTensor> results = body_.run(std::move(args), ctx);
      for (size_t j = 0; j < states_; ++j) {
        if (results[j].tensor.dtype != body_.input(j).dtype)
          fail("ERR_DTYPE", where_ + ": state " + std::to_string(j) + " is " + dtype_name(results[j].tensor.dtype) + " at iteration " +
                                std::to_string(t) + ", expected " + dtype_name(body_.input(j).dtype));
        states[j] = std::move(results[j]);
      }
      for (size_t k = 0; k < scan_outputs_; ++k) {
        OwnedTensor& part = results[states_ + k];
        if (t == 0) {
          out_views.push_back(allocate(part.tensor, k, length, pool, stacked[k]));
          firsts.push_back(Tensor{part.tensor.dtype, part.tensor.shape, nullptr});
        } else if (part.tensor.dtype != firsts[k].dtype || part.tensor.shape != firsts[k].shape) {
          fail("ERR_SHAPE_MISMATCH", where_ + ": scan output " + std::to_string(k) + " is " + control_flow::describe(part.tensor) +
                                         " at iteration " + std::to_string(t) + " but was " + control_flow::describe(firsts[k]) + " at iteration 0");
        }
        const AxisView& v = out_views[k];
        const int64_t at = out_reverse_[k] ? length - 1 - t : t;
        const char* src = static_cast<const char*>(part.tensor.data);
        char* dst = static_cast<char*>(stacked[k].tensor.data);
        const size_t row = v.row();
        if (row)
          for (int64_t o = 0; o < v.outer; ++o) std::memcpy(dst + (o * v.length + at) * row, src + o * row, row);
        pool.release(std::move(part.block));
      }
    }
    for (size_t j = 0; j < states_; ++j) outputs[j] = std::move(states[j]);
    for (size_t k = 0; k < scan_outputs_; ++k) {
      if (length > 0) {
        outputs[states_ + k] = std::move(stacked[k]);
        continue;
      }
      const ValueDesc& slice = body_.output(states_ + k);
      const int64_t axis = slice.ranked ? op_args::normalize_axis(out_axes_[k], static_cast<int64_t>(slice.dims.size()) + 1, where_) : 0;
      outputs[states_ + k] = control_flow::empty_stack(slice, axis);
    }
  }

  size_t weight_bytes() const override { return body_.weight_bytes(); }

 private:
  // An attribute list of n entries, zeros when absent.
  std::vector<int64_t> list(const NodeDesc& n, const char* key, size_t count) const {
    std::vector<int64_t> v = n.get_ints(key, std::vector<int64_t>(count, 0));
    if (v.size() != count)
      fail("ERR_MODEL_FORMAT", where_ + ": " + key + " has " + std::to_string(v.size()) + " entries, expected " + std::to_string(count));
    return v;
  }
  void check_direction(int64_t d, const char* key) const {
    if (d != 0 && d != 1) fail("ERR_MODEL_FORMAT", where_ + ": " + key + " entries must be 0 or 1, got " + std::to_string(d));
  }

  // Slice `at` of a scan input: a view into it when the slice is contiguous (sharing its block),
  // else a gathered copy in a block of its own.
  static OwnedTensor slice(const OwnedTensor& x, const AxisView& v, const Shape& shape, int64_t at, BlockPool& pool) {
    OwnedTensor s;
    s.tensor.dtype = x.tensor.dtype;
    s.tensor.shape = shape;
    const size_t row = v.row();
    const char* src = static_cast<const char*>(x.tensor.data);
    if (v.outer == 1) {
      s.tensor.data = row ? const_cast<char*>(src) + at * row : nullptr;
      s.block = x.block;
      return s;
    }
    s.block = pool.take(v.outer * row);
    s.tensor.data = s.block.mem.get();
    char* dst = static_cast<char*>(s.tensor.data);
    if (row)
      for (int64_t o = 0; o < v.outer; ++o) std::memcpy(dst + o * row, src + (o * v.length + at) * row, row);
    return s;
  }

  // Scan output k's tensor, from the first slice: the slice's shape with `length` inserted at
  // its axis. Returns the output seen around that axis.
  AxisView allocate(const Tensor& first, size_t k, int64_t length, BlockPool& pool, OwnedTensor& out) const {
    const int64_t rank = static_cast<int64_t>(first.shape.size());
    const size_t axis = static_cast<size_t>(op_args::normalize_axis(out_axes_[k], rank + 1, where_));
    out.tensor.dtype = first.dtype;
    out.tensor.shape = first.shape;
    out.tensor.shape.insert(out.tensor.shape.begin() + axis, length);
    out.block = pool.take(out.tensor.bytes());
    out.tensor.data = out.block.mem.get();
    return AxisView(out.tensor.shape, axis, first.dtype);
  }

  Subgraph body_;
  size_t states_ = 0, scan_inputs_ = 0, scan_outputs_ = 0;
  std::vector<int64_t> in_axes_, in_reverse_, out_axes_, out_reverse_;
};

std::unique_ptr<Op> make_scan(const BuildContext& bc) {
  // Refused before its body is built: opset 8's body is batched too, and could fail first.
  const NodeDesc& n = bc.node;
  if (n.opset > 0 && n.opset < 9)
    fail("ERR_UNSUPPORTED_OP", n.where() + " (opset " + std::to_string(n.opset) +
                                   "): the batched Scan of opset 8 (with sequence_lens) is not supported; re-export the model with opset 9 or later");
  return std::make_unique<ScanOp>(bc);
}

}  // namespace

TERNION_REGISTER_OP(Scan, make_scan);

}  // namespace exec
}  // namespace ternion
