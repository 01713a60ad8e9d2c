#pragma once
// upfirdn2d: upsample, pad, FIR-filter, downsample, with the exact semantics of NVIDIA's
// StyleGAN2 op (stylegan2-ada-pytorch torch_utils/ops/upfirdn2d.py, _upfirdn2d_ref):
//   1. zero-insert: each input sample is followed by up-1 zeros along each axis (H -> H*up_y);
//   2. pad by (pad_x0, pad_x1, pad_y0, pad_y1) zeros; a negative pad crops instead;
//   3. true 2-D convolution with the filter (the filter is flipped; flip_filter=true makes it a
//      correlation), no padding ("valid");
//   4. keep every down-th sample, starting at 0.
//   Output: OH = (H*up_y + pad_y0 + pad_y1 - kh) / down_y + 1 (floor), likewise OW.
//
//   x      [N, C, H, W], float32 or float64, CPU or CUDA.
//   filter [kh, kw] (2-D), or [k] (1-D: separable, the same filter along x and y, i.e. the
//          2-D filter outer(f, f)); same dtype and device as x. It is treated as a constant.
//   gain   multiplies the 2-D filter (NVIDIA scales each 1-D pass by sqrt(gain); same result).
//
// rosinality's upfirdn2d(x, k, up, down, pad=(p0, p1)) is upfirdn2d(x, k, up, down, {p0, p1, p0, p1}).
// Autograd: differentiable to any order in x (the gradient is upfirdn2d of the output gradient
// with up and down swapped, the filter flipped and the padding adjusted). A filter that requires
// grad throws AutogradError (StyleGAN2's FIR filters are constant buffers).
// Throws: ShapeError (x not 4-D, filter not 1-D/2-D or empty, the filter larger than the padded
// upsampled input, i.e. an output size < 1), ValueError (up or down < 1), DTypeError, DeviceError.
#include <array>

#include "gradstyle/core/tensor.hpp"

namespace gradstyle {

struct UpFirDn2dOptions {
  int64_t up_x = 1, up_y = 1;
  int64_t down_x = 1, down_y = 1;
  int64_t pad_x0 = 0, pad_x1 = 0, pad_y0 = 0, pad_y1 = 0;
  bool flip_filter = false;
  double gain = 1.0;
};

Tensor upfirdn2d(const Tensor& x, const Tensor& filter, const UpFirDn2dOptions& o);

// Same factor on both axes; pad = (x0, x1, y0, y1) as in NVIDIA's upfirdn2d(padding=[...]).
Tensor upfirdn2d(const Tensor& x, const Tensor& filter, int64_t up, int64_t down, std::array<int64_t, 4> pad,
                 bool flip_filter = false, double gain = 1.0);

}  // namespace gradstyle
