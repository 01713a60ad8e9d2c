#include "gradstyle/ops/dropout.hpp"

#include "gradstyle/ops/elementwise.hpp"
#include "ops/common.hpp"

namespace gradstyle {

using namespace ops_detail;

Tensor dropout(const Tensor& x, double p, bool training, Generator& gen) {
  check_float(x, "dropout");
  GS_CHECK(p >= 0.0 && p <= 1.0, ValueError, "dropout: probability p must be in [0, 1], got ", p);
  if (!training || p == 0.0) return x;
  if (p == 1.0) return mul_scalar(x, 0.0);
  // The mask is a constant of the graph: a uniform draw from the Philox stream (the same numbers
  // on every device), thresholded in x's dtype, scaled so that E[out] = x.
  Tensor mask;
  {
    autograd::NoGradGuard ng;
    Tensor u = Tensor::rand(x.shape(), gen, {x.dtype(), x.device()});
    mask = mul_scalar(gt(u, scalar_like(p, u)).to(x.dtype()), 1.0 / (1.0 - p));
  }
  return mul(x, mask);
}

}  // namespace gradstyle
