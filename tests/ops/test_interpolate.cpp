#include "backend/interpolate_kernels.hpp"
#include "gradstyle/ops/interpolate.hpp"
#include "ops/imgops_fixtures.hpp"

using namespace gradstyle;

namespace {
Tensor run_fixture_op(const imgfx::Case& c, const Tensor& x) {
  const auto& p = c.params;
  const InterpolateMode mode =
      p.at("mode").get<std::string>() == "bilinear" ? InterpolateMode::Bilinear : InterpolateMode::Nearest;
  const bool ac = p.at("align_corners").get<bool>();
  if (p.contains("size")) return interpolate(x, p.at("size").get<Shape>(), mode, ac);
  auto s = p.at("scale").get<std::vector<double>>();
  return interpolate_scale(x, s[0], s[1], mode, ac);
}
}  // namespace

TEST_CASE("ops/interpolate: matches PyTorch fixtures (bilinear both align_corners, nearest; size and scale)") {
  auto cases = imgfx::cases_of("interpolate");
  REQUIRE(cases.size() == 13);
  for (const auto* c : cases)
    gstest::for_each_device([&](Device d) {
      imgfx::check_case(*c, d, {"x"}, [c](const imgfx::Inputs& t) { return run_fixture_op(*c, t.at("x")); });
    });
}

TEST_CASE("ops/interpolate: closed-form values") {
  Tensor x = Tensor::from_vector<float>({0, 3, 6, 9}, {1, 1, 2, 2});
  SUBCASE("bilinear align_corners=true keeps the corners and ramps linearly") {
    Tensor y = interpolate(x, {4, 4}, InterpolateMode::Bilinear, true);
    std::vector<float> want;
    for (int i = 0; i < 4; ++i)
      for (int j = 0; j < 4; ++j) want.push_back(float(i * 2 + j));  // x[i][j] = 6*(i/3) + 3*(j/3)
    GS_EXPECT_CLOSE(y, Tensor::from_vector<float>(want, {1, 1, 4, 4}), 1e-6, 0);
  }
  SUBCASE("bilinear align_corners=false x2: clamp at the border, quarter steps inside") {
    Tensor y = interpolate_scale(x, 2.0, InterpolateMode::Bilinear, false);
    // along one axis src = (dst + 0.5)/2 - 0.5 -> -0.25 (clamped to 0), 0.25, 0.75, 1.25 (-> 1)
    const float a[4] = {0, 0.25f, 0.75f, 1};
    std::vector<float> want;
    for (int i = 0; i < 4; ++i)
      for (int j = 0; j < 4; ++j) want.push_back(6 * a[i] + 3 * a[j]);
    GS_EXPECT_CLOSE(y, Tensor::from_vector<float>(want, {1, 1, 4, 4}), 1e-6, 0);
  }
  SUBCASE("nearest x2 replicates, nearest to the same size is the identity") {
    Tensor y = interpolate(x, {4, 4}, InterpolateMode::Nearest);
    GS_EXPECT_CLOSE(y, Tensor::from_vector<float>({0, 0, 3, 3, 0, 0, 3, 3, 6, 6, 9, 9, 6, 6, 9, 9}, {1, 1, 4, 4}), 0,
                    0);
    GS_EXPECT_CLOSE(interpolate(x, {2, 2}, InterpolateMode::Nearest), x, 0, 0);
    GS_EXPECT_CLOSE(interpolate(x, {2, 2}, InterpolateMode::Bilinear, false), x, 0, 0);
  }
  SUBCASE("nearest uses PyTorch's float32 index math: 10 -> 6 picks 0,1,3,5,6,8") {
    Tensor r = Tensor::arange(10).reshape({1, 1, 1, 10});
    GS_EXPECT_CLOSE(interpolate(r, {1, 6}, InterpolateMode::Nearest),
                    Tensor::from_vector<float>({0, 1, 3, 5, 6, 8}, {1, 1, 1, 6}), 0, 0);
  }
}

TEST_CASE("ops/interpolate: float64 gradcheck (bilinear both modes, nearest, up and down)") {
  Tensor x = Tensor::randn({1, 2, 3, 5}, 31, {DType::f64});
  for (bool ac : {false, true}) {
    INFO("align_corners " << ac);
    gstest::gradcheck(
        [ac](const std::vector<Tensor>& in) {
          return interpolate(in[0], {5, 4}, InterpolateMode::Bilinear, ac);
        },
        {x});
    gstest::gradcheck(
        [ac](const std::vector<Tensor>& in) {
          return interpolate(in[0], {2, 7}, InterpolateMode::Bilinear, ac);
        },
        {x});
  }
  gstest::gradcheck(
      [](const std::vector<Tensor>& in) { return interpolate_scale(in[0], 1.7, 0.6, InterpolateMode::Bilinear); }, {x});
  gstest::gradcheck(
      [](const std::vector<Tensor>& in) {
        return interpolate(in[0], {7, 3}, InterpolateMode::Nearest);
      },
      {x});
}

TEST_CASE("ops/interpolate: the backward is itself differentiable (gradgradcheck through a square)") {
  Tensor x = Tensor::randn({1, 2, 3, 4}, 32, {DType::f64});
  for (auto mode : {InterpolateMode::Bilinear, InterpolateMode::Nearest})
    gstest::gradgradcheck(
        [mode](const std::vector<Tensor>& in) {
          return square(interpolate(in[0], {5, 3}, mode));
        },
        {x});
}

TEST_CASE("ops/interpolate: kernels write every output element (NaN-poisoned outputs)") {
  gstest::for_each_device([](Device d) {
    for (auto mode : {backend::InterpMode::Bilinear, backend::InterpMode::Nearest})
      for (auto [ih, iw, oh, ow] : {std::array<int64_t, 4>{5, 7, 11, 3}, std::array<int64_t, 4>{9, 4, 2, 13}}) {
        backend::InterpParams p;
        p.planes = 3;
        p.in_h = ih, p.in_w = iw, p.out_h = oh, p.out_w = ow;
        p.mode = mode;
        Tensor x = Tensor::randn({3, ih, iw}, 1, {DType::f32, d});
        Tensor out = gstest::poison(Tensor::empty({3, oh, ow}, {DType::f32, d}));
        GS_DISPATCH(d, interpolate_fwd, backend::make_view(out), backend::make_view(x), p);
        Tensor gin = gstest::poison(Tensor::empty({3, ih, iw}, {DType::f32, d}));
        GS_DISPATCH(d, interpolate_bwd, backend::make_view(gin), backend::make_view(out), p);
        for (const Tensor& t : {out, gin})
          for (float e : t.to_vector<float>()) REQUIRE(!std::isnan(e));
      }
  });
}

TEST_CASE("ops/interpolate: CPU vs CUDA") {
  Tensor x = Tensor::randn({2, 3, 9, 7}, 33);
  for (bool ac : {false, true}) {
    gstest::expect_cpu_cuda_match(
        [ac](const std::vector<Tensor>& in) {
          return interpolate(in[0], {17, 4}, InterpolateMode::Bilinear, ac);
        },
        {x});
    gstest::expect_cpu_cuda_match(
        [ac](const std::vector<Tensor>& in) {
          return interpolate(in[0], {4, 20}, InterpolateMode::Bilinear, ac);
        },
        {x});
  }
  gstest::expect_cpu_cuda_match(
      [](const std::vector<Tensor>& in) { return interpolate_scale(in[0], 1.37, InterpolateMode::Bilinear); }, {x});
  gstest::expect_cpu_cuda_match(
      [](const std::vector<Tensor>& in) {
        return interpolate(in[0], {13, 5}, InterpolateMode::Nearest);
      },
      {x});
  gstest::expect_cpu_cuda_match(
      [](const std::vector<Tensor>& in) { return interpolate_scale(in[0], 0.45, 2.2, InterpolateMode::Nearest); }, {x});
}

TEST_CASE("ops/interpolate: bad arguments throw typed errors naming the op and values") {
  Tensor x = Tensor::randn({1, 2, 4, 4}, 1);
  GS_CHECK_THROWS_WITH(interpolate(x, {-3, 4}, InterpolateMode::Bilinear), ValueError, "interpolate", "[-3,4]");
  GS_CHECK_THROWS_WITH(interpolate(x, {0}, InterpolateMode::Nearest), ValueError, "interpolate", ">= 1", "[0]");
  GS_CHECK_THROWS_WITH(interpolate(x, {2, 2, 2}, InterpolateMode::Nearest), ValueError, "interpolate",
                       "1 or 2 entries");
  GS_CHECK_THROWS_WITH(interpolate_scale(x, -2.0, InterpolateMode::Bilinear), ValueError, "interpolate", "scale", "-2");
  GS_CHECK_THROWS_WITH(interpolate_scale(x, 0.1, InterpolateMode::Bilinear), ValueError, "interpolate",
                       "output size 0");
  GS_CHECK_THROWS_WITH(interpolate_scale(x, std::nan(""), InterpolateMode::Bilinear), ValueError, "interpolate",
                       "finite");
  GS_CHECK_THROWS_WITH(interpolate(x, {8, 8}, InterpolateMode::Nearest, true), ValueError, "interpolate",
                       "align_corners", "nearest");
  GS_CHECK_THROWS_WITH(interpolate(Tensor::randn({2, 4, 4}, 1), {8, 8}, InterpolateMode::Bilinear), ShapeError,
                       "interpolate", "4-D", "[2,4,4]");
  GS_CHECK_THROWS_WITH(interpolate(x.to(DType::i64), {8, 8}, InterpolateMode::Bilinear), DTypeError, "interpolate",
                       "int64");
}
