// perspective_warp: grid_sample fixtures (forward and input gradient), the homography solver
// against numpy, the random sampler (SPEC B.7 bounds, reproducibility, probability), float64
// gradient checks, the gather backward against a plain scatter (including the full-scan fallback),
// poisoned kernel outputs, errors, and bit-exact CPU vs CUDA (skipped visibly without a GPU).
#include <cmath>

#include "backend/perspective_warp_kernels.hpp"
#include "gradstyle/ops/perspective_warp.hpp"
#include "ops/kernel_fixture.hpp"
#include "support/harness.hpp"

using namespace gradstyle;

namespace {

// Independent scatter form of d<warp(x), g>/dx: every output pixel adds weight * g to its taps.
Tensor scatter_grad(const Tensor& g, const Tensor& H) {
  const int64_t B = g.size(0), C = g.size(1), Hh = g.size(2), W = g.size(3);
  auto gv = g.to_vector<double>(), hv = H.to_vector<double>();
  std::vector<double> dx(gv.size(), 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t oy = 0; oy < Hh; ++oy)
      for (int64_t ox = 0; ox < W; ++ox) {
        const double* h = hv.data() + 9 * b;
        const double u = (2.0 * double(ox) + 1.0) / double(W) - 1.0, v = (2.0 * double(oy) + 1.0) / double(Hh) - 1.0;
        const double w = h[6] * u + h[7] * v + h[8];
        const double ix = ((((h[0] * u + h[1] * v + h[2]) / w) + 1.0) * double(W) - 1.0) / 2.0;
        const double iy = ((((h[3] * u + h[4] * v + h[5]) / w) + 1.0) * double(Hh) - 1.0) / 2.0;
        if (!std::isfinite(ix) || !std::isfinite(iy) || std::abs(ix) > 1e6 || std::abs(iy) > 1e6) continue;
        const double x0 = std::floor(ix), y0 = std::floor(iy), fx = ix - x0, fy = iy - y0;
        for (int dy = 0; dy < 2; ++dy)
          for (int dxx = 0; dxx < 2; ++dxx) {
            const int64_t X = int64_t(x0) + dxx, Y = int64_t(y0) + dy;
            if (X < 0 || X >= W || Y < 0 || Y >= Hh) continue;
            const double wt = (dxx ? fx : 1 - fx) * (dy ? fy : 1 - fy);
            for (int64_t c = 0; c < C; ++c)
              dx[size_t(((b * C + c) * Hh + Y) * W + X)] += wt * gv[size_t(((b * C + c) * Hh + oy) * W + ox)];
          }
      }
  return Tensor::from_vector(dx, g.shape());
}

Tensor input_grad(const Tensor& x0, const Tensor& H, const Tensor& gy) {
  Tensor x = x0.detach().clone().requires_grad_();
  (perspective_warp(x, H) * gy).sum().backward();
  return x.grad();
}

}  // namespace

TEST_CASE("ops/perspective_warp: homography_from_corners agrees with numpy and maps the corners") {
  auto fx = gstest::load_kernel_fixture("warp_0");
  Tensor H = homography_from_corners(fx.get("corners"));
  GS_EXPECT_CLOSE(H, fx.get("H"), 1e-12, 1e-10);
  auto hv = H.to_vector<double>(), cv = fx.get("corners").to_vector<double>();
  const double src[4][2] = {{-1, -1}, {1, -1}, {1, 1}, {-1, 1}};
  for (int64_t b = 0; b < H.size(0); ++b)
    for (int k = 0; k < 4; ++k) {
      const double* h = hv.data() + 9 * b;
      const double u = cv[size_t(b * 8 + 2 * k)], v = cv[size_t(b * 8 + 2 * k + 1)];
      const double w = h[6] * u + h[7] * v + h[8];
      CHECK((h[0] * u + h[1] * v + h[2]) / w == doctest::Approx(src[k][0]).epsilon(1e-12));
      CHECK((h[3] * u + h[4] * v + h[5]) / w == doctest::Approx(src[k][1]).epsilon(1e-12));
    }
  GS_CHECK_THROWS_WITH(homography_from_corners(Tensor::zeros({1, 4, 2}, {DType::f64})), ValueError, "degenerate");
  GS_CHECK_THROWS_WITH(homography_from_corners(Tensor::zeros({1, 3, 2}, {DType::f64})), ShapeError, "[1,3,2]");
}

TEST_CASE("ops/perspective_warp: matches grid_sample on the homography grid (forward and gradient)") {
  std::vector<Tensor> xs, ys, gys, gxs;
  Tensor H;
  for (const char* name : {"warp_0", "warp_1", "warp_2", "warp_3"}) {
    auto fx = gstest::load_kernel_fixture(name);
    H = fx.get("H");
    CAPTURE(name);
    for (DType dt : {DType::f64, DType::f32}) {
      const double atol = dt == DType::f64 ? 1e-12 : 1e-5, rtol = dt == DType::f64 ? 1e-10 : 1e-4;
      Tensor x = fx.get("x", dt), gy = fx.get("gy", dt);
      GS_EXPECT_CLOSE(perspective_warp(x, H), fx.get("y", dt), atol, rtol);
      GS_EXPECT_CLOSE(input_grad(x, H, gy), fx.get("grad_x", dt), atol, rtol);
    }
    xs.push_back(fx.get("x"));
    ys.push_back(fx.get("y"));
    gys.push_back(fx.get("gy"));
    gxs.push_back(fx.get("grad_x"));
  }
  // all four maps (8, 16, 32 px and a non-square one) in one call with the shared homographies
  std::vector<Tensor> leaves;
  for (auto& x : xs) leaves.push_back(x.clone().requires_grad_());
  auto outs = perspective_warp(leaves, H);
  REQUIRE(outs.size() == 4);
  Tensor loss = Tensor::scalar(0.0, {DType::f64});
  for (size_t i = 0; i < 4; ++i) {
    GS_EXPECT_CLOSE(outs[i], ys[i], 1e-12, 1e-10);
    loss = loss + (outs[i] * gys[i]).sum();
  }
  loss.backward();
  for (size_t i = 0; i < 4; ++i) GS_EXPECT_CLOSE(leaves[i].grad(), gxs[i], 1e-12, 1e-10);
}

TEST_CASE("ops/perspective_warp: identity homography reproduces the input") {
  Tensor x = Tensor::randn({2, 3, 7, 9}, 5, {DType::f64});
  Tensor I = Tensor::zeros({2, 3, 3}, {DType::f64});
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t i = 0; i < 3; ++i) I.narrow(0, b, 1).narrow(1, i, 1).narrow(2, i, 1).fill_(1.0);
  GS_EXPECT_CLOSE(perspective_warp(x, I), x, 1e-14, 1e-13);
}

TEST_CASE("ops/perspective_warp: random sampler follows SPEC B.7 and is reproducible") {
  Generator g1(99), g2(99);
  Tensor c1 = random_warp_corners(64, g1, {.distortion = 0.15, .prob = 1.0});
  Tensor c2 = random_warp_corners(64, g2, {.distortion = 0.15, .prob = 1.0});
  CHECK(g1.offset() == 9 * 64);
  GS_EXPECT_CLOSE(c1, c2, 0, 0);
  Tensor c3 = random_warp_corners(64, g1, {.distortion = 0.15, .prob = 1.0});  // next draw differs
  CHECK(amax((c3 - c1).abs()).item() > 0.01);
  // bounds: each coordinate moves inward by at most d, continuously (not in whole pixels)
  auto cv = c1.to_vector<double>();
  const double src[8] = {-1, -1, 1, -1, 1, 1, -1, 1};
  double max_move = 0, min_move = 1;
  for (size_t i = 0; i < cv.size(); ++i) {
    const double s = src[i % 8], move = (cv[i] - s) * -s;  // inward displacement >= 0
    CHECK(move >= 0.0);
    CHECK(move <= 0.15 + 1e-15);
    max_move = std::max(max_move, move);
    min_move = std::min(min_move, move);
  }
  CHECK(max_move > 0.14);
  CHECK(min_move < 0.01);
  // probability: prob = 0 gives exact identities; prob = 0.5 warps roughly half of 400 samples
  Generator g3(5);
  Tensor id = random_homographies(8, g3, {.distortion = 0.15, .prob = 0.0});
  for (int64_t b = 0; b < 8; ++b)
    GS_EXPECT_CLOSE(id.narrow(0, b, 1).reshape({3, 3}),
                    Tensor::from_vector<double>({1, 0, 0, 0, 1, 0, 0, 0, 1}, {3, 3}), 0, 0);
  Generator g4(6);
  Tensor half = random_warp_corners(400, g4, {.distortion = 0.15, .prob = 0.5});
  auto hv = half.to_vector<double>();
  int warped = 0;
  for (int64_t b = 0; b < 400; ++b) warped += hv[size_t(b * 8)] != -1.0;
  CHECK(warped > 160);
  CHECK(warped < 240);
  GS_CHECK_THROWS_WITH(random_warp_corners(2, g4, {.distortion = 1.5}), ValueError, "distortion");
  GS_CHECK_THROWS_WITH(random_warp_corners(2, g4, {.prob = 2.0}), ValueError, "prob");
}

TEST_CASE("ops/perspective_warp: the default distortion really warps an 8x8 map") {
  // torchvision's RandomPerspective is the identity at 8x8 with d = 0.15 (SPEC B.7 pitfall).
  Generator gen(2024);
  Tensor H = random_homographies(4, gen, {.prob = 1.0});
  Tensor x = Tensor::randn({4, 2, 8, 8}, 3, {DType::f64});
  Tensor y = perspective_warp(x, H);
  for (int64_t b = 0; b < 4; ++b) CHECK(amax((y.narrow(0, b, 1) - x.narrow(0, b, 1)).abs()).item() > 0.05);
}

TEST_CASE("ops/perspective_warp: float64 gradcheck and gradgradcheck") {
  Generator gen(7);
  Tensor H = random_homographies(2, gen, {.distortion = 0.4, .prob = 1.0});
  Tensor x = Tensor::randn({2, 2, 5, 6}, 8, {DType::f64});
  gstest::Fn f = [H](const std::vector<Tensor>& a) { return perspective_warp(a[0], H); };
  gstest::gradcheck(f, {x});
  gstest::gradgradcheck(f, {x});
}

TEST_CASE("ops/perspective_warp: the gather backward equals a plain scatter, also across the vanishing line") {
  Generator gen(11);
  Tensor Hr = random_homographies(3, gen, {.distortion = 0.45, .prob = 1.0});
  // strong perspective: w = 1.6 u + 0.5 v + 1 changes sign inside the map (full-scan fallback),
  // plus a zoom-out whose samples leave the map on every side.
  Tensor Hs = Tensor::from_vector<double>({1, 0.2, 0, 0.1, 1, 0, 1.6, 0.5, 1, 2.5, 0, 0.3, 0, 2.5, -0.2, 0, 0, 1},
                                          {2, 3, 3});
  for (const Tensor& H : {Hr, Hs}) {
    const int64_t B = H.size(0);
    Tensor x = Tensor::randn({B, 3, 11, 13}, 12, {DType::f64}), gy = Tensor::randn({B, 3, 11, 13}, 13, {DType::f64});
    GS_EXPECT_CLOSE(input_grad(x, H, gy), scatter_grad(gy, H), 1e-12, 1e-10);
  }
}

TEST_CASE("ops/perspective_warp: kernels overwrite NaN-poisoned outputs") {
  gstest::for_each_device([](Device dev) {
    CAPTURE(dev.str());
    Generator gen(17);
    Tensor H = random_homographies(2, gen, {.prob = 1.0}).reshape({2, 9});
    Tensor x8 = Tensor::randn({2, 9, 8, 8}, 18, {DType::f32, dev}), x16 = Tensor::randn({2, 3, 16, 16}, 19, {DType::f32, dev});
    Tensor y8 = gstest::poison(Tensor::empty(x8.shape(), {DType::f32, dev}));
    Tensor y16 = gstest::poison(Tensor::empty(x16.shape(), {DType::f32, dev}));
    backend::WarpLevels lv;
    lv.n = 2;
    lv.src[0] = x8.raw_data(), lv.dst[0] = y8.raw_data(), lv.C[0] = 9, lv.H[0] = 8, lv.W[0] = 8;
    lv.src[1] = x16.raw_data(), lv.dst[1] = y16.raw_data(), lv.C[1] = 3, lv.H[1] = 16, lv.W[1] = 16;
    Tensor hd = H.to(dev);
    GS_DISPATCH(dev, perspective_warp_forward, lv, backend::make_view(hd), 2, DType::f32);
    Tensor H3 = H.reshape({2, 3, 3});
    GS_EXPECT_CLOSE(y8.cpu(), perspective_warp(x8.cpu(), H3), 0, 0);
    GS_EXPECT_CLOSE(y16.cpu(), perspective_warp(x16.cpu(), H3), 0, 0);
  });
}

TEST_CASE("ops/perspective_warp: errors") {
  Tensor x = Tensor::randn({2, 3, 8, 8}, 1);
  Tensor H = Tensor::zeros({2, 3, 3});
  Generator gen(1);
  Tensor Hg = random_homographies(2, gen);
  GS_CHECK_THROWS_WITH(perspective_warp(x, Tensor::zeros({3, 3, 3})), ShapeError, "perspective_warp", "[3,3,3]");
  GS_CHECK_THROWS_WITH(perspective_warp(x.reshape({6, 8, 8}), Hg), ShapeError, "[B, C, H, W]");
  GS_CHECK_THROWS_WITH(perspective_warp(x, H), ValueError, "singular");
  GS_CHECK_THROWS_WITH(perspective_warp(std::vector<Tensor>{x, Tensor::randn({3, 3, 8, 8}, 2)}, Hg), ShapeError,
                       "batch");
  GS_CHECK_THROWS_WITH(perspective_warp(std::vector<Tensor>{x, Tensor::randn({2, 3, 4, 4}, 2, {DType::f64})}, Hg),
                       DTypeError, "dtype");
  Tensor Hr = Hg.clone().requires_grad_();
  GS_CHECK_THROWS_WITH(perspective_warp(x, Hr), AutogradError, "no gradient with respect to H");
  GS_CHECK_THROWS_WITH(perspective_warp(Tensor::zeros({2, 3, 8, 8}, {DType::i32}), Hg), DTypeError,
                       "perspective_warp");
}

TEST_CASE("ops/perspective_warp: CPU and CUDA agree bit for bit (forward and gradient)") {
  if (!cuda_available()) {
    MESSAGE("CPU-vs-CUDA comparison skipped: " << std::string(cuda_built() ? "no GPU present" : "built without CUDA"));
    return;
  }
  Generator gen(31);
  Tensor H = random_homographies(8, gen);
  for (DType dt : {DType::f32, DType::f64}) {
    // the model's three scales at batch 8 (channels reduced) and an odd-sized map, warped together
    std::vector<Tensor> xs, gys, xg;
    for (Shape s : {Shape{8, 16, 8, 8}, Shape{8, 16, 16, 16}, Shape{8, 9, 32, 32}, Shape{8, 5, 13, 7}}) {
      xs.push_back(Tensor::randn(s, 32, {dt}));
      gys.push_back(Tensor::randn(s, 33, {dt}));
      xg.push_back(xs.back().to(Device::cuda()).requires_grad_());
    }
    auto yc = perspective_warp(xs, H), yg = perspective_warp(xg, H);
    Tensor loss = Tensor::scalar(0.0, {dt, Device::cuda()});
    for (size_t i = 0; i < xs.size(); ++i) {
      GS_EXPECT_CLOSE(yg[i].cpu(), yc[i], 0, 0);
      loss = loss + (yg[i] * gys[i].to(Device::cuda())).sum();
    }
    loss.backward();
    for (size_t i = 0; i < xs.size(); ++i) GS_EXPECT_CLOSE(xg[i].grad().cpu(), input_grad(xs[i], H, gys[i]), 0, 0);
    gstest::expect_cpu_cuda_match([H](const std::vector<Tensor>& a) { return perspective_warp(a[0], H); }, {xs[2]},
                                  {1e-6, 1e-5});
  }
}
