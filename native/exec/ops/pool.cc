// ONNX pooling: MaxPool (float32, uint8, int8; optional int64 Indices output), AveragePool
// (count_include_pad), both 1-D to 3-D with pads / auto_pad, strides, dilations and ceil_mode;
// GlobalAveragePool and GlobalMaxPool over every spatial axis. Planes (n, c) run in parallel.
#include <algorithm>
#include <cstring>
#include <limits>
#include <vector>

#include "exec/graph.h"
#include "exec/ops/conv-common.h"

namespace ternion {
namespace exec {
namespace ops {
namespace {

enum class PoolKind { Max, Average };

Shape pooled_shape(const Shape& x, const Window3& g) {
  Shape y{x[0], x[1]};
  for (int i = 3 - g.nd; i < 3; ++i) y.push_back(g.out[i]);
  return y;
}

// Max over one plane; idx (may be null) receives the flat input index of each maximum, in
// row-major (storage_order 0) or column-major (1) order of the spatial axes, plus `base`.
template <typename T>
void max_pool_plane(const T* x, const Window3& g, T* y, int64_t* idx, int64_t base, bool column_major) {
  const int64_t D = g.in[0], H = g.in[1], W = g.in[2];
  for (int64_t od = 0; od < g.out[0]; ++od)
    for (int64_t oh = 0; oh < g.out[1]; ++oh)
      for (int64_t ow = 0; ow < g.out[2]; ++ow) {
        T best = std::numeric_limits<T>::lowest();
        int64_t best_at = -1;
        bool any = false;
        for (int64_t kd = 0; kd < g.k[0]; ++kd) {
          const int64_t id = od * g.s[0] - g.pb[0] + kd * g.d[0];
          if (id < 0 || id >= D) continue;
          for (int64_t kh = 0; kh < g.k[1]; ++kh) {
            const int64_t ih = oh * g.s[1] - g.pb[1] + kh * g.d[1];
            if (ih < 0 || ih >= H) continue;
            const T* row = x + (id * H + ih) * W;
            for (int64_t kw = 0; kw < g.k[2]; ++kw) {
              const int64_t iw = ow * g.s[2] - g.pb[2] + kw * g.d[2];
              if (iw < 0 || iw >= W) continue;
              const T v = row[iw];
              // The first maximum wins; NaN propagates like ORT's (v > best is false for NaN).
              if (!any || v > best) {
                best = v;
                best_at = column_major ? id + ih * D + iw * D * H : (id * H + ih) * W + iw;
                any = true;
              }
            }
          }
        }
        const int64_t o = (od * g.out[1] + oh) * g.out[2] + ow;
        y[o] = best;
        if (idx) idx[o] = best_at < 0 ? -1 : base + best_at;
      }
}

// The common 2-D case without indices (dilation 1, no storage order): a vertical max of the
// window's input rows into a row buffer (contiguous, vectorizes), then a horizontal max over
// each output's taps. Same result as max_pool_plane: max is exact in any order, and a NaN
// input gives NaN there too (as the first-tap fallback never propagates NaN, neither does this).
template <typename T>
void max_pool_plane_2d(const T* x, const Window3& g, T* y, T* rowbuf) {
  const int64_t H = g.in[1], W = g.in[2], OH = g.out[1], OW = g.out[2];
  const int64_t KH = g.k[1], KW = g.k[2], SH = g.s[1], SW = g.s[2], PH = g.pb[1], PW = g.pb[2];
  for (int64_t oh = 0; oh < OH; ++oh) {
    const int64_t h0 = std::max<int64_t>(oh * SH - PH, 0), h1 = std::min<int64_t>(oh * SH - PH + KH, H);
    T* out = y + oh * OW;
    if (h0 >= h1) {  // the window lies in the padding only: as max_pool_plane (lowest value)
      for (int64_t ow = 0; ow < OW; ++ow) out[ow] = std::numeric_limits<T>::lowest();
      continue;
    }
    std::memcpy(rowbuf, x + h0 * W, static_cast<size_t>(W) * sizeof(T));
    for (int64_t ih = h0 + 1; ih < h1; ++ih) {
      const T* r = x + ih * W;
      for (int64_t w = 0; w < W; ++w) rowbuf[w] = r[w] > rowbuf[w] ? r[w] : rowbuf[w];
    }
    // Stride 1: outputs whose window lies inside the row take the taps in the same order as
    // contiguous passes over the row (they vectorize); the clipped ones at the edges one by one.
    int64_t in_lo = OW, in_hi = OW;
    if (SW == 1) {
      in_lo = std::min<int64_t>(PW, OW);
      in_hi = std::max<int64_t>(in_lo, std::min<int64_t>(W - KW + PW + 1, OW));
      for (int64_t ow = in_lo; ow < in_hi; ++ow) out[ow] = rowbuf[ow - PW];
      for (int64_t k = 1; k < KW; ++k)
        for (int64_t ow = in_lo; ow < in_hi; ++ow) {
          const T v = rowbuf[ow - PW + k];
          out[ow] = v > out[ow] ? v : out[ow];
        }
    }
    for (int64_t ow = 0; ow < OW; ++ow) {
      if (ow == in_lo) ow = in_hi;
      if (ow >= OW) break;
      const int64_t w0 = std::max<int64_t>(ow * SW - PW, 0), w1 = std::min<int64_t>(ow * SW - PW + KW, W);
      T best = std::numeric_limits<T>::lowest();
      if (w0 < w1) {
        best = rowbuf[w0];
        for (int64_t w = w0 + 1; w < w1; ++w) best = rowbuf[w] > best ? rowbuf[w] : best;
      }
      out[ow] = best;
    }
  }
}

void average_pool_plane(const float* x, const Window3& g, bool count_include_pad, float* y) {
  const int64_t D = g.in[0], H = g.in[1], W = g.in[2];
  // Taps inside the input, or inside input + pads for count_include_pad.
  auto counted = [&](int axis, int64_t pos) {
    const int64_t lo = count_include_pad ? -g.pb[axis] : 0;
    const int64_t hi = g.in[axis] + (count_include_pad ? g.pe[axis] : 0);
    return pos >= lo && pos < hi;
  };
  for (int64_t od = 0; od < g.out[0]; ++od)
    for (int64_t oh = 0; oh < g.out[1]; ++oh)
      for (int64_t ow = 0; ow < g.out[2]; ++ow) {
        float sum = 0.0f;
        int64_t n[3] = {0, 0, 0};
        const int64_t start[3] = {od * g.s[0] - g.pb[0], oh * g.s[1] - g.pb[1], ow * g.s[2] - g.pb[2]};
        for (int a = 0; a < 3; ++a)
          for (int64_t k = 0; k < g.k[a]; ++k) n[a] += counted(a, start[a] + k * g.d[a]) ? 1 : 0;
        for (int64_t kd = 0; kd < g.k[0]; ++kd) {
          const int64_t id = start[0] + kd * g.d[0];
          if (id < 0 || id >= D) continue;
          for (int64_t kh = 0; kh < g.k[1]; ++kh) {
            const int64_t ih = start[1] + kh * g.d[1];
            if (ih < 0 || ih >= H) continue;
            const float* row = x + (id * H + ih) * W;
            for (int64_t kw = 0; kw < g.k[2]; ++kw) {
              const int64_t iw = start[2] + kw * g.d[2];
              if (iw >= 0 && iw < W) sum += row[iw];
            }
          }
        }
        const int64_t count = n[0] * n[1] * n[2];
        y[(od * g.out[1] + oh) * g.out[2] + ow] = count > 0 ? sum / static_cast<float>(count) : 0.0f;
      }
}

class PoolOp : public Op {
 public:
  PoolOp(const BuildContext& bc, PoolKind kind) : node_(bc.node), kind_(kind) {
    attrs_ = read_window_attrs(node_);
    if (attrs_.kernel.empty()) fail("ERR_MODEL_FORMAT", node_.where() + ": attribute kernel_shape is required");
    count_include_pad_ = node_.get_int("count_include_pad", 0) != 0;
    column_major_ = node_.get_int("storage_order", 0) != 0;
    with_indices_ = node_.outputs.size() > 1 && node_.outputs[1] >= 0;
    if (node_.outputs.size() > (kind_ == PoolKind::Max ? 2u : 1u))
      fail("ERR_UNSUPPORTED_OP", node_.where() + " has too many outputs");
    node_.release_attrs();  // every attribute read above
  }

  void infer(const std::vector<const Tensor*>& in, std::vector<Tensor>& out) override {
    const Tensor* x = require_input(node_, in, 0, "X");
    if (kind_ == PoolKind::Average) {
      require_dtype(node_, x, "input X", DType::F32);
    } else if (x->dtype != DType::F32 && x->dtype != DType::U8 && x->dtype != DType::I8) {
      fail("ERR_DTYPE", node_.where() + ": input X must be float32, uint8 or int8, got " + dtype_name(x->dtype));
    }
    const Window3 g = window(*x);
    const Shape y = pooled_shape(x->shape, g);
    out.resize(node_.outputs.size());
    out[0].dtype = x->dtype;
    out[0].shape = y;
    if (out.size() > 1) {
      out[1].dtype = DType::I64;
      out[1].shape = y;
    }
  }

  void run(const std::vector<const Tensor*>& in, std::vector<Tensor*>& out, RunContext& ctx) override {
    const Tensor& x = *in[0];
    const Window3 g = window(x);
    const int64_t planes = x.shape[0] * x.shape[1];
    const int64_t in_plane = g.in_size(), out_plane = g.out_size();
    int64_t* idx = out.size() > 1 && with_indices_ ? out[1]->ptr<int64_t>() : nullptr;
    const bool fast_2d = kind_ == PoolKind::Max && !idx && g.nd <= 2 && g.d[1] == 1 && g.d[2] == 1;
    if (fast_2d) {
      const size_t row_bytes = static_cast<size_t>(g.in[2]) * dtype_size(x.dtype);
      parallel_ranges(ctx.gemm, planes, 1, [&](int64_t begin, int64_t end) {
        std::vector<uint8_t> buf(row_bytes + 64);
        for (int64_t p = begin; p < end; ++p) {
          if (x.dtype == DType::F32)
            max_pool_plane_2d(x.ptr<float>() + p * in_plane, g, out[0]->ptr<float>() + p * out_plane, reinterpret_cast<float*>(buf.data()));
          else if (x.dtype == DType::U8)
            max_pool_plane_2d(x.ptr<uint8_t>() + p * in_plane, g, out[0]->ptr<uint8_t>() + p * out_plane, buf.data());
          else
            max_pool_plane_2d(x.ptr<int8_t>() + p * in_plane, g, out[0]->ptr<int8_t>() + p * out_plane, reinterpret_cast<int8_t*>(buf.data()));
        }
      });
      return;
    }
    parallel_ranges(ctx.gemm, planes, 1, [&](int64_t begin, int64_t end) {
      for (int64_t p = begin; p < end; ++p) {
        int64_t* ip = idx ? idx + p * out_plane : nullptr;
        if (kind_ == PoolKind::Average) {
          average_pool_plane(x.ptr<float>() + p * in_plane, g, count_include_pad_, out[0]->ptr<float>() + p * out_plane);
        } else if (x.dtype == DType::F32) {
          max_pool_plane(x.ptr<float>() + p * in_plane, g, out[0]->ptr<float>() + p * out_plane, ip, p * in_plane, column_major_);
        } else if (x.dtype == DType::U8) {
          max_pool_plane(x.ptr<uint8_t>() + p * in_plane, g, out[0]->ptr<uint8_t>() + p * out_plane, ip, p * in_plane, column_major_);
        } else {
          max_pool_plane(x.ptr<int8_t>() + p * in_plane, g, out[0]->ptr<int8_t>() + p * out_plane, ip, p * in_plane, column_major_);
        }
      }
    });
  }

 private:
  Window3 window(const Tensor& x) const {
    if (x.shape.size() < 3)
      fail("ERR_SHAPE_MISMATCH", node_.where() + ": input " + shape_str(x.shape) + " must have rank >= 3 (N, C, spatial...)");
    return resolve_window(node_, attrs_, x.shape.data() + 2, static_cast<int>(x.shape.size() - 2), attrs_.kernel);
  }

  NodeDesc node_;
  PoolKind kind_;
  WindowAttrs attrs_;
  bool count_include_pad_ = false;
  bool column_major_ = false;
  bool with_indices_ = false;
};

// GlobalAveragePool / GlobalMaxPool: one value per (n, c) over all spatial axes.
class GlobalPoolOp : public Op {
 public:
  GlobalPoolOp(const BuildContext& bc, PoolKind kind) : node_(bc.node), kind_(kind) {
    if (node_.outputs.size() != 1) fail("ERR_UNSUPPORTED_OP", node_.where() + " must have exactly one output");
    node_.release_attrs();  // every attribute read above
  }

  void infer(const std::vector<const Tensor*>& in, std::vector<Tensor>& out) override {
    const Tensor* x = require_input(node_, in, 0, "X");
    require_dtype(node_, x, "input X", DType::F32);
    if (x->shape.size() < 2)
      fail("ERR_SHAPE_MISMATCH", node_.where() + ": input " + shape_str(x->shape) + " must have rank >= 2 (N, C, spatial...)");
    Shape y = x->shape;
    for (size_t i = 2; i < y.size(); ++i) y[i] = 1;
    out.resize(1);
    out[0].dtype = DType::F32;
    out[0].shape = y;
  }

  void run(const std::vector<const Tensor*>& in, std::vector<Tensor*>& out, RunContext& ctx) override {
    const Tensor& x = *in[0];
    const int64_t planes = x.shape[0] * x.shape[1];
    const int64_t plane = planes ? x.size() / planes : 0;
    const float* X = x.ptr<float>();
    float* Y = out[0]->ptr<float>();
    parallel_ranges(ctx.gemm, planes, 16, [&](int64_t begin, int64_t end) {
      for (int64_t p = begin; p < end; ++p) {
        const float* v = X + p * plane;
        if (kind_ == PoolKind::Average) {
          // Eight partial sums: vectorizable and a little more accurate than one long chain.
          float part[8] = {0, 0, 0, 0, 0, 0, 0, 0};
          int64_t i = 0;
          for (; i + 8 <= plane; i += 8)
            for (int j = 0; j < 8; ++j) part[j] += v[i + j];
          float sum = 0.0f;
          for (; i < plane; ++i) sum += v[i];
          for (int j = 0; j < 8; ++j) sum += part[j];
          Y[p] = plane > 0 ? sum / static_cast<float>(plane) : 0.0f;
        } else {
          float best = plane > 0 ? v[0] : 0.0f;
          for (int64_t i = 1; i < plane; ++i) best = v[i] > best ? v[i] : best;
          Y[p] = best;
        }
      }
    });
  }

 private:
  NodeDesc node_;
  PoolKind kind_;
};

std::unique_ptr<Op> make_max_pool(const BuildContext& bc) { return std::make_unique<PoolOp>(bc, PoolKind::Max); }
std::unique_ptr<Op> make_average_pool(const BuildContext& bc) { return std::make_unique<PoolOp>(bc, PoolKind::Average); }
std::unique_ptr<Op> make_global_average_pool(const BuildContext& bc) {
  return std::make_unique<GlobalPoolOp>(bc, PoolKind::Average);
}
std::unique_ptr<Op> make_global_max_pool(const BuildContext& bc) { return std::make_unique<GlobalPoolOp>(bc, PoolKind::Max); }

}  // namespace
}  // namespace ops
}  // namespace exec
}  // namespace ternion

TERNION_REGISTER_OP(MaxPool, ternion::exec::ops::make_max_pool);
TERNION_REGISTER_OP(AveragePool, ternion::exec::ops::make_average_pool);
TERNION_REGISTER_OP(GlobalAveragePool, ternion::exec::ops::make_global_average_pool);
TERNION_REGISTER_OP(GlobalMaxPool, ternion::exec::ops::make_global_max_pool);
