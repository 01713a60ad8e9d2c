#include "backend/grid_sample_kernels.hpp"
#include "gradstyle/ops/grid_sample.hpp"
#include "ops/imgops_fixtures.hpp"

using namespace gradstyle;

TEST_CASE("ops/grid_sample: matches PyTorch fixtures (output, input and grid gradients)") {
  auto cases = imgfx::cases_of("grid_sample");
  REQUIRE(cases.size() == 4);
  for (const auto* c : cases) {
    const bool ac = c->params.at("align_corners").get<bool>();
    gstest::for_each_device([&](Device d) {
      imgfx::check_case(*c, d, {"x", "grid"},
                        [ac](const imgfx::Inputs& t) { return grid_sample(t.at("x"), t.at("grid"), ac); });
    });
  }
}

TEST_CASE("ops/grid_sample: closed-form values") {
  // x [1,1,2,3] = 0..5
  Tensor x = Tensor::arange(6).reshape({1, 1, 2, 3});
  SUBCASE("align_corners=true maps -1/+1 to the corner pixel centres") {
    Tensor grid = Tensor::from_vector<float>({-1, -1, 1, 1, 0, 0, 1, -1}, {1, 1, 4, 2});
    // (x=-1,y=-1) -> pixel (0,0) = 0; (1,1) -> (2,1) = 5; (0,0) -> (1, 0.5) = 2.5; (1,-1) -> (2,0) = 2
    GS_EXPECT_CLOSE(grid_sample(x, grid, true), Tensor::from_vector<float>({0, 5, 2.5f, 2}, {1, 1, 1, 4}), 1e-6, 0);
  }
  SUBCASE("align_corners=false maps -1/+1 to the outer edges (half-weight zero padding)") {
    Tensor grid = Tensor::from_vector<float>({-1, 1, 1, 1, 0, 0}, {1, 1, 3, 2});
    // (-1,1) -> pixel (x=-0.5, y=1.5): only tap (x=0, y=1) = 3 inside, weight 1/4 -> 0.75
    // (1,1) -> pixel (2.5, 1.5): only tap (2, 1) = 5 inside, weight 1/4 -> 1.25
    // (0,0) -> pixel (1, 0.5): (1 + 4) / 2 = 2.5
    GS_EXPECT_CLOSE(grid_sample(x, grid, false), Tensor::from_vector<float>({0.75f, 1.25f, 2.5f}, {1, 1, 1, 3}), 1e-6,
                    0);
  }
  SUBCASE("points far outside, and NaN, read zeros / NaN without touching memory out of bounds") {
    Tensor grid = Tensor::from_vector<float>({5, 0, -1e30f, 3e30f, 0.5f, NAN}, {1, 1, 3, 2});
    auto v = grid_sample(x, grid, false).to_vector<float>();
    CHECK(v[0] == 0.0f);
    CHECK(v[1] == 0.0f);
    CHECK(std::isnan(v[2]));
  }
}

TEST_CASE("ops/grid_sample: float64 gradcheck w.r.t. input and grid, both align_corners") {
  Tensor x = Tensor::randn({2, 2, 4, 5}, 11, {DType::f64});
  // Coordinates away from pixel boundaries (where bilinear sampling has kinks).
  Tensor grid = mul_scalar(Tensor::rand({2, 3, 2, 2}, 12, {DType::f64}), 2.4) - 1.2;
  for (bool ac : {false, true}) {
    INFO("align_corners " << ac);
    gstest::gradcheck([ac](const std::vector<Tensor>& in) { return grid_sample(in[0], in[1], ac); }, {x, grid});
  }
}

TEST_CASE("ops/grid_sample: gradient only w.r.t. the grid, or only w.r.t. the input") {
  Tensor x = Tensor::randn({1, 3, 4, 4}, 3);
  Tensor grid = mul_scalar(Tensor::rand({1, 2, 3, 2}, 4), 1.8) - 0.9;
  Tensor w = Tensor::randn({1, 3, 2, 3}, 5);
  Tensor gx_ref, gg_ref;
  {
    Tensor xl = x.clone().requires_grad_(), gl = grid.clone().requires_grad_();
    auto g = autograd::grad({(grid_sample(xl, gl, false) * w).sum()}, {xl, gl});
    gx_ref = g[0];
    gg_ref = g[1];
  }
  Tensor gl = grid.clone().requires_grad_();
  auto g1 = autograd::grad({(grid_sample(x, gl, false) * w).sum()}, {gl});
  GS_EXPECT_CLOSE(g1[0], gg_ref, 0, 0);
  Tensor xl = x.clone().requires_grad_();
  auto g2 = autograd::grad({(grid_sample(xl, grid, false) * w).sum()}, {xl});
  GS_EXPECT_CLOSE(g2[0], gx_ref, 0, 0);
}

TEST_CASE("ops/grid_sample: second order throws a clear AutogradError") {
  Tensor x = Tensor::randn({1, 1, 3, 3}, 1, {DType::f64}).requires_grad_();
  Tensor grid = Tensor::zeros({1, 1, 1, 2}, {DType::f64}).requires_grad_();
  auto g = autograd::grad({grid_sample(x, grid, false).sum()}, {x, grid}, {}, true, true);
  GS_CHECK_THROWS_WITH(autograd::grad({g[1].sum()}, {x}), AutogradError, "grid_sample", "second-order");
}

TEST_CASE("ops/grid_sample: kernels write every output element (NaN-poisoned outputs)") {
  gstest::for_each_device([](Device d) {
    Tensor x = Tensor::randn({2, 3, 4, 5}, 1, {DType::f32, d});
    Tensor grid = (mul_scalar(Tensor::rand({2, 3, 4, 2}, 2, {DType::f32, d}), 2.6) - 1.3);
    backend::GridSampleParams p{2, 3, 4, 5, 3, 4, false};
    Tensor out = gstest::poison(Tensor::empty({2, 3, 3, 4}, {DType::f32, d}));
    GS_DISPATCH(d, grid_sample_fwd, backend::make_view(out), backend::make_view(x), backend::make_view(grid), p);
    Tensor gin = Tensor::zeros(x.shape(), {DType::f32, d});
    Tensor ggrid = gstest::poison(Tensor::empty(grid.shape(), {DType::f32, d}));
    GS_DISPATCH(d, grid_sample_bwd, backend::make_view(gin), backend::make_view(ggrid), backend::make_view(out),
                backend::make_view(x), backend::make_view(grid), p);
    for (const Tensor& t : {out, gin, ggrid}) {
      auto v = t.to_vector<float>();
      for (float e : v) REQUIRE(!std::isnan(e));
    }
  });
}

TEST_CASE("ops/grid_sample: CPU vs CUDA") {
  Tensor x = Tensor::randn({2, 4, 6, 7}, 21);
  Tensor grid = mul_scalar(Tensor::rand({2, 5, 3, 2}, 22), 2.6) - 1.3;
  for (bool ac : {false, true})
    gstest::expect_cpu_cuda_match([ac](const std::vector<Tensor>& in) { return grid_sample(in[0], in[1], ac); },
                                  {x, grid}, {1e-5, 1e-4});
}

TEST_CASE("ops/grid_sample: bad arguments throw typed errors naming the op and shapes") {
  Tensor x = Tensor::randn({2, 3, 4, 5}, 1);
  Tensor grid = Tensor::zeros({2, 3, 3, 2});
  GS_CHECK_THROWS_WITH(grid_sample(x, Tensor::zeros({2, 3, 3, 3})), ShapeError, "grid_sample", "[N, Ho, Wo, 2]",
                       "[2,3,3,3]");
  GS_CHECK_THROWS_WITH(grid_sample(x, Tensor::zeros({1, 3, 3, 2})), ShapeError, "grid_sample", "N = 2", "[1,3,3,2]");
  GS_CHECK_THROWS_WITH(grid_sample(x, Tensor::zeros({2, 9, 2})), ShapeError, "grid_sample", "[2,9,2]");
  GS_CHECK_THROWS_WITH(grid_sample(Tensor::randn({3, 4, 5}, 1), grid), ShapeError, "grid_sample", "[3,4,5]");
  GS_CHECK_THROWS_WITH(grid_sample(x, grid.to(DType::f64)), DTypeError, "grid_sample", "float64");
  GS_CHECK_THROWS_WITH(grid_sample(x.to(DType::i32), grid), DTypeError, "grid_sample", "int32");
  GS_CHECK_THROWS_WITH(grid_sample(x, Tensor()), ValueError, "grid_sample", "grid");
}
