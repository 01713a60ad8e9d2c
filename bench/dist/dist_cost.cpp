// The communication side of data-parallel GradStyle training at 1024 px (docs/distributed.md):
// how many gradient bytes each step all-reduces, from the networks themselves (the GradStyle
// modules at the SPEC defaults on a 1024 px StyleGAN2, and the 1024 px discriminator); and, when
// started by mpirun with 2 or more ranks, how long all_reduce_gradients takes for those sizes on
// this machine (median of --repeats), as algorithm and bus bandwidth.
//
//   build/bench/dist/dist_cost
//   mpirun --oversubscribe --allow-run-as-root -np 2 build/bench/dist/dist_cost --repeats 5
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "gradstyle/dist/dist.hpp"
#include "gradstyle/models/gradstyle_net.hpp"
#include "gradstyle/models/stylegan2.hpp"
#include "gradstyle/train/config.hpp"

using namespace gradstyle;
namespace sg = gradstyle::models::stylegan2;

namespace {

// Gradients shaped like the parameters of `m`, filled with ones.
std::vector<std::pair<std::string, Tensor>> fake_gradients(nn::Module& m) {
  std::vector<std::pair<std::string, Tensor>> out;
  for (auto& [name, p] : m.named_parameters()) {
    Tensor q = Tensor::zeros(p->shape()).requires_grad_();
    q.set_grad(Tensor::ones(p->shape()));
    out.emplace_back(name, q);
  }
  return out;
}

double median_seconds(std::vector<std::pair<std::string, Tensor>>& g, dist::ProcessGroup& pg, int repeats) {
  std::vector<double> t;
  dist::all_reduce_gradients(g, pg);  // warm-up (connections, buffers)
  for (int i = 0; i < repeats; ++i) {
    pg.barrier();
    t.push_back(dist::all_reduce_gradients(g, pg).seconds);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int repeats = 5;
  for (int i = 1; i < argc; ++i)
    if (std::strcmp(argv[i], "--repeats") == 0 && i + 1 < argc) repeats = std::max(1, std::atoi(argv[++i]));
  dist::init(&argc, &argv);
  dist::ProcessGroup& pg = dist::world();
  const bool root = pg.rank() == 0;

  sg::GeneratorConfig gc;  // 1024 px, channel multiplier 2 (FFHQ config-f)
  models::gsnet::GradStyleConfig nc;  // SPEC defaults
  models::gsnet::GradStyleNet net(nc, gc);
  sg::DiscriminatorConfig dc;  // 1024 px
  sg::Discriminator D(dc);
  const train::TrainConfig tc;
  const double pm = double(net.num_parameters(true)), pd = double(D.num_parameters(true));
  const double bm = 4 * pm, bd = 4 * pd;
  const double per_iter = bm + bd + bd / double(tc.d_reg_every);  // module step, D step, lazy R1 step
  if (root) {
    std::printf("GradStyle modules (SPEC defaults, 1024 px G): %.0f parameters, %.1f MB of float32 gradients\n", pm,
                bm / 1e6);
    std::printf("discriminator (1024 px): %.0f parameters, %.1f MB\n", pd, bd / 1e6);
    std::printf("all-reduced per iteration: %.1f MB (modules + D + D's R1 step every %lld iterations)\n", per_iter / 1e6,
                static_cast<long long>(tc.d_reg_every));
  }
  if (pg.size() > 1) {
    auto gm = fake_gradients(net), gd = fake_gradients(D);
    const double tm = median_seconds(gm, pg, repeats), td = median_seconds(gd, pg, repeats);
    const double n = pg.size(), bus = 2.0 * (n - 1) / n;
    if (root) {
      std::printf("%d ranks (%s): all_reduce_gradients, median of %d:\n", pg.size(), pg.backend().c_str(), repeats);
      std::printf("  modules: %.1f ms, algorithm bandwidth %.2f GB/s, bus bandwidth %.2f GB/s\n", 1e3 * tm,
                  bm / tm / 1e9, bus * bm / tm / 1e9);
      std::printf("  D:       %.1f ms, algorithm bandwidth %.2f GB/s, bus bandwidth %.2f GB/s\n", 1e3 * td,
                  bd / td / 1e9, bus * bd / td / 1e9);
      std::printf("  per iteration (modules + D + R1 / %lld): %.1f ms\n", static_cast<long long>(tc.d_reg_every),
                  1e3 * (tm + td + td / double(tc.d_reg_every)));
    }
  }
  dist::finalize();
  return 0;
}
