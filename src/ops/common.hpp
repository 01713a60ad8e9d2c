#pragma once
// Internal helpers shared by op implementations: argument checks with named errors.
#include "backend/kernels.hpp"
#include "gradstyle/autograd/autograd.hpp"

namespace gradstyle::ops_detail {

inline void check_defined(const Tensor& t, const char* op, const char* arg) {
  GS_CHECK(t.defined(), ValueError, op, ": argument '", arg, "' is an undefined tensor");
}
inline void check_float(const Tensor& t, const char* op) {
  check_defined(t, op, "input");
  GS_CHECK(t.dtype() == DType::f32 || t.dtype() == DType::f64, DTypeError, op,
           ": expected a float32 or float64 tensor, got ", dtype_name(t.dtype()), " ", shape_str(t.shape()));
}
inline void check_same(const Tensor& a, const Tensor& b, const char* op) {
  check_defined(a, op, "a");
  check_defined(b, op, "b");
  GS_CHECK(a.dtype() == b.dtype(), DTypeError, op, ": dtype mismatch: ", dtype_name(a.dtype()), " ",
           shape_str(a.shape()), " vs ", dtype_name(b.dtype()), " ", shape_str(b.shape()));
  GS_CHECK(a.device() == b.device(), DeviceError, op, ": device mismatch: ", a.device().str(), " ",
           shape_str(a.shape()), " vs ", b.device().str(), " ", shape_str(b.shape()));
}
// Normalised, sorted, unique reduction dims ({} = all).
Shape reduce_dims(const Shape& dims, int64_t ndim, const char* op);

// A new tensor that views x's storage with the given geometry.
Tensor make_alias(const Tensor& x, const Shape& shape, const Shape& strides, int64_t offset);

}  // namespace gradstyle::ops_detail
