#include "gradstyle/ops/interpolate.hpp"

#include <cmath>
#include <memory>

#include "backend/interpolate_kernels.hpp"
#include "ops/common.hpp"
#include "ops/linear_map.hpp"

namespace gradstyle {

using backend::InterpParams;
using backend::make_view;
using namespace ops_detail;

namespace {

const char* mode_name(InterpolateMode m) {
  return m == InterpolateMode::Bilinear ? "bilinear" : "nearest";
}

// Builds and applies the interpolation map for a validated geometry.
Tensor run_interpolate(const Tensor& x, InterpParams p) {
  const Shape in_shape = x.shape();
  const Shape out_shape{x.size(0), x.size(1), p.out_h, p.out_w};
  p.planes = x.size(0) * x.size(1);
  auto m = std::make_shared<LinearMap>();
  m->fwd_name = p.mode == backend::InterpMode::Bilinear ? "interpolate_bilinear" : "interpolate_nearest";
  m->adj_name =
      p.mode == backend::InterpMode::Bilinear ? "interpolate_bilinear_backward" : "interpolate_nearest_backward";
  m->forward = [p, out_shape](const Tensor& t) {
    Tensor xc = t.contiguous();
    Tensor out = Tensor::empty(out_shape, {xc.dtype(), xc.device()});
    if (out.numel() > 0) GS_DISPATCH(xc.device(), interpolate_fwd, make_view(out), make_view(xc), p);
    return out;
  };
  m->adjoint = [p, in_shape](const Tensor& g) {
    Tensor gc = g.contiguous();
    Tensor gin = Tensor::empty(in_shape, {gc.dtype(), gc.device()});
    if (gin.numel() > 0) {
      if (gc.numel() == 0)
        gin.zero_();
      else
        GS_DISPATCH(gc.device(), interpolate_bwd, make_view(gin), make_view(gc), p);
    }
    return gin;
  };
  return apply_linear(m, x, false);
}

InterpParams base_params(const Tensor& x, InterpolateMode mode, bool align_corners) {
  check_float(x, "interpolate");
  GS_CHECK(x.dim() == 4, ShapeError, "interpolate: expected a 4-D input [N, C, H, W], got ", shape_str(x.shape()));
  GS_CHECK(!(mode == InterpolateMode::Nearest && align_corners), ValueError,
           "interpolate: align_corners can only be set with mode bilinear, not nearest");
  GS_CHECK(x.size(2) >= 1 && x.size(3) >= 1, ShapeError, "interpolate: empty spatial dims in input ",
           shape_str(x.shape()));
  InterpParams p;
  p.in_h = x.size(2);
  p.in_w = x.size(3);
  p.mode = mode == InterpolateMode::Bilinear ? backend::InterpMode::Bilinear : backend::InterpMode::Nearest;
  p.align_corners = align_corners;
  return p;
}

}  // namespace

Tensor interpolate(const Tensor& x, const Shape& size, InterpolateMode mode, bool align_corners) {
  InterpParams p = base_params(x, mode, align_corners);
  GS_CHECK(size.size() == 1 || size.size() == 2, ValueError, "interpolate: size must have 1 or 2 entries, got ",
           shape_str(size));
  p.out_h = size[0];
  p.out_w = size.size() == 2 ? size[1] : size[0];
  GS_CHECK(p.out_h >= 1 && p.out_w >= 1, ValueError, "interpolate (", mode_name(mode),
           "): output size must be >= 1, got ", shape_str(size), " for input ", shape_str(x.shape()));
  return run_interpolate(x, p);
}

Tensor interpolate_scale(const Tensor& x, double scale_h, double scale_w, InterpolateMode mode, bool align_corners) {
  InterpParams p = base_params(x, mode, align_corners);
  GS_CHECK(std::isfinite(scale_h) && std::isfinite(scale_w) && scale_h > 0 && scale_w > 0, ValueError, "interpolate (",
           mode_name(mode), "): scale factors must be finite and > 0, got (", scale_h, ", ", scale_w, ")");
  // Like F.interpolate: out = floor(in * scale), and the scale itself drives the source index.
  const double oh = std::floor(double(p.in_h) * scale_h), ow = std::floor(double(p.in_w) * scale_w);
  GS_CHECK(oh >= 1 && ow >= 1 && oh < 9.0e15 && ow < 9.0e15, ValueError, "interpolate (", mode_name(mode),
           "): scale factors (", scale_h, ", ", scale_w, ") give output size ", oh, "x", ow, " for input ",
           shape_str(x.shape()));
  p.out_h = int64_t(oh);
  p.out_w = int64_t(ow);
  p.scale_h = scale_h;
  p.scale_w = scale_w;
  return run_interpolate(x, p);
}

Tensor interpolate_scale(const Tensor& x, double scale_factor, InterpolateMode mode, bool align_corners) {
  return interpolate_scale(x, scale_factor, scale_factor, mode, align_corners);
}

}  // namespace gradstyle
