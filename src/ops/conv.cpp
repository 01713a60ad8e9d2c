// conv2d, conv_transpose2d and the two conv2d gradients as differentiable ops.
//
// Three primitives share one geometry (backend::ConvGeom, the conv y = conv(x, w)):
//   fwd(x, w, b)      -> y            backward: x <- bwd_data(g, w), w <- bwd_filter(x, g), b <- sum(g)
//   bwd_data(dy, w, b) -> dx          backward: dy <- fwd(G, w),     w <- bwd_filter(G, dy), b <- sum(G)
//   bwd_filter(x, dy)  -> dw          backward: x <- bwd_data(dy, G), dy <- fwd(x, G)
// Each is bilinear in its two tensor arguments, so these rules are exact to any order.
// conv_transpose2d is bwd_data with a bias.
#include "gradstyle/ops/conv.hpp"

#include <algorithm>

#include "backend/conv_kernels.hpp"
#include "gradstyle/ops/reduce.hpp"
#include "gradstyle/ops/shape.hpp"
#include "ops/common.hpp"

namespace gradstyle {

using autograd::any_requires_grad;
using autograd::record;
using backend::ConvGeom;
using backend::make_view;
using backend::StridedView;
using namespace ops_detail;
using V = std::vector<Tensor>;

namespace {

StridedView view_or_null(const Tensor& t) { return t.defined() ? make_view(t) : StridedView{}; }

Tensor conv_fwd(const Tensor& x, const Tensor& w, const Tensor& b, ConvGeom g);
Tensor conv_bwd_data(const Tensor& dy, const Tensor& w, const Tensor& b, ConvGeom g);
Tensor conv_bwd_filter(const Tensor& x, const Tensor& dy, ConvGeom g);

bool needs(const Tensor& t) { return t.defined() && t.requires_grad(); }

// y [n, k, oh, ow] = conv(x [n, c, h, w], w) (+ b)
Tensor conv_fwd(const Tensor& x, const Tensor& w, const Tensor& b, ConvGeom g) {
  g.n = x.size(0);
  Tensor xc = x.detach().contiguous(), wc = w.detach().contiguous(), bc = b.defined() ? b.detach().contiguous() : b;
  Tensor y = Tensor::empty({g.n, g.k, g.oh, g.ow}, {x.dtype(), x.device()});
  if (y.numel() > 0) {
    if (g.c == 0 || g.r * g.s == 0) {
      if (bc.defined()) y.copy_(reshape(bc, {1, g.k, 1, 1}));
      else y.zero_();
    } else {
      GS_DISPATCH(x.device(), conv2d_forward, g, make_view(y), make_view(xc), make_view(wc), view_or_null(bc));
    }
  }
  if (any_requires_grad({&x, &w, &b})) {
    bool gx = needs(x), gw = needs(w), gb = needs(b);
    record("conv2d", y, {x, w, b}, [x, w, g, gx, gw, gb](const Tensor& gy) {
      return V{gx ? conv_bwd_data(gy, w, Tensor(), g) : Tensor(), gw ? conv_bwd_filter(x, gy, g) : Tensor(),
               gb ? sum(gy, {0, 2, 3}) : Tensor()};
    });
  }
  return y;
}

// dx [n, c, h, w] = adjoint of conv applied to dy [n, k, oh, ow] (+ b[c])
Tensor conv_bwd_data(const Tensor& dy, const Tensor& w, const Tensor& b, ConvGeom g) {
  g.n = dy.size(0);
  Tensor dyc = dy.detach().contiguous(), wc = w.detach().contiguous(), bc = b.defined() ? b.detach().contiguous() : b;
  Tensor dx = Tensor::empty({g.n, g.c, g.h, g.w}, {dy.dtype(), dy.device()});
  if (dx.numel() > 0) {
    if (g.k == 0 || g.r * g.s == 0 || g.oh * g.ow == 0) {
      if (bc.defined()) dx.copy_(reshape(bc, {1, g.c, 1, 1}));
      else dx.zero_();
    } else {
      GS_DISPATCH(dy.device(), conv2d_backward_data, g, make_view(dx), make_view(dyc), make_view(wc),
                  view_or_null(bc));
    }
  }
  if (any_requires_grad({&dy, &w, &b})) {
    bool gdy = needs(dy), gw = needs(w), gb = needs(b);
    record("conv_transpose2d", dx, {dy, w, b}, [dy, w, g, gdy, gw, gb](const Tensor& G) {
      return V{gdy ? conv_fwd(G, w, Tensor(), g) : Tensor(), gw ? conv_bwd_filter(G, dy, g) : Tensor(),
               gb ? sum(G, {0, 2, 3}) : Tensor()};
    });
  }
  return dx;
}

// dw [k, c/groups, r, s] = sum_n corr(x [n, c, h, w], dy [n, k, oh, ow])
Tensor conv_bwd_filter(const Tensor& x, const Tensor& dy, ConvGeom g) {
  g.n = x.size(0);
  Tensor xc = x.detach().contiguous(), dyc = dy.detach().contiguous();
  Tensor dw = Tensor::empty({g.k, g.c / g.groups, g.r, g.s}, {x.dtype(), x.device()});
  if (dw.numel() > 0) {
    if (g.n == 0 || g.oh * g.ow == 0) dw.zero_();
    else GS_DISPATCH(x.device(), conv2d_backward_filter, g, make_view(dw), make_view(xc), make_view(dyc));
  }
  if (any_requires_grad({&x, &dy})) {
    bool gx = needs(x), gdy = needs(dy);
    record("conv2d_weight_grad", dw, {x, dy}, [x, dy, g, gx, gdy](const Tensor& G) {
      return V{gx ? conv_bwd_data(dy, G, Tensor(), g) : Tensor(), gdy ? conv_fwd(x, G, Tensor(), g) : Tensor()};
    });
  }
  return dw;
}

// ---- argument checks ----------------------------------------------------------------------------

void check_pair(const char* op, const char* what, const Int2& v, int64_t min) {
  GS_CHECK(v[0] >= min && v[1] >= min, ValueError, op, ": ", what, " must be >= ", min, ", got (", v[0], ", ", v[1],
           ")");
}

void check_tensors(const char* op, const Tensor& x, const Tensor& w, const Tensor& b, const char* xname) {
  check_defined(x, op, xname);
  check_defined(w, op, "weight");
  check_float(x, op);
  check_same(x, w, op);
  GS_CHECK(x.dim() == 4, ShapeError, op, ": expected a 4-D ", xname, " [N, C, H, W], got ", shape_str(x.shape()));
  GS_CHECK(w.dim() == 4, ShapeError, op, ": expected a 4-D weight, got ", shape_str(w.shape()), " (", xname, " ",
           shape_str(x.shape()), ")");
  if (b.defined()) check_same(x, b, op);
}

void check_common(const char* op, const Int2& stride, const Int2& padding, const Int2& dilation, int64_t groups) {
  check_pair(op, "stride", stride, 1);
  check_pair(op, "dilation", dilation, 1);
  check_pair(op, "padding", padding, 0);
  GS_CHECK(groups >= 1, ValueError, op, ": groups must be >= 1, got ", groups);
}

ConvGeom base_geom(const Int2& stride, const Int2& padding, const Int2& dilation, int64_t groups) {
  ConvGeom g;
  g.stride_h = stride[0];
  g.stride_w = stride[1];
  g.pad_h = padding[0];
  g.pad_w = padding[1];
  g.dil_h = dilation[0];
  g.dil_w = dilation[1];
  g.groups = groups;
  return g;
}

// Natural conv output size along one axis (may be <= 0 when the kernel does not fit).
int64_t conv_out(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d) {
  int64_t span = in + 2 * p - d * (k - 1) - 1;
  return span < 0 ? 0 : span / s + 1;
}

void check_output(const char* op, const ConvGeom& g, const Tensor& x, const Tensor& w) {
  GS_CHECK(g.oh >= 1 && g.ow >= 1, ShapeError, op, ": kernel larger than the padded input: input ",
           shape_str(x.shape()), ", weight ", shape_str(w.shape()), ", padding (", g.pad_h, ", ", g.pad_w,
           "), dilation (", g.dil_h, ", ", g.dil_w, ") gives an output of ", g.oh, " x ", g.ow);
}

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dOptions& o) {
  const char* op = "conv2d";
  check_tensors(op, x, w, b, "input");
  check_common(op, o.stride, o.padding, o.dilation, o.groups);
  ConvGeom g = base_geom(o.stride, o.padding, o.dilation, o.groups);
  g.c = x.size(1), g.h = x.size(2), g.w = x.size(3);
  g.k = w.size(0), g.r = w.size(2), g.s = w.size(3);
  GS_CHECK(g.c % o.groups == 0 && g.k % o.groups == 0, ShapeError, op, ": groups (", o.groups,
           ") must divide the input channels (", g.c, ") and the output channels (", g.k, "), input ",
           shape_str(x.shape()), ", weight ", shape_str(w.shape()));
  GS_CHECK(w.size(1) * o.groups == g.c, ShapeError, op, ": weight expects ", w.size(1) * o.groups,
           " input channels but input has ", g.c, " (input ", shape_str(x.shape()), ", weight ",
           shape_str(w.shape()), ", groups ", o.groups, ")");
  if (b.defined())
    GS_CHECK(b.dim() == 1 && b.size(0) == g.k, ShapeError, op, ": bias ", shape_str(b.shape()), " does not match ",
             g.k, " output channels (weight ", shape_str(w.shape()), ")");
  g.oh = conv_out(g.h, g.r, g.stride_h, g.pad_h, g.dil_h);
  g.ow = conv_out(g.w, g.s, g.stride_w, g.pad_w, g.dil_w);
  check_output(op, g, x, w);
  return conv_fwd(x, w, b, g);
}

Tensor conv_transpose2d(const Tensor& x, const Tensor& w, const Tensor& b, const ConvTranspose2dOptions& o) {
  const char* op = "conv_transpose2d";
  check_tensors(op, x, w, b, "input");
  check_common(op, o.stride, o.padding, o.dilation, o.groups);
  for (int i = 0; i < 2; ++i)
    GS_CHECK(o.output_padding[i] >= 0 && o.output_padding[i] < std::max(o.stride[i], o.dilation[i]), ValueError, op,
             ": output_padding (", o.output_padding[0], ", ", o.output_padding[1],
             ") must be >= 0 and smaller than stride or dilation (stride (", o.stride[0], ", ", o.stride[1],
             "), dilation (", o.dilation[0], ", ", o.dilation[1], "))");
  // In conv terms: y (this op's output) is the conv input, x is the conv output.
  ConvGeom g = base_geom(o.stride, o.padding, o.dilation, o.groups);
  g.k = x.size(1), g.oh = x.size(2), g.ow = x.size(3);
  g.r = w.size(2), g.s = w.size(3);
  GS_CHECK(w.size(0) == g.k, ShapeError, op, ": weight expects ", w.size(0), " input channels but input has ", g.k,
           " (input ", shape_str(x.shape()), ", weight ", shape_str(w.shape()), ")");
  GS_CHECK(g.k % o.groups == 0, ShapeError, op, ": groups (", o.groups, ") must divide the input channels (", g.k,
           "), input ", shape_str(x.shape()), ", weight ", shape_str(w.shape()));
  g.c = w.size(1) * o.groups;
  if (b.defined())
    GS_CHECK(b.dim() == 1 && b.size(0) == g.c, ShapeError, op, ": bias ", shape_str(b.shape()), " does not match ",
             g.c, " output channels (weight ", shape_str(w.shape()), ", groups ", o.groups, ")");
  g.h = (g.oh - 1) * g.stride_h - 2 * g.pad_h + g.dil_h * (g.r - 1) + o.output_padding[0] + 1;
  g.w = (g.ow - 1) * g.stride_w - 2 * g.pad_w + g.dil_w * (g.s - 1) + o.output_padding[1] + 1;
  GS_CHECK(g.h >= 1 && g.w >= 1 && g.oh >= 1 && g.ow >= 1, ShapeError, op, ": output size ", g.h, " x ", g.w,
           " is not positive (input ", shape_str(x.shape()), ", weight ", shape_str(w.shape()), ", padding (",
           g.pad_h, ", ", g.pad_w, "))");
  return conv_bwd_data(x, w, b, g);
}

Tensor conv2d_input_grad(const Tensor& gy, const Tensor& w, Int2 input_hw, const Conv2dOptions& o) {
  const char* op = "conv2d_input_grad";
  check_tensors(op, gy, w, Tensor(), "grad_out");
  check_common(op, o.stride, o.padding, o.dilation, o.groups);
  ConvGeom g = base_geom(o.stride, o.padding, o.dilation, o.groups);
  g.k = gy.size(1), g.oh = gy.size(2), g.ow = gy.size(3);
  g.r = w.size(2), g.s = w.size(3);
  g.h = input_hw[0], g.w = input_hw[1];
  GS_CHECK(w.size(0) == g.k && g.k % o.groups == 0, ShapeError, op, ": weight ", shape_str(w.shape()),
           " does not match grad_out ", shape_str(gy.shape()), " with groups ", o.groups);
  g.c = w.size(1) * o.groups;
  const int64_t min_h = (g.oh - 1) * g.stride_h - 2 * g.pad_h + g.dil_h * (g.r - 1) + 1;
  const int64_t min_w = (g.ow - 1) * g.stride_w - 2 * g.pad_w + g.dil_w * (g.s - 1) + 1;
  const int64_t slack_h = std::max(g.stride_h, g.dil_h), slack_w = std::max(g.stride_w, g.dil_w);
  GS_CHECK(g.h >= std::max<int64_t>(min_h, 1) && g.h < min_h + slack_h && g.w >= std::max<int64_t>(min_w, 1) &&
               g.w < min_w + slack_w,
           ShapeError, op, ": input size ", g.h, " x ", g.w, " is inconsistent with grad_out ", shape_str(gy.shape()),
           " and weight ", shape_str(w.shape()), " (expected ", min_h, "..", min_h + slack_h - 1, " x ", min_w, "..",
           min_w + slack_w - 1, ")");
  return conv_bwd_data(gy, w, Tensor(), g);
}

Tensor conv2d_weight_grad(const Tensor& x, const Tensor& gy, Int2 kernel_hw, const Conv2dOptions& o) {
  const char* op = "conv2d_weight_grad";
  check_tensors(op, x, gy, Tensor(), "input");
  check_common(op, o.stride, o.padding, o.dilation, o.groups);
  check_pair(op, "kernel size", kernel_hw, 1);
  ConvGeom g = base_geom(o.stride, o.padding, o.dilation, o.groups);
  g.c = x.size(1), g.h = x.size(2), g.w = x.size(3);
  g.k = gy.size(1), g.oh = gy.size(2), g.ow = gy.size(3);
  g.r = kernel_hw[0], g.s = kernel_hw[1];
  GS_CHECK(gy.size(0) == x.size(0) && g.c % o.groups == 0 && g.k % o.groups == 0, ShapeError, op, ": input ",
           shape_str(x.shape()), " and grad_out ", shape_str(gy.shape()), " do not match (groups ", o.groups, ")");
  GS_CHECK(conv_out(g.h, g.r, g.stride_h, g.pad_h, g.dil_h) == g.oh &&
               conv_out(g.w, g.s, g.stride_w, g.pad_w, g.dil_w) == g.ow,
           ShapeError, op, ": grad_out ", shape_str(gy.shape()), " is not the conv2d output size of input ",
           shape_str(x.shape()), " with a ", g.r, "x", g.s, " kernel");
  return conv_bwd_filter(x, gy, g);
}

}  // namespace gradstyle
