#include "support/harness.hpp"

using namespace gradstyle;

TEST_CASE("core: basic autograd chain") {
  Tensor x = Tensor::from_vector<double>({1, 2, 3, 4}, {2, 2}).requires_grad_();
  Tensor y = (x * x).sum();
  CHECK(y.item() == doctest::Approx(30));
  y.backward();
  GS_EXPECT_CLOSE(x.grad(), Tensor::from_vector<double>({2, 4, 6, 8}, {2, 2}), 0, 0);
}

TEST_CASE("core: gradcheck and gradgradcheck of a composite") {
  Tensor a = Tensor::randn({3, 4}, 1, {DType::f64});
  Tensor b = Tensor::randn({4, 2}, 2, {DType::f64});
  gstest::Fn f = [](const std::vector<Tensor>& x) { return tanh(matmul(x[0], x[1])) * sigmoid(x[0].sum({1}, true)); };
  gstest::gradcheck(f, {a, b});
  gstest::gradgradcheck(f, {a, b});
}
