#include "gradstyle/ops/pool.hpp"

#include <memory>

#include "backend/pool_kernels.hpp"
#include "ops/common.hpp"
#include "ops/linear_map.hpp"

namespace gradstyle {

using autograd::any_requires_grad;
using autograd::record;
using backend::AdaptivePoolParams;
using backend::make_view;
using backend::Pool2dParams;
using namespace ops_detail;
using V = std::vector<Tensor>;

namespace {

struct HW {
  int64_t h, w;
};

// {v} or {h, w}; `dflt` when empty (and allowed).
HW pair_arg(const Shape& s, const char* op, const char* what, const HW* dflt = nullptr) {
  if (s.empty() && dflt) return *dflt;
  GS_CHECK(s.size() == 1 || s.size() == 2, ValueError, op, ": ", what, " must have 1 or 2 entries, got ", shape_str(s));
  return s.size() == 1 ? HW{s[0], s[0]} : HW{s[0], s[1]};
}

void check_image(const Tensor& x, const char* op) {
  check_float(x, op);
  GS_CHECK(x.dim() == 4, ShapeError, op, ": expected a 4-D input [N, C, H, W], got ", shape_str(x.shape()));
}

Pool2dParams pool_params(const Tensor& x, const Shape& kernel, const Shape& stride, const Shape& padding,
                         const char* op) {
  check_image(x, op);
  HW k = pair_arg(kernel, op, "kernel");
  HW s = pair_arg(stride, op, "stride", &k);
  HW pd = pair_arg(padding, op, "padding");
  GS_CHECK(k.h >= 1 && k.w >= 1, ValueError, op, ": kernel must be >= 1, got ", shape_str(kernel));
  GS_CHECK(s.h >= 1 && s.w >= 1, ValueError, op, ": stride must be >= 1, got ", shape_str(stride));
  GS_CHECK(pd.h >= 0 && pd.w >= 0, ValueError, op, ": padding must be >= 0, got ", shape_str(padding));
  GS_CHECK(2 * pd.h <= k.h && 2 * pd.w <= k.w, ValueError, op, ": padding ", shape_str(padding),
           " must be at most half the kernel ", shape_str(kernel));
  Pool2dParams p;
  p.planes = x.size(0) * x.size(1);
  p.in_h = x.size(2);
  p.in_w = x.size(3);
  GS_CHECK(p.in_h + 2 * pd.h >= k.h && p.in_w + 2 * pd.w >= k.w, ShapeError, op, ": kernel ", k.h, "x", k.w,
           " is larger than the padded input ", p.in_h + 2 * pd.h, "x", p.in_w + 2 * pd.w, " (input ",
           shape_str(x.shape()), ")");
  p.kh = k.h;
  p.kw = k.w;
  p.sh = s.h;
  p.sw = s.w;
  p.ph = pd.h;
  p.pw = pd.w;
  p.out_h = (p.in_h + 2 * pd.h - k.h) / s.h + 1;
  p.out_w = (p.in_w + 2 * pd.w - k.w) / s.w + 1;
  return p;
}

Options opts(const Tensor& t) {
  return {t.dtype(), t.device()};
}

}  // namespace

Tensor avg_pool2d(const Tensor& x, const Shape& kernel, const Shape& stride, const Shape& padding) {
  const Pool2dParams p = pool_params(x, kernel, stride, padding, "avg_pool2d");
  const Shape in_shape = x.shape();
  const Shape out_shape{x.size(0), x.size(1), p.out_h, p.out_w};
  auto m = std::make_shared<LinearMap>();
  m->fwd_name = "avg_pool2d";
  m->adj_name = "avg_pool2d_backward";
  m->forward = [p, out_shape](const Tensor& t) {
    Tensor xc = t.contiguous();
    Tensor out = Tensor::empty(out_shape, opts(xc));
    if (out.numel() > 0) GS_DISPATCH(xc.device(), avg_pool2d_fwd, make_view(out), make_view(xc), p);
    return out;
  };
  m->adjoint = [p, in_shape](const Tensor& g) {
    Tensor gc = g.contiguous();
    Tensor gin = Tensor::empty(in_shape, opts(gc));
    if (gin.numel() > 0) GS_DISPATCH(gc.device(), avg_pool2d_bwd, make_view(gin), make_view(gc), p);
    return gin;
  };
  return apply_linear(m, x, false);
}

Tensor max_pool2d(const Tensor& x, const Shape& kernel, const Shape& stride, const Shape& padding) {
  const Pool2dParams p = pool_params(x, kernel, stride, padding, "max_pool2d");
  const Shape in_shape = x.shape();
  const Shape out_shape{x.size(0), x.size(1), p.out_h, p.out_w};
  Tensor xc = x.detach().contiguous();
  Tensor out = Tensor::empty(out_shape, opts(xc));
  const bool need_grad = any_requires_grad({&x});
  Tensor idx = need_grad ? Tensor::empty(out_shape, {DType::i64, x.device()}) : Tensor();  // argmax, for the gradient
  if (out.numel() > 0)
    GS_DISPATCH(x.device(), max_pool2d_fwd, make_view(out), need_grad ? make_view(idx) : backend::StridedView{},
                make_view(xc), p);
  if (need_grad) {
    // With the argmax positions fixed, max pooling is the linear gather out = x[idx]; its
    // gradient is the scatter-add of g onto idx, whose own gradient is the gather again.
    const int64_t in_size = p.in_h * p.in_w, out_size = p.out_h * p.out_w, planes = p.planes;
    auto m = std::make_shared<LinearMap>();
    m->fwd_name = "max_pool2d_gather";
    m->adj_name = "max_pool2d_backward";
    m->forward = [idx, planes, in_size, out_size, out_shape](const Tensor& t) {
      Tensor tc = t.contiguous();
      Tensor o = Tensor::empty(out_shape, opts(tc));
      if (o.numel() > 0)
        GS_DISPATCH(tc.device(), plane_gather, make_view(o), make_view(tc), make_view(idx), planes, in_size, out_size);
      return o;
    };
    m->adjoint = [idx, planes, in_size, out_size, in_shape](const Tensor& g) {
      Tensor gc = g.contiguous();
      Tensor gin = Tensor::empty(in_shape, opts(gc));
      if (gin.numel() > 0)
        GS_DISPATCH(gc.device(), plane_scatter, make_view(gin), make_view(gc), make_view(idx), planes, in_size,
                    out_size);
      return gin;
    };
    std::shared_ptr<const LinearMap> cm = m;
    record("max_pool2d", out, {x}, [cm](const Tensor& g) { return V{apply_linear(cm, g, true)}; });
  }
  return out;
}

Tensor adaptive_avg_pool2d(const Tensor& x, const Shape& output_size) {
  const char* op = "adaptive_avg_pool2d";
  check_image(x, op);
  HW o = pair_arg(output_size, op, "output_size");
  GS_CHECK(o.h >= 1 && o.w >= 1, ValueError, op, ": output_size must be >= 1, got ", shape_str(output_size), " (input ",
           shape_str(x.shape()), ")");
  GS_CHECK(x.size(2) >= 1 && x.size(3) >= 1, ShapeError, op, ": empty spatial dims in input ", shape_str(x.shape()));
  AdaptivePoolParams p;
  p.planes = x.size(0) * x.size(1);
  p.in_h = x.size(2);
  p.in_w = x.size(3);
  p.out_h = o.h;
  p.out_w = o.w;
  const Shape in_shape = x.shape();
  const Shape out_shape{x.size(0), x.size(1), o.h, o.w};
  auto m = std::make_shared<LinearMap>();
  m->fwd_name = "adaptive_avg_pool2d";
  m->adj_name = "adaptive_avg_pool2d_backward";
  m->forward = [p, out_shape](const Tensor& t) {
    Tensor xc = t.contiguous();
    Tensor out = Tensor::empty(out_shape, opts(xc));
    if (out.numel() > 0) GS_DISPATCH(xc.device(), adaptive_avg_pool2d_fwd, make_view(out), make_view(xc), p);
    return out;
  };
  m->adjoint = [p, in_shape](const Tensor& g) {
    Tensor gc = g.contiguous();
    Tensor gin = Tensor::empty(in_shape, opts(gc));
    if (gin.numel() > 0) GS_DISPATCH(gc.device(), adaptive_avg_pool2d_bwd, make_view(gin), make_view(gc), p);
    return gin;
  };
  return apply_linear(m, x, false);
}

}  // namespace gradstyle
