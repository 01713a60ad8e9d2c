#pragma once
// The loss terms of GradStyle training (SPEC B.7), each a plain function of tensors (or of the
// frozen networks that define it), so the trainer composes them and a term whose weight is 0 is
// simply never computed.
//
//   Tensor xr = pool_to(x_rec_1024, 256);                          // e4e's face_pool
//   Tensor l2 = image_l2(xr, x256);                                // mse, element mean
//   Tensor lp = image_lpips(*lpips, xr, x256);                     // per-sample LPIPS, batch mean
//   Tensor id = image_id(*arcface, xr, x256);                      // 1 - cos, target detached
//   Tensor lf = gate_regulariser(gates, residuals);                // sum_m mean |g_m * F_m|
//   Tensor la = aligner_l1(aligned, residuals);                    // sum_m mean |F'_m - sg(F_m)|
//   Tensor ga = generator_nonsaturating(D(x_rec_1024));            // mean softplus(-D(fake))
//   Tensor dl = discriminator_logistic(D(x_real), {D(xr.detach()), D(xe.detach())});
//   Tensor r1 = r1_penalty(d_fn, x_real);                          // mean_b ||grad_x D(x)||^2
//
// Every result is a 0-d tensor of the inputs' dtype and device, differentiable in what the comment
// says. `Reduction::Sum` (config `loss_reduction = sum`) replaces each element mean by a sum; the
// batch mean of LPIPS, ID and the GAN terms stays a mean (they are per-sample quantities).
// Errors: ShapeError for mismatched shapes or list lengths (naming the term and the index),
// ValueError for an empty list or a resolution that does not divide the image.
#include <functional>
#include <vector>

#include "gradstyle/core/tensor.hpp"
#include "gradstyle/ops/loss.hpp"

namespace gradstyle::models::lpips {
class LPIPS;
}
namespace gradstyle::models::arcface {
class ArcFaceID;
}

namespace gradstyle::train {

// x [B, C, H, W] -> [B, C, res, res] by an (H/res) x (W/res) average (AdaptiveAvgPool2d(res) when
// res divides H and W, which is e4e's face_pool for 1024 -> 256). The identity when H == W == res.
// Throws ValueError when res < 1 or does not divide H and W, ShapeError for a non-4-d input.
Tensor pool_to(const Tensor& x, int64_t res);

// mse(x_hat, target): element mean (or sum). Gradient to x_hat only (target detached).
Tensor image_l2(const Tensor& x_hat, const Tensor& target, Reduction r = Reduction::Mean);

// mean_b LPIPS(x_hat_b, target_b); images [B, 3, H, W] in [-1, 1]. Target detached.
Tensor image_lpips(models::lpips::LPIPS& net, const Tensor& x_hat, const Tensor& target);

// mean_b (1 - <phi(x_hat_b), phi(target_b)>) with phi the ArcFace embedding; target detached.
Tensor image_id(models::arcface::ArcFaceID& net, const Tensor& x_hat, const Tensor& target);

// L_f = sum_m reduce |g_m * F_m| over the reconstruction-stream gates g_m [B, Cg, R, R] (Cg = C or
// 1, broadcast over channels) and residuals F_m [B, C, R, R]. Differentiable in both. A stage whose
// gate and residual are both undefined (bypassed by progressive training) is skipped.
Tensor gate_regulariser(const std::vector<Tensor>& gates, const std::vector<Tensor>& residuals,
                        Reduction r = Reduction::Mean);

// L_aligner = sum_m reduce |F'_m - stopgrad(F_m)|: the gradient reaches the aligned maps only.
// Stages with both maps undefined (bypassed) are skipped.
Tensor aligner_l1(const std::vector<Tensor>& aligned, const std::vector<Tensor>& residuals,
                  Reduction r = Reduction::Mean);

// Non-saturating generator loss: mean softplus(-logits), logits = D(fake) [B, 1] or [B].
Tensor generator_nonsaturating(const Tensor& fake_logits);

// Logistic discriminator loss of rosinality's StyleGAN2 (d_logistic_loss) with several fake sets:
// mean softplus(-real) + (1/n) sum_i mean softplus(fake_i). Pass detached fakes.
// Throws ValueError when fakes is empty.
Tensor discriminator_logistic(const Tensor& real_logits, const std::vector<Tensor>& fake_logits);

// R1 = mean_b sum_{c,h,w} (d D(x)_b / d x)^2, built with create_graph so that its gradient with
// respect to D's parameters exists (double backward). real is detached inside; the caller scales
// the result by gamma / 2 * d_reg_every (SPEC B.7). Also returns D(x) for reuse when asked.
struct R1Result {
  Tensor penalty;  // 0-d
  Tensor logits;   // D(real), part of the same graph
};
R1Result r1_penalty(const std::function<Tensor(const Tensor&)>& discriminator, const Tensor& real);

}  // namespace gradstyle::train
