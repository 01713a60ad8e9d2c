#pragma once
// Reductions over a set of dims ({} means all dims). keepdim keeps reduced dims as size 1.
// Throws IndexError for an out-of-range or repeated dim.
#include "gradstyle/core/tensor.hpp"

namespace gradstyle {

Tensor sum(const Tensor& x, const Shape& dims = {}, bool keepdim = false);
Tensor mean(const Tensor& x, const Shape& dims = {}, bool keepdim = false);
// Maximum / minimum values; the gradient is split evenly between tied maxima.
Tensor amax(const Tensor& x, const Shape& dims = {}, bool keepdim = false);
Tensor amin(const Tensor& x, const Shape& dims = {}, bool keepdim = false);
// Variance; unbiased divides by N-1 (PyTorch's default), else by N.
Tensor var(const Tensor& x, const Shape& dims = {}, bool unbiased = true, bool keepdim = false);
// Sums x down to `shape` (the inverse of broadcasting; used by backward rules).
Tensor sum_to(const Tensor& x, const Shape& shape);

}  // namespace gradstyle
