// Layout helpers of the GEMM-based convolutions: im2col into the kernel's A layout (one row
// per output pixel, k ordered as (ci, kd, kh, kw) to match the ONNX weight layout), and GEMM rows
// ([pixels][channels]) stored as NCHW planes through the kernel table's transpose.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "exec/ops/conv-common.h"
#include "kernels/kernels.h"

namespace ternion {
namespace exec {
namespace ops {

// memcpy of the short runs im2col copies (a kernel row of a 3-channel stem is 21 bytes): whole
// 16 / 8 / 4-byte moves, the last one overlapping, inlined, instead of a library call per run,
// which cost more than the copy. Reads and writes stay within [src, src + n) and [dst, dst + n).
inline void copy_run(void* dst, const void* src, size_t n) {
  unsigned char* d = static_cast<unsigned char*>(dst);
  const unsigned char* s = static_cast<const unsigned char*>(src);
  if (n >= 256) {
    std::memcpy(d, s, n);
  } else if (n >= 16) {
    for (size_t i = 0; i + 16 <= n; i += 16) std::memcpy(d + i, s + i, 16);
    std::memcpy(d + n - 16, s + n - 16, 16);
  } else if (n >= 8) {
    std::memcpy(d, s, 8);
    std::memcpy(d + n - 8, s + n - 8, 8);
  } else if (n >= 4) {
    std::memcpy(d, s, 4);
    std::memcpy(d + n - 4, s + n - 4, 4);
  } else {
    for (size_t i = 0; i < n; ++i) d[i] = s[i];
  }
}

// Rows [p0, p1) of the im2col matrix of one image and group: x is [channels][D][H][W], row p
// (output pixel (od, oh, ow)) gets channels * k_size values, positions in the padding get
// `pad` (0 for floats, the zero point for quantized inputs).
template <typename T>
void im2col_rows(const T* x, int64_t channels, const Window3& w, int64_t p0, int64_t p1, T pad, T* col,
                 size_t ldcol) {
  const int64_t D = w.in[0], H = w.in[1], W = w.in[2];
  const int64_t KD = w.k[0], KH = w.k[1], KW = w.k[2];
  PixelCursor at(p0, w);  // pixels of one image: at.n stays 0
  for (int64_t p = p0; p < p1; ++p, at.next(w)) {
    const int64_t id0 = at.od * w.s[0] - w.pb[0], ih0 = at.oh * w.s[1] - w.pb[1], iw0 = at.ow * w.s[2] - w.pb[2];
    T* row = col + (p - p0) * ldcol;
    // The columns this pixel's window covers inside the input, so the inner loop has no test
    // in the common case.
    const bool w_inside = iw0 >= 0 && iw0 + (KW - 1) * w.d[2] < W;
    for (int64_t c = 0; c < channels; ++c) {
      const T* xc = x + c * D * H * W;
      for (int64_t kd = 0; kd < KD; ++kd) {
        const int64_t id = id0 + kd * w.d[0];
        if (id < 0 || id >= D) {
          std::fill(row, row + KH * KW, pad);
          row += KH * KW;
          continue;
        }
        for (int64_t kh = 0; kh < KH; ++kh) {
          const int64_t ih = ih0 + kh * w.d[1];
          if (ih < 0 || ih >= H) {
            std::fill(row, row + KW, pad);
            row += KW;
            continue;
          }
          const T* xr = xc + (id * H + ih) * W;
          if (w_inside) {
            if (w.d[2] == 1) {
              copy_run(row, xr + iw0, KW * sizeof(T));
            } else {
              for (int64_t kw = 0; kw < KW; ++kw) row[kw] = xr[iw0 + kw * w.d[2]];
            }
          } else {
            for (int64_t kw = 0; kw < KW; ++kw) {
              const int64_t iw = iw0 + kw * w.d[2];
              row[kw] = iw >= 0 && iw < W ? xr[iw] : pad;
            }
          }
          row += KW;
        }
      }
    }
  }
}

// Whether each kernel row (KW pixels) of a pixel-major image with `ld` values per pixel (P
// used) is one span: ld == P and unit dilation along W. im2col then copies it in one run, and
// the GEMM can read it in place as a row segment.
inline bool kernel_rows_are_spans(size_t ld, int64_t P, const Window3& w) { return static_cast<int64_t>(ld) == P && w.d[2] == 1; }

// Rows [p0, p1) of the im2col matrix of a pixel-major image (pixel i at img + i * ld, its first
// P values used): row p (output pixel) holds, for each kernel offset s in (kd, kh, kw) order, the
// P values of the input pixel it covers, or `pad` where the window lies in the padding. Column
// k = s * P + c, so weights must be ordered (kernel offset, channel).
template <typename T>
void im2col_pixels(const T* img, size_t ld, int64_t P, const Window3& w, int64_t p0, int64_t p1, T pad, T* col,
                   size_t ldcol) {
  const int64_t D = w.in[0], H = w.in[1], W = w.in[2];
  const int64_t KD = w.k[0], KH = w.k[1], KW = w.k[2];
  const size_t run = static_cast<size_t>(P);
  const bool contiguous = kernel_rows_are_spans(ld, P, w);
  PixelCursor at(p0, w);  // pixels of one image: at.n stays 0
  for (int64_t p = p0; p < p1; ++p, at.next(w)) {
    const int64_t id0 = at.od * w.s[0] - w.pb[0], ih0 = at.oh * w.s[1] - w.pb[1], iw0 = at.ow * w.s[2] - w.pb[2];
    T* row = col + (p - p0) * ldcol;
    const bool w_inside = iw0 >= 0 && iw0 + (KW - 1) * w.d[2] < W;
    for (int64_t kd = 0; kd < KD; ++kd) {
      const int64_t id = id0 + kd * w.d[0];
      if (id < 0 || id >= D) {
        std::fill(row, row + run * KH * KW, pad);
        row += P * KH * KW;
        continue;
      }
      for (int64_t kh = 0; kh < KH; ++kh) {
        const int64_t ih = ih0 + kh * w.d[1];
        if (ih < 0 || ih >= H) {
          std::fill(row, row + run * KW, pad);
          row += P * KW;
          continue;
        }
        const T* src = img + ((id * H + ih) * W) * ld;
        if (w_inside && contiguous) {
          copy_run(row, src + iw0 * ld, run * KW * sizeof(T));
          row += P * KW;
          continue;
        }
        for (int64_t kw = 0; kw < KW; ++kw) {
          const int64_t iw = iw0 + kw * w.d[2];
          if (iw >= 0 && iw < W) copy_run(row, src + iw * ld, run * sizeof(T));
          else std::fill(row, row + run, pad);
          row += P;
        }
      }
    }
  }
}

// An implicit im2col: the KD * KH kernel rows of output pixels [p0, p1) as segment pointers
// (segs[(p - p0) * KD * KH + s]), each a span of KW * P values: into the image where the
// kernel row lies inside it, at pad_row (KW * P pad values) where it lies above or below, and
// where it crosses the left or right edge at its im2col copy in col (row p - p0, at the offset
// im2col_pixels would write it). Requires kernel_rows_are_spans.
template <typename T>
void segment_pixels(const T* img, int64_t P, const Window3& w, int64_t p0, int64_t p1, T pad, const T* pad_row, T* col,
                    size_t ldcol, const T** segs) {
  const int64_t D = w.in[0], H = w.in[1], W = w.in[2];
  const int64_t KD = w.k[0], KH = w.k[1], KW = w.k[2];
  const int64_t L = P * KW;
  const int64_t kh_step = w.d[1] * W * P;  // from one kernel row to the next, inside the image
  PixelCursor at(p0, w);  // pixels of one image: at.n stays 0
  for (int64_t p = p0; p < p1; ++p, at.next(w)) {
    const int64_t id0 = at.od * w.s[0] - w.pb[0], ih0 = at.oh * w.s[1] - w.pb[1], iw0 = at.ow * w.s[2] - w.pb[2];
    const bool w_inside = iw0 >= 0 && iw0 + KW - 1 < W;
    if (KD == 1 && w_inside && id0 >= 0 && id0 < D && ih0 >= 0 && ih0 + (KH - 1) * w.d[1] < H) {
      // A window wholly inside the image (most pixels): its kernel rows are one stride apart.
      const T* src = img + ((id0 * H + ih0) * W + iw0) * P;
      for (int64_t kh = 0; kh < KH; ++kh, src += kh_step) *segs++ = src;
      continue;
    }
    T* row = col + (p - p0) * ldcol;
    for (int64_t kd = 0; kd < KD; ++kd) {
      const int64_t id = id0 + kd * w.d[0];
      for (int64_t kh = 0; kh < KH; ++kh, row += L) {
        const int64_t ih = ih0 + kh * w.d[1];
        if (id < 0 || id >= D || ih < 0 || ih >= H) {
          *segs++ = pad_row;
          continue;
        }
        const T* src = img + ((id * H + ih) * W) * P;
        if (w_inside) {
          *segs++ = src + iw0 * P;
          continue;
        }
        for (int64_t kw = 0; kw < KW; ++kw) {
          const int64_t iw = iw0 + kw;
          if (iw >= 0 && iw < W) copy_run(row + kw * P, src + iw * P, static_cast<size_t>(P) * sizeof(T));
          else std::fill(row + kw * P, row + (kw + 1) * P, pad);
        }
        *segs++ = row;
      }
    }
  }
}

// The GEMM result of a pixel range, C[p][m] (p in [0, rows), m in [0, channels)), written to
// NCHW planes out[m][p] (plane stride ld_out) with the residual added and the activation applied.
inline void store_pixels_to_planes(const kernels::KernelTable* table, const float* C, int64_t rows, int64_t channels, size_t ldc,
                                   float* out, size_t ld_out, const float* residual, const Activation& act) {
  table->transpose_f32(C, static_cast<int>(rows), static_cast<int>(channels), ldc, out, ld_out);
  if (!residual && act.none()) return;
  for (int64_t m = 0; m < channels; ++m) {
    float* o = out + m * ld_out;
    if (residual) {
      const float* r = residual + m * ld_out;
      for (int64_t p = 0; p < rows; ++p) o[p] += r[p];
    }
    act.apply(o, static_cast<size_t>(rows));
  }
}

}  // namespace ops
}  // namespace exec
}  // namespace ternion
