#pragma once
// bias_act: fused bias + activation + gain + clamp, NVIDIA's StyleGAN2 op
// (stylegan2-ada-pytorch torch_utils/ops/bias_act.py) for the activations StyleGAN2 uses:
//   y = clamp(act(x + bias) * gain, -clamp, clamp)
//   act = linear (v) or lrelu (v > 0 ? v : alpha * v)
//   defaults: alpha 0.2; gain sqrt(2) for lrelu, 1 for linear; clamp < 0 means no clamp.
// rosinality's fused_leaky_relu(x, b) is bias_act(x, b, {.act = Activation::LeakyReLU}).
//
//   x    any shape with at least dim+1 dims, float32 or float64, CPU or CUDA.
//   bias [x.shape[dim]] or undefined; same dtype and device as x.
//
// Autograd: the gradient is the op bias_act_grad, computed from the forward OUTPUT y (like
// NVIDIA's kernel; the input need not be kept alive). d y / d(x+bias) is piecewise constant for
// linear and lrelu, so the second derivative with respect to x and bias is zero almost
// everywhere and bias_act_grad is linear in dy: its own gradient is bias_act_grad again. That is
// exact for double backward (R1). At a kink (x+bias == 0) the slope alpha is used, as PyTorch's
// leaky_relu does; where the output is clamped (|y| == clamp) the gradient is 0.
// Throws: ShapeError (bias shape, dim out of range), ValueError (alpha < 0, which would make the
// output-based gradient ambiguous), DTypeError, DeviceError.
#include <optional>

#include "gradstyle/core/tensor.hpp"

namespace gradstyle {

enum class Activation { Linear, LeakyReLU };

struct BiasActOptions {
  Activation act = Activation::Linear;
  std::optional<double> alpha;  // lrelu slope; default 0.2
  std::optional<double> gain;   // default sqrt(2) for lrelu, 1 for linear
  double clamp = -1;            // clamp the output to [-clamp, clamp] when >= 0
  int64_t dim = 1;              // the dim of x that bias runs along
};

Tensor bias_act(const Tensor& x, const Tensor& bias = Tensor(), const BiasActOptions& o = {});

// dx = dy * y'(x + bias), with y' read from the forward output y of bias_act(x, bias, o).
// dy and y: same shape, dtype and device. Differentiable in dy (y gets no gradient).
Tensor bias_act_grad(const Tensor& dy, const Tensor& y, const BiasActOptions& o = {});

}  // namespace gradstyle
