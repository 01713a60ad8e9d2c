#pragma once
#include "gradstyle/core/tensor.hpp"

namespace gradstyle {
// Numerically stable softmax / log-softmax over one dim; differentiable to any order.
Tensor softmax(const Tensor& x, int64_t dim);
Tensor log_softmax(const Tensor& x, int64_t dim);
}  // namespace gradstyle
