#pragma once
// State shared by the Adam-family optimisers (Adam, RAdam): per-parameter first and second
// moments and update counts, the step() counter and the common hyperparameters, as the named
// entries their state_dict() holds.
#include <string>
#include <vector>

#include "gradstyle/train/optim.hpp"

namespace gradstyle::train::detail {

// Options: any struct with lr, beta1, beta2, eps and weight_decay (AdamOptions, RAdamOptions).
template <class Options>
void append_adam_family_entries(std::vector<Optimizer::StateEntry>& e, const NamedParameters& params,
                                std::vector<Tensor>& exp_avg, std::vector<Tensor>& exp_avg_sq,
                                std::vector<int64_t>& param_step, int64_t& step, Options& o) {
  for (size_t i = 0; i < params.size(); ++i) {
    const std::string& n = params[i].first;
    e.push_back({n + ".exp_avg", &exp_avg[i]});
    e.push_back({n + ".exp_avg_sq", &exp_avg_sq[i]});
    e.push_back({n + ".step", nullptr, nullptr, &param_step[i]});
  }
  e.push_back({"step", nullptr, nullptr, &step});
  e.push_back({"lr", nullptr, &o.lr});
  e.push_back({"beta1", nullptr, &o.beta1});
  e.push_back({"beta2", nullptr, &o.beta2});
  e.push_back({"eps", nullptr, &o.eps});
  e.push_back({"weight_decay", nullptr, &o.weight_decay});
}

}  // namespace gradstyle::train::detail
