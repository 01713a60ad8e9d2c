// The Tensor methods and operators that record autograd history or call ops. They are declared
// in core/tensor.hpp (one handle type for every layer) and defined here, in the ops layer, so
// src/core includes nothing above core.
#include <iomanip>
#include <sstream>

#include "backend/kernels.hpp"
#include "gradstyle/autograd/autograd.hpp"
#include "gradstyle/core/tensor.hpp"
#include "gradstyle/ops/elementwise.hpp"
#include "gradstyle/ops/reduce.hpp"
#include "gradstyle/ops/shape.hpp"

namespace gradstyle {

using backend::make_broadcast_view;
using backend::make_view;

// ---- conversion -------------------------------------------------------------------------------

Tensor Tensor::to(Device d) const {
  if (device() == d) return *this;
  Tensor src = detach().contiguous();
  Tensor out = empty(shape(), {dtype(), d});
  copy_bytes(out.raw_data(), d, src.raw_data(), device(), nbytes());
  if (autograd::any_requires_grad({this})) {
    Device from = device();
    autograd::record("to_device", out, {*this}, [from](const Tensor& g) {
      return std::vector<Tensor>{g.to(from)};
    });
  }
  return out;
}

Tensor Tensor::to(DType t) const {
  if (dtype() == t) return *this;
  Tensor out = empty(shape(), {t, device()});
  if (numel() > 0) GS_DISPATCH(device(), copy, make_view(out), make_view(*this));
  if (is_floating(t) && is_floating(dtype()) && autograd::any_requires_grad({this})) {
    DType from = dtype();
    autograd::record("to_dtype", out, {*this}, [from](const Tensor& g) {
      return std::vector<Tensor>{g.to(from)};
    });
  }
  return out;
}

Tensor Tensor::clone() const {
  Tensor out = empty(shape(), {dtype(), device()});
  if (numel() > 0) GS_DISPATCH(device(), copy, make_view(out), make_view(*this));
  if (autograd::any_requires_grad({this}))
    autograd::record("clone", out, {*this}, [](const Tensor& g) { return std::vector<Tensor>{g}; });
  return out;
}

Tensor Tensor::contiguous() const { return is_contiguous() ? *this : clone(); }

double Tensor::item() const {
  GS_CHECK(numel() == 1, ShapeError, "Tensor::item: tensor of shape ", shape_str(shape()),
           " has ", numel(), " elements, expected 1");
  return to_vector<double>()[0];
}

// ---- in-place ---------------------------------------------------------------------------------

static void check_inplace(const Tensor& t, const char* op) {
  GS_CHECK(!(t.requires_grad() && autograd::is_grad_enabled()), AutogradError, op,
           ": in-place change of a tensor that requires grad (wrap it in autograd::NoGradGuard)");
}

Tensor& Tensor::fill_(double v) {
  check_inplace(*this, "fill_");
  if (numel() > 0) GS_DISPATCH(device(), fill, make_view(*this), v);
  return *this;
}

Tensor& Tensor::copy_(const Tensor& src) {
  check_inplace(*this, "copy_");
  Tensor s = src.detach().to(device());
  broadcast_shapes(s.shape(), shape(), "copy_");  // throws a named error when they don't fit
  GS_CHECK(broadcast_shapes(s.shape(), shape(), "copy_") == shape(), ShapeError, "copy_: source ",
           shape_str(src.shape()), " does not broadcast to destination ", shape_str(shape()));
  if (numel() > 0) GS_DISPATCH(device(), copy, make_view(*this), make_broadcast_view(s, shape()));
  return *this;
}

Tensor& Tensor::add_(const Tensor& other, double alpha) {
  check_inplace(*this, "add_");
  autograd::NoGradGuard ng;
  Tensor o = alpha == 1.0 ? other.detach() : mul_scalar(other.detach(), alpha);
  return copy_(add(detach(), o));
}

Tensor& Tensor::mul_(double s) {
  check_inplace(*this, "mul_");
  if (numel() > 0)
    GS_DISPATCH(device(), unary, backend::UnaryOp::MulScalar, make_view(*this), make_view(*this), s, 0.0);
  return *this;
}

void Tensor::backward(const Tensor& gradient, bool retain_graph, bool create_graph) const {
  autograd::backward({*this}, {gradient}, retain_graph, create_graph);
}

// ---- method sugar -----------------------------------------------------------------------------

Tensor Tensor::reshape(const Shape& s) const { return gradstyle::reshape(*this, s); }
Tensor Tensor::view(const Shape& s) const { return gradstyle::view(*this, s); }
Tensor Tensor::permute(const Shape& d) const { return gradstyle::permute(*this, d); }
Tensor Tensor::transpose(int64_t a, int64_t b) const { return gradstyle::transpose(*this, a, b); }
Tensor Tensor::narrow(int64_t d, int64_t s, int64_t l) const { return gradstyle::narrow(*this, d, s, l); }
Tensor Tensor::expand(const Shape& s) const { return gradstyle::expand(*this, s); }
Tensor Tensor::unsqueeze(int64_t d) const { return gradstyle::unsqueeze(*this, d); }
Tensor Tensor::squeeze(int64_t d) const { return gradstyle::squeeze(*this, d); }
Tensor Tensor::flatten(int64_t s, int64_t e) const { return gradstyle::flatten(*this, s, e); }
Tensor Tensor::sum(const Shape& d, bool k) const { return gradstyle::sum(*this, d, k); }
Tensor Tensor::mean(const Shape& d, bool k) const { return gradstyle::mean(*this, d, k); }
Tensor Tensor::pow(double e) const { return gradstyle::pow(*this, e); }
Tensor Tensor::abs() const { return gradstyle::abs(*this); }
Tensor Tensor::sqrt() const { return gradstyle::sqrt(*this); }
Tensor Tensor::exp() const { return gradstyle::exp(*this); }
Tensor Tensor::log() const { return gradstyle::log(*this); }

Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator-(const Tensor& a) { return neg(a); }
Tensor operator+(const Tensor& a, double b) { return add_scalar(a, b); }
Tensor operator-(const Tensor& a, double b) { return add_scalar(a, -b); }
Tensor operator*(const Tensor& a, double b) { return mul_scalar(a, b); }
Tensor operator/(const Tensor& a, double b) { return mul_scalar(a, 1.0 / b); }
Tensor operator+(double a, const Tensor& b) { return add_scalar(b, a); }
Tensor operator-(double a, const Tensor& b) { return add_scalar(neg(b), a); }
Tensor operator*(double a, const Tensor& b) { return mul_scalar(b, a); }
Tensor operator/(double a, const Tensor& b) { return mul_scalar(reciprocal(b), a); }

// ---- printing ---------------------------------------------------------------------------------

static void print_rec(std::ostream& os, const std::vector<double>& v, const Shape& s, size_t d,
                      int64_t base, int maxn, bool integral) {
  if (d == s.size()) {
    if (integral) os << int64_t(v[size_t(base)]);
    else os << std::setprecision(5) << v[size_t(base)];
    return;
  }
  int64_t stride = 1;
  for (size_t i = d + 1; i < s.size(); ++i) stride *= s[i];
  os << "[";
  for (int64_t i = 0; i < s[d]; ++i) {
    if (s[d] > maxn && i == maxn / 2) {
      os << "..., ";
      i = s[d] - maxn / 2;
    }
    print_rec(os, v, s, d + 1, base + i * stride, maxn, integral);
    if (i + 1 < s[d]) os << (d + 1 == s.size() ? ", " : ",\n ");
  }
  os << "]";
}

std::string Tensor::str(int max_per_dim) const {
  if (!defined()) return "Tensor(undefined)";
  std::ostringstream os;
  os << "Tensor(shape=" << shape_str(shape()) << ", dtype=" << dtype_name(dtype())
     << ", device=" << device().str();
  if (requires_grad()) os << ", requires_grad";
  if (grad_fn()) os << ", grad_fn=" << grad_fn()->name();
  os << ")\n";
  if (numel() <= 100000) {
    print_rec(os, to_vector<double>(), shape(), 0, 0, max_per_dim, !is_floating(dtype()));
  } else {
    os << "<" << numel() << " values>";
  }
  return os.str();
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << t.str(); }

}  // namespace gradstyle
