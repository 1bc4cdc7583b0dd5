// Loop (opsets 1-21). Node inputs [M, cond, v_initial..., capture...] (M and cond optional);
// body inputs [iteration_num, cond_in, v..., capture...]; body outputs [cond_out, v_out...,
// scan_out...]; node outputs [v_final..., scan_output...].
//
// It iterates while i < M (when M is given) and the condition holds: cond (true when absent)
// before the first iteration, then each iteration's cond_out. onnxruntime and the ONNX
// reference implementation both stop on cond_out even when cond is absent (the spec's table
// calls it ignored there); this follows them. Carried values feed the next iteration and may
// change shape; scan outputs stack every iteration's value (same dtype and shape each time) on
// a new axis 0. After zero iterations v_final = v_initial and a scan output has a leading 0
// dim followed by the body output's declared dims (unknown ones 0), as onnxruntime gives.
#include <algorithm>
#include <cstring>

#include "exec/graph.h"
#include "exec/ops/control-flow.h"

namespace ternion {
namespace exec {
namespace {

using control_flow::Subgraph;

// A scan output: each iteration's slice appended to one pool block grown by doubling.
struct Stack {
  BlockPool::Block block;
  Tensor first;  // dtype and shape of the first slice (data unused)
  size_t slice_bytes = 0;
  int64_t count = 0;

  void append(const Tensor& t, BlockPool& pool, const std::string& where, size_t k, int64_t iteration) {
    if (count == 0) {
      first = Tensor{t.dtype, t.shape, nullptr};
      slice_bytes = t.bytes();
    } else if (t.dtype != first.dtype || t.shape != first.shape) {
      fail("ERR_SHAPE_MISMATCH", where + ": scan output " + std::to_string(k) + " is " + control_flow::describe(t) + " at iteration " +
                                     std::to_string(iteration) + " but " + control_flow::describe(first) + " before");
    }
    Shape total = first.shape;
    total.insert(total.begin(), count + 1);
    shape_size(total);  // ERR_SHAPE_MISMATCH past 2^40 elements
    const size_t used = static_cast<size_t>(count) * slice_bytes;
    if (!block.mem || used + slice_bytes > block.capacity) {
      BlockPool::Block bigger = pool.take(std::max(used + slice_bytes, 2 * block.capacity));
      if (used) std::memcpy(bigger.mem.get(), block.mem.get(), used);
      pool.give(std::move(block));  // ours alone
      block = std::move(bigger);
    }
    if (slice_bytes) std::memcpy(static_cast<char*>(block.mem.get()) + used, t.data, slice_bytes);
    ++count;
  }

  OwnedTensor finish() {
    OwnedTensor out;
    out.tensor = first;
    out.tensor.shape.insert(out.tensor.shape.begin(), count);
    out.tensor.data = block.mem.get();
    out.block = std::move(block);
    return out;
  }
};

class LoopOp : public control_flow::ControlFlowOp {
 public:
  explicit LoopOp(const BuildContext& bc) : ControlFlowOp(bc, 2, 0), body_(bc, "body", where_) {
    const NodeDesc& n = bc.node;
    if (n.inputs.size() < 2) fail("ERR_MODEL_FORMAT", where_ + ": expected inputs M and cond (-1 when omitted)");
    carried_ = n.inputs.size() - 2 - captures_;
    if (n.outputs.size() < carried_)
      fail("ERR_MODEL_FORMAT", where_ + ": " + std::to_string(carried_) + " carried values but only " + std::to_string(n.outputs.size()) + " outputs");
    scans_ = n.outputs.size() - carried_;
    if (body_.inputs() != n.inputs.size())
      fail("ERR_MODEL_FORMAT", where_ + ": the body has " + std::to_string(body_.inputs()) + " inputs but the node has " +
                                   std::to_string(n.inputs.size()) + " (iteration_num, cond and one per carried value and capture)");
    if (body_.outputs() != 1 + carried_ + scans_)
      fail("ERR_MODEL_FORMAT", where_ + ": the body has " + std::to_string(body_.outputs()) + " outputs, expected " +
                                   std::to_string(1 + carried_ + scans_) + " (cond, " + std::to_string(carried_) + " carried, " +
                                   std::to_string(scans_) + " scan outputs)");
    if (body_.input(0).dtype != DType::I64) fail("ERR_MODEL_FORMAT", where_ + ": the body's iteration_num input must be int64");
    if (body_.input(1).dtype != DType::Bool) fail("ERR_MODEL_FORMAT", where_ + ": the body's cond input must be bool");
    if (body_.output(0).dtype != DType::Bool) fail("ERR_MODEL_FORMAT", where_ + ": the body's cond output must be bool");
    if (bc.values && n.inputs[0] >= 0 && static_cast<size_t>(n.inputs[0]) < bc.values->size() && (*bc.values)[n.inputs[0]].dtype != DType::I64)
      fail("ERR_MODEL_FORMAT", where_ + ": M must be int64, got " + dtype_name((*bc.values)[n.inputs[0]].dtype));
    if (bc.values && n.inputs[1] >= 0 && static_cast<size_t>(n.inputs[1]) < bc.values->size() && (*bc.values)[n.inputs[1]].dtype != DType::Bool)
      fail("ERR_MODEL_FORMAT", where_ + ": cond must be bool, got " + dtype_name((*bc.values)[n.inputs[1]].dtype));
    for (size_t j = 0; j < carried_; ++j) {
      const ValueDesc& v = body_.input(2 + j);
      if (body_.output(1 + j).dtype != v.dtype)
        fail("ERR_MODEL_FORMAT", where_ + ": carried value " + std::to_string(j) + " enters the body as " + dtype_name(v.dtype) +
                                     " but leaves it as " + dtype_name(body_.output(1 + j).dtype));
      check_binding(bc, n.inputs[2 + j], v, "v_initial");
      check_binding(bc, n.outputs[j], v, "v_final");
    }
    for (size_t k = 0; k < scans_; ++k) check_binding(bc, n.outputs[carried_ + k], body_.output(1 + carried_ + k), "scan output");
    for (size_t c = 0; c < captures_; ++c) check_binding(bc, n.inputs[2 + carried_ + c], body_.input(2 + carried_ + c), "capture");
    // iteration_num and cond_in as the body declares them: scalars, or [1].
    iter_shape_ = body_.input(0).ranked && body_.input(0).dims.size() == 1 ? Shape{1} : Shape{};
    cond_shape_ = body_.input(1).ranked && body_.input(1).dims.size() == 1 ? Shape{1} : Shape{};
  }

  void run_dynamic(const std::vector<const OwnedTensor*>& inputs, std::vector<OwnedTensor>& outputs, RunContext& ctx) override {
    BlockPool& pool = *ctx.blocks;
    bool has_max = false;
    int64_t max_trips = 0;
    if (const OwnedTensor* m = inputs[0]) {
      if (m->tensor.dtype != DType::I64) fail("ERR_DTYPE", where_ + ": M is " + dtype_name(m->tensor.dtype) + ", expected int64");
      if (m->tensor.size() != 1) fail("ERR_SHAPE_MISMATCH", where_ + ": M must hold exactly one element, got shape " + shape_str(m->tensor.shape));
      has_max = true;
      max_trips = m->tensor.ptr<int64_t>()[0];
    }
    bool go = true;
    if (const OwnedTensor* c = inputs[1]) {
      if (c->tensor.dtype != DType::Bool) fail("ERR_DTYPE", where_ + ": cond is " + dtype_name(c->tensor.dtype) + ", expected bool");
      go = control_flow::read_condition(c->tensor, where_, "cond");
    }
    // The loop's own references: the initial values are also held by the outer run, later ones
    // only here (or also by a capture, when the body passes one through).
    std::vector<OwnedTensor> carried;
    for (size_t j = 0; j < carried_; ++j) carried.push_back(*inputs[2 + j]);
    std::vector<Stack> stacks(scans_);
    int64_t i = 0;
    for (; (!has_max || i < max_trips) && go; ++i) {
      ctx.check_cancel();
      std::vector<OwnedTensor> args;
      args.reserve(inputs.size());
      args.push_back(scalar(pool, DType::I64, iter_shape_, &i, sizeof i));
      const uint8_t cond_in = 1;  // the loop runs only while the condition holds
      args.push_back(scalar(pool, DType::Bool, cond_shape_, &cond_in, 1));
      // Handed over: a carried value nobody else holds goes back to the pool inside the body run,
      // as soon as its last reader there is done.
      for (auto& v : carried) args.push_back(std::move(v));
      append_captures(inputs, args);
      std::vector<OwnedTensor> results = body_.run(std::move(args), ctx);
      // Messages are built only on failure: a loop may run many short iterations.
      const Tensor& cond_out = results[0].tensor;
      if (cond_out.dtype != DType::Bool || cond_out.size() != 1)
        fail(cond_out.dtype != DType::Bool ? "ERR_DTYPE" : "ERR_SHAPE_MISMATCH",
             where_ + ": the body's cond output is " + control_flow::describe(cond_out) + " at iteration " + std::to_string(i) +
                 ", expected one bool");
      go = cond_out.ptr<uint8_t>()[0] != 0;
      pool.release(std::move(results[0].block));
      for (size_t j = 0; j < carried_; ++j) {
        if (results[1 + j].tensor.dtype != body_.input(2 + j).dtype)
          fail("ERR_DTYPE", where_ + ": carried value " + std::to_string(j) + " is " + dtype_name(results[1 + j].tensor.dtype) +
                                " at iteration " + std::to_string(i) + ", expected " + dtype_name(body_.input(2 + j).dtype));
        carried[j] = std::move(results[1 + j]);
      }
      for (size_t k = 0; k < scans_; ++k) {
        OwnedTensor& slice = results[1 + carried_ + k];
        stacks[k].append(slice.tensor, pool, where_, k, i);
        pool.release(std::move(slice.block));
      }
    }
    for (size_t j = 0; j < carried_; ++j) outputs[j] = std::move(carried[j]);
    for (size_t k = 0; k < scans_; ++k)
      outputs[carried_ + k] = i == 0 ? control_flow::empty_stack(body_.output(1 + carried_ + k), 0) : stacks[k].finish();
  }

  size_t weight_bytes() const override { return body_.weight_bytes(); }

 private:
  // A small tensor in a block of its own: the body may pass it through as an output.
  static OwnedTensor scalar(BlockPool& pool, DType dtype, const Shape& shape, const void* value, size_t bytes) {
    OwnedTensor t;
    t.block = pool.take(bytes);
    std::memcpy(t.block.mem.get(), value, bytes);
    t.tensor = Tensor{dtype, shape, t.block.mem.get()};
    return t;
  }

  Subgraph body_;
  size_t carried_ = 0, scans_ = 0;
  Shape iter_shape_, cond_shape_;
};

std::unique_ptr<Op> make_loop(const BuildContext& bc) { return std::make_unique<LoopOp>(bc); }

}  // namespace

TERNION_REGISTER_OP(Loop, make_loop);

}  // namespace exec
}  // namespace ternion
