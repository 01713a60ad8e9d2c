#pragma once
// Define-by-run reverse-mode autograd.
//
// Every differentiable op that sees an input requiring grad (while grad mode is on) records one
// Node on its output: the node knows the nodes of its inputs (edges) and a backward rule that
// maps the output's gradient to one gradient per input. Backward rules are written with the same
// differentiable ops as the forward pass, so running backward with create_graph=true records a
// graph of the backward itself, which gives second derivatives (the R1 penalty needs them).
//
// Leaves (tensors made by the user with requires_grad_()) get an AccumulateGrad node that adds
// incoming gradients to .grad. grad() instead returns the gradients w.r.t. chosen tensors and
// leaves .grad untouched, like torch.autograd.grad.
#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "gradstyle/core/tensor.hpp"

namespace gradstyle::autograd {

// Grad mode is per thread. NoGradGuard turns it off for a scope (inference, optimizer steps).
bool is_grad_enabled();
void set_grad_enabled(bool on);
class NoGradGuard {
 public:
  NoGradGuard() : prev_(is_grad_enabled()) { set_grad_enabled(false); }
  ~NoGradGuard() { set_grad_enabled(prev_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};
class EnableGradGuard {
 public:
  explicit EnableGradGuard(bool on) : prev_(is_grad_enabled()) { set_grad_enabled(on); }
  ~EnableGradGuard() { set_grad_enabled(prev_); }
  EnableGradGuard(const EnableGradGuard&) = delete;
  EnableGradGuard& operator=(const EnableGradGuard&) = delete;

 private:
  bool prev_;
};

using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad_output)>;

class Node {
 public:
  // leaf_sink nodes (AccumulateGrad) get sequence 0: they have no inputs, so running them after
  // every function node is always a valid order, however late they were created.
  explicit Node(std::string name, bool leaf_sink = false);
  virtual ~Node() = default;
  const std::string& name() const { return name_; }
  uint64_t sequence() const { return seq_; }
  // One entry per input of the op; null where that input needs no gradient.
  std::vector<std::shared_ptr<Node>> next;
  // Shape/dtype/device of the output this node produced (the gradient must match it).
  Shape out_shape;
  DType out_dtype = DType::f32;
  Device out_device;
  // Maps the output gradient to one gradient per input (undefined tensors allowed).
  virtual std::vector<Tensor> apply(const Tensor& grad_output) = 0;
  // Frees saved tensors after a backward without retain_graph.
  virtual void release() {}
  bool released() const { return released_; }

 protected:
  bool released_ = false;

 private:
  std::string name_;
  uint64_t seq_;
};

// A node whose backward rule is a lambda (the usual way ops record themselves).
class FunctionNode final : public Node {
 public:
  FunctionNode(std::string name, BackwardFn fn) : Node(std::move(name)), fn_(std::move(fn)) {}
  std::vector<Tensor> apply(const Tensor& grad_output) override;
  void release() override {
    fn_ = nullptr;
    released_ = true;
  }

 private:
  BackwardFn fn_;
};

// The sink of a leaf: adds gradients into the leaf's .grad.
class AccumulateGrad final : public Node {
 public:
  explicit AccumulateGrad(const std::shared_ptr<TensorImpl>& leaf);
  std::vector<Tensor> apply(const Tensor& grad_output) override;  // returns {}
  std::weak_ptr<TensorImpl> leaf;
};

// True when grad mode is on and any of the tensors requires grad.
bool any_requires_grad(std::initializer_list<const Tensor*> ts);
bool any_requires_grad(const std::vector<Tensor>& ts);

// The node that receives gradients for t: its grad_fn, or its leaf accumulator; null when t
// does not require grad.
std::shared_ptr<Node> gradient_edge(const Tensor& t);

// Records `out` as produced by `name` from `inputs`, with backward rule fn. Call only when
// any_requires_grad(inputs). fn must return inputs.size() tensors (undefined = no gradient).
// Never capture `out` itself inside fn (that is a reference cycle): capture inputs, or
// out.detach() for first-order-only uses.
void record(const char* name, Tensor& out, const std::vector<Tensor>& inputs, BackwardFn fn);

// Back-propagates from roots with the given gradients (undefined = ones for a scalar root).
void backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grad_roots = {},
              bool retain_graph = false, bool create_graph = false);

// Gradients of sum(outputs * grad_outputs) w.r.t. inputs, like torch.autograd.grad. Leaves'
// .grad are untouched. With create_graph=true the results are themselves differentiable.
// allow_unused=false throws AutogradError when an input is not reachable from the outputs.
std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& grad_outputs = {}, bool retain_graph = false,
                         bool create_graph = false, bool allow_unused = false);

}  // namespace gradstyle::autograd
