#pragma once
// 2-D pooling over the last two dims of x [N, C, H, W] (float32 or float64, CPU or CUDA), with
// PyTorch's semantics (ceil_mode = false, dilation 1). `kernel`, `stride` and `padding` take one
// value for both dims or {h, w}; an empty stride means stride = kernel. Output size per dim:
// (in + 2*pad - kernel) / stride + 1.
//
// Gradients: avg and adaptive-avg pooling are linear maps, differentiable to any order; max
// pooling routes the gradient to the position of the first maximum of each window (PyTorch's tie
// rule; a NaN counts as the maximum) and its backward is itself differentiable.
//
// Throws: DTypeError (not float32/float64), ShapeError (x not 4-D, window larger than the padded
// input), ValueError (kernel or stride < 1, padding < 0 or more than half the kernel, a list with
// other than 1 or 2 entries, adaptive output size < 1).
#include "gradstyle/core/tensor.hpp"

namespace gradstyle {

// Mean over each window, padding counted as zeros (count_include_pad = true).
Tensor avg_pool2d(const Tensor& x, const Shape& kernel, const Shape& stride = {}, const Shape& padding = {0});

// Maximum over each window; padding never wins (it acts as -inf).
Tensor max_pool2d(const Tensor& x, const Shape& kernel, const Shape& stride = {}, const Shape& padding = {0});

// Mean over PyTorch's adaptive bins: output index i of an axis covers input
// [floor(i*In/Out), ceil((i+1)*In/Out)). output_size: {s} or {h, w}; bins may overlap when Out > In.
Tensor adaptive_avg_pool2d(const Tensor& x, const Shape& output_size);

}  // namespace gradstyle
