// Elementwise ops: closed-form forward values (float32 and float64; broadcasting; permuted,
// sliced and expanded inputs; 0-d and empty tensors), float64 gradcheck and gradgradcheck on
// plain and broadcast shapes, tie semantics of maximum/minimum, and typed errors.
#include <limits>

#include "core/core_util.hpp"

using namespace gradstyle;
using coretest::away_from_zero;
using coretest::bcast_ref;
using coretest::prime_nan;
using coretest::tens;
using coretest::uniform;
using coretest::vals;

namespace {

using UFn = std::function<Tensor(const Tensor&)>;
using RFn = std::function<double(double)>;

struct UnaryCase {
  std::string name;
  UFn f;
  RFn ref;
  std::function<Tensor(const Shape&, uint64_t)> input;  // float64 values inside the op's domain
};

Tensor any_values(const Shape& s, uint64_t seed) { return Tensor::randn(s, seed, {DType::f64}) * 1.5; }
Tensor positive(const Shape& s, uint64_t seed) { return uniform(s, seed, 0.3, 3.0); }
Tensor kinked(const Shape& s, uint64_t seed) { return away_from_zero(s, seed, 0.1); }
// Values at least 0.05 away from the clamp bounds -0.5 and 0.7.
Tensor clamp_input(const Shape& s, uint64_t seed) {
  auto v = vals(uniform(s, seed, -1.5, 1.5));
  for (double& x : v)
    for (double b : {-0.5, 0.7})
      if (std::abs(x - b) < 0.05) x = b + 0.1;
  return Tensor::from_vector(v, s);
}

// Values at least 0.05 away from 0.5, where softplus(beta 2, threshold 1) switches branches.
Tensor softplus_input(const Shape& s, uint64_t seed) {
  auto v = vals(uniform(s, seed, -1.5, 1.5));
  for (double& x : v)
    if (std::abs(x - 0.5) < 0.05) x = 0.6;
  return Tensor::from_vector(v, s);
}

double softplus_ref(double x, double beta, double thr) {
  return beta * x > thr ? x : std::log1p(std::exp(beta * x)) / beta;
}

std::vector<UnaryCase> unary_cases() {
  return {
      {"neg", [](const Tensor& x) { return neg(x); }, [](double x) { return -x; }, any_values},
      {"exp", [](const Tensor& x) { return exp(x); }, [](double x) { return std::exp(x); }, any_values},
      {"log", [](const Tensor& x) { return log(x); }, [](double x) { return std::log(x); }, positive},
      {"sqrt", [](const Tensor& x) { return sqrt(x); }, [](double x) { return std::sqrt(x); }, positive},
      {"rsqrt", [](const Tensor& x) { return rsqrt(x); }, [](double x) { return 1 / std::sqrt(x); }, positive},
      {"abs", [](const Tensor& x) { return abs(x); }, [](double x) { return std::abs(x); }, kinked},
      {"square", [](const Tensor& x) { return square(x); }, [](double x) { return x * x; }, any_values},
      {"reciprocal", [](const Tensor& x) { return reciprocal(x); }, [](double x) { return 1 / x; }, positive},
      {"sin", [](const Tensor& x) { return sin(x); }, [](double x) { return std::sin(x); }, any_values},
      {"cos", [](const Tensor& x) { return cos(x); }, [](double x) { return std::cos(x); }, any_values},
      {"pow(x, 3)", [](const Tensor& x) { return pow(x, 3.0); }, [](double x) { return x * x * x; }, any_values},
      {"pow(x, 2)", [](const Tensor& x) { return pow(x, 2.0); }, [](double x) { return x * x; }, any_values},
      {"pow(x, -0.5)", [](const Tensor& x) { return pow(x, -0.5); }, [](double x) { return std::pow(x, -0.5); },
       positive},
      {"pow(x, 0)", [](const Tensor& x) { return pow(x, 0.0); }, [](double) { return 1.0; }, any_values},
      {"add_scalar", [](const Tensor& x) { return x + 2.5; }, [](double x) { return x + 2.5; }, any_values},
      {"rsub_scalar", [](const Tensor& x) { return 2.5 - x; }, [](double x) { return 2.5 - x; }, any_values},
      {"mul_scalar", [](const Tensor& x) { return x * -3.0; }, [](double x) { return -3 * x; }, any_values},
      {"div_scalar", [](const Tensor& x) { return x / 4.0; }, [](double x) { return x / 4; }, any_values},
      {"rdiv_scalar", [](const Tensor& x) { return 2.0 / x; }, [](double x) { return 2 / x; }, positive},
      {"clamp", [](const Tensor& x) { return clamp(x, -0.5, 0.7); },
       [](double x) { return std::min(std::max(x, -0.5), 0.7); }, clamp_input},
      {"clamp(lo only)", [](const Tensor& x) { return clamp(x, -0.5, std::numeric_limits<double>::infinity()); },
       [](double x) { return std::max(x, -0.5); }, clamp_input},
      {"relu", [](const Tensor& x) { return relu(x); }, [](double x) { return x > 0 ? x : 0.0; }, kinked},
      {"leaky_relu", [](const Tensor& x) { return leaky_relu(x, 0.2); }, [](double x) { return x > 0 ? x : 0.2 * x; },
       kinked},
      {"sigmoid", [](const Tensor& x) { return sigmoid(x); }, [](double x) { return 1 / (1 + std::exp(-x)); },
       any_values},
      {"tanh", [](const Tensor& x) { return tanh(x); }, [](double x) { return std::tanh(x); }, any_values},
      {"softplus", [](const Tensor& x) { return softplus(x); }, [](double x) { return softplus_ref(x, 1, 20); },
       any_values},
      // beta 2, threshold 1: inputs above 0.5 take the linear branch (kink-free away from 0.5).
      {"softplus(beta 2, thr 1)", [](const Tensor& x) { return softplus(x, 2.0, 1.0); },
       [](double x) { return softplus_ref(x, 2, 1); }, softplus_input},
  };
}

std::vector<double> map(const std::vector<double>& v, const RFn& f) {
  std::vector<double> r;
  for (double x : v) r.push_back(f(x));
  return r;
}

}  // namespace

TEST_CASE("ops/elementwise: unary ops match closed forms on plain, strided, 0-d and empty inputs") {
  for (const UnaryCase& c : unary_cases()) {
    INFO("op " << c.name);
    Tensor x = c.input({3, 4}, 11);
    prime_nan(12);
    Tensor y = c.f(x);
    CHECK(y.shape() == Shape{3, 4});
    CHECK(y.dtype() == DType::f64);
    GS_EXPECT_CLOSE(y, Tensor::from_vector(map(vals(x), c.ref), {3, 4}), 1e-13, 1e-13);
    // float32: same values to float rounding
    Tensor xf = x.to(DType::f32);
    Tensor yf = c.f(xf);
    CHECK(yf.dtype() == DType::f32);
    GS_EXPECT_CLOSE(yf, Tensor::from_vector(map(vals(xf), c.ref), {3, 4}), 1e-6, 1e-6);
    // a transposed view and a stepped slice
    Tensor xt = x.transpose(0, 1);
    GS_EXPECT_CLOSE(c.f(xt), Tensor::from_vector(map(vals(xt), c.ref), {4, 3}), 1e-13, 1e-13);
    Tensor xs = slice(x, 1, 1, 4, 2);
    GS_EXPECT_CLOSE(c.f(xs), Tensor::from_vector(map(vals(xs), c.ref), {3, 2}), 1e-13, 1e-13);
    // an expanded (stride 0) view
    Tensor xe = x.narrow(0, 0, 1).expand({5, 4});
    GS_EXPECT_CLOSE(c.f(xe), Tensor::from_vector(map(vals(xe), c.ref), {5, 4}), 1e-13, 1e-13);
    // 0-d and empty
    Tensor x0 = x.narrow(0, 1, 1).narrow(1, 2, 1).reshape({});
    Tensor y0 = c.f(x0);
    CHECK(y0.dim() == 0);
    CHECK(y0.item() == doctest::Approx(c.ref(x0.item())).epsilon(1e-13));
    Tensor ye = c.f(Tensor::zeros({0, 3}, {DType::f64}));
    CHECK(ye.shape() == Shape{0, 3});
  }
}

TEST_CASE("ops/elementwise: unary closed-form anchor values") {
  auto one = [](const UFn& f, double x) { return f(tens({x}, {1})).item(); };
  CHECK(one([](const Tensor& x) { return sigmoid(x); }, 0) == 0.5);
  CHECK(one([](const Tensor& x) { return tanh(x); }, 0) == 0);
  CHECK(one([](const Tensor& x) { return softplus(x); }, 0) == doctest::Approx(std::log(2.0)).epsilon(1e-15));
  CHECK(one([](const Tensor& x) { return softplus(x); }, 30) == 30);  // linear above the threshold
  CHECK(one([](const Tensor& x) { return relu(x); }, -1) == 0);
  CHECK(one([](const Tensor& x) { return leaky_relu(x, 0.1); }, -2) == doctest::Approx(-0.2));
  CHECK(one([](const Tensor& x) { return leaky_relu(x); }, -100) == doctest::Approx(-1.0));
  CHECK(one([](const Tensor& x) { return exp(x); }, 1) == doctest::Approx(M_E).epsilon(1e-15));
  CHECK(one([](const Tensor& x) { return log(x); }, M_E) == doctest::Approx(1).epsilon(1e-15));
  CHECK(one([](const Tensor& x) { return sqrt(x); }, 4) == 2);
  CHECK(one([](const Tensor& x) { return rsqrt(x); }, 4) == 0.5);
  CHECK(one([](const Tensor& x) { return abs(x); }, -3) == 3);
  CHECK(one([](const Tensor& x) { return clamp(x, -1, 2); }, 5) == 2);
  CHECK(one([](const Tensor& x) { return clamp(x, -1, 2); }, -5) == -1);
  CHECK(one([](const Tensor& x) { return sign(x); }, -5) == -1);
  CHECK(one([](const Tensor& x) { return sign(x); }, 0) == 0);
  // Extreme inputs stay finite where the math is finite.
  CHECK(one([](const Tensor& x) { return sigmoid(x); }, -800) == 0);
  CHECK(one([](const Tensor& x) { return sigmoid(x); }, 800) == 1);
  CHECK(sigmoid(tens({-200}, {1}, DType::f32)).item() >= 0);
  CHECK(softplus(tens({-50}, {1})).item() == doctest::Approx(std::exp(-50.0)).epsilon(1e-12));
  CHECK(std::isnan(log(tens({-1}, {1})).item()));
  CHECK(std::isinf(log(tens({0}, {1})).item()));
}

TEST_CASE("ops/elementwise: unary gradcheck and gradgradcheck (plain and strided inputs)") {
  for (const UnaryCase& c : unary_cases()) {
    INFO("op " << c.name);
    Tensor x = c.input({2, 3}, 21);
    UFn f = c.f;
    gstest::gradcheck([f](const std::vector<Tensor>& xs) { return f(xs[0]); }, {x});
    gstest::gradgradcheck([f](const std::vector<Tensor>& xs) { return f(xs[0]); }, {x});
    // through a transposed view and through broadcasting of the result
    gstest::gradcheck([f](const std::vector<Tensor>& xs) { return f(xs[0].transpose(0, 1)) * xs[0].sum({0}).unsqueeze(1); },
                      {x});
  }
}

namespace {

struct BinaryCase {
  std::string name;
  std::function<Tensor(const Tensor&, const Tensor&)> f;
  std::function<double(double, double)> ref;
  bool positive_a = false;  // pow: base > 0
  bool nonzero_b = false;   // div: |b| >= 0.5
};

std::vector<BinaryCase> binary_cases() {
  return {
      {"add", [](const Tensor& a, const Tensor& b) { return a + b; }, [](double a, double b) { return a + b; }},
      {"sub", [](const Tensor& a, const Tensor& b) { return a - b; }, [](double a, double b) { return a - b; }},
      {"mul", [](const Tensor& a, const Tensor& b) { return a * b; }, [](double a, double b) { return a * b; }},
      {"div", [](const Tensor& a, const Tensor& b) { return a / b; }, [](double a, double b) { return a / b; }, false,
       true},
      {"maximum", [](const Tensor& a, const Tensor& b) { return maximum(a, b); },
       [](double a, double b) { return std::max(a, b); }},
      {"minimum", [](const Tensor& a, const Tensor& b) { return minimum(a, b); },
       [](double a, double b) { return std::min(a, b); }},
      {"pow", [](const Tensor& a, const Tensor& b) { return pow(a, b); },
       [](double a, double b) { return std::pow(a, b); }, true},
  };
}

Tensor input_a(const BinaryCase& c, const Shape& s, uint64_t seed) {
  return c.positive_a ? uniform(s, seed, 0.4, 2.5) : Tensor::randn(s, seed, {DType::f64});
}
Tensor input_b(const BinaryCase& c, const Shape& s, uint64_t seed) {
  return c.nonzero_b ? away_from_zero(s, seed, 0.5) : Tensor::randn(s, seed, {DType::f64});
}

const std::vector<std::pair<Shape, Shape>> kShapePairs = {
    {{2, 3}, {2, 3}}, {{2, 3, 4}, {3, 1}}, {{1, 4}, {3, 1}}, {{}, {2, 3}}, {{2, 1, 3}, {}}, {{4}, {2, 1, 1}},
};

}  // namespace

TEST_CASE("ops/elementwise: binary ops broadcast like NumPy (plain and strided operands)") {
  for (const BinaryCase& c : binary_cases()) {
    for (const auto& [sa, sb] : kShapePairs) {
      INFO("op " << c.name << " " << shape_str(sa) << " with " << shape_str(sb));
      Tensor a = input_a(c, sa, 1), b = input_b(c, sb, 2);
      Shape so = broadcast_shapes(sa, sb, "test");
      prime_nan(shape_numel(so));
      Tensor y = c.f(a, b);
      CHECK(y.shape() == so);
      Tensor want = Tensor::from_vector(bcast_ref(vals(a), sa, vals(b), sb, so, c.ref), so);
      GS_EXPECT_CLOSE(y, want, 1e-13, 1e-13);
      GS_EXPECT_CLOSE(c.f(a.to(DType::f32), b.to(DType::f32)), want, 1e-5, 1e-5);
      GS_EXPECT_CLOSE(c.f(b, a), Tensor::from_vector(bcast_ref(vals(b), sb, vals(a), sa, so, c.ref), so), 1e-13, 1e-13);
    }
    INFO("op " << c.name << " on strided operands");
    // a: permuted view [3,4,2]; b: expanded [3,1,2] -> [3,4,2] with a stepped slice inside.
    Tensor abase = input_a(c, {2, 3, 4}, 3);
    Tensor a = abase.permute({1, 2, 0});
    Tensor bbase = input_b(c, {3, 1, 4}, 4);
    Tensor b = slice(bbase, 2, 0, 4, 2).expand({3, 4, 2});
    Tensor want = Tensor::from_vector(bcast_ref(vals(a), {3, 4, 2}, vals(b), {3, 4, 2}, {3, 4, 2}, c.ref), {3, 4, 2});
    GS_EXPECT_CLOSE(c.f(a, b), want, 1e-13, 1e-13);
    GS_EXPECT_CLOSE(c.f(a.contiguous(), b.contiguous()), want, 1e-13, 1e-13);
    // empty
    CHECK(c.f(Tensor::zeros({0, 3}, {DType::f64}), Tensor::ones({3}, {DType::f64})).shape() == Shape{0, 3});
  }
}

TEST_CASE("ops/elementwise: binary gradcheck and gradgradcheck, plain and broadcast") {
  for (const BinaryCase& c : binary_cases()) {
    for (const auto& [sa, sb] : std::vector<std::pair<Shape, Shape>>{{{2, 3}, {2, 3}}, {{2, 3}, {3}}, {{2, 1}, {1, 3}}, {{}, {3}}}) {
      INFO("op " << c.name << " " << shape_str(sa) << " with " << shape_str(sb));
      Tensor a = input_a(c, sa, 5), b = input_b(c, sb, 6);
      auto f = c.f;
      gstest::Fn fn = [f](const std::vector<Tensor>& xs) { return f(xs[0], xs[1]); };
      gstest::gradcheck(fn, {a, b});
      gstest::gradgradcheck(fn, {a, b});
    }
  }
}

TEST_CASE("ops/elementwise: maximum/minimum split the gradient evenly on ties and propagate NaN") {
  Tensor a = tens({1, 2, 3}, {3}).requires_grad_();
  Tensor b = tens({1, 5, 0}, {3}).requires_grad_();
  maximum(a, b).sum().backward();
  CHECK(vals(a.grad()) == std::vector<double>{0.5, 0, 1});
  CHECK(vals(b.grad()) == std::vector<double>{0.5, 1, 0});
  a.zero_grad();
  b.zero_grad();
  minimum(a, b).sum().backward();
  CHECK(vals(a.grad()) == std::vector<double>{0.5, 1, 0});
  CHECK(vals(b.grad()) == std::vector<double>{0.5, 0, 1});
  // a broadcast operand collects its share from every tied element
  Tensor c = tens({2, 2, 1}, {3}).requires_grad_();
  Tensor s = tens({2}, {1}).requires_grad_();
  maximum(c, s).sum().backward();
  CHECK(vals(c.grad()) == std::vector<double>{0.5, 0.5, 0});
  CHECK(vals(s.grad()) == std::vector<double>{2});
  // At an exact tie the central difference is 1/2 too, so gradcheck agrees with the rule.
  gstest::gradcheck([](const std::vector<Tensor>& x) { return maximum(x[0], x[1]); },
                    {tens({1, -2, 3}, {3}), tens({1, 0, 3}, {3})});
  const double nan = std::numeric_limits<double>::quiet_NaN();
  auto m = vals(maximum(tens({nan, 1}, {2}), tens({0, nan}, {2})));
  CHECK(std::isnan(m[0]));
  CHECK(std::isnan(m[1]));
  CHECK(std::isnan(vals(minimum(tens({nan}, {1}, DType::f32), tens({0}, {1}, DType::f32)))[0]));
}

TEST_CASE("ops/elementwise: where selects with a broadcast condition of any dtype") {
  Tensor cond = Tensor::from_vector<bool>({true, false}, {2, 1});
  Tensor a = tens({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor b = tens({-1, -2, -3}, {3});
  prime_nan(6);
  CHECK(vals(where(cond, a, b)) == std::vector<double>{1, 2, 3, -1, -2, -3});
  Tensor fcond = tens({0, 2.5, -1}, {3});  // non-zero = true
  CHECK(vals(where(fcond, a, b)) == std::vector<double>{-1, 2, 3, -1, 5, 6});
  CHECK(vals(where(gt(a, tens({3}, {1})), a, Tensor::zeros({}, {DType::f64}))) == std::vector<double>{0, 0, 0, 4, 5, 6});
  // strided operands
  Tensor at = tens({1, 2, 3, 4, 5, 6}, {3, 2}).transpose(0, 1);  // [[1,3,5],[2,4,6]]
  CHECK(vals(where(cond, at, b)) == std::vector<double>{1, 3, 5, -1, -2, -3});
  gstest::Fn f = [cond](const std::vector<Tensor>& x) { return where(cond, x[0], x[1]) * x[1]; };
  gstest::gradcheck(f, {a, b});
  gstest::gradgradcheck(f, {a, b});
  GS_CHECK_THROWS_WITH(where(cond, a, tens({1, 2}, {2})), ShapeError, "where", "[2,3]", "[2]");
  GS_CHECK_THROWS_WITH(where(cond, a, b.to(DType::f32)), DTypeError, "where", "float64", "float32");
}

TEST_CASE("ops/elementwise: comparisons give bool tensors outside the graph") {
  Tensor a = tens({1, 2, 3}, {3}).requires_grad_();
  Tensor b = tens({2}, {1});
  Tensor g = gt(a, b);
  CHECK(g.dtype() == DType::boolean);
  CHECK_FALSE(g.requires_grad());
  CHECK(vals(g) == std::vector<double>{0, 0, 1});
  CHECK(vals(lt(a, b)) == std::vector<double>{1, 0, 0});
  CHECK(vals(ge(a, b)) == std::vector<double>{0, 1, 1});
  CHECK(vals(le(a, b)) == std::vector<double>{1, 1, 0});
  CHECK(vals(eq(a, b)) == std::vector<double>{0, 1, 0});
  CHECK(vals(ne(a, b)) == std::vector<double>{1, 0, 1});
  CHECK(vals(gt(tens({1, 2, 3, 4}, {2, 2}).transpose(0, 1), tens({0, 5}, {2}))) == std::vector<double>{1, 0, 1, 0});
}

TEST_CASE("ops/elementwise: softplus follows PyTorch's threshold rule and gradient") {
  // Around the threshold (beta 2, threshold 3): beta*x = 3 exactly is NOT above it.
  Tensor x = tens({1.4, 1.5, 1.6, -3}, {4}).requires_grad_();
  Tensor y = softplus(x, 2.0, 3.0);
  auto v = vals(y);
  CHECK(v[0] == doctest::Approx(std::log1p(std::exp(2.8)) / 2).epsilon(1e-15));
  CHECK(v[1] == doctest::Approx(std::log1p(std::exp(3.0)) / 2).epsilon(1e-15));
  CHECK(v[2] == 1.6);
  y.sum().backward();
  auto g = vals(x.grad());
  CHECK(g[0] == doctest::Approx(1 / (1 + std::exp(-2.8))).epsilon(1e-14));
  CHECK(g[1] == doctest::Approx(1 / (1 + std::exp(-3.0))).epsilon(1e-14));
  CHECK(g[2] == 1);
  CHECK(g[3] == doctest::Approx(1 / (1 + std::exp(6.0))).epsilon(1e-14));
}

TEST_CASE("ops/elementwise: bad input throws typed errors naming the op and shapes") {
  Tensor a = Tensor::ones({2, 3}), b = Tensor::ones({4});
  GS_CHECK_THROWS_WITH(add(a, b), ShapeError, "add", "[2,3]", "[4]");
  GS_CHECK_THROWS_WITH(maximum(a, b), ShapeError, "maximum", "[2,3]", "[4]");
  GS_CHECK_THROWS_WITH(pow(a, b), ShapeError, "pow");
  GS_CHECK_THROWS_WITH(mul(a, Tensor::ones({2, 3}, {DType::f64})), DTypeError, "mul", "float32", "float64", "[2,3]");
  GS_CHECK_THROWS_WITH(div(Tensor::ones({2}, {DType::i64}), Tensor::ones({2}, {DType::i64})), DTypeError, "div",
                       "int64");
  GS_CHECK_THROWS_WITH(exp(Tensor::ones({2}, {DType::i32})), DTypeError, "exp", "int32");
  GS_CHECK_THROWS_WITH(relu(Tensor::ones({2}, {DType::f16})), DTypeError, "relu", "float16");
  GS_CHECK_THROWS_WITH(a + Tensor::ones({2, 3}, {DType::bf16}), DTypeError, "add", "bfloat16");
  GS_CHECK_THROWS_WITH(clamp(a, 2, 1), ValueError, "clamp", "lo");
  GS_CHECK_THROWS_WITH(softplus(a, 0.0), ValueError, "softplus", "beta");
  GS_CHECK_THROWS_WITH(gt(a, b), ShapeError, "gt", "[2,3]", "[4]");
}
