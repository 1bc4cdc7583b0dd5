// Data movement that copies elements to new places without arithmetic: Tile, DepthToSpace
// (DCR and CRD), SpaceToDepth, Trilu (keep the upper or lower triangle of the last two axes)
// and GatherElements. Element size is all that matters, so every dtype works.
#include <cstring>

#include "exec/graph.h"
#include "exec/ops/op-args.h"

namespace ternion {
namespace exec {
namespace {

class TileOp : public Op {
 public:
  explicit TileOp(const NodeDesc& node) : where_(node.where()) {}
  void infer(const std::vector<const Tensor*>& inputs, std::vector<Tensor>& outputs) override {
    const Tensor& x = op_args::required(inputs, 0, where_, "input");
    const std::vector<int64_t> reps = op_args::read_ints(op_args::required(inputs, 1, where_, "repeats"), where_, "repeats");
    if (reps.size() != x.shape.size()) fail("ERR_SHAPE_MISMATCH", where_ + ": repeats " + shape_str(reps) + " must have one value per axis of " + shape_str(x.shape));
    Shape out = x.shape;
    for (size_t i = 0; i < reps.size(); ++i) {
      if (reps[i] < 0) fail("ERR_SHAPE_MISMATCH", where_ + ": repeats " + shape_str(reps) + " has a negative value");
      out[i] *= reps[i];
    }
    shape_size(out);
    if (outputs.size() != 1) fail("ERR_MODEL_FORMAT", where_ + ": expected one output");
    outputs[0].dtype = x.dtype;
    outputs[0].shape = out;
  }
  void run(const std::vector<const Tensor*>& inputs, std::vector<Tensor*>& outputs, RunContext&) override {
    const Tensor& x = *inputs[0];
    Tensor& y = *outputs[0];
    const int64_t n = y.size();
    if (n == 0) return;
    const size_t es = dtype_size(x.dtype), rank = y.shape.size();
    const std::vector<int64_t> xs = op_args::row_major_strides(x.shape);
    std::vector<int64_t> idx(rank, 0);
    const char* in = x.ptr<char>();
    char* out = y.ptr<char>();
    for (int64_t i = 0; i < n; ++i) {
      int64_t off = 0;
      for (size_t k = 0; k < rank; ++k) off += (idx[k] % x.shape[k]) * xs[k];
      std::memcpy(out + i * es, in + off * es, es);
      for (size_t k = rank; k-- > 0;) {
        if (++idx[k] < y.shape[k]) break;
        idx[k] = 0;
      }
    }
  }

 private:
  std::string where_;
};

// DepthToSpace / SpaceToDepth on [N, C, H, W] with block size b, as a 6-D transpose.
class SpaceDepthOp : public Op {
 public:
  SpaceDepthOp(const NodeDesc& node, bool to_space) : where_(node.where()), to_space_(to_space), block_(node.get_int("blocksize", 0)) {
    const std::string mode = node.get_string("mode", "DCR");
    if (mode != "DCR" && mode != "CRD") fail("ERR_UNSUPPORTED_OP", where_ + ": mode '" + mode + "' (expected DCR or CRD)");
    crd_ = to_space && mode == "CRD";
    if (block_ < 1) fail("ERR_MODEL_FORMAT", where_ + ": blocksize must be at least 1");
  }
  void infer(const std::vector<const Tensor*>& inputs, std::vector<Tensor>& outputs) override {
    const Tensor& x = op_args::required(inputs, 0, where_, "input");
    if (x.shape.size() != 4) fail("ERR_SHAPE_MISMATCH", where_ + ": input must be 4-D [N, C, H, W], got " + shape_str(x.shape));
    const int64_t b = block_, N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3];
    Shape out;
    if (to_space_) {
      if (C % (b * b)) fail("ERR_SHAPE_MISMATCH", where_ + ": channels " + std::to_string(C) + " are not a multiple of blocksize^2");
      out = {N, C / (b * b), H * b, W * b};
    } else {
      if (H % b || W % b) fail("ERR_SHAPE_MISMATCH", where_ + ": height and width must be multiples of blocksize");
      out = {N, C * b * b, H / b, W / b};
    }
    if (outputs.size() != 1) fail("ERR_MODEL_FORMAT", where_ + ": expected one output");
    outputs[0].dtype = x.dtype;
    outputs[0].shape = out;
  }
  void run(const std::vector<const Tensor*>& inputs, std::vector<Tensor*>& outputs, RunContext&) override {
    const Tensor& x = *inputs[0];
    Tensor& y = *outputs[0];
    const size_t es = dtype_size(x.dtype);
    const int64_t b = block_;
    // Walk the depth-side tensor [N, C', H', W'] (the input of DepthToSpace, the output of
    // SpaceToDepth) and map each element to its place on the space side [N, c, H'*b, W'*b].
    const Tensor& depth = to_space_ ? x : y;
    const Tensor& space = to_space_ ? y : x;
    const int64_t N = depth.shape[0], Cd = depth.shape[1], Hd = depth.shape[2], Wd = depth.shape[3];
    const int64_t c = space.shape[1], Hs = space.shape[2], Ws = space.shape[3];
    const char* in = x.ptr<char>();
    char* out = y.ptr<char>();
    for (int64_t n = 0; n < N; ++n)
      for (int64_t cd = 0; cd < Cd; ++cd) {
        // DCR: cd = (bh * b + bw) * c + ch; CRD: cd = ch * b * b + bh * b + bw.
        int64_t ch, bh, bw;
        if (crd_) ch = cd / (b * b), bh = (cd / b) % b, bw = cd % b;
        else bh = cd / (b * c), bw = (cd / c) % b, ch = cd % c;
        for (int64_t h = 0; h < Hd; ++h)
          for (int64_t w = 0; w < Wd; ++w) {
            const int64_t d_off = ((n * Cd + cd) * Hd + h) * Wd + w;
            const int64_t s_off = ((n * c + ch) * Hs + h * b + bh) * Ws + w * b + bw;
            if (to_space_) std::memcpy(out + s_off * es, in + d_off * es, es);
            else std::memcpy(out + d_off * es, in + s_off * es, es);
          }
      }
  }

 private:
  std::string where_;
  bool to_space_, crd_ = false;
  int64_t block_;
};

class TriluOp : public Op {
 public:
  explicit TriluOp(const NodeDesc& node) : where_(node.where()), upper_(node.get_int("upper", 1) != 0) {}
  void infer(const std::vector<const Tensor*>& inputs, std::vector<Tensor>& outputs) override {
    const Tensor& x = op_args::required(inputs, 0, where_, "input");
    if (x.shape.size() < 2) fail("ERR_SHAPE_MISMATCH", where_ + ": input must have rank >= 2, got " + shape_str(x.shape));
    if (const Tensor* k = op_args::optional(inputs, 1)) op_args::read_scalar(*k, where_, "k");
    if (outputs.size() != 1) fail("ERR_MODEL_FORMAT", where_ + ": expected one output");
    outputs[0].dtype = x.dtype;
    outputs[0].shape = x.shape;
  }
  void run(const std::vector<const Tensor*>& inputs, std::vector<Tensor*>& outputs, RunContext&) override {
    const Tensor& x = *inputs[0];
    Tensor& y = *outputs[0];
    const int64_t k = op_args::optional(inputs, 1) ? static_cast<int64_t>(op_args::read_scalar(*inputs[1], where_, "k")) : 0;
    const size_t es = dtype_size(x.dtype);
    const int64_t R = x.shape[x.shape.size() - 2], C = x.shape.back(), mats = (R * C) != 0 ? x.size() / (R * C) : 0;
    std::memset(y.data, 0, y.bytes());
    for (int64_t m = 0; m < mats; ++m)
      for (int64_t r = 0; r < R; ++r)
        for (int64_t c = 0; c < C; ++c)
          if (upper_ ? c - r >= k : c - r <= k) {
            const int64_t off = (m * R + r) * C + c;
            std::memcpy(y.ptr<char>() + off * es, x.ptr<char>() + off * es, es);
          }
  }

 private:
  std::string where_;
  bool upper_;
};

// GatherElements: out[i][j][k] = data[index[i][j][k]][j][k] (for axis 0), indices int64/int32.
class GatherElementsOp : public Op {
 public:
  explicit GatherElementsOp(const NodeDesc& node) : where_(node.where()), axis_(node.get_int("axis", 0)) {}
  void infer(const std::vector<const Tensor*>& inputs, std::vector<Tensor>& outputs) override {
    const Tensor& data = op_args::required(inputs, 0, where_, "data");
    const Tensor& idx = op_args::required(inputs, 1, where_, "indices");
    op_args::require_dtype(idx, {DType::I64, DType::I32}, where_, "indices");
    if (idx.shape.size() != data.shape.size()) fail("ERR_SHAPE_MISMATCH", where_ + ": indices " + shape_str(idx.shape) + " and data " + shape_str(data.shape) + " differ in rank");
    const int64_t axis = op_args::normalize_axis(axis_, static_cast<int64_t>(data.shape.size()), where_);
    for (size_t i = 0; i < idx.shape.size(); ++i)
      if (static_cast<int64_t>(i) != axis && idx.shape[i] > data.shape[i])
        fail("ERR_SHAPE_MISMATCH", where_ + ": indices " + shape_str(idx.shape) + " exceed data " + shape_str(data.shape));
    if (outputs.size() != 1) fail("ERR_MODEL_FORMAT", where_ + ": expected one output");
    outputs[0].dtype = data.dtype;
    outputs[0].shape = idx.shape;
  }
  void run(const std::vector<const Tensor*>& inputs, std::vector<Tensor*>& outputs, RunContext&) override {
    const Tensor& data = *inputs[0];
    const Tensor& idx = *inputs[1];
    Tensor& y = *outputs[0];
    const size_t rank = data.shape.size(), es = dtype_size(data.dtype);
    const size_t axis = static_cast<size_t>(op_args::normalize_axis(axis_, static_cast<int64_t>(rank), where_));
    const std::vector<int64_t> ds = op_args::row_major_strides(data.shape);
    std::vector<int64_t> pos(rank, 0);
    for (int64_t i = 0, n = y.size(); i < n; ++i) {
      int64_t v = idx.dtype == DType::I64 ? idx.ptr<int64_t>()[i] : idx.ptr<int32_t>()[i];
      const int64_t d = data.shape[axis];
      if (v < 0) v += d;
      if (v < 0 || v >= d) fail("ERR_INVALID_ARGUMENT", where_ + ": index " + std::to_string(v) + " is out of range for an axis of " + std::to_string(d));
      int64_t off = 0;
      for (size_t k = 0; k < rank; ++k) off += (k == axis ? v : pos[k]) * ds[k];
      std::memcpy(y.ptr<char>() + i * es, data.ptr<char>() + off * es, es);
      for (size_t k = rank; k-- > 0;) {
        if (++pos[k] < idx.shape[k]) break;
        pos[k] = 0;
      }
    }
  }

 private:
  std::string where_;
  int64_t axis_;
};

std::unique_ptr<Op> make_tile(const BuildContext& bc) { return std::make_unique<TileOp>(bc.node); }
std::unique_ptr<Op> make_depth_to_space(const BuildContext& bc) { return std::make_unique<SpaceDepthOp>(bc.node, true); }
std::unique_ptr<Op> make_space_to_depth(const BuildContext& bc) { return std::make_unique<SpaceDepthOp>(bc.node, false); }
std::unique_ptr<Op> make_trilu(const BuildContext& bc) { return std::make_unique<TriluOp>(bc.node); }
std::unique_ptr<Op> make_gather_elements(const BuildContext& bc) { return std::make_unique<GatherElementsOp>(bc.node); }

}  // namespace

TERNION_REGISTER_OP(Tile, make_tile);
TERNION_REGISTER_OP(DepthToSpace, make_depth_to_space);
TERNION_REGISTER_OP(SpaceToDepth, make_space_to_depth);
TERNION_REGISTER_OP(Trilu, make_trilu);
TERNION_REGISTER_OP(GatherElements, make_gather_elements);

}  // namespace exec
}  // namespace ternion
