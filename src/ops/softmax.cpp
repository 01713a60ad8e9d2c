#include "gradstyle/ops/softmax.hpp"

#include "gradstyle/ops/elementwise.hpp"
#include "gradstyle/ops/reduce.hpp"
#include "gradstyle/ops/shape.hpp"
#include "ops/common.hpp"

namespace gradstyle {

using autograd::any_requires_grad;
using autograd::is_grad_enabled;
using autograd::record;
using backend::make_view;
using namespace ops_detail;
using V = std::vector<Tensor>;

static Tensor softmax_raw(const Tensor& x, int64_t d, bool log) {
  // Move dim d last, run rows, move it back.
  int64_t last = x.dim() - 1;
  Tensor xt = (d == last ? x.detach() : transpose(x.detach(), d, last)).contiguous();
  int64_t n = x.size(d);
  Tensor out = Tensor::empty(xt.shape(), {x.dtype(), x.device()});
  if (out.numel() > 0) GS_DISPATCH(x.device(), softmax_rows, make_view(out), make_view(xt), out.numel() / n, n, log);
  return d == last ? out : transpose(out, d, last).contiguous();
}

Tensor softmax(const Tensor& x, int64_t dim) {
  check_float(x, "softmax");
  if (x.dim() == 0) return softmax(reshape(x, {1}), 0).reshape({});
  int64_t d = wrap_dim(dim, x.dim(), "softmax");
  Tensor out = softmax_raw(x, d, false);
  if (any_requires_grad({&x})) {
    Tensor y = out.detach();
    record("softmax", out, {x}, [x, y, d](const Tensor& g) {
      Tensor s = is_grad_enabled() ? softmax(x, d) : y;
      return V{mul(s, sub(g, sum(mul(g, s), {d}, true)))};
    });
  }
  return out;
}

Tensor log_softmax(const Tensor& x, int64_t dim) {
  check_float(x, "log_softmax");
  if (x.dim() == 0) return log_softmax(reshape(x, {1}), 0).reshape({});
  int64_t d = wrap_dim(dim, x.dim(), "log_softmax");
  Tensor out = softmax_raw(x, d, true);
  if (any_requires_grad({&x})) {
    Tensor y = out.detach();
    record("log_softmax", out, {x}, [x, y, d](const Tensor& g) {
      Tensor p = is_grad_enabled() ? softmax(x, d) : exp(y);
      return V{sub(g, mul(p, sum(g, {d}, true)))};
    });
  }
  return out;
}

}  // namespace gradstyle
