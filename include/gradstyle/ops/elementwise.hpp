#pragma once
// Elementwise ops with NumPy broadcasting. Math is defined for float32 and float64; both inputs
// of a binary op must have the same dtype and device (no implicit promotion: convert with .to()).
// Every op here is differentiable to any order (its backward uses ops from this header).
// Throws: ShapeError (shapes don't broadcast), DTypeError (non-float or mixed dtypes),
// DeviceError (mixed devices).
#include "gradstyle/core/tensor.hpp"

namespace gradstyle {

Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor maximum(const Tensor& a, const Tensor& b);  // gradient split evenly on ties
Tensor minimum(const Tensor& a, const Tensor& b);  // gradient split evenly on ties
Tensor pow(const Tensor& a, const Tensor& b);      // a > 0 where b is not an integer
Tensor pow(const Tensor& a, double exponent);

Tensor add_scalar(const Tensor& a, double s);
Tensor mul_scalar(const Tensor& a, double s);
Tensor neg(const Tensor& a);
Tensor exp(const Tensor& a);
Tensor log(const Tensor& a);
Tensor sqrt(const Tensor& a);
Tensor rsqrt(const Tensor& a);
Tensor abs(const Tensor& a);         // gradient sign(a), 0 at 0
Tensor square(const Tensor& a);
Tensor reciprocal(const Tensor& a);
Tensor sin(const Tensor& a);
Tensor cos(const Tensor& a);
Tensor sign(const Tensor& a);        // not differentiable (zero gradient)
// Clamp to [lo, hi]; pass -inf / +inf for a one-sided clamp. Gradient 1 inside, 0 outside.
Tensor clamp(const Tensor& a, double lo, double hi);
// cond: any dtype, non-zero = true; broadcasts with a and b.
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);

Tensor relu(const Tensor& a);
Tensor leaky_relu(const Tensor& a, double negative_slope = 0.01);
Tensor sigmoid(const Tensor& a);
Tensor tanh(const Tensor& a);
// softplus(x) = log(1 + exp(beta x)) / beta, and x itself where beta x > threshold.
Tensor softplus(const Tensor& a, double beta = 1.0, double threshold = 20.0);

// Comparisons return bool tensors (not differentiable).
Tensor gt(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor eq(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);

// A 0-d tensor holding v with the dtype and device of like.
Tensor scalar_like(double v, const Tensor& like);

}  // namespace gradstyle
