#include "addon/errors.h"

#include "addon/addon-data.h"

namespace ternion {
namespace addon {

void throw_coded(const char* code, const std::string& message) { throw CodedError{code, message}; }

Napi::Error make_error(Napi::Env env, const std::string& code, const std::string& message) {
  AddonData* d = env.GetInstanceData<AddonData>();
  if (d && !d->error_class.IsEmpty()) {
    Napi::Value e = d->error_class.New({Napi::String::New(env, code), Napi::String::New(env, message)});
    return Napi::Error(env, e);
  }
  Napi::Error e = Napi::Error::New(env, message);
  e.Set("code", Napi::String::New(env, code));
  return e;
}

}  // namespace addon
}  // namespace ternion
