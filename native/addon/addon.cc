// Addon entry: per-environment instance data (kernel table, thread pool, error class), cpuInfo.
// Context-aware (NODE_API_MODULE with instance data), so it loads in worker_threads and twice.
#include <napi.h>

#include <cstdlib>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <thread>

#include "addon/addon-data.h"
#include "addon/errors.h"
#include "exec/graph.h"
#include "kernels/dispatch.h"

namespace ternion {
namespace addon {

void register_packed_weights(Napi::Env env, Napi::Object exports);
void register_session(Napi::Env env, Napi::Object exports);
void register_data_aware(Napi::Env env, Napi::Object exports);

namespace {

Napi::Value CpuInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  AddonData& d = data(env);
  const auto& f = kernels::cpu_features();
  Napi::Object o = Napi::Object::New(env);
  o.Set("arch", f.arch);
  Napi::Array feats = Napi::Array::New(env);
  for (const auto& n : f.names()) feats.Set(feats.Length(), n);
  o.Set("features", feats);
  Napi::Array compiled = Napi::Array::New(env), supported = Napi::Array::New(env);
  for (const auto& n : kernels::compiled_table_names()) compiled.Set(compiled.Length(), n);
  for (const auto* t : kernels::supported_tables()) supported.Set(supported.Length(), t->name);
  o.Set("compiled", compiled);
  o.Set("supported", supported);
  o.Set("kernels", d.table ? Napi::Value(Napi::String::New(env, d.table->name)) : env.Null());
  if (!d.table_error.empty()) o.Set("error", d.table_error);
  o.Set("threads", d.default_threads);
  o.Set("spinMicros", thread_pool_spin_micros());
  return o;
}

// The op types the executor implements, so tests can hold the IR's op table to it.
Napi::Value RegisteredOps(const Napi::CallbackInfo& info) {
  Napi::Array out = Napi::Array::New(info.Env());
  for (const auto& entry : exec::op_registry()) out.Set(out.Length(), entry.first);
  return out;
}

// lib/native.ts hands over TernionError so native errors are real instances of it.
Napi::Value SetErrorClass(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsFunction()) {
    Napi::TypeError::New(info.Env(), "Expected a class for setErrorClass").ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  data(info.Env()).error_class = Napi::Persistent(info[0].As<Napi::Function>());
  return info.Env().Undefined();
}

// Hands the pages the C allocator keeps from freed blocks back to the OS (glibc), so the
// benchmark's memory probe reads what the process holds rather than what malloc caches.
Napi::Value TrimFreedMemory(const Napi::CallbackInfo& info) {
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
  return info.Env().Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* d = new AddonData();
  const char* isa = std::getenv("TERNION_ISA");
  d->table = kernels::select_table(isa, &d->table_error);
  // One pool per process (threadpool.h): sessions and workers share it instead of each
  // starting a thread per core. This environment's reference goes with it (worker exit).
  d->pool = shared_thread_pool();
  d->default_threads = d->pool->size();
  env.SetInstanceData<AddonData>(d);
  exports.Set("cpuInfo", Napi::Function::New(env, CpuInfo, "cpuInfo"));
  exports.Set("registeredOps", Napi::Function::New(env, RegisteredOps, "registeredOps"));
  exports.Set("trimFreedMemory", Napi::Function::New(env, TrimFreedMemory, "trimFreedMemory"));
  exports.Set("setErrorClass", Napi::Function::New(env, SetErrorClass, "setErrorClass"));
  exports.Set("napiVersion", Napi::Number::New(env, NAPI_VERSION));
  register_packed_weights(env, exports);
  register_session(env, exports);
  register_data_aware(env, exports);
  return exports;
}

}  // namespace
}  // namespace addon
}  // namespace ternion

static Napi::Object InitTernion(Napi::Env env, Napi::Object exports) { return ternion::addon::Init(env, exports); }

NODE_API_MODULE(ternion, InitTernion)
