// bias_act / bias_act_grad: PyTorch fixtures, closed-form values, first- and second-order
// gradient checks (including the second derivative through bias_act_grad), NaN-poisoned kernel
// outputs, errors, CPU vs CUDA.
#include <cmath>

#include "backend/bias_act_kernels.hpp"
#include "conv_golden.hpp"
#include "gradstyle/ops/bias_act.hpp"
#include "support/harness.hpp"

using namespace gradstyle;

namespace {
BiasActOptions options_from(const nlohmann::json& p) {
  BiasActOptions o;
  o.act = p["act"] == "lrelu" ? Activation::LeakyReLU : Activation::Linear;
  if (p.contains("alpha")) o.alpha = p["alpha"].get<double>();
  if (p.contains("gain")) o.gain = p["gain"].get<double>();
  o.clamp = p["clamp"];
  o.dim = p["dim"];
  return o;
}
}  // namespace

TEST_CASE("ops/bias_act: matches PyTorch fixtures (float32 and float64)") {
  for (const auto& c : gstest::conv_golden::load("bias_act")) {
    for (DType dt : {DType::f32, DType::f64}) {
      INFO("fixture " << c.name << " as " << std::string(dtype_name(dt)));
      BiasActOptions o = options_from(c.params);
      Tensor x = c.at("x").to(dt).clone().requires_grad_();
      Tensor b = c.has("b") ? c.at("b").to(dt).clone().requires_grad_() : Tensor();
      Tensor y = bias_act(x, b, o);
      GS_EXPECT_CLOSE(y, c.at("y"), 1e-6, 1e-6);
      y.backward(c.at("gy").to(dt));
      GS_EXPECT_CLOSE(x.grad(), c.at("gx"), 1e-6, 1e-6);
      if (b.defined()) GS_EXPECT_CLOSE(b.grad(), c.at("gb"), 1e-5, 1e-5);
    }
  }
}

TEST_CASE("ops/bias_act: closed-form values") {
  Tensor x = Tensor::from_vector<double>({-2, -0.5, 0, 0.5, 3, 10}, {1, 2, 3});
  Tensor b = Tensor::from_vector<double>({0.5, -1}, {2});
  const double s2 = std::sqrt(2.0);
  // x + b = {-1.5, 0, 0.5 | -0.5, 2, 9}
  GS_EXPECT_CLOSE(bias_act(x, b), Tensor::from_vector<double>({-1.5, 0, 0.5, -0.5, 2, 9}, {1, 2, 3}), 0, 1e-15);
  GS_EXPECT_CLOSE(bias_act(x, b, {.act = Activation::LeakyReLU}),
                  Tensor::from_vector<double>({-0.3 * s2, 0, 0.5 * s2, -0.1 * s2, 2 * s2, 9 * s2}, {1, 2, 3}), 0, 1e-15);
  GS_EXPECT_CLOSE(bias_act(x, b, {.act = Activation::LeakyReLU, .alpha = 0.5, .gain = 2.0, .clamp = 3.0}),
                  Tensor::from_vector<double>({-1.5, 0, 1, -0.5, 3, 3}, {1, 2, 3}), 0, 1e-15);
  // dim 2: the bias runs along the last axis
  Tensor b3 = Tensor::from_vector<double>({1, 2, 3}, {3});
  GS_EXPECT_CLOSE(bias_act(x, b3, {.dim = 2}), add(x, reshape(b3, {1, 1, 3})), 0, 0);
  // gradient: gain * slope, zero where clamped; alpha at the kink
  Tensor xl = x.clone().requires_grad_();
  bias_act(xl, b, {.act = Activation::LeakyReLU, .alpha = 0.5, .gain = 2.0, .clamp = 3.0}).sum().backward();
  GS_EXPECT_CLOSE(xl.grad(), Tensor::from_vector<double>({1, 1, 2, 1, 0, 0}, {1, 2, 3}), 0, 0);
}

TEST_CASE("ops/bias_act: first- and second-order gradient checks (float64)") {
  // Values are kept away from the kink and the clamp (finite differences straddling them are
  // meaningless): |x + b| >= 0.1 and |y| far from clamp.
  Tensor base = Tensor::randn({2, 3, 4, 5}, 61, {DType::f64});
  Tensor x = add(base, mul_scalar(sign(base), 0.1));
  Tensor b = Tensor::zeros({3}, {DType::f64});
  for (BiasActOptions o : {BiasActOptions{}, BiasActOptions{.act = Activation::LeakyReLU},
                           BiasActOptions{.act = Activation::LeakyReLU, .alpha = 0.3, .gain = 1.7, .clamp = 2.0}}) {
    INFO("act " << int(o.act) << " clamp " << o.clamp);
    if (o.clamp >= 0) {
      // keep the unclamped output away from the clamp value too
      BiasActOptions unclamped = o;
      unclamped.clamp = -1;
      Tensor y = bias_act(x, b, unclamped);
      REQUIRE(amin(abs(sub(abs(y), scalar_like(o.clamp, y)))).item() > 1e-3);
      REQUIRE(amax(abs(y)).item() > o.clamp);  // the clamp is really exercised
    }
    gstest::Fn f = [o](const std::vector<Tensor>& v) { return bias_act(v[0], v[1], o); };
    gstest::gradcheck(f, {x, b});
    // y * y has a non-zero second derivative that runs through bias_act_grad twice.
    gstest::Fn f2 = [o](const std::vector<Tensor>& v) {
      Tensor y = bias_act(v[0], v[1], o);
      return mul(y, mul(y, v[0]));
    };
    gstest::gradgradcheck(f2, {x, b});
    // the gradient op on its own (linear in dy)
    Tensor yref = bias_act(x, b, o);
    gstest::Fn g = [o, yref](const std::vector<Tensor>& v) { return bias_act_grad(square(v[0]), yref, o); };
    gstest::gradcheck(g, {Tensor::randn(x.shape(), 62, {DType::f64})});
  }
}

TEST_CASE("ops/bias_act: double backward of an R1-style penalty matches finite differences") {
  // r(w) = sum(grad_x(sum(bias_act(x * w)^2 * v))^2): its gradient w.r.t. w needs the
  // derivative of bias_act_grad with respect to its upstream gradient.
  Tensor x = add_scalar(Tensor::rand({3, 4}, 71, {DType::f64}), 0.2);
  Tensor w0 = Tensor::randn({3, 4}, 72, {DType::f64});
  Tensor v = Tensor::randn({3, 4}, 73, {DType::f64});
  BiasActOptions o{.act = Activation::LeakyReLU, .dim = 1};
  gstest::Fn r = [x, v, o](const std::vector<Tensor>& p) {
    autograd::EnableGradGuard eg(true);
    Tensor xx = x.detach().requires_grad_();
    // squared, so that the upstream gradient of bias_act depends on w as well
    Tensor y = mul(square(bias_act(mul(xx, p[0]), Tensor(), o)), v).sum();
    Tensor gx = autograd::grad({y}, {xx}, {}, true, true)[0];
    return square(gx).sum();
  };
  gstest::gradcheck(r, {w0});
}

TEST_CASE("ops/bias_act: kernels overwrite every output element (NaN-poisoned outputs)") {
  for (DType dt : {DType::f32, DType::f64}) {
    Tensor x = Tensor::randn({3, 4, 5}, 81, {dt}), b = Tensor::randn({4}, 82, {dt}), dy = Tensor::randn({3, 4, 5}, 83, {dt});
    Tensor y = gstest::poison(Tensor::empty(x.shape(), {dt})), dx = gstest::poison(Tensor::empty(x.shape(), {dt}));
    cpu::bias_act(backend::BiasActKind::LRelu, backend::make_view(y), backend::make_view(x), backend::make_view(b), 4, 5,
                  0.2, std::sqrt(2.0), 1.0);
    cpu::bias_act_grad(backend::BiasActKind::LRelu, backend::make_view(dx), backend::make_view(dy),
                       backend::make_view(y), 0.2, std::sqrt(2.0), 1.0);
    Tensor s = add(x, reshape(b, {1, 4, 1}));
    Tensor ref = clamp(mul_scalar(leaky_relu(s, 0.2), std::sqrt(2.0)), -1.0, 1.0);
    GS_EXPECT_CLOSE(y, ref, 1e-6, 1e-6);
    Tensor slope = where(gt(s, scalar_like(0, s)), scalar_like(1, s), scalar_like(0.2, s));
    Tensor inside = lt(abs(ref), scalar_like(1.0, ref)).to(dt);
    GS_EXPECT_CLOSE(dx, mul(mul(mul_scalar(dy, std::sqrt(2.0)), slope), inside), 1e-6, 1e-6);
  }
}

TEST_CASE("ops/bias_act: bad arguments throw clear errors") {
  Tensor x = Tensor::randn({2, 3, 4}, 1);
  GS_CHECK_THROWS_WITH(bias_act(x, Tensor::randn({4}, 2)), ShapeError, "bias_act", "bias [4]", "[2,3,4]");
  GS_CHECK_THROWS_WITH(bias_act(x, Tensor::randn({3}, 2), {.dim = 3}), ShapeError, "bias_act", "dim 3 out of range");
  GS_CHECK_THROWS_WITH(bias_act(x, Tensor(), {.act = Activation::LeakyReLU, .alpha = -0.1}), ValueError, "alpha");
  GS_CHECK_THROWS_WITH(bias_act(x, Tensor::randn({3}, 2, {DType::f64})), DTypeError, "bias_act");
  GS_CHECK_THROWS_WITH(bias_act(x.to(DType::i64)), DTypeError, "bias_act");
  GS_CHECK_THROWS_WITH(bias_act_grad(x, Tensor::randn({2, 3}, 3)), ShapeError, "bias_act_grad", "differ");
}

TEST_CASE("ops/bias_act: CPU and CUDA agree") {
  Tensor x = Tensor::randn({2, 5, 7, 3}, 91), b = Tensor::randn({5}, 92);
  for (BiasActOptions o : {BiasActOptions{}, BiasActOptions{.act = Activation::LeakyReLU, .clamp = 1.0}}) {
    gstest::expect_cpu_cuda_match([o](const std::vector<Tensor>& v) { return bias_act(v[0], v[1], o); }, {x, b},
                                  {1e-6, 1e-6});
  }
}
