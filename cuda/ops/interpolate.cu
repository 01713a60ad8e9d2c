// CUDA interpolation (bilinear / legacy nearest), forward and backward (same contracts
// as src/cpu/interpolate.cpp). Forward: one thread per output element, taps from the index math
// shared with the CPU (backend/interpolate_kernels.hpp). Backward: one thread per INPUT element gathers
// the outputs that read it, so there are no atomics and the result is deterministic. Along each
// axis the candidate outputs come from inverting the source-index formula with a margin of one,
// and each candidate is confirmed with the forward's own taps, so rounding can never drop or
// double-count a contribution.
#include <cmath>

#include "../common/grid_stride.cuh"
#include "backend/interpolate_kernels.hpp"

namespace gradstyle::cuda {

using backend::float_dispatch;
using backend::InterpMode;
using backend::InterpParams;
using backend::StridedView;

namespace {

// The weight with which output index o of an axis reads input index i (0 when it does not).
// scale: interp_scale<T> of the axis (bilinear only).
template <class T>
__device__ __forceinline__ T axis_weight(int64_t o, int64_t i, int64_t in, int64_t out, const InterpParams& p, T scale,
                                         double user_scale) {
  if (p.mode == InterpMode::Nearest) return backend::nearest_src(o, in, out, user_scale) == i ? T(1) : T(0);
  int64_t i0, i1;
  T l0, l1;
  backend::linear_taps<T>(o, in, out, scale, p.align_corners, i0, i1, l0, l1);
  return (i0 == i ? l0 : T(0)) + (i1 == i ? l1 : T(0));
}

// Range [lo, hi] of output indices that may read input index i along an axis.
__device__ __forceinline__ void axis_candidates(int64_t i, int64_t in, int64_t out, const InterpParams& p,
                                                double user_scale, int64_t& lo, int64_t& hi) {
  if (in == out) {  // identity (both modes)
    lo = hi = i;
    return;
  }
  double a, b;  // o in [a, b) up to rounding
  if (p.mode == InterpMode::Nearest) {
    if (out == 2 * in) {
      lo = 2 * i;
      hi = 2 * i + 1;
      return;
    }
    const double s = double(user_scale > 0 ? float(1.0 / user_scale) : float(in) / float(out));
    a = double(i) / s;
    b = i == in - 1 ? double(out) : double(i + 1) / s;  // the last row also takes the clamped tail
  } else {
    const double s = double(backend::interp_scale<double>(in, out, p.align_corners, user_scale));
    if (!(s > 0)) {  // align_corners with out == 1: the single output reads row 0
      lo = 0;
      hi = out - 1;
      return;
    }
    const double off = p.align_corners ? 0.0 : 0.5;  // src = s (o + off) - off, clamped at 0
    a = (double(i - 1) + off) / s - off;
    b = (double(i + 1) + off) / s - off;
  }
  lo = max(int64_t(0), int64_t(floor(a)) - 1);
  hi = min(out - 1, int64_t(ceil(b)) + 1);
}

template <class T>
__global__ void interp_fwd_k(T* y, const T* x, InterpParams p, int64_t n) {
  const T sh = backend::interp_scale<T>(p.in_h, p.out_h, p.align_corners, p.scale_h);
  const T sw = backend::interp_scale<T>(p.in_w, p.out_w, p.align_corners, p.scale_w);
  GS_SAMPLING_LOOP(i, n) {
    const int64_t ox = i % p.out_w, oy = (i / p.out_w) % p.out_h, pl = i / (p.out_w * p.out_h);
    const T* xp = x + pl * p.in_h * p.in_w;
    if (p.mode == InterpMode::Nearest) {
      const int64_t sy = backend::nearest_src(oy, p.in_h, p.out_h, p.scale_h);
      const int64_t sx = backend::nearest_src(ox, p.in_w, p.out_w, p.scale_w);
      y[i] = xp[sy * p.in_w + sx];
      continue;
    }
    int64_t y0, y1, x0, x1;
    T a0, a1, b0, b1;
    backend::linear_taps<T>(oy, p.in_h, p.out_h, sh, p.align_corners, y0, y1, a0, a1);
    backend::linear_taps<T>(ox, p.in_w, p.out_w, sw, p.align_corners, x0, x1, b0, b1);
    const T* r0 = xp + y0 * p.in_w;
    const T* r1 = xp + y1 * p.in_w;
    y[i] = a0 * (b0 * r0[x0] + b1 * r0[x1]) + a1 * (b0 * r1[x0] + b1 * r1[x1]);
  }
}

// Candidate ranges are short (about 2/scale + 4 per axis); the column weights of up to kCache
// candidates are computed once per thread instead of once per row.
constexpr int kCache = 16;

template <class T>
__global__ void interp_bwd_k(T* gin, const T* g, InterpParams p, int64_t n) {
  const T sh = backend::interp_scale<T>(p.in_h, p.out_h, p.align_corners, p.scale_h);
  const T sw = backend::interp_scale<T>(p.in_w, p.out_w, p.align_corners, p.scale_w);
  GS_SAMPLING_LOOP(i, n) {
    const int64_t ix = i % p.in_w, iy = (i / p.in_w) % p.in_h, pl = i / (p.in_w * p.in_h);
    int64_t oy0, oy1, ox0, ox1;
    axis_candidates(iy, p.in_h, p.out_h, p, p.scale_h, oy0, oy1);
    axis_candidates(ix, p.in_w, p.out_w, p, p.scale_w, ox0, ox1);
    const bool cached = ox1 - ox0 < kCache;
    T wxs[kCache];
    if (cached)
      for (int64_t ox = ox0; ox <= ox1; ++ox) wxs[ox - ox0] = axis_weight<T>(ox, ix, p.in_w, p.out_w, p, sw, p.scale_w);
    const T* gp = g + pl * p.out_h * p.out_w;
    T acc = 0;
    for (int64_t oy = oy0; oy <= oy1; ++oy) {
      const T wy = axis_weight<T>(oy, iy, p.in_h, p.out_h, p, sh, p.scale_h);
      if (wy == T(0)) continue;
      const T* grow = gp + oy * p.out_w;
      for (int64_t ox = ox0; ox <= ox1; ++ox) {
        const T wx = cached ? wxs[ox - ox0] : axis_weight<T>(ox, ix, p.in_w, p.out_w, p, sw, p.scale_w);
        if (wx != T(0)) acc += wy * wx * grow[ox];
      }
    }
    gin[i] = acc;
  }
}

}  // namespace

void interpolate_fwd(const StridedView& out, const StridedView& in, const InterpParams& p) {
  float_dispatch(in.dtype, "interpolate", [&](auto tag) {
    using T = decltype(tag);
    GS_SAMPLING_LAUNCH(interp_fwd_k<T>, out.numel, static_cast<T*>(out.data), static_cast<const T*>(in.data), p,
                       out.numel);
  });
}

void interpolate_bwd(const StridedView& gin, const StridedView& gout, const InterpParams& p) {
  float_dispatch(gout.dtype, "interpolate_backward", [&](auto tag) {
    using T = decltype(tag);
    GS_SAMPLING_LAUNCH(interp_bwd_k<T>, gin.numel, static_cast<T*>(gin.data), static_cast<const T*>(gout.data), p,
                       gin.numel);
  });
}

}  // namespace gradstyle::cuda
