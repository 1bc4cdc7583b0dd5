// Numpy multidirectional broadcasting for binary elementwise ops, reduced to a few contiguous
// inner loops the compiler vectorizes, and a splitter that spreads large elementwise work over
// the thread pool.
#pragma once

#include <algorithm>
#include <vector>

#include "exec/graph.h"

namespace ternion {
namespace exec {
namespace broadcast {

// The numpy broadcast of two shapes; ERR_SHAPE_MISMATCH naming the node when incompatible.
inline Shape broadcast_shapes(const Shape& a, const Shape& b, const std::string& where) {
  const size_t rank = std::max(a.size(), b.size());
  Shape out(rank);
  for (size_t i = 0; i < rank; ++i) {
    const int64_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    const int64_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    if (da != db && da != 1 && db != 1)
      fail("ERR_SHAPE_MISMATCH", where + ": shapes " + shape_str(a) + " and " + shape_str(b) + " cannot be broadcast");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

// Element strides of a tensor of shape `s` read through a broadcast to `out`: 0 along the dims
// it repeats (size 1, or missing on the left).
inline std::vector<int64_t> broadcast_strides(const Shape& s, const Shape& out) {
  std::vector<int64_t> st(out.size(), 0);
  int64_t step = 1;
  for (size_t k = 0; k < s.size(); ++k) {
    const size_t i = out.size() - 1 - k;
    const int64_t d = s[s.size() - 1 - k];
    st[i] = d == 1 ? 0 : step;
    step *= d;
  }
  return st;
}

// A broadcast walk over `out`: dims of size 1 dropped and neighbours merged whenever both inputs
// step through them the same way, so the common cases collapse to one loop ("same shape"), or an
// outer loop over an inner run against a repeated value ("per channel": [N,C,H,W] + [C,1,1]).
struct BinaryPlan {
  std::vector<int64_t> dims;                // outermost first; never empty (a scalar is {1})
  std::vector<int64_t> stride_a, stride_b;  // element strides, 0 where the input is repeated
  int64_t inner() const { return dims.back(); }
  int64_t rows() const {
    int64_t r = 1;
    for (size_t i = 0; i + 1 < dims.size(); ++i) r *= dims[i];
    return r;
  }
};

inline BinaryPlan plan_binary(const Shape& a, const Shape& b, const Shape& out) {
  const size_t rank = out.size();
  const std::vector<int64_t> sa = broadcast_strides(a, out), sb = broadcast_strides(b, out);
  BinaryPlan p;
  for (size_t i = 0; i < rank; ++i) {
    if (out[i] == 1) continue;
    if (!p.dims.empty() && p.stride_a.back() == sa[i] * out[i] && p.stride_b.back() == sb[i] * out[i]) {
      p.dims.back() *= out[i];  // contiguous with the dim before it in both inputs
      p.stride_a.back() = sa[i];
      p.stride_b.back() = sb[i];
      continue;
    }
    p.dims.push_back(out[i]);
    p.stride_a.push_back(sa[i]);
    p.stride_b.push_back(sb[i]);
  }
  if (p.dims.empty()) p.dims = {1}, p.stride_a = {0}, p.stride_b = {0};
  return p;
}

// Splits [0, n) into chunks for the run's threads when the work is large enough to pay for
// waking them; fn(begin, end) must not throw. `min_per_task` is the smallest chunk worth a task.
template <typename Fn>
void parallel_range(const RunContext& ctx, int64_t n, int64_t min_per_task, const Fn& fn) {
  const int threads = ctx.gemm.pool ? std::min(ctx.gemm.threads, ctx.gemm.pool->size()) : 1;
  const int64_t tasks = std::min<int64_t>(threads, n / std::max<int64_t>(min_per_task, 1));
  if (tasks <= 1) {
    if (n > 0) fn(int64_t(0), n);
    return;
  }
  // Chunk edges on multiples of 16 elements keep threads off each other's cache lines.
  const int64_t chunk = ((n + tasks - 1) / tasks + 15) & ~int64_t(15);
  ctx.gemm.pool->parallel_for(static_cast<int>(tasks), static_cast<int>(tasks), [&](int t) {
    const int64_t begin = t * chunk, end = std::min(n, begin + chunk);
    if (begin < end) fn(begin, end);
  });
}

// out[i] = fn(a[i], b[i]) over a broadcast plan. Each inner run is one of three contiguous loops
// (both stepping, or one side a repeated value), which is where the time goes.
// The output's element type O may differ from the inputs' (comparisons write bool).
template <typename T, typename O, typename Fn>
void run_binary(const RunContext& ctx, const BinaryPlan& p, const T* a, const T* b, O* out, const Fn& fn,
                int64_t min_per_task = 1 << 15) {
  const int64_t inner = p.inner(), total = p.rows() * inner;
  const size_t outer_rank = p.dims.size() - 1;
  const int64_t ia = p.stride_a.back(), ib = p.stride_b.back();
  parallel_range(ctx, total, min_per_task, [&](int64_t begin, int64_t end) {
    // Position of `begin`: its row's index over the outer dims, and the inputs' offsets there.
    std::vector<int64_t> index(outer_rank, 0);
    int64_t row = begin / inner, col = begin % inner, off_a = 0, off_b = 0;
    for (size_t k = outer_rank; k-- > 0;) {
      index[k] = row % p.dims[k];
      row /= p.dims[k];
      off_a += index[k] * p.stride_a[k];
      off_b += index[k] * p.stride_b[k];
    }
    for (int64_t pos = begin; pos < end;) {
      const int64_t n = std::min(inner - col, end - pos);
      const T* pa = a + off_a + col * ia;
      const T* pb = b + off_b + col * ib;
      O* po = out + pos;
      if (ia == 1 && ib == 1) {
        for (int64_t i = 0; i < n; ++i) po[i] = fn(pa[i], pb[i]);
      } else if (ia == 1 && ib == 0) {
        const T y = *pb;
        for (int64_t i = 0; i < n; ++i) po[i] = fn(pa[i], y);
      } else if (ia == 0 && ib == 1) {
        const T x = *pa;
        for (int64_t i = 0; i < n; ++i) po[i] = fn(x, pb[i]);
      } else {
        for (int64_t i = 0; i < n; ++i) po[i] = fn(pa[i * ia], pb[i * ib]);
      }
      pos += n;
      col = 0;
      // Next row: advance the outer index like an odometer.
      for (size_t k = outer_rank; k-- > 0;) {
        off_a += p.stride_a[k];
        off_b += p.stride_b[k];
        if (++index[k] < p.dims[k]) break;
        off_a -= index[k] * p.stride_a[k];
        off_b -= index[k] * p.stride_b[k];
        index[k] = 0;
      }
    }
  });
}

}  // namespace broadcast
}  // namespace exec
}  // namespace ternion
