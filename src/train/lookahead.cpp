// Lookahead over any inner optimiser: slow weights, a fast-step counter, and the sync
// slow <- slow + alpha (fast - slow), fast <- slow every k fast steps.
#include <cmath>

#include "gradstyle/autograd/autograd.hpp"
#include "gradstyle/ops/elementwise.hpp"
#include "gradstyle/train/optim.hpp"

namespace gradstyle::train {

static std::unique_ptr<Optimizer> checked_inner(std::unique_ptr<Optimizer> inner) {
  GS_CHECK(inner != nullptr, ValueError, "Lookahead: the inner optimiser is null");
  return inner;
}

Lookahead::Lookahead(std::unique_ptr<Optimizer> inner, LookaheadOptions options)
    : Lookahead("", checked_inner(std::move(inner)), options) {
  kind_ = "Lookahead(" + inner_->kind() + ")";
}

Lookahead::Lookahead(std::string kind, std::unique_ptr<Optimizer> inner, LookaheadOptions options)
    : Optimizer(std::move(kind), inner->parameters()), inner_(std::move(inner)), o_(options) {
  if (kind_.empty()) kind_ = "Lookahead";
  check_hyperparameters();
  autograd::NoGradGuard ng;
  for (auto& [name, p] : params_) slow_.push_back(p.detach().clone());
  // The merged state must not reuse a key of the inner optimiser (e.g. Lookahead of Lookahead).
  (void)state_dict();
}

void Lookahead::check_hyperparameters() const {
  GS_CHECK(o_.k >= 1, ValueError, kind_, ": k must be >= 1, got ", o_.k);
  GS_CHECK(o_.alpha >= 0 && o_.alpha <= 1, ValueError, kind_, ": alpha must be in [0, 1], got ", o_.alpha);
  check_hyperparameters_of(*inner_);
}

std::vector<Optimizer::StateEntry> Lookahead::state_entries() {
  std::vector<StateEntry> e = state_entries_of(*inner_);
  for (size_t i = 0; i < params_.size(); ++i) e.push_back({params_[i].first + ".slow", &slow_[i]});
  e.push_back({"lookahead.step", nullptr, nullptr, &counter_});
  e.push_back({"lookahead.k", nullptr, nullptr, &o_.k});
  e.push_back({"lookahead.alpha", nullptr, &o_.alpha});
  return e;
}

bool Lookahead::sync_due(size_t) const { return counter_ % o_.k == 0; }

void Lookahead::step() {
  before_inner_step();
  inner_->step();
  ++counter_;
  autograd::NoGradGuard ng;
  for (size_t i = 0; i < params_.size(); ++i) {
    if (!sync_due(i)) continue;
    Tensor& p = params_[i].second;
    slow_[i].add_(sub(p.detach(), slow_[i]), o_.alpha);
    p.copy_(slow_[i]);
  }
}

}  // namespace gradstyle::train
