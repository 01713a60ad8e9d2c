#pragma once
// grid_sample with bilinear interpolation and zero padding (PyTorch's F.grid_sample with
// mode='bilinear', padding_mode='zeros').
//
//   x:    [N, C, H, W]   float32 or float64, CPU or CUDA
//   grid: [N, Ho, Wo, 2] same dtype and device; grid[n, i, j] = (x, y) in [-1, 1], where -1/+1
//         are the centres of the corner pixels (align_corners = true) or their outer edges
//         (align_corners = false). Taps outside the image read 0.
//   out:  [N, C, Ho, Wo]
//
// Gradients w.r.t. x and grid (first order). The backward is not itself differentiable: a
// second-order gradient through grid_sample throws AutogradError when it is actually needed.
// On CUDA the input gradient is accumulated with atomics (summation order may vary between runs).
//
// Throws: DTypeError (not float, or x and grid differ), DeviceError (x and grid on different
// devices), ShapeError (x not 4-D, grid not [N, Ho, Wo, 2] with x's N).
#include "gradstyle/core/tensor.hpp"

namespace gradstyle {

Tensor grid_sample(const Tensor& x, const Tensor& grid, bool align_corners = false);

}  // namespace gradstyle
