// GradStyle's loss terms (SPEC B.7) against closed-form values, including the second-order
// gradient of the R1 penalty and the stop-gradients each term promises.
#include <cmath>

#include "gradstyle/models/lpips.hpp"
#include "gradstyle/nn/layers.hpp"
#include "gradstyle/train/losses.hpp"
#include "support/harness.hpp"

using namespace gradstyle;
using namespace gradstyle::train;

namespace {
Tensor vec(std::vector<double> v, Shape s) { return Tensor::from_vector<double>(v, s); }
double item(const Tensor& t) { return t.to_vector<double>().at(0); }
}  // namespace

TEST_CASE("train/losses: pool_to averages k x k blocks, is the identity at full size, refuses non-divisors") {
  std::vector<double> v(16);
  for (int i = 0; i < 16; ++i) v[i] = i;
  Tensor x = vec(v, {1, 1, 4, 4});
  Tensor p = pool_to(x, 2);
  GS_EXPECT_CLOSE(p, vec({2.5, 4.5, 10.5, 12.5}, {1, 1, 2, 2}), 1e-12, 0);
  CHECK(pool_to(x, 4).to_vector<double>() == v);
  CHECK_THROWS_WITH_AS(pool_to(x, 3), doctest::Contains("does not divide the image size 4x4"), ValueError);
  CHECK_THROWS_AS(pool_to(vec({1, 2}, {2}), 1), ShapeError);
}

TEST_CASE("train/losses: image_l2 is the element mean (or sum) and never reaches the target") {
  Tensor a = vec({1, 2, 3, 4}, {1, 1, 2, 2}).requires_grad_();
  Tensor b = vec({0, 2, 5, 4}, {1, 1, 2, 2}).requires_grad_();
  Tensor l = image_l2(a, b);
  CHECK(item(l) == doctest::Approx((1.0 + 0 + 4 + 0) / 4));
  CHECK(item(image_l2(a, b, Reduction::Sum)) == doctest::Approx(5.0));
  l.backward();
  GS_EXPECT_CLOSE(a.grad(), vec({0.5, 0, -1, 0}, {1, 1, 2, 2}), 1e-12, 0);
  CHECK_FALSE(b.grad().defined());
  CHECK_THROWS_AS(image_l2(a, vec({1, 2}, {1, 1, 1, 2})), ShapeError);
}

TEST_CASE("train/losses: gate_regulariser sums the stages' mean |g * F|, gate broadcast over channels") {
  Tensor g1 = vec({0.5, 1, 0, 2}, {1, 1, 2, 2}).requires_grad_();  // spatial gate (Cg = 1)
  Tensor f1 = vec({1, -1, 3, 1, 2, 2, -2, -1}, {1, 2, 2, 2}).requires_grad_();
  Tensor g2 = vec({1, 1}, {1, 2, 1, 1});
  Tensor f2 = vec({-3, 1}, {1, 2, 1, 1});
  // stage 1: |0.5*1|+|1*-1|+|0*3|+|2*1| + |0.5*2|+|1*2|+|0*-2|+|2*-1| = 0.5+1+0+2+1+2+0+2 = 8.5 over 8
  // stage 2: (3 + 1) / 2
  Tensor l = gate_regulariser({g1, g2}, {f1, f2});
  CHECK(item(l) == doctest::Approx(8.5 / 8 + 2.0));
  CHECK(item(gate_regulariser({g1}, {f1}, Reduction::Sum)) == doctest::Approx(8.5));
  l.backward();
  // d/dg1 = sum_c |f| sign(g f) sign... : for g >= 0, d|g f|/dg = |f| (g > 0), 0 at g = 0 (sign(0) = 0)
  GS_EXPECT_CLOSE(g1.grad(), vec({(1 + 2) / 8.0, (1 + 2) / 8.0, 0, (1 + 1) / 8.0}, {1, 1, 2, 2}), 1e-12, 0);
  CHECK(f1.grad().defined());
  CHECK_THROWS_WITH_AS(gate_regulariser({g1}, {f1, f2}), doctest::Contains("1 gates but 2 residuals"), ShapeError);
  CHECK_THROWS_AS(gate_regulariser({}, {}), ValueError);
  CHECK_THROWS_WITH_AS(gate_regulariser({vec({1, 1, 1}, {1, 3, 1, 1})}, {f2}), doctest::Contains("stage 0"), ShapeError);
}

TEST_CASE("train/losses: aligner_l1 reaches F' only") {
  Tensor fp = vec({1, 2, 3, 4}, {1, 1, 2, 2}).requires_grad_();
  Tensor f = vec({2, 2, 1, 5}, {1, 1, 2, 2}).requires_grad_();
  Tensor l = aligner_l1({fp, fp}, {f, f});
  CHECK(item(l) == doctest::Approx(2 * (1 + 0 + 2 + 1) / 4.0));
  l.backward();
  GS_EXPECT_CLOSE(fp.grad(), vec({-0.5, 0, 0.5, -0.5}, {1, 1, 2, 2}), 1e-12, 0);
  CHECK_FALSE(f.grad().defined());
  CHECK_THROWS_WITH_AS(aligner_l1({fp}, {vec({1, 2}, {1, 1, 1, 2})}), doctest::Contains("stage 0"), ShapeError);
}

TEST_CASE("train/losses: non-saturating G loss and logistic D loss (rosinality's forms)") {
  Tensor fake = vec({0, 2}, {2, 1}).requires_grad_();
  const double sp0 = std::log(2.0), spm2 = std::log1p(std::exp(-2.0)), sp2 = std::log1p(std::exp(2.0));
  Tensor g = generator_nonsaturating(fake);
  CHECK(item(g) == doctest::Approx((sp0 + spm2) / 2));
  g.backward();
  // d softplus(-x)/dx = -sigmoid(-x); mean over 2
  const double s0 = 0.5, s2 = 1 / (1 + std::exp(2.0));
  GS_EXPECT_CLOSE(fake.grad(), vec({-s0 / 2, -s2 / 2}, {2, 1}), 1e-12, 0);

  Tensor real = vec({2, 0}, {2, 1});
  Tensor fr = vec({0, 0}, {2, 1}), fe = vec({2, 2}, {2, 1});
  // mean softplus(-real) + (mean softplus(fr) + mean softplus(fe)) / 2
  Tensor d = discriminator_logistic(real, {fr, fe});
  CHECK(item(d) == doctest::Approx((spm2 + sp0) / 2 + (sp0 + sp2) / 2));
  CHECK_THROWS_AS(discriminator_logistic(real, {}), ValueError);
}

TEST_CASE("train/losses: R1 penalty and its gradient w.r.t. D's parameters (double backward), closed form") {
  // D(x)_b = sum_i a_i x_{b,i}^2 + c  ->  grad_x = 2 a x,  R1 = mean_b sum_i 4 a_i^2 x_{b,i}^2,
  // dR1/da_i = mean_b 8 a_i x_{b,i}^2, dR1/dc = 0.
  Tensor a = vec({0.5, -1, 2, 0.25}, {1, 1, 2, 2}).requires_grad_();
  Tensor c = vec({3}, {1}).requires_grad_();
  Tensor x = vec({1, 2, -1, 0.5, -2, 1, 0, 3}, {2, 1, 2, 2});
  auto D = [&](const Tensor& in) { return add(sum(mul(a, square(in)), {1, 2, 3}, true).reshape({2, 1}), c); };
  R1Result r = r1_penalty(D, x);
  auto xv = x.to_vector<double>();
  auto av = a.to_vector<double>();
  double expect = 0;
  std::vector<double> da(4, 0.0);
  for (int b = 0; b < 2; ++b)
    for (int i = 0; i < 4; ++i) {
      const double xi = xv[b * 4 + i];
      expect += 4 * av[i] * av[i] * xi * xi / 2;
      da[i] += 8 * av[i] * xi * xi / 2;
    }
  CHECK(item(r.penalty) == doctest::Approx(expect));
  CHECK(r.logits.shape() == Shape{2, 1});
  auto g = autograd::grad({r.penalty}, {a, c}, {}, false, false, /*allow_unused=*/true);
  GS_EXPECT_CLOSE(g[0], vec(da, {1, 1, 2, 2}), 1e-12, 1e-12);
  CHECK((!g[1].defined() || item(abs(g[1])) == 0.0));
}

TEST_CASE("train/losses: image_lpips is the batch mean of LPIPS and detaches the target") {
  models::lpips::LPIPSConfig cfg;
  cfg.channels = {4, 6};
  cfg.convs = {1, 1};
  nn::manual_seed(3);  // independent of the tests that ran before
  models::lpips::LPIPS net(cfg);
  net.to(DType::f64);
  // LPIPS heads are non-negative (the lpips package clamps them), so the distance is >= 0.
  for (auto& [name, p] : net.named_parameters())
    if (name.rfind("lin", 0) == 0) p->set_data(p->abs());
  net.eval();
  net.requires_grad_(false);
  Generator gen(7);
  Tensor a = Tensor::randn({2, 3, 8, 8}, gen).to(DType::f64).requires_grad_();
  Tensor b = Tensor::randn({2, 3, 8, 8}, gen).to(DType::f64).requires_grad_();
  Tensor direct = net.forward(a.detach(), b.detach());
  Tensor l = image_lpips(net, a, b);
  auto dv = direct.to_vector<double>();
  CHECK(item(l) == doctest::Approx((dv[0] + dv[1]) / 2).epsilon(1e-12));
  CHECK(item(l) > 0.0);
  l.backward();
  CHECK(a.grad().defined());
  CHECK_FALSE(b.grad().defined());
}
