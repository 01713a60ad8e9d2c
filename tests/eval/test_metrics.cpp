// Image metrics against an independent numpy reference (tools/reference/ssim_ref.py: a direct 2-D
// window, not our separable filter) and their defining properties.
#include <doctest/doctest.h>

#include <cmath>

#include "gradstyle/core/error.hpp"
#include "gradstyle/eval/metrics.hpp"

using namespace gradstyle;

namespace {

// The images of ssim_ref.py, [1, 3, 30, 32] float32 in [-1, 1].
std::pair<Tensor, Tensor> ref_images() {
  const int H = 30, W = 32;
  std::vector<float> x, y;
  for (int c = 0; c < 3; ++c)
    for (int i = 0; i < H; ++i)
      for (int j = 0; j < W; ++j) x.push_back(float(std::sin(0.3 * i + 0.2 * j + c)));
  for (int c = 0; c < 3; ++c)
    for (int i = 0; i < H; ++i)
      for (int j = 0; j < W; ++j)
        y.push_back(float(0.8 * std::sin(0.3 * i + 0.2 * j + c) + 0.15 * std::cos(0.5 * i * j / 16.0 + c)));
  return {Tensor::from_vector<float>(x, {1, 3, H, W}), Tensor::from_vector<float>(y, {1, 3, H, W})};
}

}  // namespace

TEST_CASE("metrics: l2, psnr and ssim match the numpy reference (SPEC D.2 definitions)") {
  auto [x, y] = ref_images();
  CHECK(eval::l2(x, y)[0] == doctest::Approx(0.0253609010213).epsilon(1e-6));
  CHECK(eval::psnr(x, y)[0] == doctest::Approx(21.9789531224).epsilon(1e-6));
  CHECK(eval::ssim(x, y)[0] == doctest::Approx(0.974092114903).epsilon(1e-9));
}

TEST_CASE("metrics: quantize_u8 is what a PNG stores") {
  Tensor x = Tensor::from_vector<float>({-1.5f, -1.0f, 0.0f, 0.5f, 1.0f, 2.0f}, {1, 1, 2, 3});
  auto q = eval::quantize_u8(x).to_vector<float>();
  CHECK(q[0] == -1.0f);
  CHECK(q[1] == -1.0f);
  CHECK(q[2] == doctest::Approx(128.0 / 255.0 * 2 - 1));  // round(127.5) = 128
  CHECK(q[3] == doctest::Approx(191.0 / 255.0 * 2 - 1));  // round(191.25)
  CHECK(q[4] == 1.0f);
  CHECK(q[5] == 1.0f);
}

TEST_CASE("metrics: identity, symmetry, per-image results, errors") {
  auto [x, y] = ref_images();
  CHECK(eval::ssim(x, x)[0] == doctest::Approx(1.0).epsilon(1e-12));
  CHECK(eval::l2(x, x)[0] == 0.0);
  CHECK(eval::psnr(x, x)[0] == 100.0);
  CHECK(eval::ssim(x, y)[0] == doctest::Approx(eval::ssim(y, x)[0]).epsilon(1e-12));
  // A worse copy scores lower on every metric.
  Tensor z = Tensor::from_vector<float>(std::vector<float>(size_t(x.numel()), 0.0f), x.shape());
  CHECK(eval::ssim(x, z)[0] < eval::ssim(x, y)[0]);
  CHECK(eval::psnr(x, z)[0] < eval::psnr(x, y)[0]);
  // Two images in one batch: one result each, each equal to its own single-image value.
  Tensor xx = Tensor::from_vector<float>([&] {
    auto a = x.to_vector<float>(), b = y.to_vector<float>();
    a.insert(a.end(), b.begin(), b.end());
    return a;
  }(), {2, 3, 30, 32});
  Tensor yy = Tensor::from_vector<float>([&] {
    auto a = y.to_vector<float>(), b = y.to_vector<float>();
    a.insert(a.end(), b.begin(), b.end());
    return a;
  }(), {2, 3, 30, 32});
  auto s = eval::ssim(xx, yy);
  REQUIRE(s.size() == 2);
  CHECK(s[0] == doctest::Approx(eval::ssim(x, y)[0]));
  CHECK(s[1] == doctest::Approx(1.0));
  CHECK(eval::mean_of(s) == doctest::Approx((s[0] + s[1]) / 2));
  CHECK_THROWS_AS(eval::l2(x, xx), ShapeError);
  Tensor small = Tensor::from_vector<float>(std::vector<float>(3 * 16 * 16, 0.0f), {1, 3, 16, 16});
  CHECK_THROWS_AS(eval::ssim(small, small), ShapeError);
}
