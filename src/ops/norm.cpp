#include "gradstyle/ops/norm.hpp"

#include <cmath>

#include "backend/norm_kernels.hpp"
#include "gradstyle/ops/elementwise.hpp"
#include "gradstyle/ops/reduce.hpp"
#include "gradstyle/ops/shape.hpp"
#include "ops/common.hpp"

namespace gradstyle {

using autograd::any_requires_grad;
using autograd::is_grad_enabled;
using autograd::record;
using backend::ChannelParams;
using backend::make_view;
using namespace ops_detail;
using V = std::vector<Tensor>;

namespace {

// x [N, C, ...] seen as [N, C, S]: kernel geometry, the dims reduced per channel and the shape
// that broadcasts a [C] vector against x.
struct ChannelGeom {
  ChannelParams p;
  Shape dims;         // every dim but 1
  Shape bshape;       // [1, C, 1, ...]
  int64_t count = 0;  // N * S values per channel
};

ChannelGeom channel_geom(const Tensor& x) {
  ChannelGeom g;
  g.p.n = x.size(0);
  g.p.c = x.size(1);
  g.p.s = 1;
  for (int64_t d = 2; d < x.dim(); ++d) g.p.s *= x.size(d);
  for (int64_t d = 0; d < x.dim(); ++d) {
    if (d != 1) g.dims.push_back(d);
    g.bshape.push_back(d == 1 ? x.size(1) : 1);
  }
  g.count = g.p.n * g.p.s;
  return g;
}

// A [C]-shaped parameter or buffer of x's dtype and device (or undefined).
void check_channel_vec(const Tensor& t, const Tensor& x, int64_t c, const char* op, const char* name) {
  if (!t.defined()) return;
  GS_CHECK(t.dtype() == x.dtype(), DTypeError, op, ": ", name, " is ", dtype_name(t.dtype()), " but input is ",
           dtype_name(x.dtype()));
  GS_CHECK(t.device() == x.device(), DeviceError, op, ": ", name, " is on ", t.device().str(), " but input is on ",
           x.device().str());
  GS_CHECK(t.dim() == 1 && t.size(0) == c, ShapeError, op, ": ", name, " must have shape [", c, "], got ",
           shape_str(t.shape()), " for input ", shape_str(x.shape()));
}

Tensor vec_empty(int64_t c, const Tensor& like) {
  return Tensor::empty({c}, {like.dtype(), like.device()});
}

// First-order batch_norm backward with fused per-channel kernels (grad mode off): one pass for the
// sums of g and g*(x - mean), one pass for dx = g*A + x*B + C.
V bn_backward_fused(const Tensor& g, const Tensor& x, const Tensor& w, const Tensor& mean, const Tensor& invstd,
                    const ChannelGeom& geo, bool training, bool need_x, bool need_w, bool need_b) {
  Tensor gc = g.contiguous(), xc = x.detach().contiguous();
  const int64_t c = geo.p.c;
  Tensor sum_g = vec_empty(c, x), sum_gx = vec_empty(c, x);
  if (geo.count > 0) {
    GS_DISPATCH(x.device(), channel_grad_sums, make_view(sum_g), make_view(sum_gx), make_view(gc), make_view(xc),
                make_view(mean), geo.p);
  } else {
    sum_g.zero_();
    sum_gx.zero_();
  }
  Tensor dx, dw, db;
  if (need_b) db = sum_g;
  if (need_w) dw = mul(sum_gx, invstd);
  if (need_x) {
    Tensor a = w.defined() ? mul(w.detach(), invstd) : invstd.clone();
    dx = Tensor::empty(x.shape(), {x.dtype(), x.device()});
    if (geo.count > 0 && training) {
      // dx = A (g - mean(g) - xhat * mean(g xhat)) with xhat = (x - mean) * invstd
      const double inv_m = 1.0 / double(geo.count);
      Tensor bcoef = mul_scalar(mul(a, mul(square(invstd), sum_gx)), -inv_m);
      Tensor shift = sub(mul_scalar(mul(a, sum_g), -inv_m), mul(mean, bcoef));
      GS_DISPATCH(x.device(), channel_affine2, make_view(dx), make_view(gc), make_view(a), make_view(xc),
                  make_view(bcoef), make_view(shift), geo.p);
    } else if (geo.count > 0) {
      Tensor zero = Tensor::zeros({c}, {x.dtype(), x.device()});
      GS_DISPATCH(x.device(), channel_affine, make_view(dx), make_view(gc), make_view(a), make_view(zero), geo.p);
    }
  }
  return V{dx, dw, db};
}

// The same gradients written with differentiable ops (used under create_graph). In training the
// batch statistics are recomputed from x so that their dependence on x is differentiated too.
V bn_backward_composed(const Tensor& g, const Tensor& x, const Tensor& w, const Tensor& mean, const Tensor& invstd,
                       const ChannelGeom& geo, bool training, double eps, bool need_x, bool need_w, bool need_b) {
  const Shape& dims = geo.dims;
  Tensor xhat, inv;
  if (training) {
    Tensor xcen = sub(x, gradstyle::mean(x, dims, true));
    inv = rsqrt(add_scalar(gradstyle::mean(square(xcen), dims, true), eps));
    xhat = mul(xcen, inv);
  } else {
    inv = reshape(invstd, geo.bshape);
    xhat = mul(sub(x, reshape(mean, geo.bshape)), inv);
  }
  Tensor dx, dw, db;
  if (need_b) db = sum(g, dims);
  if (need_w) dw = sum(mul(g, xhat), dims);
  if (need_x) {
    Tensor gw = w.defined() ? mul(g, reshape(w, geo.bshape)) : g;
    if (training) {
      Tensor centred = sub(gw, gradstyle::mean(gw, dims, true));
      dx = mul(inv, sub(centred, mul(xhat, gradstyle::mean(mul(gw, xhat), dims, true))));
    } else {
      dx = mul(gw, inv);
    }
  }
  return V{dx, dw, db};
}

}  // namespace

Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                  const Tensor& bias, bool training, double momentum, double eps) {
  const char* op = "batch_norm";
  check_float(x, op);
  GS_CHECK(x.dim() >= 2, ShapeError, op, ": expected an input [N, C, ...] with at least 2 dims, got ",
           shape_str(x.shape()));
  const int64_t c = x.size(1);
  check_channel_vec(weight, x, c, op, "weight");
  check_channel_vec(bias, x, c, op, "bias");
  check_channel_vec(running_mean, x, c, op, "running_mean");
  check_channel_vec(running_var, x, c, op, "running_var");
  GS_CHECK(!(running_mean.defined() && running_mean.requires_grad()) &&
               !(running_var.defined() && running_var.requires_grad()),
           ValueError, op, ": running statistics are buffers and must not require grad");
  GS_CHECK(std::isfinite(eps) && eps >= 0, ValueError, op, ": eps must be finite and >= 0, got ", eps);
  GS_CHECK(momentum >= 0 && momentum <= 1, ValueError, op, ": momentum must be in [0, 1], got ", momentum);
  const ChannelGeom geo = channel_geom(x);
  if (training) {
    GS_CHECK(geo.count > 1, ValueError, op, ": expected more than 1 value per channel when training, got input ",
             shape_str(x.shape()));
  } else {
    GS_CHECK(running_mean.defined() && running_var.defined(), ValueError, op,
             ": running_mean and running_var are required in evaluation mode");
  }

  Tensor xc = x.detach().contiguous();
  Tensor mean, invstd, out;  // mean, invstd: [C], constants of the graph
  {
    autograd::NoGradGuard ng;
    if (training) {
      mean = vec_empty(c, x);
      Tensor var = vec_empty(c, x);
      GS_DISPATCH(x.device(), channel_moments, make_view(mean), make_view(var), make_view(xc), geo.p);
      invstd = rsqrt(add_scalar(var, eps));
      // PyTorch's update: the running variance tracks the unbiased batch variance.
      const double unbias = double(geo.count) / double(geo.count - 1);
      Tensor rm = running_mean, rv = running_var;  // handles to the caller's buffers
      if (rm.defined()) rm.mul_(1.0 - momentum).add_(mean, momentum);
      if (rv.defined()) rv.mul_(1.0 - momentum).add_(mul_scalar(var, unbias), momentum);
    } else {
      mean = running_mean.detach().contiguous().clone();
      invstd = rsqrt(add_scalar(running_var.detach(), eps));
    }
    Tensor scale = weight.defined() ? mul(weight.detach(), invstd) : invstd;
    Tensor shift = bias.defined() ? sub(bias.detach(), mul(mean, scale)) : neg(mul(mean, scale));
    scale = scale.contiguous();
    shift = shift.contiguous();
    out = Tensor::empty(x.shape(), {x.dtype(), x.device()});
    if (out.numel() > 0)
      GS_DISPATCH(x.device(), channel_affine, make_view(out), make_view(xc), make_view(scale), make_view(shift), geo.p);
  }

  if (any_requires_grad({&x, &weight, &bias})) {
    const bool need_x = x.requires_grad(), need_w = weight.defined() && weight.requires_grad();
    const bool need_b = bias.defined() && bias.requires_grad();
    record(op, out, {x, weight, bias},
           [x, weight, mean, invstd, geo, training, eps, need_x, need_w, need_b](const Tensor& g) {
             if (is_grad_enabled())
               return bn_backward_composed(g, x, weight, mean, invstd, geo, training, eps, need_x, need_w, need_b);
             return bn_backward_fused(g, x, weight, mean, invstd, geo, training, need_x, need_w, need_b);
           });
  }
  return out;
}

Tensor prelu(const Tensor& x, const Tensor& weight) {
  const char* op = "prelu";
  check_float(x, op);
  check_defined(weight, op, "weight");
  GS_CHECK(weight.dtype() == x.dtype(), DTypeError, op, ": weight is ", dtype_name(weight.dtype()), " but input is ",
           dtype_name(x.dtype()));
  GS_CHECK(weight.device() == x.device(), DeviceError, op, ": weight is on ", weight.device().str(),
           " but input is on ", x.device().str());
  const bool shared = weight.numel() == 1;
  GS_CHECK(weight.dim() == 1 && (shared || (x.dim() >= 2 && weight.size(0) == x.size(1))), ShapeError, op,
           ": weight must be [1] or [C] with C = input.size(1); got weight ", shape_str(weight.shape()), " for input ",
           shape_str(x.shape()));
  ChannelParams p;
  if (x.dim() >= 2) {
    p = channel_geom(x).p;
  } else {
    p.n = 1;
    p.c = 1;
    p.s = x.numel();
  }
  Tensor xc = x.detach().contiguous(), wc = weight.detach().contiguous();
  Tensor out = Tensor::empty(x.shape(), {x.dtype(), x.device()});
  if (out.numel() > 0) GS_DISPATCH(x.device(), prelu_fwd, make_view(out), make_view(xc), make_view(wc), p);
  if (any_requires_grad({&x, &weight})) {
    const bool need_x = x.requires_grad(), need_w = weight.requires_grad();
    record(op, out, {x, weight}, [x, weight, shared, need_x, need_w](const Tensor& g) {
      // Written with differentiable ops: second order w.r.t. x, weight and g.
      Tensor pos = gt(x, scalar_like(0.0, x));
      Tensor dx, dw;
      if (need_x) {
        Shape bshape(size_t(x.dim()), 1);
        if (!shared) bshape[1] = x.size(1);
        dx = where(pos, g, mul(g, shared ? weight : reshape(weight, bshape)));
      }
      if (need_w) {
        Tensor neg_part = where(pos, scalar_like(0.0, x), mul(g, x));
        if (shared) {
          dw = reshape(sum(neg_part), {1});
        } else {
          Shape dims;
          for (int64_t d = 0; d < x.dim(); ++d)
            if (d != 1) dims.push_back(d);
          dw = sum(neg_part, dims);
        }
      }
      return V{dx, dw};
    });
  }
  return out;
}

Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight, const Tensor& bias,
                  double eps) {
  const char* op = "layer_norm";
  check_float(x, op);
  const int64_t k = int64_t(normalized_shape.size());
  GS_CHECK(k >= 1 && k <= x.dim() && Shape(x.shape().end() - k, x.shape().end()) == normalized_shape, ShapeError, op,
           ": normalized_shape ", shape_str(normalized_shape), " must equal the last dims of input ",
           shape_str(x.shape()));
  for (const auto& [t, name] : {std::pair{&weight, "weight"}, std::pair{&bias, "bias"}}) {
    if (!t->defined()) continue;
    GS_CHECK(t->dtype() == x.dtype(), DTypeError, op, ": ", name, " is ", dtype_name(t->dtype()), " but input is ",
             dtype_name(x.dtype()));
    GS_CHECK(t->device() == x.device(), DeviceError, op, ": ", name, " is on ", t->device().str(), " but input is on ",
             x.device().str());
    GS_CHECK(t->shape() == normalized_shape, ShapeError, op, ": ", name, " must have shape ",
             shape_str(normalized_shape), ", got ", shape_str(t->shape()));
  }
  GS_CHECK(std::isfinite(eps) && eps >= 0, ValueError, op, ": eps must be finite and >= 0, got ", eps);
  Shape dims;
  for (int64_t d = x.dim() - k; d < x.dim(); ++d) dims.push_back(d);
  // Composed from differentiable ops, so every order of gradient is exact.
  Tensor xcen = sub(x, mean(x, dims, true));
  Tensor y = mul(xcen, rsqrt(add_scalar(mean(square(xcen), dims, true), eps)));
  if (weight.defined()) y = mul(y, weight);
  if (bias.defined()) y = add(y, bias);
  return y;
}

Tensor pixel_norm(const Tensor& x, int64_t dim, double eps) {
  check_float(x, "pixel_norm");
  GS_CHECK(x.dim() >= 1, ShapeError, "pixel_norm: expected at least a 1-D input, got ", shape_str(x.shape()));
  const int64_t d = wrap_dim(dim, x.dim(), "pixel_norm");
  GS_CHECK(std::isfinite(eps) && eps >= 0, ValueError, "pixel_norm: eps must be finite and >= 0, got ", eps);
  return mul(x, rsqrt(add_scalar(mean(square(x), {d}, true), eps)));
}

}  // namespace gradstyle
