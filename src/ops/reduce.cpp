#include "gradstyle/ops/reduce.hpp"

#include <algorithm>

#include "gradstyle/ops/elementwise.hpp"
#include "gradstyle/ops/shape.hpp"
#include "ops/common.hpp"

namespace gradstyle {

using autograd::any_requires_grad;
using autograd::record;
using backend::make_view;
using backend::ReduceOp;
using namespace ops_detail;
using V = std::vector<Tensor>;

namespace ops_detail {
Shape reduce_dims(const Shape& dims, int64_t ndim, const char* op) {
  Shape r;
  if (dims.empty()) {
    for (int64_t i = 0; i < ndim; ++i) r.push_back(i);
    return r;
  }
  for (int64_t d : dims) r.push_back(wrap_dim(d, ndim, op));
  std::sort(r.begin(), r.end());
  GS_CHECK(std::adjacent_find(r.begin(), r.end()) == r.end(), IndexError, op, ": dim listed twice in ",
           shape_str(dims));
  if (ndim == 0) r.clear();
  return r;
}
}  // namespace ops_detail

namespace {

struct ReducePlan {
  Shape dims;          // sorted reduced dims
  Shape out_shape;     // without reduced dims
  Shape keep_shape;    // reduced dims as 1
  int64_t outer = 1, n = 1;
};

ReducePlan plan(const Tensor& x, const Shape& dims, const char* op) {
  ReducePlan p;
  p.dims = reduce_dims(dims, x.dim(), op);
  for (int64_t i = 0; i < x.dim(); ++i) {
    bool red = std::binary_search(p.dims.begin(), p.dims.end(), i);
    if (red) {
      p.n *= x.size(i);
      p.keep_shape.push_back(1);
    } else {
      p.outer *= x.size(i);
      p.out_shape.push_back(x.size(i));
      p.keep_shape.push_back(x.size(i));
    }
  }
  return p;
}

// Forward of sum/max/min without autograd: returns the keepdim-shaped result.
Tensor reduce_raw(ReduceOp op, const Tensor& x, const ReducePlan& p, const char* name) {
  check_float(x, name);
  GS_CHECK(op == ReduceOp::Sum || p.n > 0, ShapeError, name, ": cannot reduce an empty dimension of ",
           shape_str(x.shape()));
  // Move kept dims first, reduced dims last, then reduce contiguous rows.
  Shape perm;
  for (int64_t i = 0; i < x.dim(); ++i)
    if (!std::binary_search(p.dims.begin(), p.dims.end(), i)) perm.push_back(i);
  for (int64_t d : p.dims) perm.push_back(d);
  Tensor xd = x.detach();
  Tensor src = perm.empty() ? xd : permute(xd, perm);
  // The CPU kernel reads the permuted view in place; the CUDA kernel takes dense rows.
  if (!x.device().is_cpu()) src = src.contiguous();
  Tensor out = Tensor::empty(p.keep_shape, {x.dtype(), x.device()});
  if (p.outer > 0) {
    if (p.n == 0) out.fill_(0.0);
    else GS_DISPATCH(x.device(), reduce_rows, op, make_view(out), make_view(src), p.outer, p.n);
  }
  return out;
}

}  // namespace

Tensor sum(const Tensor& x, const Shape& dims, bool keepdim) {
  ReducePlan p = plan(x, dims, "sum");
  Tensor out = reduce_raw(ReduceOp::Sum, x, p, "sum");
  if (!keepdim) out = view(out, p.out_shape);
  if (any_requires_grad({&x})) {
    Shape xs = x.shape(), ks = p.keep_shape;
    record("sum", out, {x}, [xs, ks](const Tensor& g) { return V{expand(reshape(g, ks), xs)}; });
  }
  return out;
}

Tensor mean(const Tensor& x, const Shape& dims, bool keepdim) {
  ReducePlan p = plan(x, dims, "mean");
  GS_CHECK(p.n > 0, ShapeError, "mean: reducing over an empty dimension of ", shape_str(x.shape()));
  return mul_scalar(sum(x, dims, keepdim), 1.0 / double(p.n));
}

static Tensor extreme(const Tensor& x, const Shape& dims, bool keepdim, bool is_max) {
  const char* name = is_max ? "amax" : "amin";
  ReducePlan p = plan(x, dims, name);
  Tensor kept = reduce_raw(is_max ? ReduceOp::Max : ReduceOp::Min, x, p, name);
  Tensor out = keepdim ? kept : view(kept, p.out_shape);
  if (any_requires_grad({&x})) {
    Shape ks = p.keep_shape, rd = p.dims;
    // With keepdim, out IS kept: capture a detached alias, or the node would own its own output.
    Tensor kd = kept.detach();
    record(name, out, {x}, [x, kd, ks, rd](const Tensor& g) {
      // Split the gradient evenly between the elements equal to the extreme.
      Tensor mask = eq(x, kd).to(x.dtype());
      Tensor count = sum(mask, rd, true);
      return V{mul(expand(reshape(g, ks), x.shape()), div(mask, count))};
    });
  }
  return out;
}
Tensor amax(const Tensor& x, const Shape& dims, bool keepdim) { return extreme(x, dims, keepdim, true); }
Tensor amin(const Tensor& x, const Shape& dims, bool keepdim) { return extreme(x, dims, keepdim, false); }

Tensor var(const Tensor& x, const Shape& dims, bool unbiased, bool keepdim) {
  ReducePlan p = plan(x, dims, "var");
  GS_CHECK(p.n > (unbiased ? 1 : 0), ShapeError, "var: need at least ", unbiased ? 2 : 1,
           " elements per reduction, got ", p.n, " for ", shape_str(x.shape()));
  Tensor d = sub(x, mean(x, dims, true));
  return mul_scalar(sum(square(d), dims, keepdim), 1.0 / double(p.n - (unbiased ? 1 : 0)));
}

Tensor sum_to(const Tensor& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  GS_CHECK(broadcast_shapes(shape, x.shape(), "sum_to") == x.shape(), ShapeError, "sum_to: ",
           shape_str(x.shape()), " is not a broadcast of ", shape_str(shape));
  int64_t lead = x.dim() - int64_t(shape.size());
  Shape dims;
  for (int64_t i = 0; i < x.dim(); ++i)
    if (i < lead || (shape[size_t(i - lead)] == 1 && x.size(i) != 1)) dims.push_back(i);
  Tensor s = dims.empty() ? x : sum(x, dims, true);
  return reshape(s, shape);
}

}  // namespace gradstyle
