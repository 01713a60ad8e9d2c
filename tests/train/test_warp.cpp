// warp_impl = torchvision (train/warp.hpp): the warp equals torchvision's perspective on feature
// maps for fixed end corners (tests/golden/train/warp_torchvision.pt, tools/reference/
// make_warp_fixtures.py), the sampler draws RandomPerspective's integer corners (the identity on
// 8 x 8, at most int(0.15 * size / 2) px inward otherwise, one warp per batch), and the trainer
// takes the option only per stage.
#include <cmath>

#include "gradstyle/io/tensor_bridge.hpp"
#include "gradstyle/ops/perspective_warp.hpp"
#include "gradstyle/train/config.hpp"
#include "gradstyle/train/trainer.hpp"
#include "gradstyle/train/warp.hpp"
#include "models/gradstyle_fixture.hpp"

using namespace gradstyle;
using namespace gradstyle::train;
namespace gsn = gradstyle::models::gsnet;

namespace {

// torchvision's corner coordinates: p with normalised 2p / n - 1 (pixel i's centre is p = i + 0.5).
double to_pixel(double xn, int64_t n) { return (xn + 1) * double(n) / 2; }

// The end corners (pixels) of a homography: H maps end -> start, so the ends are H^-1 (start).
std::vector<double> end_corners(const std::vector<double>& h, int64_t H, int64_t W) {
  // 3 x 3 inverse by cofactors
  const double a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7], l = h[8];
  const double det = a * (e * l - f * k) - b * (d * l - f * g) + c * (d * k - e * g);
  const double inv[9] = {(e * l - f * k) / det, (c * k - b * l) / det, (b * f - c * e) / det,
                         (f * g - d * l) / det, (a * l - c * g) / det, (c * d - a * f) / det,
                         (d * k - e * g) / det, (b * g - a * k) / det, (a * e - b * d) / det};
  const double sx[4] = {0, double(W - 1), double(W - 1), 0}, sy[4] = {0, 0, double(H - 1), double(H - 1)};
  std::vector<double> out;
  for (int q = 0; q < 4; ++q) {
    const double u = 2 * sx[q] / double(W) - 1, v = 2 * sy[q] / double(H) - 1;
    const double x = inv[0] * u + inv[1] * v + inv[2], y = inv[3] * u + inv[4] * v + inv[5],
                 w = inv[6] * u + inv[7] * v + inv[8];
    out.push_back(to_pixel(x / w, W));
    out.push_back(to_pixel(y / w, H));
  }
  return out;
}

}  // namespace

TEST_CASE("train/warp: torchvision_homography warps feature maps as torchvision's perspective") {
  const auto fx = io::load_state_dict_tensors(std::string(GS_SOURCE_ROOT) + "/tests/golden/train/warp_torchvision.pt");
  for (int i = 0; i < 4; ++i) {
    CAPTURE(i);
    const Tensor x = fx.at("x_" + std::to_string(i)).to(DType::f64);
    const std::vector<double> ends = fx.at("ends_" + std::to_string(i)).to_vector<double>();
    const Tensor H = torchvision_homography(x.size(2), x.size(3), ends.data());
    const Tensor Hb = cat({H, H}, 0);
    // torchvision solves its coefficients in float32 (linalg.lstsq on float tensors): its own outputs
    // are off by up to 2.5e-5 from the exact warp; a wrong convention is off by ~0.1.
    GS_EXPECT_CLOSE(perspective_warp(x, Hb), fx.at("out_" + std::to_string(i)), 1e-4, 0);
    const std::vector<double> back = end_corners(H.to_vector<double>(), x.size(2), x.size(3));
    for (size_t k = 0; k < 8; ++k) CHECK(back[k] == doctest::Approx(ends[k]).epsilon(1e-9));
  }
}

TEST_CASE("train/warp: RandomPerspective's draws: identity at 8 x 8, integer corners, one warp per batch") {
  Generator gen(5);
  RandomHomographyOptions o;  // d = 0.15, p = 0.9
  for (int t = 0; t < 20; ++t) {
    const uint64_t before = gen.offset();
    const std::vector<double> h = torchvision_perspective_homographies(3, 8, 8, gen, o).to_vector<double>();
    CHECK(gen.offset() == before + 9);
    for (int r = 0; r < 3; ++r)
      for (int k = 0; k < 9; ++k) CHECK(h[size_t(9 * r + k)] == doctest::Approx(k % 4 == 0 ? 1.0 : 0.0).epsilon(1e-12));
  }
  int moved = 0;
  for (int t = 0; t < 40; ++t) {
    const std::vector<double> h = torchvision_perspective_homographies(2, 32, 32, gen, o).to_vector<double>();
    for (int k = 0; k < 9; ++k) CHECK(h[size_t(k)] == h[size_t(9 + k)]);  // one warp for the batch
    const std::vector<double> e = end_corners(std::vector<double>(h.begin(), h.begin() + 9), 32, 32);
    const double start[8] = {0, 0, 31, 0, 31, 31, 0, 31};
    bool any = false;
    for (int k = 0; k < 8; ++k) {
      CHECK(std::abs(e[size_t(k)] - std::round(e[size_t(k)])) < 1e-8);  // integer corners
      const double inward = std::abs(e[size_t(k)] - start[k]);
      CHECK(inward <= 2 + 1e-8);  // int(0.15 * 16) = 2
      any = any || inward > 0.5;
    }
    moved += any;
  }
  CHECK(moved > 20);  // p = 0.9, and most draws move some corner
  o.prob = 0;
  const std::vector<double> id = torchvision_perspective_homographies(1, 32, 32, gen, o).to_vector<double>();
  for (int k = 0; k < 9; ++k) CHECK(id[size_t(k)] == doctest::Approx(k % 4 == 0 ? 1.0 : 0.0).epsilon(1e-12));
  CHECK_THROWS_AS(torchvision_perspective_homographies(1, 1, 8, gen, o), ValueError);
}

TEST_CASE("train/warp: the trainer takes warp_impl = torchvision per stage only") {
  const auto keys = gsn::GradStyleConfig::keys();
  CHECK_THROWS_WITH_AS(TrainConfig::parse(R"({"warp_impl": "torchvision"})", keys),
                       doctest::Contains("warp_shared_across_stages = false"), ValueError);
  const TrainConfig c =
      TrainConfig::parse(R"({"warp_impl": "torchvision", "warp_shared_across_stages": false})", keys);
  CHECK(c.warp_impl == "torchvision");
  CHECK_THROWS_AS(TrainConfig::parse(R"({"warp_impl": "kornia"})", keys), ValueError);
}

TEST_CASE("train/warp: a training step with warp_impl = torchvision warps each stage's residual") {
  const std::string j = R"({"batch": 2, "lambda_lpips": 0, "lambda_id": 0, "lambda_adv": 0, "loss_resolution": 32,
                            "seed": 3, "data_source": "generator", "warp_impl": "torchvision",
                            "warp_shared_across_stages": false, "warp_prob": 1.0})";
  const TrainConfig cfg = TrainConfig::parse(j, gsn::GradStyleConfig::keys());
  Networks n;
  n.G = gstest_gs::tiny_generator(5);
  n.E = models::e4e::Encoder4Editing::from_checkpoint(std::string(GS_SOURCE_ROOT) + "/tests/golden/encoders/e4e_tiny.pt");
  auto data = generator_source(*n.G, cfg.loss_resolution);
  Trainer t(cfg, gstest_gs::tiny_config(), std::move(n), std::move(data));
  const StepLog a = t.step();
  CHECK(std::isfinite(a.terms.at("aligner")));
  CHECK(std::isfinite(a.terms.at("total")));
}
