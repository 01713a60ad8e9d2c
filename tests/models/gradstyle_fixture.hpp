#pragma once
// Shared helpers for the GradStyle network tests: a tiny generator whose W+ has e4e_tiny.pt's
// shape (64 px, 10 rows of 16), small configurations, and a gradcheck over a module's parameters.
#include <string>
#include <vector>

#include "gradstyle/models/gradstyle_net.hpp"
#include "gradstyle/nn/layers.hpp"
#include "support/harness.hpp"

namespace gstest_gs {

using namespace gradstyle;
namespace gs = gradstyle::models::gsnet;
namespace sg = gradstyle::models::stylegan2;

// 64 px, 9 StyledConvs, 10 W+ rows of 16, width 8 at every resolution.
inline sg::GeneratorConfig tiny_generator_config() {
  sg::GeneratorConfig c;
  c.size = 64;
  c.style_dim = 16;
  c.n_mlp = 1;
  c.channels = {{4, 8}, {8, 8}, {16, 8}, {32, 8}, {64, 8}};
  return c;
}

inline std::unique_ptr<sg::Generator> tiny_generator(uint64_t seed = 5) {
  gradstyle::Generator init(seed);
  auto g = std::make_unique<sg::Generator>(tiny_generator_config(), &init);
  {
    autograd::NoGradGuard ng;  // non-zero noise strengths so the stored noise matters
    for (auto& [n, t] : g->named_parameters())
      if (n.find("noise.weight") != std::string::npos) t->fill_(0.1);
  }
  g->eval();
  g->requires_grad_(false);
  return g;
}

// The network keys at the tiny width: e4e_tiny's 16-channel maps, 2 heads.
inline gs::GradStyleConfig tiny_config() {
  gs::GradStyleConfig c;
  c.refined_blocks = {3, 6, 8};
  c.t_channels = 16;
  c.aligner_heads = 2;
  c.aligner_layers = 2;
  c.aligner_mlp_ratio = 2;
  return c;
}

// Gradcheck of a module's forward in its inputs and every trainable parameter (float64).
// `forward` receives the inputs; the parameters are swapped for the checker's leaves first.
inline void gradcheck_module(nn::Module& m, const std::vector<Tensor>& inputs,
                             const std::function<Tensor(const std::vector<Tensor>&)>& forward, double atol = 1e-6,
                             double rtol = 1e-4) {
  std::vector<Tensor*> slots;
  std::vector<Tensor> all = inputs;
  for (auto& [name, t] : m.named_parameters())
    if (t->requires_grad()) {
      slots.push_back(t);
      all.push_back(*t);
    }
  const size_t n_in = inputs.size();
  gstest::gradcheck(
      [&](const std::vector<Tensor>& xs) {
        for (size_t i = 0; i < slots.size(); ++i) *slots[i] = xs[n_in + i];
        return forward(std::vector<Tensor>(xs.begin(), xs.begin() + long(n_in)));
      },
      all, 1e-6, atol, rtol);
  // The probes leave detached copies in the slots: put the module's own parameters back.
  for (size_t i = 0; i < slots.size(); ++i) *slots[i] = all[n_in + i];
}

inline std::vector<std::string> keys(nn::Module& m) {
  std::vector<std::string> r;
  for (auto& [k, v] : m.state_dict()) r.push_back(k);
  return r;
}

inline bool bit_equal(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.to_vector<double>() == b.to_vector<double>();
}

}  // namespace gstest_gs
