#include "gradstyle/ops/grid_sample.hpp"

#include "backend/grid_sample_kernels.hpp"
#include "ops/common.hpp"

namespace gradstyle {

using autograd::any_requires_grad;
using autograd::record;
using backend::GridSampleParams;
using backend::make_view;
using backend::StridedView;
using namespace ops_detail;
using V = std::vector<Tensor>;

namespace {

// Marks a gradient produced by the (non-differentiable) grid_sample backward so that a
// higher-order backward that reaches it fails loudly instead of silently returning zero.
void mark_not_differentiable(Tensor& t, const std::vector<Tensor>& inputs) {
  if (!t.defined() || !autograd::any_requires_grad(inputs)) return;
  record("grid_sample_backward", t, inputs, [](const Tensor&) -> V {
    throw AutogradError(
        "grid_sample: second-order gradients are not implemented (the backward of grid_sample "
        "is not differentiable)");
  });
}

}  // namespace

Tensor grid_sample(const Tensor& x, const Tensor& grid, bool align_corners) {
  const char* op = "grid_sample";
  check_float(x, op);
  check_defined(grid, op, "grid");
  check_same(x, grid, op);
  GS_CHECK(x.dim() == 4, ShapeError, op, ": expected input [N, C, H, W], got ", shape_str(x.shape()));
  GS_CHECK(grid.dim() == 4 && grid.size(3) == 2 && grid.size(0) == x.size(0), ShapeError, op,
           ": expected grid [N, Ho, Wo, 2] with N = ", x.size(0), ", got grid ", shape_str(grid.shape()), " for input ",
           shape_str(x.shape()));
  GridSampleParams p;
  p.n = x.size(0);
  p.c = x.size(1);
  p.in_h = x.size(2);
  p.in_w = x.size(3);
  p.out_h = grid.size(1);
  p.out_w = grid.size(2);
  p.align_corners = align_corners;

  Tensor xc = x.detach().contiguous(), gc = grid.detach().contiguous();
  Tensor out = Tensor::empty({p.n, p.c, p.out_h, p.out_w}, {x.dtype(), x.device()});
  if (out.numel() > 0) {
    if (xc.numel() == 0)
      out.zero_();  // an empty image reads zeros everywhere
    else
      GS_DISPATCH(x.device(), grid_sample_fwd, make_view(out), make_view(xc), make_view(gc), p);
  }
  if (any_requires_grad({&x, &grid})) {
    const bool need_x = x.requires_grad(), need_grid = grid.requires_grad();
    record(op, out, {x, grid}, [x, grid, xc, gc, p, need_x, need_grid](const Tensor& g) {
      Tensor gx = need_x ? Tensor::empty(x.shape(), {x.dtype(), x.device()}) : Tensor();
      Tensor ggrid = need_grid ? Tensor::empty(grid.shape(), {grid.dtype(), grid.device()}) : Tensor();
      Tensor gcont = g.detach().contiguous();
      if (gx.defined()) gx.zero_();
      if (ggrid.defined() && (gcont.numel() == 0 || xc.numel() == 0)) ggrid.zero_();
      if (gcont.numel() > 0 && xc.numel() > 0) {
        StridedView vx = gx.defined() ? make_view(gx) : StridedView{};
        StridedView vg = ggrid.defined() ? make_view(ggrid) : StridedView{};
        GS_DISPATCH(x.device(), grid_sample_bwd, vx, vg, make_view(gcont), make_view(xc), make_view(gc), p);
      }
      mark_not_differentiable(gx, {g, x, grid});
      mark_not_differentiable(ggrid, {g, x, grid});
      return V{gx, ggrid};
    });
  }
  return out;
}

}  // namespace gradstyle
