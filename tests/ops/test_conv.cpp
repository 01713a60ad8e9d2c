// conv2d / conv_transpose2d / conv2d_input_grad / conv2d_weight_grad: direct float64 reference
// at several thread counts (exercises every tiling path), PyTorch fixtures, first- and
// second-order gradient checks, NaN-poisoned kernel outputs, errors, CPU vs CUDA.
#include <omp.h>

#include "backend/conv_kernels.hpp"
#include "conv_golden.hpp"
#include "gradstyle/ops/conv.hpp"
#include "support/harness.hpp"

using namespace gradstyle;

namespace {

struct Geo {
  int64_t n, c, h, w, k, r, s;
  Conv2dOptions o;
};

int64_t out_size(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d) { return (in + 2 * p - d * (k - 1) - 1) / s + 1; }

// The three conv maps written as plain loops over the defining formula (float64).
struct Direct {
  Geo g;
  int64_t oh, ow;
  explicit Direct(const Geo& geo)
      : g(geo),
        oh(out_size(geo.h, geo.r, geo.o.stride[0], geo.o.padding[0], geo.o.dilation[0])),
        ow(out_size(geo.w, geo.s, geo.o.stride[1], geo.o.padding[1], geo.o.dilation[1])) {}
  // Calls f(n, k, oy, ox, c, ci, p, q, iy, ix) for every in-range term of the sum.
  template <class F>
  void each(F f) const {
    const int64_t cg = g.c / g.o.groups, kg = g.k / g.o.groups;
    for (int64_t n = 0; n < g.n; ++n)
      for (int64_t k = 0; k < g.k; ++k)
        for (int64_t oy = 0; oy < oh; ++oy)
          for (int64_t ox = 0; ox < ow; ++ox)
            for (int64_t ci = 0; ci < cg; ++ci)
              for (int64_t p = 0; p < g.r; ++p)
                for (int64_t q = 0; q < g.s; ++q) {
                  int64_t iy = oy * g.o.stride[0] - g.o.padding[0] + p * g.o.dilation[0];
                  int64_t ix = ox * g.o.stride[1] - g.o.padding[1] + q * g.o.dilation[1];
                  if (iy < 0 || iy >= g.h || ix < 0 || ix >= g.w) continue;
                  f(n, k, oy, ox, (k / kg) * cg + ci, ci, p, q, iy, ix);
                }
  }
  Tensor fwd(const Tensor& x, const Tensor& w) const {
    auto xv = x.to_vector<double>(), wv = w.to_vector<double>();
    std::vector<double> y(size_t(g.n * g.k * oh * ow), 0.0);
    const int64_t cg = g.c / g.o.groups;
    each([&](int64_t n, int64_t k, int64_t oy, int64_t ox, int64_t c, int64_t ci, int64_t p, int64_t q, int64_t iy,
             int64_t ix) {
      y[size_t(((n * g.k + k) * oh + oy) * ow + ox)] +=
          wv[size_t(((k * cg + ci) * g.r + p) * g.s + q)] * xv[size_t(((n * g.c + c) * g.h + iy) * g.w + ix)];
    });
    return Tensor::from_vector(y, {g.n, g.k, oh, ow});
  }
  Tensor bwd_data(const Tensor& dy, const Tensor& w) const {
    auto dv = dy.to_vector<double>(), wv = w.to_vector<double>();
    std::vector<double> dx(size_t(g.n * g.c * g.h * g.w), 0.0);
    const int64_t cg = g.c / g.o.groups;
    each([&](int64_t n, int64_t k, int64_t oy, int64_t ox, int64_t c, int64_t ci, int64_t p, int64_t q, int64_t iy,
             int64_t ix) {
      dx[size_t(((n * g.c + c) * g.h + iy) * g.w + ix)] +=
          wv[size_t(((k * cg + ci) * g.r + p) * g.s + q)] * dv[size_t(((n * g.k + k) * oh + oy) * ow + ox)];
    });
    return Tensor::from_vector(dx, {g.n, g.c, g.h, g.w});
  }
  Tensor bwd_filter(const Tensor& x, const Tensor& dy) const {
    auto xv = x.to_vector<double>(), dv = dy.to_vector<double>();
    const int64_t cg = g.c / g.o.groups;
    std::vector<double> dw(size_t(g.k * cg * g.r * g.s), 0.0);
    each([&](int64_t n, int64_t k, int64_t oy, int64_t ox, int64_t c, int64_t ci, int64_t p, int64_t q, int64_t iy,
             int64_t ix) {
      dw[size_t(((k * cg + ci) * g.r + p) * g.s + q)] +=
          xv[size_t(((n * g.c + c) * g.h + iy) * g.w + ix)] * dv[size_t(((n * g.k + k) * oh + oy) * ow + ox)];
    });
    return Tensor::from_vector(dw, {g.k, cg, g.r, g.s});
  }
};

std::vector<Geo> geometries() {
  return {
      {1, 3, 9, 7, 4, 3, 3, {.padding = {1, 1}}},
      {3, 4, 6, 5, 6, 3, 3, {.stride = {2, 2}, .padding = {1, 1}}},
      {2, 4, 11, 10, 6, 3, 2, {.stride = {2, 1}, .padding = {2, 3}, .dilation = {2, 1}, .groups = 2}},
      {1, 2, 40, 33, 3, 3, 3, {.padding = {1, 1}}},                        // row tiles inside one image
      {1, 2, 37, 29, 2, 5, 5, {.stride = {1, 1}, .padding = {4, 4}, .dilation = {3, 2}}},  // wide col2im overlap
      {5, 6, 4, 4, 6, 1, 1, {.groups = 3}},                                // multi-image tiles, 1x1
      {2, 3, 12, 12, 5, 4, 4, {.stride = {3, 2}, .padding = {0, 5}}},
  };
}

// Forces n threads even for these tiny convs (normally they would run on one thread).
class ThreadScope {
 public:
  explicit ThreadScope(int n) : prev_(omp_get_max_threads()), prev_macs_(cpu::conv_min_parallel_macs()) {
    omp_set_num_threads(n);
    cpu::set_conv_min_parallel_macs(1);
  }
  ~ThreadScope() {
    omp_set_num_threads(prev_);
    cpu::set_conv_min_parallel_macs(prev_macs_);
  }

 private:
  int prev_;
  int64_t prev_macs_;
};

}  // namespace

TEST_CASE("ops/conv: the three conv kernels match the direct formula at 1, 2, 3 and 5 threads") {
  uint64_t seed = 10;
  for (const Geo& geo : geometries()) {
    Direct d(geo);
    Tensor x = Tensor::randn({geo.n, geo.c, geo.h, geo.w}, seed++, {DType::f64});
    Tensor w = Tensor::randn({geo.k, geo.c / geo.o.groups, geo.r, geo.s}, seed++, {DType::f64});
    Tensor dy = Tensor::randn({geo.n, geo.k, d.oh, d.ow}, seed++, {DType::f64});
    Tensor y_ref = d.fwd(x, w), dx_ref = d.bwd_data(dy, w), dw_ref = d.bwd_filter(x, dy);
    for (int threads : {1, 2, 3, 5}) {
      ThreadScope ts(threads);
      INFO("geometry x " << shape_str(x.shape()) << " w " << shape_str(w.shape()) << ", " << threads << " threads");
      GS_EXPECT_CLOSE(conv2d(x, w, Tensor(), geo.o), y_ref, 1e-12, 1e-12);
      GS_EXPECT_CLOSE(conv2d_input_grad(dy, w, {geo.h, geo.w}, geo.o), dx_ref, 1e-12, 1e-12);
      GS_EXPECT_CLOSE(conv2d_weight_grad(x, dy, {geo.r, geo.s}, geo.o), dw_ref, 1e-12, 1e-12);
    }
  }
}

TEST_CASE("ops/conv: float32 Winograd F(2x2,3x3) matches the float64 direct formula") {
  // odd and even sizes (partial 2x2 tiles), padding 0/1/2, groups, batch > 1, 1 and 3 threads
  const Geo geos[] = {
      {2, 8, 7, 9, 8, 3, 3, {.padding = {1, 1}}},
      {1, 16, 10, 6, 12, 3, 3, {.padding = {0, 2}}},
      {3, 16, 5, 5, 16, 3, 3, {.padding = {2, 1}, .groups = 2}},
      {1, 9, 33, 31, 10, 3, 3, {.padding = {1, 1}}},
  };
  uint64_t seed = 300;
  for (const Geo& geo : geos) {
    Direct d(geo);
    Tensor x = Tensor::randn({geo.n, geo.c, geo.h, geo.w}, seed++);
    Tensor w = mul_scalar(Tensor::randn({geo.k, geo.c / geo.o.groups, 3, 3}, seed++), 0.3);
    Tensor b = Tensor::randn({geo.k}, seed++);
    backend::ConvGeom g;
    g.n = geo.n, g.c = geo.c, g.h = geo.h, g.w = geo.w, g.k = geo.k, g.r = 3, g.s = 3, g.oh = d.oh, g.ow = d.ow;
    g.pad_h = geo.o.padding[0], g.pad_w = geo.o.padding[1], g.groups = geo.o.groups;
    REQUIRE(cpu::conv_winograd_applies(g, DType::f32));
    Tensor ref = add(d.fwd(x, w), reshape(b.to(DType::f64), {1, geo.k, 1, 1}));
    for (int threads : {1, 3}) {
      ThreadScope ts(threads);
      INFO("x " << shape_str(x.shape()) << " w " << shape_str(w.shape()) << ", " << threads << " threads");
      Tensor y = gstest::poison(Tensor::empty(ref.shape()));
      cpu::conv2d_forward_winograd(g, backend::make_view(y), backend::make_view(x), backend::make_view(w),
                                   backend::make_view(b), threads);
      GS_EXPECT_CLOSE(y, ref, 1e-5, 1e-5);
      GS_EXPECT_CLOSE(conv2d(x, w, b, geo.o), ref, 1e-5, 1e-5);  // the op takes the same path
      // the data gradient of a stride-1 3x3 conv is a Winograd conv too (flipped kernel)
      Tensor dy = Tensor::randn({geo.n, geo.k, d.oh, d.ow}, seed + 7);
      GS_EXPECT_CLOSE(conv2d_input_grad(dy, w, {geo.h, geo.w}, geo.o), d.bwd_data(dy, w), 1e-5, 1e-5);
    }
  }
  // The switch really selects the path: with Winograd off conv2d still agrees (im2col).
  cpu::set_conv_winograd_enabled(false);
  Tensor x = Tensor::randn({1, 8, 6, 6}, 1), w = Tensor::randn({8, 8, 3, 3}, 2);
  backend::ConvGeom g;
  g.n = 1, g.c = 8, g.h = 6, g.w = 6, g.k = 8, g.r = 3, g.s = 3, g.oh = 6, g.ow = 6, g.pad_h = 1, g.pad_w = 1;
  CHECK_FALSE(cpu::conv_winograd_applies(g, DType::f32));
  Tensor y_im2col = conv2d(x, w, Tensor(), {.padding = {1, 1}});
  cpu::set_conv_winograd_enabled(true);
  CHECK(cpu::conv_winograd_applies(g, DType::f32));
  CHECK_FALSE(cpu::conv_winograd_applies(g, DType::f64));
  GS_EXPECT_CLOSE(conv2d(x, w, Tensor(), {.padding = {1, 1}}), y_im2col, 1e-5, 1e-5);
}

TEST_CASE("ops/conv: kernels overwrite every output element (NaN-poisoned outputs)") {
  Geo geo{2, 4, 7, 6, 6, 3, 3, {.stride = {2, 1}, .padding = {1, 1}, .groups = 2}};
  Direct d(geo);
  backend::ConvGeom g;
  g.n = geo.n, g.c = geo.c, g.h = geo.h, g.w = geo.w, g.k = geo.k, g.r = geo.r, g.s = geo.s, g.oh = d.oh, g.ow = d.ow;
  g.stride_h = 2, g.stride_w = 1, g.pad_h = 1, g.pad_w = 1, g.groups = 2;
  for (DType dt : {DType::f32, DType::f64}) {
    Tensor x = Tensor::randn({g.n, g.c, g.h, g.w}, 1, {dt}), w = Tensor::randn({g.k, g.c / 2, g.r, g.s}, 2, {dt});
    Tensor dy = Tensor::randn({g.n, g.k, g.oh, g.ow}, 3, {dt}), b = Tensor::randn({g.k}, 4, {dt});
    Tensor y = gstest::poison(Tensor::empty({g.n, g.k, g.oh, g.ow}, {dt}));
    Tensor dx = gstest::poison(Tensor::empty(x.shape(), {dt})), dw = gstest::poison(Tensor::empty(w.shape(), {dt}));
    cpu::conv2d_forward(g, backend::make_view(y), backend::make_view(x), backend::make_view(w), backend::make_view(b));
    cpu::conv2d_backward_data(g, backend::make_view(dx), backend::make_view(dy), backend::make_view(w),
                              backend::StridedView{});
    cpu::conv2d_backward_filter(g, backend::make_view(dw), backend::make_view(x), backend::make_view(dy));
    double tol = dt == DType::f32 ? 1e-5 : 1e-12;
    GS_EXPECT_CLOSE(y, add(d.fwd(x, w), reshape(b.to(DType::f64), {1, g.k, 1, 1})), tol, tol);
    GS_EXPECT_CLOSE(dx, d.bwd_data(dy, w), tol, tol);
    GS_EXPECT_CLOSE(dw, d.bwd_filter(x, dy), tol, tol);
  }
}

TEST_CASE("ops/conv: conv2d and conv_transpose2d match PyTorch fixtures (float32 and float64)") {
  for (const char* op : {"conv2d", "conv_transpose2d"}) {
    for (const auto& c : gstest::conv_golden::load(op)) {
      for (DType dt : {DType::f32, DType::f64}) {
        INFO("fixture " << c.name << " as " << std::string(dtype_name(dt)));
        auto leaf = [dt](const Tensor& t) { return t.to(dt).clone().requires_grad_(); };
        Tensor x = leaf(c.at("x")), w = leaf(c.at("w"));
        Tensor b = c.has("b") ? leaf(c.at("b")) : Tensor();
        const auto& p = c.params;
        Tensor y;
        if (c.op == "conv2d") {
          y = conv2d(x, w, b,
                     {.stride = gstest::conv_golden::int2(p["stride"]), .padding = gstest::conv_golden::int2(p["padding"]),
                      .dilation = gstest::conv_golden::int2(p["dilation"]), .groups = p["groups"].get<int64_t>()});
        } else {
          y = conv_transpose2d(x, w, b,
                               {.stride = gstest::conv_golden::int2(p["stride"]),
                                .padding = gstest::conv_golden::int2(p["padding"]),
                                .output_padding = gstest::conv_golden::int2(p["output_padding"]),
                                .dilation = gstest::conv_golden::int2(p["dilation"]),
                                .groups = p["groups"].get<int64_t>()});
        }
        // float32: accumulation error of sums of <= 300 O(1) terms; float64: the fixture's own
        // float32 rounding (values are stored as float32).
        const double atol = dt == DType::f32 ? 2e-5 : 2e-6, rtol = dt == DType::f32 ? 1e-4 : 1e-6;
        GS_EXPECT_CLOSE(y, c.at("y"), atol, rtol);
        y.backward(c.at("gy").to(dt));
        GS_EXPECT_CLOSE(x.grad(), c.at("gx"), atol, rtol);
        GS_EXPECT_CLOSE(w.grad(), c.at("gw"), atol, rtol);
        if (b.defined()) GS_EXPECT_CLOSE(b.grad(), c.at("gb"), atol, rtol);
      }
    }
  }
}

TEST_CASE("ops/conv: first- and second-order gradient checks (float64)") {
  Tensor x = Tensor::randn({2, 4, 5, 6}, 21, {DType::f64});
  Tensor w = Tensor::randn({6, 2, 3, 3}, 22, {DType::f64});
  Tensor b = Tensor::randn({6}, 23, {DType::f64});
  Conv2dOptions o{.stride = {2, 1}, .padding = {1, 2}, .dilation = {1, 2}, .groups = 2};
  gstest::Fn f = [o](const std::vector<Tensor>& v) { return conv2d(v[0], v[1], v[2], o); };
  SUBCASE("conv2d") {
    gstest::gradcheck(f, {x, w, b});
    gstest::gradgradcheck(f, {x, w, b});
  }
  SUBCASE("conv_transpose2d with output_padding and groups") {
    Tensor xt = Tensor::randn({2, 4, 3, 4}, 24, {DType::f64});
    Tensor wt = Tensor::randn({4, 3, 3, 2}, 25, {DType::f64});
    Tensor bt = Tensor::randn({6}, 26, {DType::f64});
    ConvTranspose2dOptions ot{.stride = {2, 3}, .padding = {1, 0}, .output_padding = {1, 2}, .groups = 2};
    gstest::Fn ft = [ot](const std::vector<Tensor>& v) { return conv_transpose2d(v[0], v[1], v[2], ot); };
    gstest::gradcheck(ft, {xt, wt, bt});
    gstest::gradgradcheck(ft, {xt, wt, bt});
  }
  SUBCASE("the gradient ops themselves") {
    Tensor dy = Tensor::randn({2, 6, 3, 6}, 27, {DType::f64});
    REQUIRE(conv2d(x, w, b, o).shape() == dy.shape());
    gstest::Fn fi = [o](const std::vector<Tensor>& v) { return conv2d_input_grad(v[0], v[1], {5, 6}, o); };
    gstest::Fn fw = [o](const std::vector<Tensor>& v) { return conv2d_weight_grad(v[0], v[1], {3, 3}, o); };
    gstest::gradcheck(fi, {dy, w});
    gstest::gradgradcheck(fi, {dy, w});
    gstest::gradcheck(fw, {x, dy});
    gstest::gradgradcheck(fw, {x, dy});
  }
}

TEST_CASE("ops/conv: conv2d_input_grad accepts the sizes output_padding would give") {
  // stride 2: inputs 7 and 8 both give a 4-wide output with a 3x3 kernel and padding 1.
  Tensor w = Tensor::randn({3, 2, 3, 3}, 31, {DType::f64});
  Tensor x8 = Tensor::randn({1, 2, 8, 7}, 32, {DType::f64}).requires_grad_();
  Conv2dOptions o{.stride = {2, 2}, .padding = {1, 1}};
  Tensor y = conv2d(x8, w, Tensor(), o);
  Tensor dy = Tensor::randn(y.shape(), 33, {DType::f64});
  y.backward(dy);
  GS_EXPECT_CLOSE(conv2d_input_grad(dy, w, {8, 7}, o), x8.grad(), 1e-12, 1e-12);
  GS_EXPECT_CLOSE(conv_transpose2d(dy, w, Tensor(), {.stride = {2, 2}, .padding = {1, 1}, .output_padding = {1, 0}}),
                  x8.grad(), 1e-12, 1e-12);
}

TEST_CASE("ops/conv: weight gradient is deterministic") {
  ThreadScope ts(2);  // per-thread partial sums, reduced in a fixed order
  Tensor x = Tensor::randn({4, 8, 17, 15}, 41), dy = Tensor::randn({4, 8, 17, 15}, 42);
  Conv2dOptions o{.padding = {1, 1}};
  Tensor a = conv2d_weight_grad(x, dy, {3, 3}, o), b = conv2d_weight_grad(x, dy, {3, 3}, o);
  GS_EXPECT_CLOSE(a, b, 0, 0);
}

TEST_CASE("ops/conv: bad arguments throw clear errors") {
  Tensor x = Tensor::randn({2, 3, 5, 5}, 1), w = Tensor::randn({4, 3, 3, 3}, 2);
  GS_CHECK_THROWS_WITH(conv2d(x, Tensor::randn({4, 2, 3, 3}, 3)), ShapeError, "conv2d", "expects 2 input channels",
                       "has 3", "[2,3,5,5]", "[4,2,3,3]");
  GS_CHECK_THROWS_WITH(conv2d(x, Tensor::randn({4, 3, 7, 3}, 3)), ShapeError, "conv2d", "kernel larger than the padded input");
  GS_CHECK_THROWS_WITH(conv2d(x, Tensor::randn({4, 3, 7, 3}, 3), Tensor(), {.padding = {0, 1}}), ShapeError,
                       "kernel larger than the padded input");
  GS_CHECK_THROWS_WITH(conv2d(x, w, Tensor(), {.padding = {-1, 0}}), ValueError, "conv2d", "padding must be >= 0");
  GS_CHECK_THROWS_WITH(conv2d(x, w, Tensor(), {.stride = {0, 1}}), ValueError, "conv2d", "stride must be >= 1");
  GS_CHECK_THROWS_WITH(conv2d(x, w, Tensor(), {.dilation = {1, -2}}), ValueError, "dilation must be >= 1");
  GS_CHECK_THROWS_WITH(conv2d(x, w, Tensor(), {.groups = 0}), ValueError, "groups must be >= 1");
  GS_CHECK_THROWS_WITH(conv2d(x, Tensor::randn({4, 1, 3, 3}, 3), Tensor(), {.groups = 3}), ShapeError,
                       "groups (3) must divide", "output channels (4)");
  GS_CHECK_THROWS_WITH(conv2d(x, w, Tensor::randn({3}, 4)), ShapeError, "conv2d", "bias [3]", "4 output channels");
  GS_CHECK_THROWS_WITH(conv2d(Tensor::randn({3, 5, 5}, 5), w), ShapeError, "conv2d", "4-D input");
  GS_CHECK_THROWS_WITH(conv2d(x, w.to(DType::f64)), DTypeError, "conv2d", "dtype mismatch");
  GS_CHECK_THROWS_WITH(conv2d(x.to(DType::i32), w), DTypeError, "conv2d");
  GS_CHECK_THROWS_WITH(conv_transpose2d(x, Tensor::randn({4, 2, 3, 3}, 6)), ShapeError, "conv_transpose2d",
                       "weight expects 4 input channels but input has 3");
  GS_CHECK_THROWS_WITH(conv_transpose2d(x, Tensor::randn({3, 2, 3, 3}, 6), Tensor(), {.stride = {2, 2}, .output_padding = {2, 0}}),
                       ValueError, "conv_transpose2d", "output_padding (2, 0)");
  GS_CHECK_THROWS_WITH(conv_transpose2d(x, Tensor::randn({3, 2, 3, 3}, 6), Tensor(), {.padding = {4, 4}}), ShapeError,
                       "conv_transpose2d", "not positive");
  GS_CHECK_THROWS_WITH(conv2d_input_grad(Tensor::randn({2, 4, 3, 3}, 7), w, {9, 5}), ShapeError, "conv2d_input_grad",
                       "inconsistent");
  GS_CHECK_THROWS_WITH(conv2d_weight_grad(x, Tensor::randn({2, 4, 2, 3}, 8), {3, 3}), ShapeError, "conv2d_weight_grad",
                       "not the conv2d output size");
}

TEST_CASE("ops/conv: CPU and CUDA agree") {
  Tensor x = Tensor::randn({2, 6, 9, 8}, 51), w = Tensor::randn({8, 3, 3, 3}, 52), b = Tensor::randn({8}, 53);
  gstest::expect_cpu_cuda_match(
      [](const std::vector<Tensor>& v) {
        return conv2d(v[0], v[1], v[2], {.stride = {2, 1}, .padding = {1, 1}, .groups = 2});
      },
      {x, w, b}, {1e-4, 1e-4});
  Tensor xt = Tensor::randn({2, 4, 5, 6}, 54), wt = Tensor::randn({4, 3, 3, 3}, 55), bt = Tensor::randn({3}, 56);
  gstest::expect_cpu_cuda_match(
      [](const std::vector<Tensor>& v) {
        return conv_transpose2d(v[0], v[1], v[2], {.stride = {2, 2}, .padding = {0, 1}, .output_padding = {1, 0}});
      },
      {xt, wt, bt}, {1e-4, 1e-4});
  // output_padding >= stride (allowed below the dilation) is a geometry cuDNN cannot express: the
  // direct fallback kernels run all three convolutions (forward, and both gradients).
  Tensor xf = Tensor::randn({2, 2, 5, 5}, 59), wf = Tensor::randn({2, 3, 3, 3}, 60), bf = Tensor::randn({3}, 61);
  gstest::expect_cpu_cuda_match(
      [](const std::vector<Tensor>& v) {
        return conv_transpose2d(v[0], v[1], v[2], {.output_padding = {1, 1}, .dilation = {2, 2}});
      },
      {xf, wf, bf}, {1e-4, 1e-4});
  // A float64 conv (cuDNN supports it; the fallback covers it otherwise) and the double backward.
  Tensor xd = Tensor::randn({2, 3, 6, 6}, 57, {DType::f64}), wd = Tensor::randn({4, 3, 3, 3}, 58, {DType::f64});
  gstest::expect_cpu_cuda_match(
      [](const std::vector<Tensor>& v) {
        Tensor y = conv2d(v[0], v[1], Tensor(), {.padding = {1, 1}});
        Tensor gx = autograd::grad({y.pow(2.0).sum()}, {v[0]}, {}, true, true)[0];
        return gx.pow(2.0).sum({1});
      },
      {xd, wd}, {1e-9, 1e-9});
}
