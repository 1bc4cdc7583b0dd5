#include "exec/graph.h"
#include "exec/host-memory.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <chrono>
#include <cstdio>
#include <map>
#include <unordered_map>

namespace ternion {
namespace exec {

size_t dtype_size(DType t) {
  switch (t) {
    case DType::F32: case DType::I32: return 4;
    case DType::I64: return 8;
    default: return 1;
  }
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "float32";
    case DType::U8: return "uint8";
    case DType::I8: return "int8";
    case DType::I32: return "int32";
    case DType::I64: return "int64";
    case DType::Bool: return "bool";
  }
  return "?";
}

void fail(const char* code, const std::string& message) { throw ExecError(code, message); }

int64_t shape_size(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) {
    if (d < 0) fail("ERR_SHAPE_MISMATCH", "negative dimension in shape " + shape_str(s));
    if (d != 0 && n > (int64_t(1) << 40) / d) fail("ERR_SHAPE_MISMATCH", "shape " + shape_str(s) + " holds more than 2^40 elements");
    n *= d;
  }
  return n;
}

std::string shape_str(const Shape& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

namespace {
// Activation blocks come from malloc: they are reused run after run (BlockPool), and a run's
// outputs are new blocks that a mapping would fault in page by page at every run.
std::shared_ptr<void> aligned_block(size_t bytes) {
  std::shared_ptr<void> p = allocate_heap_block(bytes, false);
  if (!p) fail("ERR_INTERNAL", "out of memory allocating " + std::to_string(bytes) + " bytes");
  return p;
}
}  // namespace

HostTensor make_host_tensor(DType dtype, const Shape& shape) {
  HostTensor t;
  t.dtype = dtype;
  t.shape = shape;
  const size_t bytes = static_cast<size_t>(shape_size(shape)) * dtype_size(dtype);
  t.storage = allocate_host_block(bytes, true);  // built once, kept for the session's life
  if (!t.storage) fail("ERR_INTERNAL", "out of memory allocating " + std::to_string(bytes) + " bytes");
  return t;
}

// ---------------------------------------------------------------- NodeDesc accessors
namespace {
const AttrMap& attrs_of(const NodeDesc& n) {
  if (!n.attrs) fail("ERR_INTERNAL", n.where() + ": attribute read after the op was built");
  return *n.attrs;
}

const Attr* find_attr(const NodeDesc& n, const std::string& key, Attr::Kind kind) {
  const AttrMap& attrs = attrs_of(n);
  auto it = attrs.find(key);
  if (it == attrs.end()) return nullptr;
  if (it->second.kind != kind) fail("ERR_MODEL_FORMAT", n.where() + ": attribute '" + key + "' has the wrong type");
  return &it->second;
}
}  // namespace

bool NodeDesc::has(const std::string& key) const { return attrs_of(*this).count(key) != 0; }
int64_t NodeDesc::get_int(const std::string& key, int64_t dflt) const {
  const Attr* a = find_attr(*this, key, Attr::Int);
  return a ? a->i : dflt;
}
float NodeDesc::get_float(const std::string& key, float dflt) const {
  auto it = attrs_of(*this).find(key);
  if (it != attrs->end() && it->second.kind == Attr::Int) return static_cast<float>(it->second.i);
  const Attr* a = find_attr(*this, key, Attr::Float);
  return a ? a->f : dflt;
}
std::vector<int64_t> NodeDesc::get_ints(const std::string& key, const std::vector<int64_t>& dflt) const {
  const Attr* a = find_attr(*this, key, Attr::Ints);
  return a ? a->ints : dflt;
}
std::vector<float> NodeDesc::get_floats(const std::string& key, const std::vector<float>& dflt) const {
  const Attr* a = find_attr(*this, key, Attr::Floats);
  return a ? a->floats : dflt;
}
std::string NodeDesc::get_string(const std::string& key, const std::string& dflt) const {
  const Attr* a = find_attr(*this, key, Attr::String);
  return a ? a->s : dflt;
}
std::vector<std::string> NodeDesc::get_strings(const std::string& key, const std::vector<std::string>& dflt) const {
  const Attr* a = find_attr(*this, key, Attr::Strings);
  return a ? a->strings : dflt;
}
const HostTensor* NodeDesc::get_tensor(const std::string& key) const {
  const Attr* a = find_attr(*this, key, Attr::TensorValue);
  return a ? &a->t : nullptr;
}
std::shared_ptr<const GraphDesc> NodeDesc::get_graph(const std::string& key) const {
  const Attr* a = find_attr(*this, key, Attr::Graph);
  return a ? a->g : nullptr;
}
std::string NodeDesc::where() const { return op + " node '" + name + "'"; }

// ---------------------------------------------------------------- scratch
bool BlockPool::take_from(std::multimap<size_t, std::shared_ptr<void>>& from, size_t bytes, Block& out) {
  auto it = from.lower_bound(bytes);
  if (it == from.end() || it->first / 2 > bytes) return false;
  out.capacity = it->first;
  out.mem = std::move(it->second);
  from.erase(it);
  return true;
}

BlockPool::Block BlockPool::take(size_t bytes) {
  const size_t rounded = std::max<size_t>((bytes + 63) & ~size_t(63), 64);
  Block b;
  if (take_from(free_, rounded, b) || take_from(stock_, rounded, b)) return b;
  b.mem = aligned_block(rounded);
  b.capacity = rounded;
  return b;
}

void BlockPool::give(Block b) {
  if (b.mem) free_.emplace(b.capacity, std::move(b.mem));
}

void BlockPool::release(Block b) {
  if (b.mem && b.mem.use_count() == 1) give(std::move(b));
}

std::multimap<size_t, std::shared_ptr<void>> BlockPool::released() {
  stock_.clear();
  return std::move(free_);
}

void* RunContext::scratch(size_t bytes) {
  if (blocks) {
    scratch_blocks.push_back(blocks->take(bytes));
  } else {
    scratch_blocks.push_back({aligned_block(bytes), bytes});
  }
  scratch_in_use += bytes;
  return scratch_blocks.back().mem.get();
}

void RunContext::check_cancel() const {
  // The flag is written by JavaScript on the main thread (AbortSignal): an atomic read.
  if (cancel && __atomic_load_n(cancel, __ATOMIC_RELAXED) != 0) fail("ERR_ABORTED", "the run was aborted");
}

void Op::run_dynamic(const std::vector<const OwnedTensor*>&, std::vector<OwnedTensor>&, RunContext&) {
  fail("ERR_INTERNAL", "run_dynamic() called on an op whose outputs are inferred");
}

// ---------------------------------------------------------------- registry
namespace {
std::map<std::string, OpFactory>& mutable_registry() {
  static std::map<std::string, OpFactory> registry;  // filled during static init, read-only after
  return registry;
}
}  // namespace

const std::map<std::string, OpFactory>& op_registry() { return mutable_registry(); }

OpRegistrar::OpRegistrar(const char* name, OpFactory factory) { mutable_registry()[name] = std::move(factory); }

// ---------------------------------------------------------------- executor
Executor::Executor(GraphDesc graph, const kernels::KernelTable* table) : graph_(std::move(graph)), table_(table) {
  const int nvalues = static_cast<int>(graph_.values.size());
  auto check_id = [&](int id, const NodeDesc* n) {
    if (id < -1 || id >= nvalues)
      fail("ERR_MODEL_FORMAT", (n ? n->where() : std::string("graph")) + " refers to value " + std::to_string(id) + " of " + std::to_string(nvalues));
  };
  std::vector<bool> defined(nvalues, false);
  for (int id : graph_.inputs) {
    check_id(id, nullptr);
    if (id < 0) fail("ERR_MODEL_FORMAT", "graph input -1 names no value");
    defined[id] = true;
  }
  for (const auto& c : graph_.constants) check_id(c.first, nullptr), defined[c.first] = true;
  last_use_.assign(nvalues, -1);
  for (size_t i = 0; i < graph_.nodes.size(); ++i) {
    const NodeDesc& n = graph_.nodes[i];
    auto it = op_registry().find(n.op);
    if (it == op_registry().end()) fail("ERR_UNSUPPORTED_OP", "Operator " + n.where() + " (opset " + std::to_string(n.opset) + ") is not implemented by ternion's executor");
    BuildContext bc{n, {}, table_, &graph_.values};
    for (int id : n.inputs) {
      check_id(id, &n);
      if (id >= 0 && !defined[id]) fail("ERR_MODEL_FORMAT", n.where() + " reads value '" + graph_.values[id].name + "' before it is computed");
      auto c = id >= 0 ? graph_.constants.find(id) : graph_.constants.end();
      bc.constant_inputs.push_back(c == graph_.constants.end() ? nullptr : &c->second);
      if (id >= 0) last_use_[id] = static_cast<int>(i);
    }
    for (int id : n.outputs) {
      check_id(id, &n);
      // One writer per value: a value written twice would lose the block an earlier reader holds.
      if (id >= 0 && defined[id]) fail("ERR_MODEL_FORMAT", n.where() + " writes value '" + graph_.values[id].name + "', which is already defined");
      if (id >= 0) defined[id] = true;
    }
    ops_.push_back(it->second(bc));
    packed_bytes_ += ops_.back()->weight_bytes();
  }
  for (int id : graph_.outputs) {
    check_id(id, nullptr);
    if (id < 0 || !defined[id]) fail("ERR_MODEL_FORMAT", "graph output " + std::to_string(id) + " is never computed");
    last_use_[id] = static_cast<int>(graph_.nodes.size());  // outputs live to the end
  }
  // Constants whose every reader packed or copied them (weights): only their shapes stay, so
  // the session does not hold the fp32 weights next to their packed form.
  std::vector<bool> needed(nvalues, false);
  for (int id : graph_.outputs) needed[id] = true;
  for (size_t i = 0; i < graph_.nodes.size(); ++i) {
    const NodeDesc& n = graph_.nodes[i];
    for (size_t j = 0; j < n.inputs.size(); ++j)
      if (n.inputs[j] >= 0 && !ops_[i]->keeps_copy_of(j)) needed[n.inputs[j]] = true;
  }
  for (auto& c : graph_.constants)
    if (!needed[c.first]) c.second.storage.reset();
  // Ops read their attributes when built (those keeping a copy of their node release it too).
  for (auto& n : graph_.nodes) n.release_attrs();
}

size_t Executor::arena_bytes() const {
  std::lock_guard<std::mutex> lock(arena_mu_);
  size_t total = 0;
  for (const auto& b : arena_) total += b.first;
  return total;
}

size_t Executor::constant_bytes() const {
  size_t total = 0;
  for (const auto& c : graph_.constants)
    if (c.second.storage) total += static_cast<size_t>(shape_size(c.second.shape)) * dtype_size(c.second.dtype);
  return total;
}

std::vector<Tensor> Executor::run(const std::vector<Tensor>& inputs, ThreadPool* pool, int threads,
                                  std::vector<BlockPool::Block>& keep, const int32_t* cancel) const {
  if (inputs.size() != graph_.inputs.size()) fail("ERR_INPUT_NAME", "expected " + std::to_string(graph_.inputs.size()) + " inputs");
  BlockPool blocks;
  {
    std::lock_guard<std::mutex> lock(arena_mu_);
    blocks.stock(std::move(arena_));
    arena_.clear();
  }
  RunContext ctx;
  ctx.gemm = GemmContext{table_, pool, threads};
  ctx.blocks = &blocks;
  ctx.cancel = cancel;
  std::vector<OwnedTensor> feeds(inputs.size());  // the caller's memory: no blocks
  for (size_t i = 0; i < inputs.size(); ++i) feeds[i].tensor = inputs[i];
  std::vector<OwnedTensor> outs = run_graph(std::move(feeds), ctx);
  std::vector<Tensor> result;
  for (auto& o : outs) {
    result.push_back(o.tensor);
    if (o.block.mem) keep.push_back(std::move(o.block));
  }
  // What this run released (never an output: those stay owned by `keep`) is the next run's arena.
  auto released = blocks.released();
  std::lock_guard<std::mutex> lock(arena_mu_);
  arena_ = std::move(released);
  return result;
}

void Executor::recycle(std::vector<BlockPool::Block>& keep) const {
  std::lock_guard<std::mutex> lock(arena_mu_);
  for (BlockPool::Block& b : keep)
    // A block another holder still shares (an output that is also a view of another) stays theirs.
    if (b.mem && b.mem.use_count() == 1) arena_.emplace(b.capacity, std::move(b.mem));
  keep.clear();
}

std::vector<OwnedTensor> Executor::run_nested(std::vector<OwnedTensor> inputs, const RunContext& parent) const {
  if (!parent.blocks) fail("ERR_INTERNAL", "a subgraph run needs its parent's block pool");
  if (inputs.size() != graph_.inputs.size())
    fail("ERR_INTERNAL", "subgraph run with " + std::to_string(inputs.size()) + " inputs for " + std::to_string(graph_.inputs.size()));
  RunContext ctx;
  ctx.gemm = GemmContext{table_, parent.gemm.pool, parent.gemm.threads};
  ctx.blocks = parent.blocks;
  ctx.cancel = parent.cancel;
  ctx.depth = parent.depth + 1;
  return run_graph(std::move(inputs), ctx);
}

std::vector<OwnedTensor> Executor::run_graph(std::vector<OwnedTensor> inputs, RunContext& ctx) const {
  BlockPool& blocks = *ctx.blocks;
  // Each value with its block: a value whose last reader ran gives its reference up, and the
  // block goes back to the pool when that was the last one (views share their source's block).
  std::vector<OwnedTensor> values(graph_.values.size());
  for (const auto& c : graph_.constants) values[c.first].tensor = c.second.view();
  for (size_t i = 0; i < inputs.size(); ++i) {
    const ValueDesc& vd = graph_.values[graph_.inputs[i]];
    if (inputs[i].tensor.dtype != vd.dtype)
      fail("ERR_DTYPE", "input '" + vd.name + "' is " + dtype_name(inputs[i].tensor.dtype) + " but the graph expects " + dtype_name(vd.dtype));
    values[graph_.inputs[i]] = std::move(inputs[i]);
  }

  std::vector<const Tensor*> in;
  std::vector<const OwnedTensor*> owned_in;
  std::vector<Tensor> outs;
  std::vector<Tensor*> out_ptrs;
  std::vector<BlockPool::Block> unused;  // blocks of outputs nobody reads, while the op writes them
  std::vector<OwnedTensor> dynamic_outs;
  // TERNION_PROFILE=1: time per op type, printed to stderr after each run (a developer aid).
  // TERNION_PROFILE=nodes: also one line per node. A subgraph's ops count in their If, Loop or
  // Scan node's time, not on their own.
  const char* profile_env = ctx.depth == 0 ? std::getenv("TERNION_PROFILE") : nullptr;
  const bool profile = profile_env != nullptr;
  const bool profile_nodes = profile && std::strcmp(profile_env, "nodes") == 0;
  std::map<std::string, std::pair<double, int>> profile_ms;
  for (size_t i = 0; i < graph_.nodes.size(); ++i) {
    ctx.check_cancel();
    const NodeDesc& n = graph_.nodes[i];
    Op& op = *ops_[i];
    std::chrono::steady_clock::time_point start;
    const Shape* out0_shape = nullptr;
    if (op.dynamic_outputs()) {
      owned_in.clear();
      for (int id : n.inputs) owned_in.push_back(id >= 0 ? &values[id] : nullptr);
      dynamic_outs.assign(n.outputs.size(), OwnedTensor{});
      if (profile) start = std::chrono::steady_clock::now();
      op.run_dynamic(owned_in, dynamic_outs, ctx);
      for (size_t o = 0; o < n.outputs.size(); ++o) {
        const int id = n.outputs[o];
        if (id < 0) continue;
        const ValueDesc& vd = graph_.values[id];
        if (dynamic_outs[o].tensor.dtype != vd.dtype)
          fail("ERR_DTYPE", n.where() + ": output '" + vd.name + "' is " + dtype_name(dynamic_outs[o].tensor.dtype) +
                                " but the model declares " + dtype_name(vd.dtype));
        values[id] = std::move(dynamic_outs[o]);
      }
      for (auto& o : dynamic_outs) blocks.release(std::move(o.block));  // outputs nobody takes
      if (!n.outputs.empty() && n.outputs[0] >= 0) out0_shape = &values[n.outputs[0]].tensor.shape;
    } else {
      in.clear();
      for (int id : n.inputs) in.push_back(id >= 0 ? &values[id].tensor : nullptr);
      outs.assign(n.outputs.size(), Tensor{});
      op.infer(in, outs);
      for (size_t o = 0; o < n.outputs.size(); ++o) {
        const int id = n.outputs[o];
        const int alias = op.alias_of(static_cast<int>(o));
        if (alias >= 0) {
          const int src = static_cast<size_t>(alias) < n.inputs.size() ? n.inputs[alias] : -1;
          if (src < 0) fail("ERR_MODEL_FORMAT", n.where() + ": output " + std::to_string(o) + " views input " + std::to_string(alias) + ", which is missing");
          outs[o].data = values[src].tensor.data;
          if (id >= 0) values[id].block = values[src].block;
        } else {
          BlockPool::Block block = blocks.take(outs[o].bytes());
          outs[o].data = block.mem.get();
          if (id >= 0) values[id].block = std::move(block);
          else unused.push_back(std::move(block));  // an unused output still needs storage while the op runs
        }
      }
      out_ptrs.clear();
      for (auto& t : outs) out_ptrs.push_back(&t);
      if (profile) start = std::chrono::steady_clock::now();
      op.run(in, out_ptrs, ctx);
      for (auto& b : ctx.scratch_blocks) blocks.give(std::move(b));
      ctx.scratch_blocks.clear();
      for (auto& b : unused) blocks.give(std::move(b));
      unused.clear();
      for (size_t o = 0; o < n.outputs.size(); ++o)
        if (n.outputs[o] >= 0) values[n.outputs[o]].tensor = outs[o];
      if (!outs.empty()) out0_shape = &outs[0].shape;
    }
    if (profile) {
      const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
      auto& slot = profile_ms[n.op];
      slot.first += ms;
      slot.second += 1;
      if (profile_nodes) {
        std::string shape;
        if (out0_shape)
          for (int64_t d : *out0_shape) shape += (shape.empty() ? "" : "x") + std::to_string(d);
        std::fprintf(stderr, "ternion profile: node %-40s %-20s %8.3f ms  out %s\n", n.name.c_str(), n.op.c_str(), ms, shape.c_str());
      }
    }
    // Outputs nobody reads, and values whose last reader was this node, give their blocks up.
    for (int id : n.outputs)
      if (id >= 0 && last_use_[id] < 0) blocks.release(std::move(values[id].block));
    for (int id : n.inputs)
      if (id >= 0 && last_use_[id] == static_cast<int>(i)) blocks.release(std::move(values[id].block));
  }
  if (profile) {
    double total = 0;
    for (const auto& p : profile_ms) total += p.second.first;
    for (const auto& p : profile_ms)
      std::fprintf(stderr, "ternion profile: %-24s %4d x %9.3f ms (%5.1f%%)\n", p.first.c_str(), p.second.second, p.second.first,
                   total > 0 ? 100 * p.second.first / total : 0.0);
    std::fprintf(stderr, "ternion profile: total %.3f ms\n", total);
  }
  std::vector<OwnedTensor> result;
  for (int id : graph_.outputs) result.push_back(values[id]);
  // The run's own references go: blocks held by nothing else (inputs the caller handed over and
  // nobody read) return to the pool; outputs stay held by `result`.
  for (auto& v : values) blocks.release(std::move(v.block));
  return result;
}

}  // namespace exec
}  // namespace ternion
