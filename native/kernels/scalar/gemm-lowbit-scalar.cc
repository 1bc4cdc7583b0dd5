// Low-bit (ternary / 4-bit) GEMM reference, both execution forms, straight from the definition
// in kernels.h. The packed buffer is a header followed by the unpacked codes and the per-group
// scales or multipliers: clarity over speed, since every SIMD table is checked against this.
#include <cstring>

#include "kernels/kernels.h"
#include "kernels/scalar/requant-scalar.h"

namespace ternion {
namespace kernels {
namespace scalar_detail {
namespace {

struct Header {
  int32_t bits, N, K, G;
  LowbitForm form;
  int32_t asym;
  int32_t pad[10];  // keeps the payload 64-byte aligned
};
static_assert(sizeof(Header) == 64, "lowbit header must keep the payload aligned");

size_t groups_of(const Header& h) { return static_cast<size_t>(h.N) * (h.K / h.G); }

// Codes are padded to 64 bytes so the fp32 scales after them are aligned.
size_t code_bytes(const Header& h) { return (static_cast<size_t>(h.N) * h.K + 63) & ~size_t(63); }

size_t scale_bytes(const Header& h) {
  return (h.form == LowbitForm::GroupScaled ? sizeof(float) : sizeof(int8_t)) * groups_of(h);
}

}  // namespace

size_t lowbit_packed_size(const LowbitWeights* w) {
  Header h{w->bits, w->N, w->K, w->G, w->form, w->asym ? 1 : 0, {}};
  return sizeof(Header) + code_bytes(h) + scale_bytes(h) * 2;
}

void lowbit_pack(const LowbitWeights* w, void* packed) {
  Header h{w->bits, w->N, w->K, w->G, w->form, w->asym ? 1 : 0, {}};
  char* p = static_cast<char*>(packed);
  std::memcpy(p, &h, sizeof h);
  p += sizeof h;
  std::memcpy(p, w->q, static_cast<size_t>(w->N) * w->K);
  p += code_bytes(h);
  const size_t sb = scale_bytes(h);
  const void* pos = h.form == LowbitForm::GroupScaled ? static_cast<const void*>(w->scale_pos)
                                                      : static_cast<const void*>(w->mult_pos);
  const void* neg = h.form == LowbitForm::GroupScaled ? static_cast<const void*>(w->scale_neg)
                                                      : static_cast<const void*>(w->mult_neg);
  std::memcpy(p, pos, sb);
  if (h.asym) std::memcpy(p + sb, neg, sb);
  else std::memset(p + sb, 0, sb);
}

void lowbit_gemm(int M, int N, int K, const uint8_t* A, size_t lda, uint8_t a_zero,
                 const void* packed, const Requant* rq, void* C, size_t ldc, int n0, int n1) {
  Header h;
  std::memcpy(&h, packed, sizeof h);
  const int8_t* q = static_cast<const int8_t*>(packed) + sizeof h;
  const char* scales = reinterpret_cast<const char*>(q) + code_bytes(h);
  const int G = h.G, groups = h.K / h.G;
  const size_t sb = scale_bytes(h);
  for (int m = 0; m < M; ++m) {
    const uint8_t* a = A + m * lda;
    for (int n = n0; n < n1; ++n) {
      const int8_t* qn = q + static_cast<size_t>(n) * K;
      if (h.form == LowbitForm::GroupScaled) {
        const float* sp = reinterpret_cast<const float*>(scales) + static_cast<size_t>(n) * groups;
        const float* sn = reinterpret_cast<const float*>(scales + sb) + static_cast<size_t>(n) * groups;
        float sum = 0.0f;
        for (int g = 0; g < groups; ++g) {
          if (!h.asym) {
            int32_t acc = 0;
            for (int k = g * G; k < (g + 1) * G; ++k) acc += qn[k] * (static_cast<int32_t>(a[k]) - a_zero);
            sum = std::fma(sp[g], static_cast<float>(acc), sum);
          } else {
            int32_t P = 0, Mn = 0;
            for (int k = g * G; k < (g + 1) * G; ++k) {
              const int32_t x = static_cast<int32_t>(a[k]) - a_zero;
              if (qn[k] > 0) P += x;
              if (qn[k] < 0) Mn += x;
            }
            sum = std::fma(sp[g], static_cast<float>(P), sum);
            sum = std::fma(-sn[g], static_cast<float>(Mn), sum);
          }
        }
        requant_store(*rq, n, sum, 0, C, m * ldc + n);
      } else {
        const int8_t* mp = reinterpret_cast<const int8_t*>(scales) + static_cast<size_t>(n) * groups;
        const int8_t* mn = reinterpret_cast<const int8_t*>(scales + sb) + static_cast<size_t>(n) * groups;
        int32_t acc = 0;
        for (int k = 0; k < K; ++k) {
          const int g = k / G;
          int32_t w = qn[k] * mp[g];
          if (h.asym && qn[k] < 0) w = -mn[g];
          acc += w * (static_cast<int32_t>(a[k]) - a_zero);
        }
        requant_store(*rq, n, static_cast<float>(acc), acc, C, m * ldc + n);
      }
    }
  }
}

}  // namespace scalar_detail
}  // namespace kernels
}  // namespace ternion
