#include "gradstyle/nn/module.hpp"

#include <algorithm>
#include <set>

#include "gradstyle/autograd/autograd.hpp"

namespace gradstyle::nn {

void Module::check_name(const std::string& name) const {
  GS_CHECK(!name.empty() && name.find('.') == std::string::npos, ValueError, "Module: invalid name '", name,
           "' (must be non-empty and contain no '.')");
  auto taken = [&](const auto& v) {
    return std::any_of(v.begin(), v.end(), [&](const auto& s) {
      if constexpr (std::is_same_v<std::decay_t<decltype(s)>, Slot>) return s.name == name;
      else return s.first == name;
    });
  };
  GS_CHECK(!taken(params_) && !taken(buffers_) && !taken(children_), ValueError, "Module: name '", name,
           "' registered twice");
}

void Module::register_parameter(const std::string& name, Tensor* slot, bool trainable) {
  check_name(name);
  GS_CHECK(slot && slot->defined(), ValueError, "Module: parameter '", name, "' is undefined");
  if (trainable && is_floating(slot->dtype())) {
    if (!slot->is_leaf()) *slot = slot->detach();
    slot->requires_grad_(true);
  }
  params_.push_back({name, slot, trainable});
}

void Module::register_buffer(const std::string& name, Tensor* slot, bool persistent) {
  check_name(name);
  GS_CHECK(slot && slot->defined(), ValueError, "Module: buffer '", name, "' is undefined");
  buffers_.push_back({name, slot, persistent});
}

void Module::register_module(const std::string& name, Module* child) {
  check_name(name);
  GS_CHECK(child != nullptr, ValueError, "Module: child '", name, "' is null");
  children_.emplace_back(name, child);
}

void Module::collect(const std::string& prefix, bool params, bool persistent_only,
                     std::vector<std::pair<std::string, Tensor*>>& out, bool recurse) {
  for (auto& s : params ? params_ : buffers_)
    if (params || !persistent_only || s.trainable_or_persistent) out.emplace_back(prefix + s.name, s.t);
  if (!recurse) return;
  for (auto& [n, c] : children_) c->collect(prefix + n + ".", params, persistent_only, out, true);
}

std::vector<std::pair<std::string, Tensor*>> Module::named_parameters(bool recurse) {
  std::vector<std::pair<std::string, Tensor*>> r;
  collect("", true, false, r, recurse);
  return r;
}
std::vector<std::pair<std::string, Tensor*>> Module::named_buffers(bool recurse) {
  std::vector<std::pair<std::string, Tensor*>> r;
  collect("", false, false, r, recurse);
  return r;
}
std::vector<std::pair<std::string, Module*>> Module::named_children() { return children_; }

std::vector<Tensor> Module::parameters(bool trainable_only) {
  std::vector<Tensor> r;
  for (auto& [n, t] : named_parameters())
    if (!trainable_only || t->requires_grad()) r.push_back(*t);
  return r;
}

StateDict Module::state_dict() {
  StateDict sd;
  std::vector<std::pair<std::string, Tensor*>> all;
  collect("", true, false, all, true);
  collect("", false, true, all, true);
  for (auto& [n, t] : all) sd[n] = t->detach();
  return sd;
}

std::string Module::LoadReport::str() const {
  std::string s;
  auto list = [&](const char* what, const std::vector<std::string>& v) {
    if (v.empty()) return;
    s += std::string(s.empty() ? "" : "; ") + what + " (" + std::to_string(v.size()) + "): ";
    for (size_t i = 0; i < v.size() && i < 20; ++i) s += (i ? ", " : "") + v[i];
    if (v.size() > 20) s += ", ... (" + std::to_string(v.size() - 20) + " more)";
  };
  list("missing keys", missing);
  list("unexpected keys", unexpected);
  list("wrong shapes", mismatched);
  return s;
}

Module::LoadReport Module::load_state_dict(const StateDict& sd, bool strict) {
  std::vector<std::pair<std::string, Tensor*>> all;
  collect("", true, false, all, true);
  collect("", false, true, all, true);
  LoadReport rep;
  std::set<std::string> known;
  for (auto& [n, t] : all) {
    known.insert(n);
    auto it = sd.find(n);
    if (it == sd.end()) {
      rep.missing.push_back(n);
    } else if (it->second.shape() != t->shape()) {
      rep.mismatched.push_back(n + " (checkpoint " + shape_str(it->second.shape()) + ", model " +
                               shape_str(t->shape()) + ")");
    }
  }
  for (auto& [k, v] : sd)
    if (!known.count(k)) rep.unexpected.push_back(k);
  if (strict && !rep.ok()) throw ShapeError("load_state_dict: " + rep.str());
  autograd::NoGradGuard ng;
  for (auto& [n, t] : all) {
    auto it = sd.find(n);
    if (it == sd.end() || it->second.shape() != t->shape()) continue;
    if (t->is_contiguous()) {
      // Like torch: copy into the existing storage (converting dtype and device), so every holder
      // of this handle (an optimizer, a tied weight) sees the loaded values.
      t->copy_(it->second);
    } else {
      // A strided/expanded view cannot take an elementwise copy: give the same handle fresh dense
      // storage of its own dtype instead.
      Tensor v = it->second.detach().to(t->device());
      if (v.dtype() != t->dtype()) v = v.to(t->dtype());
      Tensor fresh = v.clone().detach();
      if (t->is_leaf()) t->set_data(fresh);
      else *t = fresh;  // a buffer computed by an op: no optimizer holds it
    }
  }
  return rep;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [n, c] : children_) c->train(on);
}

// Moves/converts every tensor in `all` with f, keeping each handle (an optimizer built before
// the call keeps updating the module's tensors) and moving an existing .grad along.
template <class F>
static void convert_in_place(const std::vector<std::pair<std::string, Tensor*>>& all, F&& f) {
  autograd::NoGradGuard ng;
  for (auto& [n, t] : all) {
    Tensor moved = f(t->detach());
    if (!moved.defined()) continue;
    if (!t->is_leaf()) {  // a buffer computed by an op: no optimizer holds it, take the new tensor
      *t = moved;
      continue;
    }
    Tensor g = t->grad();
    t->set_data(moved);
    if (g.defined()) {
      Tensor gm = f(g.detach());
      t->set_grad(gm.defined() ? gm : g);
    }
  }
}

void Module::to(Device d) {
  std::vector<std::pair<std::string, Tensor*>> all;
  collect("", true, false, all, true);
  collect("", false, false, all, true);
  convert_in_place(all, [&](const Tensor& x) { return x.device() == d ? Tensor() : x.to(d); });
}

void Module::to(DType dt) {
  GS_CHECK(is_floating(dt), DTypeError, "Module::to: target dtype must be floating, got ", dtype_name(dt));
  std::vector<std::pair<std::string, Tensor*>> all;
  collect("", true, false, all, true);
  collect("", false, false, all, true);
  convert_in_place(all, [&](const Tensor& x) {
    return !is_floating(x.dtype()) || x.dtype() == dt ? Tensor() : x.to(dt);
  });
}

void Module::requires_grad_(bool on) {
  for (auto& [n, t] : named_parameters())
    if (is_floating(t->dtype())) t->requires_grad_(on);
}

void Module::zero_grad() {
  for (auto& [n, t] : named_parameters()) t->zero_grad();
}

int64_t Module::num_parameters(bool trainable_only) {
  int64_t n = 0;
  for (auto& [name, t] : named_parameters())
    if (!trainable_only || t->requires_grad()) n += t->numel();
  return n;
}

}  // namespace gradstyle::nn
