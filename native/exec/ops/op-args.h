// Argument checks shared by the elementwise, activation, softmax, shape and quantize ops:
// required inputs, dtypes, axes and the values of small integer inputs (Reshape's shape,
// Slice's starts...). Everything throws ExecError naming the node; nothing here crashes on
// malformed models.
#pragma once

#include <algorithm>
#include <initializer_list>
#include <string>
#include <vector>

#include "exec/graph.h"

namespace ternion {
namespace exec {
namespace op_args {

inline std::string ints_str(const std::vector<int64_t>& v) { return shape_str(v); }

// Input i, which the op cannot do without (ERR_MODEL_FORMAT when the model omits it).
inline const Tensor& required(const std::vector<const Tensor*>& inputs, size_t i, const std::string& where,
                              const char* what) {
  if (i >= inputs.size() || !inputs[i])
    fail("ERR_MODEL_FORMAT", where + ": missing required input " + std::to_string(i) + " (" + what + ")");
  return *inputs[i];
}

// Input i when present, else null (an optional input the model omitted or did not list).
inline const Tensor* optional(const std::vector<const Tensor*>& inputs, size_t i) {
  return i < inputs.size() ? inputs[i] : nullptr;
}

inline void require_dtype(const Tensor& t, std::initializer_list<DType> allowed, const std::string& where,
                          const char* what) {
  for (DType d : allowed)
    if (t.dtype == d) return;
  std::string names;
  for (DType d : allowed) names += std::string(names.empty() ? "" : ", ") + dtype_name(d);
  fail("ERR_DTYPE", where + ": " + what + " has dtype " + dtype_name(t.dtype) + ", expected one of " + names);
}

// Two operands that must share one element type (a binary op's A and B, Where's X and Y).
inline void require_same_dtype(const Tensor& a, const Tensor& b, const std::string& where, const char* a_name, const char* b_name) {
  if (a.dtype != b.dtype)
    fail("ERR_DTYPE", where + ": " + a_name + " is " + dtype_name(a.dtype) + " but " + b_name + " is " + dtype_name(b.dtype));
}

// An axis in [-rank, rank) (or [-rank, rank] when `inclusive`, as Flatten allows) made
// non-negative; ERR_SHAPE_MISMATCH outside.
inline int64_t normalize_axis(int64_t axis, int64_t rank, const std::string& where, bool inclusive = false) {
  const int64_t hi = inclusive ? rank : rank - 1;
  if (axis < -rank || axis > hi)
    fail("ERR_SHAPE_MISMATCH", where + ": axis " + std::to_string(axis) + " is out of range for rank " +
                                   std::to_string(rank));
  return axis < 0 ? axis + rank : axis;
}

// Normalized, distinct axes (Squeeze, Unsqueeze, Slice, Pad).
inline std::vector<int64_t> normalize_axes(const std::vector<int64_t>& axes, int64_t rank, const std::string& where) {
  std::vector<int64_t> out;
  out.reserve(axes.size());
  for (int64_t a : axes) {
    const int64_t n = normalize_axis(a, rank, where);
    if (std::find(out.begin(), out.end(), n) != out.end())
      fail("ERR_SHAPE_MISMATCH", where + ": axes " + ints_str(axes) + " repeat axis " + std::to_string(n));
    out.push_back(n);
  }
  return out;
}

// The values of a small 1-D (or scalar) int32/int64 tensor. Ops read these in infer(): the
// executor computes every input before infer() runs, so the data of run-time tensors is there.
inline std::vector<int64_t> read_ints(const Tensor& t, const std::string& where, const char* what) {
  require_dtype(t, {DType::I64, DType::I32}, where, what);
  if (t.shape.size() > 1) fail("ERR_SHAPE_MISMATCH", where + ": " + what + " must be 1-D, got shape " + shape_str(t.shape));
  const int64_t n = t.size();
  std::vector<int64_t> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) out[i] = t.dtype == DType::I64 ? t.ptr<int64_t>()[i] : t.ptr<int32_t>()[i];
  return out;
}

// A one-element tensor's value as double (Clip's bounds, Pad's constant_value).
inline double read_scalar(const Tensor& t, const std::string& where, const char* what) {
  if (t.size() != 1) fail("ERR_SHAPE_MISMATCH", where + ": " + what + " must hold one value, got shape " + shape_str(t.shape));
  switch (t.dtype) {
    case DType::F32: return t.ptr<float>()[0];
    case DType::U8: return t.ptr<uint8_t>()[0];
    case DType::I8: return t.ptr<int8_t>()[0];
    case DType::I32: return t.ptr<int32_t>()[0];
    case DType::I64: return static_cast<double>(t.ptr<int64_t>()[0]);
    case DType::Bool: return t.ptr<uint8_t>()[0] ? 1 : 0;
  }
  return 0;
}

// The executor's dtype for an ONNX TensorProto element type code (Cast's `to`, EyeLike's
// `dtype`); false for the types it does not hold (float16, double, string...).
inline bool dtype_from_onnx(int64_t code, DType& out) {
  switch (code) {
    case 1: out = DType::F32; return true;
    case 2: out = DType::U8; return true;
    case 3: out = DType::I8; return true;
    case 6: out = DType::I32; return true;
    case 7: out = DType::I64; return true;
    case 9: out = DType::Bool; return true;
    default: return false;
  }
}

// Product of dims [begin, end).
inline int64_t dims_product(const Shape& s, size_t begin, size_t end) {
  int64_t n = 1;
  for (size_t i = begin; i < end && i < s.size(); ++i) n *= s[i];
  return n;
}

// Row-major element strides of a shape.
inline std::vector<int64_t> row_major_strides(const Shape& s) {
  std::vector<int64_t> st(s.size(), 1);
  for (size_t i = s.size(); i-- > 1;) st[i - 1] = st[i] * s[i];
  return st;
}

// Element i of an int32 or int64 index tensor (the caller checked the dtype).
inline int64_t index_at(const Tensor& t, int64_t i) {
  return t.dtype == DType::I64 ? t.ptr<int64_t>()[i] : t.ptr<int32_t>()[i];
}

// An index into an axis of `dim` elements, negative ones counting from the end: made
// non-negative, or ERR_INVALID_ARGUMENT naming the index, where it sits and the axis.
inline int64_t checked_index(int64_t v, int64_t dim, const std::string& where, const char* what, int64_t position,
                             int64_t axis) {
  if (v < -dim || v >= dim)
    fail("ERR_INVALID_ARGUMENT", where + ": " + what + " value " + std::to_string(v) + " (at position " +
                                     std::to_string(position) + ") is out of range [" + std::to_string(-dim) + ", " +
                                     std::to_string(dim - 1) + "] for axis " + std::to_string(axis) + " of size " +
                                     std::to_string(dim));
  return v < 0 ? v + dim : v;
}

}  // namespace op_args
}  // namespace exec
}  // namespace ternion
