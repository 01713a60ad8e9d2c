#pragma once
// Internal: the kernel entry points of the convolution family. Like backend/kernels.hpp
// every function exists as gradstyle::cpu::X (src/cpu/conv.cpp: im2col + Eigen GEMM, OpenMP) and
// gradstyle::cuda::X (cuda/cudnn/conv.cpp: cuDNN, with a direct-kernel fallback in
// cuda/ops/conv_fallback.cu); op code calls GS_DISPATCH(device, X, ...).
//
// All three kernels describe ONE convolution y = conv2d(x, w) by its full geometry (ConvGeom), so
// conv2d, its two gradients and conv_transpose2d (= the data gradient) share the same code:
//   x: [n, c, h, w]   w: [k, c/groups, r, s]   y: [n, k, oh, ow]
//   y[b, o, i, j] = sum_{ci, p, q} w[o, ci, p, q] * x[b, g*c/groups + ci, i*sh - ph + p*dh, j*sw - pw + q*dw]
// (out-of-range x reads are zeros; g = o / (k/groups)). oh/ow are explicit: they need not be the
// natural conv output size (conv_transpose2d with output_padding uses a larger h than the natural
// inverse), the kernels only rely on the formula above.
// Every view is dense (contiguous) and all views have the same dtype (f32 or f64).
#include "backend/kernels.hpp"

namespace gradstyle::backend {

struct ConvGeom {
  int64_t n = 0, c = 0, h = 0, w = 0;  // input
  int64_t k = 0, r = 0, s = 0;         // weight [k, c/groups, r, s]
  int64_t oh = 0, ow = 0;              // output
  int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dil_h = 1, dil_w = 1, groups = 1;
};

}  // namespace gradstyle::backend

#define GS_CONV_KERNEL_DECLS                                                                            \
  /* y = conv(x, w) (+ bias[k] when bias.data != nullptr); y is overwritten */                           \
  void conv2d_forward(const backend::ConvGeom& g, const backend::StridedView& y,                          \
                      const backend::StridedView& x, const backend::StridedView& w,                       \
                      const backend::StridedView& bias);                                                  \
  /* dx = the adjoint of conv applied to dy, i.e. conv_transpose2d(dy, w) (+ bias[c] when given); */      \
  /* dx is overwritten */                                                                                 \
  void conv2d_backward_data(const backend::ConvGeom& g, const backend::StridedView& dx,                   \
                            const backend::StridedView& dy, const backend::StridedView& w,                \
                            const backend::StridedView& bias);                                            \
  /* dw = sum over the batch of the correlation of x with dy (the weight gradient); dw overwritten */    \
  void conv2d_backward_filter(const backend::ConvGeom& g, const backend::StridedView& dw,                 \
                              const backend::StridedView& x, const backend::StridedView& dy);

namespace gradstyle::cpu {
GS_CONV_KERNEL_DECLS
// Work (multiply-adds per call) below which the CPU conv kernels run on one thread: an OpenMP
// fork/join costs more than a tiny conv, and far more on an oversubscribed machine. Thread count
// = min(OpenMP max threads, work / this, work items). Tests lower it to reach every tiling path.
int64_t conv_min_parallel_macs();
void set_conv_min_parallel_macs(int64_t macs);  // clamped to >= 1
// Winograd F(2x2, 3x3) forward (src/cpu/conv_winograd.cpp), used by conv2d_forward for float32
// 3x3 stride-1 undilated convs with >= 8 channels per group in and out (natural output size).
// The switch exists for tests (compare with im2col) and benchmarks; on by default.
bool conv_winograd_enabled();
void set_conv_winograd_enabled(bool on);
bool conv_winograd_applies(const backend::ConvGeom& g, DType dt);
void conv2d_forward_winograd(const backend::ConvGeom& g, const backend::StridedView& y, const backend::StridedView& x,
                             const backend::StridedView& w, const backend::StridedView& bias, int nthreads);
}  // namespace gradstyle::cpu

#if defined(GRADSTYLE_CUDA)
namespace gradstyle::cuda {
GS_CONV_KERNEL_DECLS
// The fallback used when cuDNN refuses a configuration (CUDNN_STATUS_NOT_SUPPORTED): plain
// direct kernels, one thread per output element (cuda/ops/conv_fallback.cu). Same contracts.
namespace fallback {
GS_CONV_KERNEL_DECLS
}  // namespace fallback
}  // namespace gradstyle::cuda
#endif
