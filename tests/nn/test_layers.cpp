// nn layers: closed-form forwards (the runtime scales and lr multipliers of the equalised-LR
// layers), PyTorch key names, float64 gradient checks, and second order where R1 needs it.
#include <cmath>

#include "gradstyle/nn/layers.hpp"
#include "gradstyle/ops/bias_act.hpp"
#include "gradstyle/ops/conv.hpp"
#include "gradstyle/ops/reduce.hpp"
#include "gradstyle/ops/upfirdn2d.hpp"
#include "support/harness.hpp"

using namespace gradstyle;

namespace {
std::vector<std::string> keys(nn::Module& m) {
  std::vector<std::string> r;
  for (auto& [k, v] : m.state_dict()) r.push_back(k);
  return r;
}
Tensor lrelu_sqrt2(const Tensor& v) {
  return where(gt(v, scalar_like(0, v)), v, v * 0.2) * std::sqrt(2.0);
}
}  // namespace

TEST_CASE("nn/layers: Linear and Conv2d are torch.nn.Linear / Conv2d") {
  gradstyle::Generator gen(1);
  nn::Linear lin(5, 3, true, &gen);
  CHECK(keys(lin) == std::vector<std::string>{"bias", "weight"});
  CHECK(lin.weight.shape() == Shape{3, 5});
  // PyTorch's default init bound 1/sqrt(in).
  CHECK(amax(lin.weight.abs()).item() <= 1.0 / std::sqrt(5.0));
  CHECK(amax(lin.weight.abs()).item() > 0.2);
  Tensor x = Tensor::randn({4, 5}, 2);
  GS_EXPECT_CLOSE(lin.forward(x), matmul(x, lin.weight.transpose(0, 1)) + lin.bias, 1e-6, 1e-6);
  nn::Linear nob(5, 3, false, &gen);
  CHECK(keys(nob) == std::vector<std::string>{"weight"});

  nn::Conv2d conv(4, 6, 3, {.stride = 2, .padding = 1, .groups = 2}, &gen);
  CHECK(conv.weight.shape() == Shape{6, 2, 3, 3});
  CHECK(amax(conv.weight.abs()).item() <= 1.0 / std::sqrt(18.0));
  Tensor xi = Tensor::randn({1, 4, 7, 7}, 3);
  Tensor y = conv.forward(xi);
  CHECK(y.shape() == Shape{1, 6, 4, 4});
  GS_EXPECT_CLOSE(y, conv2d(xi, conv.weight, conv.bias, {.stride = {2, 2}, .padding = {1, 1}, .groups = 2}), 0, 0);
  CHECK(conv.num_parameters() == 6 * 2 * 9 + 6);
  GS_CHECK_THROWS_WITH(nn::Conv2d(3, 4, 3, {.groups = 2}), ValueError, "not divisible by groups 2");
}

TEST_CASE("nn/layers: EqualLinear uses weight * lr_mul / sqrt(in) and bias * lr_mul") {
  gradstyle::Generator gen(7);
  nn::EqualLinear plain(8, 4, {.bias_init = 0.5}, &gen);
  CHECK(plain.scale() == doctest::Approx(1.0 / std::sqrt(8.0)));
  GS_EXPECT_CLOSE(plain.bias, Tensor::full({4}, 0.5), 0, 0);
  Tensor x = Tensor::randn({3, 8}, 8);
  GS_EXPECT_CLOSE(plain.forward(x), matmul(x, plain.weight.transpose(0, 1)) / std::sqrt(8.0) + 0.5, 1e-6, 1e-5);

  // The mapping network's layer: lr_mul 0.01, stored randn / 0.01, fused leaky ReLU.
  gradstyle::Generator g2(9);
  nn::EqualLinear map(8, 8, {.lr_mul = 0.01, .activation = nn::EqualActivation::FusedLeakyReLU}, &g2);
  Tensor stored_std = map.weight.pow(2.0).mean().sqrt();
  CHECK(stored_std.item() == doctest::Approx(100.0).epsilon(0.3));  // randn / lr_mul
  {
    autograd::NoGradGuard ng;
    map.bias = Tensor::randn({8}, 10).requires_grad_(true);
  }
  Tensor expect = lrelu_sqrt2(matmul(x, map.weight.transpose(0, 1)) * (0.01 / std::sqrt(8.0)) + map.bias * 0.01);
  GS_EXPECT_CLOSE(map.forward(x), expect, 1e-5, 1e-5);
  // Works on [..., in] inputs (W+ rows).
  CHECK(map.forward(Tensor::randn({2, 5, 8}, 11)).shape() == Shape{2, 5, 8});
  GS_CHECK_THROWS_WITH(map.forward(Tensor::zeros({2, 7})), ShapeError, "EqualLinear", "[2,7]", "8 features");

  // float64 gradients w.r.t. input, weight and bias.
  map.to(DType::f64);
  gstest::gradcheck(
      [&](const std::vector<Tensor>& v) {
        map.weight = v[1];
        map.bias = v[2];
        return map.forward(v[0]);
      },
      {Tensor::randn({3, 8}, 12, {.dtype = DType::f64}), map.weight.detach(), map.bias.detach()}, 1e-6, 1e-6, 1e-4);
}

TEST_CASE("nn/layers: EqualConv2d, FusedLeakyReLU, Blur and Upsample") {
  gradstyle::Generator gen(4);
  nn::EqualConv2d c(3, 5, 3, 1, 1, true, &gen);
  CHECK(c.scale() == doctest::Approx(1.0 / std::sqrt(27.0)));
  CHECK(keys(c) == std::vector<std::string>{"bias", "weight"});
  Tensor x = Tensor::randn({2, 3, 6, 6}, 5);
  GS_EXPECT_CLOSE(c.forward(x), conv2d(x, c.weight / std::sqrt(27.0), c.bias, {.padding = {1, 1}}), 1e-6, 1e-5);
  nn::EqualConv2d nob(3, 5, 1, 2, 0, false, &gen);
  CHECK(keys(nob) == std::vector<std::string>{"weight"});
  CHECK(nob.forward(x).shape() == Shape{2, 5, 3, 3});

  nn::FusedLeakyReLU act(3);
  {
    autograd::NoGradGuard ng;
    act.bias = Tensor::from_vector<float>({0.5f, -1.f, 0.f}, {3}).requires_grad_(true);
  }
  GS_EXPECT_CLOSE(act.forward(x), lrelu_sqrt2(x + act.bias.reshape({1, 3, 1, 1})), 1e-6, 1e-6);

  Tensor k = nn::make_blur_kernel({1, 3, 3, 1});
  CHECK(k.shape() == Shape{4, 4});
  CHECK(k.to_vector<float>()[0] == doctest::Approx(1.0 / 64));
  CHECK(k.to_vector<float>()[5] == doctest::Approx(9.0 / 64));
  nn::Blur blur({1, 3, 3, 1}, {1, 1}, 2);
  CHECK(blur.kernel.sum().item() == doctest::Approx(4.0));
  CHECK(keys(blur) == std::vector<std::string>{"kernel"});
  Tensor t = Tensor::randn({1, 2, 9, 9}, 6);
  CHECK(blur.forward(t).shape() == Shape{1, 2, 8, 8});
  GS_EXPECT_CLOSE(blur.forward(t), upfirdn2d(t, k * 4.0, 1, 1, {1, 1, 1, 1}), 0, 0);
  nn::Upsample up({1, 3, 3, 1});
  Tensor s = Tensor::randn({1, 3, 4, 4}, 7);
  CHECK(up.forward(s).shape() == Shape{1, 3, 8, 8});
  // rosinality's Upsample pads (2, 1) for a 4-tap kernel and factor 2.
  GS_EXPECT_CLOSE(up.forward(s), upfirdn2d(s, k * 4.0, 2, 1, {2, 1, 2, 1}), 0, 0);
  // A constant image stays constant in the interior after the 2x upsampling (kernel sums to 4).
  Tensor ones = up.forward(Tensor::ones({1, 1, 4, 4}));
  CHECK(amin(ones.narrow(2, 2, 4).narrow(3, 2, 4)).item() == doctest::Approx(1.0));
  CHECK(amax(ones.narrow(2, 2, 4).narrow(3, 2, 4)).item() == doctest::Approx(1.0));
}

TEST_CASE("nn/layers: ConvLayer / ResBlock keys follow rosinality's nn.Sequential layout") {
  gradstyle::Generator gen(2);
  nn::ConvLayer plain(3, 4, 1, false, {1, 3, 3, 1}, true, true, &gen);
  CHECK(keys(plain) == std::vector<std::string>{"0.weight", "1.bias"});
  nn::ConvLayer down(3, 4, 3, true, {1, 3, 3, 1}, true, true, &gen);
  CHECK(keys(down) == std::vector<std::string>{"0.kernel", "1.weight", "2.bias"});
  nn::ConvLayer skip(3, 4, 1, true, {1, 3, 3, 1}, false, false, &gen);
  CHECK(keys(skip) == std::vector<std::string>{"0.kernel", "1.weight"});
  nn::ConvLayer lin(3, 4, 3, false, {1, 3, 3, 1}, true, false, &gen);
  CHECK(keys(lin) == std::vector<std::string>{"0.bias", "0.weight"});
  Tensor x = Tensor::randn({2, 3, 8, 8}, 3);
  CHECK(down.forward(x).shape() == Shape{2, 4, 4, 4});
  CHECK(skip.forward(x).shape() == Shape{2, 4, 4, 4});
  // Downsampling = Blur with pad (2, 2) for 3x3 (p = 2 + 2), then a stride-2 conv without padding.
  Tensor kb = nn::make_blur_kernel({1, 3, 3, 1});
  Tensor ref = bias_act(conv2d(upfirdn2d(x, kb, 1, 1, {2, 2, 2, 2}), down.conv().weight / 3.0 / std::sqrt(3.0),
                               Tensor(), {.stride = {2, 2}}),
                        *down.named_parameters().back().second, {.act = Activation::LeakyReLU});
  GS_EXPECT_CLOSE(down.forward(x), ref, 1e-5, 1e-5);

  nn::ResBlock rb(3, 5, {1, 3, 3, 1}, &gen);
  auto k = keys(rb);
  CHECK(k == std::vector<std::string>{"conv1.0.weight", "conv1.1.bias", "conv2.0.kernel", "conv2.1.weight",
                                      "conv2.2.bias", "skip.0.kernel", "skip.1.weight"});
  Tensor y = rb.forward(x);
  CHECK(y.shape() == Shape{2, 5, 4, 4});
  GS_EXPECT_CLOSE(y, (rb.conv2.forward(rb.conv1.forward(x)) + rb.skip.forward(x)) / std::sqrt(2.0), 0, 0);
}

TEST_CASE("nn/layers: ResBlock gradients to second order in float64 (the R1 path)") {
  gradstyle::Generator gen(21);
  nn::ResBlock rb(2, 3, {1, 3, 3, 1}, &gen);
  {
    autograd::NoGradGuard ng;  // non-zero biases so no pre-activation sits at an lrelu kink by symmetry
    for (auto& [n, t] : rb.named_parameters())
      if (n.find("bias") != std::string::npos) *t = (Tensor::randn(t->shape(), 22) * 0.3).requires_grad_(true);
  }
  rb.to(DType::f64);
  Tensor x = Tensor::randn({1, 2, 6, 6}, 23, {.dtype = DType::f64});
  gstest::gradcheck([&](const std::vector<Tensor>& v) { return rb.forward(v[0]); }, {x});
  gstest::gradgradcheck([&](const std::vector<Tensor>& v) { return rb.forward(v[0]); }, {x});
}

TEST_CASE("nn/layers: ModuleList names children 0, 1, ... or from a first index") {
  nn::ModuleList<nn::FusedLeakyReLU> list;
  list.emplace_back(2);
  list.emplace_back(3);
  CHECK(keys(list) == std::vector<std::string>{"0.bias", "1.bias"});
  CHECK(list.size() == 2);
  CHECK(list[1].bias.shape() == Shape{3});
  nn::ModuleList<nn::FusedLeakyReLU> from1(1);
  from1.emplace_back(2);
  CHECK(keys(from1) == std::vector<std::string>{"1.bias"});
  CHECK(from1.num_parameters() == 2);
  from1.requires_grad_(false);
  CHECK(from1.num_parameters(true) == 0);
}

TEST_CASE("nn/layers: initialisation is reproducible from nn::manual_seed") {
  nn::manual_seed(5);
  nn::EqualLinear a(4, 4);
  nn::manual_seed(5);
  nn::EqualLinear b(4, 4);
  GS_EXPECT_CLOSE(a.weight, b.weight, 0, 0);
  nn::EqualLinear c(4, 4);
  CHECK(amax((c.weight - b.weight).abs()).item() > 0.1);
}

TEST_CASE("nn/layers: LayerNorm is torch.nn.LayerNorm over the last dim") {
  nn::LayerNorm ln(4);
  CHECK(keys(ln) == std::vector<std::string>{"bias", "weight"});
  CHECK(ln.weight.to_vector<float>() == std::vector<float>{1, 1, 1, 1});
  CHECK(ln.bias.to_vector<float>() == std::vector<float>{0, 0, 0, 0});
  {
    autograd::NoGradGuard ng;
    ln.weight.copy_(Tensor::from_vector<float>({1, 2, 3, 4}, {4}));
    ln.bias.copy_(Tensor::from_vector<float>({0.5f, 0, 0, -1}, {4}));
  }
  // Row [1, 2, 3, 6]: mean 3, biased variance (4 + 1 + 0 + 9) / 4 = 3.5.
  Tensor x = Tensor::from_vector<float>({1, 2, 3, 6, 0, 0, 0, 0}, {2, 1, 4});
  auto y = ln.forward(x).to_vector<double>();
  const double s = 1.0 / std::sqrt(3.5 + 1e-5);
  CHECK(y[0] == doctest::Approx(-2 * s * 1 + 0.5).epsilon(1e-6));
  CHECK(y[1] == doctest::Approx(-1 * s * 2).epsilon(1e-6));
  CHECK(y[2] == doctest::Approx(0.0).epsilon(1e-6));
  CHECK(y[3] == doctest::Approx(3 * s * 4 - 1).epsilon(1e-6));
  // A constant row normalises to the bias.
  CHECK(y[4] == doctest::Approx(0.5));
  CHECK(y[7] == doctest::Approx(-1.0));
  CHECK_THROWS_AS(nn::LayerNorm(0), ValueError);
}
