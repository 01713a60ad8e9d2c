#pragma once
// Internal: kernel entry points of the image-model op families (issue 3): pooling, interpolation,
// padding, grid sampling and the per-channel normalisation kernels. Like backend/kernels.hpp,
// every function exists twice with the same signature, gradstyle::cpu::X (src/cpu/*.cpp) and
// gradstyle::cuda::X (cuda/sampling/*.cu), and op code calls GS_DISPATCH(device, X, args...).
//
// Conventions: every view passed here is dense (row-major contiguous) and f32 or f64; spatial
// tensors are NCHW planes, i.e. [planes, H, W] with planes = N*C. Kernels write every element of
// their output (outputs are never pre-zeroed by the caller unless stated). The index math below
// is shared by the CPU and CUDA kernels so that both pick exactly the same source pixels.
#include <cmath>
#include <cstdint>

#include "backend/kernels.hpp"
#include "gradstyle/core/rng.hpp"  // GS_HD

namespace gradstyle::backend {

// avg_pool2d / max_pool2d geometry (PyTorch's, ceil_mode = false, dilation 1).
struct Pool2dParams {
  int64_t planes = 0;  // N*C
  int64_t in_h = 0, in_w = 0;
  int64_t out_h = 0, out_w = 0;  // (in + 2*pad - kernel) / stride + 1
  int64_t kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0;
};

// adaptive_avg_pool2d geometry: bin i of an axis covers [floor(i*In/Out), ceil((i+1)*In/Out)).
struct AdaptivePoolParams {
  int64_t planes = 0;
  int64_t in_h = 0, in_w = 0, out_h = 0, out_w = 0;
};

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

enum class PadMode : int { Constant = 0, Reflect = 1 };

// pad geometry on the last two dims: out[y, x] = in[y - top, x - left] (reflected at the borders
// in Reflect mode, `value` outside in Constant mode). Negative pads crop (Constant mode only).
struct Pad2dParams {
  int64_t planes = 0;
  int64_t in_h = 0, in_w = 0, out_h = 0, out_w = 0;
  int64_t left = 0, top = 0;
  PadMode mode = PadMode::Constant;
  double value = 0;
};

// grid_sample geometry: x [N, C, H, W], grid [N, Ho, Wo, 2] holding (x, y) in [-1, 1].
struct GridSampleParams {
  int64_t n = 0, c = 0, in_h = 0, in_w = 0, out_h = 0, out_w = 0;
  bool align_corners = false;
};

// Per-channel kernels view x as [N, C, S] (S = product of the dims after the channel dim).
struct ChannelParams {
  int64_t n = 0, c = 0, s = 1;
};

// ---- index math shared by CPU and CUDA ---------------------------------------------------------

// Integer bin bounds of adaptive pooling.
GS_HD int64_t adaptive_start(int64_t i, int64_t in, int64_t out) {
  return (i * in) / out;
}
GS_HD int64_t adaptive_end(int64_t i, int64_t in, int64_t out) {
  return ((i + 1) * in + out - 1) / out;
}

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

// Reflect-pad source index (pad < size guaranteed by the op).
GS_HD int64_t reflect_index(int64_t i, int64_t n) {
  if (i < 0) i = -i;
  if (i >= n) i = 2 * (n - 1) - i;
  return i;
}

// Source index of pad output index o along an axis padded by `before` (negative = crop), or -1
// where the output lies in a constant border.
GS_HD int64_t pad_src(int64_t o, int64_t before, int64_t in, PadMode mode) {
  const int64_t i = o - before;
  if (mode == PadMode::Reflect) return reflect_index(i, in);
  return (i >= 0 && i < in) ? i : -1;
}

// grid_sample: normalised coordinate in [-1, 1] to pixel coordinate, and d(pixel)/d(coord).
template <class T>
GS_HD T grid_unnormalize(T coord, int64_t size, bool align_corners) {
  return align_corners ? (coord + T(1)) / T(2) * T(size - 1) : ((coord + T(1)) * T(size) - T(1)) / T(2);
}
template <class T>
GS_HD T grid_unnormalize_grad(int64_t size, bool align_corners) {
  return align_corners ? T(size - 1) / T(2) : T(size) / T(2);
}

// The four bilinear taps of one grid_sample point: corners (x0 + {0,1}, y0 + {0,1}) with
// fractional offsets fx, fy. Far outside the image (or for NaN) x0/y0 = -2 so that every tap is
// out of bounds and the float-to-int conversion stays defined.
template <class T>
struct GridTaps {
  int64_t x0, y0;
  T fx, fy;
};
template <class T>
GS_HD GridTaps<T> grid_taps(T gx, T gy, const GridSampleParams& p) {
  const T ix = grid_unnormalize<T>(gx, p.in_w, p.align_corners);
  const T iy = grid_unnormalize<T>(gy, p.in_h, p.align_corners);
  const T fx0 = std::floor(ix), fy0 = std::floor(iy);
  GridTaps<T> t;
  t.x0 = (fx0 > T(-2) && fx0 < T(p.in_w + 1)) ? int64_t(fx0) : -2;
  t.y0 = (fy0 > T(-2) && fy0 < T(p.in_h + 1)) ? int64_t(fy0) : -2;
  t.fx = ix - fx0;
  t.fy = iy - fy0;
  return t;
}

// Calls f(T{}) with T = float or double for the view's dtype; throws DTypeError naming op otherwise.
template <class F>
inline void float_dispatch(DType t, const char* op, F&& f) {
  if (t == DType::f32) return f(float{});
  if (t == DType::f64) return f(double{});
  throw DTypeError(err_msg(op, ": unsupported dtype ", dtype_name(t), " (float32 or float64 expected)"));
}

}  // namespace gradstyle::backend

#define GS_IMAGE_KERNEL_DECLS                                                                                          \
  /* ---- pooling: in/out [planes, H, W] ---- */                                                                       \
  void avg_pool2d_fwd(const backend::StridedView& out, const backend::StridedView& in,                                 \
                      const backend::Pool2dParams& p);                                                                 \
  /* gin = adjoint of avg_pool2d applied to gout (gin fully written) */                                                \
  void avg_pool2d_bwd(const backend::StridedView& gin, const backend::StridedView& gout,                               \
                      const backend::Pool2dParams& p);                                                                 \
  /* out = window max, idx = int64 flat index (y*W + x) of the first maximum in its plane (idx */                      \
  /* may have null data: indices not wanted) */                                                                        \
  void max_pool2d_fwd(const backend::StridedView& out, const backend::StridedView& idx,                                \
                      const backend::StridedView& in, const backend::Pool2dParams& p);                                 \
  /* out[p, j] = in[p, idx[p, j]]: in [planes, in_h*in_w], out/idx [planes, out_h*out_w] */                            \
  void plane_gather(const backend::StridedView& out, const backend::StridedView& in, const backend::StridedView& idx,  \
                    int64_t planes, int64_t in_size, int64_t out_size);                                                \
  /* gin[p, :] = 0; gin[p, idx[p, j]] += gout[p, j] (the adjoint of plane_gather) */                                   \
  void plane_scatter(const backend::StridedView& gin, const backend::StridedView& gout,                                \
                     const backend::StridedView& idx, int64_t planes, int64_t in_size, int64_t out_size);              \
  void adaptive_avg_pool2d_fwd(const backend::StridedView& out, const backend::StridedView& in,                        \
                               const backend::AdaptivePoolParams& p);                                                  \
  void adaptive_avg_pool2d_bwd(const backend::StridedView& gin, const backend::StridedView& gout,                      \
                               const backend::AdaptivePoolParams& p);                                                  \
  /* ---- interpolate: in [planes, in_h, in_w] -> out [planes, out_h, out_w] ---- */                                   \
  void interpolate_fwd(const backend::StridedView& out, const backend::StridedView& in,                                \
                       const backend::InterpParams& p);                                                                \
  void interpolate_bwd(const backend::StridedView& gin, const backend::StridedView& gout,                              \
                       const backend::InterpParams& p);                                                                \
  /* ---- pad ---- */                                                                                                  \
  void pad2d_fwd(const backend::StridedView& out, const backend::StridedView& in, const backend::Pad2dParams& p);      \
  /* gin = adjoint of pad2d with value 0 */                                                                            \
  void pad2d_bwd(const backend::StridedView& gin, const backend::StridedView& gout, const backend::Pad2dParams& p);    \
  /* ---- grid_sample (bilinear, zeros padding) ---- */                                                                \
  void grid_sample_fwd(const backend::StridedView& out, const backend::StridedView& in,                                \
                       const backend::StridedView& grid, const backend::GridSampleParams& p);                          \
  /* gin (zero-filled by the caller) += input gradient; ggrid = grid gradient; either view may */                      \
  /* have null data (= not wanted) */                                                                                  \
  void grid_sample_bwd(const backend::StridedView& gin, const backend::StridedView& ggrid,                             \
                       const backend::StridedView& gout, const backend::StridedView& in,                               \
                       const backend::StridedView& grid, const backend::GridSampleParams& p);                          \
  /* ---- per-channel kernels, x viewed as [N, C, S]; vectors are dense [C] ---- */                                    \
  /* mean[c] and biased variance var[c] over (N, S) */                                                                 \
  void channel_moments(const backend::StridedView& mean, const backend::StridedView& var,                              \
                       const backend::StridedView& x, const backend::ChannelParams& p);                                \
  /* sum_g[c] = sum g, sum_gx[c] = sum g * (x - center[c]) over (N, S) */                                              \
  void channel_grad_sums(const backend::StridedView& sum_g, const backend::StridedView& sum_gx,                        \
                         const backend::StridedView& g, const backend::StridedView& x,                                 \
                         const backend::StridedView& center, const backend::ChannelParams& p);                         \
  /* out = x * scale[c] + shift[c] */                                                                                  \
  void channel_affine(const backend::StridedView& out, const backend::StridedView& x,                                  \
                      const backend::StridedView& scale, const backend::StridedView& shift,                            \
                      const backend::ChannelParams& p);                                                                \
  /* out = a * sa[c] + b * sb[c] + shift[c] */                                                                         \
  void channel_affine2(const backend::StridedView& out, const backend::StridedView& a, const backend::StridedView& sa, \
                       const backend::StridedView& b, const backend::StridedView& sb,                                  \
                       const backend::StridedView& shift, const backend::ChannelParams& p);                            \
  /* out = x > 0 ? x : w[c] * x  (w has C entries, or 1 entry shared by all channels) */                               \
  void prelu_fwd(const backend::StridedView& out, const backend::StridedView& x, const backend::StridedView& w,        \
                 const backend::ChannelParams& p);

namespace gradstyle::cpu {
GS_IMAGE_KERNEL_DECLS
}  // namespace gradstyle::cpu

#if defined(GRADSTYLE_CUDA)
namespace gradstyle::cuda {
GS_IMAGE_KERNEL_DECLS
}  // namespace gradstyle::cuda
#endif
