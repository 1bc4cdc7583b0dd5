// Peak-probe: one core's limits, for the whole-model benchmark to compare engines with.
//   fp32 FMA (AVX2 ymm, AVX-512 zmm), int8 dot products (AVX2 vpmaddwd on int16, the
//   vpmaddubsw + vpmaddwd + vpaddd sequence on u8 x s8, AVX-512 VNNI / AVX-VNNI vpdpbusd) in
//   GMAC/s, and memory bandwidth of a streaming read of a buffer much larger than the caches.
// Each kernel runs independent accumulator chains (enough to cover latency on both FMA/ALU
// ports) over register operands only, so it measures issue throughput, not memory. Operands are
// in registers the compiler cannot see into (inline assembly), so no loop is folded away;
// test/bench-tools.test.ts counts each loop's multiply instructions in the built binary.
// Built by bench/peak-probe.js with plain `g++ -O2`: each kernel carries its own target
// attribute, and only the ISAs named on the command line (checked by the runner) are run.
//
// With --threads T > 1 it also measures how this machine scales from one core to T: the same
// register-only fp32 and int8 loops, and the streaming read, run on 1 thread and then on T
// threads at once (each its own copy), in alternating rounds; the median ratio of the T-thread
// aggregate to the 1-thread rate is reported. On a VM whose vCPUs share a physical core, or
// whose host slows cores that are all busy, this is below T even for work that shares nothing,
// and it bounds what any engine's T-thread speed-up can reach here.
//
//   peak-probe [--isa avx2,fma,avx512f,avx512bw,avx512vnni,avxvnni] [--mem-mb 1024] [--seconds 0.25] [--threads T]
// Prints one JSON object.
#include <immintrin.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <string>
#include <thread>
#include <vector>

namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Per thread: the scaling rounds run the kernels on several threads at once.
thread_local volatile int64_t sink_i;
thread_local volatile float sink_f;

// Runs kernel(iterations) until `seconds` pass, doubling the count; returns the best
// operations/second over `repeats` timings of the final count. `per_iter` = MACs or bytes.
template <typename F>
double best_rate(F kernel, double per_iter, double seconds, int repeats = 5) {
  int64_t n = 1 << 10;
  for (;;) {
    double t = now();
    kernel(n);
    double dt = now() - t;
    if (dt > seconds / 4) break;
    n *= 2;
  }
  double best = 0;
  for (int r = 0; r < repeats; r++) {
    double t = now();
    kernel(n);
    double rate = per_iter * n / (now() - t);
    if (rate > best) best = rate;
  }
  return best;
}

// Median over `rounds` of (aggregate rate of `threads` copies of kernel(n) run at once) /
// (rate of one copy alone), with n set so that one copy takes about `seconds`.
template <typename F>
double scaling(F kernel, int threads, double seconds, int rounds = 7) {
  int64_t n = 1 << 10;
  for (;;) {
    double t = now();
    kernel(n);
    if (now() - t > seconds) break;
    n *= 2;
  }
  std::vector<double> ratios;
  for (int r = 0; r < rounds; r++) {
    double t = now();
    kernel(n);
    const double one = now() - t;
    t = now();
    std::vector<std::thread> pool;
    for (int i = 0; i < threads; i++) pool.emplace_back([&] { kernel(n); });
    for (auto& th : pool) th.join();
    const double all = now() - t;
    ratios.push_back(threads * one / all);
  }
  std::sort(ratios.begin(), ratios.end());
  return ratios[ratios.size() / 2];
}


// The multiply loops are written in assembly. With intrinsics, GCC sees twelve chains that
// start equal and take the same operands, keeps one, and the loop then runs one latency-bound
// instruction per iteration while twelve are counted (a fp32 "peak" 1.5x the real one on Zen 3).
// Twelve independent accumulators (register 0-11) cover the latency of both multiply ports;
// operands are registers 14 and 15. `prefix` is "{vex} " (escaped for extended asm) for the
// VEX-encoded AVX-VNNI form.
#define PROBE_MUL12(prefix, op, r)                                                                 \
  prefix op " %%" r "15, %%" r "14, %%" r "0\n " prefix op " %%" r "15, %%" r "14, %%" r "1\n "     \
  prefix op " %%" r "15, %%" r "14, %%" r "2\n " prefix op " %%" r "15, %%" r "14, %%" r "3\n "     \
  prefix op " %%" r "15, %%" r "14, %%" r "4\n " prefix op " %%" r "15, %%" r "14, %%" r "5\n "     \
  prefix op " %%" r "15, %%" r "14, %%" r "6\n " prefix op " %%" r "15, %%" r "14, %%" r "7\n "     \
  prefix op " %%" r "15, %%" r "14, %%" r "8\n " prefix op " %%" r "15, %%" r "14, %%" r "9\n "     \
  prefix op " %%" r "15, %%" r "14, %%" r "10\n " prefix op " %%" r "15, %%" r "14, %%" r "11\n "

// Zeroes the twelve accumulators: `zero` clears register 0, `mov` copies it to 1-11.
#define PROBE_ZERO12(zero, mov, r)                                                             \
  zero " %%" r "0, %%" r "0, %%" r "0\n " mov " %%" r "0, %%" r "1\n " mov " %%" r "0, %%" r "2\n " \
  mov " %%" r "0, %%" r "3\n " mov " %%" r "0, %%" r "4\n " mov " %%" r "0, %%" r "5\n "             \
  mov " %%" r "0, %%" r "6\n " mov " %%" r "0, %%" r "7\n " mov " %%" r "0, %%" r "8\n "             \
  mov " %%" r "0, %%" r "9\n " mov " %%" r "0, %%" r "10\n " mov " %%" r "0, %%" r "11\n "

#define PROBE_CLOBBERS                                                                        \
  "cc", "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", \
      "xmm10", "xmm11", "xmm14", "xmm15"

// Accumulators start at zero; operands 0.25-ish floats (all-ones >> 2) so nothing overflows to
// inf or denormals (which would slow some cores) over billions of iterations.
__attribute__((target("avx2,fma"))) void fma_avx2(int64_t n) {
  alignas(32) float out[8];
  asm volatile(
      PROBE_ZERO12("vxorps", "vmovaps", "ymm")
      "vpcmpeqd %%ymm14, %%ymm14, %%ymm14\n vpsrld $3, %%ymm14, %%ymm14\n vmovaps %%ymm14, %%ymm15\n"
      "1:\n " PROBE_MUL12("", "vfmadd231ps", "ymm") "dec %[n]\n jnz 1b\n"
      "vaddps %%ymm1, %%ymm0, %%ymm0\n vaddps %%ymm11, %%ymm0, %%ymm0\n vmovaps %%ymm0, (%[out])\n vzeroupper\n"
      : [n] "+r"(n)
      : [out] "r"(out)
      : PROBE_CLOBBERS);
  sink_f = out[0];
}

__attribute__((target("avx512f"))) void fma_avx512(int64_t n) {
  alignas(64) float out[16];
  asm volatile(
      PROBE_ZERO12("vpxord", "vmovaps", "zmm")
      "vpternlogd $0xff, %%zmm14, %%zmm14, %%zmm14\n vpsrld $3, %%zmm14, %%zmm14\n vmovaps %%zmm14, %%zmm15\n"
      "1:\n " PROBE_MUL12("", "vfmadd231ps", "zmm") "dec %[n]\n jnz 1b\n"
      "vaddps %%zmm1, %%zmm0, %%zmm0\n vaddps %%zmm11, %%zmm0, %%zmm0\n vmovaps %%zmm0, (%[out])\n vzeroupper\n"
      : [n] "+r"(n)
      : [out] "r"(out)
      : PROBE_CLOBBERS);
  sink_f = out[0] + out[15];
}

// The two int8 sequences below are written in assembly: with intrinsics the compiler either
// computes one product for all chains (the operands are the same) or, kept from that by
// barriers, spills accumulators to the stack. Operands: ymm14 (a), ymm15 (b), ymm13 (ones);
// accumulators ymm0-7; products in ymm8-12.

// int16 x int16 -> int32 pairs (exact for int8 data widened to int16): 16 MACs per vpmaddwd,
// plus the vpaddd that accumulates. The chains' latency is vpaddd's only.
__attribute__((target("avx2"))) void madd16_avx2(int64_t n) {
  alignas(32) int32_t out[8];
  asm volatile(
      "vpxor %%ymm0, %%ymm0, %%ymm0\n vmovdqa %%ymm0, %%ymm1\n vmovdqa %%ymm0, %%ymm2\n vmovdqa %%ymm0, %%ymm3\n"
      "vmovdqa %%ymm0, %%ymm4\n vmovdqa %%ymm0, %%ymm5\n vmovdqa %%ymm0, %%ymm6\n vmovdqa %%ymm0, %%ymm7\n"
      "vpcmpeqd %%ymm14, %%ymm14, %%ymm14\n vpabsw %%ymm14, %%ymm15\n"  // a = -1, b = 1 (int16)
      "1:\n"
      "vpmaddwd %%ymm15, %%ymm14, %%ymm8\n vpaddd %%ymm8, %%ymm0, %%ymm0\n"
      "vpmaddwd %%ymm15, %%ymm14, %%ymm9\n vpaddd %%ymm9, %%ymm1, %%ymm1\n"
      "vpmaddwd %%ymm15, %%ymm14, %%ymm10\n vpaddd %%ymm10, %%ymm2, %%ymm2\n"
      "vpmaddwd %%ymm15, %%ymm14, %%ymm11\n vpaddd %%ymm11, %%ymm3, %%ymm3\n"
      "vpmaddwd %%ymm15, %%ymm14, %%ymm8\n vpaddd %%ymm8, %%ymm4, %%ymm4\n"
      "vpmaddwd %%ymm15, %%ymm14, %%ymm9\n vpaddd %%ymm9, %%ymm5, %%ymm5\n"
      "vpmaddwd %%ymm15, %%ymm14, %%ymm10\n vpaddd %%ymm10, %%ymm6, %%ymm6\n"
      "vpmaddwd %%ymm15, %%ymm14, %%ymm11\n vpaddd %%ymm11, %%ymm7, %%ymm7\n"
      "dec %[n]\n jnz 1b\n"
      "vpaddd %%ymm1, %%ymm0, %%ymm0\n vpaddd %%ymm3, %%ymm2, %%ymm2\n vpaddd %%ymm5, %%ymm4, %%ymm4\n vpaddd %%ymm7, %%ymm6, %%ymm6\n"
      "vpaddd %%ymm2, %%ymm0, %%ymm0\n vpaddd %%ymm6, %%ymm4, %%ymm4\n vpaddd %%ymm4, %%ymm0, %%ymm0\n"
      "vmovdqa %%ymm0, (%[out])\n vzeroupper\n"
      : [n] "+r"(n)
      : [out] "r"(out)
      : "cc", "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm14", "xmm15");
  sink_i = out[0];
}

// u8 x s8 -> s16 pairs (saturating) -> s32 with vpmaddwd by ones -> vpaddd: 32 MACs per
// three instructions, the int8 GEMM sequence of CPUs without VNNI.
__attribute__((target("avx2"))) void maddubs_avx2(int64_t n) {
  alignas(32) int32_t out[8];
  asm volatile(
      "vpxor %%ymm0, %%ymm0, %%ymm0\n vmovdqa %%ymm0, %%ymm1\n vmovdqa %%ymm0, %%ymm2\n vmovdqa %%ymm0, %%ymm3\n"
      "vmovdqa %%ymm0, %%ymm4\n vmovdqa %%ymm0, %%ymm5\n vmovdqa %%ymm0, %%ymm6\n vmovdqa %%ymm0, %%ymm7\n"
      "vpcmpeqd %%ymm15, %%ymm15, %%ymm15\n vpabsb %%ymm15, %%ymm14\n"  // a = 1 (u8), b = -1 (s8)
      "vpabsw %%ymm15, %%ymm13\n"                                           // ones (int16)
      "1:\n"
      "vpmaddubsw %%ymm15, %%ymm14, %%ymm8\n vpmaddwd %%ymm13, %%ymm8, %%ymm8\n vpaddd %%ymm8, %%ymm0, %%ymm0\n"
      "vpmaddubsw %%ymm15, %%ymm14, %%ymm9\n vpmaddwd %%ymm13, %%ymm9, %%ymm9\n vpaddd %%ymm9, %%ymm1, %%ymm1\n"
      "vpmaddubsw %%ymm15, %%ymm14, %%ymm10\n vpmaddwd %%ymm13, %%ymm10, %%ymm10\n vpaddd %%ymm10, %%ymm2, %%ymm2\n"
      "vpmaddubsw %%ymm15, %%ymm14, %%ymm11\n vpmaddwd %%ymm13, %%ymm11, %%ymm11\n vpaddd %%ymm11, %%ymm3, %%ymm3\n"
      "vpmaddubsw %%ymm15, %%ymm14, %%ymm8\n vpmaddwd %%ymm13, %%ymm8, %%ymm8\n vpaddd %%ymm8, %%ymm4, %%ymm4\n"
      "vpmaddubsw %%ymm15, %%ymm14, %%ymm9\n vpmaddwd %%ymm13, %%ymm9, %%ymm9\n vpaddd %%ymm9, %%ymm5, %%ymm5\n"
      "vpmaddubsw %%ymm15, %%ymm14, %%ymm10\n vpmaddwd %%ymm13, %%ymm10, %%ymm10\n vpaddd %%ymm10, %%ymm6, %%ymm6\n"
      "vpmaddubsw %%ymm15, %%ymm14, %%ymm11\n vpmaddwd %%ymm13, %%ymm11, %%ymm11\n vpaddd %%ymm11, %%ymm7, %%ymm7\n"
      "dec %[n]\n jnz 1b\n"
      "vpaddd %%ymm1, %%ymm0, %%ymm0\n vpaddd %%ymm3, %%ymm2, %%ymm2\n vpaddd %%ymm5, %%ymm4, %%ymm4\n vpaddd %%ymm7, %%ymm6, %%ymm6\n"
      "vpaddd %%ymm2, %%ymm0, %%ymm0\n vpaddd %%ymm6, %%ymm4, %%ymm4\n vpaddd %%ymm4, %%ymm0, %%ymm0\n"
      "vmovdqa %%ymm0, (%[out])\n vzeroupper\n"
      : [n] "+r"(n)
      : [out] "r"(out)
      : "cc", "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm13", "xmm14", "xmm15");
  sink_i = out[0];
}

// vpdpbusd u8 x s8 -> s32 with accumulation in the instruction: 4 MACs per 32-bit lane.
// Operands: bytes 1 (u8) and -1 (s8), so the sums stay far from overflow.
__attribute__((target("avx512f,avx512bw,avx512vnni"))) void dpbusd_avx512(int64_t n) {
  alignas(64) int32_t out[16];
  asm volatile(
      PROBE_ZERO12("vpxord", "vmovdqa32", "zmm")
      "vpternlogd $0xff, %%zmm15, %%zmm15, %%zmm15\n vpabsb %%zmm15, %%zmm14\n"
      "1:\n " PROBE_MUL12("", "vpdpbusd", "zmm") "dec %[n]\n jnz 1b\n"
      "vpaddd %%zmm1, %%zmm0, %%zmm0\n vpaddd %%zmm11, %%zmm0, %%zmm0\n vmovdqa32 %%zmm0, (%[out])\n vzeroupper\n"
      : [n] "+r"(n)
      : [out] "r"(out)
      : PROBE_CLOBBERS);
  sink_i = out[0] + out[15];
}

__attribute__((target("avx2,avxvnni"))) void dpbusd_avxvnni(int64_t n) {
  alignas(32) int32_t out[8];
  asm volatile(
      PROBE_ZERO12("vpxor", "vmovdqa", "ymm")
      "vpcmpeqd %%ymm15, %%ymm15, %%ymm15\n vpabsb %%ymm15, %%ymm14\n"
      "1:\n " PROBE_MUL12("%{vex%} ", "vpdpbusd", "ymm") "dec %[n]\n jnz 1b\n"
      "vpaddd %%ymm1, %%ymm0, %%ymm0\n vpaddd %%ymm11, %%ymm0, %%ymm0\n vmovdqa %%ymm0, (%[out])\n vzeroupper\n"
      : [n] "+r"(n)
      : [out] "r"(out)
      : PROBE_CLOBBERS);
  sink_i = out[0];
}

// Streaming read: every byte of the buffer loaded once per pass (4 independent sums).
__attribute__((target("avx2"))) int64_t read_avx2(const uint8_t* p, size_t bytes) {
  __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
  for (size_t i = 0; i < bytes; i += 128) {
    s0 = _mm256_add_epi64(s0, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i)));
    s1 = _mm256_add_epi64(s1, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 32)));
    s2 = _mm256_add_epi64(s2, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 64)));
    s3 = _mm256_add_epi64(s3, _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 96)));
  }
  __m256i s = _mm256_add_epi64(_mm256_add_epi64(s0, s1), _mm256_add_epi64(s2, s3));
  return _mm256_extract_epi64(s, 0) + _mm256_extract_epi64(s, 3);
}

int64_t read_scalar(const uint8_t* p, size_t bytes) {
  const int64_t* q = reinterpret_cast<const int64_t*>(p);
  int64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  for (size_t i = 0; i < bytes / 8; i += 4) {
    s0 += q[i];
    s1 += q[i + 1];
    s2 += q[i + 2];
    s3 += q[i + 3];
  }
  return s0 + s1 + s2 + s3;
}

bool has(const std::string& list, const char* isa) {
  std::string padded = "," + list + ",";
  return padded.find(std::string(",") + isa + ",") != std::string::npos;
}

}  // namespace

int main(int argc, char** argv) {
  std::string isa;
  double seconds = 0.25;
  size_t mem_mb = 1024;
  int threads = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--isa")) isa = argv[i + 1];
    else if (!strcmp(argv[i], "--seconds")) seconds = atof(argv[i + 1]);
    else if (!strcmp(argv[i], "--mem-mb")) mem_mb = strtoull(argv[i + 1], nullptr, 10);
    else if (!strcmp(argv[i], "--threads")) threads = std::max(1, atoi(argv[i + 1]));
  }
  std::vector<std::string> rows;
  char line[512];
  auto add = [&](const char* name, const char* kind, const char* instr, double per_instr, double rate) {
    snprintf(line, sizeof line, "  {\"name\": \"%s\", \"kind\": \"%s\", \"instruction\": \"%s\", \"macsPerInstruction\": %g, \"gmacPerSecond\": %.2f}", name, kind, instr, per_instr, rate / 1e9);
    rows.push_back(line);
  };
  if (has(isa, "avx2") && has(isa, "fma")) add("fp32 FMA avx2", "fp32", "vfmadd231ps ymm", 8, best_rate(fma_avx2, 12 * 8, seconds));
  if (has(isa, "avx512f")) add("fp32 FMA avx512", "fp32", "vfmadd231ps zmm", 16, best_rate(fma_avx512, 12 * 16, seconds));
  if (has(isa, "avx2")) {
    add("int16 vpmaddwd avx2", "int8", "vpmaddwd + vpaddd ymm", 16, best_rate(madd16_avx2, 8 * 16, seconds));
    add("u8s8 vpmaddubsw avx2", "int8", "vpmaddubsw + vpmaddwd + vpaddd ymm", 32, best_rate(maddubs_avx2, 8 * 32, seconds));
  }
  if (has(isa, "avx512vnni") && has(isa, "avx512bw")) add("u8s8 vpdpbusd avx512-vnni", "int8", "vpdpbusd zmm", 64, best_rate(dpbusd_avx512, 12 * 64, seconds));
  if (has(isa, "avxvnni")) add("u8s8 vpdpbusd avx-vnni", "int8", "vpdpbusd ymm", 32, best_rate(dpbusd_avxvnni, 12 * 32, seconds));

  // Memory: a buffer of mem_mb MiB (>> L3), touched first, then read whole 5 times; best pass.
  size_t bytes = mem_mb << 20;
  uint8_t* buf = static_cast<uint8_t*>(aligned_alloc(64, bytes));
  double gbs = 0;
  if (buf) {
    memset(buf, 1, bytes);
    for (int r = 0; r < 5; r++) {
      double t = now();
      int64_t s = has(isa, "avx2") ? read_avx2(buf, bytes) : read_scalar(buf, bytes);
      double dt = now() - t;
      sink_i = s;
      if (bytes / dt > gbs) gbs = bytes / dt;
    }
    free(buf);
  }
  // Scaling from 1 to `threads` threads (see the top of the file).
  std::string scale;
  if (threads > 1) {
    const double part = std::min(seconds, 0.2);
    std::vector<std::string> parts;
    if (has(isa, "avx2") && has(isa, "fma")) {
      snprintf(line, sizeof line, "\"fp32 FMA avx2\": %.3f", scaling(fma_avx2, threads, part));
      parts.push_back(line);
    }
    if (has(isa, "avx2")) {
      snprintf(line, sizeof line, "\"u8s8 vpmaddubsw avx2\": %.3f", scaling(maddubs_avx2, threads, part));
      parts.push_back(line);
    }
    // Memory: each thread streams its own buffer (mem_mb / threads, >> L3 for the default).
    const size_t each = (mem_mb << 20) / static_cast<size_t>(threads) / 128 * 128;
    std::vector<uint8_t*> bufs;
    for (int t = 0; t < threads; t++) {
      bufs.push_back(static_cast<uint8_t*>(aligned_alloc(64, each)));
      if (bufs.back()) memset(bufs.back(), 1, each);
    }
    if (std::find(bufs.begin(), bufs.end(), nullptr) == bufs.end()) {
      std::vector<double> ratios;
      auto pass = [&](int t) { sink_i = has(isa, "avx2") ? read_avx2(bufs[t], each) : read_scalar(bufs[t], each); };
      for (int r = 0; r < 7; r++) {
        double t0 = now();
        pass(0);
        const double one = now() - t0;
        t0 = now();
        std::vector<std::thread> pool;
        for (int t = 0; t < threads; t++) pool.emplace_back(pass, t);
        for (auto& th : pool) th.join();
        ratios.push_back(threads * one / (now() - t0));
      }
      std::sort(ratios.begin(), ratios.end());
      snprintf(line, sizeof line, "\"streaming read\": %.3f", ratios[ratios.size() / 2]);
      parts.push_back(line);
    }
    for (uint8_t* b : bufs) free(b);
    scale = ", \"scaling\": {\"threads\": " + std::to_string(threads);
    for (const std::string& p : parts) scale += ", " + p;
    scale += "}";
  }
  printf("{\"compute\": [\n");
  for (size_t i = 0; i < rows.size(); i++) printf("%s%s\n", rows[i].c_str(), i + 1 < rows.size() ? "," : "");
  printf("], \"memory\": {\"name\": \"streaming read, one core\", \"bufferMiB\": %zu, \"gbPerSecond\": %.2f}%s}\n", mem_mb, gbs / 1e9, scale.c_str());
  return 0;
}
