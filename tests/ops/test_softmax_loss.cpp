// softmax / log_softmax over a dim and the mse / l1 losses: closed-form values (stability at
// large magnitudes, -inf entries, non-last dims, strided and 0-d inputs), gradcheck +
// gradgradcheck, and typed errors.
#include <limits>

#include "core/core_util.hpp"

using namespace gradstyle;
using coretest::prime_nan;
using coretest::tens;
using coretest::vals;

namespace {
std::vector<double> softmax_ref(const std::vector<double>& x) {
  double m = -std::numeric_limits<double>::infinity();
  for (double v : x) m = std::max(m, v);
  double s = 0;
  for (double v : x) s += std::exp(v - m);
  std::vector<double> r;
  for (double v : x) r.push_back(std::exp(v - m) / s);
  return r;
}
}  // namespace

TEST_CASE("ops/softmax: closed forms, stability and dims") {
  for (DType dt : {DType::f64, DType::f32}) {
    Tensor x = tens({0, 1, 2, 3, 3, 3}, {2, 3}, dt);
    prime_nan(6);
    Tensor s = softmax(x, 1);
    CHECK(s.dtype() == dt);
    double e1 = std::exp(1.0), e2 = std::exp(2.0), z = 1 + e1 + e2;
    GS_EXPECT_CLOSE(s, tens({1 / z, e1 / z, e2 / z, 1.0 / 3, 1.0 / 3, 1.0 / 3}, {2, 3}), 1e-7, 1e-6);
    GS_EXPECT_CLOSE(log_softmax(x, -1), tens({-std::log(z), 1 - std::log(z), 2 - std::log(z), -std::log(3.0),
                                              -std::log(3.0), -std::log(3.0)}, {2, 3}),
                    1e-6, 1e-6);
    // over dim 0 (not the last): each column is a 2-way softmax
    auto s0 = vals(softmax(x, 0));
    CHECK(s0[0] == doctest::Approx(1 / (1 + std::exp(3.0))));
    CHECK(s0[3] == doctest::Approx(1 / (1 + std::exp(-3.0))));
    CHECK(s0[2] + s0[5] == doctest::Approx(1.0));
  }
  // large magnitudes do not overflow; shifts do not change the result
  Tensor big = tens({1000, 1001, 1002}, {3});
  GS_EXPECT_CLOSE(softmax(big, 0), Tensor::from_vector(softmax_ref({0, 1, 2}), {3}), 1e-15, 1e-13);
  GS_EXPECT_CLOSE(log_softmax(tens({-1000, 0}, {2}), 0), tens({-1000, 0}, {2}), 1e-12, 0);
  GS_EXPECT_CLOSE(softmax(tens({1000, 1001, 1002}, {3}, DType::f32), 0),
                  Tensor::from_vector(softmax_ref({0, 1, 2}), {3}), 1e-7, 1e-6);
  // -inf entries get probability 0 (masking)
  const double inf = std::numeric_limits<double>::infinity();
  auto m = vals(softmax(tens({-inf, 0, 0}, {3}), 0));
  CHECK(m == std::vector<double>{0, 0.5, 0.5});
  CHECK(vals(log_softmax(tens({-inf, 0}, {2}), 0))[0] == -inf);
  // strided input (a transposed [4,3] viewed as [3,4]) and a 3-D middle dim
  Tensor r = Tensor::randn({4, 3}, 1, {DType::f64});
  Tensor rt = r.transpose(0, 1);
  GS_EXPECT_CLOSE(softmax(rt, 1), softmax(r, 0).transpose(0, 1).contiguous(), 1e-15, 0);
  Tensor x3 = Tensor::randn({2, 4, 3}, 2, {DType::f64});
  auto v3 = vals(x3), s3 = vals(softmax(x3, 1));
  for (int b = 0; b < 2; ++b)
    for (int c = 0; c < 3; ++c) {
      std::vector<double> col;
      for (int k = 0; k < 4; ++k) col.push_back(v3[size_t(b * 12 + k * 3 + c)]);
      auto want = softmax_ref(col);
      for (int k = 0; k < 4; ++k) CHECK(s3[size_t(b * 12 + k * 3 + c)] == doctest::Approx(want[size_t(k)]).epsilon(1e-14));
    }
  // 0-d: softmax of one element is 1, log_softmax 0
  CHECK(softmax(Tensor::scalar(3.0), 0).item() == 1);
  CHECK(softmax(Tensor::scalar(3.0), 0).dim() == 0);
  CHECK(log_softmax(Tensor::scalar(3.0), -1).item() == 0);
  CHECK(softmax(Tensor::zeros({0, 3}), 1).shape() == Shape{0, 3});
  CHECK(softmax(Tensor::zeros({3, 0}), 1).shape() == Shape{3, 0});
}

TEST_CASE("ops/softmax: gradcheck and gradgradcheck over each dim") {
  Tensor x = Tensor::randn({2, 3, 4}, 3, {DType::f64});
  for (int64_t d : {0, 1, 2, -1}) {
    INFO("dim " << d);
    gstest::Fn f = [d](const std::vector<Tensor>& a) { return softmax(a[0], d); };
    gstest::Fn g = [d](const std::vector<Tensor>& a) { return log_softmax(a[0], d); };
    gstest::gradcheck(f, {x});
    gstest::gradgradcheck(f, {x});
    gstest::gradcheck(g, {x});
    gstest::gradgradcheck(g, {x});
  }
  gstest::gradgradcheck([](const std::vector<Tensor>& a) { return softmax(a[0].transpose(0, 1), 0) * a[1]; },
                        {Tensor::randn({3, 2}, 4, {DType::f64}), Tensor::randn({2, 3}, 5, {DType::f64})});
  GS_CHECK_THROWS_WITH(softmax(x, 3), IndexError, "softmax", "dim 3");
  GS_CHECK_THROWS_WITH(log_softmax(x, -4), IndexError, "log_softmax", "dim -4");
  GS_CHECK_THROWS_WITH(softmax(Tensor::ones({2}, {DType::i64}), 0), DTypeError, "softmax", "int64");
}

TEST_CASE("ops/loss: mse and l1 with each reduction") {
  Tensor in = tens({1, 2, 3, 4}, {2, 2}), tg = tens({0, 2, 5, 3.5}, {2, 2});
  prime_nan(4);
  CHECK(vals(mse_loss(in, tg, Reduction::None)) == std::vector<double>{1, 0, 4, 0.25});
  CHECK(mse_loss(in, tg, Reduction::Sum).item() == 5.25);
  CHECK(mse_loss(in, tg).item() == 5.25 / 4);
  CHECK(vals(l1_loss(in, tg, Reduction::None)) == std::vector<double>{1, 0, 2, 0.5});
  CHECK(l1_loss(in, tg, Reduction::Sum).item() == 3.5);
  CHECK(l1_loss(in, tg).item() == 3.5 / 4);
  CHECK(mse_loss(in.to(DType::f32), tg.to(DType::f32)).dtype() == DType::f32);
  CHECK(mse_loss(in.transpose(0, 1), tg.transpose(0, 1)).item() == 5.25 / 4);
  // gradients: mse -> 2 (x - t) / N ; l1 -> sign(x - t) / N
  Tensor x = tens({1, 2, 3, 4}, {2, 2}).requires_grad_();
  mse_loss(x, tg).backward();
  CHECK(vals(x.grad()) == std::vector<double>{0.5, 0, -1, 0.25});
  x.zero_grad();
  l1_loss(x, tg, Reduction::Sum).backward();
  CHECK(vals(x.grad()) == std::vector<double>{1, 0, -1, 1});
  for (Reduction r : {Reduction::None, Reduction::Sum, Reduction::Mean}) {
    gstest::Fn f = [r](const std::vector<Tensor>& a) { return mse_loss(a[0], a[1], r); };
    gstest::Fn g = [r](const std::vector<Tensor>& a) { return l1_loss(a[0], a[1], r); };
    std::vector<Tensor> ins = {Tensor::randn({2, 3}, 6, {DType::f64}), Tensor::randn({2, 3}, 7, {DType::f64})};
    gstest::gradcheck(f, ins);
    gstest::gradgradcheck(f, ins);
    gstest::gradcheck(g, ins);
    gstest::gradgradcheck(g, ins);
  }
  GS_CHECK_THROWS_WITH(mse_loss(in, tens({1, 2}, {2})), ShapeError, "mse_loss", "[2,2]", "[2]", "same shape");
  GS_CHECK_THROWS_WITH(l1_loss(in, tg.to(DType::f32)), DTypeError, "l1_loss", "float64", "float32");
  GS_CHECK_THROWS_WITH(l1_loss(Tensor::ones({2}, {DType::i32}), Tensor::ones({2}, {DType::i32})), DTypeError, "l1_loss");
}
