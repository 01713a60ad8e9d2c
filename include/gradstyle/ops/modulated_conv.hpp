#pragma once
// StyleGAN2's modulated convolution (SPEC C.1, rosinality ModulatedConv2d + NoiseInjection +
// FusedLeakyReLU), computed the NON-GROUPED way (PERFORMANCE.md §5.4):
//
//   y = conv(x * s[b, i], w_eff)                       one convolution with the SHARED weight
//   d[b, o] = rsqrt(sum_i s[b, i]^2 * sum_k w_eff[o, i, k]^2 + eps)     (demodulate only)
//   out = clamp(act(y * d[b, o] + noise_weight * noise + bias[o]) * gain, -clamp, clamp)
//
// w_eff = weight * weight_gain (default 1/sqrt(I k^2), the equalized-lr scale of the stored
// weight). The last line is one hand-written fused epilogue kernel (modulated_conv2d_epilogue).
// This equals rosinality's grouped formulation (per-sample weights w_eff * s * d, grouped conv;
// modulated_conv2d_grouped below) exactly in real arithmetic, and never materialises B weights.
//
//   up = 2  : stride-2 transposed conv (padding 0, H -> 2H + k - 2), then the [1,3,3,1] blur with
//             gain 4 and pad (1, 1) -> 2H for k = 3 (d commutes with the blur, both linear).
//   down = 2: the [1,3,3,1] blur with pad ((p+1)/2, p/2), p = k + 1, then a stride-2 conv.
//   ToRGB   : k = 1, demodulate = false, bias, act = Linear.
//
// Shapes: x [B, I, H, W]; weight [O, I, k, k] (or rosinality's [1, O, I, k, k]); styles [B, I];
// noise [B or 1, 1, OH, OW] with noise_weight a one-element tensor (StyleGAN2's learned scalar);
// bias [O]. dtypes float32/float64, one device (CPU or CUDA) for all tensors.
// Autograd: gradients with respect to x, weight, styles, bias, noise_weight and noise; second
// order exact (built from differentiable ops plus the epilogue, whose backward is bias_act_grad).
// Throws: ShapeError (ranks, channel / batch mismatches, non-square kernel, noise or bias shape),
// ValueError (up/down not 1 or 2, both > 1, noise without noise_weight), DTypeError, DeviceError.
#include <optional>

#include "gradstyle/core/tensor.hpp"
#include "gradstyle/ops/bias_act.hpp"

namespace gradstyle {

struct ModulatedConv2dOptions {
  bool demodulate = true;
  int64_t up = 1;
  int64_t down = 1;
  int64_t padding = -1;               // -1: k/2 without resampling, 0 with up/down
  std::optional<double> weight_gain;  // default 1/sqrt(I * k * k)
  double eps = 1e-8;
  // fused epilogue
  Tensor noise;         // [B or 1, 1, OH, OW] or undefined
  Tensor noise_weight;  // one element; required with noise
  Tensor bias;          // [O] or undefined
  Activation act = Activation::Linear;
  std::optional<double> alpha;  // lrelu slope, default 0.2
  std::optional<double> gain;   // default sqrt(2) for lrelu, 1 for linear
  double clamp = -1;            // clamp the output to [-clamp, clamp] when >= 0
};

Tensor modulated_conv2d(const Tensor& x, const Tensor& weight, const Tensor& styles,
                        const ModulatedConv2dOptions& o = {});

// Demodulation coefficients d [B, O] = rsqrt(styles^2 @ sum_k(w_eff^2)^T + eps) for an effective
// weight [O, I, k, k] and styles [B, I]. Differentiable.
Tensor modulated_conv2d_demod(const Tensor& weight_eff, const Tensor& styles, double eps = 1e-8);

// The fused epilogue: out = clamp(act(y * d + noise_weight * noise + bias) * gain) for y
// [B, O, H, W], d [B, O] or undefined (no demodulation), noise [B or 1, 1, H, W] or undefined,
// noise_weight one element (with noise), bias [O] or undefined; act/alpha/gain/clamp as in
// bias_act. One read of y, one write. Differentiable in y, d, noise, noise_weight and bias; the
// first-order backward of y is one fused pass (dy = bias_act'(out) * g * d).
Tensor modulated_conv2d_epilogue(const Tensor& y, const Tensor& d, const Tensor& noise, const Tensor& noise_weight,
                                 const Tensor& bias, const BiasActOptions& act);

// rosinality's formulation (per-sample weights w_eff * s (* d), one grouped conv with groups = B,
// then noise, bias and activation with separate ops). The reference and lab baseline.
Tensor modulated_conv2d_grouped(const Tensor& x, const Tensor& weight, const Tensor& styles,
                                const ModulatedConv2dOptions& o = {});

}  // namespace gradstyle
