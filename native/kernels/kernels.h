// The kernel table: the one contract between the compute kernels and everything above them.
//
// Every instruction set (scalar/, avx2/, avx512/, avxvnni/, neon/) fills one KernelTable. The
// scalar table is both the portable fallback and the reference that every SIMD table must match:
// integer results bit for bit, fp32 results of the integer kernels bit for bit (the reference
// fixes the order of every fp32 operation below), fp32 GEMM within a stated tolerance.
//
// Nothing here knows about Node, graphs or threads: kernels compute a column range [n0, n1) of
// one GEMM on raw pointers, and the caller (exec/gemm.cc) splits work across threads.
//
// Packing: each table owns the layout of its packed weights (panel width, interleave, 2-bit code
// order). A packed buffer is only valid for the table that packed it. Packed buffers must be
// 64-byte aligned; their size comes from the table's *_packed_size function.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ternion {
namespace kernels {

// Largest K the integer kernels accept: K * 255 * 128 must fit in int32 with room to spare.
constexpr int kMaxIntegerK = 65536;

// Whether the integer sum of one low-bit group (codes times uint8 activations over G values of
// k) always fits int16: |S| <= 255 * G for ternary codes, 255 * 7 * G for 4-bit ones. Kernels may
// then apply a folded group's multiplier with 16-bit multiply-adds (vpdpwssd).
inline bool lowbit_group_sum_fits_int16(int bits, int G) {
  return static_cast<long long>(G) * (bits == 2 ? 255 : 255 * 7) <= 32767;
}

enum class OutType : int32_t {
  F32 = 0,  // float
  U8 = 1,   // uint8, requantized
  S8 = 2,   // int8, requantized
  I32 = 3,  // raw int32 accumulator (integer GEMMs in folded form only; no epilogue)
};

// Fused epilogue of the integer GEMMs, applied per output channel n to the value `acc` the
// kernel produced (the int32 accumulator converted to float, or the group-scaled fp32 sum):
//
//   v = fmaf(acc, scale[n], bias[n])          // scale == nullptr means 1, bias == nullptr means 0
//   if (residual) v = v + (float)((int32)residual[m * ldc + n] - residual_zero_point) * residual_scale
//   if (relu) v = fmaxf(v, 0)
//   F32:    out = v
//   U8/S8:  v = std::min(std::max(v, post_lo), post_hi)   (a Clip activation; NaN stays NaN)
//           if (divisor > 0):                              (the next layer's input quantization)
//             v = fmaf(v, 1.0f / divisor, zero_point)      (the reciprocal rounded to float once)
//             v = fminf(fmaxf(v, qmin), qmax)              (as float; NaN -> qmin)
//             out = (int32)rint(v)                         (round half to even)
//           else:
//             v = fminf(fmaxf(v, qmin - zero_point), qmax - zero_point)   (as float)
//             out = (int32)rint(v) + zero_point
//   I32:    out = the int32 accumulator itself (scale, bias, relu ignored)
// For U8 / S8, [qmin, qmax] lies within the output type (0..255 / -128..127; the ops always
// pass such ranges): SIMD tables may store the bytes with saturating packs.
// post_lo / post_hi / divisor are honoured only by tables with `post_quant` set (the defaults
// are no-ops); with them a layer stores the next layer's uint8 input straight from its GEMM,
// bit for bit what quantize_u8 gives on the fp32 output after the Clip. (Quantization multiplies
// by the reciprocal, as onnxruntime's requantization does, rather than dividing: one fma per value
// whose result SIMD code reproduces exactly, where an exact division cost a SIMD epilogue a
// rounding test per vector and a fifth of MobileNetV2's time.)
// residual (uint8 codes laid out like C: output (m, n) of the call reads residual[m * ldc + n])
// is honoured only by tables with `post_residual` set, only with U8 / S8 outputs of the GEMMs
// (q8_gemm, lowbit_gemm and their _segs forms; never dw_q8): a residual Add whose other input is
// the previous layer's quantized output, fused into the store of the next layer's input.
struct Requant {
  const float* scale = nullptr;
  const float* bias = nullptr;
  OutType out = OutType::F32;
  bool relu = false;
  int32_t zero_point = 0;
  int32_t qmin = 0;
  int32_t qmax = 255;
  float post_lo = -__builtin_inff();
  float post_hi = __builtin_inff();
  float divisor = 0.0f;
  const uint8_t* residual = nullptr;
  float residual_scale = 1.0f;
  int32_t residual_zero_point = 0;
};

// Low-bit (ternary or 4-bit) weights of one layer before packing, grouped along K.
//
// q[n][k] holds the integer code: ternary t in {-1, 0, +1} (bits == 2) or q in [-7, 7]
// (bits == 4). Groups are G consecutive k of one row; K must be a multiple of G (the caller pads
// short groups with zero codes). G == K is one group per row ("filter").
//
// Two execution forms (shared/fgq.md section 5):
//  - GroupScaled: one fp32 scale per group. For row m, column n, with x = a[m][k] - a_zero:
//        sum = 0.0f
//        for g in 0 .. K/G-1, in order:
//          symmetric:  acc = sum_{k in g} q[n][k] * x               (int32, exact)
//                      sum = fmaf(scale_pos[n][g], (float)acc, sum)
//          asymmetric: P = sum_{k in g, q = +1} x,  M = sum_{k in g, q = -1} x  (int32)
//                      sum = fmaf(scale_pos[n][g], (float)P, sum)
//                      sum = fmaf(-scale_neg[n][g], (float)M, sum)
//        then the Requant epilogue with acc = sum (OutType::I32 is not allowed).
//  - Folded: each group's scale was quantized to an integer multiplier of a per-channel scale,
//        so w[n][k] = q[n][k] * mult_pos[n][g]  (asymmetric ternary: q = -1 uses -mult_neg[n][g])
//    is an int8 weight, acc = sum_k w[n][k] * x (int32, exact), then the Requant epilogue with
//    acc converted to float. Multipliers are in [1, 127] for ternary and [1, 18] for 4-bit,
//    so every expanded weight fits int8.
enum class LowbitForm : int32_t { GroupScaled = 0, Folded = 1 };

struct LowbitWeights {
  int32_t bits = 2;       // 2 = ternary, 4 = int4
  int32_t N = 0;          // output channels (rows)
  int32_t K = 0;          // inputs per row, a multiple of G
  int32_t G = 0;          // group size
  LowbitForm form = LowbitForm::GroupScaled;
  bool asym = false;                  // ternary only (must be false when bits == 4): separate +1 / -1 scales
  const int8_t* q = nullptr;          // [N][K]
  const float* scale_pos = nullptr;   // GroupScaled: [N][K/G]
  const float* scale_neg = nullptr;   // GroupScaled asym: [N][K/G], positive numbers
  const int8_t* mult_pos = nullptr;   // Folded: [N][K/G]
  const int8_t* mult_neg = nullptr;   // Folded asym: [N][K/G]
};

// Shapes: A is [M][K] row-major with row stride lda (elements); C is [M][N] with row stride ldc
// (elements of the output type); W is [N][K] (output-channel major, like ONNX Conv / Gemm with
// transB). Every gemm computes C[m][n] for all m in [0, M) and n in [n0, n1), where n0 is a
// multiple of the table's panel width for that kind (f32_nr, q8_nr, lowbit_nr) and n1 is either
// a multiple of it or N. Kernels may read A only within [M][K] and write C only within the range.
struct KernelTable {
  const char* name;  // "scalar", "avx2", "avx512vnni", "avxvnni", "neon"

  // fp32: C = A * W^T + bias, then, when `clamp` is not null, v = v < clamp[0] ? clamp[0] : v;
  // v = clamp[1] < v ? clamp[1] : v (ReLU is {0, +inf}, ReLU6 {0, 6}). Sums: tolerance vs
  // scalar (see tests); the clamp: exactly that formula, NaN and -0 included.
  int f32_nr;
  size_t (*f32_packed_size)(int N, int K);
  void (*f32_pack)(const float* W, int N, int K, void* packed);
  void (*f32_gemm)(int M, int N, int K, const float* A, size_t lda, const void* packed,
                   const float* bias, const float* clamp, float* C, size_t ldc, int n0, int n1);
  // The same packed buffer as f32_pack of B's transpose, from B given K-major: B[k * ldb + n]
  // for k < K, n < N (ldb >= N). A MatMul's right operand computed at run time (an attention
  // head's keys or values) is laid out so: packed without transposing it first.
  void (*f32_pack_kn)(const float* B, int K, int N, size_t ldb, void* packed);

  // int8: acc = sum_k (a[m][k] - a_zero) * w[n][k], a uint8, w int8, then Requant.
  int q8_nr;
  size_t (*q8_packed_size)(int N, int K);
  void (*q8_pack)(const int8_t* W, int N, int K, void* packed);
  void (*q8_gemm)(int M, int N, int K, const uint8_t* A, size_t lda, uint8_t a_zero,
                  const void* packed, const Requant* rq, void* C, size_t ldc, int n0, int n1);

  // Low-bit (ternary / 4-bit), both forms, semantics above. The packed buffer records
  // bits, N, K, G, form and asym; lowbit_gemm reads them from it.
  int lowbit_nr;
  size_t (*lowbit_packed_size)(const LowbitWeights* w);
  void (*lowbit_pack)(const LowbitWeights* w, void* packed);
  void (*lowbit_gemm)(int M, int N, int K, const uint8_t* A, size_t lda, uint8_t a_zero,
                      const void* packed, const Requant* rq, void* C, size_t ldc, int n0,
                      int n1);

  // Depthwise int8 convolution (one conv group per channel, no channel multiplier) over an
  // indirection buffer: for output pixel p in [0, P) and channel c in [0, C),
  //   acc = sum_{t < taps} (in[p * taps + t][c] - a_zero) * w[c][t]      (int32, exact)
  // then the Requant epilogue of channel c, stored at out[p * ldo + c] (elements of the output
  // type). Each in[] entry points at C readable uint8 values (a pixel of a pixel-major image;
  // taps in the padding point at a row of a_zero). W is [C][taps] int8, the ONNX layout;
  // 1 <= taps <= kMaxIntegerK. Kernels read in[] only within C values per entry.
  size_t (*dw_packed_size)(int C, int taps);
  void (*dw_pack)(const int8_t* W, int C, int taps, void* packed);
  void (*dw_q8)(int P, int C, int taps, const uint8_t* const* in, uint8_t a_zero,
                const void* packed, const Requant* rq, void* out, size_t ldo);

  // Depthwise fp32 convolution over an indirection buffer: for output pixel p
  // in [0, P) and channel c in [0, C),
  //   v = bias ? bias[c] : 0;  for t in [0, taps): v = v + in[p * taps + t][c] * w[t * C + c]
  //   v = v < lo ? lo : v;  v = hi < v ? hi : v;  out[p * ldo + c] = v
  // where taps outside the input are null entries and skip their term. Each product is
  // rounded, then added (no fused multiply-add), and padding is skipped rather than read as
  // zeros (0 * an infinite weight is NaN; -0 + 0 is +0): the planar depthwise loop's
  // arithmetic, so both layouts give the same bits. W is [taps][C] (taps-major: a pixel's
  // channels are contiguous); lo = -inf, hi = +inf for no clamp (Relu is lo = 0). Kernels read
  // non-null in[] entries only within C values. With P = 1, bias may be out itself (a call
  // continuing an earlier call's sums): each channel's bias is read before its output is stored.
  void (*dw_f32)(int P, int C, int taps, const float* const* in, const float* w, const float* bias,
                 float lo, float hi, float* out, size_t ldo);

  // Activation quantization, for i in [0, n):
  //   v = fmaf(x[i], 1.0f / scale, zp)         (the reciprocal rounded to float once, as Requant)
  //   v = v > 0 ? v : 0;  v = v < qmax ? v : qmax                     (NaN goes to 0)
  //   y[i] = (uint8_t)round_half_even(v)
  // scale > 0 and finite, 0 <= zp <= qmax <= 255.
  void (*quantize_u8)(const float* x, uint8_t* y, size_t n, float scale, int32_t zp, int32_t qmax);

  // fp32 transpose (a copy: every bit, NaN payloads included): dst[c * ld_dst + r] =
  // src[r * ld_src + c] for r in [0, rows), c in [0, cols). Planar <-> pixel-major conversions
  // at the edges of a channels-last chain (channel planes to im2col rows, GEMM rows to NCHW
  // planes); nothing else in dst is written. src and dst do not overlap.
  void (*transpose_f32)(const float* src, int rows, int cols, size_t ld_src, float* dst, size_t ld_dst);

  // True when the integer kernels (q8_gemm, lowbit_gemm, dw_q8) honour Requant's post_lo,
  // post_hi and divisor; callers quantize the fp32 output themselves otherwise.
  bool post_quant = false;
  // True when the GEMMs' byte outputs honour Requant's residual; callers add it themselves otherwise.
  bool post_residual = false;

  // int8 GEMM with A given by row segments, an implicit im2col: row m of A is the concatenation
  // of S runs of L bytes, run s starting at segs[m * S + s] (a convolution window's kernel rows,
  // read in place from a pixel-major image); K = S * L, L % 4 == 0. Otherwise exactly q8_gemm
  // (the same packed weights, Requant and column range). Optional: null where a table has none,
  // and callers then gather the rows (im2col) for q8_gemm.
  void (*q8_gemm_segs)(int M, int N, int S, int L, const uint8_t* const* segs, uint8_t a_zero,
                       const void* packed, const Requant* rq, void* C, size_t ldc, int n0, int n1) = nullptr;
  // The same for low-bit weights: exactly lowbit_gemm on the gathered rows. Optional likewise.
  void (*lowbit_gemm_segs)(int M, int N, int S, int L, const uint8_t* const* segs, uint8_t a_zero,
                           const void* packed, const Requant* rq, void* C, size_t ldc, int n0, int n1) = nullptr;
  // The fp32 GEMM with A given by row segments likewise (row m of A: S runs of L floats, run s
  // at segs[m * S + s]; K = S * L): exactly f32_gemm on the gathered rows, the same bits.
  // Optional likewise (callers run im2col and f32_gemm where it is null).
  void (*f32_gemm_segs)(int M, int N, int S, int L, const float* const* segs, const void* packed, const float* bias,
                        const float* clamp, float* C, size_t ldc, int n0, int n1) = nullptr;
};

// The ten entry points every instruction set implements, declared once: expand this inside an
// ISA's own namespace (ternion::kernels::<isa>) and fill its KernelTable with them.
#define TERNION_DECLARE_KERNEL_ENTRIES()                                                          \
  size_t f32_packed_size(int N, int K);                                                           \
  void f32_pack(const float* W, int N, int K, void* packed);                                      \
  void f32_pack_kn(const float* B, int K, int N, size_t ldb, void* packed);                      \
  void f32_gemm(int M, int N, int K, const float* A, size_t lda, const void* packed,              \
                const float* bias, const float* clamp, float* C, size_t ldc, int n0, int n1);     \
  size_t q8_packed_size(int N, int K);                                                            \
  void q8_pack(const int8_t* W, int N, int K, void* packed);                                      \
  void q8_gemm(int M, int N, int K, const uint8_t* A, size_t lda, uint8_t a_zero,                 \
               const void* packed, const Requant* rq, void* C, size_t ldc, int n0, int n1);       \
  size_t lowbit_packed_size(const LowbitWeights* w);                                              \
  void lowbit_pack(const LowbitWeights* w, void* packed);                                         \
  void lowbit_gemm(int M, int N, int K, const uint8_t* A, size_t lda, uint8_t a_zero,             \
                   const void* packed, const Requant* rq, void* C, size_t ldc, int n0, int n1);

// The depthwise, quantize and transpose entries: scalar, AVX2 and NEON implement them (the
// wider x86 tables reuse AVX2's where they have no own).
#define TERNION_DECLARE_DW_ENTRIES()                                                              \
  size_t dw_packed_size(int C, int taps);                                                         \
  void dw_pack(const int8_t* W, int C, int taps, void* packed);                                   \
  void dw_q8(int P, int C, int taps, const uint8_t* const* in, uint8_t a_zero,                    \
             const void* packed, const Requant* rq, void* out, size_t ldo);                       \
  void dw_f32(int P, int C, int taps, const float* const* in, const float* w, const float* bias,  \
              float lo, float hi, float* out, size_t ldo);                                        \
  void quantize_u8(const float* x, uint8_t* y, size_t n, float scale, int32_t zp, int32_t qmax);  \
  void transpose_f32(const float* src, int rows, int cols, size_t ld_src, float* dst, size_t ld_dst);

// Each instruction set's table; nullptr where it was not compiled in (other architecture).
const KernelTable* scalar_table();
const KernelTable* avx2_table();
const KernelTable* avx512vnni_table();
const KernelTable* avxvnni_table();
const KernelTable* neon_table();

}  // namespace kernels
}  // namespace ternion
