// Float math that vectorizes: e^x without a libm call, the sigmoid and the in-order double sum
// built on it, and the macro that compiles a loop for AVX2 and AVX-512 as well (elementwise
// ops: activations.cc, softmax.cc, reduce.cc).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

namespace ternion {
namespace exec {

// The hot float loops are also compiled for AVX2 and AVX-512 (GCC function multiversioning,
// picked once at load by the CPU's features): the same IEEE operations in the same order (no
// fused multiply-adds: -ffp-contract=off), so every version gives the same bits, 4x or 16x
// wider than baseline SSE2. (Sigmoids were more than half of EfficientNet-B0 int8's time.)
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define TERNION_WIDE_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define TERNION_WIDE_CLONES
#endif


// The float functions below (and their lane forms) use fused multiply-adds: one rounding where a
// product and a sum would take two, and a third fewer instructions. Every x86 CPU with AVX2 has
// FMA, as has every aarch64 one; on a CPU with neither, fmaf is libm's (exact, slow), so the
// results are the same bits everywhere.
inline float fma1(float a, float b, float c) { return __builtin_fmaf(a, b, c); }

// c[0] t^(N-1) + ... + c[N-1] by Horner's rule, highest coefficient first (fits written by
// tools/fit-*.py), a fused multiply-add per step.
template <int N>
inline float horner(float t, const float (&c)[N]) {
  float p = c[0];
#pragma GCC unroll 16
  for (int i = 1; i < N; ++i) p = fma1(p, t, c[i]);
  return p;
}

// exp_in_range's polynomial (Cephes' expf), shared by the scalar and the lane form.
constexpr float kExpPoly[] = {1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f, 4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f};

// e^x for x in [-87, 88] (Cephes' expf: Cody-Waite reduction, degree-5 polynomial, within
// 1 ulp), written without branches so that its lane form (Lanes::exp_in_range) has the same
// operations.
inline float exp_in_range(float x) {
  const float magic = 12582912.0f;  // 1.5 * 2^23: (v + magic) - magic rounds v to an integer
  const float n = fma1(x, 1.44269504088896341f, magic) - magic;
  const float r = fma1(n, 2.12194440e-4f, fma1(n, -0.693359375f, x));  // x - n ln 2, in two parts
  const float p = horner(r, kExpPoly);
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;  // 2^n, n in [-126, 127]
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  // For |r| < 2^-40, p r^2 is below half an ulp of r and changes nothing, but r * r would be
  // subnormal, which x86 handles in microcode (tens of cycles a value): a network with tiny
  // activations (random weights) ran its Sigmoids six times slower. So r^2 uses 0 there.
  // (Integer operations on the bits: a float compare and select is not if-converted, so the
  // loop would not vectorize.)
  int32_t rbits;
  std::memcpy(&rbits, &r, sizeof rbits);
  rbits &= -static_cast<int32_t>((rbits & 0x7fffffff) >= 0x2B800000);  // 0x2B800000: 2^-40
  float rs;
  std::memcpy(&rs, &rbits, sizeof rs);
  return (fma1(p, rs * rs, r) + 1.0f) * scale;
}

// The same arithmetic on a vector of lanes at a time, in GCC vectors of the width the calling
// function's target has (Lanes<F16> in an avx512f function, Lanes<F8> in an avx2 one, Lanes<F4>
// in the baseline; a wider GCC vector than the target's registers is lowered through memory,
// slower than scalar code). Every lane performs exactly the scalar function's IEEE operations in
// its order, so results are bit-identical to it, whatever the width. Functions using them are
// compiled once per width and picked by the CPU (TERNION_LANE_WIDTHS below).
typedef float F16 __attribute__((vector_size(64)));
typedef float F8 __attribute__((vector_size(32)));
typedef float F4 __attribute__((vector_size(16)));
// Always inlined, so each width's function compiles them for its own target.
#define TERNION_LANES inline __attribute__((always_inline))

template <typename V>
struct Lanes {
  static constexpr int N = sizeof(V) / sizeof(float);
  typedef int32_t I __attribute__((vector_size(sizeof(V))));
  static TERNION_LANES V load(const float* p) {
    V v;
    std::memcpy(&v, p, sizeof v);
    return v;
  }
  static TERNION_LANES void store(float* p, V v) { std::memcpy(p, &v, sizeof v); }
  static TERNION_LANES V splat(float v) { return V{} + v; }
  static TERNION_LANES I bits(V v) { return (I)v; }  // a cast between vectors of one size keeps the bits
  static TERNION_LANES V floats(I v) { return (V)v; }
  // fma1() lane by lane (one vfmadd where the target has FMA).
  static TERNION_LANES V fma(V a, V b, V c) {
    V r;
#pragma GCC unroll 16
    for (int i = 0; i < N; ++i) r[i] = __builtin_fmaf(a[i], b[i], c[i]);
    return r;
  }
  // horner() lane by lane.
  template <int K>
  static TERNION_LANES V horner(V t, const float (&c)[K]) {
    V p = splat(c[0]);
#pragma GCC unroll 16
    for (int i = 1; i < K; ++i) p = fma(p, t, splat(c[i]));
    return p;
  }

  // exp_in_range lane by lane.
  static TERNION_LANES V exp_in_range(V x) {
    const V magic = splat(12582912.0f);
    const V n = fma(x, splat(1.44269504088896341f), magic) - magic;
    const V r = fma(n, splat(2.12194440e-4f), fma(n, splat(-0.693359375f), x));
    const V p = horner(r, kExpPoly);
    const V scale = floats((__builtin_convertvector(n, I) + 127) << 23);
    I rbits = bits(r);
    rbits &= (rbits & 0x7fffffff) >= 0x2B800000;  // r^2 as 0 below 2^-40 (see exp_in_range)
    const V rs = floats(rbits);
    return (fma(p, rs * rs, r) + 1.0f) * scale;
  }
};

// std::min / std::max lane by lane: the same operand order, so NaN comes out as they give it.
template <typename V>
TERNION_LANES V min_lanes(V a, V b) {
  return b < a ? b : a;
}
template <typename V>
TERNION_LANES V max_lanes(V a, V b) {
  return a < b ? b : a;
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
// Floats per vector for this process: the CPU's widest (16 with AVX-512, 8 with AVX2 and FMA, else 4),
// or narrower when TERNION_ISA names a narrower kernel set (avx2 / avxvnni: 8; scalar: 4), so
// that one machine can run, and test, every width.
inline int lane_width() {
  static const int width = [] {
    const char* isa = std::getenv("TERNION_ISA");
    const std::string asked = isa ? isa : "";
    if (__builtin_cpu_supports("avx512f") && (asked.empty() || asked == "avx512vnni")) return 16;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && asked != "scalar") return 8;
    return 4;
  }();
  return width;
}

// Defines NAME_avx512 / NAME_avx2 / NAME_base, each NAME_lanes (a template on the lane vector
// type) at its width, and NAME, which runs the one lane_width() picks.
#define TERNION_LANE_WIDTHS(ret, name, params, args)                                                     \
  __attribute__((target("avx512f,fma"))) ret name##_avx512 params { return name##_lanes<F16> args; }         \
  __attribute__((target("avx2,fma"))) ret name##_avx2 params { return name##_lanes<F8> args; }               \
  ret name##_base params { return name##_lanes<F4> args; }                                               \
  ret name params {                                                                                     \
    static const auto pick = lane_width() == 16 ? name##_avx512 : lane_width() == 8 ? name##_avx2 : name##_base; \
    return pick args;                                                                                   \
  }
#else
#define TERNION_LANE_WIDTHS(ret, name, params, args) \
  ret name params { return name##_lanes<F4> args; }
#endif

// For odd functions computed on |x| in two ranges (erf, tanh): `small` where |x| (given as a
// non-negative float, or NaN) is at most the float whose bits are `bound_bits`, else `large`,
// with the sign bit of x. Bit operations throughout, as in its lane form
// (select_by_magnitude_lanes).
inline float select_by_magnitude(float magnitude, int32_t bound_bits, float small, float large, float x) {
  int32_t m_bits, small_bits, large_bits, x_bits;
  std::memcpy(&m_bits, &magnitude, 4);
  std::memcpy(&small_bits, &small, 4);
  std::memcpy(&large_bits, &large, 4);
  std::memcpy(&x_bits, &x, 4);
  const int32_t use_small = -static_cast<int32_t>(m_bits <= bound_bits);  // NaN: no
  const int32_t bits = ((small_bits & use_small) | (large_bits & ~use_small)) | (x_bits & static_cast<int32_t>(0x80000000u));
  float r;
  std::memcpy(&r, &bits, 4);
  return r;
}

// 1 / (1 + e^-v), -v clamped to [-87, 88] (e^-v stays finite; results change only below
// 1e-38): the Sigmoid op's value, and the gate of the fused SiLU (activations.cc).
inline float sigmoid_of(float v) {
  const float c = std::min(std::max(-v, -87.0f), 88.0f);  // this order keeps NaN
  return 1.0f / (1.0f + exp_in_range(c));
}
template <typename V>
TERNION_LANES V sigmoid_lanes(V v) {
  typedef Lanes<V> L;
  const V c = min_lanes(max_lanes(-v, L::splat(-87.0f)), L::splat(88.0f));
  return 1.0f / (1.0f + L::exp_in_range(c));
}

// The Sigmoid and Tanh ops' arithmetic over n floats in place, at the lane width the CPU has
// (defined in activations.cc): the recurrent ops' gates (recurrent.cc) give the ops' bits.
void sigmoid_in_place(float* p, int64_t n);
void tanh_in_place(float* p, int64_t n);

// select_by_magnitude lane by lane.
template <typename V>
TERNION_LANES V select_by_magnitude_lanes(V magnitude, int32_t bound_bits, V small, V large, V x) {
  typedef Lanes<V> L;
  const typename L::I use_small = L::bits(magnitude) <= bound_bits;  // NaN: no
  return L::floats(((L::bits(small) & use_small) | (L::bits(large) & ~use_small)) | (L::bits(x) & static_cast<int32_t>(0x80000000u)));
}

// |x| lane by lane (std::fabs: the sign bit cleared).
template <typename V>
TERNION_LANES V abs_lanes(V x) {
  return Lanes<V>::floats(Lanes<V>::bits(x) & 0x7fffffff);
}

// y[i] = F::one(x[i]) for n values: F::lanes on whole vectors, F::one on the tail (the same bits).
template <typename V, typename F>
TERNION_LANES void map_lanes(const float* x, float* y, int64_t n, const F& f) {
  typedef Lanes<V> L;
  int64_t i = 0;
  for (; i + L::N <= n; i += L::N) L::store(y + i, f.template lanes<V>(L::load(x + i)));
  for (; i < n; ++i) y[i] = f.one(x[i]);
}

// NAME(x, y, n): map_lanes of the function object F at the lane width lane_width() picks.
#define TERNION_MAP_SPAN(name, F)                                        \
  template <typename V>                                                  \
  TERNION_LANES void name##_lanes(const float* x, float* y, int64_t n) { \
    map_lanes<V>(x, y, n, F{});                                          \
  }                                                                      \
  TERNION_LANE_WIDTHS(void, name, (const float* x, float* y, int64_t n), (x, y, n))

// The sum of n contiguous floats in double: eight partial sums, each in order, combined in a
// fixed order, so the result does not depend on the vector width a caller's clone was compiled
// for (Softmax rows, last-axis ReduceSum / ReduceMean).
// sum_of_in_double(x, n, f) sums the floats f(x[i]) in that order (LayerNorm's squares), the bits
// sum_in_double gives on an array of them.
template <typename F>
inline double sum_of_in_double(const float* x, int64_t n, F f) {
  double part[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) part[j] += static_cast<double>(f(x[i + j]));
  for (int j = 0; i < n; ++i, ++j) part[j & 7] += static_cast<double>(f(x[i]));
  return ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
}

inline double sum_in_double(const float* x, int64_t n) {
  return sum_of_in_double(x, n, [](float v) { return v; });
}

// The statistics a LayerNorm row starts with, as the ops write them in float32 (ReduceMean, Sub,
// the square, ReduceMean; both means summed in double): y = x - mean, and the mean of y * y,
// returned with the mean. Inlined into the callers' wide clones (layer-norm-chain.cc,
// normalization.cc).
TERNION_LANES float centre_row(const float* x, float* y, int64_t D, float& var) {
  const float mean = static_cast<float>(sum_in_double(x, D) / static_cast<double>(D));
  for (int64_t j = 0; j < D; ++j) y[j] = x[j] - mean;
  var = static_cast<float>(sum_of_in_double(y, D, [](float d) { return d * d; }) / static_cast<double>(D));
  return mean;
}

}  // namespace exec
}  // namespace ternion
