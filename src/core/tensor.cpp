#include "gradstyle/core/tensor.hpp"

#include <vector>

#include "backend/kernels.hpp"

namespace gradstyle {

using backend::make_view;

TensorImpl& Tensor::impl() const {
  if (!impl_) throw ValueError("operation on an undefined (empty) Tensor handle");
  return *impl_;
}

int64_t Tensor::size(int64_t d) const {
  // wrap_dim accepts dim 0 / -1 for a 0-d tensor (as reductions do), but a 0-d tensor has no sizes.
  GS_CHECK(dim() > 0, IndexError, "Tensor::size: dim ", d, " of a 0-d tensor (it has no dims)");
  return shape()[size_t(wrap_dim(d, dim(), "Tensor::size"))];
}

bool Tensor::is_contiguous() const {
  const auto& s = impl().shape;
  const auto& st = impl().strides;
  int64_t expect = 1;
  for (int64_t i = int64_t(s.size()) - 1; i >= 0; --i) {
    if (s[size_t(i)] != 1 && st[size_t(i)] != expect) return false;
    expect *= s[size_t(i)];
  }
  return true;
}

void* Tensor::raw_data() const {
  return static_cast<char*>(impl().storage->data()) + impl().offset * int64_t(dtype_size(dtype()));
}

// ---- factories --------------------------------------------------------------------------------

Tensor Tensor::empty(const Shape& shape, Options o) {
  for (int64_t d : shape)
    GS_CHECK(d >= 0, ShapeError, "Tensor::empty: negative size in shape ", shape_str(shape));
  GS_CHECK(shape.size() <= size_t(kMaxDims), ShapeError, "Tensor::empty: shape ", shape_str(shape),
           " has more than ", kMaxDims, " dims");
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(size_t(shape_numel(shape)) * dtype_size(o.dtype), o.device);
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = o.dtype;
  return Tensor(impl);
}

Tensor Tensor::full(const Shape& shape, double value, Options o) {
  Tensor t = empty(shape, o);
  if (t.numel() > 0) GS_DISPATCH(o.device, fill, make_view(t), value);
  return t;
}
Tensor Tensor::zeros(const Shape& shape, Options o) { return full(shape, 0.0, o); }
Tensor Tensor::ones(const Shape& shape, Options o) { return full(shape, 1.0, o); }
Tensor Tensor::scalar(double value, Options o) { return full({}, value, o); }

Tensor Tensor::from_blob(const void* data, const Shape& shape, DType dtype, Device d) {
  Tensor t = empty(shape, {dtype, d});
  copy_bytes(t.raw_data(), d, data, Device::cpu(), t.nbytes());
  return t;
}

// Host doubles -> a tensor of o.dtype on o.device. The dtype conversion runs on the CPU copy
// kernel, so the factories need nothing above core (no Tensor::to, which records autograd).
static Tensor from_host_doubles(const std::vector<double>& v, const Shape& shape, Options o) {
  Tensor host = Tensor::from_blob(v.data(), shape, DType::f64);
  if (o.dtype != DType::f64) {
    Tensor conv = Tensor::empty(shape, {o.dtype, Device::cpu()});
    if (conv.numel() > 0) GS_DISPATCH(Device::cpu(), copy, make_view(conv), make_view(host));
    host = conv;
  }
  if (o.device.is_cpu()) return host;
  return Tensor::from_blob(host.raw_data(), shape, o.dtype, o.device);
}

Tensor Tensor::arange(int64_t n, Options o) {
  GS_CHECK(n >= 0, ValueError, "Tensor::arange: n must be >= 0, got ", n);
  std::vector<double> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[size_t(i)] = double(i);
  return from_host_doubles(v, {n}, o);
}

Tensor Tensor::linspace(double start, double end, int64_t n, Options o) {
  GS_CHECK(n >= 1, ValueError, "Tensor::linspace: n must be >= 1, got ", n);
  std::vector<double> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[size_t(i)] = n == 1 ? start : start + (end - start) * double(i) / double(n - 1);
  return from_host_doubles(v, {n}, o);
}

Tensor Tensor::randn(const Shape& shape, Generator& gen, Options o) {
  GS_CHECK(is_floating(o.dtype), DTypeError, "Tensor::randn: dtype must be floating, got ", dtype_name(o.dtype));
  Tensor t = empty(shape, o);
  uint64_t off = gen.advance(uint64_t(t.numel()));
  if (t.numel() > 0) GS_DISPATCH(o.device, fill_random, make_view(t), gen.seed(), off, true);
  return t;
}
Tensor Tensor::rand(const Shape& shape, Generator& gen, Options o) {
  GS_CHECK(is_floating(o.dtype), DTypeError, "Tensor::rand: dtype must be floating, got ", dtype_name(o.dtype));
  Tensor t = empty(shape, o);
  uint64_t off = gen.advance(uint64_t(t.numel()));
  if (t.numel() > 0) GS_DISPATCH(o.device, fill_random, make_view(t), gen.seed(), off, false);
  return t;
}
Tensor Tensor::randn(const Shape& shape, uint64_t seed, Options o) {
  Generator g(seed);
  return randn(shape, g, o);
}
Tensor Tensor::rand(const Shape& shape, uint64_t seed, Options o) {
  Generator g(seed);
  return rand(shape, g, o);
}

// ---- grad metadata (the engine itself is in src/autograd) ----------------------------------

Tensor& Tensor::requires_grad_(bool r) {
  GS_CHECK(is_leaf(), AutogradError, "requires_grad_: only leaf tensors can change requires_grad "
           "(use detach() to make a new leaf)");
  GS_CHECK(!r || dtype() == DType::f32 || dtype() == DType::f64, DTypeError,
           "requires_grad_: only float32/float64 tensors can require grad, got ", dtype_name(dtype()));
  impl().requires_grad = r;
  if (!r) impl().grad_accumulator.reset();
  return *this;
}

Tensor Tensor::grad() const { return impl().grad ? Tensor(impl().grad) : Tensor(); }
void Tensor::set_grad(const Tensor& g) { impl().grad = g.defined() ? g.impl_ptr() : nullptr; }
void Tensor::zero_grad() { impl().grad.reset(); }

void Tensor::set_data(const Tensor& src) {
  GS_CHECK(src.defined(), ValueError, "set_data: the source tensor is undefined");
  GS_CHECK(is_leaf(), AutogradError,
           "set_data: only a leaf tensor can take new data (this one was produced by an op)");
  TensorImpl& me = impl();
  const TensorImpl& s = src.impl();
  GS_CHECK(!me.requires_grad || is_floating(s.dtype), DTypeError, "set_data: a tensor that requires grad "
           "cannot take ", dtype_name(s.dtype), " data (only float32/float64 can require grad)");
  me.storage = s.storage;
  me.offset = s.offset;
  me.shape = s.shape;
  me.strides = s.strides;
  me.dtype = s.dtype;
  // The accumulator caches the leaf's shape/dtype/device: make a fresh one on the next backward.
  me.grad_accumulator.reset();
  if (me.grad) {
    const TensorImpl& g = *me.grad;
    if (g.shape != me.shape || g.dtype != me.dtype || g.storage->device() != me.storage->device()) me.grad.reset();
  }
}

Tensor Tensor::detach() const {
  auto d = std::make_shared<TensorImpl>();
  d->storage = impl().storage;
  d->offset = impl().offset;
  d->shape = impl().shape;
  d->strides = impl().strides;
  d->dtype = impl().dtype;
  return Tensor(d);
}

}  // namespace gradstyle
