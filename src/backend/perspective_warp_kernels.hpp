#pragma once
// Internal: the perspective warp's kernel entry points (gradstyle::cpu in
// src/cpu/perspective_warp.cpp, gradstyle::cuda in cuda/ops/perspective_warp.cu) and the
// coordinate / sampling math both share. The math below is written with explicit fma and no
// expression a compiler may contract differently, so the CPU and CUDA compute the same bits:
// forward outputs and input gradients are identical on both devices.
//
// Conventions (SPEC B.7): homographies map DESTINATION (output) normalised coordinates to SOURCE
// (input) normalised coordinates; pixel centre i of n sits at (2i + 1)/n - 1 (align_corners =
// false); bilinear sampling with zeros outside, exactly torch.nn.functional.grid_sample(...,
// mode='bilinear', padding_mode='zeros', align_corners=False) on the grid H·(u, v, 1).
#include <cmath>
#include <cstdint>

#include "backend/kernels.hpp"  // GS_DISPATCH
#include "backend/view.hpp"
#include "gradstyle/core/host_device.hpp"  // GS_HD

namespace gradstyle::backend {

constexpr int kMaxWarpLevels = 4;

// Up to kMaxWarpLevels feature maps of one batch sharing one homography per sample.
// Each src/dst is a dense [B, C, H, W] buffer of the warp's dtype; a warp keeps the size.
struct WarpLevels {
  int n = 0;
  const void* src[kMaxWarpLevels] = {};
  void* dst[kMaxWarpLevels] = {};
  int64_t C[kMaxWarpLevels] = {}, H[kMaxWarpLevels] = {}, W[kMaxWarpLevels] = {};
};

GS_HD double warp_fma(double a, double b, double c) {
#if defined(__CUDA_ARCH__)
  return ::fma(a, b, c);
#else
  return std::fma(a, b, c);
#endif
}
GS_HD float warp_fma(float a, float b, float c) {
#if defined(__CUDA_ARCH__)
  return ::fmaf(a, b, c);
#else
  return std::fma(a, b, c);
#endif
}
GS_HD double warp_floor(double x) {
#if defined(__CUDA_ARCH__)
  return ::floor(x);
#else
  return std::floor(x);
#endif
}

// Normalised coordinate of pixel centre i of n.
GS_HD double warp_pixel_to_norm(int64_t i, int64_t n) { return double(2 * i + 1) / double(n) - 1.0; }

// (x, y, w) = m · (u, v, 1) for a row-major 3x3 m.
GS_HD void warp_project(const double* m, double u, double v, double& x, double& y, double& w) {
  x = warp_fma(m[0], u, warp_fma(m[1], v, m[2]));
  y = warp_fma(m[3], u, warp_fma(m[4], v, m[5]));
  w = warp_fma(m[6], u, warp_fma(m[7], v, m[8]));
}

// The bilinear taps of one output pixel: top-left tap (x0, y0) and fractions (fx, fy).
// valid == false when the sample lies where all four taps are outside (or is not finite).
struct WarpTap {
  int64_t x0 = 0, y0 = 0;
  double fx = 0, fy = 0;
  bool valid = false;
};

// Taps of output pixel (ox, oy) of a W x Hh map under homography h (dst -> src).
GS_HD WarpTap warp_tap(const double* h, int64_t ox, int64_t oy, int64_t W, int64_t Hh) {
  double xw, yw, w;
  warp_project(h, warp_pixel_to_norm(ox, W), warp_pixel_to_norm(oy, Hh), xw, yw, w);
  const double xs = xw / w, ys = yw / w;
  // grid_sample's unnormalisation (align_corners = false): ((xs + 1) W - 1) / 2
  const double ix = warp_fma(xs + 1.0, double(W), -1.0) * 0.5;
  const double iy = warp_fma(ys + 1.0, double(Hh), -1.0) * 0.5;
  WarpTap t;
  // the four taps x0, x0 + 1 touch [0, W) only when -1 < ix < W (false for NaN)
  if (!(ix > -1.0 && ix < double(W) && iy > -1.0 && iy < double(Hh))) return t;
  const double fx0 = warp_floor(ix), fy0 = warp_floor(iy);
  t.x0 = int64_t(fx0);
  t.y0 = int64_t(fy0);
  t.fx = ix - fx0;
  t.fy = iy - fy0;
  t.valid = true;
  return t;
}

// Weight of tap (dx, dy) in {0,1}^2 (the same product the forward uses).
GS_HD double warp_weight(const WarpTap& t, int dx, int dy) {
  return (dx ? t.fx : 1.0 - t.fx) * (dy ? t.fy : 1.0 - t.fy);
}

// The four taps of one output pixel as (offset, weight, inside) triples, computed once per pixel
// and applied to every channel. Taps outside the map read 0 (never memory): fma(w, 0, acc) with
// acc starting at +0 leaves acc unchanged bit for bit, so this equals skipping them.
template <class T>
struct WarpTaps {
  int64_t off[4] = {0, 0, 0, 0};
  T w[4] = {T(0), T(0), T(0), T(0)};
  bool in[4] = {false, false, false, false};
};

template <class T>
GS_HD WarpTaps<T> warp_taps(const WarpTap& t, int64_t W, int64_t Hh) {
  WarpTaps<T> r;
  if (!t.valid) return r;
  for (int dy = 0; dy < 2; ++dy)
    for (int dx = 0; dx < 2; ++dx) {
      const int k = 2 * dy + dx;
      const int64_t x = t.x0 + dx, y = t.y0 + dy;
      r.in[k] = x >= 0 && x < W && y >= 0 && y < Hh;
      r.off[k] = r.in[k] ? y * W + x : 0;
      r.w[k] = T(warp_weight(t, dx, dy));
    }
  return r;
}

// Bilinear sample of one dense plane with zeros outside: taps in the order (0,0), (1,0), (0,1), (1,1).
template <class T>
GS_HD T warp_apply(const T* plane, const WarpTaps<T>& tp) {
  T acc = T(0);
  for (int k = 0; k < 4; ++k) acc = warp_fma(tp.w[k], tp.in[k] ? plane[tp.off[k]] : T(0), acc);
  return acc;
}

// The gather form of the backward. Output pixels whose sample uses input pixel (X, Y) as a tap
// have their sample in [X-1, X+1) x [Y-1, Y+1); hinv (src -> dst) maps that box to a convex
// quadrilateral when the projective denominator has one sign on the box. The returned inclusive
// box (clipped to the map, one pixel of margin for rounding) contains all of them; when the box
// would cross the vanishing line it is the whole map (always correct, slower).
GS_HD void warp_gather_box(const double* hinv, int64_t X, int64_t Y, int64_t W, int64_t Hh, int64_t& ox0,
                           int64_t& ox1, int64_t& oy0, int64_t& oy1) {
  double umin = 1e300, umax = -1e300, vmin = 1e300, vmax = -1e300;
  bool pos = false, neg = false, bad = false;
  for (int k = 0; k < 4; ++k) {
    const int64_t cx = (k == 1 || k == 2) ? X + 1 : X - 1;
    const int64_t cy = k >= 2 ? Y + 1 : Y - 1;
    double x, y, w;
    warp_project(hinv, warp_pixel_to_norm(cx, W), warp_pixel_to_norm(cy, Hh), x, y, w);
    if (w > 0) pos = true;
    else if (w < 0) neg = true;
    else bad = true;
    const double u = warp_fma(x / w + 1.0, double(W), -1.0) * 0.5;  // destination pixel coords
    const double v = warp_fma(y / w + 1.0, double(Hh), -1.0) * 0.5;
    if (!(u == u) || !(v == v)) bad = true;
    umin = u < umin ? u : umin;
    umax = u > umax ? u : umax;
    vmin = v < vmin ? v : vmin;
    vmax = v > vmax ? v : vmax;
  }
  if (bad || (pos && neg)) {
    ox0 = 0, ox1 = W - 1, oy0 = 0, oy1 = Hh - 1;
    return;
  }
  // clamp in double before converting (the quad may lie far outside the map)
  auto lo = [](double a, int64_t n) { return int64_t(a < 0.0 ? 0.0 : (a > double(n) ? double(n) : a)); };
  auto hi = [](double a, int64_t n) { return int64_t(a < -1.0 ? -1.0 : (a > double(n - 1) ? double(n - 1) : a)); };
  ox0 = lo(warp_floor(umin) - 1.0, W);
  ox1 = hi(warp_floor(umax) + 2.0, W);
  oy0 = lo(warp_floor(vmin) - 1.0, Hh);
  oy1 = hi(warp_floor(vmax) + 2.0, Hh);
}

// d out / d in[Y, X] contribution of output pixel (ox, oy): its weight on (X, Y), or 0.
GS_HD double warp_weight_on(const double* h, int64_t ox, int64_t oy, int64_t X, int64_t Y, int64_t W, int64_t Hh) {
  const WarpTap t = warp_tap(h, ox, oy, W, Hh);
  if (!t.valid) return 0.0;
  const int64_t dx = X - t.x0, dy = Y - t.y0;
  if (dx < 0 || dx > 1 || dy < 0 || dy > 1) return 0.0;
  return warp_weight(t, int(dx), int(dy));
}

}  // namespace gradstyle::backend

#define GS_PERSPECTIVE_WARP_DECLS                                                                  \
  /* hom: dense [B, 9] float64 (dst -> src) on the data's device; dst_l = warp(src_l) for every   \
     level; dt is the data dtype (float32 or float64) */                                           \
  void perspective_warp_forward(const backend::WarpLevels& lv, const backend::StridedView& hom,   \
                                int64_t batch, DType dt);                                          \
  /* src_l = output gradients, dst_l = input gradients (overwritten); hinv: dense [B, 9] float64  \
     inverses (src -> dst). Deterministic gather (no atomics). */                                 \
  void perspective_warp_backward(const backend::WarpLevels& lv, const backend::StridedView& hom,  \
                                 const backend::StridedView& hinv, int64_t batch, DType dt);

namespace gradstyle::cpu {
GS_PERSPECTIVE_WARP_DECLS
}  // namespace gradstyle::cpu

#if defined(GRADSTYLE_CUDA)
namespace gradstyle::cuda {
GS_PERSPECTIVE_WARP_DECLS
}  // namespace gradstyle::cuda
#endif
