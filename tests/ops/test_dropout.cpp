#include "gradstyle/ops/dropout.hpp"
#include "support/harness.hpp"

using namespace gradstyle;

TEST_CASE("ops/dropout: evaluation and p = 0 are the identity, p = 1 zeroes") {
  Generator gen(5);
  Tensor x = Tensor::randn({3, 4}, 1);
  CHECK(dropout(x, 0.5, false, gen).same(x));
  CHECK(dropout(x, 0.0, true, gen).same(x));
  CHECK(gen.offset() == 0);  // no randomness consumed
  GS_EXPECT_CLOSE(dropout(x, 1.0, true, gen), Tensor::zeros({3, 4}), 0, 0);
}

TEST_CASE("ops/dropout: the mask is the Philox stream thresholded at p (same seed, same mask)") {
  gstest::for_each_device([](Device d) {
    for (DType dt : {DType::f32, DType::f64}) {
      const double p = 0.3;
      Generator gen(1234);
      gen.set_offset(77);
      Tensor x = Tensor::randn({5, 7, 3}, 2, {dt, d});
      Tensor y = dropout(x, p, true, gen);
      CHECK(gen.offset() == 77 + 105);
      auto xv = x.to_vector<double>(), yv = y.to_vector<double>();
      int kept = 0;
      for (size_t i = 0; i < xv.size(); ++i) {
        // element i is kept when uniform i of (seed 1234, offset 77), rounded to the dtype, is > p
        double u = philox_uniform(1234, 77, i);
        bool keep = dt == DType::f32 ? float(u) > float(p) : u > p;
        double want =
            keep ? (dt == DType::f32 ? double(float(xv[i]) * float(1.0 / (1.0 - p))) : xv[i] / (1.0 - p)) : 0.0;
        kept += keep;
        INFO("element " << i);
        CHECK(yv[i] == doctest::Approx(want).epsilon(1e-6));
      }
      CHECK(kept > 0);
      CHECK(kept < 105);
      // the next draw continues the stream: a different mask
      Tensor y2 = dropout(x, p, true, gen);
      CHECK(gen.offset() == 77 + 210);
      CHECK(y2.to_vector<double>() != yv);
    }
  });
}

TEST_CASE("ops/dropout: keep rate and mean are preserved statistically") {
  Generator gen(99);
  const double p = 0.2;
  Tensor y = dropout(Tensor::ones({200000}), p, true, gen);
  auto v = y.to_vector<float>();
  double kept = 0, sum = 0;
  for (float e : v) {
    kept += e != 0.0f;
    sum += e;
  }
  const double n = double(v.size()), sd = std::sqrt(n * p * (1 - p));
  CHECK(std::abs(kept - n * (1 - p)) < 5 * sd);  // 5 sigma: a real failure, not noise
  CHECK(std::abs(sum / n - 1.0) < 5 * sd / n / (1 - p));
}

TEST_CASE("ops/dropout: gradient is g * mask (gradcheck with a fixed stream position), second order") {
  Generator gen(7);
  auto f = [&gen](const std::vector<Tensor>& in) {
    gen.set_offset(0);  // the same mask on every evaluation
    return dropout(in[0], 0.4, true, gen);
  };
  Tensor x = Tensor::randn({4, 5}, 3, {DType::f64});
  gstest::gradcheck(f, {x});
  gstest::gradgradcheck([f](const std::vector<Tensor>& in) { return square(f(in)); }, {x});
}

TEST_CASE("ops/dropout: CPU vs CUDA give identical masks for the same seed") {
  Generator gen(31);
  auto f = [&gen](const std::vector<Tensor>& in) {
    gen.set_offset(10);
    return dropout(in[0], 0.5, true, gen);
  };
  gstest::expect_cpu_cuda_match(f, {Tensor::randn({3, 8, 5, 5}, 4)}, {0, 0});
}

TEST_CASE("ops/dropout: bad arguments throw typed errors") {
  Generator gen(1);
  Tensor x = Tensor::randn({2, 2}, 1);
  GS_CHECK_THROWS_WITH(dropout(x, -0.1, true, gen), ValueError, "dropout", "[0, 1]", "-0.1");
  GS_CHECK_THROWS_WITH(dropout(x, 1.5, true, gen), ValueError, "dropout", "1.5");
  GS_CHECK_THROWS_WITH(dropout(x.to(DType::i64), 0.5, true, gen), DTypeError, "dropout", "int64");
}
