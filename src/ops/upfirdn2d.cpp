// upfirdn2d as a differentiable op.
//
// The public op prepares the "correlation filter" fc once (outer product for a 1-D filter,
// flipped unless flip_filter, times gain); the primitive below only correlates with fc. Its
// gradient is the same primitive on the output gradient with up and down swapped, the filter
// flipped and the padding (p0', p1') = (k - p0 - 1, in*up - out*down + p0 - up + 1) per axis
// (NVIDIA's derivation): an adjoint that is again an upfirdn2d, so any order works.
#include "gradstyle/ops/upfirdn2d.hpp"

#include "backend/upfirdn2d_kernels.hpp"
#include "gradstyle/ops/shape.hpp"
#include "gradstyle/ops/elementwise.hpp"
#include "ops/common.hpp"

namespace gradstyle {

using autograd::any_requires_grad;
using autograd::record;
using backend::make_view;
using backend::UpFirDnGeom;
using namespace ops_detail;
using V = std::vector<Tensor>;

namespace {

// Geometry of one call; g.planes/h/w/oh/ow are filled from the tensors.
Tensor upfirdn_corr(const Tensor& x, const Tensor& fc, UpFirDnGeom g) {
  g.planes = x.size(0) * x.size(1);
  g.h = x.size(2);
  g.w = x.size(3);
  g.kh = fc.size(0);
  g.kw = fc.size(1);
  g.oh = (g.h * g.up_y + g.pad_y0 + g.pad_y1 - g.kh) / g.down_y + 1;
  g.ow = (g.w * g.up_x + g.pad_x0 + g.pad_x1 - g.kw) / g.down_x + 1;
  Tensor xc = x.detach().contiguous();
  Tensor y = Tensor::empty({x.size(0), x.size(1), g.oh, g.ow}, {x.dtype(), x.device()});
  if (y.numel() > 0) GS_DISPATCH(x.device(), upfirdn2d, g, make_view(y), make_view(xc), make_view(fc));
  if (any_requires_grad({&x})) {
    record("upfirdn2d", y, {x}, [fc, g](const Tensor& gy) {
      UpFirDnGeom b;
      b.up_x = g.down_x, b.up_y = g.down_y;
      b.down_x = g.up_x, b.down_y = g.up_y;
      b.pad_x0 = g.kw - g.pad_x0 - 1;
      b.pad_x1 = g.w * g.up_x - g.ow * g.down_x + g.pad_x0 - g.up_x + 1;
      b.pad_y0 = g.kh - g.pad_y0 - 1;
      b.pad_y1 = g.h * g.up_y - g.oh * g.down_y + g.pad_y0 - g.up_y + 1;
      Tensor ff = flip(fc, {0, 1}).contiguous();
      return V{upfirdn_corr(gy, ff, b)};
    });
  }
  return y;
}

}  // namespace

Tensor upfirdn2d(const Tensor& x, const Tensor& f, const UpFirDn2dOptions& o) {
  const char* op = "upfirdn2d";
  check_defined(x, op, "x");
  check_defined(f, op, "filter");
  check_float(x, op);
  check_same(x, f, op);
  GS_CHECK(x.dim() == 4, ShapeError, op, ": expected a 4-D input [N, C, H, W], got ", shape_str(x.shape()));
  GS_CHECK((f.dim() == 1 || f.dim() == 2) && f.numel() > 0, ShapeError, op,
           ": expected a non-empty 1-D (separable) or 2-D filter, got ", shape_str(f.shape()));
  GS_CHECK(o.up_x >= 1 && o.up_y >= 1 && o.down_x >= 1 && o.down_y >= 1, ValueError, op,
           ": up and down factors must be >= 1, got up (", o.up_x, ", ", o.up_y, "), down (", o.down_x, ", ", o.down_y,
           ")");
  GS_CHECK(!(autograd::is_grad_enabled() && f.requires_grad()), AutogradError, op,
           ": the filter is a constant; gradients with respect to it are not supported (detach it)");
  const int64_t kh = f.size(0), kw = f.dim() == 2 ? f.size(1) : f.size(0);
  const int64_t span_y = x.size(2) * o.up_y + o.pad_y0 + o.pad_y1 - kh;
  const int64_t span_x = x.size(3) * o.up_x + o.pad_x0 + o.pad_x1 - kw;
  GS_CHECK(span_y >= 0 && span_x >= 0, ShapeError, op, ": filter ", kh, "x", kw,
           " larger than the padded upsampled input (input ", shape_str(x.shape()), ", up (", o.up_x, ", ", o.up_y,
           "), pad (", o.pad_x0, ", ", o.pad_x1, ", ", o.pad_y0, ", ", o.pad_y1, ") gives ",
           x.size(3) * o.up_x + o.pad_x0 + o.pad_x1, " x ", x.size(2) * o.up_y + o.pad_y0 + o.pad_y1, ")");
  // The correlation filter: [kh, kw], flipped for a true convolution, scaled by gain.
  Tensor fc;
  {
    autograd::NoGradGuard ng;
    Tensor f2 = f.detach();
    if (f2.dim() == 1) f2 = mul(reshape(f2, {kh, 1}), reshape(f2, {1, kw}));
    if (!o.flip_filter) f2 = flip(f2, {0, 1});
    fc = mul_scalar(f2, o.gain).contiguous();
  }
  UpFirDnGeom g;
  g.up_x = o.up_x, g.up_y = o.up_y, g.down_x = o.down_x, g.down_y = o.down_y;
  g.pad_x0 = o.pad_x0, g.pad_x1 = o.pad_x1, g.pad_y0 = o.pad_y0, g.pad_y1 = o.pad_y1;
  return upfirdn_corr(x, fc, g);
}

Tensor upfirdn2d(const Tensor& x, const Tensor& f, int64_t up, int64_t down, std::array<int64_t, 4> pad,
                 bool flip_filter, double gain) {
  UpFirDn2dOptions o;
  o.up_x = o.up_y = up;
  o.down_x = o.down_y = down;
  o.pad_x0 = pad[0], o.pad_x1 = pad[1], o.pad_y0 = pad[2], o.pad_y1 = pad[3];
  o.flip_filter = flip_filter;
  o.gain = gain;
  return upfirdn2d(x, f, o);
}

}  // namespace gradstyle
