// GRM, ResLayer and Gate&Fusion (SPEC B.3, B.4): the agreed key layout, forwards against the ops
// composed by hand, float64 gradient checks in inputs and parameters, the gate's initial value and
// its detached-parameter mode.
#include <algorithm>
#include <cmath>

#include "gradstyle/models/grm.hpp"
#include "gradstyle/ops/conv.hpp"
#include "gradstyle/ops/interpolate.hpp"
#include "gradstyle/ops/norm.hpp"
#include "models/gradstyle_fixture.hpp"

using namespace gstest_gs;

namespace {

Tensor conv(const nn::Conv2d& c, const Tensor& x, int64_t stride, int64_t pad) {
  Conv2dOptions o;
  o.stride = {stride, stride};
  o.padding = {pad, pad};
  return conv2d(x, c.weight, c.bias, o);
}

Tensor res_ref(const gs::ResLayer& r, const Tensor& x) {
  Tensor h = conv(r.conv2, leaky_relu(conv(r.conv1, x, 1, 1), 0.2), r.stride(), 1);
  return h + (r.shortcut ? conv(*r.shortcut, x, r.stride(), 0) : x);
}

void randomize(nn::Module& m, uint64_t seed, double scale = 0.5) {
  autograd::NoGradGuard ng;
  uint64_t s = seed;
  for (auto& [n, t] : m.named_parameters()) *t = (Tensor::randn(t->shape(), s++, {t->dtype()}) * scale).requires_grad_();
}

}  // namespace

TEST_CASE("models/grm: ResLayer keys, identity or 1x1 no-bias shortcut, forward = conv2(lrelu(conv1)) + shortcut") {
  gs::ResLayer same(4, 4, 1);
  CHECK(keys(same) == std::vector<std::string>{"conv1.bias", "conv1.weight", "conv2.bias", "conv2.weight"});
  gs::ResLayer down(4, 6, 2);
  CHECK(keys(down) ==
        std::vector<std::string>{"conv1.bias", "conv1.weight", "conv2.bias", "conv2.weight", "shortcut.weight"});
  CHECK(down.conv1.weight.shape() == Shape{6, 4, 3, 3});
  CHECK(down.conv2.weight.shape() == Shape{6, 6, 3, 3});
  CHECK(down.shortcut->weight.shape() == Shape{6, 4, 1, 1});
  // PyTorch's default bound 1/sqrt(fan_in) for weights and biases.
  const double bound = 1.0 / std::sqrt(4.0 * 9.0);
  CHECK(amax(down.conv1.weight.abs()).item() <= bound);
  CHECK(amax(down.conv1.bias.abs()).item() <= bound);
  CHECK(amax(down.conv1.weight.abs()).item() > 0.8 * bound);
  Tensor x = Tensor::randn({2, 4, 6, 6}, 7);
  Tensor y = down.forward(x);
  CHECK(y.shape() == Shape{2, 6, 3, 3});
  GS_EXPECT_CLOSE(y, res_ref(down, x), 1e-6, 1e-6);
  GS_EXPECT_CLOSE(same.forward(x), res_ref(same, x), 1e-6, 1e-6);
  CHECK_THROWS_AS(gs::ResLayer(4, 4, 3), ValueError);
}

TEST_CASE("models/grm: GRM keys follow the agreed layout for eres_levels 0, 1 and 2") {
  gs::GradStyleConfig cfg;
  cfg.t_channels = 5;
  cfg.eres_levels = 1;
  gs::GRM g1(4, cfg);
  std::vector<std::string> expect{"dec.conv1.bias",        "dec.conv1.weight",
                                  "dec.conv2.bias",        "dec.conv2.weight",
                                  "down.0.0.conv1.bias",   "down.0.0.conv1.weight",
                                  "down.0.0.conv2.bias",   "down.0.0.conv2.weight",
                                  "down.0.0.shortcut.weight",
                                  "down.0.1.conv1.bias",   "down.0.1.conv1.weight",
                                  "down.0.1.conv2.bias",   "down.0.1.conv2.weight",
                                  "enc.conv1.bias",        "enc.conv1.weight",
                                  "enc.conv2.bias",        "enc.conv2.weight",
                                  "out.bias",              "out.weight",
                                  "stem_bn.bias",          "stem_bn.num_batches_tracked",
                                  "stem_bn.running_mean",  "stem_bn.running_var",
                                  "stem_bn.weight",        "stem_conv.bias",
                                  "stem_conv.weight",      "stem_prelu.weight",
                                  "w_f.bias",              "w_f.weight",
                                  "w_t.bias",              "w_t.weight"};
  CHECK(keys(g1) == expect);
  CHECK(g1.w_t.weight.shape() == Shape{4, 5, 1, 1});
  CHECK(g1.w_f.weight.shape() == Shape{4, 4, 1, 1});
  CHECK(g1.stem_conv.weight.shape() == Shape{4, 8, 3, 3});
  CHECK(g1.stem_prelu.weight.to_vector<float>() == std::vector<float>(4, 0.25f));
  CHECK(g1.stem_bn.weight.to_vector<float>() == std::vector<float>(4, 1.0f));
  CHECK(g1.stem_bn.bias.to_vector<float>() == std::vector<float>(4, 0.0f));

  cfg.eres_levels = 2;
  cfg.grm_proj_kernel = 3;
  cfg.eres_input = gs::EresInput::Diff;
  gs::GRM g2(4, cfg);
  auto k2 = keys(g2);
  CHECK(std::count(k2.begin(), k2.end(), "up.0.conv1.weight") == 1);
  CHECK(std::count(k2.begin(), k2.end(), "down.1.0.shortcut.weight") == 1);
  CHECK(std::count(k2.begin(), k2.end(), "up.1.conv1.weight") == 0);
  CHECK(g2.w_t.weight.shape() == Shape{4, 5, 3, 3});
  CHECK(g2.stem_conv.weight.shape() == Shape{4, 4, 3, 3});  // diff: C -> C

  cfg.eres_levels = 0;
  gs::GRM g0(4, cfg);
  for (const auto& k : keys(g0)) CHECK_MESSAGE(k.rfind("down", 0) != 0, k);
  CHECK(g0.down.empty());
  CHECK(g0.up.empty());

  cfg.grm_proj_kernel = 2;
  GS_CHECK_THROWS_WITH(gs::GRM(4, cfg), ValueError, "grm_proj_kernel");
}

TEST_CASE("models/grm: GRM forward equals SPEC B.3's table composed from the ops (levels 1 and 2, concat and diff)") {
  for (int64_t levels : {1, 2}) {
    for (auto mode : {gs::EresInput::Concat, gs::EresInput::Diff}) {
      for (bool ac : {true, false}) {
        CAPTURE(levels);
        CAPTURE(int(mode));
        CAPTURE(ac);
        gs::GradStyleConfig cfg;
        cfg.t_channels = 3;
        cfg.eres_levels = levels;
        cfg.eres_input = mode;
        cfg.eres_interp_align_corners = ac;
        cfg.grm_proj_kernel = 3;
        gs::GRM grm(4, cfg);
        randomize(grm, 100);
        grm.eval();  // running statistics: make them non-trivial
        {
          autograd::NoGradGuard ng;
          grm.stem_bn.running_mean.copy_(Tensor::from_vector<float>({0.1f, -0.2f, 0.3f, 0.0f}, {4}));
          grm.stem_bn.running_var.copy_(Tensor::from_vector<float>({1.5f, 0.5f, 2.0f, 1.0f}, {4}));
        }
        Tensor T = Tensor::randn({2, 3, 8, 8}, 1), f = Tensor::randn({2, 4, 8, 8}, 2);
        Tensor F = grm.forward(T, f);
        CHECK(F.shape() == Shape{2, 4, 8, 8});

        Tensor pt = conv(grm.w_t, T, 1, 1), pf = conv(grm.w_f, f, 1, 1);
        Tensor x0 = mode == gs::EresInput::Concat ? cat({pt, pf}, 1) : pt - pf;
        Tensor h = batch_norm(prelu(conv(grm.stem_conv, x0, 1, 1), grm.stem_prelu.weight), grm.stem_bn.running_mean,
                              grm.stem_bn.running_var, grm.stem_bn.weight, grm.stem_bn.bias, false);
        Tensor e0 = res_ref(grm.enc, h);
        Tensor e1 = res_ref(grm.down[0][1], res_ref(grm.down[0][0], e0));  // 4x4
        Tensor u;
        if (levels == 1) {
          u = interpolate(e1, {8, 8}, InterpolateMode::Bilinear, ac) + e0;
        } else {
          Tensor e2 = res_ref(grm.down[1][1], res_ref(grm.down[1][0], e1));  // 2x2
          Tensor u1 = res_ref(grm.up[0], interpolate(e2, {4, 4}, InterpolateMode::Bilinear, ac) + e1);
          u = interpolate(u1, {8, 8}, InterpolateMode::Bilinear, ac) + e0;
        }
        Tensor ref = conv(grm.out, res_ref(grm.dec, u), 1, 0);
        GS_EXPECT_CLOSE(F, ref, 1e-5, 1e-5);
      }
    }
  }
}

TEST_CASE("models/grm: GRM training mode uses batch statistics and updates the running ones") {
  gs::GradStyleConfig cfg;
  cfg.t_channels = 3;
  gs::GRM grm(4, cfg);
  Tensor T = Tensor::randn({2, 3, 4, 4}, 3), f = Tensor::randn({2, 4, 4, 4}, 4);
  Tensor a = grm.forward(T, f);
  CHECK(grm.stem_bn.num_batches_tracked.item() == 1);
  CHECK(grm.stem_bn.running_mean.abs().sum().item() > 0);
  grm.eval();
  Tensor b = grm.forward(T, f);
  CHECK(grm.stem_bn.num_batches_tracked.item() == 1);
  CHECK((a - b).abs().sum().item() > 1e-4);
  GS_CHECK_THROWS_WITH(grm.forward(Tensor::randn({2, 3, 4, 4}, 1), Tensor::randn({2, 4, 8, 8}, 1)), ShapeError,
                       "GRM", "select_t");
  GS_CHECK_THROWS_WITH(grm.forward(Tensor::randn({2, 5, 4, 4}, 1), f), ShapeError, "encoder feature T", "[B, 3, R, R]");
}

TEST_CASE("models/grm: GRM float64 gradient check in T, f and every parameter (training-mode BatchNorm)") {
  gs::GradStyleConfig cfg;
  cfg.t_channels = 2;
  cfg.eres_levels = 1;
  gs::GRM grm(2, cfg);
  grm.to(DType::f64);
  randomize(grm, 300);
  Tensor T = Tensor::randn({2, 2, 4, 4}, 5, {DType::f64}), f = Tensor::randn({2, 2, 4, 4}, 6, {DType::f64});
  gradcheck_module(grm, {T, f}, [&](const std::vector<Tensor>& xs) { return grm.forward(xs[0], xs[1]); }, 1e-6, 1e-4);
}

TEST_CASE("models/grm: Gate&Fusion starts at g = sigmoid(-4), so f~ = f + 0.018 F") {
  gs::GateFusion gate(4, 4, -4.0);
  CHECK(keys(gate) == std::vector<std::string>{"out.bias", "out.weight", "r1.conv1.bias", "r1.conv1.weight",
                                               "r1.conv2.bias", "r1.conv2.weight", "r1.shortcut.weight",
                                               "r2.conv1.bias", "r2.conv1.weight", "r2.conv2.bias", "r2.conv2.weight"});
  CHECK(gate.r1.conv1.weight.shape() == Shape{4, 8, 3, 3});
  CHECK(gate.r1.shortcut->weight.shape() == Shape{4, 8, 1, 1});
  CHECK(gate.out.weight.abs().sum().item() == 0.0);
  CHECK(gate.out.bias.to_vector<float>() == std::vector<float>(4, -4.0f));
  Tensor f = Tensor::randn({2, 4, 5, 5}, 8), F = Tensor::randn({2, 4, 5, 5}, 9);
  Tensor g = gate.gate(f, F);
  CHECK(g.shape() == Shape{2, 4, 5, 5});
  const double s = 1.0 / (1.0 + std::exp(4.0));  // 0.01799
  CHECK(s == doctest::Approx(0.018).epsilon(0.001));
  for (double v : g.to_vector<double>()) CHECK(v == doctest::Approx(s).epsilon(1e-6));
  GS_EXPECT_CLOSE(gs::GateFusion::fuse(f, F, g), f + F * s, 1e-6, 1e-6);

  // A spatial gate (Cg = 1) broadcasts over the channels.
  gs::GateFusion spatial(4, 1, -4.0);
  Tensor g1 = spatial.gate(f, F);
  CHECK(g1.shape() == Shape{2, 1, 5, 5});
  CHECK(gs::GateFusion::fuse(f, F, g1).shape() == Shape{2, 4, 5, 5});
  GS_CHECK_THROWS_WITH(gate.gate(f, Tensor::randn({2, 4, 4, 4}, 1)), ShapeError, "GateFusion");
}

TEST_CASE("models/grm: Gate&Fusion float64 gradient check; detached parameters pass input gradients only") {
  gs::GateFusion gate(2, 2, -4.0);
  gate.to(DType::f64);
  randomize(gate, 500);  // a non-zero last conv, so every parameter has a gradient
  Tensor f = Tensor::randn({1, 2, 3, 3}, 10, {DType::f64}), F = Tensor::randn({1, 2, 3, 3}, 11, {DType::f64});
  gradcheck_module(gate, {f, F}, [&](const std::vector<Tensor>& xs) {
    return gs::GateFusion::fuse(xs[0], xs[1], gate.gate(xs[0], xs[1]));
  });

  // Detached parameters: the same values and the same input gradients, no parameter gradient.
  gate.zero_grad();
  Tensor fa = f.clone().requires_grad_(), Fa = F.clone().requires_grad_();
  Tensor fb = f.clone().requires_grad_(), Fb = F.clone().requires_grad_();
  Tensor ya = gs::GateFusion::fuse(fa, Fa, gate.gate(fa, Fa, false));
  Tensor yb = gs::GateFusion::fuse(fb, Fb, gate.gate(fb, Fb, true));
  CHECK(bit_equal(ya, yb));
  ya.sum().backward();
  CHECK(gate.out.weight.grad().defined());
  gate.zero_grad();
  yb.sum().backward();
  for (auto& [n, t] : gate.named_parameters()) CHECK_MESSAGE(!t->grad().defined(), n);
  GS_EXPECT_CLOSE(fb.grad(), fa.grad(), 1e-12, 1e-12);
  GS_EXPECT_CLOSE(Fb.grad(), Fa.grad(), 1e-12, 1e-12);
}
