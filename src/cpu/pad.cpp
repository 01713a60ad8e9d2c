// CPU constant / reflect padding of the last two dims and its adjoint. Source indices come from
// the index math shared with CUDA (backend/pad_kernels.hpp); planes (N*C) run in parallel and each
// plane's adjoint is serial, so results are deterministic.
#include "backend/pad_kernels.hpp"

namespace gradstyle::cpu {

using backend::float_dispatch;
using backend::Pad2dParams;
using backend::StridedView;

namespace {
constexpr int64_t kGrain = 1 << 14;
}  // namespace

using backend::pad_src;

void pad2d_fwd(const StridedView& out, const StridedView& in, const Pad2dParams& p) {
  float_dispatch(in.dtype, "pad", [&](auto tag) {
    using T = decltype(tag);
    const T* x = static_cast<const T*>(in.data);
    T* y = static_cast<T*>(out.data);
    const T value = T(p.value);
#pragma omp parallel for if (out.numel > kGrain) schedule(static)
    for (int64_t pl = 0; pl < p.planes; ++pl) {
      const T* xp = x + pl * p.in_h * p.in_w;
      T* yp = y + pl * p.out_h * p.out_w;
      for (int64_t oy = 0; oy < p.out_h; ++oy) {
        const int64_t iy = pad_src(oy, p.top, p.in_h, p.mode);
        for (int64_t ox = 0; ox < p.out_w; ++ox) {
          const int64_t ix = pad_src(ox, p.left, p.in_w, p.mode);
          yp[oy * p.out_w + ox] = (iy < 0 || ix < 0) ? value : xp[iy * p.in_w + ix];
        }
      }
    }
  });
}

void pad2d_bwd(const StridedView& gin, const StridedView& gout, const Pad2dParams& p) {
  float_dispatch(gout.dtype, "pad_backward", [&](auto tag) {
    using T = decltype(tag);
    const T* g = static_cast<const T*>(gout.data);
    T* gi = static_cast<T*>(gin.data);
#pragma omp parallel for if (gin.numel + gout.numel > kGrain) schedule(static)
    for (int64_t pl = 0; pl < p.planes; ++pl) {
      T* gp = gi + pl * p.in_h * p.in_w;
      const T* go = g + pl * p.out_h * p.out_w;
      for (int64_t i = 0; i < p.in_h * p.in_w; ++i) gp[i] = T(0);
      for (int64_t oy = 0; oy < p.out_h; ++oy) {
        const int64_t iy = pad_src(oy, p.top, p.in_h, p.mode);
        if (iy < 0) continue;
        for (int64_t ox = 0; ox < p.out_w; ++ox) {
          const int64_t ix = pad_src(ox, p.left, p.in_w, p.mode);
          if (ix >= 0) gp[iy * p.in_w + ix] += go[oy * p.out_w + ox];
        }
      }
    }
  });
}

}  // namespace gradstyle::cpu
