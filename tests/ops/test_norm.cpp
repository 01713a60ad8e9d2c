#include "backend/norm_kernels.hpp"
#include "gradstyle/ops/norm.hpp"
#include "ops/imgops_fixtures.hpp"

using namespace gradstyle;

namespace {
Tensor opt(const imgfx::Inputs& t, const char* k) {
  return t.count(k) ? t.at(k) : Tensor();
}
}  // namespace

// ---- batch_norm ------------------------------------------------------------------------------------

TEST_CASE("ops/batch_norm: matches PyTorch fixtures (train/eval, running stats, affine or not, 2-D)") {
  auto cases = imgfx::cases_of("batch_norm");
  REQUIRE(cases.size() == 6);
  for (const auto* c : cases) {
    const bool training = c->params.at("training").get<bool>(), affine = c->params.at("affine").get<bool>();
    const double momentum = c->params.at("momentum").get<double>(), eps = c->params.at("eps").get<double>();
    std::vector<std::string> diff{"x"};
    if (affine) diff.insert(diff.end(), {"weight", "bias"});
    gstest::for_each_device([&](Device d) {
      imgfx::check_case(*c, d, diff,
                        [&](const imgfx::Inputs& t) {
                          Tensor rm = opt(t, "running_mean"), rv = opt(t, "running_var");
                          Tensor y =
                              batch_norm(t.at("x"), rm, rv, opt(t, "weight"), opt(t, "bias"), training, momentum, eps);
                          if (rm.defined()) {
                            INFO("updated running statistics");
                            GS_EXPECT_CLOSE(rm.cpu(), c->at("new_running_mean"), 1e-6, 1e-5);
                            GS_EXPECT_CLOSE(rv.cpu(), c->at("new_running_var"), 1e-6, 1e-5);
                          }
                          return y;
                        },
                        {1e-5, 1e-4}, {2e-5, 2e-4});
    });
  }
}

TEST_CASE("ops/batch_norm: closed form, running update and float32 accuracy at a large offset") {
  // x = 1000 + N(0,1): naive float32 sum-of-squares variance would lose most digits.
  Tensor x64 = add_scalar(Tensor::randn({4, 3, 6, 5}, 61, {DType::f64}), 1000.0);
  Tensor x = x64.to(DType::f32);
  Tensor w = Tensor::from_vector<float>({0.5f, 1.5f, -2.0f}, {3});
  Tensor b = Tensor::from_vector<float>({0.1f, -0.2f, 0.3f}, {3});
  Tensor rm = Tensor::from_vector<float>({1, 2, 3}, {3}), rv = Tensor::from_vector<float>({1, 1, 2}, {3});
  Tensor y = batch_norm(x, rm, rv, w, b, true, 0.25, 1e-5);
  const Shape dims{0, 2, 3}, bs{1, 3, 1, 1};
  Tensor xr = x.to(DType::f64);  // the exact float32 inputs, in float64
  Tensor mu = mean(xr, dims, true), v = gradstyle::var(xr, dims, false, true);
  Tensor want = add(mul(div(sub(xr, mu), sqrt(add_scalar(v, 1e-5))), reshape(w.to(DType::f64), bs)),
                    reshape(b.to(DType::f64), bs));
  // Like PyTorch's CPU kernel, the output is formed as x * (w invstd) + (b - mean w invstd): with
  // |x| ~ 1000 each float32 product/sum rounds at ~1000 * |w invstd| * 2^-24, i.e. a few 1e-4 here
  // (|w| <= 2, invstd ~ 1). A float32 E[x^2] - E[x]^2 variance would be off by O(1) instead.
  const double round_err = 4 * 1001.0 * 2.0 * 1.2 * std::ldexp(1.0, -24);
  GS_EXPECT_CLOSE(y, want, round_err, 0);
  // running stats: (1 - m) r + m stat, with the unbiased variance (n = 120 per channel)
  Tensor mu_c = reshape(mu, {3}), var_c = reshape(v, {3});
  GS_EXPECT_CLOSE(rm, add(mul_scalar(Tensor::from_vector<double>({1, 2, 3}, {3}), 0.75), mul_scalar(mu_c, 0.25)), 1e-4,
                  1e-6);
  GS_EXPECT_CLOSE(
      rv, add(mul_scalar(Tensor::from_vector<double>({1, 1, 2}, {3}), 0.75), mul_scalar(var_c, 0.25 * 120.0 / 119.0)),
      1e-5, 1e-4);
  // evaluation uses the running statistics
  Tensor ye = batch_norm(x, rm, rv, w, b, false);
  Tensor want_e =
      add(mul(div(sub(xr, reshape(rm.to(DType::f64), bs)), sqrt(add_scalar(reshape(rv.to(DType::f64), bs), 1e-5))),
              reshape(w.to(DType::f64), bs)),
          reshape(b.to(DType::f64), bs));
  GS_EXPECT_CLOSE(ye, want_e, 1e-3, 1e-5);  // |values| ~ 1000: float32 rounding of the output itself
}

TEST_CASE("ops/batch_norm: float64 gradcheck and gradgradcheck (train and eval, 4-D and 2-D)") {
  Tensor x = add_scalar(mul_scalar(Tensor::randn({3, 2, 3, 2}, 62, {DType::f64}), 1.5), 0.4);
  Tensor w = add_scalar(Tensor::rand({2}, 63, {DType::f64}), 0.5), b = Tensor::randn({2}, 64, {DType::f64});
  Tensor rm = Tensor::randn({2}, 65, {DType::f64}), rv = add_scalar(Tensor::rand({2}, 66, {DType::f64}), 0.5);
  auto train = [](const std::vector<Tensor>& in) { return batch_norm(in[0], {}, {}, in[1], in[2], true); };
  auto train_plain = [](const std::vector<Tensor>& in) { return batch_norm(in[0], {}, {}, {}, {}, true); };
  auto eval = [rm, rv](const std::vector<Tensor>& in) { return batch_norm(in[0], rm, rv, in[1], in[2], false); };
  gstest::gradcheck(train, {x, w, b});
  gstest::gradcheck(train_plain, {x});
  gstest::gradcheck(eval, {x, w, b});
  gstest::gradgradcheck(train, {x, w, b});
  gstest::gradgradcheck(eval, {x, w, b});
  Tensor x2 = Tensor::randn({5, 3}, 67, {DType::f64});
  Tensor w2 = Tensor::randn({3}, 68, {DType::f64}), b2 = Tensor::randn({3}, 69, {DType::f64});
  gstest::gradcheck(train, {x2, w2, b2});
  gstest::gradgradcheck(train, {x2, w2, b2});
}

TEST_CASE("ops/batch_norm: fused first-order backward equals the composed (create_graph) backward") {
  for (bool training : {true, false}) {
    INFO("training " << training);
    Tensor x = add_scalar(Tensor::randn({4, 3, 5, 3}, 70), 2.0).requires_grad_();
    Tensor w = Tensor::randn({3}, 71).requires_grad_(), b = Tensor::randn({3}, 72).requires_grad_();
    Tensor rm = Tensor::randn({3}, 73), rv = add_scalar(Tensor::rand({3}, 74), 0.5);
    Tensor gy = Tensor::randn(x.shape(), 75);
    auto first = autograd::grad({batch_norm(x, rm.clone(), rv.clone(), w, b, training)}, {x, w, b}, {gy});
    auto composed =
        autograd::grad({batch_norm(x, rm.clone(), rv.clone(), w, b, training)}, {x, w, b}, {gy}, true, true);
    for (int i = 0; i < 3; ++i) GS_EXPECT_CLOSE(first[size_t(i)], composed[size_t(i)].detach(), 1e-5, 1e-4);
  }
}

TEST_CASE("ops/batch_norm: kernels write every output element (NaN-poisoned outputs)") {
  gstest::for_each_device([](Device d) {
    auto o = Options{DType::f32, d};
    backend::ChannelParams p{3, 4, 7};
    Tensor x = Tensor::randn({3, 4, 7}, 1, o), g = Tensor::randn({3, 4, 7}, 2, o), v = Tensor::randn({4}, 3, o);
    Tensor m = gstest::poison(Tensor::empty({4}, o)), vr = gstest::poison(Tensor::empty({4}, o));
    GS_DISPATCH(d, channel_moments, backend::make_view(m), backend::make_view(vr), backend::make_view(x), p);
    Tensor sg = gstest::poison(Tensor::empty({4}, o)), sgx = gstest::poison(Tensor::empty({4}, o));
    GS_DISPATCH(d, channel_grad_sums, backend::make_view(sg), backend::make_view(sgx), backend::make_view(g),
                backend::make_view(x), backend::make_view(m), p);
    Tensor a1 = gstest::poison(Tensor::empty(x.shape(), o)), a2 = gstest::poison(Tensor::empty(x.shape(), o));
    Tensor pr = gstest::poison(Tensor::empty(x.shape(), o));
    GS_DISPATCH(d, channel_affine, backend::make_view(a1), backend::make_view(x), backend::make_view(v),
                backend::make_view(m), p);
    GS_DISPATCH(d, channel_affine2, backend::make_view(a2), backend::make_view(x), backend::make_view(v),
                backend::make_view(g), backend::make_view(m), backend::make_view(vr), p);
    GS_DISPATCH(d, prelu_fwd, backend::make_view(pr), backend::make_view(x), backend::make_view(v), p);
    for (const Tensor& t : {m, vr, sg, sgx, a1, a2, pr})
      for (float e : t.to_vector<float>()) REQUIRE(!std::isnan(e));
    // the moments themselves
    GS_EXPECT_CLOSE(m, reshape(mean(x, {0, 2}), {4}), 1e-6, 1e-5);
    GS_EXPECT_CLOSE(vr, reshape(gradstyle::var(x, {0, 2}, false), {4}), 1e-6, 1e-5);
  });
}

TEST_CASE("ops/batch_norm: CPU vs CUDA") {
  Tensor x = add_scalar(Tensor::randn({4, 6, 9, 7}, 76), 3.0);
  Tensor w = Tensor::randn({6}, 77), b = Tensor::randn({6}, 78);
  Tensor rm = Tensor::randn({6}, 79), rv = add_scalar(Tensor::rand({6}, 80), 0.5);
  gstest::expect_cpu_cuda_match(
      [](const std::vector<Tensor>& in) { return batch_norm(in[0], {}, {}, in[1], in[2], true); }, {x, w, b},
      {2e-5, 1e-4});
  gstest::expect_cpu_cuda_match(
      [](const std::vector<Tensor>& in) {
        return batch_norm(in[0], in[3].detach(), in[4].detach(), in[1], in[2], false);
      },
      {x, w, b, rm, rv}, {2e-5, 1e-4});
}

TEST_CASE("ops/batch_norm: bad arguments throw typed errors") {
  Tensor x = Tensor::randn({2, 3, 4, 4}, 1);
  Tensor w = Tensor::ones({3}), rm = Tensor::zeros({3}), rv = Tensor::ones({3});
  GS_CHECK_THROWS_WITH(batch_norm(Tensor::randn({1, 3, 1, 1}, 1), rm, rv, w, {}, true), ValueError, "batch_norm",
                       "more than 1 value per channel", "[1,3,1,1]");
  GS_CHECK_THROWS_WITH(batch_norm(x, {}, {}, w, {}, false), ValueError, "batch_norm", "evaluation");
  GS_CHECK_THROWS_WITH(batch_norm(x, rm, rv, Tensor::ones({4}), {}, true), ShapeError, "batch_norm", "weight", "[3]",
                       "[4]");
  GS_CHECK_THROWS_WITH(batch_norm(x, Tensor::zeros({2}), rv, w, {}, true), ShapeError, "batch_norm", "running_mean");
  GS_CHECK_THROWS_WITH(batch_norm(x, rm, rv, w, Tensor::zeros({3}, {DType::f64}), true), DTypeError, "batch_norm",
                       "bias", "float64");
  GS_CHECK_THROWS_WITH(batch_norm(x, rm.clone().requires_grad_(), rv, w, {}, true), ValueError, "batch_norm",
                       "must not require grad");
  GS_CHECK_THROWS_WITH(batch_norm(Tensor::randn({5}, 1), {}, {}, {}, {}, true), ShapeError, "batch_norm", "[5]");
  GS_CHECK_THROWS_WITH(batch_norm(x, rm, rv, w, {}, true, 1.5), ValueError, "batch_norm", "momentum");
  GS_CHECK_THROWS_WITH(batch_norm(x, rm, rv, w, {}, true, 0.1, -1.0), ValueError, "batch_norm", "eps");
}

// ---- prelu -----------------------------------------------------------------------------------------

TEST_CASE("ops/prelu: matches PyTorch fixtures, closed form, gradcheck and gradgradcheck") {
  for (const auto* c : imgfx::cases_of("prelu"))
    gstest::for_each_device([&](Device d) {
      imgfx::check_case(*c, d, {"x", "weight"},
                        [](const imgfx::Inputs& t) { return prelu(t.at("x"), t.at("weight")); });
    });
  Tensor x = Tensor::from_vector<float>({-2, 3, -4, 5}, {1, 2, 2, 1});
  GS_EXPECT_CLOSE(prelu(x, Tensor::from_vector<float>({0.5f, 0.25f}, {2})),
                  Tensor::from_vector<float>({-1, 3, -1, 5}, {1, 2, 2, 1}), 0, 0);
  GS_EXPECT_CLOSE(prelu(x, Tensor::from_vector<float>({0.1f}, {1})),
                  Tensor::from_vector<float>({-0.2f, 3, -0.4f, 5}, {1, 2, 2, 1}), 1e-7, 0);
  Tensor xr = Tensor::randn({2, 3, 2, 3}, 81, {DType::f64}), w = Tensor::rand({3}, 82, {DType::f64});
  auto per_channel = [](const std::vector<Tensor>& in) { return prelu(in[0], in[1]); };
  gstest::gradcheck(per_channel, {xr, w});
  gstest::gradgradcheck(per_channel, {xr, w});
  gstest::gradcheck(per_channel, {xr, Tensor::from_vector<double>({0.25}, {1})});
  gstest::gradgradcheck(per_channel, {Tensor::randn({7}, 83, {DType::f64}), Tensor::from_vector<double>({0.3}, {1})});
  gstest::expect_cpu_cuda_match(per_channel, {Tensor::randn({2, 5, 4, 3}, 84), Tensor::rand({5}, 85)});
}

TEST_CASE("ops/prelu: bad arguments throw typed errors") {
  Tensor x = Tensor::randn({2, 4, 3}, 1);
  GS_CHECK_THROWS_WITH(prelu(x, Tensor::ones({3})), ShapeError, "prelu", "[3]", "[2,4,3]");
  GS_CHECK_THROWS_WITH(prelu(x, Tensor::ones({2, 2})), ShapeError, "prelu", "[2,2]");
  GS_CHECK_THROWS_WITH(prelu(x, Tensor::ones({4}, {DType::f64})), DTypeError, "prelu", "float64");
  GS_CHECK_THROWS_WITH(prelu(x, Tensor()), ValueError, "prelu", "weight");
}

// ---- layer_norm --------------------------------------------------------------------------------------

TEST_CASE("ops/layer_norm: matches PyTorch fixtures, gradcheck and gradgradcheck") {
  auto cases = imgfx::cases_of("layer_norm");
  REQUIRE(cases.size() == 2);
  for (const auto* c : cases)
    gstest::for_each_device([&](Device d) {
      imgfx::check_case(*c, d, {"x", "weight", "bias"}, [c](const imgfx::Inputs& t) {
        return layer_norm(t.at("x"), imgfx::shape_param(*c, "normalized_shape"), t.at("weight"), t.at("bias"),
                          c->params.at("eps").get<double>());
      });
    });
  Tensor x = Tensor::randn({2, 3, 4}, 91, {DType::f64});
  Tensor w = Tensor::randn({4}, 92, {DType::f64}), b = Tensor::randn({4}, 93, {DType::f64});
  auto f = [](const std::vector<Tensor>& in) { return layer_norm(in[0], {4}, in[1], in[2]); };
  gstest::gradcheck(f, {x, w, b});
  gstest::gradgradcheck(f, {x, w, b});
  auto plain = [](const std::vector<Tensor>& in) { return layer_norm(in[0], {3, 4}); };
  gstest::gradcheck(plain, {x});
  gstest::gradgradcheck(plain, {x});
  gstest::expect_cpu_cuda_match(f, {Tensor::randn({3, 5, 8}, 94), Tensor::randn({8}, 95), Tensor::randn({8}, 96)});
  // closed form: a row (1, 3) normalises to (-1, 1) up to eps
  GS_EXPECT_CLOSE(layer_norm(Tensor::from_vector<double>({1, 3}, {1, 2}), {2}, {}, {}, 0.0),
                  Tensor::from_vector<double>({-1, 1}, {1, 2}), 1e-12, 0);
}

TEST_CASE("ops/layer_norm: bad arguments throw typed errors") {
  Tensor x = Tensor::randn({2, 3, 4}, 1);
  GS_CHECK_THROWS_WITH(layer_norm(x, {3}), ShapeError, "layer_norm", "normalized_shape", "[3]", "[2,3,4]");
  GS_CHECK_THROWS_WITH(layer_norm(x, {}), ShapeError, "layer_norm", "normalized_shape");
  GS_CHECK_THROWS_WITH(layer_norm(x, {4}, Tensor::ones({3})), ShapeError, "layer_norm", "weight", "[4]");
  GS_CHECK_THROWS_WITH(layer_norm(x, {4}, {}, Tensor::ones({4}, {DType::f64})), DTypeError, "layer_norm", "bias");
}

// ---- pixel_norm --------------------------------------------------------------------------------------

TEST_CASE("ops/pixel_norm: matches PyTorch fixture, closed form, gradcheck and gradgradcheck") {
  for (const auto* c : imgfx::cases_of("pixel_norm"))
    gstest::for_each_device([&](Device d) {
      imgfx::check_case(*c, d, {"x"}, [c](const imgfx::Inputs& t) {
        return pixel_norm(t.at("x"), c->params.at("dim").get<int64_t>(), c->params.at("eps").get<double>());
      });
    });
  // [1, 2]: (3, 4) -> mean of squares 12.5
  Tensor y = pixel_norm(Tensor::from_vector<double>({3, 4}, {1, 2}));
  GS_EXPECT_CLOSE(y, Tensor::from_vector<double>({3 / std::sqrt(12.5 + 1e-8), 4 / std::sqrt(12.5 + 1e-8)}, {1, 2}),
                  1e-14, 0);
  Tensor x = Tensor::randn({2, 5, 3}, 97, {DType::f64});
  auto f = [](const std::vector<Tensor>& in) { return pixel_norm(in[0]); };
  auto last = [](const std::vector<Tensor>& in) { return pixel_norm(in[0], -1); };
  gstest::gradcheck(f, {x});
  gstest::gradgradcheck(f, {x});
  gstest::gradcheck(last, {x});
  gstest::expect_cpu_cuda_match(f, {Tensor::randn({4, 16, 3, 3}, 98)});
  GS_CHECK_THROWS_WITH(pixel_norm(x, 3), IndexError, "pixel_norm");
  GS_CHECK_THROWS_WITH(pixel_norm(x, 1, -1.0), ValueError, "pixel_norm", "eps");
}
