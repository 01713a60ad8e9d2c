// CUDA constant / reflect padding and its adjoint (same contracts as src/cpu/pad.cpp). Forward: one
// thread per output element. Backward: one thread per INPUT element gathers the (at most 3 x 3)
// outputs that read it, so there are no atomics and the result is deterministic.
#include "../common/grid_stride.cuh"
#include "backend/pad_kernels.hpp"

namespace gradstyle::cuda {

using backend::float_dispatch;
using backend::Pad2dParams;
using backend::StridedView;

namespace {

template <class T>
__global__ void pad_fwd_k(T* y, const T* x, Pad2dParams p, int64_t n) {
  const T value = T(p.value);
  GS_SAMPLING_LOOP(i, n) {
    const int64_t ox = i % p.out_w, oy = (i / p.out_w) % p.out_h, pl = i / (p.out_w * p.out_h);
    const int64_t iy = backend::pad_src(oy, p.top, p.in_h, p.mode), ix = backend::pad_src(ox, p.left, p.in_w, p.mode);
    y[i] = (iy < 0 || ix < 0) ? value : x[(pl * p.in_h + iy) * p.in_w + ix];
  }
}

// The (at most 3) output indices of an axis that read input index i: the direct copy and, for
// reflect, its mirror images in the leading and trailing borders. Each is confirmed with pad_src.
__device__ __forceinline__ int pad_candidates(int64_t i, int64_t before, int64_t in, int64_t out, backend::PadMode mode,
                                              int64_t* o) {
  int k = 0;
  const int64_t c[3] = {i + before, before - i, before + 2 * (in - 1) - i};
  const int m = mode == backend::PadMode::Reflect ? 3 : 1;
  for (int j = 0; j < m; ++j) {
    const int64_t v = c[j];
    if (v < 0 || v >= out || backend::pad_src(v, before, in, mode) != i) continue;
    bool dup = false;
    for (int q = 0; q < k; ++q) dup = dup || o[q] == v;
    if (!dup) o[k++] = v;
  }
  return k;
}

template <class T>
__global__ void pad_bwd_k(T* gin, const T* g, Pad2dParams p, int64_t n) {
  GS_SAMPLING_LOOP(i, n) {
    const int64_t ix = i % p.in_w, iy = (i / p.in_w) % p.in_h, pl = i / (p.in_w * p.in_h);
    int64_t oys[3], oxs[3];
    const int ny = pad_candidates(iy, p.top, p.in_h, p.out_h, p.mode, oys);
    const int nx = pad_candidates(ix, p.left, p.in_w, p.out_w, p.mode, oxs);
    const T* gp = g + pl * p.out_h * p.out_w;
    T acc = 0;
    for (int a = 0; a < ny; ++a)
      for (int b = 0; b < nx; ++b) acc += gp[oys[a] * p.out_w + oxs[b]];
    gin[i] = acc;
  }
}

}  // namespace

void pad2d_fwd(const StridedView& out, const StridedView& in, const Pad2dParams& p) {
  float_dispatch(in.dtype, "pad", [&](auto tag) {
    using T = decltype(tag);
    GS_SAMPLING_LAUNCH(pad_fwd_k<T>, out.numel, static_cast<T*>(out.data), static_cast<const T*>(in.data), p,
                       out.numel);
  });
}

void pad2d_bwd(const StridedView& gin, const StridedView& gout, const Pad2dParams& p) {
  float_dispatch(gout.dtype, "pad_backward", [&](auto tag) {
    using T = decltype(tag);
    GS_SAMPLING_LAUNCH(pad_bwd_k<T>, gin.numel, static_cast<T*>(gin.data), static_cast<const T*>(gout.data), p,
                       gin.numel);
  });
}

}  // namespace gradstyle::cuda
