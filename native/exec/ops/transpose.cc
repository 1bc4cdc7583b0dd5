// Transpose (perm, default: reversed dims) over every dtype, moving elements by size.
//
// The permutation is first simplified: dims of size 1 dropped, and input dims that stay
// neighbours in the output merged. NCHW <-> NHWC then becomes a batched 2-D transpose, which
// runs in cache-sized tiles; a permutation that keeps the last dim copies whole rows; anything
// else walks the output in order, reading the input through strides.
#include "exec/ops/transpose.h"

#include <cstring>
#include <numeric>

#include "exec/ops/broadcast.h"
#include "exec/ops/op-args.h"

namespace ternion {
namespace exec {
namespace {

// A transpose reduced to its essentials: out dim i is in dim perm[i] of `dims`.
struct TransposePlan {
  std::vector<int64_t> dims;  // input dims after dropping 1s and merging
  std::vector<int64_t> perm;
};

TransposePlan simplify(const Shape& in, const std::vector<int64_t>& perm) {
  // Keep the input dims that are not 1, in output order.
  std::vector<int64_t> order;
  for (int64_t p : perm)
    if (in[p] != 1) order.push_back(p);
  // Merge runs of consecutive input dims (p, p+1, ...) that appear together in the output.
  std::vector<std::vector<int64_t>> groups;
  for (int64_t p : order) {
    if (!groups.empty()) {
      int64_t last = groups.back().back(), q = last + 1;
      while (q < p && in[q] == 1) ++q;  // skipped size-1 dims do not break a run
      if (q == p) {
        groups.back().push_back(p);
        continue;
      }
    }
    groups.push_back({p});
  }
  // Groups sorted by their first input dim give the merged input's dims.
  std::vector<size_t> by_input(groups.size());
  std::iota(by_input.begin(), by_input.end(), 0);
  std::sort(by_input.begin(), by_input.end(), [&](size_t a, size_t b) { return groups[a][0] < groups[b][0]; });
  TransposePlan plan;
  plan.perm.resize(groups.size());
  for (size_t k = 0; k < by_input.size(); ++k) {
    int64_t d = 1;
    for (int64_t p : groups[by_input[k]]) d *= in[p];
    plan.dims.push_back(d);
    plan.perm[by_input[k]] = static_cast<int64_t>(k);
  }
  return plan;
}

constexpr int64_t kTile = 32;

// out[c][r] = in[r][c] for rows [r0, r1) of a rows x cols matrix, in tiles that fit in L1.
template <typename T>
void transpose_rows(const T* in, T* out, int64_t rows, int64_t cols, int64_t r0, int64_t r1) {
  for (int64_t c0 = 0; c0 < cols; c0 += kTile) {
    const int64_t c1 = std::min(cols, c0 + kTile);
    for (int64_t c = c0; c < c1; ++c)
      for (int64_t r = r0; r < r1; ++r) out[c * rows + r] = in[r * cols + c];
  }
}

template <typename T>
void run_plan(const RunContext& ctx, const TransposePlan& p, const T* in, T* out) {
  const size_t rank = p.dims.size();
  int64_t total = 1;
  for (int64_t d : p.dims) total *= d;
  if (rank <= 1) {
    std::memcpy(out, in, static_cast<size_t>(total) * sizeof(T));
    return;
  }
  // Batched 2-D transpose (leading dims kept, the last two swapped): NCHW <-> NHWC and plain
  // matrices. Work units are bands of kTile rows of one matrix.
  bool batched_2d = p.perm[rank - 2] == static_cast<int64_t>(rank - 1) && p.perm[rank - 1] == static_cast<int64_t>(rank - 2);
  for (size_t i = 0; i + 2 < rank; ++i) batched_2d = batched_2d && p.perm[i] == static_cast<int64_t>(i);
  if (batched_2d) {
    const int64_t rows = p.dims[rank - 2], cols = p.dims[rank - 1], matrix = rows * cols;
    const int64_t bands = (rows + kTile - 1) / kTile, units = (total / matrix) * bands;
    broadcast::parallel_range(ctx, units, std::max<int64_t>(1, (1 << 15) / (kTile * cols)), [&](int64_t b, int64_t e) {
      for (int64_t u = b; u < e; ++u) {
        const int64_t m = u / bands, r0 = (u % bands) * kTile;
        transpose_rows(in + m * matrix, out + m * matrix, rows, cols, r0, std::min(rows, r0 + kTile));
      }
    });
    return;
  }
  // General case: walk the output in order; the input offset follows through strides.
  std::vector<int64_t> in_stride(rank);
  for (size_t i = rank, s = 1; i-- > 0;) in_stride[i] = s, s *= p.dims[i];
  std::vector<int64_t> out_dims(rank), stride(rank);  // per output dim: size, input stride
  for (size_t i = 0; i < rank; ++i) out_dims[i] = p.dims[p.perm[i]], stride[i] = in_stride[p.perm[i]];
  const int64_t inner = out_dims[rank - 1], inner_stride = stride[rank - 1];
  const int64_t rows = total / inner;
  broadcast::parallel_range(ctx, rows, std::max<int64_t>(1, (1 << 15) / inner), [&](int64_t b, int64_t e) {
    std::vector<int64_t> index(rank - 1, 0);
    int64_t off = 0;
    for (size_t k = rank - 1, r = b; k-- > 0;) {
      index[k] = static_cast<int64_t>(r) % out_dims[k];
      r /= out_dims[k];
      off += index[k] * stride[k];
    }
    for (int64_t row = b; row < e; ++row) {
      T* o = out + row * inner;
      if (inner_stride == 1) {
        std::memcpy(o, in + off, static_cast<size_t>(inner) * sizeof(T));
      } else {
        for (int64_t j = 0; j < inner; ++j) o[j] = in[off + j * inner_stride];
      }
      for (size_t k = rank - 1; k-- > 0;) {
        off += stride[k];
        if (++index[k] < out_dims[k]) break;
        off -= index[k] * stride[k];
        index[k] = 0;
      }
    }
  });
}

class TransposeOp : public Op {
 public:
  explicit TransposeOp(const NodeDesc& node) : where_(node.where()), perm_attr_(node.get_ints("perm")), has_perm_(node.has("perm")) {}

  void infer(const std::vector<const Tensor*>& inputs, std::vector<Tensor>& outputs) override {
    const Tensor& x = op_args::required(inputs, 0, where_, "data");
    if (outputs.size() != 1) fail("ERR_MODEL_FORMAT", where_ + ": expected one output");
    const std::vector<int64_t> perm = permutation(x.shape.size());
    outputs[0].dtype = x.dtype;
    outputs[0].shape.resize(perm.size());
    for (size_t i = 0; i < perm.size(); ++i) outputs[0].shape[i] = x.shape[perm[i]];
  }

  void run(const std::vector<const Tensor*>& inputs, std::vector<Tensor*>& outputs, RunContext& ctx) override {
    const Tensor& x = *inputs[0];
    if (x.size() == 0) return;
    permute_elements(ctx, x.shape, permutation(x.shape.size()), dtype_size(x.dtype), x.data, outputs[0]->data);
  }

 private:
  std::vector<int64_t> permutation(size_t rank) const {
    if (!has_perm_) {
      std::vector<int64_t> reversed(rank);
      for (size_t i = 0; i < rank; ++i) reversed[i] = static_cast<int64_t>(rank - 1 - i);
      return reversed;
    }
    std::vector<bool> seen(rank, false);
    bool valid = perm_attr_.size() == rank;
    for (int64_t p : perm_attr_) {
      if (!valid || p < 0 || p >= static_cast<int64_t>(rank) || seen[p]) {
        valid = false;
        break;
      }
      seen[p] = true;
    }
    if (!valid)
      fail("ERR_SHAPE_MISMATCH", where_ + ": perm " + shape_str(perm_attr_) + " is not a permutation of " + std::to_string(rank) + " dims");
    return perm_attr_;
  }

  std::string where_;
  std::vector<int64_t> perm_attr_;
  bool has_perm_;
};

std::unique_ptr<Op> make_transpose(const BuildContext& bc) { return std::make_unique<TransposeOp>(bc.node); }

}  // namespace

void permute_elements(const RunContext& ctx, const Shape& in_shape, const std::vector<int64_t>& perm, size_t element_size,
                      const void* in, void* out) {
  const TransposePlan plan = simplify(in_shape, perm);
  switch (element_size) {
    case 1: return run_plan(ctx, plan, static_cast<const uint8_t*>(in), static_cast<uint8_t*>(out));
    case 4: return run_plan(ctx, plan, static_cast<const uint32_t*>(in), static_cast<uint32_t*>(out));
    case 8: return run_plan(ctx, plan, static_cast<const uint64_t*>(in), static_cast<uint64_t*>(out));
    default: fail("ERR_INTERNAL", "permute_elements: elements of " + std::to_string(element_size) + " bytes");
  }
}

TERNION_REGISTER_OP(Transpose, make_transpose);

}  // namespace exec
}  // namespace ternion
