// What the control-flow ops (if.cc, loop.cc, scan.cc) share: a subgraph attribute built once
// into its own Executor, the checks binding node values to subgraph values, and the handling
// of values that move between the outer run and the subgraph's runs.
//
// The plan's contract: a subgraph is a complete plan with its own value ids; the outer values
// it reads ("captures") are the node's last `captures` inputs, bound by position to the
// subgraph's last inputs. Subgraph runs share the outer run's BlockPool, so their
// intermediates are recycled and their outputs are ordinary pool blocks (or an input's block
// passed through, or a constant of the subgraph, held by its executor).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "exec/graph.h"

namespace ternion {
namespace exec {
namespace control_flow {

// A graph attribute, built when the op is built (weights packed once) and shared by every run.
class Subgraph {
 public:
  Subgraph(const BuildContext& bc, const char* attr, const std::string& where);

  size_t inputs() const { return exec_->graph().inputs.size(); }
  size_t outputs() const { return exec_->graph().outputs.size(); }
  const ValueDesc& input(size_t i) const { return exec_->graph().values[exec_->graph().inputs[i]]; }
  const ValueDesc& output(size_t i) const { return exec_->graph().values[exec_->graph().outputs[i]]; }
  // Runs the subgraph inside the run of ctx (its pool, threads, cancel flag). Errors from
  // inside name this subgraph and its node; ERR_ABORTED passes unchanged.
  std::vector<OwnedTensor> run(std::vector<OwnedTensor> inputs, const RunContext& ctx) const;
  // What the subgraph holds for the session's life: packed weights and constants.
  size_t weight_bytes() const { return exec_->packed_bytes() + exec_->constant_bytes(); }

 private:
  std::string where_;  // "Loop node 'l' body"
  std::unique_ptr<Executor> exec_;
};

// The base of If, Loop and Scan: outputs known only once the subgraph ran, and the `captures`
// attribute read and checked against the node's inputs (`fixed` leading inputs are not
// captures; the inputs from `fixed` on must all be present).
class ControlFlowOp : public Op {
 public:
  ControlFlowOp(const BuildContext& bc, size_t fixed, size_t required);
  bool dynamic_outputs() const override { return true; }
  void infer(const std::vector<const Tensor*>&, std::vector<Tensor>&) override;
  void run(const std::vector<const Tensor*>&, std::vector<Tensor*>&, RunContext&) override;

 protected:
  // ERR_MODEL_FORMAT unless node value `id` (of the outer graph) has the subgraph value's dtype.
  void check_binding(const BuildContext& bc, int id, const ValueDesc& sub, const std::string& what) const;
  // The captures, with new references to their blocks, appended to a subgraph run's inputs.
  void append_captures(const std::vector<const OwnedTensor*>& inputs, std::vector<OwnedTensor>& args) const;

  std::string where_;
  size_t captures_ = 0;
};

// Whether a one-element condition is true (any dtype: nonzero is true); ERR_SHAPE_MISMATCH
// for another element count.
bool read_condition(const Tensor& t, const std::string& where, const char* what);

// A dtype and shape to compare the slices each iteration gives, and to name in messages.
std::string describe(const Tensor& t);

// An empty tensor for a scan output no iteration produced: `axis` of length 0 inserted in the
// subgraph output's declared shape (unknown dims 0, as onnxruntime gives), or [0] when the
// plan declares no shape.
OwnedTensor empty_stack(const ValueDesc& slice, int64_t axis);

}  // namespace control_flow
}  // namespace exec
}  // namespace ternion
