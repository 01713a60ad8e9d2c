// The discriminator path under double backward: minibatch stddev (fixtures, gradient checks,
// errors), and the R1 penalty of a tiny StyleGAN2-style discriminator built from conv2d,
// upfirdn2d, bias_act, minibatch_stddev and linear: its gradient with respect to every weight
// matches PyTorch and central finite differences.
#include <cmath>
#include <map>

#include "conv_golden.hpp"
#include "gradstyle/ops/bias_act.hpp"
#include "gradstyle/ops/conv.hpp"
#include "gradstyle/ops/minibatch_std.hpp"
#include "gradstyle/ops/upfirdn2d.hpp"
#include "support/harness.hpp"

using namespace gradstyle;

namespace {

using Params = std::map<std::string, Tensor>;
const char* kParamNames[] = {"w0", "b0", "w1", "b1", "w2", "b2", "ws", "wf", "bf", "wl1", "bl1", "wl2", "bl2"};

Tensor blur_kernel(DType dt) {
  Tensor k = Tensor::from_vector<double>({1, 3, 3, 1}, {4}).to(dt);
  return mul_scalar(mul(reshape(k, {4, 1}), reshape(k, {1, 4})), 1.0 / 64.0);
}

// Same network as tools/reference/make_conv_fixtures.py tiny_discriminator (SPEC C.2 layers).
Tensor tiny_discriminator(const Tensor& x, const Params& p) {
  const BiasActOptions lrelu{.act = Activation::LeakyReLU};
  const Tensor k = blur_kernel(x.dtype()).to(x.device());
  Tensor h0 = bias_act(conv2d(x, p.at("w0")), p.at("b0"), lrelu);
  Tensor c1 = bias_act(conv2d(h0, p.at("w1"), Tensor(), {.padding = {1, 1}}), p.at("b1"), lrelu);
  Tensor c2 = bias_act(conv2d(upfirdn2d(c1, k, 1, 1, {2, 2, 2, 2}), p.at("w2"), Tensor(), {.stride = {2, 2}}),
                       p.at("b2"), lrelu);
  Tensor sk = conv2d(upfirdn2d(h0, k, 1, 1, {1, 1, 1, 1}), p.at("ws"), Tensor(), {.stride = {2, 2}});
  Tensor h = mul_scalar(add(c2, sk), 1.0 / std::sqrt(2.0));
  h = minibatch_stddev(h, 4, 1);
  h = bias_act(conv2d(h, p.at("wf"), Tensor(), {.padding = {1, 1}}), p.at("bf"), lrelu);
  h = reshape(h, {h.size(0), -1});
  h = bias_act(linear(h, p.at("wl1")), p.at("bl1"), lrelu);
  return linear(h, p.at("wl2"), p.at("bl2"));
}

// r1 = sum(grad_x(D(x).sum())^2), built with create_graph so that it is differentiable.
Tensor r1_penalty(const Tensor& x_in, const Params& p) {
  Tensor x = x_in.detach().requires_grad_();
  Tensor out = tiny_discriminator(x, p);
  Tensor gx = autograd::grad({out.sum()}, {x}, {}, true, true)[0];
  return square(gx).sum();
}

}  // namespace

TEST_CASE("ops/minibatch_stddev: matches PyTorch (rosinality's layer)") {
  for (const auto& c : gstest::conv_golden::load("minibatch_stddev")) {
    for (DType dt : {DType::f32, DType::f64}) {
      INFO("fixture " << c.name << " as " << std::string(dtype_name(dt)));
      Tensor x = c.at("x").to(dt).clone().requires_grad_();
      Tensor y = minibatch_stddev(x, c.params["group_size"], c.params["num_features"]);
      GS_EXPECT_CLOSE(y, c.at("y"), 1e-6, 1e-5);
      y.backward(c.at("gy").to(dt));
      GS_EXPECT_CLOSE(x.grad(), c.at("gx"), 1e-5, 1e-4);
    }
  }
}

TEST_CASE("ops/minibatch_stddev: closed form, gradients, errors") {
  // Two groups {0, 2} and {1, 3} (b mod 2): per-position |a - b| / 2 is the biased stddev.
  Tensor x = Tensor::from_vector<double>({0, 0, 1, 1, 2, 4, 5, 9}, {4, 1, 1, 2});
  Tensor y = minibatch_stddev(x, 2, 1, 0.0);
  REQUIRE(y.shape() == Shape{4, 2, 1, 2});
  // group of samples 0 and 2: positions (0 vs 2) -> 1, (0 vs 4) -> 2: mean 1.5
  // group of samples 1 and 3: (1 vs 5) -> 2, (1 vs 9) -> 4: mean 3
  GS_EXPECT_CLOSE(select(y, 1, 1), Tensor::from_vector<double>({1.5, 1.5, 3, 3, 1.5, 1.5, 3, 3}, {4, 1, 2}), 0, 1e-15);
  GS_EXPECT_CLOSE(narrow(y, 1, 0, 1), x, 0, 0);
  Tensor xr = Tensor::randn({4, 4, 2, 3}, 5, {DType::f64});
  gstest::Fn f = [](const std::vector<Tensor>& v) { return minibatch_stddev(v[0], 2, 2); };
  gstest::gradcheck(f, {xr});
  gstest::gradgradcheck(f, {xr});
  GS_CHECK_THROWS_WITH(minibatch_stddev(Tensor::randn({6, 2, 2, 2}, 1)), ShapeError, "minibatch_stddev",
                       "batch 6 is not divisible by the group size 4");
  GS_CHECK_THROWS_WITH(minibatch_stddev(Tensor::randn({4, 3, 2, 2}, 1), 4, 2), ShapeError, "not divisible by num_features");
  GS_CHECK_THROWS_WITH(minibatch_stddev(Tensor::randn({4, 3, 2}, 1)), ShapeError, "4-D input");
  GS_CHECK_THROWS_WITH(minibatch_stddev(Tensor::randn({4, 3, 2, 2}, 1), 0), ValueError, "group_size");
}

TEST_CASE("ops/r1: R1 penalty of a tiny discriminator and its weight gradients match PyTorch") {
  auto cases = gstest::conv_golden::load("r1");
  const auto& c = cases.at(0);
  for (DType dt : {DType::f64, DType::f32}) {
    INFO("as " << std::string(dtype_name(dt)));
    Params p;
    for (const char* k : kParamNames) p[k] = c.at(k).to(dt).clone().requires_grad_();
    Tensor x = c.at("x").to(dt);
    {
      autograd::NoGradGuard ng;
      GS_EXPECT_CLOSE(tiny_discriminator(x, p), c.at("out"), 1e-5, 1e-5);
    }
    Tensor r1 = r1_penalty(x, p);
    const double tol = dt == DType::f64 ? 1e-6 : 1e-4;
    GS_EXPECT_CLOSE(reshape(r1, {1}), c.at("r1"), tol, tol);
    r1.backward();
    for (const char* k : kParamNames) {
      INFO("d r1 / d " << std::string(k));
      // the last bias does not influence grad_x, so it receives no gradient (PyTorch: unused)
      Tensor g = p[k].grad().defined() ? p[k].grad() : Tensor::zeros(p[k].shape(), {dt});
      GS_EXPECT_CLOSE(g, c.at(std::string("g_") + k), tol, tol);
    }
  }
}

TEST_CASE("ops/r1: R1 weight gradients match central finite differences (float64)") {
  auto cases = gstest::conv_golden::load("r1");
  const auto& c = cases.at(0);
  Params p;
  for (const char* k : kParamNames) p[k] = c.at(k).to(DType::f64).clone().requires_grad_();
  Tensor x = c.at("x").to(DType::f64);
  Tensor r1 = r1_penalty(x, p);
  r1.backward();
  // A few entries of every parameter (the first, the last and one in the middle).
  Generator gen(99);
  for (const char* k : kParamNames) {
    // Biases behind the minibatch-stddev layer only move the lrelu kinks (and bl2 nothing), so
    // grad_x does not depend on them: no gradient reaches them and their derivative is 0.
    auto base = p[k].detach().to_vector<double>();
    auto grad = p[k].grad().defined() ? p[k].grad().to_vector<double>() : std::vector<double>(base.size(), 0.0);
    for (size_t i : {size_t(0), base.size() / 2, base.size() - 1}) {
      auto probe = [&](double d) {
        autograd::NoGradGuard ng;  // r1_penalty re-enables grad internally where it needs it
        Params q = p;
        auto v = base;
        v[i] += d;
        q[k] = Tensor::from_vector(v, p[k].shape());
        autograd::EnableGradGuard eg(true);
        return r1_penalty(x, q).item();
      };
      const double eps = 1e-5;
      const double fd = (probe(eps) - probe(-eps)) / (2 * eps);
      INFO("d r1 / d " << std::string(k) << "[" << i << "]: autograd " << grad[i] << " finite differences " << fd);
      CHECK(std::abs(grad[i] - fd) <= 1e-6 + 1e-5 * std::abs(fd));
    }
  }
}

TEST_CASE("ops/r1: CPU and CUDA give the same R1 gradients") {
  auto cases = gstest::conv_golden::load("r1");
  const auto& c = cases.at(0);
  std::vector<Tensor> inputs{c.at("x")};
  for (const char* k : kParamNames) inputs.push_back(c.at(k));
  gstest::expect_cpu_cuda_match(
      [](const std::vector<Tensor>& v) {
        Params p;
        for (size_t i = 0; i < std::size(kParamNames); ++i) p[kParamNames[i]] = v[i + 1];
        return reshape(r1_penalty(v[0], p), {1});
      },
      inputs, {1e-4, 1e-4});
}
