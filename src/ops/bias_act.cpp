// bias_act and bias_act_grad as differentiable ops (contracts in gradstyle/ops/bias_act.hpp).
#include "gradstyle/ops/bias_act.hpp"

#include <cmath>

#include "backend/bias_act_kernels.hpp"
#include "gradstyle/ops/reduce.hpp"
#include "ops/common.hpp"

namespace gradstyle {

using autograd::any_requires_grad;
using autograd::record;
using backend::BiasActKind;
using backend::make_view;
using backend::StridedView;
using namespace ops_detail;
using V = std::vector<Tensor>;

namespace {

struct Resolved {
  BiasActKind kind;
  double alpha, gain, clamp;
};

Resolved resolve(const BiasActOptions& o, const char* op) {
  Resolved r;
  r.kind = o.act == Activation::LeakyReLU ? BiasActKind::LRelu : BiasActKind::Linear;
  r.alpha = o.alpha.value_or(0.2);
  r.gain = o.gain.value_or(o.act == Activation::LeakyReLU ? std::sqrt(2.0) : 1.0);
  r.clamp = o.clamp;
  GS_CHECK(r.alpha >= 0 && std::isfinite(r.alpha), ValueError, op, ": alpha must be a finite value >= 0, got ", r.alpha);
  GS_CHECK(std::isfinite(r.gain), ValueError, op, ": gain must be finite, got ", r.gain);
  GS_CHECK(!std::isnan(r.clamp), ValueError, op, ": clamp is NaN");
  return r;
}

// dx = dy * y'(.) read from yref; linear in dy, so its gradient is itself applied to G.
Tensor grad_impl(const Tensor& dy, const Tensor& yref, const Resolved& r) {
  Tensor dyc = dy.detach().contiguous();
  Tensor dx = Tensor::empty(dy.shape(), {dy.dtype(), dy.device()});
  if (dx.numel() > 0)
    GS_DISPATCH(dy.device(), bias_act_grad, r.kind, make_view(dx), make_view(dyc), make_view(yref), r.alpha, r.gain,
                r.clamp);
  if (any_requires_grad({&dy})) record("bias_act_grad", dx, {dy}, [yref, r](const Tensor& G) { return V{grad_impl(G, yref, r)}; });
  return dx;
}

}  // namespace

Tensor bias_act(const Tensor& x, const Tensor& b, const BiasActOptions& o) {
  const char* op = "bias_act";
  check_float(x, op);
  const Resolved r = resolve(o, op);
  GS_CHECK(o.dim >= 0 && o.dim < x.dim(), ShapeError, op, ": dim ", o.dim, " out of range for input ",
           shape_str(x.shape()));
  const int64_t channels = x.size(o.dim);
  int64_t inner = 1;
  for (int64_t d = o.dim + 1; d < x.dim(); ++d) inner *= x.size(d);
  if (b.defined()) {
    check_same(x, b, op);
    GS_CHECK(b.dim() == 1 && b.size(0) == channels, ShapeError, op, ": bias ", shape_str(b.shape()),
             " does not match dim ", o.dim, " of input ", shape_str(x.shape()), " (", channels, " expected)");
  }
  Tensor xc = x.detach().contiguous();
  Tensor bc = b.defined() ? b.detach().contiguous() : Tensor();
  Tensor y = Tensor::empty(x.shape(), {x.dtype(), x.device()});
  if (y.numel() > 0)
    GS_DISPATCH(x.device(), bias_act, r.kind, make_view(y), make_view(xc), bc.defined() ? make_view(bc) : StridedView{},
                channels, inner, r.alpha, r.gain, r.clamp);
  if (any_requires_grad({&x, &b})) {
    // The backward reads the output (detached: y' is piecewise constant, see the header).
    Tensor yref = y.detach();
    bool gx = x.requires_grad(), gb = b.defined() && b.requires_grad();
    Shape rdims;
    for (int64_t d = 0; d < x.dim(); ++d)
      if (d != o.dim) rdims.push_back(d);
    record(op, y, {x, b}, [yref, r, gx, gb, rdims](const Tensor& g) {
      Tensor dx = grad_impl(g, yref, r);
      return V{gx ? dx : Tensor(), gb ? (rdims.empty() ? dx : sum(dx, rdims)) : Tensor()};
    });
  }
  return y;
}

Tensor bias_act_grad(const Tensor& dy, const Tensor& y, const BiasActOptions& o) {
  const char* op = "bias_act_grad";
  check_float(dy, op);
  check_defined(y, op, "y");
  check_same(dy, y, op);
  GS_CHECK(dy.shape() == y.shape(), ShapeError, op, ": dy ", shape_str(dy.shape()), " and y ", shape_str(y.shape()),
           " differ");
  return grad_impl(dy, y.detach().contiguous(), resolve(o, op));
}

}  // namespace gradstyle
