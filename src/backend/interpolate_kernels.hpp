#pragma once
// Internal: kernel entry points of the interpolate family (bilinear and nearest resizing):
// gradstyle::cpu::X in src/cpu/interpolate.cpp, gradstyle::cuda::X in cuda/ops/interpolate.cu; op
// code (src/ops/interpolate.cpp) calls GS_DISPATCH(device, X, args...). Every view passed here is
// dense (row-major contiguous) and f32 or f64; spatial tensors are NCHW planes, [planes, H, W] with
// planes = N*C. Kernels write every element of their output unless stated. The source-index math is
// shared so both devices pick the same source pixels.
#include <cmath>
#include <cstdint>

#include "backend/kernels.hpp"
#include "gradstyle/core/host_device.hpp"  // GS_HD

namespace gradstyle::backend {

enum class InterpMode : int { Bilinear = 0, Nearest = 1 };

// interpolate geometry. scale_h/scale_w are the user's scale factors (0 = derive from sizes);
// like PyTorch, a given scale factor is used for the source index instead of in/out.
struct InterpParams {
  int64_t planes = 0;
  int64_t in_h = 0, in_w = 0, out_h = 0, out_w = 0;
  InterpMode mode = InterpMode::Bilinear;
  bool align_corners = false;
  double scale_h = 0, scale_w = 0;
};

// ---- index math shared by the CPU and CUDA kernels ----

// PyTorch's area_pixel_compute_scale in the kernel's type T (float for float32).
template <class T>
GS_HD T interp_scale(int64_t in, int64_t out, bool align_corners, double user_scale) {
  if (align_corners) return out > 1 ? T(in - 1) / T(out - 1) : T(0);
  return user_scale > 0 ? T(1.0 / user_scale) : T(in) / T(out);
}

// Bilinear taps of output index o along one axis: out[o] = l0 * in[i0] + l1 * in[i1]. When the
// axis keeps its size PyTorch copies (even if a scale factor was given), and so do we.
template <class T>
GS_HD void linear_taps(int64_t o, int64_t in, int64_t out, T scale, bool align_corners, int64_t& i0, int64_t& i1, T& l0,
                       T& l1) {
  if (in == out) {
    i0 = i1 = o;
    l0 = T(1);
    l1 = T(0);
    return;
  }
  T src = align_corners ? scale * T(o) : scale * (T(o) + T(0.5)) - T(0.5);
  if (!align_corners && src < T(0)) src = T(0);
  i0 = int64_t(src);
  i1 = i0 + (i0 < in - 1 ? 1 : 0);
  T l = src - T(i0);
  l1 = l < T(0) ? T(0) : (l > T(1) ? T(1) : l);
  l0 = T(1) - l1;
}

// PyTorch's legacy 'nearest' source index (computed in float whatever the tensor dtype).
GS_HD int64_t nearest_src(int64_t o, int64_t in, int64_t out, double user_scale) {
  if (out == in) return o;
  if (out == 2 * in) return o >> 1;
  float scale = user_scale > 0 ? float(1.0 / user_scale) : float(in) / float(out);
  int64_t s = int64_t(std::floor(float(o) * scale));
  return s < in - 1 ? s : in - 1;
}

}  // namespace gradstyle::backend

#define GS_INTERPOLATE_KERNEL_DECLS                                                       \
  /* ---- interpolate: in [planes, in_h, in_w] -> out [planes, out_h, out_w] ---- */      \
  void interpolate_fwd(const backend::StridedView& out, const backend::StridedView& in,   \
                       const backend::InterpParams& p);                                   \
  void interpolate_bwd(const backend::StridedView& gin, const backend::StridedView& gout, \
                       const backend::InterpParams& p);

namespace gradstyle::cpu {
GS_INTERPOLATE_KERNEL_DECLS
}  // namespace gradstyle::cpu

#if defined(GRADSTYLE_CUDA)
namespace gradstyle::cuda {
GS_INTERPOLATE_KERNEL_DECLS
}  // namespace gradstyle::cuda
#endif
