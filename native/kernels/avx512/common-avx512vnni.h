// Helpers shared by the AVX-512 VNNI kernels (this folder only: compiled with its flags).
// Everything lives in namespace avx512vnni so inline functions never merge with the same-named
// helpers of another instruction set's folder (one definition rule across different -m flags).
#pragma once

// GCC 12 warns inside its own AVX-512 headers (the `__Y = __Y` of _mm512_undefined_*, GCC PR
// 105593) wherever those intrinsics are inlined; silence that false positive for this folder.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <algorithm>
#include <cstring>

#include "../kernels.h"
#include "../requant-folded.h"

namespace ternion {
namespace kernels {
namespace avx512vnni {

// Panel width of all three kinds: two zmm of 16 lanes, one lane per output channel.
constexpr int kNR = 32;
constexpr uint32_t kMagicF32 = 0x33504654;     // "TFP3"
constexpr uint32_t kMagicQ8 = 0x38515654;      // "TVQ8"
constexpr uint32_t kMagicLowbit = 0x424C5654;  // "TVLB"

inline size_t round_up(size_t x, size_t a) { return (x + a - 1) / a * a; }
inline int num_panels(int N) { return (N + kNR - 1) / kNR; }

// Lanes [0, valid) of a 16-lane vector; valid may be <= 0 or >= 16.
inline __mmask16 lane_mask(int valid) {
  if (valid >= 16) return static_cast<__mmask16>(0xFFFF);
  if (valid <= 0) return 0;
  return static_cast<__mmask16>((1u << valid) - 1u);
}

// Calls f(m, rows) for row blocks of at most `mr` rows covering [0, M), as even as possible:
// ceil(M / mr) blocks whose sizes differ by at most one. 49 rows (a 7x7 image) in blocks of 8
// become 7 x 7 instead of 6 x 8 + 1, whose lone row costs a whole pass over the panel at GEMV
// speed. (Rows are independent, so any blocking gives the same bits.)
template <typename F>
inline void even_row_blocks(int M, int mr, F&& f) {
  if (M <= 0) return;
  const int nb = (M + mr - 1) / mr, big = (M + nb - 1) / nb, nbig = M - (big - 1) * nb;
  for (int b = 0, m = 0; b < nb; ++b) {
    const int rows = b < nbig ? big : big - 1;
    f(m, rows);
    m += rows;
  }
}

// Four consecutive A bytes broadcast to every 32-bit lane (the u8 operand of vpdpbusd).
inline __m512i bcast_quad(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}
// Same for the last 1..3 bytes of a row or group: never reads past them, the rest is zero. A
// masked load, not a memcpy into a local: GCC builds that with byte stores to the stack, and the
// 4-byte reload after them missed store forwarding, a stall per row that cost the ResNet stem
// (K = 147) half its speed.
inline __m512i bcast_partial(const uint8_t* p, int nbytes) {
  const __m128i v = _mm_maskz_loadu_epi8(static_cast<__mmask16>((1u << nbytes) - 1u), p);
  return _mm512_broadcastd_epi32(v);
}

// u8 (a) x s8 (w) dot products of 4 bytes accumulated into int32 lanes, no saturation.
// GCC 12 compiles the intrinsic with a copy of the accumulator before and after each vpdpbusd
// (register pressure, spills in the 8x32 loop); the asm ties input and output to one register.
// TERNION_DPBUSD_INTRINSIC (set by a scalar emulation header in tests) keeps the intrinsic.
inline __m512i dpbusd(__m512i acc, __m512i a_u8, __m512i w_s8) {
#if defined(TERNION_DPBUSD_INTRINSIC)
  return _mm512_dpbusd_epi32(acc, a_u8, w_s8);
#else
  __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(a_u8), "v"(w_s8));
  return acc;
#endif
}

// The epilogue's member functions are always inlined: called out of line they take and return
// their vectors through memory (GCC stopped inlining store_run<2> once it grew, and it cost a
// fifth of MobileNetV2's time).
#define TERNION_EPILOGUE_INLINE inline __attribute__((always_inline))

// The Requant epilogue of kernels.h, its constants converted and broadcast once per kernel call
// (rebuilding them for every 16 outputs cost more than the multiply-adds of a small-K layer).
// Lanes outside `mk` are neither read (scale, bias) nor written. `accf` is the fp32 value, `acci`
// the int32 accumulator (OutType::I32 only).
// Order of operations as the scalar reference: fma, max 0, the post-activation Clip (std::max(v,
// lo) is (v < lo ? lo : v), i.e. vmaxps(lo, v), which returns its second operand when unordered
// or equal; std::min(v, hi) is vminps(hi, v)), the fma with the reciprocal and the zero point,
// max qmin, min qmax, round half to even (cvtps2dq under the default MXCSR).
class Epilogue {
 public:
  explicit Epilogue(const Requant& rq)
      : scale_(rq.scale ? rq.scale : kOnes), bias_(rq.bias ? rq.bias : kZeros),
        scale_step_(rq.scale ? ~0 : 0), bias_step_(rq.bias ? ~0 : 0), out_(rq.out), relu_(rq.relu), div_(rq.divisor > 0.0f),
        plo_(_mm512_set1_ps(rq.post_lo)), phi_(_mm512_set1_ps(rq.post_hi)),
        res_(rq.residual && (rq.out == OutType::U8 || rq.out == OutType::S8) ? rq.residual : nullptr),
        rs_(_mm512_set1_ps(rq.residual_scale)), rz_(_mm512_set1_epi32(rq.residual_zero_point)) {
    // With a divisor the zero point is added by the fma and the clamp is to [qmin, qmax]; without
    // one, the clamp is to [qmin - zp, qmax - zp] and the zero point is added to the integers.
    const float r = div_ ? 1.0f / rq.divisor : 1.0f;
    rd_ = _mm512_set1_ps(r);
    zpf_ = _mm512_set1_ps(static_cast<float>(rq.zero_point));
    const int32_t shift = div_ ? 0 : rq.zero_point;
    qlo_ = _mm512_set1_ps(static_cast<float>(rq.qmin - shift));
    qhi_ = _mm512_set1_ps(static_cast<float>(rq.qmax - shift));
    zp_ = _mm512_set1_epi32(shift);
    const FoldedQuant f = folded_quant(rq);  // requant-folded.h
    folded_ = f.ok;
    zlo_ = _mm512_set1_ps(f.lo);
    zhi_ = _mm512_set1_ps(f.hi);
  }

  // Integer outputs (U8, S8) are written as bytes; the others one value per lane.
  bool byte_out() const { return out_ == OutType::U8 || out_ == OutType::S8; }
  bool unsigned_out() const { return out_ == OutType::U8; }

  // Byte outputs (U8, S8) of V vectors whose lanes are not consecutive channels: the quantized
  // int32 values with their zero point, scale and bias given in the vectors' lane order (16 V
  // values each; the depthwise kernel's permuted copies).
  // (No residual: the depthwise kernel never gets one.)
  template <int V>
  TERNION_EPILOGUE_INLINE void quantize_lanes(const __m512* accf, const float* scale, const float* bias, __m512i* q) const {
    quantized<V>(accf, [&](int h) { return _mm512_loadu_ps(scale + 16 * h); }, [&](int h) { return _mm512_loadu_ps(bias + 16 * h); },
                 [&](int) { return _mm512_setzero_ps(); }, static_cast<__mmask16>(0xFFFF), q);
  }

  // One vector of 16 channels [n, n+16) of row m.
  TERNION_EPILOGUE_INLINE void store(__m512 accf, __m512i acci, int n, __mmask16 mk, void* C, size_t ldc, int m) const {
    const size_t off = static_cast<size_t>(m) * ldc + static_cast<size_t>(n);
    if (out_ == OutType::I32) {
      _mm512_mask_storeu_epi32(static_cast<int32_t*>(C) + off, mk, acci);
      return;
    }
    if (out_ == OutType::F32) {
      __m512 v = _mm512_fmadd_ps(accf, scale(n, mk), bias(n, mk));
      // vmaxps(v, 0) = v > 0 ? v : 0, the same as fmaxf(v, 0) including NaN -> 0.
      if (relu_) v = _mm512_max_ps(v, _mm512_setzero_ps());
      _mm512_mask_storeu_ps(static_cast<float*>(C) + off, mk, v);
      return;
    }
    const __m512 a[1] = {accf};
    __m512i qv[1];
    quantized<1>(a, [&](int) { return scale(n, mk); }, [&](int) { return bias(n, mk); }, [&](int) { return residual(off, mk); }, mk, qv);
    // Values are already within [qmin, qmax], so the truncating vpmovdb is exact.
    const __m512i q = qv[0];
    if (out_ == OutType::U8)
      _mm512_mask_cvtepi32_storeu_epi8(static_cast<uint8_t*>(C) + off, mk, q);
    else
      _mm512_mask_cvtepi32_storeu_epi8(static_cast<int8_t*>(C) + off, mk, q);
  }

  // A block of MR rows x 32 channels [n, n + 32) from row m (lanes past nvalid untouched), given
  // as fp32 values and, for OutType::I32, the int32 accumulators. Works on a local copy: through
  // the caller's reference every byte store through C could alias the members, and GCC reloaded
  // them all (and re-tested every flag) after each store.
  // NH = 1: only the first 16 channels are given (nvalid <= 16).
  template <int MR, int NH = 2>
  TERNION_EPILOGUE_INLINE void store_tile(const __m512 (&f)[MR][2], const __m512i (&v)[MR][2], int n, int nvalid, void* C, size_t ldc, int m) const {
    const Epilogue e = *this;
    if (NH == 2 && e.byte_out() && nvalid >= 32) {
#pragma GCC unroll 16
      for (int r = 0; r + 1 < MR; r += 2) e.store_row_pair(f[r], f[r + 1], n, C, ldc, m + r);
      if (MR % 2) e.store_run<2>(f[MR - 1], v[MR - 1], n, nvalid, C, ldc, m + MR - 1);
      return;
    }
    const __mmask16 mk[2] = {lane_mask(nvalid), lane_mask(nvalid - 16)};
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r)
      for (int h = 0; h < NH; ++h) e.store(f[r][h], v[r][h], n + 16 * h, mk[h], C, ldc, m + r);
  }

  // Byte outputs of channels [n, n + 32) of rows m and m + 1, all valid: one rounding test and
  // one pack for both rows (the 64 bytes come out of the permutation as row m's 32 channels, then
  // row m + 1's).
  TERNION_EPILOGUE_INLINE void store_row_pair(const __m512 (&f0)[2], const __m512 (&f1)[2], int n, void* C, size_t ldc, int m) const {
    const __mmask16 all = static_cast<__mmask16>(0xFFFF);
    const __m512 accf[4] = {f0[0], f0[1], f1[0], f1[1]};
    const __m512 s[2] = {scale(n, all), scale(n + 16, all)}, b[2] = {bias(n, all), bias(n + 16, all)};
    __m512i q[4];
    const size_t off = static_cast<size_t>(m) * ldc + static_cast<size_t>(n);
    quantized<4>(accf, [&](int h) { return s[h % 2]; }, [&](int h) { return b[h % 2]; },
                 [&](int h) { return residual(off + (h / 2) * ldc + 16 * (h % 2), all); }, all, q);
    const __m512i r = pack_bytes(q);
    uint8_t* dst = static_cast<uint8_t*>(C) + off;
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), _mm512_castsi512_si256(r));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + ldc), _mm512_extracti64x4_epi64(r, 1));
  }

  // V (2 or 4) vectors of channels [n, n + 16V) of row m: with byte outputs and all lanes valid
  // they are packed and written with one store (vpmovdb to memory costs about four times a
  // pack on Zen 5, and was as slow as the multiply-adds of a small-K layer).
  template <int V>
  TERNION_EPILOGUE_INLINE void store_run(const __m512* accf, const __m512i* acci, int n, int nvalid, void* C, size_t ldc, int m) const {
    static_assert(V == 2 || V == 4, "runs of 32 or 64 channels");
    if (!byte_out() || nvalid < 16 * V) {
#pragma GCC unroll 4
      for (int h = 0; h < V; ++h) store(accf[h], acci[h], n + 16 * h, lane_mask(nvalid - 16 * h), C, ldc, m);
      return;
    }
    const __mmask16 all = static_cast<__mmask16>(0xFFFF);
    __m512i q[4];
    const size_t off = static_cast<size_t>(m) * ldc + static_cast<size_t>(n);
    quantized<V>(accf, [&](int h) { return scale(n + 16 * h, all); }, [&](int h) { return bias(n + 16 * h, all); },
                 [&](int h) { return residual(off + 16 * h, all); }, all, q);
    if (V == 2) q[2] = q[0], q[3] = q[1];
    const __m512i r = pack_bytes(q);
    uint8_t* dst = static_cast<uint8_t*>(C) + off;
    if (V == 4)
      _mm512_storeu_si512(dst, r);
    else
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), _mm512_castsi512_si256(r));
  }

 private:
  static constexpr float kOnes[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
  static constexpr float kZeros[16] = {};

  // The bytes of four vectors of quantized values, in order q[0], q[1], q[2], q[3]: packs leave in
  // each 128-bit lane j the dwords (q0_j, q1_j) as int16, then bytes (q0_j, q1_j, q2_j, q3_j);
  // the permutation gathers lane j's dword of each vector. The values are within the byte range,
  // so neither saturation changes them.
  TERNION_EPILOGUE_INLINE __m512i pack_bytes(const __m512i (&q)[4]) const {
    const __m512i w01 = _mm512_packs_epi32(q[0], q[1]), w23 = _mm512_packs_epi32(q[2], q[3]);
    const __m512i b = out_ == OutType::U8 ? _mm512_packus_epi16(w01, w23) : _mm512_packs_epi16(w01, w23);
    return _mm512_permutexvar_epi32(_mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15), b);
  }

  // The residual's values (kernels.h) at output offset off: codes widened, the zero point taken
  // off in int32, converted (exactly) and scaled, as the scalar reference does. Only called when
  // res_ is set.
  TERNION_EPILOGUE_INLINE __m512 residual(size_t off, __mmask16 mk) const {
    const __m512i c = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(mk, res_ + off));
    return _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(c, rz_)), rs_);
  }

  // A missing scale or bias reads the 16 ones or zeros above at every n (its step mask is 0).
  TERNION_EPILOGUE_INLINE __m512 scale(int n, __mmask16 mk) const { return _mm512_maskz_loadu_ps(mk, scale_ + (n & scale_step_)); }
  TERNION_EPILOGUE_INLINE __m512 bias(int n, __mmask16 mk) const { return _mm512_maskz_loadu_ps(mk, bias_ + (n & bias_step_)); }

  // V vectors of channels [n, n + 16V) quantized (kernels.h) from the value v after the fma: ReLU,
  // Clip, then with a divisor round(min(max(fma(v, 1/d, z), qmin), qmax)), without one
  // round(min(max(v, qmin - z), qmax - z)) + z. No Clip is bounds at -inf and +inf, which
  // vmaxps(lo, v) and vminps(hi, v) return v for, a NaN included; vmaxps(t, qlo) takes a NaN to
  // qlo, as fmaxf. sc(h) and bi(h) give vector h's scale and bias, re(h) its residual (read only
  // with res_). Folded form (requant-folded.h): ReLU, Clip and the clamp as one clamp of the fma.
  template <int V, typename Scale, typename Bias, typename Residual>
  TERNION_EPILOGUE_INLINE void quantized(const __m512* accf, Scale&& sc, Bias&& bi, Residual&& re, __mmask16, __m512i* q) const {
    __m512 v[V];
#pragma GCC unroll 4
    for (int h = 0; h < V; ++h) {
      v[h] = _mm512_fmadd_ps(accf[h], sc(h), bi(h));
      if (res_) v[h] = _mm512_add_ps(v[h], re(h));
    }
    if (folded_) {
#pragma GCC unroll 4
      for (int h = 0; h < V; ++h)
        q[h] = _mm512_cvtps_epi32(_mm512_min_ps(_mm512_max_ps(_mm512_fmadd_ps(v[h], rd_, zpf_), zlo_), zhi_));
      return;
    }
#pragma GCC unroll 4
    for (int h = 0; h < V; ++h) {
      // vmaxps(v, 0) = v > 0 ? v : 0, the same as fmaxf(v, 0) including NaN -> 0.
      if (relu_) v[h] = _mm512_max_ps(v[h], _mm512_setzero_ps());
      v[h] = _mm512_min_ps(phi_, _mm512_max_ps(plo_, v[h]));
      if (div_) v[h] = _mm512_fmadd_ps(v[h], rd_, zpf_);
      q[h] = _mm512_add_epi32(_mm512_cvtps_epi32(_mm512_min_ps(_mm512_max_ps(v[h], qlo_), qhi_)), zp_);
    }
  }

  const float* scale_;
  const float* bias_;
  int scale_step_, bias_step_;
  OutType out_;
  bool relu_, div_, folded_ = false;
  __m512 plo_, phi_, qlo_, qhi_, rd_, zlo_, zhi_, zpf_;
  __m512i zp_;
  const uint8_t* res_;  // residual codes (byte outputs only), or null
  __m512 rs_;
  __m512i rz_;
};

// Entry points (one file per kind).
TERNION_DECLARE_KERNEL_ENTRIES()
// The fp32 GEMM over row segments (KernelTable::f32_gemm_segs).
void f32_gemm_segs(int M, int N, int S, int L, const float* const* segs, const void* packed, const float* bias,
                   const float* clamp, float* C, size_t ldc, int n0, int n1);
// int8 and low-bit GEMMs over row segments (KernelTable::q8_gemm_segs, lowbit_gemm_segs).
void q8_gemm_segs(int M, int N, int S, int L, const uint8_t* const* segs, uint8_t a_zero, const void* packed,
                  const Requant* rq, void* C, size_t ldc, int n0, int n1);
void lowbit_gemm_segs(int M, int N, int S, int L, const uint8_t* const* segs, uint8_t a_zero, const void* packed,
                      const Requant* rq, void* C, size_t ldc, int n0, int n1);
// The depthwise convolutions and the activation quantizer.
size_t dw_packed_size(int C, int taps);
void dw_pack(const int8_t* W, int C, int taps, void* packed);
void dw_q8(int P, int C, int taps, const uint8_t* const* in, uint8_t a_zero, const void* packed,
           const Requant* rq, void* out, size_t ldo);
void dw_f32(int P, int C, int taps, const float* const* in, const float* w, const float* bias,
            float lo, float hi, float* out, size_t ldo);
void quantize_u8(const float* x, uint8_t* y, size_t n, float scale, int32_t zp, int32_t qmax);

}  // namespace avx512vnni
}  // namespace kernels
}  // namespace ternion
