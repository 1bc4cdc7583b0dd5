// Argument readers for the addon's entry points: each checks type, length and range before
// any memory is touched, and throws a CodedError that names the argument.
#pragma once

#include <napi.h>

#include <cstdint>
#include <string>

#include "addon/errors.h"

namespace ternion {
namespace addon {

inline std::string received(const Napi::Value& v) {
  if (v.IsUndefined()) return "undefined";
  if (v.IsNull()) return "null";
  if (v.IsNumber()) return std::to_string(v.As<Napi::Number>().DoubleValue()) + " of type number";
  if (v.IsString()) return "\"" + v.As<Napi::String>().Utf8Value() + "\" of type string";
  if (v.IsTypedArray()) return "a typed array of length " + std::to_string(v.As<Napi::TypedArray>().ElementLength());
  if (v.IsArray()) return "an array";
  return "a value of type " + std::string(v.IsObject() ? "object" : "other");
}

// An integer in [lo, hi].
inline int64_t get_int(const Napi::Value& v, const char* name, int64_t lo, int64_t hi) {
  TERNION_THROW_IF(!v.IsNumber(), "ERR_INVALID_ARGUMENT",
                   std::string("Expected an integer for ") + name + " but received " + received(v));
  const double d = v.As<Napi::Number>().DoubleValue();
  TERNION_THROW_IF(!(d >= static_cast<double>(lo) && d <= static_cast<double>(hi)) || d != static_cast<double>(static_cast<int64_t>(d)),
                   "ERR_INVALID_ARGUMENT",
                   std::string("Expected an integer between ") + std::to_string(lo) + " and " + std::to_string(hi) +
                       " for " + name + " but received " + received(v));
  return static_cast<int64_t>(d);
}

inline int64_t get_int_or(const Napi::Object& o, const char* key, int64_t dflt, int64_t lo, int64_t hi) {
  Napi::Value v = o.Get(key);
  return v.IsUndefined() ? dflt : get_int(v, key, lo, hi);
}

inline bool get_bool_or(const Napi::Object& o, const char* key, bool dflt) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return dflt;
  TERNION_THROW_IF(!v.IsBoolean(), "ERR_INVALID_ARGUMENT",
                   std::string("Expected a boolean for ") + key + " but received " + received(v));
  return v.As<Napi::Boolean>().Value();
}

inline std::string get_string_or(const Napi::Object& o, const char* key, const std::string& dflt) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return dflt;
  TERNION_THROW_IF(!v.IsString(), "ERR_INVALID_ARGUMENT",
                   std::string("Expected a string for ") + key + " but received " + received(v));
  return v.As<Napi::String>().Utf8Value();
}

// A typed array of element type T with exactly `expected` elements (or any length if expected
// is SIZE_MAX); `required` false lets undefined through as an empty TypedArrayOf.
template <typename T>
Napi::TypedArrayOf<T> get_array(const Napi::Value& v, const char* name, napi_typedarray_type type,
                                const char* type_name, size_t expected, bool required = true) {
  if (!required && (v.IsUndefined() || v.IsNull())) return Napi::TypedArrayOf<T>();
  TERNION_THROW_IF(!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type, "ERR_DTYPE",
                   std::string("Expected a ") + type_name + " for " + name + " but received " + received(v));
  auto arr = v.As<Napi::TypedArrayOf<T>>();
  TERNION_THROW_IF(expected != SIZE_MAX && arr.ElementLength() != expected, "ERR_SHAPE_MISMATCH",
                   std::string("Expected ") + name + " to have " + std::to_string(expected) +
                       " elements but it has " + std::to_string(arr.ElementLength()));
  return arr;
}

// a * b with an overflow check against a bound on element counts.
inline size_t checked_mul(size_t a, size_t b, const char* what) {
  constexpr size_t kMaxElements = size_t(1) << 40;
  TERNION_THROW_IF(a != 0 && b > kMaxElements / a, "ERR_SHAPE_MISMATCH",
                   std::string(what) + " is too large (" + std::to_string(a) + " x " + std::to_string(b) + ")");
  return a * b;
}

}  // namespace addon
}  // namespace ternion
