// train_mlp: fits a small MLP to a smooth 2-D function with the gradstyle CPU backend.
//
//   target(x, y) = sin(2x) * cos(3y) + 0.5 x y      on [-1, 1]^2
//   model        = Linear(2, 64) -> tanh -> Linear(64, 64) -> tanh -> Linear(64, 1)
//   loss         = mse_loss over a fixed, seeded batch of 512 points (full batch)
//   optimizer    = Adam (written out below with in-place tensor ops under NoGradGuard)
//
// Prints the loss every 100 steps and ends with "loss: start X -> end Y (Zx lower)". Exits with
// status 1 if the loss did not drop at least 10x, so it doubles as an end-to-end smoke test of
// the tensor core, autograd and the basic ops.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <vector>

#include "gradstyle/gradstyle.hpp"

using namespace gradstyle;

namespace {

struct Param {
  Tensor w;     // the leaf being trained
  Tensor m, v;  // Adam moments
};

// Uniform(-bound, bound) with bound = 1/sqrt(fan_in), PyTorch's default for Linear.
Tensor init_uniform(const Shape& shape, int64_t fan_in, Generator& gen) {
  const double bound = 1.0 / std::sqrt(double(fan_in));
  return (Tensor::rand(shape, gen) * (2 * bound) - bound).detach().requires_grad_();
}

Param make_param(const Shape& shape, int64_t fan_in, Generator& gen) {
  Tensor w = init_uniform(shape, fan_in, gen);
  return {w, Tensor::zeros(shape), Tensor::zeros(shape)};
}

// One Adam step (Kingma & Ba, with bias correction) on every parameter; clears the gradients.
void adam_step(std::vector<Param>& ps, int step, double lr, double b1 = 0.9, double b2 = 0.999, double eps = 1e-8) {
  autograd::NoGradGuard ng;
  const double c1 = 1 - std::pow(b1, step), c2 = 1 - std::pow(b2, step);
  for (Param& p : ps) {
    Tensor g = p.w.grad();
    p.m = p.m * b1 + g * (1 - b1);
    p.v = p.v * b2 + square(g) * (1 - b2);
    Tensor update = (p.m / c1) / (sqrt(p.v / c2) + eps);
    p.w.add_(update, -lr);
    p.w.zero_grad();
  }
}

}  // namespace

int main() {
  const auto t0 = std::chrono::steady_clock::now();
  Generator gen(2024);

  // data: x [N, 2] in [-1, 1]^2, y [N, 1]
  const int64_t n = 512;
  Tensor x = Tensor::rand({n, 2}, gen) * 2.0 - 1.0;
  Tensor x0 = x.narrow(1, 0, 1), x1 = x.narrow(1, 1, 1);
  Tensor y = sin(x0 * 2.0) * cos(x1 * 3.0) + x0 * x1 * 0.5;

  // model parameters: weight [out, in], bias [out]
  const int64_t h = 64;
  std::vector<Param> ps = {
      make_param({h, 2}, 2, gen), make_param({h}, 2, gen),   //
      make_param({h, h}, h, gen), make_param({h}, h, gen),   //
      make_param({1, h}, h, gen), make_param({1}, h, gen),
  };
  auto forward = [&](const Tensor& in) {
    Tensor a = tanh(linear(in, ps[0].w, ps[1].w));
    a = tanh(linear(a, ps[2].w, ps[3].w));
    return linear(a, ps[4].w, ps[5].w);
  };

  const int steps = 1000;
  double start = 0, last = 0;
  for (int step = 0; step <= steps; ++step) {
    Tensor loss = mse_loss(forward(x), y);
    last = loss.item();
    if (step == 0) start = last;
    if (step % 100 == 0) std::printf("step %5d  loss %.6f\n", step, last);
    if (step == steps) break;
    loss.backward();
    adam_step(ps, step + 1, step < 700 ? 1e-2 : 3e-3);
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double ratio = start / last;
  std::printf("time: %.2f s (%d steps, %lld points, hidden %lld)\n", secs, steps, (long long)n, (long long)h);
  std::printf("loss: start %.6f -> end %.6f (%.1fx lower)\n", start, last, ratio);
  if (!(ratio >= 10.0)) {
    std::fprintf(stderr, "train_mlp: the loss dropped only %.2fx (expected >= 10x)\n", ratio);
    return 1;
  }
  return 0;
}
