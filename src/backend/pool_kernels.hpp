#pragma once
// Internal: kernel entry points of the pool family (avg/max/adaptive pooling): gradstyle::cpu::X in
// src/cpu/pool.cpp, gradstyle::cuda::X in cuda/ops/pool.cu; op code (src/ops/pool.cpp) calls
// GS_DISPATCH(device, X, args...). Every view passed here is dense (row-major contiguous) and f32
// or f64; spatial tensors are NCHW planes, [planes, H, W] with planes = N*C. Kernels write every
// element of their output unless stated.
#include <cmath>
#include <cstdint>

#include "backend/kernels.hpp"
#include "gradstyle/core/host_device.hpp"  // GS_HD

namespace gradstyle::backend {

// avg_pool2d / max_pool2d geometry (PyTorch's, ceil_mode = false, dilation 1).
struct Pool2dParams {
  int64_t planes = 0;  // N*C
  int64_t in_h = 0, in_w = 0;
  int64_t out_h = 0, out_w = 0;  // (in + 2*pad - kernel) / stride + 1
  int64_t kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0;
};

// adaptive_avg_pool2d geometry: bin i of an axis covers [floor(i*In/Out), ceil((i+1)*In/Out)).
struct AdaptivePoolParams {
  int64_t planes = 0;
  int64_t in_h = 0, in_w = 0, out_h = 0, out_w = 0;
};

// ---- index math shared by the CPU and CUDA kernels ----

// Integer bin bounds of adaptive pooling.
GS_HD int64_t adaptive_start(int64_t i, int64_t in, int64_t out) {
  return (i * in) / out;
}
GS_HD int64_t adaptive_end(int64_t i, int64_t in, int64_t out) {
  return ((i + 1) * in + out - 1) / out;
}

}  // namespace gradstyle::backend

#define GS_POOL_KERNEL_DECLS                                                                                          \
  /* ---- pooling: in/out [planes, H, W] ---- */                                                                      \
  void avg_pool2d_fwd(const backend::StridedView& out, const backend::StridedView& in,                                \
                      const backend::Pool2dParams& p);                                                                \
  /* gin = adjoint of avg_pool2d applied to gout (gin fully written) */                                               \
  void avg_pool2d_bwd(const backend::StridedView& gin, const backend::StridedView& gout,                              \
                      const backend::Pool2dParams& p);                                                                \
  /* out = window max, idx = int64 flat index (y*W + x) of the first maximum in its plane (idx */                     \
  /* may have null data: indices not wanted) */                                                                       \
  void max_pool2d_fwd(const backend::StridedView& out, const backend::StridedView& idx,                               \
                      const backend::StridedView& in, const backend::Pool2dParams& p);                                \
  /* out[p, j] = in[p, idx[p, j]]: in [planes, in_h*in_w], out/idx [planes, out_h*out_w] */                           \
  void plane_gather(const backend::StridedView& out, const backend::StridedView& in, const backend::StridedView& idx, \
                    int64_t planes, int64_t in_size, int64_t out_size);                                               \
  /* gin[p, :] = 0; gin[p, idx[p, j]] += gout[p, j] (the adjoint of plane_gather) */                                  \
  void plane_scatter(const backend::StridedView& gin, const backend::StridedView& gout,                               \
                     const backend::StridedView& idx, int64_t planes, int64_t in_size, int64_t out_size);             \
  void adaptive_avg_pool2d_fwd(const backend::StridedView& out, const backend::StridedView& in,                       \
                               const backend::AdaptivePoolParams& p);                                                 \
  void adaptive_avg_pool2d_bwd(const backend::StridedView& gin, const backend::StridedView& gout,                     \
                               const backend::AdaptivePoolParams& p);

namespace gradstyle::cpu {
GS_POOL_KERNEL_DECLS
}  // namespace gradstyle::cpu

#if defined(GRADSTYLE_CUDA)
namespace gradstyle::cuda {
GS_POOL_KERNEL_DECLS
}  // namespace gradstyle::cuda
#endif
