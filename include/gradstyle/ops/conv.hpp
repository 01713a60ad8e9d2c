#pragma once
// 2-D convolution with PyTorch's semantics (torch.nn.functional.conv2d / conv_transpose2d).
//
//   Tensor y = conv2d(x, w, b, {.stride = {2, 2}, .padding = {1, 1}});
//   Tensor u = conv_transpose2d(y, wt, Tensor(), {.stride = {2, 2}});
//
// conv2d is a cross-correlation (the kernel is not flipped):
//   x [N, C, H, W], weight [K, C/groups, R, S], bias [K] or undefined  ->  y [N, K, OH, OW]
//   OH = (H + 2*pad_h - dil_h*(R-1) - 1) / stride_h + 1  (floor), likewise OW.
// conv_transpose2d is the adjoint (the input gradient) of that conv2d:
//   x [N, Cin, H, W], weight [Cin, Cout/groups, R, S], bias [Cout]  ->  y [N, Cout, OH, OW]
//   OH = (H-1)*stride_h - 2*pad_h + dil_h*(R-1) + output_padding_h + 1, likewise OW.
//
// dtypes: float32 or float64; x, weight and bias share dtype and device (CPU or CUDA).
// Devices: CPU = im2col + Eigen GEMM (OpenMP over output tiles), Winograd F(2x2,3x3) for float32
// 3x3 stride-1 convs (forward and input gradient; error at float32 GEMM level); CUDA = cuDNN (algorithm found
// once per complete shape key and cached; fp32 math without TF32 unless set_allow_tf32(true)),
// with a direct-kernel fallback when cuDNN refuses a configuration.
// Autograd: every function here is differentiable to any order in every tensor argument. The
// backward rules use only the functions of this header (input gradient = conv2d_input_grad,
// weight gradient = conv2d_weight_grad, whose own gradients are conv2d / conv2d_input_grad /
// conv2d_weight_grad again), so create_graph=true gives exact second derivatives (R1 penalty).
// Throws: ShapeError (rank != 4, channel or group mismatch, kernel larger than the padded input,
// output size < 1, bias shape), ValueError (stride/dilation/groups < 1, negative padding,
// output_padding out of range), DTypeError, DeviceError.
#include <array>

#include "gradstyle/core/tensor.hpp"

namespace gradstyle {

using Int2 = std::array<int64_t, 2>;  // (height, width)

struct Conv2dOptions {
  Int2 stride{1, 1};
  Int2 padding{0, 0};  // zeros added on both sides
  Int2 dilation{1, 1};
  int64_t groups = 1;  // C and K must both be divisible by groups
};

struct ConvTranspose2dOptions {
  Int2 stride{1, 1};
  Int2 padding{0, 0};         // removed from both sides of the full transposed output
  Int2 output_padding{0, 0};  // extra rows/cols at the bottom/right; each < max(stride, dilation)
  Int2 dilation{1, 1};
  int64_t groups = 1;
};

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(), const Conv2dOptions& o = {});

Tensor conv_transpose2d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(),
                        const ConvTranspose2dOptions& o = {});

// The gradients of conv2d as ops of their own (they are what conv2d's backward records).
// conv2d_input_grad: d<conv2d(x, weight, o), grad_out>/dx for an input of spatial size input_hw.
//   grad_out [N, K, OH, OW], weight [K, C/groups, R, S] -> [N, C, input_hw[0], input_hw[1]].
//   input_hw must be a size whose conv2d output is at least OH x OW and that is at most
//   max(stride, dilation) - 1 larger than the smallest such size (like output_padding).
Tensor conv2d_input_grad(const Tensor& grad_out, const Tensor& weight, Int2 input_hw, const Conv2dOptions& o = {});
// conv2d_weight_grad: d<conv2d(x, w, o), grad_out>/dw for a kernel of size kernel_hw.
//   x [N, C, H, W], grad_out [N, K, OH, OW] (OH, OW = conv2d's output size) -> [K, C/groups, R, S].
Tensor conv2d_weight_grad(const Tensor& x, const Tensor& grad_out, Int2 kernel_hw, const Conv2dOptions& o = {});

}  // namespace gradstyle
