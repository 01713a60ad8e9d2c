#include "backend/pool_kernels.hpp"
#include "gradstyle/ops/pool.hpp"
#include "ops/imgops_fixtures.hpp"

using namespace gradstyle;

TEST_CASE("ops/pool: matches PyTorch fixtures (avg, max incl. ties, adaptive avg)") {
  int n = 0;
  for (const char* op : {"avg_pool2d", "max_pool2d", "adaptive_avg_pool2d"}) {
    for (const auto* c : imgfx::cases_of(op)) {
      ++n;
      gstest::for_each_device([&](Device d) {
        imgfx::check_case(*c, d, {"x"}, [c](const imgfx::Inputs& t) {
          const Tensor& x = t.at("x");
          if (c->op == "adaptive_avg_pool2d") return adaptive_avg_pool2d(x, imgfx::shape_param(*c, "output_size"));
          Shape k = imgfx::shape_param(*c, "kernel"), s = imgfx::shape_param(*c, "stride"),
                p = imgfx::shape_param(*c, "padding");
          return c->op == "avg_pool2d" ? avg_pool2d(x, k, s, p) : max_pool2d(x, k, s, p);
        });
      });
    }
  }
  CHECK(n == 11);
}

TEST_CASE("ops/pool: closed-form values") {
  Tensor x = Tensor::arange(16).reshape({1, 1, 4, 4});  // x[i][j] = 4i + j
  SUBCASE("avg 2x2 stride 2") {
    GS_EXPECT_CLOSE(avg_pool2d(x, {2}), Tensor::from_vector<float>({2.5f, 4.5f, 10.5f, 12.5f}, {1, 1, 2, 2}), 1e-6, 0);
  }
  SUBCASE("avg 3x3 stride 2 pad 1 counts the padding") {
    // window at (0,0) covers rows/cols -1..1: (0+1+4+5)/9
    Tensor y = avg_pool2d(x, {3}, {2}, {1});
    CHECK(y.shape() == Shape{1, 1, 2, 2});
    CHECK(y.to_vector<float>()[0] == doctest::Approx(10.0 / 9.0));
  }
  SUBCASE("max 1x1 stride 2 keeps pixels [::2, ::2] (IR-SE shortcut)") {
    GS_EXPECT_CLOSE(max_pool2d(x, {1}, {2}), Tensor::from_vector<float>({0, 2, 8, 10}, {1, 1, 2, 2}), 0, 0);
  }
  SUBCASE("max gradient goes to the first maximum of a tie; padding never wins") {
    Tensor t = Tensor::from_vector<float>({-5, -5, -5, -5}, {1, 1, 2, 2}).requires_grad_();
    Tensor y = max_pool2d(t, {3}, {1}, {1});  // every window sees all four values (and padding)
    CHECK(y.shape() == Shape{1, 1, 2, 2});
    GS_EXPECT_CLOSE(y.detach(), Tensor::full({1, 1, 2, 2}, -5), 0, 0);
    y.sum().backward();
    GS_EXPECT_CLOSE(t.grad(), Tensor::from_vector<float>({4, 0, 0, 0}, {1, 1, 2, 2}), 0, 0);
  }
  SUBCASE("adaptive 4 -> 3 bins [0,2) [1,3) [2,4)") {
    Tensor y = adaptive_avg_pool2d(x, {3});
    // bin (i, j) mean = 4 * (i + 0.5) + (j + 0.5)
    std::vector<float> want;
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 3; ++j) want.push_back(4.f * (i + 0.5f) + (j + 0.5f));
    GS_EXPECT_CLOSE(y, Tensor::from_vector<float>(want, {1, 1, 3, 3}), 1e-6, 0);
  }
  SUBCASE("max pooling propagates NaN") {
    Tensor t = Tensor::from_vector<float>({1, NAN, 3, 4}, {1, 1, 2, 2});
    CHECK(std::isnan(max_pool2d(t, {2}).item()));
  }
}

TEST_CASE("ops/pool: float64 gradcheck and gradgradcheck") {
  Tensor x = Tensor::randn({1, 2, 5, 6}, 41, {DType::f64});
  auto avg = [](const std::vector<Tensor>& in) { return avg_pool2d(in[0], {3, 2}, {2, 1}, {1, 0}); };
  auto mx = [](const std::vector<Tensor>& in) { return max_pool2d(in[0], {3}, {2}, {1}); };
  auto ada = [](const std::vector<Tensor>& in) { return adaptive_avg_pool2d(in[0], {3, 4}); };
  auto ada_up = [](const std::vector<Tensor>& in) { return adaptive_avg_pool2d(in[0], {7, 8}); };
  gstest::gradcheck(avg, {x});
  gstest::gradcheck(mx, {x});
  gstest::gradcheck(ada, {x});
  gstest::gradcheck(ada_up, {x});
  // Pooling is linear (piecewise linear for max): square the output so the second derivative is
  // non-zero and runs through the backward's own backward.
  gstest::gradgradcheck([avg](const std::vector<Tensor>& in) { return square(avg(in)); }, {x});
  gstest::gradgradcheck([mx](const std::vector<Tensor>& in) { return square(mx(in)); }, {x});
  gstest::gradgradcheck([ada](const std::vector<Tensor>& in) { return square(ada(in)); }, {x});
}

TEST_CASE("ops/pool: kernels write every output element (NaN-poisoned outputs)") {
  gstest::for_each_device([](Device d) {
    backend::Pool2dParams p;
    p.planes = 2, p.in_h = 7, p.in_w = 6, p.kh = 3, p.kw = 2, p.sh = 2, p.sw = 2, p.ph = 1, p.pw = 1;
    p.out_h = (7 + 2 - 3) / 2 + 1, p.out_w = (6 + 2 - 2) / 2 + 1;
    Tensor x = Tensor::randn({2, 7, 6}, 1, {DType::f32, d});
    auto opts = Options{DType::f32, d};
    Tensor out = gstest::poison(Tensor::empty({2, p.out_h, p.out_w}, opts));
    Tensor gin = gstest::poison(Tensor::empty({2, 7, 6}, opts));
    GS_DISPATCH(d, avg_pool2d_fwd, backend::make_view(out), backend::make_view(x), p);
    GS_DISPATCH(d, avg_pool2d_bwd, backend::make_view(gin), backend::make_view(out), p);
    std::vector<Tensor> check{out, gin};
    Tensor out2 = gstest::poison(Tensor::empty({2, p.out_h, p.out_w}, opts));
    Tensor idx = Tensor::full({2, p.out_h, p.out_w}, -1, {DType::i64, d});
    GS_DISPATCH(d, max_pool2d_fwd, backend::make_view(out2), backend::make_view(idx), backend::make_view(x), p);
    Tensor gin2 = gstest::poison(Tensor::empty({2, 7, 6}, opts));
    GS_DISPATCH(d, plane_scatter, backend::make_view(gin2), backend::make_view(out2), backend::make_view(idx), 2, 42,
                p.out_h * p.out_w);
    Tensor gat = gstest::poison(Tensor::empty({2, p.out_h, p.out_w}, opts));
    GS_DISPATCH(d, plane_gather, backend::make_view(gat), backend::make_view(x), backend::make_view(idx), 2, 42,
                p.out_h * p.out_w);
    GS_EXPECT_CLOSE(gat, out2, 0, 0);  // gathering at the argmax reproduces the max
    for (int64_t i : idx.to_vector<int64_t>()) REQUIRE((i >= 0 && i < 42));
    check.insert(check.end(), {out2, gin2});
    backend::AdaptivePoolParams a{2, 7, 6, 3, 4};
    Tensor out3 = gstest::poison(Tensor::empty({2, 3, 4}, opts));
    Tensor gin3 = gstest::poison(Tensor::empty({2, 7, 6}, opts));
    GS_DISPATCH(d, adaptive_avg_pool2d_fwd, backend::make_view(out3), backend::make_view(x), a);
    GS_DISPATCH(d, adaptive_avg_pool2d_bwd, backend::make_view(gin3), backend::make_view(out3), a);
    check.insert(check.end(), {out3, gin3});
    for (const Tensor& t : check)
      for (float e : t.to_vector<float>()) REQUIRE(!std::isnan(e));
  });
}

TEST_CASE("ops/pool: CPU vs CUDA") {
  Tensor x = Tensor::randn({2, 3, 11, 9}, 42);
  gstest::expect_cpu_cuda_match([](const std::vector<Tensor>& in) { return avg_pool2d(in[0], {3}, {2}, {1}); }, {x});
  gstest::expect_cpu_cuda_match([](const std::vector<Tensor>& in) { return avg_pool2d(in[0], {2}); }, {x});
  gstest::expect_cpu_cuda_match([](const std::vector<Tensor>& in) { return max_pool2d(in[0], {3}, {2}, {1}); }, {x});
  gstest::expect_cpu_cuda_match([](const std::vector<Tensor>& in) { return max_pool2d(in[0], {1}, {2}); }, {x});
  gstest::expect_cpu_cuda_match([](const std::vector<Tensor>& in) { return adaptive_avg_pool2d(in[0], {4, 5}); }, {x});
  gstest::expect_cpu_cuda_match(
      [](const std::vector<Tensor>& in) {
        return adaptive_avg_pool2d(in[0], {13, 20});
      },
      {x});
  // ties: both devices must pick the same (first) maximum
  Tensor ties = Tensor::randn({2, 3, 8, 8}, 43).mul_(1.5);
  {
    autograd::NoGradGuard ng;
    ties = clamp(ties, -1, 1);  // many windows tie at -1 or 1
  }
  gstest::expect_cpu_cuda_match([](const std::vector<Tensor>& in) { return max_pool2d(in[0], {3}, {1}, {1}); }, {ties});
}

TEST_CASE("ops/pool: bad arguments throw typed errors naming the op and shapes") {
  Tensor x = Tensor::randn({1, 2, 5, 5}, 1);
  GS_CHECK_THROWS_WITH(avg_pool2d(x, {0}), ValueError, "avg_pool2d", "kernel");
  GS_CHECK_THROWS_WITH(max_pool2d(x, {2}, {-1}), ValueError, "max_pool2d", "stride", "[-1]");
  GS_CHECK_THROWS_WITH(avg_pool2d(x, {2}, {}, {2}), ValueError, "avg_pool2d", "half the kernel");
  GS_CHECK_THROWS_WITH(max_pool2d(x, {2}, {}, {-1}), ValueError, "max_pool2d", "padding");
  GS_CHECK_THROWS_WITH(max_pool2d(x, {2, 2, 2}), ValueError, "max_pool2d", "1 or 2 entries");
  GS_CHECK_THROWS_WITH(avg_pool2d(x, {7}), ShapeError, "avg_pool2d", "larger than the padded input", "[1,2,5,5]");
  GS_CHECK_THROWS_WITH(max_pool2d(Tensor::randn({2, 5, 5}, 1), {2}), ShapeError, "max_pool2d", "[2,5,5]");
  GS_CHECK_THROWS_WITH(adaptive_avg_pool2d(x, {0, 3}), ValueError, "adaptive_avg_pool2d", "[0,3]");
  GS_CHECK_THROWS_WITH(adaptive_avg_pool2d(x, {-2}), ValueError, "adaptive_avg_pool2d", "[-2]");
  GS_CHECK_THROWS_WITH(avg_pool2d(x.to(DType::u8), {2}), DTypeError, "avg_pool2d", "uint8");
}
