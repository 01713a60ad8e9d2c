#pragma once
// Spatial resampling of x [N, C, H, W] (float32 or float64, CPU or CUDA) with PyTorch's
// F.interpolate semantics.
//
//  * Bilinear: source coordinate src = scale * dst (align_corners = true, scale = (in-1)/(out-1))
//    or src = max(scale * (dst + 0.5) - 0.5, 0) (align_corners = false, scale = 1/scale_factor
//    when a scale factor was given, else in/out); an axis whose size does not change is copied.
//  * Nearest: PyTorch's legacy 'nearest', src = min(floor(dst * scale), in - 1) computed in
//    float32 like PyTorch (scale as above); align_corners must be false.
//  * By size: the output is [N, C, size_h, size_w]. By scale factor: out = floor(in * scale).
//
// Gradients: interpolation is linear in x; its backward (a scatter of the gradient onto the
// source taps) is itself differentiable, so any order works.
//
// Throws: DTypeError (not float32/float64), ShapeError (x not 4-D), ValueError (sizes < 1, scale
// factors not finite and > 0, a resulting size < 1, size list with other than 1 or 2 entries,
// align_corners = true with Nearest).
#include "gradstyle/core/tensor.hpp"

namespace gradstyle {

enum class InterpolateMode { Bilinear, Nearest };

// By output size: size = {s} (square) or {h, w}.
Tensor interpolate(const Tensor& x, const Shape& size, InterpolateMode mode, bool align_corners = false);
// By scale factor, the same for both dims or per dim. (A separate name: with an overload,
// interpolate(x, {64}, ...) would silently pick the scale factor 64.)
Tensor interpolate_scale(const Tensor& x, double scale_factor, InterpolateMode mode, bool align_corners = false);
Tensor interpolate_scale(const Tensor& x, double scale_h, double scale_w, InterpolateMode mode,
                         bool align_corners = false);

}  // namespace gradstyle
