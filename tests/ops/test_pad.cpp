#include "backend/pad_kernels.hpp"
#include "gradstyle/ops/pad.hpp"
#include "ops/imgops_fixtures.hpp"

using namespace gradstyle;

TEST_CASE("ops/pad: matches PyTorch fixtures (reflect 1-D/2-D, constant value, negative crop)") {
  auto cases = imgfx::cases_of("pad");
  REQUIRE(cases.size() == 5);
  for (const auto* c : cases)
    gstest::for_each_device([&](Device d) {
      imgfx::check_case(*c, d, {"x"}, [c](const imgfx::Inputs& t) {
        PadMode mode = c->params.at("mode").get<std::string>() == "reflect" ? PadMode::Reflect : PadMode::Constant;
        return pad(t.at("x"), imgfx::shape_param(*c, "pads"), mode, c->params.at("value").get<double>());
      });
    });
}

TEST_CASE("ops/pad: closed-form values") {
  Tensor x = Tensor::from_vector<float>({1, 2, 3, 4}, {1, 4});
  GS_EXPECT_CLOSE(pad(x, {3, 2}, PadMode::Reflect), Tensor::from_vector<float>({4, 3, 2, 1, 2, 3, 4, 3, 2}, {1, 9}), 0,
                  0);
  GS_EXPECT_CLOSE(pad(x, {1, 2}, PadMode::Zeros), Tensor::from_vector<float>({0, 1, 2, 3, 4, 0, 0}, {1, 7}), 0, 0);
  GS_EXPECT_CLOSE(pad(x, {0, 1, 1, 0}, PadMode::Constant, -1.5),
                  Tensor::from_vector<float>({-1.5f, -1.5f, -1.5f, -1.5f, -1.5f, 1, 2, 3, 4, -1.5f}, {2, 5}), 0, 0);
  GS_EXPECT_CLOSE(pad(x, {-1, -2}), Tensor::from_vector<float>({2}, {1, 1}), 0, 0);
  // the reflect gradient folds the border back: d/dx sum(pad(x)) counts how often x[i] appears
  Tensor xl = x.clone().requires_grad_();
  pad(xl, {3, 2}, PadMode::Reflect).sum().backward();
  GS_EXPECT_CLOSE(xl.grad(), Tensor::from_vector<float>({1, 3, 3, 2}, {1, 4}), 0, 0);
}

TEST_CASE("ops/pad: float64 gradcheck and gradgradcheck (reflect and constant)") {
  Tensor x = Tensor::randn({2, 2, 4, 5}, 51, {DType::f64});
  auto refl = [](const std::vector<Tensor>& in) { return pad(in[0], {2, 4, 3, 1}, PadMode::Reflect); };
  auto cst = [](const std::vector<Tensor>& in) { return pad(in[0], {1, -2, 2, 0}, PadMode::Constant, 0.7); };
  auto refl1 = [](const std::vector<Tensor>& in) { return pad(in[0], {3, 3}, PadMode::Reflect); };
  gstest::gradcheck(refl, {x});
  gstest::gradcheck(cst, {x});
  gstest::gradcheck(refl1, {x});
  gstest::gradgradcheck([refl](const std::vector<Tensor>& in) { return square(refl(in)); }, {x});
  gstest::gradgradcheck([cst](const std::vector<Tensor>& in) { return square(cst(in)); }, {x});
}

TEST_CASE("ops/pad: kernels write every output element (NaN-poisoned outputs)") {
  gstest::for_each_device([](Device d) {
    for (auto mode : {backend::PadMode::Constant, backend::PadMode::Reflect}) {
      backend::Pad2dParams p;
      p.planes = 3, p.in_h = 5, p.in_w = 4, p.left = 3, p.top = 2, p.mode = mode, p.value = 0.5;
      p.out_h = 5 + 2 + 4, p.out_w = 4 + 3 + 1;
      Tensor x = Tensor::randn({3, 5, 4}, 1, {DType::f32, d});
      Tensor out = gstest::poison(Tensor::empty({3, p.out_h, p.out_w}, {DType::f32, d}));
      GS_DISPATCH(d, pad2d_fwd, backend::make_view(out), backend::make_view(x), p);
      Tensor gin = gstest::poison(Tensor::empty({3, 5, 4}, {DType::f32, d}));
      GS_DISPATCH(d, pad2d_bwd, backend::make_view(gin), backend::make_view(out), p);
      for (const Tensor& t : {out, gin})
        for (float e : t.to_vector<float>()) REQUIRE(!std::isnan(e));
    }
  });
}

TEST_CASE("ops/pad: CPU vs CUDA") {
  Tensor x = Tensor::randn({2, 3, 7, 6}, 52);
  gstest::expect_cpu_cuda_match(
      [](const std::vector<Tensor>& in) {
        return pad(in[0], {5, 2, 1, 6}, PadMode::Reflect);
      },
      {x});
  gstest::expect_cpu_cuda_match(
      [](const std::vector<Tensor>& in) {
        return pad(in[0], {3, 0}, PadMode::Reflect);
      },
      {x});
  gstest::expect_cpu_cuda_match(
      [](const std::vector<Tensor>& in) {
        return pad(in[0], {2, -1, -3, 4}, PadMode::Constant, 0.25);
      },
      {x});
}

TEST_CASE("ops/pad: bad arguments throw typed errors naming the op and shapes") {
  Tensor x = Tensor::randn({1, 2, 3, 4}, 1);
  GS_CHECK_THROWS_WITH(pad(x, {4, 0}, PadMode::Reflect), ValueError, "pad (reflect)", "smaller than", "4", "[1,2,3,4]");
  GS_CHECK_THROWS_WITH(pad(x, {0, 0, 1, 3}, PadMode::Reflect), ValueError, "pad (reflect)", "size 3");
  GS_CHECK_THROWS_WITH(pad(x, {-1, 0}, PadMode::Reflect), ValueError, "pad (reflect)", ">= 0");
  GS_CHECK_THROWS_WITH(pad(x, {1, 1, 1}), ValueError, "pad", "{left, right}");
  GS_CHECK_THROWS_WITH(pad(x, {-3, -2}), ValueError, "pad (constant)", "negative size", "[1,2,3,4]");
  GS_CHECK_THROWS_WITH(pad(Tensor::randn({5}, 1), {1, 1, 1, 1}), ShapeError, "pad", "at least 2 dims", "[5]");
  GS_CHECK_THROWS_WITH(pad(x.to(DType::i32), {1, 1}), DTypeError, "pad", "int32");
}
