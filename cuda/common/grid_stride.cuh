#pragma once
// Private to cuda/: grid-stride launch helpers for the image-op kernels of cuda/ops (pool,
// interpolate, pad, grid_sample, norm).
// Every kernel runs on the library stream (common/context.hpp) with a grid-stride loop over an
// int64 index range, so any size works with a bounded grid.
#include <algorithm>
#include <cstdint>

#include "../common/check.hpp"
#include "../common/context.hpp"
#include "backend/kernels.hpp"

namespace gradstyle::cuda::sampling {

constexpr int kThreads = 256;

// Blocks for n work items: enough to fill the device, capped (the loops are grid-stride).
inline unsigned blocks_for(int64_t n) {
  const int64_t blocks = (n + kThreads - 1) / kThreads;
  const int64_t cap = int64_t(sm_count()) * 32;
  return unsigned(std::max<int64_t>(1, std::min(blocks, cap)));
}

template <class T>
__device__ __forceinline__ T* dptr(const backend::StridedView& v) {
  return static_cast<T*>(v.data);
}

}  // namespace gradstyle::cuda::sampling

// for (int64_t i ...) over [0, n) with a grid-stride step.
#define GS_SAMPLING_LOOP(i, n)                                                                                 \
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x, gs_step_ = int64_t(gridDim.x) * blockDim.x; \
       i < (n); i += gs_step_)

// Launches kernel<T><<<blocks_for(n), kThreads, 0, stream()>>>(args...) and checks the launch.
#define GS_SAMPLING_LAUNCH(kernel, n, ...)                                                           \
  do {                                                                                               \
    if ((n) > 0) {                                                                                   \
      kernel<<<::gradstyle::cuda::sampling::blocks_for(n), ::gradstyle::cuda::sampling::kThreads, 0, \
               ::gradstyle::cuda::stream()>>>(__VA_ARGS__);                                          \
      GS_CUDA_CHECK_LAUNCH(#kernel);                                                                 \
    }                                                                                                \
  } while (0)
