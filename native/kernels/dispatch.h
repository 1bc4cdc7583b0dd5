// Run-time choice of the kernel table from the CPU's features (and TERNION_ISA).
#pragma once

#include <string>
#include <vector>

#include "kernels/kernels.h"

namespace ternion {
namespace kernels {

struct CpuFeatures {
  std::string arch;  // "x86_64", "aarch64", or "other"
  bool avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false, avx512vnni = false;
  bool avxvnni = false, amx_tile = false, amx_int8 = false;
  bool neon = false, dotprod = false;
  std::vector<std::string> names() const;  // the features present, for cpuInfo()
};

// Read once (CPUID / getauxval, OS support of the register state included); immutable after.
const CpuFeatures& cpu_features();

// Tables in order of preference, best first, scalar last: only those this CPU can run.
std::vector<const KernelTable*> supported_tables();

// The table named by TERNION_ISA if set (error if unknown or unsupported), else the best one.
// Returns nullptr and fills *error when the request cannot be met.
const KernelTable* select_table(const char* requested, std::string* error);

// Every table compiled into this binary, supported here or not (for reporting).
std::vector<std::string> compiled_table_names();

}  // namespace kernels
}  // namespace ternion
