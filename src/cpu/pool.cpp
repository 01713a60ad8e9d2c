// CPU pooling kernels: avg / max / adaptive-avg pooling and the plane gather/scatter used by the
// max-pool gradient. Plain loops, OpenMP-parallel over planes (N*C); each plane is independent,
// so backward scatters need no atomics and are deterministic.
#include <algorithm>
#include <cmath>
#include <limits>

#include "backend/pool_kernels.hpp"

namespace gradstyle::cpu {

using backend::AdaptivePoolParams;
using backend::float_dispatch;
using backend::Pool2dParams;
using backend::StridedView;

namespace {
constexpr int64_t kGrain = 1 << 14;  // elements below which one thread is faster

template <class T>
T* ptr(const StridedView& v) {
  return static_cast<T*>(v.data);
}
}  // namespace

void avg_pool2d_fwd(const StridedView& out, const StridedView& in, const Pool2dParams& p) {
  float_dispatch(in.dtype, "avg_pool2d", [&](auto tag) {
    using T = decltype(tag);
    const T* x = ptr<T>(in);
    T* y = ptr<T>(out);
    // count_include_pad with ceil_mode = false: every window lies inside the padded input, so the
    // divisor is always kh*kw.
    const T inv = T(1) / T(p.kh * p.kw);
#pragma omp parallel for if (out.numel > kGrain) schedule(static)
    for (int64_t pl = 0; pl < p.planes; ++pl) {
      const T* xp = x + pl * p.in_h * p.in_w;
      T* yp = y + pl * p.out_h * p.out_w;
      for (int64_t oy = 0; oy < p.out_h; ++oy) {
        int64_t y0 = oy * p.sh - p.ph, y1 = std::min(y0 + p.kh, p.in_h);
        y0 = std::max<int64_t>(y0, 0);
        for (int64_t ox = 0; ox < p.out_w; ++ox) {
          int64_t x0 = ox * p.sw - p.pw, x1 = std::min(x0 + p.kw, p.in_w);
          x0 = std::max<int64_t>(x0, 0);
          T acc = 0;
          for (int64_t iy = y0; iy < y1; ++iy)
            for (int64_t ix = x0; ix < x1; ++ix) acc += xp[iy * p.in_w + ix];
          yp[oy * p.out_w + ox] = acc * inv;
        }
      }
    }
  });
}

void avg_pool2d_bwd(const StridedView& gin, const StridedView& gout, const Pool2dParams& p) {
  float_dispatch(gout.dtype, "avg_pool2d_backward", [&](auto tag) {
    using T = decltype(tag);
    const T* g = ptr<T>(gout);
    T* gi = ptr<T>(gin);
    const T inv = T(1) / T(p.kh * p.kw);
#pragma omp parallel for if (gin.numel > kGrain) schedule(static)
    for (int64_t pl = 0; pl < p.planes; ++pl) {
      T* gp = gi + pl * p.in_h * p.in_w;
      const T* go = g + pl * p.out_h * p.out_w;
      for (int64_t i = 0; i < p.in_h * p.in_w; ++i) gp[i] = T(0);
      for (int64_t oy = 0; oy < p.out_h; ++oy) {
        int64_t y0 = oy * p.sh - p.ph, y1 = std::min(y0 + p.kh, p.in_h);
        y0 = std::max<int64_t>(y0, 0);
        for (int64_t ox = 0; ox < p.out_w; ++ox) {
          int64_t x0 = ox * p.sw - p.pw, x1 = std::min(x0 + p.kw, p.in_w);
          x0 = std::max<int64_t>(x0, 0);
          const T v = go[oy * p.out_w + ox] * inv;
          for (int64_t iy = y0; iy < y1; ++iy)
            for (int64_t ix = x0; ix < x1; ++ix) gp[iy * p.in_w + ix] += v;
        }
      }
    }
  });
}

void max_pool2d_fwd(const StridedView& out, const StridedView& idx, const StridedView& in, const Pool2dParams& p) {
  float_dispatch(in.dtype, "max_pool2d", [&](auto tag) {
    using T = decltype(tag);
    const T* x = ptr<T>(in);
    T* y = ptr<T>(out);
    int64_t* ind = ptr<int64_t>(idx);
#pragma omp parallel for if (out.numel > kGrain) schedule(static)
    for (int64_t pl = 0; pl < p.planes; ++pl) {
      const T* xp = x + pl * p.in_h * p.in_w;
      for (int64_t oy = 0; oy < p.out_h; ++oy) {
        int64_t y0 = std::max<int64_t>(oy * p.sh - p.ph, 0), y1 = std::min(oy * p.sh - p.ph + p.kh, p.in_h);
        for (int64_t ox = 0; ox < p.out_w; ++ox) {
          int64_t x0 = std::max<int64_t>(ox * p.sw - p.pw, 0), x1 = std::min(ox * p.sw - p.pw + p.kw, p.in_w);
          // PyTorch's rule: strictly greater replaces (so the first maximum wins ties); NaN wins.
          T best = -std::numeric_limits<T>::infinity();
          int64_t best_i = y0 * p.in_w + x0;
          for (int64_t iy = y0; iy < y1; ++iy)
            for (int64_t ix = x0; ix < x1; ++ix) {
              T v = xp[iy * p.in_w + ix];
              if (v > best || std::isnan(v)) {
                best = v;
                best_i = iy * p.in_w + ix;
              }
            }
          int64_t o = (pl * p.out_h + oy) * p.out_w + ox;
          y[o] = best;
          if (ind) ind[o] = best_i;
        }
      }
    }
  });
}

void plane_gather(const StridedView& out, const StridedView& in, const StridedView& idx, int64_t planes,
                  int64_t in_size, int64_t out_size) {
  float_dispatch(in.dtype, "plane_gather", [&](auto tag) {
    using T = decltype(tag);
    const T* x = ptr<T>(in);
    T* y = ptr<T>(out);
    const int64_t* ind = ptr<int64_t>(idx);
#pragma omp parallel for if (out.numel > kGrain) schedule(static)
    for (int64_t pl = 0; pl < planes; ++pl)
      for (int64_t j = 0; j < out_size; ++j) y[pl * out_size + j] = x[pl * in_size + ind[pl * out_size + j]];
  });
}

void plane_scatter(const StridedView& gin, const StridedView& gout, const StridedView& idx, int64_t planes,
                   int64_t in_size, int64_t out_size) {
  float_dispatch(gout.dtype, "plane_scatter", [&](auto tag) {
    using T = decltype(tag);
    const T* g = ptr<T>(gout);
    T* gi = ptr<T>(gin);
    const int64_t* ind = ptr<int64_t>(idx);
#pragma omp parallel for if (gin.numel > kGrain) schedule(static)
    for (int64_t pl = 0; pl < planes; ++pl) {
      T* gp = gi + pl * in_size;
      for (int64_t i = 0; i < in_size; ++i) gp[i] = T(0);
      for (int64_t j = 0; j < out_size; ++j) gp[ind[pl * out_size + j]] += g[pl * out_size + j];
    }
  });
}

void adaptive_avg_pool2d_fwd(const StridedView& out, const StridedView& in, const AdaptivePoolParams& p) {
  using backend::adaptive_end;
  using backend::adaptive_start;
  float_dispatch(in.dtype, "adaptive_avg_pool2d", [&](auto tag) {
    using T = decltype(tag);
    const T* x = ptr<T>(in);
    T* y = ptr<T>(out);
#pragma omp parallel for if (out.numel > kGrain) schedule(static)
    for (int64_t pl = 0; pl < p.planes; ++pl) {
      const T* xp = x + pl * p.in_h * p.in_w;
      for (int64_t oy = 0; oy < p.out_h; ++oy) {
        int64_t y0 = adaptive_start(oy, p.in_h, p.out_h), y1 = adaptive_end(oy, p.in_h, p.out_h);
        for (int64_t ox = 0; ox < p.out_w; ++ox) {
          int64_t x0 = adaptive_start(ox, p.in_w, p.out_w), x1 = adaptive_end(ox, p.in_w, p.out_w);
          T acc = 0;
          for (int64_t iy = y0; iy < y1; ++iy)
            for (int64_t ix = x0; ix < x1; ++ix) acc += xp[iy * p.in_w + ix];
          y[(pl * p.out_h + oy) * p.out_w + ox] = acc / T((y1 - y0) * (x1 - x0));
        }
      }
    }
  });
}

void adaptive_avg_pool2d_bwd(const StridedView& gin, const StridedView& gout, const AdaptivePoolParams& p) {
  using backend::adaptive_end;
  using backend::adaptive_start;
  float_dispatch(gout.dtype, "adaptive_avg_pool2d_backward", [&](auto tag) {
    using T = decltype(tag);
    const T* g = ptr<T>(gout);
    T* gi = ptr<T>(gin);
#pragma omp parallel for if (gin.numel > kGrain) schedule(static)
    for (int64_t pl = 0; pl < p.planes; ++pl) {
      T* gp = gi + pl * p.in_h * p.in_w;
      for (int64_t i = 0; i < p.in_h * p.in_w; ++i) gp[i] = T(0);
      for (int64_t oy = 0; oy < p.out_h; ++oy) {
        int64_t y0 = adaptive_start(oy, p.in_h, p.out_h), y1 = adaptive_end(oy, p.in_h, p.out_h);
        for (int64_t ox = 0; ox < p.out_w; ++ox) {
          int64_t x0 = adaptive_start(ox, p.in_w, p.out_w), x1 = adaptive_end(ox, p.in_w, p.out_w);
          const T v = g[(pl * p.out_h + oy) * p.out_w + ox] / T((y1 - y0) * (x1 - x0));
          for (int64_t iy = y0; iy < y1; ++iy)
            for (int64_t ix = x0; ix < x1; ++ix) gp[iy * p.in_w + ix] += v;
        }
      }
    }
  });
}

}  // namespace gradstyle::cpu
