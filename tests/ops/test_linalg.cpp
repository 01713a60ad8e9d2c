// matmul / bmm / linear: closed-form products, NumPy rules for 1-D operands, batch broadcasting,
// transposed / sliced / expanded operands (the GEMM operand layouts), empty and k = 0 products,
// a naive float64 triple loop on odd sizes, gradcheck + gradgradcheck, and typed errors.
#include "core/core_util.hpp"

using namespace gradstyle;
using coretest::prime_nan;
using coretest::tens;
using coretest::vals;

namespace {

// Naive [.., n, k] @ [.., k, m] on host vectors for one matrix pair (row-major, logical order).
std::vector<double> naive_mm(const std::vector<double>& a, const std::vector<double>& b, int64_t n, int64_t k,
                             int64_t m) {
  std::vector<double> c(size_t(n * m), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < m; ++j) {
      double s = 0;
      for (int64_t p = 0; p < k; ++p) s += a[size_t(i * k + p)] * b[size_t(p * m + j)];
      c[size_t(i * m + j)] = s;
    }
  return c;
}

// Reference batched matmul with NumPy batch broadcasting, computed matrix by matrix.
Tensor ref_matmul(const Tensor& a, const Tensor& b) {
  int64_t n = a.size(-2), k = a.size(-1), m = b.size(-1);
  Shape ba(a.shape().begin(), a.shape().end() - 2), bb(b.shape().begin(), b.shape().end() - 2);
  Shape bs = broadcast_shapes(ba, bb, "ref");
  auto va = vals(a), vb = vals(b);
  std::vector<double> out;
  for (int64_t i = 0; i < shape_numel(bs); ++i) {
    auto idx = coretest::unravel(i, bs);
    int64_t ia = coretest::bcast_index(idx, ba), ib = coretest::bcast_index(idx, bb);
    std::vector<double> ma(va.begin() + ia * n * k, va.begin() + (ia + 1) * n * k);
    std::vector<double> mb(vb.begin() + ib * k * m, vb.begin() + (ib + 1) * k * m);
    auto c = naive_mm(ma, mb, n, k, m);
    out.insert(out.end(), c.begin(), c.end());
  }
  Shape os = bs;
  os.push_back(n);
  os.push_back(m);
  return Tensor::from_vector(out, os);
}

}  // namespace

TEST_CASE("ops/linalg: matmul closed forms and NumPy 1-D rules") {
  Tensor a = tens({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor b = tens({7, 8, 9, 10, 11, 12}, {3, 2});
  for (DType dt : {DType::f64, DType::f32}) {
    prime_nan(4);
    Tensor c = matmul(a.to(dt), b.to(dt));
    CHECK(c.dtype() == dt);
    CHECK(c.shape() == Shape{2, 2});
    CHECK(vals(c) == std::vector<double>{58, 64, 139, 154});
  }
  Tensor v = tens({1, -1, 2}, {3});
  CHECK(vals(matmul(a, v)) == std::vector<double>{5, 11});              // [2,3]@[3] -> [2]
  CHECK(matmul(a, v).shape() == Shape{2});
  CHECK(vals(matmul(tens({1, 2}, {2}), a)) == std::vector<double>{9, 12, 15});  // [2]@[2,3] -> [3]
  Tensor d = matmul(v, v);
  CHECK(d.dim() == 0);
  CHECK(d.item() == 6);
  Tensor ab = stack({a, a * 2.0}, 0);  // [2,2,3]
  CHECK(matmul(ab, v).shape() == Shape{2, 2});
  CHECK(vals(matmul(ab, v)) == std::vector<double>{5, 11, 10, 22});
  CHECK(matmul(tens({1, 2}, {2}), ab).shape() == Shape{2, 3});
  CHECK(vals(matmul(tens({1, 2}, {2}), ab)) == std::vector<double>{9, 12, 15, 18, 24, 30});
}

TEST_CASE("ops/linalg: batched matmul broadcasts batch dims and accepts strided operands") {
  const std::vector<std::pair<Shape, Shape>> cases = {
      {{4, 3, 5}, {4, 5, 2}},     // plain batch
      {{2, 1, 3, 4}, {5, 4, 2}},  // batch broadcast both ways -> [2,5,3,2]
      {{3, 4}, {2, 4, 5}},        // matrix @ batch
      {{2, 3, 4}, {4, 5}},        // batch @ matrix (folded into one GEMM)
      {{1, 3, 4}, {6, 4, 1}},
  };
  for (const auto& [sa, sb] : cases) {
    INFO(shape_str(sa) << " @ " << shape_str(sb));
    Tensor a = Tensor::randn(sa, 1, {DType::f64}), b = Tensor::randn(sb, 2, {DType::f64});
    Tensor want = ref_matmul(a, b);
    GS_EXPECT_CLOSE(matmul(a, b), want, 1e-12, 1e-12);
    GS_EXPECT_CLOSE(matmul(a.to(DType::f32), b.to(DType::f32)), want, 1e-5, 1e-5);
  }
  // Operand layouts: transposed (a column-major matrix), sliced with a leading dimension larger
  // than the width, a permuted batch, and an expanded (stride 0) batch.
  Tensor base = Tensor::randn({4, 6, 7}, 3, {DType::f64});
  Tensor at = base.transpose(1, 2);                 // [4,7,6], trans layout
  Tensor bs = base.narrow(2, 1, 5).narrow(1, 0, 6);  // [4,6,5], ld 7
  GS_EXPECT_CLOSE(matmul(at, bs), ref_matmul(at.contiguous(), bs.contiguous()), 1e-12, 1e-12);
  Tensor bp = Tensor::randn({6, 4, 5}, 4, {DType::f64}).permute({1, 0, 2});  // [4,6,5], batch stride 5
  GS_EXPECT_CLOSE(matmul(at, bp), ref_matmul(at.contiguous(), bp.contiguous()), 1e-12, 1e-12);
  Tensor be = Tensor::randn({1, 6, 5}, 5, {DType::f64}).expand({4, 6, 5});
  GS_EXPECT_CLOSE(matmul(at, be), ref_matmul(at.contiguous(), be.contiguous()), 1e-12, 1e-12);
  Tensor row = Tensor::randn({7}, 6, {DType::f64}).unsqueeze(0).expand({3, 7});  // [3,7] stride (0,1)
  Tensor m2 = Tensor::randn({7, 2}, 7, {DType::f64});
  GS_EXPECT_CLOSE(matmul(row, m2), ref_matmul(row.contiguous(), m2), 1e-12, 1e-12);
  GS_EXPECT_CLOSE(matmul(m2.transpose(0, 1), row.transpose(0, 1)), ref_matmul(m2.transpose(0, 1).contiguous(), row.transpose(0, 1).contiguous()), 1e-12, 1e-12);
  // odd sizes larger than a SIMD block
  Tensor p = Tensor::randn({33, 17}, 8), q = Tensor::randn({17, 29}, 9);
  GS_EXPECT_CLOSE(matmul(p, q), ref_matmul(p, q), 1e-5, 1e-5);
}

TEST_CASE("ops/linalg: empty products and k = 0") {
  CHECK(matmul(Tensor::zeros({0, 3}), Tensor::zeros({3, 4})).shape() == Shape{0, 4});
  CHECK(matmul(Tensor::zeros({2, 0, 3}), Tensor::zeros({3, 4})).shape() == Shape{2, 0, 4});
  prime_nan(8);
  Tensor z = matmul(Tensor::ones({2, 0}), Tensor::ones({0, 4}));
  CHECK(z.shape() == Shape{2, 4});
  CHECK(vals(z) == std::vector<double>(8, 0.0));  // an empty sum is 0
  CHECK(matmul(Tensor::zeros({0, 2, 3}), Tensor::zeros({0, 3, 4})).shape() == Shape{0, 2, 4});
}

TEST_CASE("ops/linalg: bmm and linear") {
  Tensor a = Tensor::randn({3, 2, 4}, 10, {DType::f64}), b = Tensor::randn({3, 4, 5}, 11, {DType::f64});
  GS_EXPECT_CLOSE(bmm(a, b), ref_matmul(a, b), 1e-12, 1e-12);
  Tensor x = tens({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor w = tens({1, 0, -1, 2, 1, 0}, {2, 3});  // [out=2, in=3]
  Tensor bias = tens({10, 20}, {2});
  CHECK(vals(linear(x, w)) == std::vector<double>{-2, 4, -2, 13});
  CHECK(vals(linear(x, w, bias)) == std::vector<double>{8, 24, 8, 33});
  Tensor x3 = Tensor::randn({2, 3, 3}, 12, {DType::f64});
  GS_EXPECT_CLOSE(linear(x3, w, bias), ref_matmul(x3, w.transpose(0, 1).contiguous()) + bias, 1e-12, 1e-12);
  CHECK(vals(linear(tens({1, 2, 3}, {3}), w)) == std::vector<double>{-2, 4});
  GS_CHECK_THROWS_WITH(bmm(a, b.narrow(0, 0, 2)), ShapeError, "bmm", "[3,2,4]", "[2,4,5]");
  GS_CHECK_THROWS_WITH(bmm(a.sum({0}), b), ShapeError, "bmm");
  GS_CHECK_THROWS_WITH(linear(x, tens({1, 2}, {2})), ShapeError, "linear", "[out, in]", "[2]");
  GS_CHECK_THROWS_WITH(linear(x, w.transpose(0, 1)), ShapeError, "linear", "3 features", "[3,2]", "[2,3]");
  GS_CHECK_THROWS_WITH(linear(x, w, tens({1, 2, 3}, {3})), ShapeError, "linear", "bias", "[3]");
  GS_CHECK_THROWS_WITH(linear(x, w, bias.to(DType::f32)), DTypeError, "linear", "float32");
}

TEST_CASE("ops/linalg: gradcheck and gradgradcheck") {
  using gstest::Fn;
  struct Case {
    std::string name;
    Fn f;
    std::vector<Shape> shapes;
  };
  std::vector<Case> cases = {
      {"2-D", [](const std::vector<Tensor>& x) { return matmul(x[0], x[1]); }, {{2, 3}, {3, 4}}},
      {"batched", [](const std::vector<Tensor>& x) { return matmul(x[0], x[1]); }, {{2, 2, 3}, {2, 3, 2}}},
      {"broadcast batch", [](const std::vector<Tensor>& x) { return matmul(x[0], x[1]); }, {{2, 1, 2, 3}, {3, 3, 2}}},
      {"batch @ matrix", [](const std::vector<Tensor>& x) { return matmul(x[0], x[1]); }, {{2, 2, 3}, {3, 2}}},
      {"vector @ matrix", [](const std::vector<Tensor>& x) { return matmul(x[0], x[1]); }, {{3}, {3, 2}}},
      {"dot", [](const std::vector<Tensor>& x) { return matmul(x[0], x[1]); }, {{4}, {4}}},
      {"transposed operands",
       [](const std::vector<Tensor>& x) { return matmul(x[0].transpose(0, 1), x[1].transpose(0, 1)); },
       {{3, 2}, {4, 3}}},
      {"squared (a@a)", [](const std::vector<Tensor>& x) { return matmul(x[0], x[0]) * x[1]; }, {{3, 3}, {3, 3}}},
      {"linear", [](const std::vector<Tensor>& x) { return linear(x[0], x[1], x[2]); }, {{2, 3}, {4, 3}, {4}}},
      {"linear 3-D + tanh", [](const std::vector<Tensor>& x) { return tanh(linear(x[0], x[1], x[2])); },
       {{2, 2, 3}, {2, 3}, {2}}},
  };
  for (const Case& c : cases) {
    INFO("matmul case " << c.name);
    std::vector<Tensor> ins;
    for (size_t i = 0; i < c.shapes.size(); ++i) ins.push_back(Tensor::randn(c.shapes[i], 20 + i, {DType::f64}));
    gstest::gradcheck(c.f, ins);
    gstest::gradgradcheck(c.f, ins);
  }
}

TEST_CASE("ops/linalg: bad input throws typed errors naming the op and the shapes") {
  Tensor a = Tensor::ones({2, 3}), b = Tensor::ones({4, 2});
  GS_CHECK_THROWS_WITH(matmul(a, b), ShapeError, "matmul", "[2,3]", "[4,2]", "3 vs 4");
  GS_CHECK_THROWS_WITH(matmul(Tensor::ones({2, 2, 3}), Tensor::ones({3, 3, 2})), ShapeError, "matmul", "[2]", "[3]");
  GS_CHECK_THROWS_WITH(matmul(a, Tensor::ones({3, 2}, {DType::f64})), DTypeError, "matmul", "float32", "float64");
  GS_CHECK_THROWS_WITH(matmul(Tensor::scalar(1.0), a), ShapeError, "matmul", "0-d");
  GS_CHECK_THROWS_WITH(matmul(Tensor::ones({2, 2}, {DType::i64}), Tensor::ones({2, 2}, {DType::i64})), DTypeError,
                       "matmul", "int64");
  GS_CHECK_THROWS_WITH(matmul(Tensor::ones({3}), Tensor::ones({4})), ShapeError, "matmul", "3 vs 4");
}
