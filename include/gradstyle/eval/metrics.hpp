#pragma once
// Image-quality metrics of inversion and editing, per image, on images in [-1, 1] (the networks'
// range) that are mapped to [0, 1] first, as the papers report them:
//   mse   mean over pixels and channels of (x - y)^2 on [0, 1]         ("L2" in the tables)
//   psnr  10 log10(1 / mse) dB (capped at 100 dB for identical images)
//   ssim  Wang et al. 2004: Gaussian window 11 x 11, sigma 1.5, C1 = 0.01^2, C2 = 0.03^2, over the
//         "valid" window positions of each channel, averaged over positions and channels
//         (skimage.metrics.structural_similarity with gaussian_weights=True, data_range=1,
//         use_sample_covariance=False).
// Inputs are [B, 3, H, W] float tensors on any device (copied to the CPU); results have B entries.
// Throws ShapeError for different or non-4-d shapes and for images smaller than the SSIM window.
#include <vector>

#include "gradstyle/core/tensor.hpp"

namespace gradstyle::eval {

std::vector<double> mse(const Tensor& x, const Tensor& y);
std::vector<double> psnr(const Tensor& x, const Tensor& y);
std::vector<double> ssim(const Tensor& x, const Tensor& y);

// Mean of a list (0 for an empty one).
double mean_of(const std::vector<double>& v);

}  // namespace gradstyle::eval
