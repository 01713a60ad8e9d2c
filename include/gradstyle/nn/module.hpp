#pragma once
// nn::Module: named parameters, buffers and children whose dotted names are exactly the
// state_dict keys of the PyTorch originals ("convs.3.conv.weight").
//
// A module keeps its tensors as ordinary members and registers pointers to them, so the layer
// code reads `weight` directly. `to(...)` and `load_state_dict` keep each member's handle (its
// TensorImpl) and change what it holds, so copies taken earlier (an optimizer's parameter list)
// stay the module's tensors, as in PyTorch:
//
//   struct Affine : nn::Module {
//     Tensor weight, bias;
//     Affine(int64_t n) { weight = Tensor::ones({n}); bias = Tensor::zeros({n});
//                         register_parameter("weight", &weight); register_parameter("bias", &bias); }
//   };
//
// Modules are neither copyable nor movable (the registry holds pointers into them); hold them by
// value as members, or by std::shared_ptr.
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "gradstyle/core/tensor.hpp"

namespace gradstyle::nn {

using StateDict = std::map<std::string, Tensor>;

class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // ---- traversal (depth-first, registration order, dotted names) ----
  std::vector<std::pair<std::string, Tensor*>> named_parameters(bool recurse = true);
  std::vector<std::pair<std::string, Tensor*>> named_buffers(bool recurse = true);
  std::vector<std::pair<std::string, Module*>> named_children();
  std::vector<Tensor> parameters(bool trainable_only = false);

  // Parameters and buffers by key (persistent buffers only).
  StateDict state_dict();
  // Copies tensors from sd into this module's existing tensors (same handles; same storage when
  // the tensor is dense; converted to the module tensor's dtype and device; requires_grad kept).
  // strict: every key must match both ways and every shape must agree; all problems (missing,
  // unexpected, wrong shape) are reported together in one ShapeError message. Non-strict: loads
  // the keys present, returns the report.
  struct LoadReport {
    std::vector<std::string> missing, unexpected, mismatched;
    bool ok() const { return missing.empty() && unexpected.empty() && mismatched.empty(); }
    std::string str() const;
  };
  LoadReport load_state_dict(const StateDict& sd, bool strict = true);

  // ---- mode, placement, freezing ----
  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }
  // Move/convert every parameter and buffer (and an existing .grad) in place: same handles.
  void to(Device d);
  void to(DType t);  // floating parameters and buffers only
  void requires_grad_(bool on);  // freeze (false) / unfreeze trainable parameters
  void zero_grad();
  int64_t num_parameters(bool trainable_only = false);

 protected:
  // trainable=false registers a parameter that loads/saves but never requires grad (e.g. a
  // frozen constant that the checkpoint stores as a parameter).
  void register_parameter(const std::string& name, Tensor* slot, bool trainable = true);
  // persistent=false: not part of state_dict (like PyTorch's non-persistent buffers).
  void register_buffer(const std::string& name, Tensor* slot, bool persistent = true);
  void register_module(const std::string& name, Module* child);
  template <class M>
  void register_module(const std::string& name, const std::shared_ptr<M>& child) {
    register_module(name, static_cast<Module*>(child.get()));
  }

 private:
  struct Slot {
    std::string name;
    Tensor* t;
    bool trainable_or_persistent;
  };
  std::vector<Slot> params_, buffers_;
  std::vector<std::pair<std::string, Module*>> children_;
  bool training_ = true;

  void collect(const std::string& prefix, bool params, bool persistent_only,
               std::vector<std::pair<std::string, Tensor*>>& out, bool recurse);
  void check_name(const std::string& name) const;
};

}  // namespace gradstyle::nn
