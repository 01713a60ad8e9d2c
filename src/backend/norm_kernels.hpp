#pragma once
// Internal: kernel entry points of the norm family (per-channel moments, affine maps and PReLU
// behind batch/instance norm): gradstyle::cpu::X in src/cpu/norm.cpp, gradstyle::cuda::X in
// cuda/ops/norm.cu; op code (src/ops/norm.cpp) calls GS_DISPATCH(device, X, args...). Every view
// passed here is dense (row-major contiguous) and f32 or f64; spatial tensors are NCHW planes,
// [planes, H, W] with planes = N*C. Kernels write every element of their output unless stated.
#include <cmath>
#include <cstdint>

#include "backend/kernels.hpp"

namespace gradstyle::backend {

// Per-channel kernels view x as [N, C, S] (S = product of the dims after the channel dim).
struct ChannelParams {
  int64_t n = 0, c = 0, s = 1;
};

}  // namespace gradstyle::backend

#define GS_NORM_KERNEL_DECLS                                                                                           \
  /* ---- per-channel kernels, x viewed as [N, C, S]; vectors are dense [C] ---- */                                    \
  /* mean[c] and biased variance var[c] over (N, S) */                                                                 \
  void channel_moments(const backend::StridedView& mean, const backend::StridedView& var,                              \
                       const backend::StridedView& x, const backend::ChannelParams& p);                                \
  /* sum_g[c] = sum g, sum_gx[c] = sum g * (x - center[c]) over (N, S) */                                              \
  void channel_grad_sums(const backend::StridedView& sum_g, const backend::StridedView& sum_gx,                        \
                         const backend::StridedView& g, const backend::StridedView& x,                                 \
                         const backend::StridedView& center, const backend::ChannelParams& p);                         \
  /* out = x * scale[c] + shift[c] */                                                                                  \
  void channel_affine(const backend::StridedView& out, const backend::StridedView& x,                                  \
                      const backend::StridedView& scale, const backend::StridedView& shift,                            \
                      const backend::ChannelParams& p);                                                                \
  /* out = a * sa[c] + b * sb[c] + shift[c] */                                                                         \
  void channel_affine2(const backend::StridedView& out, const backend::StridedView& a, const backend::StridedView& sa, \
                       const backend::StridedView& b, const backend::StridedView& sb,                                  \
                       const backend::StridedView& shift, const backend::ChannelParams& p);                            \
  /* out = x > 0 ? x : w[c] * x  (w has C entries, or 1 entry shared by all channels) */                               \
  void prelu_fwd(const backend::StridedView& out, const backend::StridedView& x, const backend::StridedView& w,        \
                 const backend::ChannelParams& p);

namespace gradstyle::cpu {
GS_NORM_KERNEL_DECLS
}  // namespace gradstyle::cpu

#if defined(GRADSTYLE_CUDA)
namespace gradstyle::cuda {
GS_NORM_KERNEL_DECLS
}  // namespace gradstyle::cuda
#endif
