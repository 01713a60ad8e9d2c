// CPU interpolation (bilinear / legacy nearest) and its adjoint.
// The per-axis source taps are computed once per call with the index math shared with CUDA
// (backend/interpolate_kernels.hpp); planes (N*C) run in parallel and each plane's backward scatter
// is serial, so results are deterministic.
#include <vector>

#include "backend/interpolate_kernels.hpp"

namespace gradstyle::cpu {

using backend::float_dispatch;
using backend::InterpMode;
using backend::InterpParams;
using backend::StridedView;

namespace {
constexpr int64_t kGrain = 1 << 14;

// The taps of every output index along one axis.
template <class T>
struct AxisTaps {
  std::vector<int64_t> i0, i1;
  std::vector<T> l0, l1;
};

template <class T>
AxisTaps<T> axis_taps(int64_t in, int64_t out, const InterpParams& p, double user_scale) {
  AxisTaps<T> t;
  t.i0.resize(size_t(out));
  t.i1.resize(size_t(out));
  t.l0.resize(size_t(out));
  t.l1.resize(size_t(out));
  if (p.mode == InterpMode::Nearest) {
    for (int64_t o = 0; o < out; ++o) {
      t.i0[size_t(o)] = t.i1[size_t(o)] = backend::nearest_src(o, in, out, user_scale);
      t.l0[size_t(o)] = T(1);
      t.l1[size_t(o)] = T(0);
    }
    return t;
  }
  const T scale = backend::interp_scale<T>(in, out, p.align_corners, user_scale);
  for (int64_t o = 0; o < out; ++o)
    backend::linear_taps<T>(o, in, out, scale, p.align_corners, t.i0[size_t(o)], t.i1[size_t(o)], t.l0[size_t(o)],
                            t.l1[size_t(o)]);
  return t;
}
}  // namespace

void interpolate_fwd(const StridedView& out, const StridedView& in, const InterpParams& p) {
  float_dispatch(in.dtype, "interpolate", [&](auto tag) {
    using T = decltype(tag);
    const auto th = axis_taps<T>(p.in_h, p.out_h, p, p.scale_h);
    const auto tw = axis_taps<T>(p.in_w, p.out_w, p, p.scale_w);
    const T* x = static_cast<const T*>(in.data);
    T* y = static_cast<T*>(out.data);
#pragma omp parallel for if (out.numel > kGrain) schedule(static)
    for (int64_t pl = 0; pl < p.planes; ++pl) {
      const T* xp = x + pl * p.in_h * p.in_w;
      T* yp = y + pl * p.out_h * p.out_w;
      for (int64_t oy = 0; oy < p.out_h; ++oy) {
        const T* r0 = xp + th.i0[size_t(oy)] * p.in_w;
        const T* r1 = xp + th.i1[size_t(oy)] * p.in_w;
        const T a0 = th.l0[size_t(oy)], a1 = th.l1[size_t(oy)];
        for (int64_t ox = 0; ox < p.out_w; ++ox) {
          const int64_t c0 = tw.i0[size_t(ox)], c1 = tw.i1[size_t(ox)];
          const T b0 = tw.l0[size_t(ox)], b1 = tw.l1[size_t(ox)];
          yp[oy * p.out_w + ox] = a0 * (b0 * r0[c0] + b1 * r0[c1]) + a1 * (b0 * r1[c0] + b1 * r1[c1]);
        }
      }
    }
  });
}

void interpolate_bwd(const StridedView& gin, const StridedView& gout, const InterpParams& p) {
  float_dispatch(gout.dtype, "interpolate_backward", [&](auto tag) {
    using T = decltype(tag);
    const auto th = axis_taps<T>(p.in_h, p.out_h, p, p.scale_h);
    const auto tw = axis_taps<T>(p.in_w, p.out_w, p, p.scale_w);
    const T* g = static_cast<const T*>(gout.data);
    T* gi = static_cast<T*>(gin.data);
#pragma omp parallel for if (gin.numel + gout.numel > kGrain) schedule(static)
    for (int64_t pl = 0; pl < p.planes; ++pl) {
      T* gp = gi + pl * p.in_h * p.in_w;
      const T* go = g + pl * p.out_h * p.out_w;
      for (int64_t i = 0; i < p.in_h * p.in_w; ++i) gp[i] = T(0);
      for (int64_t oy = 0; oy < p.out_h; ++oy) {
        T* r0 = gp + th.i0[size_t(oy)] * p.in_w;
        T* r1 = gp + th.i1[size_t(oy)] * p.in_w;
        const T a0 = th.l0[size_t(oy)], a1 = th.l1[size_t(oy)];
        for (int64_t ox = 0; ox < p.out_w; ++ox) {
          const int64_t c0 = tw.i0[size_t(ox)], c1 = tw.i1[size_t(ox)];
          const T b0 = tw.l0[size_t(ox)], b1 = tw.l1[size_t(ox)];
          const T v = go[oy * p.out_w + ox];
          r0[c0] += a0 * b0 * v;
          r0[c1] += a0 * b1 * v;
          r1[c0] += a1 * b0 * v;
          r1[c1] += a1 * b1 * v;
        }
      }
    }
  });
}

}  // namespace gradstyle::cpu
