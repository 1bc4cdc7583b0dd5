#include "exec/gemm.h"

#include <algorithm>

namespace ternion {
namespace exec {

size_t out_type_size(kernels::OutType t) {
  switch (t) {
    case kernels::OutType::F32: return 4;
    case kernels::OutType::I32: return 4;
    default: return 1;
  }
}

std::vector<Tile> plan_tiles(int M, int N, int nr, int threads) {
  std::vector<Tile> tiles;
  if (M <= 0 || N <= 0) return tiles;
  const int panels = (N + nr - 1) / nr;
  if (threads <= 1) return {{0, M, 0, N}};
  // A few tiles per thread balances uneven tiles; small M (GEMV) splits only along N, where
  // each thread then streams its own slice of the weights.
  const int want = threads * 4;
  int n_chunks = std::min(panels, want);
  int m_chunks = 1;
  if (M >= 16 && n_chunks < want) m_chunks = std::min((want + n_chunks - 1) / n_chunks, M / 8);
  m_chunks = std::max(m_chunks, 1);
  const int panels_per = (panels + n_chunks - 1) / n_chunks;
  const int rows_per = (M + m_chunks - 1) / m_chunks;
  for (int mi = 0; mi < M; mi += rows_per)
    for (int p = 0; p < panels; p += panels_per)
      tiles.push_back({mi, std::min(M, mi + rows_per), p * nr, std::min(N, (p + panels_per) * nr)});
  return tiles;
}

namespace {

// The epilogue of a row tile from m0: residual codes are laid out like C (kernels.h).
kernels::Requant rows_from(const kernels::Requant& rq, int m0, size_t ldc) {
  kernels::Requant r = rq;
  if (r.residual) r.residual += static_cast<size_t>(m0) * ldc;
  return r;
}

template <typename Fn>
void run_tiles(const GemmContext& ctx, int M, int N, int nr, Fn&& fn) {
  const int threads = ctx.pool ? std::min(ctx.threads, ctx.pool->size()) : 1;
  const auto tiles = plan_tiles(M, N, nr, threads);
  if (tiles.size() == 1 || !ctx.pool) {
    for (const Tile& t : tiles) fn(t);
    return;
  }
  ctx.pool->parallel_for(static_cast<int>(tiles.size()), threads, [&](int i) { fn(tiles[i]); });
}

}  // namespace

void gemm_f32(const GemmContext& ctx, int M, int N, int K, const float* A, size_t lda,
              const void* packed, const float* bias, const float* clamp, float* C, size_t ldc) {
  run_tiles(ctx, M, N, ctx.table->f32_nr, [&](const Tile& t) {
    ctx.table->f32_gemm(t.m1 - t.m0, N, K, A + t.m0 * lda, lda, packed, bias, clamp,
                        C + t.m0 * ldc, ldc, t.n0, t.n1);
  });
}

void gemm_q8(const GemmContext& ctx, int M, int N, int K, const uint8_t* A, size_t lda,
             uint8_t a_zero, const void* packed, const kernels::Requant& rq, void* C,
             size_t ldc) {
  const size_t es = out_type_size(rq.out);
  run_tiles(ctx, M, N, ctx.table->q8_nr, [&](const Tile& t) {
    const kernels::Requant tile_rq = rows_from(rq, t.m0, ldc);
    ctx.table->q8_gemm(t.m1 - t.m0, N, K, A + t.m0 * lda, lda, a_zero, packed, &tile_rq,
                       static_cast<char*>(C) + t.m0 * ldc * es, ldc, t.n0, t.n1);
  });
}

void gemm_f32_segs(const GemmContext& ctx, int M, int N, int S, int L, const float* const* segs, const void* packed,
                   const float* bias, const float* clamp, float* C, size_t ldc) {
  run_tiles(ctx, M, N, ctx.table->f32_nr, [&](const Tile& t) {
    ctx.table->f32_gemm_segs(t.m1 - t.m0, N, S, L, segs + static_cast<size_t>(t.m0) * S, packed, bias, clamp, C + t.m0 * ldc, ldc,
                             t.n0, t.n1);
  });
}

void gemm_q8_segs(const GemmContext& ctx, int M, int N, int S, int L, const uint8_t* const* segs,
                  uint8_t a_zero, const void* packed, const kernels::Requant& rq, void* C, size_t ldc) {
  const size_t es = out_type_size(rq.out);
  run_tiles(ctx, M, N, ctx.table->q8_nr, [&](const Tile& t) {
    const kernels::Requant tile_rq = rows_from(rq, t.m0, ldc);
    ctx.table->q8_gemm_segs(t.m1 - t.m0, N, S, L, segs + static_cast<size_t>(t.m0) * S, a_zero, packed, &tile_rq,
                            static_cast<char*>(C) + t.m0 * ldc * es, ldc, t.n0, t.n1);
  });
}

void gemm_lowbit_segs(const GemmContext& ctx, int M, int N, int S, int L, const uint8_t* const* segs,
                      uint8_t a_zero, const void* packed, const kernels::Requant& rq, void* C, size_t ldc) {
  const size_t es = out_type_size(rq.out);
  run_tiles(ctx, M, N, ctx.table->lowbit_nr, [&](const Tile& t) {
    const kernels::Requant tile_rq = rows_from(rq, t.m0, ldc);
    ctx.table->lowbit_gemm_segs(t.m1 - t.m0, N, S, L, segs + static_cast<size_t>(t.m0) * S, a_zero, packed, &tile_rq,
                                static_cast<char*>(C) + t.m0 * ldc * es, ldc, t.n0, t.n1);
  });
}

void gemm_lowbit(const GemmContext& ctx, int M, int N, int K, const uint8_t* A, size_t lda,
                 uint8_t a_zero, const void* packed, const kernels::Requant& rq, void* C,
                 size_t ldc) {
  const size_t es = out_type_size(rq.out);
  run_tiles(ctx, M, N, ctx.table->lowbit_nr, [&](const Tile& t) {
    const kernels::Requant tile_rq = rows_from(rq, t.m0, ldc);
    ctx.table->lowbit_gemm(t.m1 - t.m0, N, K, A + t.m0 * lda, lda, a_zero, packed, &tile_rq,
                           static_cast<char*>(C) + t.m0 * ldc * es, ldc, t.n0, t.n1);
  });
}

}  // namespace exec
}  // namespace ternion
