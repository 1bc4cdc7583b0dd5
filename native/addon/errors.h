// Errors thrown to JavaScript: instances of lib/errors.ts's TernionError with a stable code.
// The THROW_IF macros keep every argument check one line with a fixed wording.
#pragma once

#include <napi.h>

#include <string>

namespace ternion {
namespace addon {

// A C++ exception that carries the code; converted to a TernionError at the boundary.
struct CodedError {
  std::string code;
  std::string message;
};

[[noreturn]] void throw_coded(const char* code, const std::string& message);

// Builds the JS error object (TernionError when registered, else Error with .code).
Napi::Error make_error(Napi::Env env, const std::string& code, const std::string& message);

#define TERNION_THROW_IF(cond, code, msg) \
  do {                                    \
    if (cond) ::ternion::addon::throw_coded(code, msg); \
  } while (0)

}  // namespace addon
}  // namespace ternion
