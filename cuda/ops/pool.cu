// CUDA pooling kernels (same contracts as src/cpu/pool.cpp). Forward: one thread per output
// element. Backward of avg / adaptive-avg pooling: one thread per INPUT element that gathers the
// windows covering it (deterministic, no atomics). The max-pool scatter uses atomics because its
// index list is arbitrary; with non-overlapping windows (kernel == stride, the common case) no two
// outputs share an input and the result is deterministic too.
#include <cmath>

#include "../common/grid_stride.cuh"
#include "backend/pool_kernels.hpp"

namespace gradstyle::cuda {

using backend::AdaptivePoolParams;
using backend::float_dispatch;
using backend::Pool2dParams;
using backend::StridedView;
using sampling::dptr;

namespace {

template <class T>
__global__ void avg_pool_fwd_k(T* y, const T* x, Pool2dParams p, int64_t n) {
  const T inv = T(1) / T(p.kh * p.kw);
  GS_SAMPLING_LOOP(i, n) {
    const int64_t ox = i % p.out_w, oy = (i / p.out_w) % p.out_h, pl = i / (p.out_w * p.out_h);
    int64_t y0 = oy * p.sh - p.ph, x0 = ox * p.sw - p.pw;
    const int64_t y1 = min(y0 + p.kh, p.in_h), x1 = min(x0 + p.kw, p.in_w);
    y0 = max(y0, int64_t(0));
    x0 = max(x0, int64_t(0));
    const T* xp = x + pl * p.in_h * p.in_w;
    T acc = 0;
    for (int64_t iy = y0; iy < y1; ++iy)
      for (int64_t ix = x0; ix < x1; ++ix) acc += xp[iy * p.in_w + ix];
    y[i] = acc * inv;
  }
}

// Output indices o along an axis whose window [o*s - pad, o*s - pad + k) contains input index i.
__device__ __forceinline__ void covering(int64_t i, int64_t k, int64_t s, int64_t pad, int64_t out, int64_t& lo,
                                         int64_t& hi) {
  const int64_t a = i + pad - k + 1;  // o*s >= a
  lo = a <= 0 ? 0 : (a + s - 1) / s;
  hi = min((i + pad) / s, out - 1);
}

template <class T>
__global__ void avg_pool_bwd_k(T* gin, const T* g, Pool2dParams p, int64_t n) {
  const T inv = T(1) / T(p.kh * p.kw);
  GS_SAMPLING_LOOP(i, n) {
    const int64_t ix = i % p.in_w, iy = (i / p.in_w) % p.in_h, pl = i / (p.in_w * p.in_h);
    int64_t oy0, oy1, ox0, ox1;
    covering(iy, p.kh, p.sh, p.ph, p.out_h, oy0, oy1);
    covering(ix, p.kw, p.sw, p.pw, p.out_w, ox0, ox1);
    const T* gp = g + pl * p.out_h * p.out_w;
    T acc = 0;
    for (int64_t oy = oy0; oy <= oy1; ++oy)
      for (int64_t ox = ox0; ox <= ox1; ++ox) acc += gp[oy * p.out_w + ox];
    gin[i] = acc * inv;
  }
}

template <class T>
__global__ void max_pool_fwd_k(T* y, int64_t* ind, const T* x, Pool2dParams p, int64_t n) {
  GS_SAMPLING_LOOP(i, n) {
    const int64_t ox = i % p.out_w, oy = (i / p.out_w) % p.out_h, pl = i / (p.out_w * p.out_h);
    const int64_t y0 = max(oy * p.sh - p.ph, int64_t(0)), y1 = min(oy * p.sh - p.ph + p.kh, p.in_h);
    const int64_t x0 = max(ox * p.sw - p.pw, int64_t(0)), x1 = min(ox * p.sw - p.pw + p.kw, p.in_w);
    const T* xp = x + pl * p.in_h * p.in_w;
    T best = -INFINITY;
    int64_t best_i = y0 * p.in_w + x0;
    for (int64_t iy = y0; iy < y1; ++iy)
      for (int64_t ix = x0; ix < x1; ++ix) {
        const T v = xp[iy * p.in_w + ix];
        if (v > best || isnan(v)) {  // first maximum wins ties; NaN wins (the CPU's rule)
          best = v;
          best_i = iy * p.in_w + ix;
        }
      }
    y[i] = best;
    if (ind) ind[i] = best_i;
  }
}

template <class T>
__global__ void gather_k(T* y, const T* x, const int64_t* ind, int64_t in_size, int64_t out_size, int64_t n) {
  GS_SAMPLING_LOOP(i, n) y[i] = x[(i / out_size) * in_size + ind[i]];
}

template <class T>
__global__ void scatter_k(T* gin, const T* g, const int64_t* ind, int64_t in_size, int64_t out_size, int64_t n) {
  GS_SAMPLING_LOOP(i, n) atomicAdd(gin + (i / out_size) * in_size + ind[i], g[i]);
}

template <class T>
__global__ void adaptive_fwd_k(T* y, const T* x, AdaptivePoolParams p, int64_t n) {
  using backend::adaptive_end;
  using backend::adaptive_start;
  GS_SAMPLING_LOOP(i, n) {
    const int64_t ox = i % p.out_w, oy = (i / p.out_w) % p.out_h, pl = i / (p.out_w * p.out_h);
    const int64_t y0 = adaptive_start(oy, p.in_h, p.out_h), y1 = adaptive_end(oy, p.in_h, p.out_h);
    const int64_t x0 = adaptive_start(ox, p.in_w, p.out_w), x1 = adaptive_end(ox, p.in_w, p.out_w);
    const T* xp = x + pl * p.in_h * p.in_w;
    T acc = 0;
    for (int64_t iy = y0; iy < y1; ++iy)
      for (int64_t ix = x0; ix < x1; ++ix) acc += xp[iy * p.in_w + ix];
    y[i] = acc / T((y1 - y0) * (x1 - x0));
  }
}

// Bins o of an axis that contain input index i: o in [floor(i*Out/In), ceil((i+1)*Out/In) - 1].
__device__ __forceinline__ void adaptive_covering(int64_t i, int64_t in, int64_t out, int64_t& lo, int64_t& hi) {
  lo = (i * out) / in;
  hi = min(((i + 1) * out + in - 1) / in - 1, out - 1);
}

template <class T>
__global__ void adaptive_bwd_k(T* gin, const T* g, AdaptivePoolParams p, int64_t n) {
  using backend::adaptive_end;
  using backend::adaptive_start;
  GS_SAMPLING_LOOP(i, n) {
    const int64_t ix = i % p.in_w, iy = (i / p.in_w) % p.in_h, pl = i / (p.in_w * p.in_h);
    int64_t oy0, oy1, ox0, ox1;
    adaptive_covering(iy, p.in_h, p.out_h, oy0, oy1);
    adaptive_covering(ix, p.in_w, p.out_w, ox0, ox1);
    const T* gp = g + pl * p.out_h * p.out_w;
    T acc = 0;
    for (int64_t oy = oy0; oy <= oy1; ++oy) {
      const int64_t hy = adaptive_end(oy, p.in_h, p.out_h) - adaptive_start(oy, p.in_h, p.out_h);
      for (int64_t ox = ox0; ox <= ox1; ++ox) {
        const int64_t hx = adaptive_end(ox, p.in_w, p.out_w) - adaptive_start(ox, p.in_w, p.out_w);
        acc += gp[oy * p.out_w + ox] / T(hy * hx);
      }
    }
    gin[i] = acc;
  }
}

}  // namespace

void avg_pool2d_fwd(const StridedView& out, const StridedView& in, const Pool2dParams& p) {
  float_dispatch(in.dtype, "avg_pool2d", [&](auto tag) {
    using T = decltype(tag);
    GS_SAMPLING_LAUNCH(avg_pool_fwd_k<T>, out.numel, static_cast<T*>(out.data), static_cast<const T*>(in.data), p,
                       out.numel);
  });
}

void avg_pool2d_bwd(const StridedView& gin, const StridedView& gout, const Pool2dParams& p) {
  float_dispatch(gout.dtype, "avg_pool2d_backward", [&](auto tag) {
    using T = decltype(tag);
    GS_SAMPLING_LAUNCH(avg_pool_bwd_k<T>, gin.numel, static_cast<T*>(gin.data), static_cast<const T*>(gout.data), p,
                       gin.numel);
  });
}

void max_pool2d_fwd(const StridedView& out, const StridedView& idx, const StridedView& in, const Pool2dParams& p) {
  float_dispatch(in.dtype, "max_pool2d", [&](auto tag) {
    using T = decltype(tag);
    GS_SAMPLING_LAUNCH(max_pool_fwd_k<T>, out.numel, static_cast<T*>(out.data), static_cast<int64_t*>(idx.data),
                       static_cast<const T*>(in.data), p, out.numel);
  });
}

void plane_gather(const StridedView& out, const StridedView& in, const StridedView& idx, int64_t planes,
                  int64_t in_size, int64_t out_size) {
  float_dispatch(in.dtype, "plane_gather", [&](auto tag) {
    using T = decltype(tag);
    const int64_t n = planes * out_size;
    GS_SAMPLING_LAUNCH(gather_k<T>, n, static_cast<T*>(out.data), static_cast<const T*>(in.data),
                       static_cast<const int64_t*>(idx.data), in_size, out_size, n);
  });
}

void plane_scatter(const StridedView& gin, const StridedView& gout, const StridedView& idx, int64_t planes,
                   int64_t in_size, int64_t out_size) {
  float_dispatch(gout.dtype, "plane_scatter", [&](auto tag) {
    using T = decltype(tag);
    GS_CUDA_CHECK(cudaMemsetAsync(gin.data, 0, size_t(planes * in_size) * sizeof(T), stream()));
    const int64_t n = planes * out_size;
    GS_SAMPLING_LAUNCH(scatter_k<T>, n, static_cast<T*>(gin.data), static_cast<const T*>(gout.data),
                       static_cast<const int64_t*>(idx.data), in_size, out_size, n);
  });
}

void adaptive_avg_pool2d_fwd(const StridedView& out, const StridedView& in, const AdaptivePoolParams& p) {
  float_dispatch(in.dtype, "adaptive_avg_pool2d", [&](auto tag) {
    using T = decltype(tag);
    GS_SAMPLING_LAUNCH(adaptive_fwd_k<T>, out.numel, static_cast<T*>(out.data), static_cast<const T*>(in.data), p,
                       out.numel);
  });
}

void adaptive_avg_pool2d_bwd(const StridedView& gin, const StridedView& gout, const AdaptivePoolParams& p) {
  float_dispatch(gout.dtype, "adaptive_avg_pool2d_backward", [&](auto tag) {
    using T = decltype(tag);
    GS_SAMPLING_LAUNCH(adaptive_bwd_k<T>, gin.numel, static_cast<T*>(gin.data), static_cast<const T*>(gout.data), p,
                       gin.numel);
  });
}

}  // namespace gradstyle::cuda
