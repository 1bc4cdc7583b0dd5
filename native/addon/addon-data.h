// Per-instance state of the addon (one per Node environment: main thread or worker), held as
// Node-API instance data so the addon has no process-global mutable state.
#pragma once

#include <napi.h>

#include <memory>
#include <string>

#include "kernels/kernels.h"
#include "threadpool.h"

namespace ternion {
namespace addon {

struct AddonData {
  const kernels::KernelTable* table = nullptr;  // chosen at load (CPUID, TERNION_ISA)
  std::string table_error;                      // why TERNION_ISA could not be honoured
  // Shared with in-flight async work, which may outlive the environment (worker terminated).
  std::shared_ptr<ThreadPool> pool;
  int default_threads = 1;
  Napi::FunctionReference error_class;  // TernionError, handed over by lib/native.ts
  Napi::FunctionReference packed_weights_ctor;
};

inline AddonData& data(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }

}  // namespace addon
}  // namespace ternion
