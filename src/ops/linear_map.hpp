#pragma once
// Internal: autograd for ops that are linear in their input (pooling, interpolation, padding, the
// max-pool gather). Such an op is a matrix A; its gradient is A^T g, and the gradient of A^T g is
// A again. Giving both as raw kernels makes the op differentiable to any order for free.
#include <functional>
#include <memory>
#include <string>

#include "gradstyle/autograd/autograd.hpp"

namespace gradstyle::ops_detail {

struct LinearMap {
  std::string fwd_name;                          // tape name of A, e.g. "avg_pool2d"
  std::string adj_name;                          // tape name of A^T, e.g. "avg_pool2d_backward"
  std::function<Tensor(const Tensor&)> forward;  // x -> A x  (no autograd; any strides)
  std::function<Tensor(const Tensor&)> adjoint;  // g -> A^T g (no autograd; any strides)
};

// Applies A (adjoint = false) or A^T to x and, when x requires grad, records a node whose backward
// applies the other one through this same function.
inline Tensor apply_linear(const std::shared_ptr<const LinearMap>& m, const Tensor& x, bool adjoint) {
  Tensor out = adjoint ? m->adjoint(x.detach()) : m->forward(x.detach());
  if (autograd::any_requires_grad({&x})) {
    autograd::record((adjoint ? m->adj_name : m->fwd_name).c_str(), out, {x},
                     [m, adjoint](const Tensor& g) { return std::vector<Tensor>{apply_linear(m, g, !adjoint)}; });
  }
  return out;
}

}  // namespace gradstyle::ops_detail
