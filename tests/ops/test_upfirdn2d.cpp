// upfirdn2d: PyTorch fixtures (NVIDIA's reference semantics), a step-by-step float64 reference
// (zero-insert, pad/crop, true convolution, decimate) on random parameters, closed-form values,
// first/second-order gradient checks, NaN-poisoned kernel output, errors, CPU vs CUDA.
#include "backend/upfirdn2d_kernels.hpp"
#include "conv_golden.hpp"
#include "gradstyle/ops/upfirdn2d.hpp"
#include "support/harness.hpp"

using namespace gradstyle;

namespace {

// The four steps of the definition, literally, on float64 vectors.
Tensor reference(const Tensor& x, const Tensor& f2d, const UpFirDn2dOptions& o) {
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t kh = f2d.size(0), kw = f2d.size(1);
  auto xv = x.to_vector<double>(), fv = f2d.to_vector<double>();
  // 1. zero-insert
  const int64_t UH = H * o.up_y, UW = W * o.up_x;
  // 2. pad / crop: P[p][q] = U[p - pad_y0][q - pad_x0]
  const int64_t PH = UH + o.pad_y0 + o.pad_y1, PW = UW + o.pad_x0 + o.pad_x1;
  // 3. valid true convolution: full[i][j] = sum P[i + a][j + b] * f[kh-1-a][kw-1-b] (flip_filter: f[a][b])
  // 4. decimate
  const int64_t OH = (PH - kh) / o.down_y + 1, OW = (PW - kw) / o.down_x + 1;
  std::vector<double> y(size_t(N * C * OH * OW), 0.0);
  auto U = [&](int64_t plane, int64_t u, int64_t v) -> double {
    if (u < 0 || v < 0 || u >= UH || v >= UW || u % o.up_y || v % o.up_x) return 0.0;
    return xv[size_t((plane * H + u / o.up_y) * W + v / o.up_x)];
  };
  for (int64_t p = 0; p < N * C; ++p)
    for (int64_t oy = 0; oy < OH; ++oy)
      for (int64_t ox = 0; ox < OW; ++ox) {
        double acc = 0;
        const int64_t i = oy * o.down_y, j = ox * o.down_x;
        for (int64_t a = 0; a < kh; ++a)
          for (int64_t b = 0; b < kw; ++b) {
            double fk = o.flip_filter ? fv[size_t(a * kw + b)] : fv[size_t((kh - 1 - a) * kw + (kw - 1 - b))];
            acc += U(p, i + a - o.pad_y0, j + b - o.pad_x0) * fk;
          }
        y[size_t((p * OH + oy) * OW + ox)] = acc * o.gain;
      }
  return Tensor::from_vector(y, {N, C, OH, OW});
}

UpFirDn2dOptions options_from(const nlohmann::json& p) {
  UpFirDn2dOptions o;
  o.up_x = p["up"][0], o.up_y = p["up"][1], o.down_x = p["down"][0], o.down_y = p["down"][1];
  o.pad_x0 = p["pad"][0], o.pad_x1 = p["pad"][1], o.pad_y0 = p["pad"][2], o.pad_y1 = p["pad"][3];
  o.flip_filter = p["flip_filter"];
  o.gain = p["gain"];
  return o;
}

Tensor blur_kernel(DType dt = DType::f32) {
  Tensor k = Tensor::from_vector<double>({1, 3, 3, 1}, {4}).to(dt);
  return mul_scalar(mul(reshape(k, {4, 1}), reshape(k, {1, 4})), 1.0 / 64.0);
}

}  // namespace

TEST_CASE("ops/upfirdn2d: matches PyTorch fixtures (float32 and float64)") {
  for (const auto& c : gstest::conv_golden::load("upfirdn2d")) {
    for (DType dt : {DType::f32, DType::f64}) {
      INFO("fixture " << c.name << " as " << std::string(dtype_name(dt)));
      UpFirDn2dOptions o = options_from(c.params);
      Tensor x = c.at("x").to(dt).clone().requires_grad_();
      Tensor y = upfirdn2d(x, c.at("f").to(dt), o);
      const double atol = dt == DType::f32 ? 1e-5 : 1e-6, rtol = dt == DType::f32 ? 1e-5 : 1e-6;
      GS_EXPECT_CLOSE(y, c.at("y"), atol, rtol);
      y.backward(c.at("gy").to(dt));
      GS_EXPECT_CLOSE(x.grad(), c.at("gx"), atol, rtol);
    }
  }
}

TEST_CASE("ops/upfirdn2d: matches the step-by-step definition on random parameters") {
  Generator gen(7);
  for (int trial = 0; trial < 40; ++trial) {
    auto r = [&](int64_t lo, int64_t hi) { return lo + int64_t(Tensor::rand({1}, gen, {DType::f64}).item() * double(hi - lo + 1) - 1e-9); };
    UpFirDn2dOptions o;
    o.up_x = r(1, 3), o.up_y = r(1, 3), o.down_x = r(1, 3), o.down_y = r(1, 3);
    o.pad_x0 = r(-2, 4), o.pad_x1 = r(-2, 4), o.pad_y0 = r(-2, 4), o.pad_y1 = r(-2, 4);
    o.flip_filter = r(0, 1) == 1;
    o.gain = 0.5 + double(r(0, 3));
    const int64_t kh = r(1, 5), kw = r(1, 5), H = r(2, 7), W = r(2, 7);
    if (H * o.up_y + o.pad_y0 + o.pad_y1 < kh || W * o.up_x + o.pad_x0 + o.pad_x1 < kw) continue;
    Tensor x = Tensor::randn({2, 2, H, W}, gen, {DType::f64});
    Tensor f = Tensor::randn({kh, kw}, gen, {DType::f64});
    INFO("trial " << trial << ": H " << H << " W " << W << " k " << kh << "x" << kw << " up " << o.up_x << "," << o.up_y
                  << " down " << o.down_x << "," << o.down_y << " pad " << o.pad_x0 << "," << o.pad_x1 << ","
                  << o.pad_y0 << "," << o.pad_y1 << " flip " << o.flip_filter);
    GS_EXPECT_CLOSE(upfirdn2d(x, f, o), reference(x, f, o), 1e-12, 1e-12);
    // float32 through the same kernels
    GS_EXPECT_CLOSE(upfirdn2d(x.to(DType::f32), f.to(DType::f32), o), reference(x, f, o), 1e-5, 1e-5);
  }
}

TEST_CASE("ops/upfirdn2d: closed-form values of the StyleGAN2 filters") {
  // A constant image stays constant away from the borders: the blur kernel sums to 1, and the
  // ToRGB upsampler (kernel*4, up 2) puts 4 taps of total weight 1 on each output sample.
  Tensor ones = Tensor::ones({1, 1, 6, 6});
  Tensor up = upfirdn2d(ones, mul_scalar(blur_kernel(), 4.0), 2, 1, {2, 1, 2, 1});
  REQUIRE(up.shape() == Shape{1, 1, 12, 12});
  GS_EXPECT_CLOSE(narrow(narrow(up, 2, 2, 8), 3, 2, 8), Tensor::ones({1, 1, 8, 8}), 1e-6, 0);
  // Corner of the upsampled image: only tap (2, 2) of k*4 lands on a real sample (x[0][0]),
  // so out[0][0] = (3*3)/64*4 = 9/16.
  CHECK(up.to_vector<double>()[0] == doctest::Approx(9.0 / 16.0));
  Tensor blur = upfirdn2d(ones, blur_kernel(), 1, 1, {1, 1, 1, 1});
  REQUIRE(blur.shape() == Shape{1, 1, 5, 5});
  CHECK(blur.to_vector<double>()[12] == doctest::Approx(1.0));
  // A true convolution of an impulse reproduces the filter; a correlation (flip_filter) flips it.
  Tensor imp = Tensor::zeros({1, 1, 3, 3});
  imp.copy_(Tensor::from_vector<float>({0, 0, 0, 0, 1, 0, 0, 0, 0}, {1, 1, 3, 3}));
  Tensor f = Tensor::from_vector<float>({1, 2, 3, 4, 5, 6, 7, 8, 9}, {3, 3});
  GS_EXPECT_CLOSE(upfirdn2d(imp, f, 1, 1, {1, 1, 1, 1}), reshape(f, {1, 1, 3, 3}), 0, 0);
  GS_EXPECT_CLOSE(upfirdn2d(imp, f, 1, 1, {1, 1, 1, 1}, true), reshape(flip(f, {0, 1}), {1, 1, 3, 3}), 0, 0);
  // A separable 1-D filter equals its outer product.
  Tensor k1 = Tensor::from_vector<float>({1, 2, 4}, {3});
  Tensor x = Tensor::randn({1, 2, 5, 4}, 3);
  GS_EXPECT_CLOSE(upfirdn2d(x, k1, 2, 1, {1, 1, 2, 0}, false, 3.0),
                  upfirdn2d(x, mul(reshape(k1, {3, 1}), reshape(k1, {1, 3})), 2, 1, {1, 1, 2, 0}, false, 3.0), 1e-6,
                  1e-6);
}

TEST_CASE("ops/upfirdn2d: first- and second-order gradient checks (float64)") {
  Tensor f = Tensor::randn({3, 4}, 5, {DType::f64});
  struct Cfg {
    const char* what;
    UpFirDn2dOptions o;
  };
  for (const Cfg& c : {Cfg{"up 2, pad (2,1)", {.up_x = 2, .up_y = 2, .pad_x0 = 2, .pad_x1 = 1, .pad_y0 = 2, .pad_y1 = 1}},
                       Cfg{"down 2 with crop", {.down_x = 2, .down_y = 2, .pad_x0 = -1, .pad_x1 = 2, .pad_y0 = 1, .pad_y1 = 0}},
                       Cfg{"up 3x1, down 1x2, flip", {.up_x = 3, .down_y = 2, .pad_x0 = 1, .pad_x1 = 1, .pad_y0 = 2, .pad_y1 = 2, .flip_filter = true, .gain = 2.0}}}) {
    INFO(c.what);
    UpFirDn2dOptions o = c.o;
    gstest::Fn fn = [f, o](const std::vector<Tensor>& v) { return upfirdn2d(v[0], f, o); };
    Tensor x = Tensor::randn({2, 2, 5, 6}, 6, {DType::f64});
    gstest::gradcheck(fn, {x});
    // Second order: upfirdn2d is linear, so compose with a square to give it a non-zero Hessian.
    gstest::Fn sq = [f, o](const std::vector<Tensor>& v) { return square(upfirdn2d(square(v[0]), f, o)); };
    gstest::gradgradcheck(sq, {x});
  }
}

TEST_CASE("ops/upfirdn2d: the kernel overwrites every output element (NaN-poisoned output)") {
  backend::UpFirDnGeom g;
  g.planes = 3, g.h = 5, g.w = 4, g.up_x = 2, g.up_y = 1, g.down_x = 1, g.down_y = 2;
  g.pad_x0 = 2, g.pad_x1 = 1, g.pad_y0 = 1, g.pad_y1 = 2, g.kh = 3, g.kw = 2;
  g.oh = (g.h * g.up_y + g.pad_y0 + g.pad_y1 - g.kh) / g.down_y + 1;
  g.ow = (g.w * g.up_x + g.pad_x0 + g.pad_x1 - g.kw) / g.down_x + 1;
  for (DType dt : {DType::f32, DType::f64}) {
    Tensor x = Tensor::randn({1, 3, 5, 4}, 8, {dt}), f = Tensor::randn({3, 2}, 9, {dt});
    Tensor y = gstest::poison(Tensor::empty({1, 3, g.oh, g.ow}, {dt}));
    cpu::upfirdn2d(g, backend::make_view(y), backend::make_view(x), backend::make_view(f));
    UpFirDn2dOptions o{.up_x = 2, .down_y = 2, .pad_x0 = 2, .pad_x1 = 1, .pad_y0 = 1, .pad_y1 = 2, .flip_filter = true};
    GS_EXPECT_CLOSE(y, reference(x, f, o), 1e-5, 1e-5);
  }
}

TEST_CASE("ops/upfirdn2d: bad arguments throw clear errors") {
  Tensor x = Tensor::randn({1, 2, 4, 4}, 1);
  GS_CHECK_THROWS_WITH(upfirdn2d(x, Tensor::ones({6, 6}), 1, 1, {0, 0, 0, 0}), ShapeError, "upfirdn2d",
                       "larger than the padded upsampled input", "[1,2,4,4]");
  GS_CHECK_THROWS_WITH(upfirdn2d(x, Tensor::ones({3, 3}), 1, 1, {-1, -1, 0, 0}), ShapeError, "filter 3x3");
  GS_CHECK_THROWS_WITH(upfirdn2d(x, Tensor::ones({3, 3}), 0, 1, {0, 0, 0, 0}), ValueError, "upfirdn2d",
                       "must be >= 1");
  GS_CHECK_THROWS_WITH(upfirdn2d(Tensor::ones({2, 4, 4}), Tensor::ones({3, 3}), 1, 1, {0, 0, 0, 0}), ShapeError,
                       "4-D input");
  GS_CHECK_THROWS_WITH(upfirdn2d(x, Tensor::ones({1, 3, 3}), 1, 1, {0, 0, 0, 0}), ShapeError, "1-D (separable) or 2-D");
  GS_CHECK_THROWS_WITH(upfirdn2d(x, Tensor::ones({3, 3}, {DType::f64}), 1, 1, {1, 1, 1, 1}), DTypeError, "upfirdn2d");
  Tensor fg = Tensor::ones({3, 3}).requires_grad_();
  GS_CHECK_THROWS_WITH(upfirdn2d(x, fg, 1, 1, {1, 1, 1, 1}), AutogradError, "upfirdn2d", "filter is a constant");
}

TEST_CASE("ops/upfirdn2d: CPU and CUDA agree") {
  Tensor x = Tensor::randn({2, 3, 9, 7}, 11);
  for (int up : {1, 2}) {
    Tensor f = mul_scalar(blur_kernel(), double(up * up));
    gstest::expect_cpu_cuda_match(
        [f, up](const std::vector<Tensor>& v) { return upfirdn2d(v[0], f.to(v[0].device()), up, 1, {2, 1, 2, 1}); }, {x},
        {1e-5, 1e-5});
  }
  Tensor fa = Tensor::randn({3, 2}, 12);
  gstest::expect_cpu_cuda_match(
      [fa](const std::vector<Tensor>& v) {
        return upfirdn2d(v[0], fa.to(v[0].device()),
                         {.up_x = 3, .up_y = 2, .down_x = 2, .down_y = 3, .pad_x0 = -1, .pad_x1 = 2, .pad_y0 = 3, .pad_y1 = -1});
      },
      {x}, {1e-5, 1e-5});
}
