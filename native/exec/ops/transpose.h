// The Transpose op's kernel for other ops that rearrange whole tensors (Einsum): dims of size 1
// dropped and neighbours merged, then a tiled batched 2-D transpose, whole-row copies, or a
// strided walk of the output.
#pragma once

#include <vector>

#include "exec/graph.h"

namespace ternion {
namespace exec {

// out = in (contiguous, shape in_shape) with its dims permuted: out dim i is in dim perm[i].
// Elements of 1, 4 or 8 bytes; perm must be a permutation of in_shape's dims.
void permute_elements(const RunContext& ctx, const Shape& in_shape, const std::vector<int64_t>& perm, size_t element_size,
                      const void* in, void* out);

}  // namespace exec
}  // namespace ternion
