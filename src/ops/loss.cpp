#include "gradstyle/ops/loss.hpp"

#include "gradstyle/ops/elementwise.hpp"
#include "gradstyle/ops/reduce.hpp"
#include "ops/common.hpp"

namespace gradstyle {

static Tensor reduce_loss(const Tensor& per_elem, Reduction r) {
  switch (r) {
    case Reduction::None: return per_elem;
    case Reduction::Sum: return sum(per_elem);
    case Reduction::Mean: return mean(per_elem);
  }
  return per_elem;
}

static void check_loss_args(const Tensor& input, const Tensor& target, const char* op) {
  ops_detail::check_float(input, op);
  ops_detail::check_same(input, target, op);
  GS_CHECK(input.shape() == target.shape(), ShapeError, op, ": input ", shape_str(input.shape()), " and target ",
           shape_str(target.shape()), " must have the same shape");
}

Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction r) {
  check_loss_args(input, target, "mse_loss");
  return reduce_loss(square(sub(input, target)), r);
}

Tensor l1_loss(const Tensor& input, const Tensor& target, Reduction r) {
  check_loss_args(input, target, "l1_loss");
  return reduce_loss(abs(sub(input, target)), r);
}

}  // namespace gradstyle
