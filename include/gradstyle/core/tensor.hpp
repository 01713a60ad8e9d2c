#pragma once
// Tensor: a handle (shared_ptr) to a strided view of a Storage, with autograd metadata.
//
//   Tensor x = Tensor::randn({8, 512}, gen);          // float32 on the CPU
//   Tensor w = Tensor::zeros({512, 512}).requires_grad_();
//   Tensor y = relu(matmul(x, w)).sum();
//   y.backward();                                     // w.grad() now holds dy/dw
//
// Copying a Tensor copies the handle (like PyTorch). Views (reshape of a contiguous tensor,
// permute, narrow, expand, ...) share the storage. Ops are free functions declared in the ops
// headers; the most common ones are also reachable as methods or operators for readability.
// Methods that record autograd history or call ops (to, clone, copy_, backward, reshape, sum,
// the operators, ...) are declared here and defined in the ops layer (its tensor_methods.cpp),
// so core depends on nothing above it.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gradstyle/core/device.hpp"
#include "gradstyle/core/dtype.hpp"
#include "gradstyle/core/error.hpp"
#include "gradstyle/core/rng.hpp"
#include "gradstyle/core/shape.hpp"
#include "gradstyle/core/storage.hpp"

namespace gradstyle {

namespace autograd {
class Node;
}

// Options for factories: Tensor::zeros({2,3}, {.dtype = DType::f64, .device = Device::cuda()}).
struct Options {
  DType dtype = DType::f32;
  Device device = Device::cpu();
};

class TensorImpl {
 public:
  StoragePtr storage;
  int64_t offset = 0;  // in elements
  Shape shape;
  Shape strides;       // in elements
  DType dtype = DType::f32;

  // autograd
  bool requires_grad = false;
  std::shared_ptr<TensorImpl> grad;                 // accumulated .grad of a leaf
  std::shared_ptr<autograd::Node> grad_fn;          // producer node (non-leaf)
  std::shared_ptr<autograd::Node> grad_accumulator; // created lazily for a leaf that requires grad
};

template <class T>
struct dtype_of;
template <> struct dtype_of<float> { static constexpr DType value = DType::f32; };
template <> struct dtype_of<double> { static constexpr DType value = DType::f64; };
template <> struct dtype_of<int64_t> { static constexpr DType value = DType::i64; };
template <> struct dtype_of<int32_t> { static constexpr DType value = DType::i32; };
template <> struct dtype_of<int16_t> { static constexpr DType value = DType::i16; };
template <> struct dtype_of<int8_t> { static constexpr DType value = DType::i8; };
template <> struct dtype_of<uint8_t> { static constexpr DType value = DType::u8; };
template <> struct dtype_of<bool> { static constexpr DType value = DType::boolean; };

class Tensor {
 public:
  Tensor() = default;  // undefined tensor (defined() == false)
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- factories -------------------------------------------------------------------------
  static Tensor empty(const Shape& shape, Options o = {});  // uninitialised
  static Tensor zeros(const Shape& shape, Options o = {});
  static Tensor ones(const Shape& shape, Options o = {});
  static Tensor full(const Shape& shape, double value, Options o = {});
  static Tensor scalar(double value, Options o = {});  // 0-d tensor
  static Tensor arange(int64_t n, Options o = {});      // 0, 1, ..., n-1
  static Tensor linspace(double start, double end, int64_t n, Options o = {});
  template <class T>
  static Tensor from_vector(const std::vector<T>& values, const Shape& shape, Device d = Device::cpu());
  // Copies nbytes from host memory laid out contiguously as dtype/shape.
  static Tensor from_blob(const void* data, const Shape& shape, DType dtype, Device d = Device::cpu());
  // Random numbers from the counter-based generator: the same (seed, offset) gives the same
  // numbers on the CPU and on CUDA. randn: N(0,1); rand: U(0,1].
  static Tensor randn(const Shape& shape, Generator& gen, Options o = {});
  static Tensor rand(const Shape& shape, Generator& gen, Options o = {});
  static Tensor randn(const Shape& shape, uint64_t seed, Options o = {});
  static Tensor rand(const Shape& shape, uint64_t seed, Options o = {});

  // ---- metadata ----------------------------------------------------------------------------
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl().shape; }
  const Shape& strides() const { return impl().strides; }
  int64_t dim() const { return int64_t(impl().shape.size()); }
  int64_t size(int64_t d) const;  // negative d counts from the end
  int64_t numel() const { return shape_numel(impl().shape); }
  DType dtype() const { return impl().dtype; }
  Device device() const { return impl().storage->device(); }
  bool is_cuda() const { return device().is_cuda(); }
  int64_t offset() const { return impl().offset; }
  bool is_contiguous() const;
  size_t nbytes() const { return size_t(numel()) * dtype_size(dtype()); }
  const StoragePtr& storage() const { return impl().storage; }
  // Pointer to the first element of the view. Typed access checks the dtype.
  void* raw_data() const;
  template <class T>
  T* data() const;
  std::string str(int max_per_dim = 6) const;  // printable summary with values
  TensorImpl& impl() const;
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool same(const Tensor& o) const { return impl_ == o.impl_; }

  // ---- conversion --------------------------------------------------------------------------
  Tensor to(Device d) const;           // differentiable; no-op when already there
  Tensor to(DType t) const;            // differentiable between float types
  Tensor contiguous() const;           // returns *this when already contiguous
  Tensor clone() const;                // always a fresh contiguous copy (differentiable)
  Tensor cpu() const { return to(Device::cpu()); }
  template <class T>
  std::vector<T> to_vector() const;    // host copy, any device; converts dtype to T
  double item() const;                 // single-element tensor -> double

  // ---- in-place (never differentiable; throw on a leaf requiring grad while grad mode is on)
  Tensor& fill_(double v);
  Tensor& zero_() { return fill_(0.0); }
  Tensor& copy_(const Tensor& src);    // broadcasting copy with dtype conversion
  Tensor& add_(const Tensor& other, double alpha = 1.0);
  Tensor& mul_(double s);

  // ---- autograd ----------------------------------------------------------------------------
  bool requires_grad() const { return impl().requires_grad; }
  Tensor& requires_grad_(bool r = true);
  bool is_leaf() const { return impl().grad_fn == nullptr; }
  Tensor grad() const;                 // undefined when none
  void set_grad(const Tensor& g);
  void zero_grad();                    // drops .grad
  Tensor detach() const;               // same storage, no history
  // Points this leaf at src's storage, offset, shape, strides and dtype while keeping the handle
  // (every copy of it sees the new data) and requires_grad, like torch's `t.data = src`. A .grad
  // that no longer matches the new shape/dtype/device is dropped. Not differentiable.
  void set_data(const Tensor& src);
  // Back-propagates from this tensor. A non-scalar needs an explicit gradient.
  void backward(const Tensor& gradient = Tensor(), bool retain_graph = false,
                bool create_graph = false) const;
  const std::shared_ptr<autograd::Node>& grad_fn() const { return impl().grad_fn; }

  // ---- common ops as methods (the ops headers have the full set and contracts) ------------
  Tensor reshape(const Shape& s) const;
  Tensor view(const Shape& s) const;   // like reshape but throws if a copy would be needed
  Tensor permute(const Shape& dims) const;
  Tensor transpose(int64_t d0, int64_t d1) const;
  Tensor narrow(int64_t dim, int64_t start, int64_t length) const;
  Tensor expand(const Shape& s) const;
  Tensor unsqueeze(int64_t dim) const;
  Tensor squeeze(int64_t dim) const;
  Tensor flatten(int64_t start_dim = 0, int64_t end_dim = -1) const;
  Tensor sum(const Shape& dims = {}, bool keepdim = false) const;   // {} = all dims
  Tensor mean(const Shape& dims = {}, bool keepdim = false) const;
  Tensor pow(double e) const;
  Tensor abs() const;
  Tensor sqrt() const;
  Tensor exp() const;
  Tensor log() const;

 private:
  std::shared_ptr<TensorImpl> impl_;
};

// Arithmetic operators (broadcasting; scalars become 0-d tensors of the tensor's dtype).
Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a);
Tensor operator+(const Tensor& a, double b);
Tensor operator-(const Tensor& a, double b);
Tensor operator*(const Tensor& a, double b);
Tensor operator/(const Tensor& a, double b);
Tensor operator+(double a, const Tensor& b);
Tensor operator-(double a, const Tensor& b);
Tensor operator*(double a, const Tensor& b);
Tensor operator/(double a, const Tensor& b);

std::ostream& operator<<(std::ostream& os, const Tensor& t);

// ---- template definitions ---------------------------------------------------------------------
template <class T>
T* Tensor::data() const {
  GS_CHECK(dtype() == dtype_of<T>::value, DTypeError, "Tensor::data: tensor is ", dtype_name(dtype()),
           " but ", dtype_name(dtype_of<T>::value), " was requested");
  return static_cast<T*>(raw_data());
}

template <class T>
Tensor Tensor::from_vector(const std::vector<T>& values, const Shape& shape, Device d) {
  GS_CHECK(int64_t(values.size()) == shape_numel(shape), ShapeError, "Tensor::from_vector: ",
           values.size(), " values for shape ", shape_str(shape));
  if constexpr (std::is_same_v<T, bool>) {
    std::vector<uint8_t> b(values.begin(), values.end());
    return from_blob(b.data(), shape, DType::boolean, d);
  } else {
    return from_blob(values.data(), shape, dtype_of<T>::value, d);
  }
}

template <class T>
std::vector<T> Tensor::to_vector() const {
  Tensor c = detach().to(Device::cpu()).to(dtype_of<T>::value).contiguous();
  std::vector<T> out(size_t(c.numel()));
  const T* p = static_cast<const T*>(c.raw_data());
  for (size_t i = 0; i < out.size(); ++i) out[i] = p[i];
  return out;
}

}  // namespace gradstyle
