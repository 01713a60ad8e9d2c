// Optimizer base: parameter checks, gradients, and the named-tensor state shared by every
// optimiser (state_dict / load_state_dict).
#include <cmath>
#include <set>
#include <sstream>

#include "gradstyle/autograd/autograd.hpp"
#include "gradstyle/nn/module.hpp"
#include "gradstyle/train/optim.hpp"

namespace gradstyle::train {

NamedParameters trainable_parameters(nn::Module& m, const std::string& prefix) {
  NamedParameters out;
  for (auto& [name, t] : m.named_parameters())
    if (t->defined() && t->requires_grad()) out.emplace_back(prefix + name, *t);
  return out;
}

Optimizer::Optimizer(std::string kind, NamedParameters params)
    : kind_(std::move(kind)), params_(std::move(params)) {
  std::set<std::string> seen;
  for (auto& [name, p] : params_) {
    GS_CHECK(!name.empty(), ValueError, kind_, ": a parameter has an empty name");
    GS_CHECK(seen.insert(name).second, ValueError, kind_, ": parameter name '", name, "' is given twice");
    GS_CHECK(p.defined(), ValueError, kind_, ": parameter '", name, "' is an undefined tensor");
    GS_CHECK(p.dtype() == DType::f32 || p.dtype() == DType::f64, DTypeError, kind_, ": parameter '",
             name, "' is ", dtype_name(p.dtype()), ", expected float32 or float64");
  }
}

void Optimizer::zero_grad() {
  for (auto& [name, p] : params_) p.zero_grad();
}

Tensor Optimizer::grad_of(size_t i) const {
  const auto& [name, p] = params_[i];
  Tensor g = p.grad();
  if (!g.defined()) return g;
  GS_CHECK(g.shape() == p.shape(), ShapeError, kind_, "::step: gradient of '", name, "' has shape ",
           shape_str(g.shape()), ", parameter ", shape_str(p.shape()));
  GS_CHECK(g.dtype() == p.dtype(), DTypeError, kind_, "::step: gradient of '", name, "' is ",
           dtype_name(g.dtype()), ", parameter ", dtype_name(p.dtype()));
  GS_CHECK(g.device() == p.device(), DeviceError, kind_, "::step: gradient of '", name,
           "' is on another device than the parameter");
  return g.detach();
}

Tensor Optimizer::zeros_like_param(size_t i) const {
  const Tensor& p = params_[i].second;
  return Tensor::zeros(p.shape(), {p.dtype(), p.device()});
}

OptimizerState Optimizer::state_dict() const {
  // state_entries() hands out pointers for loading too; here they are only read.
  auto entries = const_cast<Optimizer*>(this)->state_entries();
  OptimizerState out;
  for (auto& e : entries) {
    Tensor t;
    if (e.tensor) t = *e.tensor;
    else if (e.real) t = Tensor::scalar(*e.real, {DType::f64});
    else t = Tensor::from_vector<int64_t>({*e.count}, {});
    GS_CHECK(out.emplace(e.key, t).second, ValueError, kind_, "::state_dict: two state items are named '",
             e.key, "'");
  }
  return out;
}

void Optimizer::load_state_dict(const OptimizerState& state) {
  auto entries = state_entries();
  std::vector<std::string> missing, unexpected, wrong;
  std::set<std::string> known;
  std::vector<double> reals(entries.size());
  std::vector<int64_t> counts(entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    const auto& e = entries[i];
    known.insert(e.key);
    auto it = state.find(e.key);
    if (it == state.end()) {
      missing.push_back(e.key);
      continue;
    }
    const Tensor& v = it->second;
    if (!v.defined()) {
      wrong.push_back(e.key + " (undefined tensor)");
    } else if (e.tensor) {
      if (v.shape() != e.tensor->shape() || v.dtype() != e.tensor->dtype())
        wrong.push_back(e.key + " (state " + dtype_name(v.dtype()) + " " + shape_str(v.shape()) + ", expected " +
                        dtype_name(e.tensor->dtype()) + " " + shape_str(e.tensor->shape()) + ")");
    } else if (v.numel() != 1) {
      wrong.push_back(e.key + " (state " + shape_str(v.shape()) + ", expected a single value)");
    } else if (e.real) {
      reals[i] = v.item();
    } else {
      double c = v.dtype() == DType::i64 ? double(v.to_vector<int64_t>()[0]) : v.item();
      if (!(c >= 0) || c != std::floor(c))
        wrong.push_back(e.key + " (value " + std::to_string(c) + ", expected a non-negative integer)");
      else
        counts[i] = v.dtype() == DType::i64 ? v.to_vector<int64_t>()[0] : int64_t(c);
    }
  }
  for (auto& [k, v] : state)
    if (!known.count(k)) unexpected.push_back(k);
  if (!missing.empty() || !unexpected.empty() || !wrong.empty()) {
    std::ostringstream os;
    os << kind_ << "::load_state_dict: the state does not fit this optimiser ("
       << missing.size() + unexpected.size() + wrong.size() << " problems)";
    auto list = [&](const char* what, const std::vector<std::string>& v) {
      if (v.empty()) return;
      os << "; " << what << ":";
      for (auto& s : v) os << " " << s;
    };
    list("missing", missing);
    list("unexpected", unexpected);
    list("mismatched", wrong);
    throw OptimizerStateError(os.str());
  }
  // Scalars first, so that bad hyperparameters leave the optimiser exactly as it was.
  std::vector<double> old_reals(entries.size());
  std::vector<int64_t> old_counts(entries.size());
  auto assign = [&](const std::vector<double>& r, const std::vector<int64_t>& c) {
    for (size_t i = 0; i < entries.size(); ++i) {
      if (entries[i].real) *entries[i].real = r[i];
      if (entries[i].count) *entries[i].count = c[i];
    }
  };
  for (size_t i = 0; i < entries.size(); ++i) {
    if (entries[i].real) old_reals[i] = *entries[i].real;
    if (entries[i].count) old_counts[i] = *entries[i].count;
  }
  assign(reals, counts);
  try {
    check_hyperparameters();
  } catch (const Error& ex) {
    assign(old_reals, old_counts);
    throw OptimizerStateError(kind_ + "::load_state_dict: " + ex.what());
  }
  autograd::NoGradGuard ng;
  for (auto& e : entries)
    if (e.tensor) e.tensor->copy_(state.at(e.key));
}

}  // namespace gradstyle::train
