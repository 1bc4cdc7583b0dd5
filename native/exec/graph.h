// The graph executor's contract: a model as plain C++ data (GraphDesc, built by addon/ from the
// plan lib/session compiles), operators that implement one ONNX op each (exec/ops/*.cc), and the
// Executor that runs them in order over an arena of reusable buffers.
//
// Nothing here knows about N-API. Errors are ExecError exceptions with a stable code, which
// addon/ turns into TernionError.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "exec/gemm.h"
#include "kernels/kernels.h"

namespace ternion {
namespace exec {

enum class DType : int32_t { F32 = 0, U8 = 1, I8 = 2, I32 = 3, I64 = 4, Bool = 5 };

size_t dtype_size(DType t);
const char* dtype_name(DType t);

// A failure with a code from lib/errors.ts (ERR_SHAPE_MISMATCH, ERR_UNSUPPORTED_OP, ...).
struct ExecError : std::runtime_error {
  std::string code;
  ExecError(std::string c, const std::string& message) : std::runtime_error(message), code(std::move(c)) {}
};
[[noreturn]] void fail(const char* code, const std::string& message);

using Shape = std::vector<int64_t>;
int64_t shape_size(const Shape& s);  // product, checked against overflow (ERR_SHAPE_MISMATCH)
std::string shape_str(const Shape& s);

// A tensor owned by the executor: constants (initializers) and run-time values alike.
struct Tensor {
  DType dtype = DType::F32;
  Shape shape;
  void* data = nullptr;  // 64-byte aligned; null only for empty tensors
  int64_t size() const { return shape_size(shape); }
  size_t bytes() const { return static_cast<size_t>(size()) * dtype_size(dtype); }
  template <typename T> T* ptr() { return static_cast<T*>(data); }
  template <typename T> const T* ptr() const { return static_cast<const T*>(data); }
};

// Owned storage for constants (initializers, Constant nodes).
struct HostTensor {
  DType dtype = DType::F32;
  Shape shape;
  std::shared_ptr<void> storage;  // 64-byte aligned, freed with the last owner
  Tensor view() const { return Tensor{dtype, shape, storage.get()}; }
};
HostTensor make_host_tensor(DType dtype, const Shape& shape);  // zero-filled

struct GraphDesc;

struct Attr {
  enum Kind { Int, Float, Ints, Floats, String, Strings, TensorValue, Graph } kind = Int;
  int64_t i = 0;
  float f = 0;
  std::vector<int64_t> ints;
  std::vector<float> floats;
  std::string s;
  std::vector<std::string> strings;
  HostTensor t;
  std::shared_ptr<const GraphDesc> g;  // a subgraph (If's branches, Loop's and Scan's body)
};

// One node: op type (ONNX name, or a ternion fused/quantized op), its attributes, and value ids
// of its inputs (-1 for an omitted optional input) and outputs.
using AttrMap = std::map<std::string, Attr>;

struct NodeDesc {
  std::string op;
  std::string name;
  int opset = 0;  // the opset of the node's domain, for ops whose semantics changed
  // Read while ops are built, then let go (release_attrs): a session keeps no attribute maps (a
  // map entry costs ~200 bytes: half a MB for a MobileNet's convolutions). Shared, never changed
  // after parsing, so copies cost nothing; null once released, and a read then is ERR_INTERNAL.
  std::shared_ptr<const AttrMap> attrs = std::make_shared<const AttrMap>();
  std::vector<int> inputs;
  std::vector<int> outputs;

  bool has(const std::string& key) const;
  // Ops that keep a copy of their node (for messages, inputs and outputs) call this once their
  // constructor has read every attribute; the executor does it for the graph's own copy.
  void release_attrs() { attrs.reset(); }
  int64_t get_int(const std::string& key, int64_t dflt) const;
  float get_float(const std::string& key, float dflt) const;
  std::vector<int64_t> get_ints(const std::string& key, const std::vector<int64_t>& dflt = {}) const;
  std::vector<float> get_floats(const std::string& key, const std::vector<float>& dflt = {}) const;
  std::string get_string(const std::string& key, const std::string& dflt) const;
  std::vector<std::string> get_strings(const std::string& key, const std::vector<std::string>& dflt = {}) const;
  const HostTensor* get_tensor(const std::string& key) const;
  std::shared_ptr<const GraphDesc> get_graph(const std::string& key) const;  // null when absent
  std::string where() const;  // "Conv node 'conv1'" for messages
};

struct ValueDesc {
  std::string name;
  DType dtype = DType::F32;
  // The static shape the plan declares, when it does (dims[i] < 0: unknown). Only a Loop's
  // body outputs read it: their empty scan outputs after zero iterations take it.
  bool ranked = false;
  Shape dims;
};

struct GraphDesc {
  std::vector<ValueDesc> values;
  std::map<int, HostTensor> constants;  // value id -> data
  std::vector<NodeDesc> nodes;          // in execution (topological) order
  std::vector<int> inputs, outputs;
};

// The memory blocks of one run (activations and scratch), recycled best-fit: a request takes
// the smallest free block that holds it without wasting more than half of it. Blocks freed by
// a run become the next run's starting stock (Executor::run), so a session's steady state runs
// on one activation arena instead of faulting fresh pages in at every run.
class BlockPool {
 public:
  struct Block {
    std::shared_ptr<void> mem;
    size_t capacity = 0;
  };
  Block take(size_t bytes);
  void give(Block b);  // b must not be referenced elsewhere
  // Gives b back when nothing else references it (a value whose last holder lets go); else
  // only drops this reference.
  void release(Block b);
  // Blocks given back during this run; the stock a run started with and did not use is dropped.
  std::multimap<size_t, std::shared_ptr<void>> released();
  void stock(std::multimap<size_t, std::shared_ptr<void>> blocks) { stock_ = std::move(blocks); }

 private:
  static bool take_from(std::multimap<size_t, std::shared_ptr<void>>& from, size_t bytes, Block& out);
  std::multimap<size_t, std::shared_ptr<void>> free_;   // given back during this run
  std::multimap<size_t, std::shared_ptr<void>> stock_;  // left by an earlier run
};

// A run-time value with the pool block holding its data: block.mem is empty when the run does
// not own the storage (feeds, constants), and may be shared with other values (views, a
// subgraph output that is one of its inputs). A block goes back to the pool when its last
// holder releases it (BlockPool::release).
struct OwnedTensor {
  Tensor tensor;
  BlockPool::Block block;
};

// What an op sees while it runs: kernels, threads, and scratch memory for this run.
struct RunContext {
  GemmContext gemm;
  BlockPool* blocks = nullptr;  // where scratch comes from (null: plain allocations)
  // The run's cancel flag (AbortSignal), or null; subgraph runs and loop iterations check it.
  const int32_t* cancel = nullptr;
  int depth = 0;  // 0 for the session's graph, 1 + the parent's for a subgraph's run
  // Scratch memory valid until the op returns (im2col buffers, packed activations).
  void* scratch(size_t bytes);
  std::vector<BlockPool::Block> scratch_blocks;
  size_t scratch_in_use = 0;
  // ERR_ABORTED once the flag reads non-zero (written by JavaScript on the main thread).
  void check_cancel() const;
};

// What an op sees when it is built: its node, the constant inputs (null when not constant),
// and the kernel table it should pack weights for.
struct BuildContext {
  const NodeDesc& node;
  std::vector<const HostTensor*> constant_inputs;  // parallel to node.inputs
  const kernels::KernelTable* table;
  const std::vector<ValueDesc>* values = nullptr;  // the graph's values (node ids index it)
  const HostTensor* constant(size_t i) const {
    return i < constant_inputs.size() ? constant_inputs[i] : nullptr;
  }
};

// An op is built once and then shared by every run, including concurrent ones: it must keep no
// per-run state in members. infer() may read the data of its inputs (they are computed before
// it is called), which shape-like inputs (Reshape's shape, Slice's starts...) rely on.
class Op {
 public:
  virtual ~Op() = default;
  // Output dtypes and shapes from the inputs' (inputs[i] null for an omitted optional input).
  // Must throw ExecError (ERR_SHAPE_MISMATCH / ERR_DTYPE) for inputs it cannot handle.
  virtual void infer(const std::vector<const Tensor*>& inputs, std::vector<Tensor>& outputs) = 0;
  // Computes the outputs, whose storage the executor allocated from infer()'s shapes.
  virtual void run(const std::vector<const Tensor*>& inputs, std::vector<Tensor*>& outputs,
                   RunContext& ctx) = 0;
  // Output i may share input j's buffer (Reshape, Flatten, Squeeze...): return j, else -1.
  virtual int alias_of(int output) const { return -1; }
  // True when the op copied or packed at build everything it needs from constant input i, and
  // at run reads only that input's dtype and shape. When every reader of a constant says so,
  // the executor frees the constant's data (a session then holds packed weights only).
  virtual bool keeps_copy_of(size_t input) const { return false; }
  // Bytes of weights the op holds from build on (packed blocks, copied constants): a session's
  // packed weight memory is the sum over its ops.
  virtual size_t weight_bytes() const { return 0; }
  // Ops whose output shapes are known only once they ran (If, Loop, Scan run subgraphs): the
  // executor calls run_dynamic() instead of infer() and run(), allocating nothing for them.
  virtual bool dynamic_outputs() const { return false; }
  // inputs parallel to the node's (null for an omitted one), with their blocks so that an output
  // may be an input passed through. Fills outputs (sized to the node's) with tensors whose
  // storage is a block taken from ctx.blocks, shared with an input, or not owned (a constant).
  virtual void run_dynamic(const std::vector<const OwnedTensor*>& inputs, std::vector<OwnedTensor>& outputs,
                           RunContext& ctx);
};

using OpFactory = std::function<std::unique_ptr<Op>(const BuildContext&)>;

// The registry of ops by name; exec/ops/*.cc register themselves through OpRegistrar.
const std::map<std::string, OpFactory>& op_registry();
struct OpRegistrar {
  OpRegistrar(const char* name, OpFactory factory);
};
#define TERNION_REGISTER_OP(NAME, FACTORY) \
  static ::ternion::exec::OpRegistrar ternion_op_registrar_##NAME(#NAME, FACTORY)

// Builds ops once (packing weights) and runs the graph. run() may be called from several
// threads at once: all mutable state of a run lives in the run.
class Executor {
 public:
  Executor(GraphDesc graph, const kernels::KernelTable* table);
  // inputs parallel to graph.inputs; returns tensors parallel to graph.outputs, each owning
  // its storage through `keep`.
  // `cancel` (optional): when it reads non-zero between two ops, the run stops and throws
  // ExecError ERR_ABORTED; everything it allocated is freed on the way out.
  std::vector<Tensor> run(const std::vector<Tensor>& inputs, ThreadPool* pool, int threads,
                          std::vector<BlockPool::Block>& keep, const int32_t* cancel = nullptr) const;
  // Hands a run's output blocks back once the caller has copied the outputs out: they join the
  // arena the next run starts from. Without this every run's outputs were fresh allocations,
  // whose pages the first op writing them faulted in (a 256 KB output: 64 faults per run).
  void recycle(std::vector<BlockPool::Block>& keep) const;
  // A run inside another (a subgraph of a control-flow op), on the parent's pool, threads and
  // cancel flag (ctx.blocks must be set). inputs parallel to graph.inputs, their dtypes checked;
  // the run takes over the references it is given, so a block nobody else holds goes back to the
  // pool once its last reader is done. Returns the outputs parallel to graph.outputs: blocks of
  // the pool, an input's block passed through, or no block for a constant (the executor keeps
  // it alive). Scratch and intermediates go back to the pool.
  std::vector<OwnedTensor> run_nested(std::vector<OwnedTensor> inputs, const RunContext& ctx) const;
  const GraphDesc& graph() const { return graph_; }
  size_t packed_bytes() const { return packed_bytes_; }
  size_t arena_bytes() const;  // blocks kept for the next run (the activation arena)
  size_t constant_bytes() const;  // data of the constants still held (not freed after packing)

 private:
  GraphDesc graph_;
  const kernels::KernelTable* table_;
  std::vector<std::unique_ptr<Op>> ops_;
  std::vector<int> last_use_;  // value id -> index of the last node reading it (-1: none)
  // run() and run_nested(): one pass over the nodes with ctx.blocks as the arena.
  std::vector<OwnedTensor> run_graph(std::vector<OwnedTensor> inputs, RunContext& ctx) const;
  size_t packed_bytes_ = 0;
  // Blocks the last finished run released: the next run's arena (runs may overlap: each takes
  // the whole stock or nothing).
  mutable std::mutex arena_mu_;
  mutable std::multimap<size_t, std::shared_ptr<void>> arena_;
};

}  // namespace exec
}  // namespace ternion
