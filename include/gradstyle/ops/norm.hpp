#pragma once
// Normalisation layers and PReLU, with PyTorch's semantics. All take float32 or float64 tensors on
// the CPU or CUDA; parameters must have x's dtype and device. Every op here is differentiable to
// second order w.r.t. x and its weight and bias.
//
// Throws: DTypeError (non-float or mixed dtypes), DeviceError (mixed devices), ShapeError (bad
// ranks or parameter shapes), ValueError (bad scalars, missing running statistics in evaluation,
// a single value per channel in training).
#include "gradstyle/core/tensor.hpp"

namespace gradstyle {

// batch_norm: x [N, C, ...] (at least 2-D), normalised per channel c = dim 1.
//  * training: uses the batch mean and biased variance over (N, ...); when running_mean /
//    running_var are given they are updated IN PLACE (no gradient) with
//    r = (1 - momentum) * r + momentum * stat, using the unbiased variance for running_var.
//    Needs more than one value per channel.
//  * evaluation: uses running_mean / running_var (both required).
// weight / bias ([C]) may be undefined (affine = false); running stats are [C] and must not
// require grad. Gradients w.r.t. x, weight and bias, to second order.
Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                  const Tensor& bias, bool training, double momentum = 0.1, double eps = 1e-5);

// prelu: x > 0 ? x : weight * x, with weight [C] applied along dim 1 of x (x at least 2-D), or a
// single slope weight [1] shared by every element (any x).
Tensor prelu(const Tensor& x, const Tensor& weight);

// layer_norm over the trailing dims given by normalized_shape (which must equal x's last dims):
// (x - mean) / sqrt(biased var + eps) * weight + bias; weight / bias have normalized_shape and
// may be undefined.
Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight = Tensor(),
                  const Tensor& bias = Tensor(), double eps = 1e-5);

// StyleGAN2's PixelNorm: x * rsqrt(mean(x^2, dim) + eps).
Tensor pixel_norm(const Tensor& x, int64_t dim = 1, double eps = 1e-8);

}  // namespace gradstyle
