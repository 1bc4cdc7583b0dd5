// Einsum (opset 12) over float32, int32 and int64, for any valid equation: explicit ("->") or
// implicit output (the ellipsis dims, then the letters used once, in ASCII order), "..." in any
// operand (it covers the same number of dims in each; the output must name it when it covers
// any), a letter repeated within one operand (a diagonal), letters summed away, any number of
// operands. Spaces are ignored; letters are a-z and A-Z. A letter's dims must agree across its
// occurrences, a dim of 1 broadcasting (as onnxruntime reads it).
//
// Every operand is a strided view (a diagonal is the sum of its dims' strides, a broadcast dim
// stride 0), so nothing is copied to read one. Operands are contracted left to right, two at a
// time, after summing away the letters only one operand has. A pair of float32 operands becomes
// a batched matrix product [batch, M, K] x [batch, K, N] on the fp32 GEMM (gemm.h), read in place
// when the operands' layouts allow it (attention's bhqd,bhkd->bhqk, bij,bjk->bik) and gathered
// into contiguous blocks otherwise (A and B trade places when that writes the output's order
// directly). Everything else (one operand, integers, products too small for a GEMM) is a strided
// loop over the output and the summed letters, accumulated in double (integers: with two's
// complement wrapping, as their own arithmetic would); a plain permutation ("ij->ji", or a GEMM
// result put in the output's order) goes to the Transpose op's tiled kernel.
#include <algorithm>
#include <numeric>
#include <type_traits>

#include "exec/graph.h"
#include "exec/ops/broadcast.h"
#include "exec/ops/conv-common.h"
#include "exec/ops/op-args.h"
#include "exec/ops/transpose.h"

namespace ternion {
namespace exec {
namespace ops {
namespace {

// Axis ids: letters 'A'-'Z' are 0-25 and 'a'-'z' 26-51 (so ids sort as ASCII does); the dims an
// ellipsis covers are kLetters, kLetters + 1, ... outermost first.
constexpr int kLetters = 52;

int letter_id(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return 26 + (c - 'a');
  return -1;
}

// One term of the equation: its letters in order and where "..." stands among them.
struct Term {
  std::vector<int> letters;
  int ellipsis = -1;  // "..." stands before letters[ellipsis]; -1: no ellipsis
};

struct Equation {
  std::vector<Term> inputs;
  Term output;
  bool explicit_output = false;
};

Equation parse_equation(std::string text, size_t operands, const std::string& where) {
  const std::string original = text;
  auto bad = [&](const std::string& why) {
    fail("ERR_MODEL_FORMAT", where + ": equation \"" + original + "\" " + why);
  };
  text.erase(std::remove(text.begin(), text.end(), ' '), text.end());
  auto parse_term = [&](const std::string& s) {
    Term t;
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] == '.') {
        if (s.compare(i, 3, "...") != 0) bad("has a '.' that is not part of \"...\"");
        if (t.ellipsis >= 0) bad("has more than one \"...\" in the term \"" + s + "\"");
        t.ellipsis = static_cast<int>(t.letters.size());
        i += 2;
        continue;
      }
      const int id = letter_id(s[i]);
      if (id < 0) bad(std::string("has '") + s[i] + "', which is not a letter, ',', \"->\" or \"...\"");
      t.letters.push_back(id);
    }
    return t;
  };
  Equation eq;
  const size_t arrow = text.find("->");
  if (arrow != std::string::npos && text.find("->", arrow + 2) != std::string::npos) bad("has more than one \"->\"");
  const std::string lhs = text.substr(0, arrow);
  size_t start = 0;
  for (;;) {
    const size_t comma = lhs.find(',', start);
    eq.inputs.push_back(parse_term(lhs.substr(start, comma == std::string::npos ? std::string::npos : comma - start)));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (eq.inputs.size() != operands)
    bad("has " + std::to_string(eq.inputs.size()) + " operand terms but the node has " + std::to_string(operands) + " inputs");
  std::vector<int> uses(kLetters, 0);
  bool any_ellipsis = false;
  for (const Term& t : eq.inputs) {
    for (int id : t.letters) ++uses[id];
    any_ellipsis = any_ellipsis || t.ellipsis >= 0;
  }
  if (arrow != std::string::npos) {
    eq.explicit_output = true;
    const std::string rhs = text.substr(arrow + 2);
    eq.output = parse_term(rhs);
    std::vector<bool> seen(kLetters, false);
    for (int id : eq.output.letters) {
      const char c = static_cast<char>(id < 26 ? 'A' + id : 'a' + id - 26);
      if (seen[id]) bad(std::string("names '") + c + "' twice in its output");
      if (uses[id] == 0) bad(std::string("has '") + c + "' in its output but in no input");
      seen[id] = true;
    }
  } else {
    // Implicit output: the ellipsis dims first, then the letters used exactly once, sorted.
    if (any_ellipsis) eq.output.ellipsis = 0;
    for (int id = 0; id < kLetters; ++id)
      if (uses[id] == 1) eq.output.letters.push_back(id);
  }
  return eq;
}

// The equation applied to actual shapes: each axis's size, each operand's strides per axis, and
// the output's axes.
struct Resolved {
  std::vector<int64_t> size;                  // per axis id (1 for ids no operand uses)
  std::vector<std::vector<int64_t>> strides;  // per operand, per axis id: elements (0: absent or broadcast)
  std::vector<std::vector<bool>> present;     // per operand, per axis id
  std::vector<int> out_axes;
  Shape out_shape;
};

// A term's axis ids with its ellipsis expanded to `ellipsis_dims` ids.
std::vector<int> term_axes(const Term& t, int ellipsis_dims) {
  std::vector<int> axes;
  for (size_t i = 0; i <= t.letters.size(); ++i) {
    if (static_cast<int>(i) == t.ellipsis)
      for (int e = 0; e < ellipsis_dims; ++e) axes.push_back(kLetters + e);
    if (i < t.letters.size()) axes.push_back(t.letters[i]);
  }
  return axes;
}

Resolved resolve(const Equation& eq, const std::vector<const Tensor*>& inputs, const std::string& where) {
  const size_t n = eq.inputs.size();
  int ellipsis_dims = -1;
  size_t ellipsis_owner = 0;
  for (size_t i = 0; i < n; ++i) {
    const Term& t = eq.inputs[i];
    const int64_t rank = static_cast<int64_t>(inputs[i]->shape.size()), letters = static_cast<int64_t>(t.letters.size());
    if (t.ellipsis < 0) {
      if (rank != letters)
        fail("ERR_SHAPE_MISMATCH", where + ": operand " + std::to_string(i) + " " + shape_str(inputs[i]->shape) + " has rank " +
                                       std::to_string(rank) + " but its term names " + std::to_string(letters) + " dims");
      continue;
    }
    if (rank < letters)
      fail("ERR_SHAPE_MISMATCH", where + ": operand " + std::to_string(i) + " " + shape_str(inputs[i]->shape) + " has rank " +
                                     std::to_string(rank) + ", fewer than the " + std::to_string(letters) + " letters of its term");
    const int dims = static_cast<int>(rank - letters);
    if (ellipsis_dims >= 0 && dims != ellipsis_dims)
      fail("ERR_SHAPE_MISMATCH", where + ": \"...\" covers " + std::to_string(ellipsis_dims) + " dims in operand " + std::to_string(ellipsis_owner) +
                                     " but " + std::to_string(dims) + " in operand " + std::to_string(i));
    ellipsis_dims = dims;
    ellipsis_owner = i;
  }
  if (ellipsis_dims < 0) ellipsis_dims = 0;
  if (eq.explicit_output && eq.output.ellipsis < 0 && ellipsis_dims > 0)
    fail("ERR_SHAPE_MISMATCH", where + ": \"...\" covers " + std::to_string(ellipsis_dims) + " dims of the inputs but the output does not name it");

  const size_t axes = static_cast<size_t>(kLetters + ellipsis_dims);
  Resolved r;
  r.size.assign(axes, -1);
  std::vector<std::vector<int>> axes_of(n);
  for (size_t i = 0; i < n; ++i) {
    axes_of[i] = term_axes(eq.inputs[i], ellipsis_dims);
    for (size_t d = 0; d < axes_of[i].size(); ++d) {
      const int a = axes_of[i][d];
      const int64_t dim = inputs[i]->shape[d];
      if (r.size[a] < 0 || r.size[a] == 1) r.size[a] = dim;  // first seen, or a 1 that broadcasts
      else if (dim != 1 && dim != r.size[a])
        fail("ERR_SHAPE_MISMATCH", where + ": operand " + std::to_string(i) + " " + shape_str(inputs[i]->shape) + " has dim " + std::to_string(d) +
                                       " of size " + std::to_string(dim) + " where the same letter elsewhere has size " + std::to_string(r.size[a]));
    }
  }
  for (int64_t& s : r.size)
    if (s < 0) s = 1;
  r.strides.assign(n, std::vector<int64_t>(axes, 0));
  r.present.assign(n, std::vector<bool>(axes, false));
  for (size_t i = 0; i < n; ++i) {
    const std::vector<int64_t> st = op_args::row_major_strides(inputs[i]->shape);
    for (size_t d = 0; d < axes_of[i].size(); ++d) {
      const int a = axes_of[i][d];
      r.present[i][a] = true;
      if (inputs[i]->shape[d] != 1) r.strides[i][a] += st[d];  // a diagonal sums its dims' strides
    }
  }
  r.out_axes = term_axes(eq.output, ellipsis_dims);
  for (int a : r.out_axes) r.out_shape.push_back(r.size[a]);
  return r;
}

// An operand (or an intermediate result) read through strides per axis id.
struct View {
  const void* data = nullptr;
  std::vector<int64_t> stride;  // per axis id
  std::vector<bool> present;    // per axis id
};

// A contiguous tensor over `axes` (in that order) as a view.
View contiguous_view(const void* data, const std::vector<int>& axes, const std::vector<int64_t>& size) {
  View v;
  v.data = data;
  v.stride.assign(size.size(), 0);
  v.present.assign(size.size(), false);
  int64_t step = 1;
  for (size_t k = axes.size(); k-- > 0;) {
    v.present[axes[k]] = true;
    v.stride[axes[k]] = size[axes[k]] == 1 ? 0 : step;
    step *= size[axes[k]];
  }
  return v;
}

int64_t axes_product(const std::vector<int>& axes, const std::vector<int64_t>& size) {
  int64_t p = 1;
  for (int a : axes) p *= size[a];
  return p;
}

// The bytes of a tensor over `axes` (at least one element, for a scalar), for scratch: sizes
// beyond what a tensor may hold (shape_size's limit) fail as ERR_SHAPE_MISMATCH rather than
// overflowing.
template <typename T>
size_t scratch_bytes(const std::vector<int>& axes, const std::vector<int64_t>& size) {
  Shape dims;
  for (int a : axes) dims.push_back(size[a]);
  return static_cast<size_t>(std::max<int64_t>(shape_size(dims), 1)) * sizeof(T);
}

// dest[out coords] = sum over the `summed` axes of the product of the views (one or two) at those
// coordinates. dest is laid out contiguously over out_axes.
template <typename T>
void strided_sum(const RunContext& ctx, const std::vector<const View*>& views, const std::vector<int>& out_axes,
                 const std::vector<int>& summed, const std::vector<int64_t>& size, T* dest) {
  // Accumulators: double for floats; for integers unsigned 64-bit, which wraps (signed overflow
  // would be undefined) and gives the two's complement result once narrowed.
  using Acc = typename std::conditional<std::is_floating_point<T>::value, double, uint64_t>::type;
  const int64_t total = axes_product(out_axes, size), count = axes_product(summed, size);
  if (total == 0) return;
  if (count == 0) {
    std::fill(dest, dest + total, T(0));
    return;
  }
  const size_t nv = views.size(), no = out_axes.size(), ns = summed.size();
  const T* data[2] = {static_cast<const T*>(views[0]->data), nv > 1 ? static_cast<const T*>(views[1]->data) : nullptr};
  std::vector<int64_t> out_stride(2 * no), sum_stride(2 * ns);
  for (size_t v = 0; v < nv; ++v) {
    for (size_t k = 0; k < no; ++k) out_stride[v * no + k] = views[v]->stride[out_axes[k]];
    for (size_t k = 0; k < ns; ++k) sum_stride[v * ns + k] = views[v]->stride[summed[k]];
  }
  // The innermost summed axis runs as a plain loop; the rest step like an odometer.
  const int64_t inner = ns ? size[summed[ns - 1]] : 1;
  const int64_t step0 = ns ? sum_stride[ns - 1] : 0, step1 = ns && nv > 1 ? sum_stride[2 * ns - 1] : 0;
  broadcast::parallel_range(ctx, total, std::max<int64_t>(1, (1 << 14) / count), [&](int64_t begin, int64_t end) {
    std::vector<int64_t> pos(no), spos(ns);
    int64_t base[2] = {0, 0};
    for (int64_t rest = begin, k = static_cast<int64_t>(no); k-- > 0;) {
      pos[k] = rest % size[out_axes[k]];
      rest /= size[out_axes[k]];
      for (size_t v = 0; v < nv; ++v) base[v] += pos[k] * out_stride[v * no + k];
    }
    for (int64_t o = begin; o < end; ++o) {
      Acc acc = 0;
      int64_t off[2] = {base[0], base[1]};
      std::fill(spos.begin(), spos.end(), 0);
      for (int64_t done = 0; done < count; done += inner) {
        if (nv == 1) {
          for (int64_t j = 0; j < inner; ++j) acc += static_cast<Acc>(data[0][off[0] + j * step0]);
        } else {
          for (int64_t j = 0; j < inner; ++j)
            acc += static_cast<Acc>(data[0][off[0] + j * step0]) * static_cast<Acc>(data[1][off[1] + j * step1]);
        }
        for (size_t k = ns - (ns ? 1 : 0); k-- > 0;) {  // the outer summed axes
          for (size_t v = 0; v < nv; ++v) off[v] += sum_stride[v * ns + k];
          if (++spos[k] < size[summed[k]]) break;
          for (size_t v = 0; v < nv; ++v) off[v] -= spos[k] * sum_stride[v * ns + k];
          spos[k] = 0;
        }
      }
      dest[o] = static_cast<T>(acc);
      for (size_t k = no; k-- > 0;) {
        for (size_t v = 0; v < nv; ++v) base[v] += out_stride[v * no + k];
        if (++pos[k] < size[out_axes[k]]) break;
        for (size_t v = 0; v < nv; ++v) base[v] -= pos[k] * out_stride[v * no + k];
        pos[k] = 0;
      }
    }
  });
}

// dest, laid out over `axes`, = the view. A plain permutation of a contiguous block (the view's
// strides, sorted, are a row-major tensor's) goes to the Transpose kernel, which works in tiles;
// a diagonal or a broadcast takes the strided loop.
template <typename T>
void copy_view(const RunContext& ctx, const View& v, const std::vector<int>& axes, const std::vector<int64_t>& size, T* dest) {
  std::vector<int> moved;  // the axes of size > 1, in dest's order
  for (int a : axes)
    if (size[a] != 1) moved.push_back(a);
  std::vector<size_t> by_stride(moved.size());  // positions in `moved`, outermost in memory first
  std::iota(by_stride.begin(), by_stride.end(), size_t(0));
  std::sort(by_stride.begin(), by_stride.end(), [&](size_t x, size_t y) { return v.stride[moved[x]] > v.stride[moved[y]]; });
  int64_t expected = 1;
  for (size_t j = by_stride.size(); j-- > 0;) {
    const int a = moved[by_stride[j]];
    if (v.stride[a] != expected) return strided_sum<T>(ctx, {&v}, axes, {}, size, dest);
    expected *= size[a];
  }
  Shape in_shape(moved.size());
  std::vector<int64_t> perm(moved.size());
  for (size_t j = 0; j < moved.size(); ++j) {
    in_shape[j] = size[moved[by_stride[j]]];
    perm[by_stride[j]] = static_cast<int64_t>(j);
  }
  permute_elements(ctx, in_shape, perm, sizeof(T), v.data, dest);
}

// Whether `axes` (in that order, size-1 axes skipped) lie in `stride` as one run of evenly spaced
// elements: each axis's stride is the next one's times its size. The innermost stride goes to
// `step` (unchanged when every axis has size 1).
bool single_run(const std::vector<int>& axes, const std::vector<int64_t>& stride, const std::vector<int64_t>& size, int64_t& step) {
  int64_t expected = -1;
  for (size_t k = axes.size(); k-- > 0;) {
    const int a = axes[k];
    if (size[a] == 1) continue;
    if (expected < 0) step = stride[a], expected = stride[a];
    else if (stride[a] != expected) return false;
    expected *= size[a];
  }
  return true;
}

// The letters of a pair of operands A and B by their role in C = A x B: batch (in both, kept),
// M (A's kept), N (B's kept) and K (summed). Letters of size 1 take no part: they change no
// offset and no layout.
struct PairRoles {
  std::vector<int> batch, m, n, k;
};

PairRoles pair_roles(const View& a, const View& b, const std::vector<bool>& keep, const std::vector<int>& order,
                     const std::vector<int64_t>& size) {
  PairRoles roles;
  for (int axis : order) {  // kept axes in the order the result wants them
    if (!keep[axis] || size[axis] == 1 || (!a.present[axis] && !b.present[axis])) continue;
    // A letter one side only broadcasts (stride 0) is the other side's alone: B's matrix need not
    // be packed once per value of it.
    const bool in_a = a.stride[axis] != 0, in_b = b.stride[axis] != 0;
    if (in_a && in_b) roles.batch.push_back(axis);
    else if (in_b) roles.n.push_back(axis);
    else roles.m.push_back(axis);
  }
  for (size_t axis = 0; axis < keep.size(); ++axis)
    if (!keep[axis] && size[axis] != 1 && (a.present[axis] || b.present[axis])) roles.k.push_back(static_cast<int>(axis));
  // K in A's memory order (outermost first), so that A is read in place when it allows.
  std::stable_sort(roles.k.begin(), roles.k.end(), [&](int x, int y) { return a.stride[x] > a.stride[y]; });
  return roles;
}

class EinsumOp : public Op {
 public:
  explicit EinsumOp(const NodeDesc& node) : where_(node.where()) {
    if (node.inputs.empty()) fail("ERR_MODEL_FORMAT", where_ + ": needs at least one input");
    eq_ = parse_equation(node.get_string("equation", ""), node.inputs.size(), where_);
  }

  void infer(const std::vector<const Tensor*>& inputs, std::vector<Tensor>& outputs) override {
    for (size_t i = 0; i < eq_.inputs.size(); ++i) {
      const Tensor& t = op_args::required(inputs, i, where_, "Inputs");
      op_args::require_dtype(t, {DType::F32, DType::I32, DType::I64}, where_, "Inputs");
      if (t.dtype != inputs[0]->dtype)
        fail("ERR_DTYPE", where_ + ": input " + std::to_string(i) + " is " + dtype_name(t.dtype) + " but input 0 is " + dtype_name(inputs[0]->dtype));
    }
    if (outputs.size() != 1) fail("ERR_MODEL_FORMAT", where_ + ": expected one output");
    const Resolved r = resolve(eq_, inputs, where_);
    shape_size(r.out_shape);
    outputs[0].dtype = inputs[0]->dtype;
    outputs[0].shape = r.out_shape;
  }

  void run(const std::vector<const Tensor*>& inputs, std::vector<Tensor*>& outputs, RunContext& ctx) override {
    switch (inputs[0]->dtype) {
      case DType::F32: return evaluate<float>(inputs, *outputs[0], ctx);
      case DType::I32: return evaluate<int32_t>(inputs, *outputs[0], ctx);
      case DType::I64: return evaluate<int64_t>(inputs, *outputs[0], ctx);
      default: fail("ERR_DTYPE", where_ + ": unsupported dtype " + dtype_name(inputs[0]->dtype));
    }
  }

 private:
  template <typename T>
  void evaluate(const std::vector<const Tensor*>& inputs, Tensor& y, RunContext& ctx) const {
    if (y.size() == 0) return;
    const Resolved r = resolve(eq_, inputs, where_);
    const size_t n = inputs.size(), axes = r.size.size();
    std::vector<bool> in_output(axes, false);
    for (int a : r.out_axes) in_output[a] = true;
    std::vector<View> views(n);
    for (size_t i = 0; i < n; ++i) views[i] = View{inputs[i]->data, r.strides[i], r.present[i]};
    if (n == 1) {
      const std::vector<int> summed = absent_from(in_output, views[0]);
      if (summed.empty()) return copy_view<T>(ctx, views[0], r.out_axes, r.size, y.ptr<T>());
      return strided_sum<T>(ctx, {&views[0]}, r.out_axes, summed, r.size, y.ptr<T>());
    }

    // Letters only one operand has and the output lacks are summed away first.
    for (size_t i = 0; i < n; ++i) {
      std::vector<int> kept, own;
      for (size_t a = 0; a < axes; ++a) {
        if (!views[i].present[a]) continue;
        bool shared = in_output[a];
        for (size_t j = 0; j < n && !shared; ++j) shared = j != i && views[j].present[a];
        (shared ? kept : own).push_back(static_cast<int>(a));
      }
      if (own.empty()) continue;
      T* reduced = static_cast<T*>(ctx.scratch(scratch_bytes<T>(kept, r.size)));
      strided_sum<T>(ctx, {&views[i]}, kept, own, r.size, reduced);
      views[i] = contiguous_view(reduced, kept, r.size);
    }

    // Left to right: each product keeps the letters the output or a later operand needs.
    View acc = views[0];
    for (size_t i = 1; i < n; ++i) {
      std::vector<bool> keep = in_output;
      for (size_t j = i + 1; j < n; ++j)
        for (size_t a = 0; a < axes; ++a) keep[a] = keep[a] || views[j].present[a];
      const bool last = i + 1 == n;
      acc = contract<T>(ctx, acc, views[i], keep, last ? r.out_axes : std::vector<int>{}, r.size, last ? y.ptr<T>() : nullptr);
    }
  }

  // The axes a view has that are not marked in `keep`.
  static std::vector<int> absent_from(const std::vector<bool>& keep, const View& v) {
    std::vector<int> out;
    for (size_t a = 0; a < keep.size(); ++a)
      if (v.present[a] && !keep[a]) out.push_back(static_cast<int>(a));
    return out;
  }

  // C = A x B summed over the letters not in `keep`. The final product (dest given) is written
  // there in the order of out_axes; an intermediate one goes to scratch in (batch, M, N) order.
  template <typename T>
  View contract(RunContext& ctx, const View& a, const View& b, const std::vector<bool>& keep, const std::vector<int>& out_axes,
                const std::vector<int64_t>& size, T* dest) const {
    std::vector<int> order = out_axes;
    if (order.empty())
      for (size_t axis = 0; axis < keep.size(); ++axis) order.push_back(static_cast<int>(axis));
    // The output's layout is that of its axes of size > 1.
    std::vector<int> wanted;
    for (int axis : out_axes)
      if (size[axis] != 1) wanted.push_back(axis);
    // A and B may trade places (C transposed): pick the orientation whose GEMM has N > 1 and,
    // for the final product, writes the output's order as it is.
    const View* left = &a;
    const View* right = &b;
    const bool last = dest != nullptr;
    PairRoles roles = pair_roles(a, b, keep, order, size);
    if (last || axes_product(roles.n, size) == 1) {
      const PairRoles swapped = pair_roles(b, a, keep, order, size);
      auto score = [&](const PairRoles& p) {
        return (axes_product(p.n, size) > 1 ? 2 : 0) + (!last || concat(p) == wanted ? 1 : 0);
      };
      if (score(swapped) > score(roles)) roles = swapped, std::swap(left, right);
    }
    const std::vector<int> produced = concat(roles);
    const bool in_place = !last || produced == wanted;
    T* c = in_place && last ? dest : static_cast<T*>(ctx.scratch(scratch_bytes<T>(produced, size)));
    const int64_t M = axes_product(roles.m, size), N = axes_product(roles.n, size), K = axes_product(roles.k, size);
    bool done = false;
    if constexpr (std::is_same<T, float>::value) {
      // Worth a GEMM: enough work per product, and a real matrix on both sides.
      if (K > 0 && N > 1 && M * N * K >= 4096) done = gemm(ctx, *left, *right, roles, size, c);
    }
    if (!done) strided_sum<T>(ctx, {left, right}, produced, roles.k, size, c);
    View result = contiguous_view(c, produced, size);
    if (in_place) return result;
    copy_view<T>(ctx, result, out_axes, size, dest);  // the output's order
    return contiguous_view(dest, out_axes, size);
  }

  static std::vector<int> concat(const PairRoles& p) {
    std::vector<int> all = p.batch;
    all.insert(all.end(), p.m.begin(), p.m.end());
    all.insert(all.end(), p.n.begin(), p.n.end());
    return all;
  }

  // C[batch][M][N] = A[batch][M][K] x B[batch][K][N] on the fp32 GEMM. A is read in place when its
  // K letters are one contiguous run and its M letters one evenly spaced run (rows lda apart);
  // B when it is [N][K] with contiguous rows, or [K][N] with contiguous rows ldb apart. Otherwise
  // they are gathered into contiguous [batch][M][K] / [batch][K][N] blocks first.
  bool gemm(RunContext& ctx, const View& a, const View& b, const PairRoles& roles, const std::vector<int64_t>& size, float* c) const {
    const int64_t batches = axes_product(roles.batch, size);
    const int64_t M64 = axes_product(roles.m, size), N64 = axes_product(roles.n, size), K64 = axes_product(roles.k, size);
    if (M64 > INT32_MAX || N64 > INT32_MAX || K64 > INT32_MAX) return false;
    const int M = static_cast<int>(M64), N = static_cast<int>(N64), K = static_cast<int>(K64);

    // A: in place, or gathered.
    int64_t k_step = 1, lda = K;
    const bool a_in_place = single_run(roles.k, a.stride, size, k_step) && k_step == 1 && single_run(roles.m, a.stride, size, lda);
    const float* a_base = static_cast<const float*>(a.data);
    std::vector<int64_t> a_batch_stride(roles.batch.size());
    for (size_t i = 0; i < roles.batch.size(); ++i) a_batch_stride[i] = a.stride[roles.batch[i]];
    if (!a_in_place) {
      std::vector<int> layout = roles.batch;
      layout.insert(layout.end(), roles.m.begin(), roles.m.end());
      layout.insert(layout.end(), roles.k.begin(), roles.k.end());
      float* gathered = static_cast<float*>(ctx.scratch(scratch_bytes<float>(layout, size)));
      copy_view<float>(ctx, a, layout, size, gathered);
      a_base = gathered;
      lda = K;
      const View packed = contiguous_view(gathered, layout, size);
      for (size_t i = 0; i < roles.batch.size(); ++i) a_batch_stride[i] = packed.stride[roles.batch[i]];
    }

    // B: [N][K] rows, [K][N] rows, or gathered [K][N].
    // (single_run leaves a step at 1 when every letter of the run has size 1: K == 1 or N == 1.)
    enum class BForm { NK, KN } form = BForm::KN;
    int64_t k_inner = 1, n_rows = K, n_inner = 1, ldb = N;
    const float* b_base = static_cast<const float*>(b.data);
    std::vector<int64_t> b_batch_stride(roles.batch.size());
    for (size_t i = 0; i < roles.batch.size(); ++i) b_batch_stride[i] = b.stride[roles.batch[i]];
    if (single_run(roles.k, b.stride, size, k_inner) && k_inner == 1 && single_run(roles.n, b.stride, size, n_rows) && n_rows == K) {
      form = BForm::NK;
    } else if (single_run(roles.n, b.stride, size, n_inner) && n_inner == 1 && single_run(roles.k, b.stride, size, ldb)) {
      form = BForm::KN;
    } else {
      std::vector<int> layout = roles.batch;
      layout.insert(layout.end(), roles.k.begin(), roles.k.end());
      layout.insert(layout.end(), roles.n.begin(), roles.n.end());
      float* gathered = static_cast<float*>(ctx.scratch(scratch_bytes<float>(layout, size)));
      copy_view<float>(ctx, b, layout, size, gathered);
      b_base = gathered;
      ldb = N;
      const View packed = contiguous_view(gathered, layout, size);
      for (size_t i = 0; i < roles.batch.size(); ++i) b_batch_stride[i] = packed.stride[roles.batch[i]];
    }

    // Each batch's A and B offsets.
    std::vector<int64_t> a_off(static_cast<size_t>(batches), 0), b_off(static_cast<size_t>(batches), 0);
    std::vector<int64_t> pos(roles.batch.size(), 0);
    for (int64_t i = 0; i < batches; ++i) {
      for (size_t k = 0; k < roles.batch.size(); ++k) a_off[i] += pos[k] * a_batch_stride[k], b_off[i] += pos[k] * b_batch_stride[k];
      for (size_t k = roles.batch.size(); k-- > 0;) {
        if (++pos[k] < size[roles.batch[k]]) break;
        pos[k] = 0;
      }
    }

    const kernels::KernelTable* table = ctx.gemm.table;
    const size_t packed_bytes = table->f32_packed_size(N, K);
    auto product = [&](const GemmContext& gc, int64_t i, void* packed) {
      if (form == BForm::NK) table->f32_pack(b_base + b_off[i], N, K, packed);
      else table->f32_pack_kn(b_base + b_off[i], K, N, static_cast<size_t>(ldb), packed);
      gemm_f32(gc, M, N, K, a_base + a_off[i], static_cast<size_t>(lda), packed, nullptr, nullptr, c + i * M64 * N64, static_cast<size_t>(N));
    };
    // Many small products (attention heads) go whole to the threads, as MatMul does; a few
    // large ones each spread over the threads.
    const int threads = thread_count(ctx.gemm);
    if (threads > 1 && batches >= threads && M64 * N64 * K64 <= (int64_t(1) << 22)) {
      std::vector<void*> packed(static_cast<size_t>(batches));
      for (void*& p : packed) p = ctx.scratch(packed_bytes);
      const GemmContext one{table, nullptr, 1};
      parallel_ranges(ctx.gemm, batches, 1, [&](int64_t b0, int64_t b1) {
        for (int64_t i = b0; i < b1; ++i) product(one, i, packed[i]);
      });
    } else {
      void* packed = ctx.scratch(packed_bytes);
      for (int64_t i = 0; i < batches; ++i) product(ctx.gemm, i, packed);
    }
    return true;
  }

  std::string where_;
  Equation eq_;
};

std::unique_ptr<Op> make_einsum(const BuildContext& bc) { return std::make_unique<EinsumOp>(bc.node); }

}  // namespace
}  // namespace ops
}  // namespace exec
}  // namespace ternion

TERNION_REGISTER_OP(Einsum, ternion::exec::ops::make_einsum);
