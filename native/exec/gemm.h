// Multi-threaded GEMM drivers over one kernel table: split the output into tiles of whole
// panels (no two threads write the same cache line of a row but at tile edges) and call the
// table's kernels on each tile.
#pragma once

#include "kernels/kernels.h"
#include "threadpool.h"

namespace ternion {
namespace exec {

struct GemmContext {
  const kernels::KernelTable* table;
  ThreadPool* pool;  // may be null: run on the calling thread
  int threads;       // at most this many threads (caller included)
};

struct Tile {
  int m0, m1, n0, n1;
};

// Splits an M x N output into tiles for `threads` threads, n edges on multiples of nr.
std::vector<Tile> plan_tiles(int M, int N, int nr, int threads);

// fp32 GEMM with A as row segments (KernelTable::f32_gemm_segs; the table must have it).
void gemm_f32_segs(const GemmContext& ctx, int M, int N, int S, int L, const float* const* segs, const void* packed,
                   const float* bias, const float* clamp, float* C, size_t ldc);

void gemm_f32(const GemmContext& ctx, int M, int N, int K, const float* A, size_t lda,
              const void* packed, const float* bias, const float* clamp, float* C, size_t ldc);
void gemm_q8(const GemmContext& ctx, int M, int N, int K, const uint8_t* A, size_t lda,
             uint8_t a_zero, const void* packed, const kernels::Requant& rq, void* C, size_t ldc);
// gemm_q8 / gemm_lowbit with A as row segments (KernelTable::q8_gemm_segs / lowbit_gemm_segs,
// which ctx.table must have).
void gemm_q8_segs(const GemmContext& ctx, int M, int N, int S, int L, const uint8_t* const* segs,
                  uint8_t a_zero, const void* packed, const kernels::Requant& rq, void* C, size_t ldc);
void gemm_lowbit_segs(const GemmContext& ctx, int M, int N, int S, int L, const uint8_t* const* segs,
                      uint8_t a_zero, const void* packed, const kernels::Requant& rq, void* C, size_t ldc);
void gemm_lowbit(const GemmContext& ctx, int M, int N, int K, const uint8_t* A, size_t lda,
                 uint8_t a_zero, const void* packed, const kernels::Requant& rq, void* C,
                 size_t ldc);

size_t out_type_size(kernels::OutType t);

}  // namespace exec
}  // namespace ternion
