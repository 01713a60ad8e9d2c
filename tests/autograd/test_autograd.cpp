// The autograd API: backward / retain_graph, grad() with create_graph and allow_unused, grad mode,
// detach, requires_grad_, accumulation, shared inputs (diamonds) and gradients through views.
#include "core/core_util.hpp"

using namespace gradstyle;
using coretest::tens;
using coretest::vals;

TEST_CASE("autograd: a second backward without retain_graph names the node") {
  Tensor x = tens({1, 2, 3}, {3}).requires_grad_();
  Tensor y = (x * x).sum();
  CHECK(y.grad_fn()->name() == "sum");
  y.backward();
  GS_CHECK_THROWS_WITH(y.backward(), AutogradError, "'sum'", "a second time", "retain_graph=true");
}

TEST_CASE("autograd: retain_graph allows a second backward and gradients accumulate") {
  Tensor x = tens({1, 2, 3}, {3}).requires_grad_();
  Tensor y = (x * x).sum();
  y.backward(Tensor(), /*retain_graph=*/true);
  CHECK(vals(x.grad()) == std::vector<double>{2, 4, 6});
  y.backward();
  CHECK(vals(x.grad()) == std::vector<double>{4, 8, 12});
  // A fresh graph accumulates onto the existing .grad too.
  (x * 3.0).sum().backward();
  CHECK(vals(x.grad()) == std::vector<double>{7, 11, 15});
  x.zero_grad();
  CHECK_FALSE(x.grad().defined());
  // .grad of a first-order backward carries no history.
  (x * x).sum().backward();
  CHECK(x.grad().grad_fn() == nullptr);
  CHECK_FALSE(x.grad().requires_grad());
}

TEST_CASE("autograd: grad() with create_graph gives higher derivatives of x^3") {
  Tensor x = tens({-1.5, 0.5, 2}, {3}).requires_grad_();
  Tensor y = (x * x * x).sum();
  auto d1 = autograd::grad({y}, {x}, {}, false, /*create_graph=*/true);
  GS_EXPECT_CLOSE(d1[0], tens({6.75, 0.75, 12}, {3}), 1e-12, 0);  // 3x^2
  CHECK(d1[0].requires_grad());
  auto d2 = autograd::grad({d1[0].sum()}, {x}, {}, false, true);
  GS_EXPECT_CLOSE(d2[0], tens({-9, 3, 12}, {3}), 1e-12, 0);  // 6x
  auto d3 = autograd::grad({d2[0].sum()}, {x});
  GS_EXPECT_CLOSE(d3[0], tens({6, 6, 6}, {3}), 1e-12, 0);  // 6
  CHECK_FALSE(x.grad().defined());  // grad() leaves .grad alone

  // The same through pow, and a mixed second derivative: f = sum(x^2 y) -> d/dy (df/dx) = 2x.
  Tensor a = tens({1, 2}, {2}).requires_grad_(), b = tens({3, 4}, {2}).requires_grad_();
  Tensor f = (a.pow(2.0) * b).sum();
  auto ga = autograd::grad({f}, {a}, {}, false, true);
  GS_EXPECT_CLOSE(ga[0], tens({6, 16}, {2}), 1e-12, 0);
  auto gab = autograd::grad({ga[0].sum()}, {a, b});
  GS_EXPECT_CLOSE(gab[0], tens({6, 8}, {2}), 1e-12, 0);  // d/da sum(2ab) = 2b
  GS_EXPECT_CLOSE(gab[1], tens({2, 4}, {2}), 1e-12, 0);  // d/db sum(2ab) = 2a
}

TEST_CASE("autograd: backward with create_graph makes .grad differentiable") {
  Tensor x = tens({0.5, -1}, {2}).requires_grad_();
  Tensor y = (x * x * x).sum();
  y.backward(Tensor(), false, /*create_graph=*/true);
  Tensor g = x.grad();
  CHECK(g.requires_grad());
  auto h = autograd::grad({g.sum()}, {x});
  GS_EXPECT_CLOSE(h[0], tens({3, -6}, {2}), 1e-12, 0);
  x.zero_grad();  // breaks the x -> .grad -> graph -> x cycle
}

TEST_CASE("autograd: grad() with grad_outputs, non-leaf inputs and unused inputs") {
  Tensor x = tens({1, 2, 3}, {3}).requires_grad_();
  Tensor z = tens({5}, {1}).requires_grad_();
  Tensor h = x * 2.0;  // non-leaf
  Tensor y = h * h;    // [3]
  auto g = autograd::grad({y}, {x, h}, {tens({1, 0, -1}, {3})}, true);
  GS_EXPECT_CLOSE(g[0], tens({8, 0, -24}, {3}), 1e-12, 0);  // 8x * v
  GS_EXPECT_CLOSE(g[1], tens({4, 0, -12}, {3}), 1e-12, 0);  // 2h * v
  GS_CHECK_THROWS_WITH(autograd::grad({y.sum()}, {x, z}, {}, true), AutogradError, "input 1", "[1]", "allow_unused");
  auto gu = autograd::grad({y.sum()}, {x, z}, {}, true, false, /*allow_unused=*/true);
  CHECK(gu[0].defined());
  CHECK_FALSE(gu[1].defined());
  GS_CHECK_THROWS_WITH(autograd::grad({y.sum()}, {tens({1}, {1})}), AutogradError, "does not require grad");
  GS_CHECK_THROWS_WITH(autograd::grad({y}, {x}), AutogradError, "[3]", "non-scalar");
  GS_CHECK_THROWS_WITH(autograd::grad({y}, {x}, {tens({1, 2}, {2})}), ShapeError, "[2]", "[3]");
  CHECK_FALSE(x.grad().defined());
}

TEST_CASE("autograd: backward argument errors") {
  Tensor c = tens({1, 2}, {2});
  GS_CHECK_THROWS_WITH(c.sum().backward(), AutogradError, "does not require grad");
  Tensor x = tens({1, 2}, {2}).requires_grad_();
  Tensor y = x * 2.0;
  GS_CHECK_THROWS_WITH(y.backward(), AutogradError, "[2]", "non-scalar");
  y.backward(tens({1, -1}, {2}));
  CHECK(vals(x.grad()) == std::vector<double>{2, -2});
  // A leaf can be a root: its gradient is the given one.
  Tensor l = tens({3}, {1}).requires_grad_();
  l.backward();
  CHECK(vals(l.grad()) == std::vector<double>{1});
}

TEST_CASE("autograd: NoGradGuard and EnableGradGuard control recording") {
  Tensor x = tens({1, 2}, {2}).requires_grad_();
  CHECK(autograd::is_grad_enabled());
  {
    autograd::NoGradGuard ng;
    CHECK_FALSE(autograd::is_grad_enabled());
    Tensor y = x * x;
    CHECK_FALSE(y.requires_grad());
    CHECK(y.grad_fn() == nullptr);
    {
      autograd::EnableGradGuard eg(true);
      CHECK((x * x).requires_grad());
    }
    CHECK_FALSE(autograd::is_grad_enabled());
    {
      autograd::NoGradGuard inner;
    }
    CHECK_FALSE(autograd::is_grad_enabled());
  }
  CHECK(autograd::is_grad_enabled());
  CHECK((x * x).requires_grad());
}

TEST_CASE("autograd: detach shares storage and stops gradients") {
  Tensor x = tens({1, 2, 3}, {3}).requires_grad_();
  Tensor h = x * x;
  Tensor d = h.detach();
  CHECK(d.storage() == h.storage());
  CHECK_FALSE(d.requires_grad());
  CHECK(d.is_leaf());
  Tensor y = (d * x).sum();  // d is a constant here: dy/dx = d = x^2
  y.backward();
  CHECK(vals(x.grad()) == std::vector<double>{1, 4, 9});
}

TEST_CASE("autograd: requires_grad_ rules") {
  Tensor x = tens({1, 2}, {2}).requires_grad_();
  Tensor y = x * 2.0;
  CHECK_FALSE(y.is_leaf());
  GS_CHECK_THROWS_WITH(y.requires_grad_(), AutogradError, "requires_grad_", "leaf", "detach()");
  GS_CHECK_THROWS_WITH(Tensor::zeros({2}, {DType::i64}).requires_grad_(), DTypeError, "requires_grad_", "int64");
  Tensor z = tens({1}, {1}).requires_grad_();
  z.requires_grad_(false);
  CHECK_FALSE(z.requires_grad());
  CHECK_FALSE((z * z).requires_grad());
  // Ops on tensors that don't require grad record nothing.
  Tensor c = tens({1}, {1});
  CHECK((c * c).grad_fn() == nullptr);
}

TEST_CASE("autograd: diamonds and repeated inputs sum their gradient paths") {
  Tensor x = tens({0.5, -2}, {2}).requires_grad_();
  Tensor a = x * x;       // used twice below
  Tensor b = a * 3.0 + a.exp();
  Tensor y = (b + x).sum();  // dy/dx = (3 + e^{x^2}) 2x + 1
  y.backward();
  auto xv = vals(x);
  std::vector<double> want;
  for (double v : xv) want.push_back((3 + std::exp(v * v)) * 2 * v + 1);
  GS_EXPECT_CLOSE(x.grad(), Tensor::from_vector(want, {2}), 1e-12, 1e-12);
  // mul(x, x): both operands are the same tensor.
  Tensor w = tens({3}, {1}).requires_grad_();
  mul(w, w).sum().backward();
  CHECK(vals(w.grad()) == std::vector<double>{6});
}

TEST_CASE("autograd: gradients flow through views") {
  Tensor x = tens({1, 2, 3, 4, 5, 6}, {2, 3}).requires_grad_();
  // narrow: zeros outside the window
  (x.narrow(1, 1, 2) * tens({10, 20}, {2})).sum().backward();
  CHECK(vals(x.grad()) == std::vector<double>{0, 10, 20, 0, 10, 20});
  x.zero_grad();
  // permute/transpose: the gradient is permuted back
  (x.transpose(0, 1) * tens({1, 2, 3, 4, 5, 6}, {3, 2})).sum().backward();
  CHECK(vals(x.grad()) == std::vector<double>{1, 3, 5, 2, 4, 6});
  x.zero_grad();
  // expand: summed over the expanded dim
  (x.unsqueeze(0).expand({4, 2, 3}) * Tensor::arange(4, {DType::f64}).reshape({4, 1, 1})).sum().backward();
  CHECK(vals(x.grad()) == std::vector<double>(6, 6.0));
  x.zero_grad();
  // strided slice and select
  (slice(x, 1, 0, 3, 2).sum() + select(x, 0, 1).sum() * 10.0).backward();
  CHECK(vals(x.grad()) == std::vector<double>{1, 0, 1, 11, 10, 11});
  x.zero_grad();
  // reshape of a non-contiguous view (a copy under the hood) still routes gradients
  (x.transpose(0, 1).reshape({6}) * tens({1, 2, 3, 4, 5, 6}, {6})).sum().backward();
  CHECK(vals(x.grad()) == std::vector<double>{1, 3, 5, 2, 4, 6});
  x.zero_grad();
  // dtype conversion is differentiable and returns the gradient in the source dtype
  Tensor f = tens({1, 2}, {2}, DType::f32).requires_grad_();
  (f.to(DType::f64) * tens({3, 4}, {2})).sum().backward();
  CHECK(f.grad().dtype() == DType::f32);
  CHECK(vals(f.grad()) == std::vector<double>{3, 4});
}

TEST_CASE("autograd: a leaf's .grad survives the graph and the graph does not keep the leaf alive") {
  std::weak_ptr<TensorImpl> weak;
  {
    Tensor x = tens({1, 2}, {2}).requires_grad_();
    weak = x.impl_ptr();
    Tensor y = (x * x).sum();
    y.backward();
    CHECK(vals(x.grad()) == std::vector<double>{2, 4});
  }
  CHECK(weak.expired());
}

TEST_CASE("autograd: several roots at once, and gradients with respect to a view") {
  Tensor x = tens({1, 2, 3}, {3}).requires_grad_();
  autograd::backward({x.sum(), (x * x).sum()}, {});
  CHECK(vals(x.grad()) == std::vector<double>{3, 5, 7});  // 1 + 2x
  Tensor v = x.narrow(0, 1, 2);                            // a non-leaf view of the leaf
  Tensor y = (v * v * v).sum() + x.sum();
  auto g = autograd::grad({y}, {v, x});
  CHECK(vals(g[0]) == std::vector<double>{12, 27});        // 3 v^2
  CHECK(vals(g[1]) == std::vector<double>{1, 13, 28});     // 1 + 3 v^2 scattered back
  GS_CHECK_THROWS_WITH(autograd::backward({x.sum(), x.sum()}, {Tensor()}), AutogradError, "2 roots", "1 gradients");
}
