// The backward engine. Nodes are numbered in creation order; every consumer of a tensor is created
// after its producer, so visiting reachable nodes from the highest sequence number down is a
// valid topological order, and each node's gradient is complete when it is visited.
//
// Layering: the engine includes core only. It sums gradients with Tensor's operator+ and copies
// them with Tensor::clone, which core/tensor.hpp declares and the ops layer defines
// (src/ops/tensor_methods.cpp): the sum must be differentiable for create_graph=true.
#include <algorithm>
#include <unordered_map>
#include <unordered_set>

#include "gradstyle/autograd/autograd.hpp"

namespace gradstyle::autograd {

namespace {
thread_local bool g_grad_enabled = true;
std::atomic<uint64_t> g_next_seq{0};
}  // namespace

bool is_grad_enabled() { return g_grad_enabled; }
void set_grad_enabled(bool on) { g_grad_enabled = on; }

Node::Node(std::string name, bool leaf_sink)
    : name_(std::move(name)), seq_(leaf_sink ? 0 : g_next_seq.fetch_add(1) + 1) {}

std::vector<Tensor> FunctionNode::apply(const Tensor& g) {
  if (!fn_)
    throw AutogradError(err_msg("backward through '", name(), "' a second time: its saved values "
                                "were freed; pass retain_graph=true to the first backward"));
  return fn_(g);
}

AccumulateGrad::AccumulateGrad(const std::shared_ptr<TensorImpl>& l) : Node("AccumulateGrad", true), leaf(l) {}

std::vector<Tensor> AccumulateGrad::apply(const Tensor& g) {
  auto l = leaf.lock();
  if (!l) return {};
  if (!l->grad) {
    // Detach unless building a higher-order graph; always own the memory (g may be a view of a
    // tensor the caller still uses).
    l->grad = (is_grad_enabled() ? g.clone() : g.detach().clone().detach()).impl_ptr();
  } else {
    Tensor acc(l->grad);
    Tensor sum = is_grad_enabled() ? acc + g : acc.detach() + g.detach();
    l->grad = sum.impl_ptr();
  }
  return {};
}

bool any_requires_grad(std::initializer_list<const Tensor*> ts) {
  if (!g_grad_enabled) return false;
  for (const Tensor* t : ts)
    if (t->defined() && t->requires_grad()) return true;
  return false;
}
bool any_requires_grad(const std::vector<Tensor>& ts) {
  if (!g_grad_enabled) return false;
  for (const Tensor& t : ts)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

std::shared_ptr<Node> gradient_edge(const Tensor& t) {
  if (!t.defined() || !t.requires_grad()) return nullptr;
  if (t.grad_fn()) return t.grad_fn();
  auto& impl = t.impl();
  if (!impl.grad_accumulator) {
    impl.grad_accumulator = std::make_shared<AccumulateGrad>(t.impl_ptr());
    impl.grad_accumulator->out_shape = impl.shape;
    impl.grad_accumulator->out_dtype = impl.dtype;
    impl.grad_accumulator->out_device = t.device();
  }
  return impl.grad_accumulator;
}

void record(const char* name, Tensor& out, const std::vector<Tensor>& inputs, BackwardFn fn) {
  auto node = std::make_shared<FunctionNode>(name, std::move(fn));
  node->next.reserve(inputs.size());
  for (const Tensor& in : inputs) node->next.push_back(gradient_edge(in));
  node->out_shape = out.shape();
  node->out_dtype = out.dtype();
  node->out_device = out.device();
  out.impl().requires_grad = true;
  out.impl().grad_fn = std::move(node);
}

namespace {

// Runs the graph below roots. When `capture` is non-empty, gradients arriving at those nodes are
// returned instead of being accumulated into leaves, and only nodes that lead to them are run.
std::unordered_map<Node*, Tensor> run(const std::vector<Tensor>& roots, const std::vector<Tensor>& grad_roots,
                                      bool retain_graph, bool create_graph,
                                      const std::vector<Node*>& capture) {
  std::unordered_map<Node*, Tensor> grads;
  std::vector<std::shared_ptr<Node>> order;
  std::unordered_set<Node*> seen;
  std::vector<std::shared_ptr<Node>> stack;

  GS_CHECK(grad_roots.empty() || grad_roots.size() == roots.size(), AutogradError,
           "backward: ", roots.size(), " roots but ", grad_roots.size(), " gradients");
  for (size_t i = 0; i < roots.size(); ++i) {
    const Tensor& r = roots[i];
    GS_CHECK(r.defined() && r.requires_grad(), AutogradError,
             "backward: a root tensor does not require grad (it has no history to differentiate)");
    Tensor g = i < grad_roots.size() ? grad_roots[i] : Tensor();
    if (!g.defined()) {
      GS_CHECK(r.numel() == 1, AutogradError, "backward: the root has shape ", shape_str(r.shape()),
               "; a gradient must be given for a non-scalar root");
      g = Tensor::ones(r.shape(), {r.dtype(), r.device()});
    }
    GS_CHECK(g.shape() == r.shape(), ShapeError, "backward: gradient shape ", shape_str(g.shape()),
             " does not match root shape ", shape_str(r.shape()));
    auto edge = gradient_edge(r);
    Tensor& slot = grads[edge.get()];
    slot = slot.defined() ? slot + g : g;
    if (seen.insert(edge.get()).second) stack.push_back(edge);
  }
  while (!stack.empty()) {
    auto n = stack.back();
    stack.pop_back();
    order.push_back(n);
    for (auto& nx : n->next)
      if (nx && seen.insert(nx.get()).second) stack.push_back(nx);
  }
  std::sort(order.begin(), order.end(),
            [](const auto& a, const auto& b) { return a->sequence() > b->sequence(); });

  // With captures, run only the nodes from which a captured node can be reached.
  std::unordered_set<Node*> needed;
  std::unordered_set<Node*> capture_set(capture.begin(), capture.end());
  if (!capture.empty()) {
    for (auto it = order.rbegin(); it != order.rend(); ++it) {  // ascending sequence
      Node* n = it->get();
      bool need = capture_set.count(n) > 0;
      for (auto& nx : n->next) need = need || (nx && needed.count(nx.get()));
      if (need) needed.insert(n);
    }
  }

  EnableGradGuard mode(create_graph);
  std::unordered_map<Node*, Tensor> captured;
  for (auto& n : order) {
    auto it = grads.find(n.get());
    if (it == grads.end()) continue;  // no gradient flowed here
    Tensor g = it->second;
    grads.erase(it);
    if (!capture.empty()) {
      if (capture_set.count(n.get())) captured[n.get()] = g;
      if (!needed.count(n.get()) || dynamic_cast<AccumulateGrad*>(n.get())) continue;
    }
    std::vector<Tensor> in_grads = n->apply(g);
    if (!retain_graph) n->release();
    if (dynamic_cast<AccumulateGrad*>(n.get())) continue;
    GS_CHECK(in_grads.size() == n->next.size(), AutogradError, "internal: backward of '", n->name(),
             "' returned ", in_grads.size(), " gradients for ", n->next.size(), " inputs");
    for (size_t i = 0; i < in_grads.size(); ++i) {
      auto& nx = n->next[i];
      if (!nx || !in_grads[i].defined()) continue;
      const Tensor& gi = in_grads[i];
      GS_CHECK(gi.shape() == nx->out_shape, AutogradError, "internal: backward of '", n->name(),
               "' produced a gradient of shape ", shape_str(gi.shape()), " for input ", i,
               " of shape ", shape_str(nx->out_shape));
      Tensor& slot = grads[nx.get()];
      slot = slot.defined() ? slot + gi : gi;
    }
  }
  return captured;
}

}  // namespace

void backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grad_roots, bool retain_graph,
              bool create_graph) {
  run(roots, grad_roots, retain_graph || create_graph, create_graph, {});
}

std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& grad_outputs, bool retain_graph, bool create_graph,
                         bool allow_unused) {
  std::vector<Node*> capture;
  for (const Tensor& in : inputs) {
    GS_CHECK(in.defined() && in.requires_grad(), AutogradError,
             "grad: an input does not require grad (call requires_grad_() on it before the forward)");
    capture.push_back(gradient_edge(in).get());
  }
  auto got = run(outputs, grad_outputs, retain_graph || create_graph, create_graph, capture);
  std::vector<Tensor> res;
  for (size_t i = 0; i < inputs.size(); ++i) {
    auto it = got.find(capture[i]);
    if (it == got.end()) {
      GS_CHECK(allow_unused, AutogradError, "grad: input ", i, " (shape ", shape_str(inputs[i].shape()),
               ") is not used in the graph of the outputs; pass allow_unused=true to get an undefined tensor");
      res.emplace_back();
    } else {
      res.push_back(it->second);
    }
  }
  return res;
}

}  // namespace gradstyle::autograd
