#pragma once
// Internal: kernel entry points of the grid_sample family (bilinear sampling, zeros padding):
// gradstyle::cpu::X in src/cpu/grid_sample.cpp, gradstyle::cuda::X in cuda/ops/grid_sample.cu; op
// code (src/ops/grid_sample.cpp) calls GS_DISPATCH(device, X, args...). Every view passed here is
// dense (row-major contiguous) and f32 or f64; spatial tensors are NCHW planes, [planes, H, W] with
// planes = N*C. Kernels write every element of their output unless stated.
#include <cmath>
#include <cstdint>

#include "backend/kernels.hpp"
#include "gradstyle/core/host_device.hpp"  // GS_HD

namespace gradstyle::backend {

// grid_sample geometry: x [N, C, H, W], grid [N, Ho, Wo, 2] holding (x, y) in [-1, 1].
struct GridSampleParams {
  int64_t n = 0, c = 0, in_h = 0, in_w = 0, out_h = 0, out_w = 0;
  bool align_corners = false;
};

// ---- index math shared by the CPU and CUDA kernels ----

// grid_sample: normalised coordinate in [-1, 1] to pixel coordinate, and d(pixel)/d(coord).
template <class T>
GS_HD T grid_unnormalize(T coord, int64_t size, bool align_corners) {
  return align_corners ? (coord + T(1)) / T(2) * T(size - 1) : ((coord + T(1)) * T(size) - T(1)) / T(2);
}
template <class T>
GS_HD T grid_unnormalize_grad(int64_t size, bool align_corners) {
  return align_corners ? T(size - 1) / T(2) : T(size) / T(2);
}

// The four bilinear taps of one grid_sample point: corners (x0 + {0,1}, y0 + {0,1}) with
// fractional offsets fx, fy. Far outside the image (or for NaN) x0/y0 = -2 so that every tap is
// out of bounds and the float-to-int conversion stays defined.
template <class T>
struct GridTaps {
  int64_t x0, y0;
  T fx, fy;
};
template <class T>
GS_HD GridTaps<T> grid_taps(T gx, T gy, const GridSampleParams& p) {
  const T ix = grid_unnormalize<T>(gx, p.in_w, p.align_corners);
  const T iy = grid_unnormalize<T>(gy, p.in_h, p.align_corners);
  const T fx0 = std::floor(ix), fy0 = std::floor(iy);
  GridTaps<T> t;
  t.x0 = (fx0 > T(-2) && fx0 < T(p.in_w + 1)) ? int64_t(fx0) : -2;
  t.y0 = (fy0 > T(-2) && fy0 < T(p.in_h + 1)) ? int64_t(fy0) : -2;
  t.fx = ix - fx0;
  t.fy = iy - fy0;
  return t;
}

}  // namespace gradstyle::backend

#define GS_GRID_SAMPLE_KERNEL_DECLS                                                               \
  /* ---- grid_sample (bilinear, zeros padding) ---- */                                           \
  void grid_sample_fwd(const backend::StridedView& out, const backend::StridedView& in,           \
                       const backend::StridedView& grid, const backend::GridSampleParams& p);     \
  /* gin (zero-filled by the caller) += input gradient; ggrid = grid gradient; either view may */ \
  /* have null data (= not wanted) */                                                             \
  void grid_sample_bwd(const backend::StridedView& gin, const backend::StridedView& ggrid,        \
                       const backend::StridedView& gout, const backend::StridedView& in,          \
                       const backend::StridedView& grid, const backend::GridSampleParams& p);

namespace gradstyle::cpu {
GS_GRID_SAMPLE_KERNEL_DECLS
}  // namespace gradstyle::cpu

#if defined(GRADSTYLE_CUDA)
namespace gradstyle::cuda {
GS_GRID_SAMPLE_KERNEL_DECLS
}  // namespace gradstyle::cuda
#endif
