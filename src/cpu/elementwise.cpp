// CPU kernels of the basic op families: converting copy, fill, Philox random, unary/binary maps,
// where. Dense views take a flat loop (vectorised, OpenMP-parallel); strided ones compute each
// element's offset from the shared index math in backend/view.hpp.
#include <cmath>
#include <cstring>
#include <limits>

#include "backend/kernels.hpp"

namespace gradstyle::cpu {

using backend::BinaryOp;
using backend::offset_of;
using backend::StridedView;
using backend::UnaryOp;

namespace {

constexpr int64_t kParallelGrain = 1 << 15;  // below this, one thread is faster

double load_as_double(const void* base, DType t, int64_t off) {
  switch (t) {
    case DType::f32: return double(static_cast<const float*>(base)[off]);
    case DType::f64: return static_cast<const double*>(base)[off];
    case DType::f16: return double(half_to_float(static_cast<const uint16_t*>(base)[off]));
    case DType::bf16: return double(bf16_to_float(static_cast<const uint16_t*>(base)[off]));
    case DType::i64: return double(static_cast<const int64_t*>(base)[off]);
    case DType::i32: return double(static_cast<const int32_t*>(base)[off]);
    case DType::i16: return double(static_cast<const int16_t*>(base)[off]);
    case DType::i8: return double(static_cast<const int8_t*>(base)[off]);
    case DType::u8: return double(static_cast<const uint8_t*>(base)[off]);
    case DType::boolean: return static_cast<const uint8_t*>(base)[off] ? 1.0 : 0.0;
  }
  return 0;
}

void store_double(void* base, DType t, int64_t off, double v) {
  switch (t) {
    case DType::f32: static_cast<float*>(base)[off] = float(v); break;
    case DType::f64: static_cast<double*>(base)[off] = v; break;
    case DType::f16: static_cast<uint16_t*>(base)[off] = float_to_half(float(v)); break;
    case DType::bf16: static_cast<uint16_t*>(base)[off] = float_to_bf16(float(v)); break;
    case DType::i64: static_cast<int64_t*>(base)[off] = int64_t(v); break;
    case DType::i32: static_cast<int32_t*>(base)[off] = int32_t(v); break;
    case DType::i16: static_cast<int16_t*>(base)[off] = int16_t(v); break;
    case DType::i8: static_cast<int8_t*>(base)[off] = int8_t(v); break;
    case DType::u8: static_cast<uint8_t*>(base)[off] = uint8_t(v); break;
    case DType::boolean: static_cast<uint8_t*>(base)[off] = v != 0.0; break;
  }
}

template <class T>
inline T unary_apply(UnaryOp op, T x, T p0, T p1) {
  switch (op) {
    case UnaryOp::Neg: return -x;
    case UnaryOp::Exp: return std::exp(x);
    case UnaryOp::Log: return std::log(x);
    case UnaryOp::Sqrt: return std::sqrt(x);
    case UnaryOp::Rsqrt: return T(1) / std::sqrt(x);
    case UnaryOp::Abs: return std::abs(x);
    case UnaryOp::Sign: return T((x > T(0)) - (x < T(0)));
    case UnaryOp::Square: return x * x;
    case UnaryOp::Relu: return x > T(0) ? x : T(0);
    case UnaryOp::LeakyRelu: return x > T(0) ? x : x * p0;
    case UnaryOp::Sigmoid: return T(1) / (T(1) + std::exp(-x));
    case UnaryOp::Tanh: return std::tanh(x);
    case UnaryOp::Softplus: {
      T bx = x * p0;
      return bx > p1 ? x : std::log1p(std::exp(bx)) / p0;
    }
    case UnaryOp::PowScalar: return p0 == T(2) ? x * x : std::pow(x, p0);
    case UnaryOp::Clamp: return x < p0 ? p0 : (x > p1 ? p1 : x);
    case UnaryOp::AddScalar: return x + p0;
    case UnaryOp::MulScalar: return x * p0;
    case UnaryOp::Reciprocal: return T(1) / x;
    case UnaryOp::StepPositive: return x > T(0) ? T(1) : T(0);
    case UnaryOp::LeakyReluGrad: return x > T(0) ? T(1) : p0;
    case UnaryOp::ClampMask: return (x >= p0 && x <= p1) ? T(1) : T(0);
    case UnaryOp::Cos: return std::cos(x);
    case UnaryOp::Sin: return std::sin(x);
  }
  return x;
}

template <class T>
inline T binary_apply(BinaryOp op, T a, T b) {
  switch (op) {
    case BinaryOp::Add: return a + b;
    case BinaryOp::Sub: return a - b;
    case BinaryOp::Mul: return a * b;
    case BinaryOp::Div: return a / b;
    case BinaryOp::Maximum: return (a != a || b != b) ? std::numeric_limits<T>::quiet_NaN() : (a > b ? a : b);
    case BinaryOp::Minimum: return (a != a || b != b) ? std::numeric_limits<T>::quiet_NaN() : (a < b ? a : b);
    case BinaryOp::Pow: return std::pow(a, b);
    case BinaryOp::Gt: return a > b;
    case BinaryOp::Lt: return a < b;
    case BinaryOp::Ge: return a >= b;
    case BinaryOp::Le: return a <= b;
    case BinaryOp::Eq: return a == b;
    case BinaryOp::Ne: return a != b;
  }
  return a;
}

template <class T>
void unary_t(UnaryOp op, const StridedView& out, const StridedView& in, T p0, T p1) {
  T* o = static_cast<T*>(out.data);
  const T* x = static_cast<const T*>(in.data);
  const int64_t n = out.numel;
  if (out.contiguous && in.contiguous) {
#pragma omp parallel for if (n > kParallelGrain) schedule(static)
    for (int64_t i = 0; i < n; ++i) o[i] = unary_apply<T>(op, x[i], p0, p1);
  } else {
#pragma omp parallel for if (n > kParallelGrain) schedule(static)
    for (int64_t i = 0; i < n; ++i) o[offset_of(out, i)] = unary_apply<T>(op, x[offset_of(in, i)], p0, p1);
  }
}

template <class T>
void binary_t(BinaryOp op, const StridedView& out, const StridedView& a, const StridedView& b) {
  const T* pa = static_cast<const T*>(a.data);
  const T* pb = static_cast<const T*>(b.data);
  const int64_t n = out.numel;
  const bool cmp = op >= BinaryOp::Gt;
  if (!cmp && out.dtype == a.dtype) {
    T* o = static_cast<T*>(out.data);
    if (out.contiguous && a.contiguous && b.contiguous) {
#pragma omp parallel for if (n > kParallelGrain) schedule(static)
      for (int64_t i = 0; i < n; ++i) o[i] = binary_apply<T>(op, pa[i], pb[i]);
      return;
    }
    if (out.contiguous && a.contiguous && b.numel == n && b.ndim >= 1) {
      // Common case: b broadcast along leading dims only is still handled by the general path.
    }
#pragma omp parallel for if (n > kParallelGrain) schedule(static)
    for (int64_t i = 0; i < n; ++i)
      o[offset_of(out, i)] = binary_apply<T>(op, pa[offset_of(a, i)], pb[offset_of(b, i)]);
    return;
  }
#pragma omp parallel for if (n > kParallelGrain) schedule(static)
  for (int64_t i = 0; i < n; ++i)
    store_double(out.data, out.dtype, offset_of(out, i),
                 double(binary_apply<T>(op, pa[offset_of(a, i)], pb[offset_of(b, i)])));
}

}  // namespace

void copy(const StridedView& dst, const StridedView& src) {
  const int64_t n = dst.numel;
  if (dst.dtype == src.dtype) {
    const size_t es = dtype_size(dst.dtype);
    if (dst.contiguous && src.contiguous) {
      std::memcpy(dst.data, src.data, size_t(n) * es);
      return;
    }
    char* d = static_cast<char*>(dst.data);
    const char* s = static_cast<const char*>(src.data);
#pragma omp parallel for if (n > kParallelGrain) schedule(static)
    for (int64_t i = 0; i < n; ++i) std::memcpy(d + offset_of(dst, i) * int64_t(es), s + offset_of(src, i) * int64_t(es), es);
    return;
  }
#pragma omp parallel for if (n > kParallelGrain) schedule(static)
  for (int64_t i = 0; i < n; ++i)
    store_double(dst.data, dst.dtype, offset_of(dst, i), load_as_double(src.data, src.dtype, offset_of(src, i)));
}

void fill(const StridedView& dst, double value) {
  const int64_t n = dst.numel;
  if (dst.contiguous && dst.dtype == DType::f32) {
    float* p = static_cast<float*>(dst.data);
    float v = float(value);
    for (int64_t i = 0; i < n; ++i) p[i] = v;
    return;
  }
  for (int64_t i = 0; i < n; ++i) store_double(dst.data, dst.dtype, offset_of(dst, i), value);
}

void fill_random(const StridedView& dst, uint64_t seed, uint64_t offset, bool normal) {
  const int64_t n = dst.numel;
#pragma omp parallel for if (n > 4096) schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    double v = normal ? philox_normal(seed, offset, uint64_t(i)) : philox_uniform(seed, offset, uint64_t(i));
    store_double(dst.data, dst.dtype, offset_of(dst, i), v);
  }
}

void unary(UnaryOp op, const StridedView& out, const StridedView& in, double p0, double p1) {
  if (out.dtype == DType::f32) return unary_t<float>(op, out, in, float(p0), float(p1));
  if (out.dtype == DType::f64) return unary_t<double>(op, out, in, p0, p1);
  throw DTypeError(err_msg("unary op: unsupported dtype ", dtype_name(out.dtype)));
}

void binary(BinaryOp op, const StridedView& out, const StridedView& a, const StridedView& b) {
  if (a.dtype == DType::f32) return binary_t<float>(op, out, a, b);
  if (a.dtype == DType::f64) return binary_t<double>(op, out, a, b);
  throw DTypeError(err_msg("binary op: unsupported dtype ", dtype_name(a.dtype)));
}

void where(const StridedView& out, const StridedView& cond, const StridedView& a, const StridedView& b) {
  const int64_t n = out.numel;
  const size_t es = dtype_size(out.dtype);
  char* o = static_cast<char*>(out.data);
  const char* pa = static_cast<const char*>(a.data);
  const char* pb = static_cast<const char*>(b.data);
#pragma omp parallel for if (n > kParallelGrain) schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    bool c = load_as_double(cond.data, cond.dtype, offset_of(cond, i)) != 0.0;
    const char* src = c ? pa + offset_of(a, i) * int64_t(es) : pb + offset_of(b, i) * int64_t(es);
    std::memcpy(o + offset_of(out, i) * int64_t(es), src, es);
  }
}

}  // namespace gradstyle::cpu
