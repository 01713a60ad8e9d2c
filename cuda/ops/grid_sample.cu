// CUDA grid_sample (bilinear, zeros padding), same contracts as src/cpu/grid_sample.cpp.
// Forward: one thread per output element (n, c, pixel); consecutive threads walk consecutive output
// pixels, so writes are coalesced and the taps of neighbouring pixels share cache lines.
// Backward: one thread per (n, group of 8 channels, output pixel): it computes the taps once,
// scatters g * weight onto the four input taps with atomics (the input gradient of an arbitrary
// grid is a scatter; summation order may vary between runs) and accumulates its channels' share
// of the grid gradient in registers, added with one atomic per group.
#include "../common/grid_stride.cuh"
#include "backend/grid_sample_kernels.hpp"

namespace gradstyle::cuda {

using backend::float_dispatch;
using backend::GridSampleParams;
using backend::GridTaps;
using backend::StridedView;

namespace {

template <class T>
__device__ __forceinline__ T tap(const T* plane, int64_t y, int64_t x, const GridSampleParams& p) {
  return (y >= 0 && y < p.in_h && x >= 0 && x < p.in_w) ? plane[y * p.in_w + x] : T(0);
}

template <class T>
__global__ void grid_sample_fwd_k(T* out, const T* x, const T* grid, GridSampleParams p, int64_t n) {
  const int64_t hw_out = p.out_h * p.out_w, hw_in = p.in_h * p.in_w;
  GS_SAMPLING_LOOP(i, n) {
    const int64_t j = i % hw_out, nc = i / hw_out, b = nc / p.c;
    const T* g = grid + (b * hw_out + j) * 2;
    const GridTaps<T> t = backend::grid_taps<T>(g[0], g[1], p);
    const T* xp = x + nc * hw_in;
    const T wx1 = t.fx, wx0 = T(1) - t.fx, wy1 = t.fy, wy0 = T(1) - t.fy;
    out[i] = tap(xp, t.y0, t.x0, p) * (wx0 * wy0) + tap(xp, t.y0, t.x0 + 1, p) * (wx1 * wy0) +
             tap(xp, t.y0 + 1, t.x0, p) * (wx0 * wy1) + tap(xp, t.y0 + 1, t.x0 + 1, p) * (wx1 * wy1);
  }
}

template <class T>
__device__ __forceinline__ void add_tap(T* plane, int64_t y, int64_t x, T v, const GridSampleParams& p) {
  if (y >= 0 && y < p.in_h && x >= 0 && x < p.in_w) atomicAdd(plane + y * p.in_w + x, v);
}

// Channels handled by one backward thread. One thread per (n, pixel) looping over all C = 512
// channels would give only N*Ho*Wo = 8192 threads at [8,512,32,32] (a quarter of one wave on an
// H100) with a 512-long dependent loop; groups of 8 channels give 64x more threads, at the cost of
// C/8 atomic adds per grid-gradient element.
constexpr int64_t kChanGroup = 8;

template <class T>
__global__ void grid_sample_bwd_k(T* gin, T* ggrid, const T* gout, const T* x, const T* grid, GridSampleParams p,
                                  int64_t n) {
  const int64_t hw_out = p.out_h * p.out_w, hw_in = p.in_h * p.in_w;
  const int64_t groups = (p.c + kChanGroup - 1) / kChanGroup;
  const T mult_x = backend::grid_unnormalize_grad<T>(p.in_w, p.align_corners);
  const T mult_y = backend::grid_unnormalize_grad<T>(p.in_h, p.align_corners);
  GS_SAMPLING_LOOP(i, n) {  // i = (b * groups + group) * hw_out + j: consecutive threads, consecutive pixels
    const int64_t j = i % hw_out, bg = i / hw_out, group = bg % groups, b = bg / groups;
    const int64_t pix = b * hw_out + j;
    const GridTaps<T> t = backend::grid_taps<T>(grid[pix * 2], grid[pix * 2 + 1], p);
    const T wx1 = t.fx, wx0 = T(1) - t.fx, wy1 = t.fy, wy0 = T(1) - t.fy;
    T gix = 0, giy = 0;
    const int64_t c_end = min(p.c, (group + 1) * kChanGroup);
    for (int64_t c = group * kChanGroup; c < c_end; ++c) {
      const int64_t plane = b * p.c + c;
      const T g = gout[plane * hw_out + j];
      if (gin) {
        T* gp = gin + plane * hw_in;
        add_tap(gp, t.y0, t.x0, wx0 * wy0 * g, p);
        add_tap(gp, t.y0, t.x0 + 1, wx1 * wy0 * g, p);
        add_tap(gp, t.y0 + 1, t.x0, wx0 * wy1 * g, p);
        add_tap(gp, t.y0 + 1, t.x0 + 1, wx1 * wy1 * g, p);
      }
      if (ggrid) {
        const T* xp = x + plane * hw_in;
        const T v00 = tap(xp, t.y0, t.x0, p), v01 = tap(xp, t.y0, t.x0 + 1, p);
        const T v10 = tap(xp, t.y0 + 1, t.x0, p), v11 = tap(xp, t.y0 + 1, t.x0 + 1, p);
        gix += g * ((v01 - v00) * wy0 + (v11 - v10) * wy1);
        giy += g * ((v10 - v00) * wx0 + (v11 - v01) * wx1);
      }
    }
    if (ggrid) {
      if (groups == 1) {
        ggrid[pix * 2] = gix * mult_x;
        ggrid[pix * 2 + 1] = giy * mult_y;
      } else {
        atomicAdd(ggrid + pix * 2, gix * mult_x);
        atomicAdd(ggrid + pix * 2 + 1, giy * mult_y);
      }
    }
  }
}

}  // namespace

void grid_sample_fwd(const StridedView& out, const StridedView& in, const StridedView& grid,
                     const GridSampleParams& p) {
  float_dispatch(in.dtype, "grid_sample", [&](auto tag) {
    using T = decltype(tag);
    GS_SAMPLING_LAUNCH(grid_sample_fwd_k<T>, out.numel, static_cast<T*>(out.data), static_cast<const T*>(in.data),
                       static_cast<const T*>(grid.data), p, out.numel);
  });
}

void grid_sample_bwd(const StridedView& gin, const StridedView& ggrid, const StridedView& gout, const StridedView& in,
                     const StridedView& grid, const GridSampleParams& p) {
  float_dispatch(in.dtype, "grid_sample_backward", [&](auto tag) {
    using T = decltype(tag);
    const int64_t groups = (p.c + kChanGroup - 1) / kChanGroup;
    if (ggrid.data && groups > 1)  // partial sums of the channel groups are added atomically
      GS_CUDA_CHECK(cudaMemsetAsync(ggrid.data, 0, size_t(ggrid.numel) * sizeof(T), stream()));
    const int64_t n = p.n * groups * p.out_h * p.out_w;
    GS_SAMPLING_LAUNCH(grid_sample_bwd_k<T>, n, static_cast<T*>(gin.data), static_cast<T*>(ggrid.data),
                       static_cast<const T*>(gout.data), static_cast<const T*>(in.data),
                       static_cast<const T*>(grid.data), p, n);
  });
}

}  // namespace gradstyle::cuda
