// The parts If, Loop and Scan share (control-flow.h).
#include "exec/ops/control-flow.h"

namespace ternion {
namespace exec {
namespace control_flow {

Subgraph::Subgraph(const BuildContext& bc, const char* attr, const std::string& where)
    : where_(where + " " + attr) {
  std::shared_ptr<const GraphDesc> g = bc.node.get_graph(attr);
  if (!g) fail("ERR_MODEL_FORMAT", where + ": missing graph attribute '" + attr + "'");
  try {
    // A copy: the executor frees the constants it packed, and the plan's GraphDesc goes with the
    // node's attributes once the outer graph is built.
    exec_ = std::make_unique<Executor>(*g, bc.table);
  } catch (const ExecError& e) {
    throw ExecError(e.code, where_ + ": " + e.what());
  }
}

std::vector<OwnedTensor> Subgraph::run(std::vector<OwnedTensor> inputs, const RunContext& ctx) const {
  try {
    return exec_->run_nested(std::move(inputs), ctx);
  } catch (const ExecError& e) {
    if (e.code == "ERR_ABORTED") throw;
    throw ExecError(e.code, where_ + ": " + e.what());
  }
}

ControlFlowOp::ControlFlowOp(const BuildContext& bc, size_t fixed, size_t required) : where_(bc.node.where()) {
  const NodeDesc& n = bc.node;
  const int64_t captures = n.get_int("captures", 0);
  if (captures < 0 || static_cast<uint64_t>(captures) + fixed > n.inputs.size())
    fail("ERR_MODEL_FORMAT", where_ + ": captures " + std::to_string(captures) + " does not fit its " + std::to_string(n.inputs.size()) + " inputs");
  captures_ = static_cast<size_t>(captures);
  if (n.inputs.size() < required) fail("ERR_MODEL_FORMAT", where_ + ": expected at least " + std::to_string(required) + " inputs");
  for (size_t i = 0; i < required; ++i)
    if (n.inputs[i] < 0) fail("ERR_MODEL_FORMAT", where_ + ": input " + std::to_string(i) + " is required");
  for (size_t i = fixed; i < n.inputs.size(); ++i)
    if (n.inputs[i] < 0) fail("ERR_MODEL_FORMAT", where_ + ": input " + std::to_string(i) + " is passed to the subgraph and cannot be omitted");
}

void ControlFlowOp::infer(const std::vector<const Tensor*>&, std::vector<Tensor>&) {
  fail("ERR_INTERNAL", where_ + ": infer() on an op with dynamic outputs");
}

void ControlFlowOp::run(const std::vector<const Tensor*>&, std::vector<Tensor*>&, RunContext&) {
  fail("ERR_INTERNAL", where_ + ": run() on an op with dynamic outputs");
}

void ControlFlowOp::check_binding(const BuildContext& bc, int id, const ValueDesc& sub, const std::string& what) const {
  if (!bc.values || id < 0 || static_cast<size_t>(id) >= bc.values->size()) return;
  const ValueDesc& outer = (*bc.values)[id];
  if (outer.dtype != sub.dtype)
    fail("ERR_MODEL_FORMAT", where_ + ": " + what + " '" + outer.name + "' is " + dtype_name(outer.dtype) + " but the subgraph's '" +
                                 sub.name + "' is " + dtype_name(sub.dtype));
}

void ControlFlowOp::append_captures(const std::vector<const OwnedTensor*>& inputs, std::vector<OwnedTensor>& args) const {
  for (size_t i = inputs.size() - captures_; i < inputs.size(); ++i) {
    if (!inputs[i]) fail("ERR_INTERNAL", where_ + ": capture " + std::to_string(i) + " is missing");
    args.push_back(*inputs[i]);  // a new reference: the outer run still holds the value
  }
}

bool read_condition(const Tensor& t, const std::string& where, const char* what) {
  if (t.size() != 1)
    fail("ERR_SHAPE_MISMATCH", where + ": " + what + " must hold exactly one element, got shape " + shape_str(t.shape));
  switch (t.dtype) {
    case DType::F32: return t.ptr<float>()[0] != 0.0f;
    case DType::I32: return t.ptr<int32_t>()[0] != 0;
    case DType::I64: return t.ptr<int64_t>()[0] != 0;
    case DType::I8: case DType::U8: case DType::Bool: return t.ptr<uint8_t>()[0] != 0;
  }
  return false;
}

std::string describe(const Tensor& t) { return std::string(dtype_name(t.dtype)) + " " + shape_str(t.shape); }

OwnedTensor empty_stack(const ValueDesc& slice, int64_t axis) {
  OwnedTensor out;
  out.tensor.dtype = slice.dtype;
  if (!slice.ranked) {
    out.tensor.shape = {0};
    return out;
  }
  for (int64_t d : slice.dims) out.tensor.shape.push_back(d < 0 ? 0 : d);
  out.tensor.shape.insert(out.tensor.shape.begin() + axis, 0);
  return out;  // no elements: no storage
}

}  // namespace control_flow
}  // namespace exec
}  // namespace ternion
