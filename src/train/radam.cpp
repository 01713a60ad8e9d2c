// RAdam and Ranger with the semantics of e4e's training/ranger.py (Less Wright's Ranger, version
// 20.4.11, which HFGI copies). What that file does, per parameter p with a gradient, at its
// step t (t counts the updates of that parameter, starting at 1):
//
//   1. gradient centralisation when grad.dim() > 1 (conv and fc weights; gc_conv_only=False):
//      g -= g.mean(over every dim but the first, keepdim).
//   2. v = b2 v + (1-b2) g*g ;  m = b1 m + (1-b1) g          (v first, then m; no bias correction)
//   3. N_sma_max = 2/(1-b2) - 1 ;  b2t = b2^t ;  N_sma = N_sma_max - 2 t b2t / (1-b2t)
//      if N_sma > N_sma_threshhold (5):
//        step_size = sqrt((1-b2t) (N_sma-4)/(N_sma_max-4) (N_sma-2)/N_sma N_sma_max/(N_sma_max-2))
//                    / (1 - b1^t)
//      else
//        step_size = 1 / (1 - b1^t)
//   4. weight decay (if any): p += (-wd lr) p — decoupled, on the parameter, after the moments
//      were taken from the undecayed gradient and before the step.
//   5. if N_sma > threshold: p -= step_size lr m / (sqrt(v) + eps)
//      else:                 p -= step_size lr m     (bias-corrected momentum SGD, gradient scale)
//   6. Lookahead (Ranger only): if t % k == 0: slow += alpha (p - slow); p = slow. The slow copy
//      is taken from p at its first update.
//
// With b2 = 0.999, N_sma at t = 1..6 is 1, 1.9995, 2.9987, 3.9975, 4.9960, 5.9942: the first five
// steps take the SGD branch, the rectified step starts at t = 6, with the first Lookahead sync.
//
// Quirks of that file, and what we do:
//  * eps is added to sqrt(v), not to the bias-corrected sqrt(v / (1-b2t)) (the sqrt(1-b2t) sits in
//    step_size), unlike torch.optim.Adam. Kept.
//  * The (N_sma, step_size) cache `radam_buffer` is indexed by t % 10 and shared by all param
//    groups whatever their betas, and is not saved. The values are a pure function of t and the
//    betas, so we recompute them every step (identical results for one set of betas).
//  * grad = p.grad.data.float() aliases p.grad for float32 parameters, so the centralisation
//    rewrites the stored .grad in place; for other dtypes it works on a float32 copy (a float64
//    parameter is updated in float32 there). We leave .grad untouched and compute in the
//    parameter's own dtype.
//  * The Lookahead alpha comes from the constructor (self.alpha), k from the param group.
//  * A parameter without a gradient is skipped entirely, its t does not advance and it is not
//    synchronised; its slow copy is taken at its own first update. Kept (Ranger below).
#include <cmath>

#include "gradstyle/autograd/autograd.hpp"
#include "gradstyle/ops/elementwise.hpp"
#include "gradstyle/ops/reduce.hpp"
#include "gradstyle/train/optim.hpp"

#include "train/adam_family.hpp"

namespace gradstyle::train {

RAdam::RAdam(NamedParameters params, RAdamOptions options)
    : Optimizer("RAdam", std::move(params)), o_(options), gc_(options.gradient_centralization ? 1 : 0) {
  check_hyperparameters();
  for (size_t i = 0; i < params_.size(); ++i) {
    exp_avg_.push_back(zeros_like_param(i));
    exp_avg_sq_.push_back(zeros_like_param(i));
  }
  param_step_.assign(params_.size(), 0);
  updated_.assign(params_.size(), 0);
}

RAdamOptions RAdam::options() const {
  RAdamOptions o = o_;
  o.gradient_centralization = gc_ != 0;
  return o;
}

void RAdam::check_hyperparameters() const {
  GS_CHECK(std::isfinite(o_.lr) && o_.lr > 0, ValueError, "RAdam: lr must be finite and > 0, got ", o_.lr);
  GS_CHECK(o_.beta1 >= 0 && o_.beta1 < 1, ValueError, "RAdam: beta1 must be in [0, 1), got ", o_.beta1);
  GS_CHECK(o_.beta2 > 0 && o_.beta2 < 1, ValueError, "RAdam: beta2 must be in (0, 1), got ", o_.beta2);
  GS_CHECK(std::isfinite(o_.eps) && o_.eps > 0, ValueError, "RAdam: eps must be finite and > 0, got ", o_.eps);
  GS_CHECK(std::isfinite(o_.weight_decay) && o_.weight_decay >= 0, ValueError,
           "RAdam: weight_decay must be finite and >= 0, got ", o_.weight_decay);
  GS_CHECK(std::isfinite(o_.n_sma_threshold), ValueError, "RAdam: n_sma_threshold must be finite, got ",
           o_.n_sma_threshold);
  GS_CHECK(gc_ == 0 || gc_ == 1, ValueError, "RAdam: gradient_centralization must be 0 or 1, got ", gc_);
}

void RAdam::set_lr(double lr) {
  GS_CHECK(std::isfinite(lr) && lr > 0, ValueError, "RAdam::set_lr: lr must be finite and > 0, got ", lr);
  o_.lr = lr;
}

std::vector<Optimizer::StateEntry> RAdam::state_entries() {
  std::vector<StateEntry> e;
  detail::append_adam_family_entries(e, params_, exp_avg_, exp_avg_sq_, param_step_, step_, o_);
  e.push_back({"n_sma_threshold", nullptr, &o_.n_sma_threshold});
  e.push_back({"gradient_centralization", nullptr, nullptr, &gc_});
  return e;
}

void RAdam::step() {
  autograd::NoGradGuard ng;
  ++step_;
  const double b1 = o_.beta1, b2 = o_.beta2;
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor g = grad_of(i);
    updated_[i] = g.defined();
    if (!g.defined()) continue;
    Tensor& p = params_[i].second;
    Tensor& m = exp_avg_[i];
    Tensor& v = exp_avg_sq_[i];
    if (gc_ && g.dim() > 1) {
      Shape dims;
      for (int64_t d = 1; d < g.dim(); ++d) dims.push_back(d);
      g = sub(g, mean(g, dims, true));  // [out, ...] minus its [out, 1, ...] means
    }
    const int64_t t = ++param_step_[i];
    v.mul_(b2).add_(mul(mul_scalar(g, 1 - b2), g));
    m.mul_(b1).add_(g, 1 - b1);

    // Same expressions, same evaluation order as the reference, so float64 runs agree to rounding.
    const double beta2_t = std::pow(b2, double(t));
    const double n_sma_max = 2 / (1 - b2) - 1;
    const double n_sma = n_sma_max - 2 * double(t) * beta2_t / (1 - beta2_t);
    const bool rectified = n_sma > o_.n_sma_threshold;
    double step_size;
    if (rectified)
      step_size = std::sqrt((1 - beta2_t) * (n_sma - 4) / (n_sma_max - 4) * (n_sma - 2) / n_sma * n_sma_max /
                            (n_sma_max - 2)) /
                  (1 - std::pow(b1, double(t)));
    else
      step_size = 1.0 / (1 - std::pow(b1, double(t)));

    if (o_.weight_decay != 0) p.add_(p.detach(), -o_.weight_decay * o_.lr);
    if (rectified)
      p.add_(div(m, add_scalar(sqrt(v), o_.eps)), -step_size * o_.lr);
    else
      p.add_(m, -step_size * o_.lr);
  }
}

// ---- Ranger ---------------------------------------------------------------------------------

static std::unique_ptr<Optimizer> make_ranger_radam(NamedParameters params, const RangerOptions& o) {
  RAdamOptions r;
  r.lr = o.lr;
  r.beta1 = o.beta1;
  r.beta2 = o.beta2;
  r.eps = o.eps;
  r.weight_decay = o.weight_decay;
  r.n_sma_threshold = o.n_sma_threshold;
  r.gradient_centralization = o.gradient_centralization;
  return std::make_unique<RAdam>(std::move(params), r);
}

Ranger::Ranger(NamedParameters params, RangerOptions options)
    : Lookahead("Ranger", make_ranger_radam(std::move(params), options), LookaheadOptions{options.k, options.alpha}),
      radam_(static_cast<RAdam*>(inner_.get())) {}

void Ranger::before_inner_step() {
  // The reference takes the slow copy when a parameter is first updated, not at construction.
  autograd::NoGradGuard ng;
  for (size_t i = 0; i < params_.size(); ++i)
    if (radam_->param_step(i) == 0 && params_[i].second.grad().defined()) slow_[i].copy_(params_[i].second);
}

bool Ranger::sync_due(size_t i) const {
  return radam_->updated_last_step(i) && radam_->param_step(i) % o_.k == 0;
}

}  // namespace gradstyle::train
