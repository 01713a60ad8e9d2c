// Adam with torch.optim.Adam's arithmetic (torch 1.13 _single_tensor_adam, amsgrad off), op for
// op in the same order, so a float64 run matches PyTorch to rounding.
#include <cmath>

#include "gradstyle/autograd/autograd.hpp"
#include "gradstyle/ops/elementwise.hpp"
#include "gradstyle/train/optim.hpp"

#include "train/adam_family.hpp"

namespace gradstyle::train {

Adam::Adam(NamedParameters params, AdamOptions options) : Optimizer("Adam", std::move(params)), o_(options) {
  check_hyperparameters();
  for (size_t i = 0; i < params_.size(); ++i) {
    exp_avg_.push_back(zeros_like_param(i));
    exp_avg_sq_.push_back(zeros_like_param(i));
  }
  param_step_.assign(params_.size(), 0);
}

void Adam::check_hyperparameters() const {
  GS_CHECK(std::isfinite(o_.lr) && o_.lr >= 0, ValueError, "Adam: lr must be finite and >= 0, got ", o_.lr);
  GS_CHECK(o_.beta1 >= 0 && o_.beta1 < 1, ValueError, "Adam: beta1 must be in [0, 1), got ", o_.beta1);
  GS_CHECK(o_.beta2 >= 0 && o_.beta2 < 1, ValueError, "Adam: beta2 must be in [0, 1), got ", o_.beta2);
  GS_CHECK(std::isfinite(o_.eps) && o_.eps >= 0, ValueError, "Adam: eps must be finite and >= 0, got ", o_.eps);
  GS_CHECK(std::isfinite(o_.weight_decay) && o_.weight_decay >= 0, ValueError,
           "Adam: weight_decay must be finite and >= 0, got ", o_.weight_decay);
}

void Adam::set_lr(double lr) {
  GS_CHECK(std::isfinite(lr) && lr >= 0, ValueError, "Adam::set_lr: lr must be finite and >= 0, got ", lr);
  o_.lr = lr;
}

std::vector<Optimizer::StateEntry> Adam::state_entries() {
  std::vector<StateEntry> e;
  detail::append_adam_family_entries(e, params_, exp_avg_, exp_avg_sq_, param_step_, step_, o_);
  return e;
}

void Adam::step() {
  autograd::NoGradGuard ng;
  ++step_;
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor g = grad_of(i);
    if (!g.defined()) continue;
    Tensor& p = params_[i].second;
    Tensor& m = exp_avg_[i];
    Tensor& v = exp_avg_sq_[i];
    const double t = double(++param_step_[i]);
    if (o_.weight_decay != 0) g = add(g, mul_scalar(p.detach(), o_.weight_decay));  // L2, as torch
    m.mul_(o_.beta1).add_(g, 1 - o_.beta1);
    v.mul_(o_.beta2).add_(mul(mul_scalar(g, 1 - o_.beta2), g));  // addcmul: v + (c g) g
    const double bias_correction1 = 1 - std::pow(o_.beta1, t);
    const double bias_correction2 = 1 - std::pow(o_.beta2, t);
    const double step_size = o_.lr / bias_correction1;
    // eps goes after the bias-corrected sqrt(v), as torch.optim.Adam has it.
    Tensor denom = add_scalar(div(sqrt(v), scalar_like(std::sqrt(bias_correction2), v)), o_.eps);
    p.add_(div(m, denom), -step_size);
  }
}

}  // namespace gradstyle::train
