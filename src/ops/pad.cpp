#include "gradstyle/ops/pad.hpp"

#include <memory>

#include "backend/pad_kernels.hpp"
#include "ops/common.hpp"
#include "ops/linear_map.hpp"

namespace gradstyle {

using autograd::any_requires_grad;
using autograd::record;
using backend::make_view;
using backend::Pad2dParams;
using namespace ops_detail;
using V = std::vector<Tensor>;

Tensor pad(const Tensor& x, const Shape& pads, PadMode mode, double value) {
  const char* op = mode == PadMode::Reflect ? "pad (reflect)" : "pad (constant)";
  check_float(x, op);
  GS_CHECK(pads.size() == 2 || pads.size() == 4, ValueError, op,
           ": pads must be {left, right} or {left, right, top, bottom}, got ", shape_str(pads));
  const bool two_d = pads.size() == 4;
  GS_CHECK(x.dim() >= (two_d ? 2 : 1), ShapeError, op, ": ", pads.size(), " pads need an input with at least ",
           two_d ? 2 : 1, " dims, got ", shape_str(x.shape()));
  Pad2dParams p;
  p.mode = mode == PadMode::Reflect ? backend::PadMode::Reflect : backend::PadMode::Constant;
  p.value = value;
  p.in_w = x.size(-1);
  p.in_h = two_d ? x.size(-2) : 1;
  p.left = pads[0];
  p.top = two_d ? pads[2] : 0;
  const int64_t right = pads[1], bottom = two_d ? pads[3] : 0;
  if (mode == PadMode::Reflect) {
    for (size_t i = 0; i < pads.size(); ++i) {
      const int64_t size = i < 2 ? p.in_w : p.in_h;
      GS_CHECK(pads[i] >= 0 && pads[i] < size, ValueError, op, ": pad ", pads[i], " (", shape_str(pads),
               ") must be >= 0 and smaller than the padded dim's size ", size, " (input ", shape_str(x.shape()), ")");
    }
  }
  p.out_w = p.in_w + p.left + right;
  p.out_h = p.in_h + p.top + bottom;
  GS_CHECK(p.out_w >= 0 && p.out_h >= 0, ValueError, op, ": pads ", shape_str(pads),
           " leave a negative size for input ", shape_str(x.shape()));

  Shape in_shape = x.shape(), out_shape = x.shape();
  out_shape.back() = p.out_w;
  if (two_d) out_shape[out_shape.size() - 2] = p.out_h;
  p.planes = 1;
  for (int64_t d = 0; d < x.dim() - (two_d ? 2 : 1); ++d) p.planes *= x.size(d);

  auto run_fwd = [in_shape, out_shape](const Tensor& t, Pad2dParams q) {
    Tensor tc = t.contiguous();
    Tensor out = Tensor::empty(out_shape, {tc.dtype(), tc.device()});
    if (out.numel() > 0) {
      if (tc.numel() == 0)
        out.fill_(q.value);  // everything is border
      else
        GS_DISPATCH(tc.device(), pad2d_fwd, make_view(out), make_view(tc), q);
    }
    return out;
  };
  Tensor out = run_fwd(x.detach(), p);
  if (any_requires_grad({&x})) {
    // The value is a constant, so the gradient is the adjoint of the zero-value pad.
    Pad2dParams q = p;
    q.value = 0;
    auto m = std::make_shared<LinearMap>();
    m->fwd_name = "pad";
    m->adj_name = "pad_backward";
    m->forward = [run_fwd, q](const Tensor& t) { return run_fwd(t, q); };
    m->adjoint = [q, in_shape](const Tensor& g) {
      Tensor gc = g.contiguous();
      Tensor gin = Tensor::empty(in_shape, {gc.dtype(), gc.device()});
      if (gin.numel() > 0) {
        if (gc.numel() == 0)
          gin.zero_();
        else
          GS_DISPATCH(gc.device(), pad2d_bwd, make_view(gin), make_view(gc), q);
      }
      return gin;
    };
    std::shared_ptr<const LinearMap> cm = m;
    record("pad", out, {x}, [cm](const Tensor& g) { return V{apply_linear(cm, g, true)}; });
  }
  return out;
}

}  // namespace gradstyle
