#pragma once
// Image-quality metrics of inversion and editing in SPEC D.2's definitions, per image, on images
// in [-1, 1] (the networks' range):
//   l2    mean over pixels and channels of (x - y)^2 with both images in [-1, 1]   (0 ... 4)
//   psnr  10 log10(1 / mse) dB with the MSE on [0, 1] (capped at 100 dB for identical images)
//   ssim  scikit-image structural_similarity(win_size = 21, uniform window, data_range = 1,
//         K1 = 0.01, K2 = 0.03, sample covariance N / (N - 1)) per channel on [0, 1], averaged
//         over the window positions at least 10 px from the border (skimage's crop) and channels.
// SPEC D.2 quantises outputs to uint8 before measuring (what saved PNGs give): quantize_u8 does
// that. Inputs are [B, C, H, W] float tensors on any device (copied to the CPU); results have B
// entries. Throws ShapeError for different or non-4-d shapes, and (ssim) images under 21 px.
#include <vector>

#include "gradstyle/core/tensor.hpp"

namespace gradstyle::eval {

std::vector<double> l2(const Tensor& x, const Tensor& y);
std::vector<double> psnr(const Tensor& x, const Tensor& y);
std::vector<double> ssim(const Tensor& x, const Tensor& y);

// [-1, 1] -> the value a PNG stores and reads back: round((clamp(x) + 1) / 2 * 255) / 255 * 2 - 1.
Tensor quantize_u8(const Tensor& x);

// Mean of a list (0 for an empty one).
double mean_of(const std::vector<double>& v);

}  // namespace gradstyle::eval
