// CPU feature detection and kernel-table choice. XNNPACK-style: one ordered chain from the best
// instruction set down to scalar; a table is offered only if CPUID says the CPU has every
// feature it was compiled for AND the OS saves the registers it uses (XGETBV).
#include "kernels/dispatch.h"

#include <cstring>

#if defined(TERNION_X86)
#include <cpuid.h>
#endif
#if defined(TERNION_ARM64) && defined(__linux__)
#include <sys/auxv.h>
#endif

namespace ternion {
namespace kernels {

// Tables of instruction sets not compiled for this architecture resolve to null.
__attribute__((weak)) const KernelTable* avx2_table();
__attribute__((weak)) const KernelTable* avx512vnni_table();
__attribute__((weak)) const KernelTable* avxvnni_table();
__attribute__((weak)) const KernelTable* neon_table();

namespace {

#if defined(TERNION_X86)
unsigned long long xgetbv0() {
  unsigned eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<unsigned long long>(edx) << 32) | eax;
}
#endif

CpuFeatures detect() {
  CpuFeatures f;
#if defined(TERNION_X86)
  f.arch = "x86_64";
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool osxsave = c & (1u << 27);
  const bool fma = c & (1u << 12), f16c = c & (1u << 29), avx = c & (1u << 28);
  const unsigned long long xcr0 = osxsave ? xgetbv0() : 0;
  const bool os_avx = (xcr0 & 0x6) == 0x6;             // XMM and YMM state
  const bool os_avx512 = (xcr0 & 0xe6) == 0xe6;        // plus opmask, ZMM_Hi256, Hi16_ZMM
  const bool os_amx = (xcr0 & 0x60000) == 0x60000;     // XTILECFG and XTILEDATA
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return f;
  f.avx2 = os_avx && avx && (b & (1u << 5));
  f.fma = os_avx && fma;
  f.f16c = os_avx && f16c;
  f.avx512f = os_avx512 && (b & (1u << 16));
  f.avx512dq = os_avx512 && (b & (1u << 17));
  f.avx512bw = os_avx512 && (b & (1u << 30));
  f.avx512vl = os_avx512 && (b & (1u << 31));
  f.avx512vnni = os_avx512 && (c & (1u << 11));
  f.amx_tile = os_amx && (d & (1u << 24));
  f.amx_int8 = os_amx && (d & (1u << 25));
  unsigned a1 = 0, b1 = 0, c1 = 0, d1 = 0;
  if (__get_cpuid_count(7, 1, &a1, &b1, &c1, &d1)) f.avxvnni = os_avx && (a1 & (1u << 4));
#elif defined(TERNION_ARM64)
  f.arch = "aarch64";
  f.neon = true;  // Advanced SIMD is mandatory on AArch64
#if defined(__linux__) && defined(HWCAP_ASIMDDP)
  f.dotprod = getauxval(AT_HWCAP) & HWCAP_ASIMDDP;
#endif
#else
  f.arch = "other";
#endif
  return f;
}

bool runs_here(const char* name, const CpuFeatures& f) {
  if (!std::strcmp(name, "avx512vnni"))
    return f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq && f.avx512vnni && f.fma && f.avx2;
  if (!std::strcmp(name, "avxvnni")) return f.avxvnni && f.avx2 && f.fma;
  if (!std::strcmp(name, "avx2")) return f.avx2 && f.fma && f.f16c;
  if (!std::strcmp(name, "neon")) return f.neon;
  return !std::strcmp(name, "scalar");
}

// Best first. A missing weak symbol means that instruction set was not compiled in.
std::vector<const KernelTable*> compiled_tables() {
  std::vector<const KernelTable*> out;
  if (avx512vnni_table) out.push_back(avx512vnni_table());
  if (avxvnni_table) out.push_back(avxvnni_table());
  if (avx2_table) out.push_back(avx2_table());
  if (neon_table) out.push_back(neon_table());
  out.push_back(scalar_table());
  return out;
}

}  // namespace

std::vector<std::string> CpuFeatures::names() const {
  std::vector<std::string> n;
  const std::pair<bool, const char*> all[] = {
      {avx2, "avx2"},         {fma, "fma"},           {f16c, "f16c"},
      {avx512f, "avx512f"},   {avx512bw, "avx512bw"}, {avx512vl, "avx512vl"},
      {avx512dq, "avx512dq"}, {avx512vnni, "avx512vnni"}, {avxvnni, "avxvnni"},
      {amx_tile, "amx-tile"}, {amx_int8, "amx-int8"}, {neon, "neon"}, {dotprod, "dotprod"}};
  for (const auto& p : all)
    if (p.first) n.push_back(p.second);
  return n;
}

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect();  // thread-safe init, never written after
  return features;
}

std::vector<const KernelTable*> supported_tables() {
  std::vector<const KernelTable*> out;
  for (const KernelTable* t : compiled_tables())
    if (runs_here(t->name, cpu_features())) out.push_back(t);
  return out;
}

std::vector<std::string> compiled_table_names() {
  std::vector<std::string> out;
  for (const KernelTable* t : compiled_tables()) out.push_back(t->name);
  return out;
}

const KernelTable* select_table(const char* requested, std::string* error) {
  const auto supported = supported_tables();
  if (!requested || !*requested) return supported.front();
  std::string req = requested;
  if (req == "avx512") req = "avx512vnni";
  for (const KernelTable* t : compiled_tables()) {
    if (req != t->name) continue;
    if (runs_here(t->name, cpu_features())) return t;
    if (error) *error = "TERNION_ISA=" + std::string(requested) + " is not supported by this CPU";
    return nullptr;
  }
  if (error) {
    *error = "TERNION_ISA=" + std::string(requested) + " is not a kernel set in this build (have:";
    for (const auto& n : compiled_table_names()) *error += " " + n;
    *error += ")";
  }
  return nullptr;
}

}  // namespace kernels
}  // namespace ternion
