// CUDA upfirdn2d (correlation form, contract in src/backend/upfirdn2d_kernels.hpp).
//
// One thread per output sample, visiting only the polyphase taps that land on real input
// samples: along each axis the taps t with (o*down - pad0 + t) divisible by up, starting at
// t0 = (-(o*down - pad0)) mod up and stepping by up. Consecutive threads handle consecutive
// output columns, so the input reads of a warp are (strided-)contiguous and hit L1; the filter
// (at most a few dozen taps) stays in the read-only cache. NVIDIA's shared-memory tiled
// specialisations (PERFORMANCE.md 5.2) are the next step if profiling asks for it.
#include "../common/launch.cuh"
#include "backend/upfirdn2d_kernels.hpp"

namespace gradstyle::cuda {

using backend::StridedView;
using backend::UpFirDnGeom;

namespace {

__device__ __forceinline__ int64_t pos_mod(int64_t a, int64_t b) { return ((a % b) + b) % b; }

template <class T>
__global__ void upfirdn_kernel(UpFirDnGeom g, T* __restrict__ y, const T* __restrict__ x, const T* __restrict__ f) {
  const int64_t total = g.planes * g.oh * g.ow;
  GS_GRID_LOOP(i, total) {
    const int64_t ox = i % g.ow;
    const int64_t t = i / g.ow;
    const int64_t oy = t % g.oh;
    const int64_t p = t / g.oh;
    const T* xp = x + p * g.h * g.w;
    const int64_t by = oy * g.down_y - g.pad_y0, bx = ox * g.down_x - g.pad_x0;
    const int64_t ky0 = pos_mod(-by, g.up_y), kx0 = pos_mod(-bx, g.up_x);
    T acc = T(0);
    for (int64_t ky = ky0; ky < g.kh; ky += g.up_y) {
      const int64_t u = by + ky;
      if (u < 0) continue;
      const int64_t iy = u / g.up_y;
      if (iy >= g.h) break;
      const T* xr = xp + iy * g.w;
      const T* fr = f + ky * g.kw;
      for (int64_t kx = kx0; kx < g.kw; kx += g.up_x) {
        const int64_t v = bx + kx;
        if (v < 0) continue;
        const int64_t ix = v / g.up_x;
        if (ix >= g.w) break;
        acc += fr[kx] * xr[ix];
      }
    }
    y[i] = acc;
  }
}

}  // namespace

void upfirdn2d(const UpFirDnGeom& g, const StridedView& y, const StridedView& x, const StridedView& f) {
  GS_CHECK(y.dtype == DType::f32 || y.dtype == DType::f64, DTypeError, "upfirdn2d (cuda): unsupported dtype ",
           dtype_name(y.dtype));
  const int64_t total = g.planes * g.oh * g.ow;
  if (total == 0) return;
  if (y.dtype == DType::f32)
    upfirdn_kernel<float><<<grid_for(total), kBlock, 0, stream()>>>(g, static_cast<float*>(y.data),
                                                                     static_cast<const float*>(x.data),
                                                                     static_cast<const float*>(f.data));
  else
    upfirdn_kernel<double><<<grid_for(total), kBlock, 0, stream()>>>(g, static_cast<double*>(y.data),
                                                                      static_cast<const double*>(x.data),
                                                                      static_cast<const double*>(f.data));
  GS_CUDA_CHECK_LAUNCH("upfirdn_kernel");
}

}  // namespace gradstyle::cuda
