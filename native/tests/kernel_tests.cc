// Native kernel tests: every kernel table this CPU supports against the scalar reference, on
// sizes that are multiples of no vector width, every group size and form, threads 1 and 2.
// Integer results and the integer kernels' fp32 epilogues must match bit for bit; the fp32 GEMM
// within a bound relative to sum |a*w|. Prints one line per case group and a closing count;
// exits non-zero on any failure. Run under qemu-aarch64 for the NEON table.
//
//   kernel_tests [--isa NAME] [--kind f32|q8|q8_segs|lowbit|lowbit_segs|dw|dw_f32|quant|transpose|pack|pool|threads|dispatch] [--seed N] [--list]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdarg>
#include <cmath>
#include <limits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "exec/gemm.h"
#include "kernels/dispatch.h"
#include "kernels/kernels.h"
#include "pack/lowbit-codes.h"
#include "threadpool.h"

using namespace ternion;
using namespace ternion::kernels;

namespace {

int g_passed = 0, g_failed = 0;
uint32_t g_seed = 20261125;

struct AlignedBuf {
  void* p = nullptr;
  explicit AlignedBuf(size_t bytes) {
    if (posix_memalign(&p, 64, std::max<size_t>(bytes, 64)) != 0) std::abort();
    std::memset(p, 0xA5, std::max<size_t>(bytes, 64));  // garbage, so padding bugs show
  }
  ~AlignedBuf() { free(p); }
};

void report(bool ok, const std::string& what) {
  if (ok) {
    ++g_passed;
  } else {
    ++g_failed;
    std::printf("FAIL %s (seed %u)\n", what.c_str(), g_seed);
  }
}

std::string fmt(const char* f, ...) __attribute__((format(printf, 1, 2)));
std::string fmt(const char* f, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, f);
  vsnprintf(buf, sizeof buf, f, ap);
  va_end(ap);
  return buf;
}

const int kSizes[] = {1, 3, 17, 63, 65};
const int kKSizes[] = {1, 3, 17, 63, 65, 1000};

// Column ranges as the drivers produce them: whole, and a split at a panel edge.
std::vector<std::pair<int, int>> ranges(int N, int nr) {
  std::vector<std::pair<int, int>> r = {{0, N}};
  const int panels = (N + nr - 1) / nr;
  if (panels >= 2) {
    const int mid = (panels / 2) * nr;
    r.push_back({0, mid});
    r.push_back({mid, N});
  }
  return r;
}

// ---------------------------------------------------------------- fp32
void test_f32(const KernelTable* t, std::mt19937& rng) {
  const KernelTable* ref = scalar_table();
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  int cases = 0, bad = 0;
  for (int M : kSizes)
    for (int N : kSizes)
      for (int K : kKSizes)
        for (int variant = 0; variant < 3; ++variant) {
          // No clamp; ReLU; narrow bounds with a NaN row. Clamped values must lie in the bounds.
          const float clamps[3][2] = {{0, 0}, {0.0f, std::numeric_limits<float>::infinity()}, {-0.25f, 0.5f}};
          const float* clamp = variant ? clamps[variant] : nullptr;
          std::vector<float> A(static_cast<size_t>(M) * K), W(static_cast<size_t>(N) * K), bias(N);
          for (auto& v : A) v = dist(rng);
          for (auto& v : W) v = dist(rng);
          for (auto& v : bias) v = dist(rng);
          if (variant == 2) A[0] = std::numeric_limits<float>::quiet_NaN();  // row 0 sums to NaN
          AlignedBuf pr(ref->f32_packed_size(N, K)), pt(t->f32_packed_size(N, K));
          ref->f32_pack(W.data(), N, K, pr.p);
          t->f32_pack(W.data(), N, K, pt.p);
          if (variant == 0) {
            // f32_pack_kn: the same bytes from W's transpose laid out K-major, rows N + 2 apart.
            const size_t ldb = N + 2;
            std::vector<float> B(K * ldb, 99.0f);
            for (int n = 0; n < N; ++n)
              for (int k = 0; k < K; ++k) B[k * ldb + n] = W[static_cast<size_t>(n) * K + k];
            AlignedBuf pk(t->f32_packed_size(N, K));
            t->f32_pack_kn(B.data(), K, N, ldb, pk.p);
            ++cases;
            if (std::memcmp(pk.p, pt.p, t->f32_packed_size(N, K)) != 0) {
              ++bad;
              report(false, fmt("f32_pack_kn %s N=%d K=%d: not the bytes of f32_pack", t->name, N, K));
            }
          }
          for (auto [n0, n1] : ranges(N, t->f32_nr)) {
            const size_t ldc = N + 3;
            std::vector<float> Cr(M * ldc, -7.0f), Ct(M * ldc, -7.0f);
            ref->f32_gemm(M, N, K, A.data(), K, pr.p, variant ? bias.data() : nullptr, clamp, Cr.data(), ldc, n0, n1);
            t->f32_gemm(M, N, K, A.data(), K, pt.p, variant ? bias.data() : nullptr, clamp, Ct.data(), ldc, n0, n1);
            bool ok = true;
            for (int m = 0; m < M && ok; ++m)
              for (size_t n = 0; n < ldc && ok; ++n) {
                const float r = Cr[m * ldc + n], v = Ct[m * ldc + n];
                if (static_cast<int>(n) < n0 || static_cast<int>(n) >= n1) {
                  ok = v == -7.0f;  // outside the range: untouched
                  continue;
                }
                if (std::isnan(r)) {  // the NaN row: the clamp lets NaN through, as the reference
                  ok = std::isnan(v);
                  continue;
                }
                double mag = 0;
                for (int k = 0; k < K; ++k) mag += std::fabs(A[m * K + k] * W[n * K + k]);
                ok = std::fabs(r - v) <= 1e-5 * mag + 1e-6 && (!clamp || (v >= clamp[0] && v <= clamp[1]));
              }
            // A row's bits must not depend on its place in M (layouts and batches that cut M
            // differently give the same outputs): rows 1.. alone, from M - 1 >= 2 rows (a lone
            // row is the GEMV, which may sum in another order).
            if (ok && M >= 3) {
              std::vector<float> Cs((M - 1) * ldc, -7.0f);
              t->f32_gemm(M - 1, N, K, A.data() + K, K, pt.p, variant ? bias.data() : nullptr, clamp, Cs.data(), ldc, n0, n1);
              for (int m = 1; m < M && ok; ++m)
                ok = std::memcmp(&Ct[m * ldc], &Cs[(m - 1) * ldc], ldc * sizeof(float)) == 0;
              if (!ok) report(false, fmt("f32 %s M=%d: rows 1.. alone differ in bits", t->name, M));
            }
            ++cases;
            if (!ok) {
              ++bad;
              report(false, fmt("f32 %s M=%d N=%d K=%d clamp=%d range=[%d,%d)", t->name, M, N, K, variant, n0, n1));
            }
          }
        }
  report(bad == 0, "f32 summary");
  std::printf("%s f32 %s: %d cases, %d failed\n", bad ? "FAIL" : "PASS", t->name, cases, bad);
}

// ---------------------------------------------------------------- shared integer helpers
struct RqCase {
  OutType out;
  bool relu, with_scale, with_bias;
  int32_t zp, qmin, qmax;
  // Requant's post-activation Clip and divisor (tables with post_quant only); 0 = none.
  float post_lo = 0.0f, post_hi = 0.0f, divisor = 0.0f;
  bool residual = false;  // uint8 residual codes added (tables with post_residual only)
};

// Residual codes for any output of the tests (M * ldc cells at most): random bytes, fixed seed.
const uint8_t* residual_codes() {
  static const std::vector<uint8_t> codes = [] {
    std::vector<uint8_t> v(size_t(1) << 20);
    std::mt19937 r(4242);
    for (auto& b : v) b = static_cast<uint8_t>(r());
    return v;
  }();
  return codes.data();
}

// `post`: the table honours post_lo / post_hi / divisor (kernels.h), so those cases run too;
// `residual`: also its residual (the GEMMs of tables with post_residual).
std::vector<RqCase> requant_cases(bool allow_i32, bool post, bool residual = false) {
  std::vector<RqCase> c = {
      {OutType::F32, false, true, true, 0, 0, 0},
      {OutType::F32, true, true, false, 0, 0, 0},
      {OutType::U8, false, true, true, 3, 0, 255},
      {OutType::U8, true, true, true, 0, 0, 255},
      {OutType::S8, false, true, true, 0, -127, 127},
      {OutType::S8, true, false, true, -5, -128, 127},
      {OutType::F32, false, false, false, 0, 0, 0},
  };
  if (allow_i32) c.push_back({OutType::I32, false, false, false, 0, 0, 0});
  if (post) {
    // A layer's stored input of the next one: ReLU6-like Clip then / scale, zero point 0 and
    // 37, 4-bit range; a lower bound only; a divisor alone (no activation) with relu.
    c.push_back({OutType::U8, false, true, true, 0, 0, 255, 0.0f, 60.0f, 0.2353f});
    c.push_back({OutType::U8, false, true, true, 37, 0, 255, -20.5f, 90.0f, 0.61f});
    c.push_back({OutType::U8, false, true, true, 2, 0, 15, -3.0f, 0.0f, 1.7f});
    c.push_back({OutType::U8, true, true, true, 0, 0, 255, 0.0f, 0.0f, 0.77f});
  }
  if (post && residual) {
    // A residual block's store: with ReLU as the Clip's lower bound, with no activation (a
    // linear bottleneck), with relu itself, and into int8 without a divisor.
    c.push_back({OutType::U8, false, true, true, 0, 0, 255, 0.0f, 1e30f, 0.2353f, true});
    c.push_back({OutType::U8, false, true, true, 37, 0, 255, -1e30f, 1e30f, 0.61f, true});
    c.push_back({OutType::U8, true, true, false, 2, 0, 15, -3.0f, 6.0f, 1.7f, true});
    c.push_back({OutType::S8, false, false, true, -5, -128, 127, 0.0f, 0.0f, 0.0f, true});
  }
  return c;
}

Requant make_rq(const RqCase& c, const std::vector<float>& scale, const std::vector<float>& bias) {
  Requant rq;
  rq.out = c.out;
  rq.relu = c.relu;
  rq.scale = c.with_scale ? scale.data() : nullptr;
  rq.bias = c.with_bias ? bias.data() : nullptr;
  rq.zero_point = c.zp;
  rq.qmin = c.qmin;
  rq.qmax = c.qmax;
  if (c.divisor > 0.0f) {
    if (c.post_lo != 0.0f || c.post_hi != 0.0f) rq.post_lo = c.post_lo;
    if (c.post_hi != 0.0f) rq.post_hi = c.post_hi;
    rq.divisor = c.divisor;
  }
  if (c.residual) {
    // Values in [-44.4, 50] (zero point 120): the size of the GEMM's outputs, so both matter.
    rq.residual = residual_codes();
    rq.residual_scale = 0.37f;
    rq.residual_zero_point = 120;
  }
  return rq;
}

// Byte-compares two outputs; cells outside [n0, n1) must keep the sentinel byte.
bool same_output(const std::vector<uint8_t>& r, const std::vector<uint8_t>& t, int M, size_t ldc,
                 size_t es, int n0, int n1) {
  for (int m = 0; m < M; ++m)
    for (size_t n = 0; n < ldc; ++n)
      for (size_t b = 0; b < es; ++b) {
        const size_t i = (m * ldc + n) * es + b;
        const bool inside = static_cast<int>(n) >= n0 && static_cast<int>(n) < n1;
        if (inside ? r[i] != t[i] : t[i] != 0xEE) return false;
      }
  return true;
}

// Random requant scales chosen so outputs span past the clamp range.
void fill_scales(std::mt19937& rng, int N, int K, float acc_mag, std::vector<float>& scale,
                 std::vector<float>& bias) {
  std::uniform_real_distribution<float> u(0.2f, 2.0f), b(-40.0f, 40.0f);
  scale.resize(N);
  bias.resize(N);
  const float base = 200.0f / std::max(1.0f, acc_mag * std::sqrt(static_cast<float>(K)));
  for (int n = 0; n < N; ++n) {
    scale[n] = base * u(rng);
    bias[n] = b(rng);
  }
}

// ---------------------------------------------------------------- int8
void test_q8(const KernelTable* t, std::mt19937& rng) {
  const KernelTable* ref = scalar_table();
  // Full-range weights, and 7-bit ones in [-64, 63] (tables may pack those differently: AVX2
  // multiplies them by vpmaddubsw).
  std::uniform_int_distribution<int> wide(-128, 127), narrow(-64, 63), ad(0, 255);
  int cases = 0, bad = 0;
  const uint8_t zeros[] = {0, 128, 37};
  for (bool seven_bit : {false, true})
  for (int M : kSizes)
    for (int N : kSizes)
      for (int K : kKSizes) {
        std::vector<int8_t> W(static_cast<size_t>(N) * K);
        std::vector<uint8_t> A(static_cast<size_t>(M) * K);
        auto& wd = seven_bit ? narrow : wide;
        for (auto& v : W) v = static_cast<int8_t>(wd(rng));
        for (auto& v : A) v = static_cast<uint8_t>(ad(rng));
        if (K >= 17) {  // extremes, where int16 intermediate sums would saturate
          for (int k = 0; k < 8; ++k) A[k] = 255, W[k] = static_cast<int8_t>(wd.min());
          for (int k = 8; k < 12; ++k) A[k] = 255, W[k] = static_cast<int8_t>(wd.max());
        }
        AlignedBuf pr(ref->q8_packed_size(N, K)), pt(t->q8_packed_size(N, K));
        ref->q8_pack(W.data(), N, K, pr.p);
        t->q8_pack(W.data(), N, K, pt.p);
        std::vector<float> scale, bias;
        fill_scales(rng, N, K, 128.0f * 100.0f, scale, bias);
        for (const RqCase& c : requant_cases(true, t->post_quant, t->post_residual)) {
          const Requant rq = make_rq(c, scale, bias);
          const uint8_t za = zeros[(M + N + K + static_cast<int>(c.out)) % 3];
          const size_t es = exec::out_type_size(c.out), ldc = N + 2;
          for (auto [n0, n1] : ranges(N, t->q8_nr)) {
            std::vector<uint8_t> Cr(M * ldc * es, 0xEE), Ct(M * ldc * es, 0xEE);
            ref->q8_gemm(M, N, K, A.data(), K, za, pr.p, &rq, Cr.data(), ldc, n0, n1);
            t->q8_gemm(M, N, K, A.data(), K, za, pt.p, &rq, Ct.data(), ldc, n0, n1);
            ++cases;
            if (!same_output(Cr, Ct, M, ldc, es, n0, n1)) {
              ++bad;
              report(false, fmt("q8 %s M=%d N=%d K=%d out=%d relu=%d res=%d za=%d range=[%d,%d) weights=%s", t->name, M, N, K,
                                static_cast<int>(c.out), c.relu, c.residual, za, n0, n1, seven_bit ? "7-bit" : "8-bit"));
            }
          }
        }
      }
  report(bad == 0, "q8 summary");
  std::printf("%s q8 %s: %d cases, %d failed\n", bad ? "FAIL" : "PASS", t->name, cases, bad);
}

// ---------------------------------------------------------------- int8 over row segments
// M rows of S segments of L bytes pointing into one random image at random, overlapping offsets
// (the first segment ends the allocation, so a read past L shows under ASan), and the same rows
// gathered into A [M][S * L] for the reference.
struct SegmentedRows {
  std::vector<uint8_t> img, A;
  std::vector<const uint8_t*> segs;
  SegmentedRows(std::mt19937& rng, int M, int S, int L) : img(static_cast<size_t>(L) * 7 + 13), A(static_cast<size_t>(M) * S * L), segs(static_cast<size_t>(M) * S) {
    std::uniform_int_distribution<int> ad(0, 255);
    for (auto& v : img) v = static_cast<uint8_t>(ad(rng));
    std::uniform_int_distribution<size_t> off(0, img.size() - L);
    for (size_t i = 0; i < segs.size(); ++i) {
      segs[i] = img.data() + (i == 0 ? img.size() - L : off(rng));
      std::memcpy(A.data() + i * L, segs[i], static_cast<size_t>(L));  // row m, segment s: A[m][s L ..]
    }
  }
};

// q8_gemm_segs (tables that have it) against the reference q8_gemm on the gathered rows: segments
// point into one image at random, overlapping offsets (the last ending the allocation, so a read
// past L shows under ASan), as a convolution's kernel rows do.
void test_q8_segs(const KernelTable* t, std::mt19937& rng) {
  if (!t->q8_gemm_segs) return;
  const KernelTable* ref = scalar_table();
  std::uniform_int_distribution<int> wd(-128, 127), ad(0, 255);
  int cases = 0, bad = 0;
  const std::pair<int, int> shapes[] = {{1, 4}, {3, 12}, {2, 36}, {9, 4}, {3, 192}, {7, 64}, {5, 100}};
  for (int M : kSizes)
    for (int N : kSizes)
      for (auto [S, L] : shapes) {
        const int K = S * L;
        std::vector<int8_t> W(static_cast<size_t>(N) * K);
        for (auto& v : W) v = static_cast<int8_t>(wd(rng));
        const SegmentedRows rows(rng, M, S, L);
        const std::vector<uint8_t>& A = rows.A;
        const std::vector<const uint8_t*>& segs = rows.segs;
        AlignedBuf pr(ref->q8_packed_size(N, K)), pt(t->q8_packed_size(N, K));
        ref->q8_pack(W.data(), N, K, pr.p);
        t->q8_pack(W.data(), N, K, pt.p);
        std::vector<float> scale, bias;
        fill_scales(rng, N, K, 128.0f * 100.0f, scale, bias);
        for (const RqCase& c : requant_cases(true, t->post_quant, t->post_residual)) {
          const Requant rq = make_rq(c, scale, bias);
          const uint8_t za = static_cast<uint8_t>((M * 7 + N + K) % 3 == 0 ? 0 : 128);
          const size_t es = exec::out_type_size(c.out), ldc = N + 2;
          for (auto [n0, n1] : ranges(N, t->q8_nr)) {
            std::vector<uint8_t> Cr(M * ldc * es, 0xEE), Ct(M * ldc * es, 0xEE);
            ref->q8_gemm(M, N, K, A.data(), K, za, pr.p, &rq, Cr.data(), ldc, n0, n1);
            t->q8_gemm_segs(M, N, S, L, segs.data(), za, pt.p, &rq, Ct.data(), ldc, n0, n1);
            ++cases;
            if (!same_output(Cr, Ct, M, ldc, es, n0, n1)) {
              ++bad;
              report(false, fmt("q8_segs %s M=%d N=%d S=%d L=%d out=%d range=[%d,%d)", t->name, M, N, S, L, static_cast<int>(c.out), n0, n1));
            }
          }
        }
      }
  report(bad == 0, "q8_segs summary");
  std::printf("%s q8_segs %s: %d cases, %d failed\n", bad ? "FAIL" : "PASS", t->name, cases, bad);
}

// ---------------------------------------------------------------- fp32 over row segments
// f32_gemm_segs (tables that have it) against the same table's f32_gemm on the gathered rows,
// bit for bit (the same sums in the same order); segments point into one image at random,
// overlapping offsets, the first ending the allocation (a read past L shows under ASan).
void test_f32_segs(const KernelTable* t, std::mt19937& rng) {
  if (!t->f32_gemm_segs) return;
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  int cases = 0, bad = 0;
  const std::pair<int, int> shapes[] = {{1, 3}, {3, 9}, {3, 48}, {2, 50}, {9, 16}, {1, 147}, {3, 195}};
  for (int M : kSizes)
    for (int N : kSizes)
      for (auto [S, L] : shapes)
        for (int variant = 0; variant < 2; ++variant) {
          const int K = S * L;
          std::vector<float> img(static_cast<size_t>(L) * 7 + 13), A(static_cast<size_t>(M) * K), W(static_cast<size_t>(N) * K), bias(N);
          for (auto& v : img) v = dist(rng);
          for (auto& v : W) v = dist(rng);
          for (auto& v : bias) v = dist(rng);
          std::vector<const float*> segs(static_cast<size_t>(M) * S);
          std::uniform_int_distribution<size_t> off(0, img.size() - L);
          for (size_t i = 0; i < segs.size(); ++i) {
            segs[i] = img.data() + (i == 0 ? img.size() - L : off(rng));
            std::memcpy(A.data() + i * L, segs[i], static_cast<size_t>(L) * sizeof(float));
          }
          const float relu[2] = {0.0f, std::numeric_limits<float>::infinity()};
          AlignedBuf pt(t->f32_packed_size(N, K));
          t->f32_pack(W.data(), N, K, pt.p);
          for (auto [n0, n1] : ranges(N, t->f32_nr)) {
            const size_t ldc = N + 3;
            std::vector<float> Cr(M * ldc, -7.0f), Ct(M * ldc, -7.0f);
            t->f32_gemm(M, N, K, A.data(), K, pt.p, variant ? bias.data() : nullptr, variant ? relu : nullptr, Cr.data(), ldc, n0, n1);
            t->f32_gemm_segs(M, N, S, L, segs.data(), pt.p, variant ? bias.data() : nullptr, variant ? relu : nullptr, Ct.data(), ldc, n0, n1);
            ++cases;
            if (std::memcmp(Cr.data(), Ct.data(), Cr.size() * sizeof(float)) != 0) {
              ++bad;
              report(false, fmt("f32_segs %s M=%d N=%d S=%d L=%d range=[%d,%d)", t->name, M, N, S, L, n0, n1));
            }
          }
        }
  report(bad == 0, "f32_segs summary");
  std::printf("%s f32_segs %s: %d cases, %d failed\n", bad ? "FAIL" : "PASS", t->name, cases, bad);
}

// ---------------------------------------------------------------- depthwise int8
// Indirection entries point at pixels of a pixel-major image of exactly C values per pixel (the
// last pixel ends the allocation, so a read past C shows up under ASan) or at a padding row of
// the zero point; outputs are compared byte for byte, and columns C .. ldo - 1 must stay untouched.
void test_dw(const KernelTable* t, std::mt19937& rng) {
  const KernelTable* ref = scalar_table();
  std::uniform_int_distribution<int> ad(0, 255);
  int cases = 0, bad = 0;
  const uint8_t zeros[] = {0, 128, 37};
  // Weights of full range, or all within [-64, 63] (quantize()'s reduceRange; AVX2 packs those in
  // its vpmaddubsw form).
  for (int narrow = 0; narrow < 2; ++narrow)
  for (int C : {1, 3, 8, 15, 16, 17, 32, 33, 48, 63, 65, 96, 144, 200})
    for (int taps : {1, 2, 3, 4, 5, 9, 25})
      for (int P : {1, 3, 17}) {
        const int wlo = narrow ? -64 : -128, whi = narrow ? 63 : 127;
        std::uniform_int_distribution<int> wd(wlo, whi);
        std::vector<int8_t> W(static_cast<size_t>(C) * taps);
        for (auto& v : W) v = static_cast<int8_t>(wd(rng));
        const int pixels = 11;
        std::vector<uint8_t> img(static_cast<size_t>(pixels) * C);
        for (auto& v : img) v = static_cast<uint8_t>(ad(rng));
        for (int c = 0; c < C && taps >= 2; ++c) {  // extremes: 255 * the lowest weight on two taps of pixel 0 / 1
          img[c] = img[C + c] = 255;
          W[static_cast<size_t>(c) * taps] = W[static_cast<size_t>(c) * taps + 1] = static_cast<int8_t>(wlo);
          if (taps >= 4) W[static_cast<size_t>(c) * taps + 2] = W[static_cast<size_t>(c) * taps + 3] = static_cast<int8_t>(whi);
        }
        AlignedBuf pr(ref->dw_packed_size(C, taps)), pt(t->dw_packed_size(C, taps));
        ref->dw_pack(W.data(), C, taps, pr.p);
        t->dw_pack(W.data(), C, taps, pt.p);
        std::vector<float> scale, bias;
        fill_scales(rng, C, taps, 128.0f * 100.0f, scale, bias);
        for (const RqCase& c : requant_cases(true, t->post_quant)) {
          const Requant rq = make_rq(c, scale, bias);
          const uint8_t za = zeros[(C + taps + P + static_cast<int>(c.out)) % 3];
          std::vector<uint8_t> pad(static_cast<size_t>(C), za);
          std::vector<const uint8_t*> in(static_cast<size_t>(P) * taps);
          std::uniform_int_distribution<int> pick(0, pixels);  // `pixels` = the padding row
          for (size_t i = 0; i < in.size(); ++i) {
            const int k = i < 2 ? static_cast<int>(i) : pick(rng);
            in[i] = k == pixels ? pad.data() : img.data() + static_cast<size_t>(k) * C;
          }
          const size_t es = exec::out_type_size(c.out), ldo = C + 3;
          std::vector<uint8_t> Cr(P * ldo * es, 0xEE), Ct(P * ldo * es, 0xEE);
          ref->dw_q8(P, C, taps, in.data(), za, pr.p, &rq, Cr.data(), ldo);
          t->dw_q8(P, C, taps, in.data(), za, pt.p, &rq, Ct.data(), ldo);
          ++cases;
          if (!same_output(Cr, Ct, P, ldo, es, 0, C)) {
            ++bad;
            report(false, fmt("dw %s narrow=%d P=%d C=%d taps=%d out=%d relu=%d za=%d", t->name, narrow, P, C, taps, static_cast<int>(c.out), c.relu, za));
          }
        }
      }
  report(bad == 0, "dw summary");
  std::printf("%s dw %s: %d cases, %d failed\n", bad ? "FAIL" : "PASS", t->name, cases, bad);
}

// ---------------------------------------------------------------- requantization near ties
// The integer epilogue's quantization by the next layer's scale, fma(v, 1/d, zero point): the
// values that matter are those whose image lies at or within a few ulps of a half-integer, where
// a table that multiplied and added separately (or divided) would round differently, plus NaN,
// infinities and magnitudes past the range, with and without ReLU and a Clip (the folded form
// clamps once, requant-folded.h), and divisors whose reciprocal is subnormal or infinite.
// Every row of A equals the zero point, so each accumulator is 0 and the epilogue's input is
// the bias itself: the biases enumerate those values, through the GEMM (32-channel runs, a
// partial panel) and the depthwise kernel (64-channel runs).
void test_requant(const KernelTable* t, std::mt19937& rng) {
  if (!t->post_quant) return;
  const KernelTable* ref = scalar_table();
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  std::uniform_int_distribution<int> wd(-128, 127);
  int cases = 0, bad = 0;
  struct Range { OutType out; int32_t zp, qmin, qmax; };
  const Range ranges_[] = {{OutType::U8, 0, 0, 255}, {OutType::U8, 128, 0, 255}, {OutType::S8, 0, -128, 127}, {OutType::U8, 3, 0, 15}};
  const float divisors[] = {0.1f, 0.2353f, 0.61f, 0.77f, 1.7f, 2.0f, 3.0f, 7.3f, 1e-3f, 1e-30f, 1e-39f, 3e37f};
  const int N = 131, K = 5, M = 3;
  for (const Range& rg : ranges_)
    for (float d : divisors)
      for (int phase = 0; phase < 10; ++phase) {
        std::vector<float> bias(N), scale(N, 1.0f);
        const int32_t lo = rg.qmin - rg.zp, hi = rg.qmax - rg.zp;
        for (int n = 0; n < N; ++n) {
          // (k + 0.5) * d moved by -4 .. +4 ulps, k across the range and a little past it.
          // Phases 6 .. 9: quotients k - 0.25, k, k + 0.25, far from ties, so that the specials
          // below meet a vector the fast path takes (AVX-512 tests rounding per vector).
          const int k = lo - 2 + (n * 7 + phase * 13) % (hi - lo + 4);
          float v = static_cast<float>((k + (phase < 6 ? 0.5 : 0.25 * (n % 3 - 1))) * static_cast<double>(d));
          if (phase < 6)
            for (int j = n % 9 - 4; j != 0; j += j > 0 ? -1 : 1) v = std::nextafter(v, j > 0 ? inf : -inf);
          bias[n] = v;
        }
        const float specials[] = {nan, inf, -inf, 1e30f, -1e30f, 0.0f, -0.0f, 1e-40f};
        for (int i = 0; i < 8; ++i) bias[(phase * 17 + i * 11) % N] = specials[i];
        Requant rq;
        rq.out = rg.out;
        rq.relu = phase % 2 == 1;
        rq.scale = scale.data();
        rq.bias = bias.data();
        rq.zero_point = rg.zp;
        rq.qmin = rg.qmin;
        rq.qmax = rg.qmax;
        rq.divisor = d;
        if (phase == 4 || phase == 5 || phase >= 8) rq.post_lo = -5.0f * d, rq.post_hi = 40.0f * d;
        const uint8_t za = static_cast<uint8_t>(37 * phase);
        const size_t ldc = N + 2;
        auto check = [&](const std::vector<uint8_t>& r, const std::vector<uint8_t>& o, int rows, const char* what) {
          ++cases;
          if (!same_output(r, o, rows, ldc, 1, 0, N)) {
            ++bad;
            report(false, fmt("requant %s %s out=%d zp=%d d=%g phase=%d", what, t->name, static_cast<int>(rg.out), rg.zp, d, phase));
          }
        };
        {  // GEMM
          std::vector<int8_t> W(static_cast<size_t>(N) * K);
          for (auto& v : W) v = static_cast<int8_t>(wd(rng));
          std::vector<uint8_t> A(static_cast<size_t>(M) * K, za);
          AlignedBuf pr(ref->q8_packed_size(N, K)), pt(t->q8_packed_size(N, K));
          ref->q8_pack(W.data(), N, K, pr.p);
          t->q8_pack(W.data(), N, K, pt.p);
          std::vector<uint8_t> Cr(M * ldc, 0xEE), Ct(M * ldc, 0xEE);
          ref->q8_gemm(M, N, K, A.data(), K, za, pr.p, &rq, Cr.data(), ldc, 0, N);
          t->q8_gemm(M, N, K, A.data(), K, za, pt.p, &rq, Ct.data(), ldc, 0, N);
          check(Cr, Ct, M, "gemm");
        }
        {  // depthwise, 9 taps of the zero point per pixel
          const int taps = 9;
          std::vector<int8_t> W(static_cast<size_t>(N) * taps);
          for (auto& v : W) v = static_cast<int8_t>(wd(rng));
          AlignedBuf pr(ref->dw_packed_size(N, taps)), pt(t->dw_packed_size(N, taps));
          ref->dw_pack(W.data(), N, taps, pr.p);
          t->dw_pack(W.data(), N, taps, pt.p);
          std::vector<uint8_t> pad(static_cast<size_t>(N), za);
          std::vector<const uint8_t*> in(static_cast<size_t>(M) * taps, pad.data());
          std::vector<uint8_t> Cr(M * ldc, 0xEE), Ct(M * ldc, 0xEE);
          ref->dw_q8(M, N, taps, in.data(), za, pr.p, &rq, Cr.data(), ldc);
          t->dw_q8(M, N, taps, in.data(), za, pt.p, &rq, Ct.data(), ldc);
          check(Cr, Ct, M, "dw");
        }
      }
  report(bad == 0, "requant summary");
  std::printf("%s requant %s: %d cases, %d failed\n", bad ? "FAIL" : "PASS", t->name, cases, bad);
}

// ---------------------------------------------------------------- depthwise fp32
// The same indirection as test_dw (pixels of exactly C floats, the last ending the allocation),
// with null entries for taps outside the input, compared bit for bit: the kernels promise the
// reference's rounded product and sum per tap. Inputs include -0, NaN and infinities so the
// clamp's ordering shows; a -0 bias and infinite weights show whether null taps are skipped.
void test_dw_f32(const KernelTable* t, std::mt19937& rng) {
  const KernelTable* ref = scalar_table();
  std::uniform_real_distribution<float> u(-2.0f, 2.0f);
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  struct Clamp { float lo, hi; };
  const Clamp clamps[] = {{-inf, inf}, {0.0f, inf}, {0.0f, 6.0f}, {-0.5f, 0.25f}};
  int cases = 0, bad = 0;
  for (int C : {1, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 40, 63, 65, 96, 144, 200})
    for (int taps : {1, 2, 3, 4, 9, 25})
      for (int P : {1, 2, 3, 17})
        for (int variant = 0; variant < 2; ++variant) {
          const int pixels = 11;
          std::vector<float> W(static_cast<size_t>(taps) * C), bias(C);
          auto img = std::make_unique<float[]>(static_cast<size_t>(pixels) * C);
          for (auto& v : W) v = u(rng);
          for (auto& v : bias) v = u(rng);
          for (int i = 0; i < pixels * C; ++i) img[i] = u(rng);
          if (variant == 1) {  // specials on pixel 0, which the first pixel's first tap reads
            const float special[] = {-0.0f, nan, inf, -inf, 1e-40f, 3e38f};
            for (int c = 0; c < C; ++c) img[c] = special[c % 6];
          }
          if (variant == 1) {  // a -0 bias and an infinite weight: a padding tap read as 0 would change both
            bias[0] = -0.0f;
            W[static_cast<size_t>(taps - 1) * C] = std::numeric_limits<float>::infinity();
          }
          std::vector<const float*> in(static_cast<size_t>(P) * taps);
          std::uniform_int_distribution<int> pick(0, pixels);  // `pixels` = outside the input
          for (size_t i = 0; i < in.size(); ++i) {
            const int k = i == 0 ? 0 : pick(rng);
            in[i] = k == pixels ? nullptr : img.get() + static_cast<size_t>(k) * C;
          }
          const Clamp cl = clamps[(C + taps + P + variant) % 4];
          const float* b = (C + P) % 3 == 0 ? nullptr : bias.data();
          const size_t ldo = C + 3;
          std::vector<float> Or(P * ldo, -7.0f), Ot(P * ldo, -7.0f);
          ref->dw_f32(P, C, taps, in.data(), W.data(), b, cl.lo, cl.hi, Or.data(), ldo);
          t->dw_f32(P, C, taps, in.data(), W.data(), b, cl.lo, cl.hi, Ot.data(), ldo);
          ++cases;
          // Bit patterns: NaN == NaN and -0 != +0 here.
          if (std::memcmp(Or.data(), Ot.data(), Or.size() * sizeof(float)) != 0) {
            ++bad;
            report(false, fmt("dw_f32 %s P=%d C=%d taps=%d lo=%g hi=%g bias=%d specials=%d", t->name, P, C, taps, cl.lo, cl.hi, b != nullptr, variant));
          }
          bool untouched = true;
          for (int p = 0; p < P; ++p)
            for (size_t c = C; c < ldo; ++c) untouched = untouched && Ot[p * ldo + c] == -7.0f;
          if (!untouched) report(false, fmt("dw_f32 %s P=%d C=%d: wrote past C", t->name, P, C));
        }
  report(bad == 0, "dw_f32 summary");
  std::printf("%s dw_f32 %s: %d cases, %d failed\n", bad ? "FAIL" : "PASS", t->name, cases, bad);
}

// ---------------------------------------------------------------- fp32 transpose
// Every table, the scalar one included, against the definition: byte for byte (random bit
// patterns, NaN payloads among them), on sizes that leave every block edge, with row strides
// wider than the rows; what lies outside the transposed block stays untouched.
void test_transpose(const KernelTable* t, std::mt19937& rng) {
  int cases = 0, bad = 0;
  const float sentinel = -7.0f;
  for (int rows : {1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 24, 33})
    for (int cols : {1, 3, 4, 7, 8, 9, 15, 16, 31, 64, 65, 200}) {
      const size_t ld_src = static_cast<size_t>(cols) + rows % 3, ld_dst = static_cast<size_t>(rows) + cols % 4;
      std::vector<uint32_t> bits(rows * ld_src);
      for (auto& b : bits) b = static_cast<uint32_t>(rng());
      std::vector<float> src(bits.size());
      std::memcpy(src.data(), bits.data(), bits.size() * sizeof(float));
      std::vector<float> want(cols * ld_dst, sentinel), got(cols * ld_dst, sentinel);
      for (int r = 0; r < rows; ++r)
        for (int c = 0; c < cols; ++c) want[c * ld_dst + r] = src[r * ld_src + c];
      t->transpose_f32(src.data(), rows, cols, ld_src, got.data(), ld_dst);
      ++cases;
      if (std::memcmp(want.data(), got.data(), want.size() * sizeof(float)) != 0) {
        ++bad;
        report(false, fmt("transpose_f32 %s rows=%d cols=%d ld_src=%zu ld_dst=%zu", t->name, rows, cols, ld_src, ld_dst));
      }
    }
  report(bad == 0, "transpose_f32 summary");
  std::printf("%s transpose_f32 %s: %d cases, %d failed\n", bad ? "FAIL" : "PASS", t->name, cases, bad);
}

// ---------------------------------------------------------------- activation quantization
// Values around every rounding tie and both clamps, NaN, infinities, huge and tiny numbers, on
// lengths that leave every vector tail.
void test_quant(const KernelTable* t, std::mt19937& rng) {
  const KernelTable* ref = scalar_table();
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  int cases = 0, bad = 0;
  struct P { float scale; int32_t zp, qmax; };
  const P params[] = {{0.05f, 128, 255}, {1.0f, 0, 255}, {0.0137f, 37, 255}, {0.3f, 3, 15}, {2.5f, 255, 255}, {1e-3f, 0, 15}};
  for (const P& p : params)
    for (size_t n : {1, 3, 7, 8, 17, 31, 32, 33, 63, 65, 1000}) {
      std::vector<float> x(n);
      for (size_t i = 0; i < n; ++i) {
        switch (i % 8) {
          case 0: x[i] = u(rng) * 300 * p.scale; break;                                  // spans both clamps
          case 1: x[i] = (std::floor(u(rng) * 200) + 0.5f) * p.scale; break;              // ties
          case 2: x[i] = (static_cast<float>(static_cast<int>(u(rng) * 100)) + 0.5f) * p.scale; break;
          case 3: x[i] = i % 16 == 3 ? std::numeric_limits<float>::quiet_NaN() : -std::numeric_limits<float>::infinity(); break;
          case 4: x[i] = i % 16 == 4 ? std::numeric_limits<float>::infinity() : 3e38f; break;
          case 5: x[i] = u(rng) * 1e-30f; break;
          default: x[i] = u(rng) * 10 * p.scale; break;
        }
      }
      std::vector<uint8_t> yr(n + 1, 0xEE), yt(n + 1, 0xEE);
      ref->quantize_u8(x.data(), yr.data(), n, p.scale, p.zp, p.qmax);
      t->quantize_u8(x.data(), yt.data(), n, p.scale, p.zp, p.qmax);
      ++cases;
      if (yr != yt) {
        ++bad;
        report(false, fmt("quant %s n=%d scale=%g zp=%d qmax=%d", t->name, static_cast<int>(n), p.scale, p.zp, p.qmax));
      }
    }
  report(bad == 0, "quant summary");
  std::printf("%s quant %s: %d cases, %d failed\n", bad ? "FAIL" : "PASS", t->name, cases, bad);
}

// ---------------------------------------------------------------- low-bit
int lim_of(int bits) { return bits == 2 ? 1 : 7; }

struct LowbitData {
  std::vector<int8_t> q, mp, mn;
  std::vector<float> sp, sn;
  LowbitWeights w;
};

// mmax: the largest folded multiplier (127 / 18 is each width's limit; 63 / 9 keep every q * m
// within the narrow int8 form that AVX2 expands folded layers to).
LowbitData make_lowbit(std::mt19937& rng, int bits, int N, int K, int G, LowbitForm form, bool asym,
                       int mmax = 0) {
  LowbitData d;
  const int lim = bits == 2 ? 1 : 7;
  if (mmax == 0) mmax = bits == 2 ? 127 : 18;
  std::uniform_int_distribution<int> qd(-lim, lim);
  std::uniform_real_distribution<float> sd(0.001f, 0.5f);
  std::uniform_int_distribution<int> md(1, mmax);
  d.q.resize(static_cast<size_t>(N) * K);
  for (auto& v : d.q) v = static_cast<int8_t>(qd(rng));
  const size_t groups = static_cast<size_t>(N) * (K / G);
  d.sp.resize(groups);
  d.sn.resize(groups);
  d.mp.resize(groups);
  d.mn.resize(groups);
  for (size_t i = 0; i < groups; ++i) {
    d.sp[i] = sd(rng);
    d.sn[i] = sd(rng);
    d.mp[i] = static_cast<int8_t>(md(rng));
    d.mn[i] = static_cast<int8_t>(md(rng));
  }
  // Extreme multipliers and all-one groups too.
  if (groups > 2) d.mp[0] = static_cast<int8_t>(mmax), d.mn[1] = 1;
  d.w.bits = bits;
  d.w.N = N;
  d.w.K = K;
  d.w.G = G;
  d.w.form = form;
  d.w.asym = asym;
  d.w.q = d.q.data();
  d.w.scale_pos = d.sp.data();
  d.w.scale_neg = asym ? d.sn.data() : nullptr;
  d.w.mult_pos = d.mp.data();
  d.w.mult_neg = asym ? d.mn.data() : nullptr;
  return d;
}

void test_lowbit(const KernelTable* t, std::mt19937& rng) {
  const KernelTable* ref = scalar_table();
  std::uniform_int_distribution<int> ad(0, 255);
  int cases = 0, bad = 0;
  // 128: the largest ternary group whose sum fits int16 (AVX-512 applies it by vpdpwssd).
  const int groups_list[] = {4, 8, 16, 32, 64, 128, 0 /* filter: G = K */};
  for (int bits : {2, 4})
    for (int form_i = 0; form_i < 2; ++form_i)
      for (int asym = 0; asym < (bits == 2 ? 2 : 1); ++asym)
        for (int G0 : groups_list)
          for (int N : kSizes)
            for (int kmul : {1, 3, 17}) {
              const LowbitForm form = form_i ? LowbitForm::Folded : LowbitForm::GroupScaled;
              int G = G0, K = G0 * kmul;
              if (G0 == 0) K = G = kKSizes[(kmul + N) % 6];
              if (G0 == 0 && kmul == 17) K = G = 1000;
              // Folded layers from 8 rows on run expanded to int8 on AVX2: narrow or wide.
              const int mmax = (N + kmul) % 2 ? (bits == 2 ? 63 : 9) : (bits == 2 ? 127 : 18);
              for (int M : {1, 3, 8, 17}) {  // folded N <= 16 runs expanded on AVX2 from 8 rows (narrow) / 16 (wide)
                LowbitData d = make_lowbit(rng, bits, N, K, G, form, asym, mmax);
                std::vector<uint8_t> A(static_cast<size_t>(M) * K);
                for (auto& v : A) v = static_cast<uint8_t>(ad(rng));
                // The extreme group sums: the first row all 255 and the first channel's codes all +lim.
                if (kmul == 3) {
                  std::fill(A.begin(), A.begin() + K, 255);
                  std::fill(d.q.begin(), d.q.begin() + K, static_cast<int8_t>(lim_of(bits)));
                }
                AlignedBuf pr(ref->lowbit_packed_size(&d.w)), pt(t->lowbit_packed_size(&d.w));
                ref->lowbit_pack(&d.w, pr.p);
                t->lowbit_pack(&d.w, pt.p);
                std::vector<float> scale, bias;
                fill_scales(rng, N, K, form == LowbitForm::Folded ? 60.0f * 128 : 0.25f * 128 * lim_of(bits), scale, bias);
                for (const RqCase& c : requant_cases(form == LowbitForm::Folded, t->post_quant, t->post_residual)) {
                  const Requant rq = make_rq(c, scale, bias);
                  const uint8_t za = (M + K + static_cast<int>(c.out)) % 2 ? 128 : 0;
                  const size_t es = exec::out_type_size(c.out), ldc = N + 1;
                  for (auto [n0, n1] : ranges(N, t->lowbit_nr)) {
                    std::vector<uint8_t> Cr(M * ldc * es, 0xEE), Ct(M * ldc * es, 0xEE);
                    ref->lowbit_gemm(M, N, K, A.data(), K, za, pr.p, &rq, Cr.data(), ldc, n0, n1);
                    t->lowbit_gemm(M, N, K, A.data(), K, za, pt.p, &rq, Ct.data(), ldc, n0, n1);
                    ++cases;
                    if (!same_output(Cr, Ct, M, ldc, es, n0, n1)) {
                      ++bad;
                      report(false, fmt("lowbit %s bits=%d form=%d asym=%d G=%d M=%d N=%d K=%d out=%d relu=%d za=%d range=[%d,%d)",
                                        t->name, bits, form_i, asym, G, M, N, K, static_cast<int>(c.out), c.relu, za, n0, n1));
                    }
                  }
                }
              }
            }
  report(bad == 0, "lowbit summary");
  std::printf("%s lowbit %s: %d cases, %d failed\n", bad ? "FAIL" : "PASS", t->name, cases, bad);
}


// lowbit_gemm_segs (tables that have it) against the reference lowbit_gemm on the gathered
// rows: both forms, ternary and 4-bit, and enough rows for the expanded int8 path.
void test_lowbit_segs(const KernelTable* t, std::mt19937& rng) {
  if (!t->lowbit_gemm_segs) return;
  const KernelTable* ref = scalar_table();
  std::uniform_int_distribution<int> ad(0, 255);
  int cases = 0, bad = 0;
  const std::pair<int, int> shapes[] = {{3, 12}, {3, 192}, {9, 4}, {2, 64}};
  for (int bits : {2, 4})
    for (int form_i = 0; form_i < 2; ++form_i)
      for (int asym = 0; asym < (bits == 2 ? 2 : 1); ++asym)
        for (auto [S, L] : shapes)
          for (int N : {3, 33, 65})
            for (int M : {1, 7, 16, 49}) {
              const int K = S * L, G = K % 16 == 0 ? 16 : 4;
              const LowbitForm form = form_i ? LowbitForm::Folded : LowbitForm::GroupScaled;
              LowbitData d = make_lowbit(rng, bits, N, K, G, form, asym, bits == 2 ? 127 : 18);
              const SegmentedRows rows(rng, M, S, L);
              const std::vector<uint8_t>& A = rows.A;
              const std::vector<const uint8_t*>& segs = rows.segs;
              AlignedBuf pr(ref->lowbit_packed_size(&d.w)), pt(t->lowbit_packed_size(&d.w));
              ref->lowbit_pack(&d.w, pr.p);
              t->lowbit_pack(&d.w, pt.p);
              std::vector<float> scale, bias;
              fill_scales(rng, N, K, form == LowbitForm::Folded ? 60.0f * 128 : 0.25f * 128 * lim_of(bits), scale, bias);
              for (const RqCase& c : requant_cases(form == LowbitForm::Folded, t->post_quant, t->post_residual)) {
                const Requant rq = make_rq(c, scale, bias);
                const uint8_t za = (M + K + static_cast<int>(c.out)) % 2 ? 128 : 0;
                const size_t es = exec::out_type_size(c.out), ldc = N + 1;
                for (auto [n0, n1] : ranges(N, t->lowbit_nr)) {
                  std::vector<uint8_t> Cr(M * ldc * es, 0xEE), Ct(M * ldc * es, 0xEE);
                  ref->lowbit_gemm(M, N, K, A.data(), K, za, pr.p, &rq, Cr.data(), ldc, n0, n1);
                  t->lowbit_gemm_segs(M, N, S, L, segs.data(), za, pt.p, &rq, Ct.data(), ldc, n0, n1);
                  ++cases;
                  if (!same_output(Cr, Ct, M, ldc, es, n0, n1)) {
                    ++bad;
                    report(false, fmt("lowbit_segs %s bits=%d form=%d asym=%d S=%d L=%d M=%d N=%d out=%d range=[%d,%d)", t->name, bits, form_i,
                                      asym, S, L, M, N, static_cast<int>(c.out), n0, n1));
                  }
                }
              }
            }
  report(bad == 0, "lowbit_segs summary");
  std::printf("%s lowbit_segs %s: %d cases, %d failed\n", bad ? "FAIL" : "PASS", t->name, cases, bad);
}

// ---------------------------------------------------------------- threads (drivers)
// The multi-threaded drivers must give exactly what one thread gives, tile split or not.
void test_threads(const KernelTable* t, std::mt19937& rng) {
  ThreadPool pool(2);
  int cases = 0, bad = 0;
  std::uniform_int_distribution<int> ad(0, 255), wd(-128, 127);
  for (int M : {1, 16, 63, 64})
    for (int N : {1, 65, 256})
      for (int K : {17, 64, 1000}) {
        std::vector<uint8_t> A(static_cast<size_t>(M) * K);
        for (auto& v : A) v = static_cast<uint8_t>(ad(rng));
        std::vector<int8_t> W(static_cast<size_t>(N) * K);
        for (auto& v : W) v = static_cast<int8_t>(wd(rng));
        std::vector<float> scale, bias;
        fill_scales(rng, N, K, 128.0f * 100.0f, scale, bias);
        Requant rq;
        rq.out = OutType::U8;
        rq.scale = scale.data();
        rq.bias = bias.data();
        AlignedBuf pq(t->q8_packed_size(N, K));
        t->q8_pack(W.data(), N, K, pq.p);
        const int G = K % 64 == 0 ? 64 : K;
        LowbitData d = make_lowbit(rng, 2, N, K, G, LowbitForm::GroupScaled, true);
        AlignedBuf pl(t->lowbit_packed_size(&d.w));
        t->lowbit_pack(&d.w, pl.p);
        std::vector<float> Af(A.begin(), A.end()), Wf(W.begin(), W.end());
        AlignedBuf pf(t->f32_packed_size(N, K));
        t->f32_pack(Wf.data(), N, K, pf.p);
        for (int kind = 0; kind < 3; ++kind) {
          std::vector<uint8_t> out1, out2;
          for (int threads : {1, 2}) {
            exec::GemmContext ctx{t, &pool, threads};
            std::vector<uint8_t>& out = threads == 1 ? out1 : out2;
            if (kind == 0) {
              out.assign(static_cast<size_t>(M) * N, 0);
              exec::gemm_q8(ctx, M, N, K, A.data(), K, 128, pq.p, rq, out.data(), N);
            } else if (kind == 1) {
              out.assign(static_cast<size_t>(M) * N, 0);
              exec::gemm_lowbit(ctx, M, N, K, A.data(), K, 0, pl.p, rq, out.data(), N);
            } else {
              out.assign(static_cast<size_t>(M) * N * 4, 0);
              const float relu[2] = {0.0f, std::numeric_limits<float>::infinity()};
              exec::gemm_f32(ctx, M, N, K, Af.data(), K, pf.p, bias.data(), relu,
                             reinterpret_cast<float*>(out.data()), N);
            }
          }
          ++cases;
          if (out1 != out2) {
            ++bad;
            report(false, fmt("threads %s kind=%d M=%d N=%d K=%d: 2 threads differ from 1", t->name, kind, M, N, K));
          }
        }
      }
  // Tiles cover the output exactly once.
  for (int M : {1, 5, 64, 200})
    for (int N : {1, 7, 64, 1001})
      for (int nr : {1, 8, 16, 32})
        for (int threads : {1, 2, 3, 8}) {
          std::vector<int> hits(static_cast<size_t>(M) * N, 0);
          bool aligned = true;
          for (const auto& tile : exec::plan_tiles(M, N, nr, threads)) {
            aligned &= tile.n0 % nr == 0 && (tile.n1 % nr == 0 || tile.n1 == N);
            for (int m = tile.m0; m < tile.m1; ++m)
              for (int n = tile.n0; n < tile.n1; ++n) ++hits[m * N + n];
          }
          ++cases;
          const bool ok = aligned && std::all_of(hits.begin(), hits.end(), [](int h) { return h == 1; });
          if (!ok) {
            ++bad;
            report(false, fmt("plan_tiles M=%d N=%d nr=%d threads=%d", M, N, nr, threads));
          }
        }
  report(bad == 0, "threads summary");
  std::printf("%s threads %s: %d cases, %d failed\n", bad ? "FAIL" : "PASS", t->name, cases, bad);
}

// ---------------------------------------------------------------- the thread pool itself
// Every task runs exactly once, whatever the task and thread counts, with pauses long enough
// that the workers stop spinning and sleep between some jobs, and with several callers at once
// (they queue).
void test_pool() {
  int cases = 0, bad = 0;
  ThreadPool pool(3);
  for (int it = 0; it < 3000; ++it) {
    const int tasks = 1 + it % 7, max_threads = 1 + it % 4;
    std::vector<int> hits(static_cast<size_t>(tasks), 0);
    pool.parallel_for(tasks, max_threads, [&](int task) { ++hits[static_cast<size_t>(task)]; });
    ++cases;
    if (!std::all_of(hits.begin(), hits.end(), [](int h) { return h == 1; })) {
      ++bad;
      report(false, fmt("pool: job %d (%d tasks, %d threads) ran a task other than once", it, tasks, max_threads));
    }
    if (it % 500 == 0) std::this_thread::sleep_for(std::chrono::microseconds(thread_pool_spin_micros() + 300));
  }
  std::atomic<long> sum{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < 3; ++c)
    callers.emplace_back([&] {
      for (int i = 0; i < 500; ++i) pool.parallel_for(5, 3, [&](int task) { sum += task; });
    });
  for (auto& c : callers) c.join();
  ++cases;
  if (sum.load() != 3L * 500 * 10) {
    ++bad;
    report(false, fmt("pool: concurrent callers summed %ld, want %ld", sum.load(), 3L * 500 * 10));
  }
  report(bad == 0, "pool summary");
  std::printf("%s pool: %d cases, %d failed\n", bad ? "FAIL" : "PASS", cases, bad);
}

// ---------------------------------------------------------------- code packing
void test_pack(std::mt19937& rng) {
  int cases = 0, bad = 0;
  for (int bits : {2, 4})
    for (size_t count : {1, 3, 4, 17, 63, 65, 1000}) {
      const int lim = lim_of(bits);
      std::uniform_int_distribution<int> qd(-lim, lim);
      std::vector<int8_t> codes(count), back(count);
      for (auto& v : codes) v = static_cast<int8_t>(qd(rng));
      std::vector<uint8_t> packed(pack::packed_code_bytes(count, bits));
      bool ok = pack::pack_codes(codes.data(), count, bits, packed.data()) &&
                pack::unpack_codes(packed.data(), count, bits, back.data()) && codes == back;
      // Out-of-range codes are refused, and so are invalid stored values.
      codes[count / 2] = static_cast<int8_t>(lim + 1);
      ok = ok && !pack::pack_codes(codes.data(), count, bits, packed.data());
      std::fill(packed.begin(), packed.end(), bits == 2 ? 0xFF : 0x00);
      ok = ok && !pack::unpack_codes(packed.data(), count, bits, back.data());
      ++cases;
      if (!ok) {
        ++bad;
        report(false, fmt("pack bits=%d count=%zu", bits, count));
      }
    }
  report(bad == 0, "pack summary");
  std::printf("%s pack: %d cases, %d failed\n", bad ? "FAIL" : "PASS", cases, bad);
}

// ---------------------------------------------------------------- dispatch
void test_dispatch() {
  std::string err;
  const auto tables = supported_tables();
  bool ok = !tables.empty() && std::string(tables.back()->name) == "scalar";
  ok = ok && select_table(nullptr, &err) == tables.front();
  ok = ok && select_table("scalar", &err) == scalar_table();
  err.clear();
  ok = ok && select_table("no-such-isa", &err) == nullptr && err.find("no-such-isa") != std::string::npos;
  for (const KernelTable* t : tables) ok = ok && select_table(t->name, &err) == t;
  report(ok, "dispatch");
  std::printf("%s dispatch: tables here:", ok ? "PASS" : "FAIL");
  for (const KernelTable* t : tables) std::printf(" %s", t->name);
  std::printf("; cpu:");
  for (const auto& n : cpu_features().names()) std::printf(" %s", n.c_str());
  std::printf("\n");
}

}  // namespace

int main(int argc, char** argv) {
  std::string isa, kind;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--isa" && i + 1 < argc) isa = argv[++i];
    else if (a == "--kind" && i + 1 < argc) kind = argv[++i];
    else if (a == "--seed" && i + 1 < argc) g_seed = static_cast<uint32_t>(std::strtoul(argv[++i], nullptr, 10));
    else if (a == "--list") {
      for (const auto& n : compiled_table_names()) {
        bool here = false;
        for (const KernelTable* t : supported_tables()) here |= n == t->name;
        std::printf("%s %s\n", n.c_str(), here ? "supported" : "unsupported");
      }
      return 0;
    } else {
      std::printf("usage: kernel_tests [--isa NAME] [--kind f32|q8|q8_segs|lowbit|lowbit_segs|dw|dw_f32|quant|requant|transpose|threads|pool|pack|dispatch] [--seed N] [--list]\n");
      return a == "--help" ? 0 : 2;
    }
  }
  std::mt19937 rng(g_seed);
  const bool all_kinds = kind.empty();
  if (all_kinds || kind == "dispatch") test_dispatch();
  if (all_kinds || kind == "pack") test_pack(rng);
  if (all_kinds || kind == "pool") test_pool();
  bool isa_found = isa.empty();
  for (const std::string& name : compiled_table_names()) {
    if (!isa.empty() && name != isa) continue;
    std::string err;
    const KernelTable* t = select_table(name.c_str(), &err);
    if (!t) {
      std::printf("SKIP %s: %s\n", name.c_str(), err.c_str());
      isa_found |= !isa.empty();
      continue;
    }
    isa_found = true;
    // The scalar table is the reference; its own kernels are checked by the drivers' test and
    // by the JS tests against onnxruntime and hand-computed values.
    if (all_kinds || kind == "threads") test_threads(t, rng);
    if (all_kinds || kind == "transpose") test_transpose(t, rng);
    if (t == scalar_table()) continue;
    if (all_kinds || kind == "f32") test_f32(t, rng);
    if (all_kinds || kind == "f32_segs") test_f32_segs(t, rng);
    if (all_kinds || kind == "q8") test_q8(t, rng);
    if (all_kinds || kind == "q8_segs") test_q8_segs(t, rng);
    if (all_kinds || kind == "lowbit") test_lowbit(t, rng);
    if (all_kinds || kind == "lowbit_segs") test_lowbit_segs(t, rng);
    if (all_kinds || kind == "dw") test_dw(t, rng);
    if (all_kinds || kind == "dw_f32") test_dw_f32(t, rng);
    if (all_kinds || kind == "quant") test_quant(t, rng);
    if (all_kinds || kind == "requant") test_requant(t, rng);
  }
  if (!isa_found) {
    std::printf("FAIL unknown --isa %s\n", isa.c_str());
    ++g_failed;
  }
  std::printf("kernel_tests: %d passed, %d failed\n", g_passed, g_failed);
  return g_failed ? 1 : 0;
}
