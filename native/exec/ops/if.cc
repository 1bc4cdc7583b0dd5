// If (opsets 1-21): runs then_branch or else_branch on the one-element `cond` (bool, or any
// numeric dtype: nonzero is true). Node inputs [cond, capture...]; each branch's inputs are
// exactly the captures. The branches may give outputs of different shapes, even ranks: the
// outputs are whatever the branch that ran returned.
#include "exec/graph.h"
#include "exec/ops/control-flow.h"

namespace ternion {
namespace exec {
namespace {

using control_flow::Subgraph;

class IfOp : public control_flow::ControlFlowOp {
 public:
  explicit IfOp(const BuildContext& bc)
      : ControlFlowOp(bc, 1, 1), then_(bc, "then_branch", where_), else_(bc, "else_branch", where_) {
    const NodeDesc& n = bc.node;
    if (captures_ != n.inputs.size() - 1)
      fail("ERR_MODEL_FORMAT", where_ + ": captures " + std::to_string(captures_) + " but " + std::to_string(n.inputs.size() - 1) +
                                   " inputs follow cond");
    for (const Subgraph* branch : {&then_, &else_}) {
      const char* name = branch == &then_ ? "then_branch" : "else_branch";
      if (branch->inputs() != captures_)
        fail("ERR_MODEL_FORMAT", where_ + ": " + name + " has " + std::to_string(branch->inputs()) + " inputs for " +
                                     std::to_string(captures_) + " captures");
      if (branch->outputs() != n.outputs.size())
        fail("ERR_MODEL_FORMAT", where_ + ": " + name + " has " + std::to_string(branch->outputs()) + " outputs but the node has " +
                                     std::to_string(n.outputs.size()));
      for (size_t i = 0; i < captures_; ++i) check_binding(bc, n.inputs[1 + i], branch->input(i), "capture");
      for (size_t o = 0; o < n.outputs.size(); ++o) check_binding(bc, n.outputs[o], branch->output(o), "output");
    }
  }

  void run_dynamic(const std::vector<const OwnedTensor*>& inputs, std::vector<OwnedTensor>& outputs, RunContext& ctx) override {
    if (inputs.empty() || !inputs[0]) fail("ERR_MODEL_FORMAT", where_ + ": missing input cond");
    const Subgraph& branch = control_flow::read_condition(inputs[0]->tensor, where_, "cond") ? then_ : else_;
    std::vector<OwnedTensor> args;
    append_captures(inputs, args);
    std::vector<OwnedTensor> results = branch.run(std::move(args), ctx);
    for (size_t o = 0; o < outputs.size(); ++o) outputs[o] = std::move(results[o]);
  }

  size_t weight_bytes() const override { return then_.weight_bytes() + else_.weight_bytes(); }

 private:
  Subgraph then_, else_;
};

std::unique_ptr<Op> make_if(const BuildContext& bc) { return std::make_unique<IfOp>(bc); }

}  // namespace

TERNION_REGISTER_OP(If, make_if);

}  // namespace exec
}  // namespace ternion
