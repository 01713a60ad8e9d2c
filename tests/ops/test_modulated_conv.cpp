// modulated_conv2d: rosinality fixtures (3x3 + noise + lrelu, up-conv + blur + clamp, 1x1 ToRGB,
// down-conv) for the non-grouped path and the grouped reference, float64 gradient checks (first and
// second order), the fused epilogue against separate ops, poisoned kernel outputs, errors, and
// CPU vs CUDA (skipped visibly without a GPU).
#include <cmath>

#include "backend/modulated_conv_kernels.hpp"
#include "gradstyle/ops/modulated_conv.hpp"
#include "ops/kernel_fixture.hpp"
#include "support/harness.hpp"

using namespace gradstyle;

namespace {

ModulatedConv2dOptions options_of(const gstest::KernelFixture& fx, DType dt) {
  ModulatedConv2dOptions o;
  o.demodulate = fx.params["demodulate"];
  o.up = fx.params["up"];
  o.down = fx.params["down"];
  o.act = fx.params["act"].get<bool>() ? Activation::LeakyReLU : Activation::Linear;
  o.clamp = fx.params["clamp"];
  o.bias = fx.get("bias", dt);
  if (fx.tensors.count("noise")) {
    o.noise = fx.get("noise", dt);
    o.noise_weight = fx.get("noise_weight", dt);
  }
  return o;
}

}  // namespace

TEST_CASE("ops/modulated_conv: matches rosinality's grouped modulated conv (fixtures, with gradients)") {
  for (const char* name : {"modconv_3x3", "modconv_up", "modconv_torgb", "modconv_down"}) {
    auto fx = gstest::load_kernel_fixture(name);
    for (DType dt : {DType::f64, DType::f32}) {
      for (int grouped = 0; grouped < 2; ++grouped) {
        CAPTURE(name);
        CAPTURE(dtype_name(dt));
        CAPTURE(grouped);
        const double atol = dt == DType::f64 ? 1e-11 : 2e-5, rtol = dt == DType::f64 ? 1e-9 : 2e-4;
        ModulatedConv2dOptions o = options_of(fx, dt);
        Tensor x = fx.get("x", dt).requires_grad_(), w = fx.get("weight", dt).requires_grad_();
        Tensor s = fx.get("styles", dt).requires_grad_();
        o.bias.requires_grad_();
        if (o.noise_weight.defined()) o.noise_weight.requires_grad_();
        Tensor y = grouped ? modulated_conv2d_grouped(x, w, s, o) : modulated_conv2d(x, w, s, o);
        GS_EXPECT_CLOSE(y, fx.get("y", dt), atol, rtol);
        (y * fx.get("gy", dt)).sum().backward();
        GS_EXPECT_CLOSE(x.grad(), fx.get("grad_x", dt), atol, rtol);
        GS_EXPECT_CLOSE(w.grad(), fx.get("grad_weight", dt), atol, rtol);
        GS_EXPECT_CLOSE(s.grad(), fx.get("grad_styles", dt), atol, rtol);
        GS_EXPECT_CLOSE(o.bias.grad(), fx.get("grad_bias", dt), atol, rtol);
        if (o.noise_weight.defined()) GS_EXPECT_CLOSE(o.noise_weight.grad(), fx.get("grad_noise_weight", dt), atol, rtol);
      }
    }
  }
}

TEST_CASE("ops/modulated_conv: float64 gradcheck and gradgradcheck in every argument") {
  Tensor x = Tensor::randn({2, 3, 4, 4}, 1, {DType::f64}), w = Tensor::randn({2, 3, 3, 3}, 2, {DType::f64});
  Tensor s = add_scalar(Tensor::randn({2, 3}, 3, {DType::f64}) * 0.3, 1.0), b = Tensor::randn({2}, 4, {DType::f64});
  Tensor nz = Tensor::randn({2, 1, 4, 4}, 5, {DType::f64}), nw = Tensor::full({1}, 0.4, {DType::f64});
  gstest::Fn f = [](const std::vector<Tensor>& a) {
    ModulatedConv2dOptions o;
    o.noise = a[4], o.noise_weight = a[5], o.bias = a[3], o.act = Activation::LeakyReLU;
    return modulated_conv2d(a[0], a[1], a[2], o);
  };
  gstest::gradcheck(f, {x, w, s, b, nz, nw});
  gstest::Fn fup = [](const std::vector<Tensor>& a) {
    ModulatedConv2dOptions o;
    o.up = 2, o.bias = a[3], o.act = Activation::LeakyReLU, o.clamp = 0.6;
    return modulated_conv2d(a[0], a[1], a[2], o);
  };
  gstest::gradcheck(fup, {x, w, s, b});
  Tensor x2 = Tensor::randn({1, 2, 3, 3}, 6, {DType::f64}), w2 = Tensor::randn({2, 2, 3, 3}, 7, {DType::f64});
  Tensor s2 = add_scalar(Tensor::randn({1, 2}, 8, {DType::f64}) * 0.3, 1.0);
  gstest::Fn f2 = [](const std::vector<Tensor>& a) {
    ModulatedConv2dOptions o;
    o.act = Activation::LeakyReLU;
    return modulated_conv2d(a[0], a[1], a[2], o);
  };
  gstest::gradgradcheck(f2, {x2, w2, s2});
}

TEST_CASE("ops/modulated_conv: the fused epilogue equals the separate ops, in both directions") {
  const int64_t B = 2, O = 3, H = 5, W = 6;
  Tensor y = Tensor::randn({B, O, H, W}, 11, {DType::f64}), d = add_scalar(Tensor::rand({B, O}, 12, {DType::f64}), 0.5);
  Tensor nz = Tensor::randn({1, 1, H, W}, 13, {DType::f64}), nw = Tensor::full({1}, -0.3, {DType::f64});
  Tensor b = Tensor::randn({O}, 14, {DType::f64}), g = Tensor::randn({B, O, H, W}, 15, {DType::f64});
  for (double clamp : {-1.0, 0.8}) {
    for (Activation act : {Activation::LeakyReLU, Activation::Linear}) {
      BiasActOptions ao;
      ao.act = act;
      ao.clamp = clamp;
      auto run = [&](bool fused) {
        std::vector<Tensor> leaves{y.clone().requires_grad_(), d.clone().requires_grad_(), nz.clone().requires_grad_(),
                                   nw.clone().requires_grad_(), b.clone().requires_grad_()};
        Tensor out = fused ? modulated_conv2d_epilogue(leaves[0], leaves[1], leaves[2], leaves[3], leaves[4], ao)
                           : bias_act(add(mul(leaves[0], reshape(leaves[1], {B, O, 1, 1})), mul(leaves[3], leaves[2])),
                                      leaves[4], ao);
        (out * g).sum().backward();
        std::vector<Tensor> r{out.detach()};
        for (auto& l : leaves) r.push_back(l.grad());
        return r;
      };
      auto a = run(true), c = run(false);
      for (size_t i = 0; i < a.size(); ++i) {
        CAPTURE(i);
        GS_EXPECT_CLOSE(a[i], c[i], 1e-13, 1e-12);
      }
    }
  }
  // closed form: y = -2, d = 0.5, no noise, bias 0.25 -> pre = -0.75 -> lrelu -0.15 -> * sqrt 2
  BiasActOptions lr;
  lr.act = Activation::LeakyReLU;
  Tensor one = modulated_conv2d_epilogue(Tensor::full({1, 1, 1, 1}, -2.0, {DType::f64}),
                                         Tensor::full({1, 1}, 0.5, {DType::f64}), Tensor(), Tensor(),
                                         Tensor::full({1}, 0.25, {DType::f64}), lr);
  CHECK(one.item() == doctest::Approx(-0.15 * std::sqrt(2.0)).epsilon(1e-15));
}

TEST_CASE("ops/modulated_conv: epilogue kernels overwrite NaN-poisoned outputs") {
  gstest::for_each_device([](Device dev) {
    CAPTURE(dev.str());
    for (DType dt : {DType::f32, DType::f64}) {
      const int64_t B = 2, O = 3, HW = 4 * 8;
      Tensor y = Tensor::randn({B, O, 4, 8}, 21, {dt, dev}), d = Tensor::rand({B, O}, 22, {dt, dev});
      Tensor nz = Tensor::randn({B, 1, 4, 8}, 23, {dt, dev}), nw = Tensor::full({1}, 0.5, {dt, dev});
      Tensor bias = Tensor::randn({O}, 24, {dt, dev}), g = Tensor::randn({B, O, 4, 8}, 25, {dt, dev});
      backend::ModconvEpilogue e;
      e.batch = B, e.channels = O, e.hw = HW, e.noise_batch_stride = HW, e.lrelu = true, e.gain = std::sqrt(2.0);
      using backend::make_view;
      Tensor out = gstest::poison(Tensor::empty(y.shape(), {dt, dev}));
      GS_DISPATCH(dev, modconv_epilogue_forward, e, make_view(out), make_view(y), make_view(d), make_view(nz),
                  make_view(nw), make_view(bias));
      BiasActOptions ao;
      ao.act = Activation::LeakyReLU;
      Tensor ref = bias_act(add(mul(y, reshape(d, {B, O, 1, 1})), mul(nw, nz)), bias, ao);
      GS_EXPECT_CLOSE(out.cpu(), ref.cpu(), 1e-6, 1e-5);
      Tensor dy = gstest::poison(Tensor::empty(y.shape(), {dt, dev}));
      Tensor dpre = gstest::poison(Tensor::empty(y.shape(), {dt, dev}));
      GS_DISPATCH(dev, modconv_epilogue_backward, e, make_view(dy), make_view(dpre), make_view(g), make_view(out),
                  make_view(d));
      Tensor dpre_ref = bias_act_grad(g, out, ao);
      GS_EXPECT_CLOSE(dpre.cpu(), dpre_ref.cpu(), 1e-6, 1e-5);
      GS_EXPECT_CLOSE(dy.cpu(), mul(dpre_ref, reshape(d, {B, O, 1, 1})).cpu(), 1e-6, 1e-5);
    }
  });
}

TEST_CASE("ops/modulated_conv: ToRGB (1x1, no demodulation) is a per-sample channel mix") {
  Tensor x = Tensor::randn({2, 4, 3, 3}, 31, {DType::f64}), w = Tensor::randn({3, 4, 1, 1}, 32, {DType::f64});
  Tensor s = Tensor::randn({2, 4}, 33, {DType::f64}), b = Tensor::randn({3}, 34, {DType::f64});
  ModulatedConv2dOptions o;
  o.demodulate = false, o.bias = b;
  Tensor y = modulated_conv2d(x, unsqueeze(w, 0), s, o);  // rosinality's [1, O, I, 1, 1] layout
  auto xv = x.to_vector<double>(), wv = w.to_vector<double>(), sv = s.to_vector<double>(), bv = b.to_vector<double>();
  auto yv = y.to_vector<double>();
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t oc = 0; oc < 3; ++oc)
      for (int64_t p = 0; p < 9; ++p) {
        double acc = bv[size_t(oc)];
        for (int64_t i = 0; i < 4; ++i) acc += wv[size_t(oc * 4 + i)] / 2.0 * sv[size_t(n * 4 + i)] * xv[size_t((n * 4 + i) * 9 + p)];
        CHECK(yv[size_t((n * 3 + oc) * 9 + p)] == doctest::Approx(acc).epsilon(1e-12));
      }
}

TEST_CASE("ops/modulated_conv: errors name the op and the shapes") {
  Tensor x = Tensor::randn({2, 4, 6, 6}, 1), w = Tensor::randn({5, 4, 3, 3}, 2), s = Tensor::randn({2, 4}, 3);
  GS_CHECK_THROWS_WITH(modulated_conv2d(x, Tensor::randn({5, 3, 3, 3}, 2), s), ShapeError, "modulated_conv2d",
                       "3 input channels", "[2,4,6,6]");
  GS_CHECK_THROWS_WITH(modulated_conv2d(x, w, Tensor::randn({2, 5}, 3)), ShapeError, "styles", "[2,5]");
  GS_CHECK_THROWS_WITH(modulated_conv2d(x, Tensor::randn({5, 4, 3, 2}, 2), s), ShapeError, "[5,4,3,2]");
  ModulatedConv2dOptions o;
  o.up = 3;
  GS_CHECK_THROWS_WITH(modulated_conv2d(x, w, s, o), ValueError, "up and down");
  ModulatedConv2dOptions on;
  on.noise = Tensor::randn({2, 1, 6, 6}, 4);
  GS_CHECK_THROWS_WITH(modulated_conv2d(x, w, s, on), ValueError, "noise_weight");
  on.noise_weight = Tensor::ones({1});
  on.noise = Tensor::randn({2, 1, 5, 6}, 4);
  GS_CHECK_THROWS_WITH(modulated_conv2d(x, w, s, on), ShapeError, "noise", "[2,1,5,6]");
  ModulatedConv2dOptions ob;
  ob.bias = Tensor::randn({4}, 5);
  GS_CHECK_THROWS_WITH(modulated_conv2d(x, w, s, ob), ShapeError, "bias", "[4]");
  GS_CHECK_THROWS_WITH(modulated_conv2d(x, w.to(DType::f64), s), DTypeError, "modulated_conv2d");
}

TEST_CASE("ops/modulated_conv: CPU vs CUDA on StyleGAN2-like layers") {
  struct Case {
    int64_t B, I, O, H, k, up;
    bool demod;
  };
  for (Case c : {Case{2, 16, 8, 9, 3, 1, true}, Case{2, 8, 16, 5, 3, 2, true}, Case{3, 16, 3, 7, 1, 1, false}}) {
    CAPTURE(c.H);
    CAPTURE(c.up);
    const int64_t OH = c.up == 2 ? 2 * c.H : c.H;
    Tensor x = Tensor::randn({c.B, c.I, c.H, c.H}, 41), w = Tensor::randn({c.O, c.I, c.k, c.k}, 42);
    Tensor s = add_scalar(mul_scalar(Tensor::randn({c.B, c.I}, 43), 0.3), 1.0), b = Tensor::randn({c.O}, 44);
    Tensor nz = Tensor::randn({c.B, 1, OH, OH}, 45), nw = Tensor::full({1}, 0.3);
    const bool demod = c.demod;
    const int64_t up = c.up;
    gstest::expect_cpu_cuda_match(
        [demod, up](const std::vector<Tensor>& a) {
          ModulatedConv2dOptions o;
          o.demodulate = demod, o.up = up, o.bias = a[3];
          if (demod) o.noise = a[4], o.noise_weight = a[5], o.act = Activation::LeakyReLU;
          return modulated_conv2d(a[0], a[1], a[2], o);
        },
        {x, w, s, b, nz, nw}, {2e-5, 2e-4});
  }
}
