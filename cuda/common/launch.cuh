#pragma once
// Private to cuda/: launch geometry and strided-view index math shared by the kernels of cuda/ops.
//
// Kernels use grid-stride loops over int64 linear indices, so any numel works with a bounded
// grid. Views are coalesced on the host first (size-1 dims dropped, mergeable neighbours merged),
// which turns most broadcast/strided views into 1-3 dims and contiguous ones into 1 dim with
// stride 1 (flag `contiguous`), where the offset is the index itself.
#include <algorithm>
#include <cstdint>

#include "../common/check.hpp"
#include "../common/context.hpp"
#include "backend/view.hpp"

namespace gradstyle::cuda {

constexpr int kBlock = 256;

// Blocks for n elements with kBlock threads: enough to fill the device, capped because the loops
// are grid-stride.
inline unsigned grid_for(int64_t n) {
  int64_t blocks = (n + kBlock - 1) / kBlock;
  int64_t cap = int64_t(sm_count()) * 16;
  return unsigned(std::max<int64_t>(1, std::min(blocks, cap)));
}

// The same linear-index -> offset mapping with the fewest dims (see backend::offset_of).
inline backend::StridedView coalesced(backend::StridedView v) {
  int nd = 0;
  int64_t shape[kMaxDims], strides[kMaxDims];
  for (int d = 0; d < v.ndim; ++d) {
    if (v.shape[d] == 1) continue;
    if (nd > 0 && strides[nd - 1] == v.strides[d] * v.shape[d]) {
      // outer index ip, inner id: ip*tp + id*td == (ip*Sd + id)*td when tp == td*Sd
      shape[nd - 1] *= v.shape[d];
      strides[nd - 1] = v.strides[d];
    } else {
      shape[nd] = v.shape[d];
      strides[nd] = v.strides[d];
      ++nd;
    }
  }
  v.ndim = nd;
  for (int d = 0; d < nd; ++d) {
    v.shape[d] = shape[d];
    v.strides[d] = strides[d];
  }
  for (int d = nd; d < kMaxDims; ++d) v.shape[d] = 1, v.strides[d] = 0;
  v.contiguous = nd == 0 || (nd == 1 && strides[0] == 1);
  return v;
}

// Element offset of linear index i < v.numel: backend::offset_of, minus the division for the
// outermost dim (i is already below its size there), with the dense case short-cut, and with
// 32-bit divisions (several times cheaper than 64-bit ones on the GPU) when the view has fewer
// than 2^32 elements -- a branch that is uniform across the whole launch.
__device__ __forceinline__ int64_t view_offset(const backend::StridedView& v, int64_t i) {
  if (v.contiguous) return i;
  if (v.ndim == 0) return 0;
  int64_t off = 0;
  if (v.numel <= int64_t(0xFFFFFFFFu)) {
    uint32_t r = uint32_t(i);
    for (int d = v.ndim - 1; d > 0; --d) {
      const uint32_t s = uint32_t(v.shape[d]);
      const uint32_t q = r / s;
      off += int64_t(r - q * s) * v.strides[d];
      r = q;
    }
    return off + int64_t(r) * v.strides[0];
  }
  for (int d = v.ndim - 1; d > 0; --d) {
    const int64_t s = v.shape[d];
    const int64_t q = i / s;
    off += (i - q * s) * v.strides[d];
    i = q;
  }
  return off + i * v.strides[0];
}

}  // namespace gradstyle::cuda

// for (int64_t i ...) over [0, n) with a grid-stride step.
#define GS_GRID_LOOP(i, n)                                                            \
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x, gs_step_ = int64_t(gridDim.x) * blockDim.x; \
       i < (n); i += gs_step_)
