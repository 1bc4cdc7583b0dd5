// Entry points of the data-aware quantizer's native helpers (native/quant/data-aware-math.h).
// Synchronous: quantization is an offline step and the JS side calls these per layer / row.
#include <napi.h>

#include <cstdint>
#include <string>
#include <vector>

#include "addon/args.h"
#include "addon/errors.h"
#include "quant/data-aware-math.h"

namespace ternion {
namespace addon {
namespace {

constexpr int64_t kMaxOrder = 1 << 15;  // K beyond this would need > 8 GiB for H alone

// inverseCholeskyUpper(H: Float64Array, n): Float64Array U with H^-1 = U^T U.
Napi::Value InverseCholeskyUpper(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    TERNION_THROW_IF(info.Length() != 2, "ERR_INVALID_ARGUMENT", "inverseCholeskyUpper(H, n) takes 2 arguments");
    const int64_t n = get_int(info[1], "n", 1, kMaxOrder);
    const size_t count = checked_mul(static_cast<size_t>(n), static_cast<size_t>(n), "H");
    auto H = get_array<double>(info[0], "H", napi_float64_array, "Float64Array", count);
    Napi::Float64Array U = Napi::Float64Array::New(env, count);
    const int64_t bad = quant::inverse_cholesky_upper(H.Data(), n, U.Data());
    TERNION_THROW_IF(bad >= 0, "ERR_INTERNAL", "Cholesky: matrix not positive definite at column " + std::to_string(bad));
    return U;
  } catch (const CodedError& e) {
    make_error(env, e.code, e.message).ThrowAsJavaScriptException();
    return env.Undefined();
  }
}

// refitNormalEquations(w: Float32Array[K], codes: Int8Array[K], H: Float64Array[K*K], K, G,
//                      asym: boolean, A: Float64Array[m*m], c: Float64Array[m]): undefined
Napi::Value RefitNormalEquations(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    TERNION_THROW_IF(info.Length() != 8, "ERR_INVALID_ARGUMENT", "refitNormalEquations takes 8 arguments");
    const int64_t K = get_int(info[3], "K", 1, kMaxOrder);
    const int64_t G = get_int(info[4], "G", 1, K);
    TERNION_THROW_IF(K % G != 0, "ERR_INVALID_ARGUMENT", "G = " + std::to_string(G) + " must divide K = " + std::to_string(K));
    TERNION_THROW_IF(!info[5].IsBoolean(), "ERR_INVALID_ARGUMENT", "Expected a boolean for asym but received " + received(info[5]));
    const bool asym = info[5].As<Napi::Boolean>().Value();
    const int64_t m = (K / G) * (asym ? 2 : 1);
    auto w = get_array<float>(info[0], "w", napi_float32_array, "Float32Array", static_cast<size_t>(K));
    auto codes = get_array<int8_t>(info[1], "codes", napi_int8_array, "Int8Array", static_cast<size_t>(K));
    auto H = get_array<double>(info[2], "H", napi_float64_array, "Float64Array", checked_mul(K, K, "H"));
    auto A = get_array<double>(info[6], "A", napi_float64_array, "Float64Array", checked_mul(m, m, "A"));
    auto c = get_array<double>(info[7], "c", napi_float64_array, "Float64Array", static_cast<size_t>(m));
    const int8_t* code = codes.Data();
    for (int64_t k = 0; k < K; k++) {
      const int q = code[k];
      TERNION_THROW_IF(q < -7 || q > 7, "ERR_INVALID_ARGUMENT", "codes[" + std::to_string(k) + "] = " + std::to_string(q) + " is outside [-7, 7]");
    }
    std::vector<double> scratch(checked_mul(m + 1, K, "scratch"));
    quant::refit_normal_equations(w.Data(), codes.Data(), H.Data(), K, G, asym, A.Data(), c.Data(), scratch.data());
    return env.Undefined();
  } catch (const CodedError& e) {
    make_error(env, e.code, e.message).ThrowAsJavaScriptException();
    return env.Undefined();
  }
}

// feedbackColumn(W: Float64Array[R*K], U: Float64Array[K*K], R, K, j, e: Float64Array[R]): undefined
Napi::Value FeedbackColumn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    TERNION_THROW_IF(info.Length() != 6, "ERR_INVALID_ARGUMENT", "feedbackColumn takes 6 arguments");
    const int64_t R = get_int(info[2], "R", 1, int64_t(1) << 24);
    const int64_t K = get_int(info[3], "K", 1, kMaxOrder);
    const int64_t j = get_int(info[4], "j", 0, K - 1);
    auto W = get_array<double>(info[0], "W", napi_float64_array, "Float64Array", checked_mul(R, K, "W"));
    auto U = get_array<double>(info[1], "U", napi_float64_array, "Float64Array", checked_mul(K, K, "U"));
    auto e = get_array<double>(info[5], "e", napi_float64_array, "Float64Array", static_cast<size_t>(R));
    quant::feedback_column(W.Data(), U.Data(), R, K, j, e.Data());
    return env.Undefined();
  } catch (const CodedError& e) {
    make_error(env, e.code, e.message).ThrowAsJavaScriptException();
    return env.Undefined();
  }
}

}  // namespace

void register_data_aware(Napi::Env env, Napi::Object exports) {
  exports.Set("inverseCholeskyUpper", Napi::Function::New(env, InverseCholeskyUpper, "inverseCholeskyUpper"));
  exports.Set("refitNormalEquations", Napi::Function::New(env, RefitNormalEquations, "refitNormalEquations"));
  exports.Set("feedbackColumn", Napi::Function::New(env, FeedbackColumn, "feedbackColumn"));
}

}  // namespace addon
}  // namespace ternion
