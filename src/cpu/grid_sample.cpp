// CPU grid_sample (bilinear, zeros padding) and its gradients w.r.t. the input and the grid.
// Forward: parallel over (n, c) planes, the four taps recomputed per plane (cheap next to the
// memory traffic). Backward: parallel over samples n; within a sample channels run outermost so
// each plane is walked in order, and the grid gradient is accumulated per output pixel.
#include <cmath>
#include <vector>

#include "backend/grid_sample_kernels.hpp"

namespace gradstyle::cpu {

using backend::float_dispatch;
using backend::GridSampleParams;
using backend::StridedView;

namespace {

template <class T>
inline T tap(const T* plane, int64_t y, int64_t x, const GridSampleParams& p) {
  return (y >= 0 && y < p.in_h && x >= 0 && x < p.in_w) ? plane[y * p.in_w + x] : T(0);
}

}  // namespace

void grid_sample_fwd(const StridedView& out, const StridedView& in, const StridedView& grid,
                     const GridSampleParams& p) {
  float_dispatch(in.dtype, "grid_sample", [&](auto tag) {
    using T = decltype(tag);
    const T* x = static_cast<const T*>(in.data);
    const T* gr = static_cast<const T*>(grid.data);
    T* y = static_cast<T*>(out.data);
    const int64_t hw_in = p.in_h * p.in_w, hw_out = p.out_h * p.out_w;
#pragma omp parallel for if (out.numel > (1 << 14)) schedule(static)
    for (int64_t nc = 0; nc < p.n * p.c; ++nc) {
      const int64_t n = nc / p.c;
      const T* xp = x + nc * hw_in;
      const T* gp = gr + n * hw_out * 2;
      T* yp = y + nc * hw_out;
      for (int64_t j = 0; j < hw_out; ++j) {
        const backend::GridTaps<T> t = backend::grid_taps<T>(gp[2 * j], gp[2 * j + 1], p);
        const T wx1 = t.fx, wx0 = T(1) - t.fx, wy1 = t.fy, wy0 = T(1) - t.fy;
        yp[j] = tap(xp, t.y0, t.x0, p) * (wx0 * wy0) + tap(xp, t.y0, t.x0 + 1, p) * (wx1 * wy0) +
                tap(xp, t.y0 + 1, t.x0, p) * (wx0 * wy1) + tap(xp, t.y0 + 1, t.x0 + 1, p) * (wx1 * wy1);
      }
    }
  });
}

void grid_sample_bwd(const StridedView& gin, const StridedView& ggrid, const StridedView& gout, const StridedView& in,
                     const StridedView& grid, const GridSampleParams& p) {
  float_dispatch(in.dtype, "grid_sample_backward", [&](auto tag) {
    using T = decltype(tag);
    const T* x = static_cast<const T*>(in.data);
    const T* gr = static_cast<const T*>(grid.data);
    const T* go = static_cast<const T*>(gout.data);
    T* gx = static_cast<T*>(gin.data);    // may be null
    T* gg = static_cast<T*>(ggrid.data);  // may be null
    const int64_t hw_in = p.in_h * p.in_w, hw_out = p.out_h * p.out_w;
    const T mult_x = backend::grid_unnormalize_grad<T>(p.in_w, p.align_corners);
    const T mult_y = backend::grid_unnormalize_grad<T>(p.in_h, p.align_corners);
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < p.n; ++n) {
      const T* gp = gr + n * hw_out * 2;
      std::vector<backend::GridTaps<T>> taps(static_cast<size_t>(hw_out));
      for (int64_t j = 0; j < hw_out; ++j) taps[size_t(j)] = backend::grid_taps<T>(gp[2 * j], gp[2 * j + 1], p);
      std::vector<T> acc(gg ? size_t(2 * hw_out) : 0, T(0));  // d/d(ix), d/d(iy) per output pixel
      for (int64_t c = 0; c < p.c; ++c) {
        const T* xp = x + (n * p.c + c) * hw_in;
        const T* gop = go + (n * p.c + c) * hw_out;
        T* gxp = gx ? gx + (n * p.c + c) * hw_in : nullptr;
        for (int64_t j = 0; j < hw_out; ++j) {
          const backend::GridTaps<T>& t = taps[size_t(j)];
          const T g = gop[j];
          const T wx1 = t.fx, wx0 = T(1) - t.fx, wy1 = t.fy, wy0 = T(1) - t.fy;
          if (gxp) {
            auto add = [&](int64_t yy, int64_t xx, T w) {
              if (yy >= 0 && yy < p.in_h && xx >= 0 && xx < p.in_w) gxp[yy * p.in_w + xx] += w * g;
            };
            add(t.y0, t.x0, wx0 * wy0);
            add(t.y0, t.x0 + 1, wx1 * wy0);
            add(t.y0 + 1, t.x0, wx0 * wy1);
            add(t.y0 + 1, t.x0 + 1, wx1 * wy1);
          }
          if (gg) {
            const T v00 = tap(xp, t.y0, t.x0, p), v01 = tap(xp, t.y0, t.x0 + 1, p);
            const T v10 = tap(xp, t.y0 + 1, t.x0, p), v11 = tap(xp, t.y0 + 1, t.x0 + 1, p);
            acc[size_t(2 * j)] += g * ((v01 - v00) * wy0 + (v11 - v10) * wy1);
            acc[size_t(2 * j + 1)] += g * ((v10 - v00) * wx0 + (v11 - v01) * wx1);
          }
        }
      }
      if (gg)
        for (int64_t j = 0; j < hw_out; ++j) {
          gg[(n * hw_out + j) * 2] = acc[size_t(2 * j)] * mult_x;
          gg[(n * hw_out + j) * 2 + 1] = acc[size_t(2 * j + 1)] * mult_y;
        }
    }
  });
}

}  // namespace gradstyle::cpu
