// PackedWeights: a weight matrix packed once into one kernel table's layout, and the GEMM entry
// points over it (synchronous, and asynchronous on a libuv worker so the event loop stays free).
#include <napi.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>

#include "addon/addon-data.h"
#include "addon/args.h"
#include "addon/errors.h"
#include "exec/gemm.h"
#include "exec/host-memory.h"
#include "kernels/dispatch.h"

namespace ternion {
namespace addon {
namespace {

using kernels::KernelTable;
using kernels::LowbitForm;
using kernels::OutType;

enum class Kind { F32, Q8, Lowbit };

class PackedWeights : public Napi::ObjectWrap<PackedWeights> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "PackedWeights",
                       {InstanceAccessor<&PackedWeights::GetN>("N"), InstanceAccessor<&PackedWeights::GetK>("K"),
                        InstanceAccessor<&PackedWeights::GetKind>("kind"),
                        InstanceAccessor<&PackedWeights::GetIsa>("isa"),
                        InstanceAccessor<&PackedWeights::GetBytes>("byteLength"),
                        InstanceMethod<&PackedWeights::Release>("release")});
  }

  // new PackedWeights({ kind, weights, N, K, isa?, bits?, G?, form?, asym?, scalePos?, ... })
  explicit PackedWeights(const Napi::CallbackInfo& info) : Napi::ObjectWrap<PackedWeights>(info) {
    Napi::Env env = info.Env();
    try {
      Construct(info);
    } catch (const CodedError& e) {
      make_error(env, e.code, e.message).ThrowAsJavaScriptException();
    }
  }

  Kind kind() const { return kind_; }
  const KernelTable* table() const { return table_; }
  // Shared with in-flight async products, so release() (or GC) never frees memory under them.
  std::shared_ptr<void> buffer() const { return buf_; }
  int N() const { return N_; }
  int K() const { return K_; }
  bool released() const { return !buf_; }

 private:
  void Construct(const Napi::CallbackInfo& info) {
    TERNION_THROW_IF(info.Length() < 1 || !info[0].IsObject(), "ERR_INVALID_ARGUMENT",
                     "Expected an options object for PackedWeights but received " +
                         (info.Length() ? received(info[0]) : std::string("nothing")));
    Napi::Object o = info[0].As<Napi::Object>();
    AddonData& d = data(info.Env());
    const std::string isa = get_string_or(o, "isa", "");
    if (isa.empty()) {
      TERNION_THROW_IF(!d.table, "ERR_INVALID_ARGUMENT", d.table_error);
      table_ = d.table;
    } else {
      std::string err;
      table_ = kernels::select_table(isa.c_str(), &err);
      TERNION_THROW_IF(!table_, "ERR_INVALID_ARGUMENT", "Cannot use isa \"" + isa + "\": " + err);
    }
    const std::string kind = get_string_or(o, "kind", "");
    N_ = static_cast<int>(get_int(o.Get("N"), "N", 1, INT32_MAX));
    K_ = static_cast<int>(get_int(o.Get("K"), "K", 1, INT32_MAX));
    const size_t NK = checked_mul(N_, K_, "N x K");
    size_t bytes = 0;
    if (kind == "float32") {
      kind_ = Kind::F32;
      auto w = get_array<float>(o.Get("weights"), "weights", napi_float32_array, "Float32Array", NK);
      bytes = table_->f32_packed_size(N_, K_);
      Allocate(bytes);
      table_->f32_pack(w.Data(), N_, K_, buf_.get());
    } else if (kind == "int8") {
      kind_ = Kind::Q8;
      TERNION_THROW_IF(K_ > kernels::kMaxIntegerK, "ERR_SHAPE_MISMATCH",
                       "K = " + std::to_string(K_) + " exceeds the integer kernels' limit of " + std::to_string(kernels::kMaxIntegerK));
      auto w = get_array<int8_t>(o.Get("weights"), "weights", napi_int8_array, "Int8Array", NK);
      bytes = table_->q8_packed_size(N_, K_);
      Allocate(bytes);
      table_->q8_pack(w.Data(), N_, K_, buf_.get());
    } else if (kind == "lowbit") {
      kind_ = Kind::Lowbit;
      PackLowbit(o, NK);
    } else {
      throw_coded("ERR_INVALID_ARGUMENT",
                  "Expected \"float32\", \"int8\" or \"lowbit\" for kind but received " + received(o.Get("kind")));
    }
  }

  void PackLowbit(const Napi::Object& o, size_t NK) {
    TERNION_THROW_IF(K_ > kernels::kMaxIntegerK, "ERR_SHAPE_MISMATCH",
                     "K = " + std::to_string(K_) + " exceeds the integer kernels' limit of " + std::to_string(kernels::kMaxIntegerK));
    kernels::LowbitWeights w;
    w.bits = static_cast<int>(get_int(o.Get("bits"), "bits", 2, 4));
    TERNION_THROW_IF(w.bits == 3, "ERR_INVALID_ARGUMENT", "Expected 2 or 4 for bits but received 3");
    w.N = N_;
    w.K = K_;
    w.G = static_cast<int>(get_int(o.Get("G"), "G", 1, K_));
    TERNION_THROW_IF(K_ % w.G != 0, "ERR_SHAPE_MISMATCH",
                     "K = " + std::to_string(K_) + " must be a multiple of the group size G = " + std::to_string(w.G));
    const std::string form = get_string_or(o, "form", "group-scaled");
    TERNION_THROW_IF(form != "group-scaled" && form != "folded", "ERR_INVALID_ARGUMENT",
                     "Expected \"group-scaled\" or \"folded\" for form but received \"" + form + "\"");
    w.form = form == "folded" ? LowbitForm::Folded : LowbitForm::GroupScaled;
    w.asym = get_bool_or(o, "asym", false);
    TERNION_THROW_IF(w.asym && w.bits != 2, "ERR_INVALID_ARGUMENT", "asym applies to ternary weights (bits = 2) only");
    auto q = get_array<int8_t>(o.Get("weights"), "weights", napi_int8_array, "Int8Array", NK);
    const int lim = w.bits == 2 ? 1 : 7;
    for (size_t i = 0; i < NK; ++i)
      TERNION_THROW_IF(q[i] < -lim || q[i] > lim, "ERR_INVALID_ARGUMENT",
                       "weights[" + std::to_string(i) + "] = " + std::to_string(q[i]) + " is outside [-" +
                           std::to_string(lim) + ", " + std::to_string(lim) + "] for " + std::to_string(w.bits) + "-bit codes");
    w.q = q.Data();
    const size_t groups = checked_mul(N_, K_ / w.G, "groups");
    Napi::TypedArrayOf<float> sp, sn;
    Napi::TypedArrayOf<int8_t> mp, mn;
    if (w.form == LowbitForm::GroupScaled) {
      sp = get_array<float>(o.Get("scalePos"), "scalePos", napi_float32_array, "Float32Array", groups);
      w.scale_pos = sp.Data();
      if (w.asym) {
        sn = get_array<float>(o.Get("scaleNeg"), "scaleNeg", napi_float32_array, "Float32Array", groups);
        w.scale_neg = sn.Data();
      }
      for (size_t i = 0; i < groups; ++i) {
        TERNION_THROW_IF(!std::isfinite(w.scale_pos[i]), "ERR_INVALID_ARGUMENT", "scalePos[" + std::to_string(i) + "] is not finite");
        TERNION_THROW_IF(w.asym && !std::isfinite(w.scale_neg[i]), "ERR_INVALID_ARGUMENT", "scaleNeg[" + std::to_string(i) + "] is not finite");
      }
    } else {
      const int mmax = w.bits == 2 ? 127 : 18;
      mp = get_array<int8_t>(o.Get("multPos"), "multPos", napi_int8_array, "Int8Array", groups);
      w.mult_pos = mp.Data();
      if (w.asym) {
        mn = get_array<int8_t>(o.Get("multNeg"), "multNeg", napi_int8_array, "Int8Array", groups);
        w.mult_neg = mn.Data();
      }
      for (size_t i = 0; i < groups; ++i) {
        TERNION_THROW_IF(w.mult_pos[i] < 1 || w.mult_pos[i] > mmax, "ERR_INVALID_ARGUMENT",
                         "multPos[" + std::to_string(i) + "] = " + std::to_string(w.mult_pos[i]) + " is outside [1, " + std::to_string(mmax) + "]");
        TERNION_THROW_IF(w.asym && (w.mult_neg[i] < 1 || w.mult_neg[i] > mmax), "ERR_INVALID_ARGUMENT",
                         "multNeg[" + std::to_string(i) + "] = " + std::to_string(w.mult_neg[i]) + " is outside [1, " + std::to_string(mmax) + "]");
      }
    }
    Allocate(table_->lowbit_packed_size(&w));
    table_->lowbit_pack(&w, buf_.get());
  }

  void Allocate(size_t bytes) {
    buf_ = exec::allocate_host_block(bytes, false);
    TERNION_THROW_IF(!buf_, "ERR_INVALID_ARGUMENT", "Could not allocate " + std::to_string(bytes) + " bytes for packed weights");
    bytes_ = bytes;
    Napi::MemoryManagement::AdjustExternalMemory(Env(), static_cast<int64_t>(bytes));
  }

  Napi::Value GetN(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), N_); }
  Napi::Value GetK(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), K_); }
  Napi::Value GetIsa(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), table_ ? table_->name : ""); }
  Napi::Value GetBytes(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), static_cast<double>(bytes_)); }
  Napi::Value GetKind(const Napi::CallbackInfo& info) {
    return Napi::String::New(info.Env(), kind_ == Kind::F32 ? "float32" : kind_ == Kind::Q8 ? "int8" : "lowbit");
  }

  // Frees the packed buffer now rather than at garbage collection; later use throws.
  // Drops this object's hold on the buffer now; products still running keep their own.
  Napi::Value Release(const Napi::CallbackInfo& info) {
    if (buf_) {
      buf_.reset();
      Napi::MemoryManagement::AdjustExternalMemory(info.Env(), -static_cast<int64_t>(bytes_));
      bytes_ = 0;
    }
    return info.Env().Undefined();
  }
  Kind kind_ = Kind::F32;
  const KernelTable* table_ = nullptr;
  std::shared_ptr<void> buf_;
  size_t bytes_ = 0;
  int N_ = 0, K_ = 0;
};

// Everything one GEMM call needs, copied out of JS values on the main thread.
struct GemmJob {
  Kind kind = Kind::F32;
  const KernelTable* table = nullptr;
  std::shared_ptr<void> weights;
  int N = 0, K = 0;
  int M = 0;
  const void* A = nullptr;
  uint8_t a_zero = 0;
  kernels::Requant rq;
  void* C = nullptr;
  int threads = 1;
};

void run_job(const GemmJob& j, ThreadPool* pool) {
  exec::GemmContext ctx{j.table, pool, j.threads};
  const int N = j.N, K = j.K;
  const void* w = j.weights.get();
  switch (j.kind) {
    case Kind::F32: {
      static const float kRelu[2] = {0.0f, std::numeric_limits<float>::infinity()};
      exec::gemm_f32(ctx, j.M, N, K, static_cast<const float*>(j.A), K, w, j.rq.bias, j.rq.relu ? kRelu : nullptr, static_cast<float*>(j.C), N);
      break;
    }
    case Kind::Q8:
      exec::gemm_q8(ctx, j.M, N, K, static_cast<const uint8_t*>(j.A), K, j.a_zero, w, j.rq, j.C, N);
      break;
    case Kind::Lowbit:
      exec::gemm_lowbit(ctx, j.M, N, K, static_cast<const uint8_t*>(j.A), K, j.a_zero, w, j.rq, j.C, N);
      break;
  }
}

// gemm(packed, A, M, options) -> { job, output } with every argument checked.
Napi::TypedArray prepare_job(const Napi::CallbackInfo& info, GemmJob& job, Napi::Object& keep) {
  Napi::Env env = info.Env();
  AddonData& d = data(env);
  TERNION_THROW_IF(info.Length() < 3, "ERR_INVALID_ARGUMENT", "gemm expects (packed, A, M, options?)");
  TERNION_THROW_IF(!info[0].IsObject() || !info[0].As<Napi::Object>().InstanceOf(d.packed_weights_ctor.Value()),
                   "ERR_INVALID_ARGUMENT", "Expected a PackedWeights for packed but received " + received(info[0]));
  PackedWeights* w = PackedWeights::Unwrap(info[0].As<Napi::Object>());
  TERNION_THROW_IF(w->released(), "ERR_INVALID_ARGUMENT", "These packed weights were released");
  job.kind = w->kind();
  job.table = w->table();
  job.weights = w->buffer();
  job.N = w->N();
  job.K = w->K();
  const int N = w->N(), K = w->K();
  job.M = static_cast<int>(get_int(info[2], "M", 1, INT32_MAX));
  const size_t MK = checked_mul(job.M, K, "M x K"), MN = checked_mul(job.M, N, "M x N");
  Napi::Object opt = info.Length() > 3 && info[3].IsObject() ? info[3].As<Napi::Object>() : Napi::Object::New(env);
  TERNION_THROW_IF(info.Length() > 3 && !info[3].IsObject() && !info[3].IsUndefined(), "ERR_INVALID_ARGUMENT",
                   "Expected an options object but received " + received(info[3]));
  keep.Set("packed", info[0]);
  keep.Set("A", info[1]);
  if (w->kind() == Kind::F32) {
    job.A = get_array<float>(info[1], "A", napi_float32_array, "Float32Array", MK).Data();
  } else {
    job.A = get_array<uint8_t>(info[1], "A", napi_uint8_array, "Uint8Array", MK).Data();
    job.a_zero = static_cast<uint8_t>(get_int_or(opt, "aZero", 0, 0, 255));
  }
  auto bias = get_array<float>(opt.Get("bias"), "bias", napi_float32_array, "Float32Array", N, false);
  auto scale = get_array<float>(opt.Get("scale"), "scale", napi_float32_array, "Float32Array", N, false);
  keep.Set("bias", opt.Get("bias"));
  keep.Set("scale", opt.Get("scale"));
  job.rq.bias = bias.IsEmpty() ? nullptr : bias.Data();
  job.rq.scale = scale.IsEmpty() ? nullptr : scale.Data();
  job.rq.relu = get_bool_or(opt, "relu", false);
  const std::string out = get_string_or(opt, "output", "float32");
  job.threads = static_cast<int>(get_int_or(opt, "threads", d.default_threads, 1, 1024));
  Napi::TypedArray result;
  if (out == "float32") {
    job.rq.out = OutType::F32;
    result = Napi::Float32Array::New(env, MN);
  } else if (out == "int32") {
    TERNION_THROW_IF(w->kind() == Kind::F32, "ERR_DTYPE", "int32 output needs int8 or low-bit weights");
    job.rq.out = OutType::I32;
    result = Napi::Int32Array::New(env, MN);
  } else if (out == "uint8" || out == "int8") {
    TERNION_THROW_IF(w->kind() == Kind::F32, "ERR_DTYPE", out + " output needs int8 or low-bit weights");
    const bool u = out == "uint8";
    job.rq.out = u ? OutType::U8 : OutType::S8;
    job.rq.zero_point = static_cast<int32_t>(get_int_or(opt, "zeroPoint", 0, u ? 0 : -128, u ? 255 : 127));
    job.rq.qmin = static_cast<int32_t>(get_int_or(opt, "qmin", u ? 0 : -128, u ? 0 : -128, u ? 255 : 127));
    job.rq.qmax = static_cast<int32_t>(get_int_or(opt, "qmax", u ? 255 : 127, u ? 0 : -128, u ? 255 : 127));
    TERNION_THROW_IF(job.rq.qmin > job.rq.qmax, "ERR_INVALID_ARGUMENT", "qmin must not exceed qmax");
    result = u ? Napi::TypedArray(Napi::Uint8Array::New(env, MN)) : Napi::TypedArray(Napi::Int8Array::New(env, MN));
  } else {
    throw_coded("ERR_DTYPE", "Expected \"float32\", \"int32\", \"uint8\" or \"int8\" for output but received \"" + out + "\"");
  }
  job.C = static_cast<char*>(result.ArrayBuffer().Data()) + result.ByteOffset();
  keep.Set("C", result);
  return result;
}

Napi::Value GemmSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    GemmJob job;
    Napi::Object keep = Napi::Object::New(env);
    Napi::TypedArray result = prepare_job(info, job, keep);
    run_job(job, data(env).pool.get());
    return result;
  } catch (const CodedError& e) {
    make_error(env, e.code, e.message).ThrowAsJavaScriptException();
    return env.Undefined();
  }
}

// Runs the GEMM on a libuv worker thread; the JS objects it reads and writes stay referenced.
class GemmWorker : public Napi::AsyncWorker {
 public:
  GemmWorker(Napi::Env env, GemmJob job, Napi::Object keep, Napi::TypedArray result)
      : Napi::AsyncWorker(env, "ternion:gemm"), deferred_(Napi::Promise::Deferred::New(env)), job_(job),
        keep_(Napi::Persistent(keep)), result_(Napi::Persistent(result)), pool_(data(env).pool) {}
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override { run_job(job_, pool_.get()); }
  // During environment teardown (a worker terminated) calls into JS fail; nothing is waiting.
  void OnOK() override {
    try {
      deferred_.Resolve(result_.Value());
    } catch (const Napi::Error&) {
    }
  }
  void OnError(const Napi::Error& e) override {
    try {
      deferred_.Reject(e.Value());
    } catch (const Napi::Error&) {
    }
  }

 private:
  Napi::Promise::Deferred deferred_;
  GemmJob job_;
  Napi::ObjectReference keep_;
  Napi::Reference<Napi::TypedArray> result_;
  std::shared_ptr<ThreadPool> pool_;
};

Napi::Value GemmAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    GemmJob job;
    Napi::Object keep = Napi::Object::New(env);
    Napi::TypedArray result = prepare_job(info, job, keep);
    auto* worker = new GemmWorker(env, job, keep, result);
    Napi::Promise p = worker->Promise();
    worker->Queue();
    return p;
  } catch (const CodedError& e) {
    auto deferred = Napi::Promise::Deferred::New(env);
    deferred.Reject(make_error(env, e.code, e.message).Value());
    return deferred.Promise();
  }
}

}  // namespace

void register_packed_weights(Napi::Env env, Napi::Object exports) {
  Napi::Function ctor = PackedWeights::Define(env);
  data(env).packed_weights_ctor = Napi::Persistent(ctor);
  exports.Set("PackedWeights", ctor);
  exports.Set("gemm", Napi::Function::New(env, GemmSync, "gemm"));
  exports.Set("gemmAsync", Napi::Function::New(env, GemmAsync, "gemmAsync"));
}

}  // namespace addon
}  // namespace ternion
