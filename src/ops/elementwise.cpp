#include "gradstyle/ops/elementwise.hpp"

#include <cmath>

#include "gradstyle/ops/reduce.hpp"
#include "ops/common.hpp"

namespace gradstyle {

using autograd::any_requires_grad;
using autograd::is_grad_enabled;
using autograd::record;
using backend::BinaryOp;
using backend::make_broadcast_view;
using backend::make_view;
using backend::UnaryOp;
using namespace ops_detail;
using V = std::vector<Tensor>;

namespace {

Tensor unary_raw(UnaryOp op, const Tensor& a, double p0 = 0, double p1 = 0) {
  Tensor out = Tensor::empty(a.shape(), {a.dtype(), a.device()});
  if (out.numel() > 0) GS_DISPATCH(a.device(), unary, op, make_view(out), make_view(a), p0, p1);
  return out;
}

Tensor binary_raw(BinaryOp op, const Tensor& a, const Tensor& b, const char* name) {
  check_float(a, name);
  check_same(a, b, name);
  Shape s = broadcast_shapes(a.shape(), b.shape(), name);
  DType odt = op >= BinaryOp::Gt ? DType::boolean : a.dtype();
  Tensor out = Tensor::empty(s, {odt, a.device()});
  if (out.numel() > 0)
    GS_DISPATCH(a.device(), binary, op, make_view(out), make_broadcast_view(a, s), make_broadcast_view(b, s));
  return out;
}

// A non-differentiable 0/1 mask in x's dtype.
Tensor mask_of(UnaryOp op, const Tensor& x, double p0 = 0, double p1 = 0) {
  return unary_raw(op, x.detach(), p0, p1);
}

}  // namespace

Tensor scalar_like(double v, const Tensor& like) { return Tensor::scalar(v, {like.dtype(), like.device()}); }

// ---- binary -----------------------------------------------------------------------------------

Tensor add(const Tensor& a, const Tensor& b) {
  Tensor out = binary_raw(BinaryOp::Add, a, b, "add");
  if (any_requires_grad({&a, &b})) {
    Shape sa = a.shape(), sb = b.shape();
    record("add", out, {a, b}, [sa, sb](const Tensor& g) { return V{sum_to(g, sa), sum_to(g, sb)}; });
  }
  return out;
}

Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor out = binary_raw(BinaryOp::Sub, a, b, "sub");
  if (any_requires_grad({&a, &b})) {
    Shape sa = a.shape(), sb = b.shape();
    record("sub", out, {a, b}, [sa, sb](const Tensor& g) { return V{sum_to(g, sa), sum_to(neg(g), sb)}; });
  }
  return out;
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor out = binary_raw(BinaryOp::Mul, a, b, "mul");
  if (any_requires_grad({&a, &b})) {
    bool ga = a.requires_grad(), gb = b.requires_grad();
    record("mul", out, {a, b}, [a, b, ga, gb](const Tensor& g) {
      return V{ga ? sum_to(mul(g, b), a.shape()) : Tensor(), gb ? sum_to(mul(g, a), b.shape()) : Tensor()};
    });
  }
  return out;
}

Tensor div(const Tensor& a, const Tensor& b) {
  Tensor out = binary_raw(BinaryOp::Div, a, b, "div");
  if (any_requires_grad({&a, &b})) {
    bool ga = a.requires_grad(), gb = b.requires_grad();
    record("div", out, {a, b}, [a, b, ga, gb](const Tensor& g) {
      Tensor da = ga ? sum_to(div(g, b), a.shape()) : Tensor();
      Tensor db = gb ? sum_to(neg(div(mul(g, a), mul(b, b))), b.shape()) : Tensor();
      return V{da, db};
    });
  }
  return out;
}

static Tensor minmax(const Tensor& a, const Tensor& b, bool is_max) {
  const char* name = is_max ? "maximum" : "minimum";
  Tensor out = binary_raw(is_max ? BinaryOp::Maximum : BinaryOp::Minimum, a, b, name);
  if (any_requires_grad({&a, &b})) {
    record(name, out, {a, b}, [a, b, is_max](const Tensor& g) {
      // share of the gradient that goes to a: 1 where a wins, 1/2 on ties, 0 where b wins
      Tensor ad = a.detach(), bd = b.detach();
      Tensor wins = binary_raw(is_max ? BinaryOp::Gt : BinaryOp::Lt, ad, bd, "minmax").to(a.dtype());
      Tensor ties = binary_raw(BinaryOp::Eq, ad, bd, "minmax").to(a.dtype());
      Tensor share = add(wins, mul_scalar(ties, 0.5));
      Tensor ga = mul(g, share);
      Tensor gb = sub(g, ga);
      return V{sum_to(ga, a.shape()), sum_to(gb, b.shape())};
    });
  }
  return out;
}
Tensor maximum(const Tensor& a, const Tensor& b) { return minmax(a, b, true); }
Tensor minimum(const Tensor& a, const Tensor& b) { return minmax(a, b, false); }

Tensor pow(const Tensor& a, const Tensor& b) {
  Tensor out = binary_raw(BinaryOp::Pow, a, b, "pow");
  if (any_requires_grad({&a, &b})) {
    bool ga = a.requires_grad(), gb = b.requires_grad();
    record("pow", out, {a, b}, [a, b, ga, gb](const Tensor& g) {
      Tensor da = ga ? sum_to(mul(g, mul(b, pow(a, sub(b, scalar_like(1, b))))), a.shape()) : Tensor();
      Tensor db = gb ? sum_to(mul(g, mul(pow(a, b), log(a))), b.shape()) : Tensor();
      return V{da, db};
    });
  }
  return out;
}

Tensor pow(const Tensor& a, double e) {
  check_float(a, "pow");
  Tensor out = unary_raw(UnaryOp::PowScalar, a, e);
  if (any_requires_grad({&a})) {
    record("pow_scalar", out, {a}, [a, e](const Tensor& g) {
      if (e == 0.0) return V{mul_scalar(g, 0.0)};
      if (e == 1.0) return V{g};
      return V{mul(g, mul_scalar(pow(a, e - 1.0), e))};
    });
  }
  return out;
}

// ---- comparisons (not differentiable) --------------------------------------------------------
Tensor gt(const Tensor& a, const Tensor& b) { return binary_raw(BinaryOp::Gt, a.detach(), b.detach(), "gt"); }
Tensor lt(const Tensor& a, const Tensor& b) { return binary_raw(BinaryOp::Lt, a.detach(), b.detach(), "lt"); }
Tensor ge(const Tensor& a, const Tensor& b) { return binary_raw(BinaryOp::Ge, a.detach(), b.detach(), "ge"); }
Tensor le(const Tensor& a, const Tensor& b) { return binary_raw(BinaryOp::Le, a.detach(), b.detach(), "le"); }
Tensor eq(const Tensor& a, const Tensor& b) { return binary_raw(BinaryOp::Eq, a.detach(), b.detach(), "eq"); }
Tensor ne(const Tensor& a, const Tensor& b) { return binary_raw(BinaryOp::Ne, a.detach(), b.detach(), "ne"); }

// ---- unary ------------------------------------------------------------------------------------

#define GS_UNARY_BEGIN(fname, OPNAME, ...)          \
  Tensor fname(const Tensor& a) {                    \
    check_float(a, #fname);                          \
    Tensor out = unary_raw(UnaryOp::OPNAME, a, ##__VA_ARGS__); \
    if (any_requires_grad({&a})) {                   \
      Tensor y = out.detach();                       \
      (void)y;                                       \
      record(#fname, out, {a}, [a, y](const Tensor& g) -> V {
#define GS_UNARY_END \
  });                \
  }                  \
  return out;        \
  }

GS_UNARY_BEGIN(neg, Neg) return V{neg(g)}; GS_UNARY_END
// For first-order backward the saved output y is used; under create_graph it is recomputed from
// a so that the second derivative sees its dependence on a.
GS_UNARY_BEGIN(exp, Exp) return V{mul(g, is_grad_enabled() ? exp(a) : y)}; GS_UNARY_END
GS_UNARY_BEGIN(log, Log) return V{div(g, a)}; GS_UNARY_END
GS_UNARY_BEGIN(sqrt, Sqrt) return V{mul(g, mul_scalar(rsqrt(a), 0.5))}; GS_UNARY_END
GS_UNARY_BEGIN(rsqrt, Rsqrt) return V{mul(g, mul_scalar(pow(a, -1.5), -0.5))}; GS_UNARY_END
GS_UNARY_BEGIN(abs, Abs) return V{mul(g, sign(a))}; GS_UNARY_END
GS_UNARY_BEGIN(square, Square) return V{mul(g, mul_scalar(a, 2.0))}; GS_UNARY_END
GS_UNARY_BEGIN(reciprocal, Reciprocal) return V{neg(mul(g, square(is_grad_enabled() ? reciprocal(a) : y)))}; GS_UNARY_END
GS_UNARY_BEGIN(sin, Sin) return V{mul(g, cos(a))}; GS_UNARY_END
GS_UNARY_BEGIN(cos, Cos) return V{neg(mul(g, sin(a)))}; GS_UNARY_END
// PyTorch masks with a select (threshold_backward), so a NaN/inf upstream gradient at x <= 0 is
// dropped, not turned into NaN by 0 * inf (LPIPS relies on it: all-zero feature vectors).
GS_UNARY_BEGIN(relu, Relu) return V{where(mask_of(UnaryOp::StepPositive, a), g, scalar_like(0.0, g))}; GS_UNARY_END
GS_UNARY_BEGIN(sigmoid, Sigmoid) {
  Tensor s = is_grad_enabled() ? sigmoid(a) : y;
  return V{mul(g, mul(s, add_scalar(neg(s), 1.0)))};
} GS_UNARY_END
GS_UNARY_BEGIN(tanh, Tanh) {
  Tensor t = is_grad_enabled() ? tanh(a) : y;
  return V{mul(g, add_scalar(neg(square(t)), 1.0))};
} GS_UNARY_END
#undef GS_UNARY_BEGIN
#undef GS_UNARY_END

Tensor sign(const Tensor& a) {
  check_float(a, "sign");
  return unary_raw(UnaryOp::Sign, a.detach());
}

Tensor add_scalar(const Tensor& a, double s) {
  check_float(a, "add_scalar");
  Tensor out = unary_raw(UnaryOp::AddScalar, a, s);
  if (any_requires_grad({&a})) record("add_scalar", out, {a}, [](const Tensor& g) { return V{g}; });
  return out;
}

Tensor mul_scalar(const Tensor& a, double s) {
  check_float(a, "mul_scalar");
  Tensor out = unary_raw(UnaryOp::MulScalar, a, s);
  if (any_requires_grad({&a})) record("mul_scalar", out, {a}, [s](const Tensor& g) { return V{mul_scalar(g, s)}; });
  return out;
}

Tensor clamp(const Tensor& a, double lo, double hi) {
  check_float(a, "clamp");
  GS_CHECK(!(lo > hi), ValueError, "clamp: lo (", lo, ") is greater than hi (", hi, ")");
  Tensor out = unary_raw(UnaryOp::Clamp, a, lo, hi);
  if (any_requires_grad({&a}))
    record("clamp", out, {a}, [a, lo, hi](const Tensor& g) { return V{mul(g, mask_of(UnaryOp::ClampMask, a, lo, hi))}; });
  return out;
}

Tensor leaky_relu(const Tensor& a, double slope) {
  check_float(a, "leaky_relu");
  Tensor out = unary_raw(UnaryOp::LeakyRelu, a, slope);
  if (any_requires_grad({&a}))
    record("leaky_relu", out, {a}, [a, slope](const Tensor& g) { return V{mul(g, mask_of(UnaryOp::LeakyReluGrad, a, slope))}; });
  return out;
}

Tensor softplus(const Tensor& a, double beta, double threshold) {
  check_float(a, "softplus");
  GS_CHECK(beta > 0, ValueError, "softplus: beta must be > 0, got ", beta);
  Tensor out = unary_raw(UnaryOp::Softplus, a, beta, threshold);
  if (any_requires_grad({&a}))
    record("softplus", out, {a}, [a, beta, threshold](const Tensor& g) {
      // d/dx = sigmoid(beta x) below the threshold, 1 above it (where softplus is x itself)
      Tensor bx = mul_scalar(a, beta);
      Tensor linear = gt(bx, scalar_like(threshold, a));
      return V{mul(g, where(linear, scalar_like(1.0, a), sigmoid(bx)))};
    });
  return out;
}

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  check_defined(cond, "where", "cond");
  check_same(a, b, "where");
  GS_CHECK(cond.device() == a.device(), DeviceError, "where: cond is on ", cond.device().str(), " but a is on ",
           a.device().str());
  Shape s = broadcast_shapes(broadcast_shapes(cond.shape(), a.shape(), "where"), b.shape(), "where");
  Tensor out = Tensor::empty(s, {a.dtype(), a.device()});
  if (out.numel() > 0)
    GS_DISPATCH(a.device(), where, make_view(out), make_broadcast_view(cond, s), make_broadcast_view(a, s),
                make_broadcast_view(b, s));
  if (any_requires_grad({&a, &b})) {
    Tensor c = cond.detach();
    Shape sa = a.shape(), sb = b.shape();
    record("where", out, {a, b}, [c, sa, sb](const Tensor& g) {
      Tensor z = scalar_like(0.0, g);
      return V{sum_to(where(c, g, z), sa), sum_to(where(c, z, g), sb)};
    });
  }
  return out;
}

}  // namespace gradstyle
