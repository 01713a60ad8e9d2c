// CPU kernels of the basic op families: converting copy, fill, Philox random, unary/binary maps,
// where. Every kernel walks its operands with the row iterator of cpu/strided_loop.hpp (dims
// coalesced, innermost dim with fixed strides, OpenMP over the flat range), and the op is a
// compile-time functor, so dense and broadcast rows vectorise. See docs/perf.md for numbers.
#include <cmath>
#include <cstring>
#include <limits>

#include "backend/kernels.hpp"
#include "cpu/strided_loop.hpp"

namespace gradstyle::cpu {

using backend::BinaryOp;
using backend::StridedView;
using backend::UnaryOp;

namespace {

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

// An unsigned integer type of the element's size, for dtype-agnostic moves.
template <size_t S> struct Bits;
template <> struct Bits<1> { using type = uint8_t; };
template <> struct Bits<2> { using type = uint16_t; };
template <> struct Bits<4> { using type = uint32_t; };
template <> struct Bits<8> { using type = uint64_t; };

// ---- unary ------------------------------------------------------------------------------------

template <class T, class F>
void unary_loop(const StridedView& out, const StridedView& in, F f) {
  T* o = static_cast<T*>(out.data);
  const T* x = static_cast<const T*>(in.data);
  for_each_row(make_strided_plan<2>({&out, &in}), [&](const int64_t* off, int64_t n, const int64_t* st) {
    T* po = o + off[0];
    const T* px = x + off[1];
    if (st[0] == 1 && st[1] == 1) {
      for (int64_t i = 0; i < n; ++i) po[i] = f(px[i]);
    } else {
      for (int64_t i = 0; i < n; ++i) po[i * st[0]] = f(px[i * st[1]]);
    }
  });
}

template <class T>
void unary_t(UnaryOp op, const StridedView& out, const StridedView& in, T p0, T p1) {
  const T zero = T(0), one = T(1);
#define GS_U(OP, EXPR) \
  case UnaryOp::OP: return unary_loop<T>(out, in, [=](T x) -> T { return EXPR; });
  switch (op) {
    GS_U(Neg, -x)
    GS_U(Exp, std::exp(x))
    GS_U(Log, std::log(x))
    GS_U(Sqrt, std::sqrt(x))
    GS_U(Rsqrt, one / std::sqrt(x))
    GS_U(Abs, std::abs(x))
    GS_U(Sign, T((x > zero) - (x < zero)))
    GS_U(Square, x * x)
    GS_U(Relu, x > zero ? x : zero)
    GS_U(LeakyRelu, x > zero ? x : x * p0)
    GS_U(Sigmoid, one / (one + std::exp(-x)))
    GS_U(Tanh, std::tanh(x))
    GS_U(Softplus, x * p0 > p1 ? x : std::log1p(std::exp(x * p0)) / p0)
    GS_U(PowScalar, p0 == T(2) ? x * x : std::pow(x, p0))
    GS_U(Clamp, x < p0 ? p0 : (x > p1 ? p1 : x))
    GS_U(AddScalar, x + p0)
    GS_U(MulScalar, x * p0)
    GS_U(Reciprocal, one / x)
    GS_U(StepPositive, x > zero ? one : zero)
    GS_U(LeakyReluGrad, x > zero ? one : p0)
    GS_U(ClampMask, (x >= p0 && x <= p1) ? one : zero)
    GS_U(Cos, std::cos(x))
    GS_U(Sin, std::sin(x))
  }
#undef GS_U
  throw ValueError(err_msg("unary op: unknown op code ", int(op)));
}

// ---- binary -----------------------------------------------------------------------------------

// out = f(a, b) with out of element type O (T, or uint8 for comparisons into bool).
template <class T, class O, class F>
void binary_loop(const StridedView& out, const StridedView& a, const StridedView& b, F f) {
  O* o = static_cast<O*>(out.data);
  const T* pa = static_cast<const T*>(a.data);
  const T* pb = static_cast<const T*>(b.data);
  for_each_row(make_strided_plan<3>({&out, &a, &b}), [&](const int64_t* off, int64_t n, const int64_t* st) {
    O* po = o + off[0];
    const T* x = pa + off[1];
    const T* y = pb + off[2];
    if (st[0] == 1 && st[1] == 1 && st[2] == 1) {
      for (int64_t i = 0; i < n; ++i) po[i] = O(f(x[i], y[i]));
    } else if (st[0] == 1 && st[1] == 1 && st[2] == 0) {  // b broadcast along the row
      const T yv = *y;
      for (int64_t i = 0; i < n; ++i) po[i] = O(f(x[i], yv));
    } else if (st[0] == 1 && st[1] == 0 && st[2] == 1) {  // a broadcast along the row
      const T xv = *x;
      for (int64_t i = 0; i < n; ++i) po[i] = O(f(xv, y[i]));
    } else {
      for (int64_t i = 0; i < n; ++i) po[i * st[0]] = O(f(x[i * st[1]], y[i * st[2]]));
    }
  });
}

// Comparisons into a non-bool output dtype (1/0 in that dtype): rare, converted per element.
template <class T, class F>
void binary_convert(const StridedView& out, const StridedView& a, const StridedView& b, F f) {
  const T* pa = static_cast<const T*>(a.data);
  const T* pb = static_cast<const T*>(b.data);
  for_each_row(make_strided_plan<3>({&out, &a, &b}), [&](const int64_t* off, int64_t n, const int64_t* st) {
    for (int64_t i = 0; i < n; ++i)
      store_double(out.data, out.dtype, off[0] + i * st[0], double(f(pa[off[1] + i * st[1]], pb[off[2] + i * st[2]])));
  });
}

template <class T, class F>
void binary_dispatch_out(const StridedView& out, const StridedView& a, const StridedView& b, F f) {
  if (out.dtype == a.dtype) return binary_loop<T, T>(out, a, b, f);
  if (out.dtype == DType::boolean || out.dtype == DType::u8) return binary_loop<T, uint8_t>(out, a, b, f);
  binary_convert<T>(out, a, b, f);
}

template <class T>
void binary_t(BinaryOp op, const StridedView& out, const StridedView& a, const StridedView& b) {
  constexpr T nan = std::numeric_limits<T>::quiet_NaN();
#define GS_B(OP, EXPR) \
  case BinaryOp::OP: return binary_dispatch_out<T>(out, a, b, [](T x, T y) { return EXPR; });
  switch (op) {
    GS_B(Add, x + y)
    GS_B(Sub, x - y)
    GS_B(Mul, x * y)
    GS_B(Div, x / y)
    GS_B(Maximum, (x != x || y != y) ? nan : (x > y ? x : y))
    GS_B(Minimum, (x != x || y != y) ? nan : (x < y ? x : y))
    GS_B(Pow, std::pow(x, y))
    GS_B(Gt, x > y)
    GS_B(Lt, x < y)
    GS_B(Ge, x >= y)
    GS_B(Le, x <= y)
    GS_B(Eq, x == y)
    GS_B(Ne, x != y)
  }
#undef GS_B
  throw ValueError(err_msg("binary op: unknown op code ", int(op)));
}

// ---- copy / fill ------------------------------------------------------------------------------

template <class U>
void copy_same(const StridedView& dst, const StridedView& src) {
  U* d = static_cast<U*>(dst.data);
  const U* s = static_cast<const U*>(src.data);
  for_each_row(make_strided_plan<2>({&dst, &src}), [&](const int64_t* off, int64_t n, const int64_t* st) {
    if (st[0] == 1 && st[1] == 1) {
      std::memcpy(d + off[0], s + off[1], size_t(n) * sizeof(U));
    } else {
      U* pd = d + off[0];
      const U* ps = s + off[1];
      for (int64_t i = 0; i < n; ++i) pd[i * st[0]] = ps[i * st[1]];
    }
  });
}

template <class D, class S>
void copy_convert_t(const StridedView& dst, const StridedView& src) {
  D* d = static_cast<D*>(dst.data);
  const S* s = static_cast<const S*>(src.data);
  for_each_row(make_strided_plan<2>({&dst, &src}), [&](const int64_t* off, int64_t n, const int64_t* st) {
    D* pd = d + off[0];
    const S* ps = s + off[1];
    if (st[0] == 1 && st[1] == 1) {
      for (int64_t i = 0; i < n; ++i) pd[i] = D(ps[i]);
    } else {
      for (int64_t i = 0; i < n; ++i) pd[i * st[0]] = D(ps[i * st[1]]);
    }
  });
}

template <class U>
void fill_bits(const StridedView& dst, U pattern) {
  U* d = static_cast<U*>(dst.data);
  for_each_row(make_strided_plan<1>({&dst}), [&](const int64_t* off, int64_t n, const int64_t* st) {
    U* p = d + off[0];
    if (st[0] == 1) {
      for (int64_t i = 0; i < n; ++i) p[i] = pattern;
    } else {
      for (int64_t i = 0; i < n; ++i) p[i * st[0]] = pattern;
    }
  });
}

template <class F>
void by_element_size(size_t es, F f) {
  switch (es) {
    case 1: return f(Bits<1>::type{});
    case 2: return f(Bits<2>::type{});
    case 4: return f(Bits<4>::type{});
    case 8: return f(Bits<8>::type{});
  }
  throw DTypeError(err_msg("copy: unsupported element size ", es));
}

}  // namespace

void copy(const StridedView& dst, const StridedView& src) {
  if (dst.numel == 0) return;
  if (dst.dtype == src.dtype) {
    if (dst.contiguous && src.contiguous) {
      std::memcpy(dst.data, src.data, size_t(dst.numel) * dtype_size(dst.dtype));
      return;
    }
    return by_element_size(dtype_size(dst.dtype), [&](auto u) { copy_same<decltype(u)>(dst, src); });
  }
  // The float conversions used by to(dtype) in tests and mixed-precision code are typed loops.
  if (dst.dtype == DType::f64 && src.dtype == DType::f32) return copy_convert_t<double, float>(dst, src);
  if (dst.dtype == DType::f32 && src.dtype == DType::f64) return copy_convert_t<float, double>(dst, src);
  for_each_row(make_strided_plan<2>({&dst, &src}), [&](const int64_t* off, int64_t n, const int64_t* st) {
    for (int64_t i = 0; i < n; ++i)
      store_double(dst.data, dst.dtype, off[0] + i * st[0], load_as_double(src.data, src.dtype, off[1] + i * st[1]));
  });
}

void fill(const StridedView& dst, double value) {
  if (dst.numel == 0) return;
  // Convert once into the element's bit pattern, then replicate it.
  uint64_t pattern = 0;
  store_double(&pattern, dst.dtype, 0, value);
  by_element_size(dtype_size(dst.dtype), [&](auto u) {
    using U = decltype(u);
    U p;
    std::memcpy(&p, &pattern, sizeof(U));
    fill_bits<U>(dst, p);
  });
}

void fill_random(const StridedView& dst, uint64_t seed, uint64_t offset, bool normal) {
  // Element i (in logical row-major order) takes counter offset + i on every device.
  const int64_t n = dst.numel;
  if (dst.contiguous && (dst.dtype == DType::f32 || dst.dtype == DType::f64)) {
    const bool f32 = dst.dtype == DType::f32;
#pragma omp parallel for if (n > 4096) schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      double v = normal ? philox_normal(seed, offset, uint64_t(i)) : philox_uniform(seed, offset, uint64_t(i));
      if (f32) static_cast<float*>(dst.data)[i] = float(v);
      else static_cast<double*>(dst.data)[i] = v;
    }
    return;
  }
#pragma omp parallel for if (n > 4096) schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    double v = normal ? philox_normal(seed, offset, uint64_t(i)) : philox_uniform(seed, offset, uint64_t(i));
    store_double(dst.data, dst.dtype, backend::offset_of(dst, i), v);
  }
}

void unary(UnaryOp op, const StridedView& out, const StridedView& in, double p0, double p1) {
  if (out.numel == 0) return;
  if (out.dtype == DType::f32 && in.dtype == DType::f32) return unary_t<float>(op, out, in, float(p0), float(p1));
  if (out.dtype == DType::f64 && in.dtype == DType::f64) return unary_t<double>(op, out, in, p0, p1);
  throw DTypeError(err_msg("unary op: unsupported dtypes ", dtype_name(out.dtype), " <- ", dtype_name(in.dtype)));
}

void binary(BinaryOp op, const StridedView& out, const StridedView& a, const StridedView& b) {
  if (out.numel == 0) return;
  GS_CHECK(a.dtype == b.dtype, DTypeError, "binary op: operand dtypes differ: ", dtype_name(a.dtype), " vs ",
           dtype_name(b.dtype));
  if (a.dtype == DType::f32) return binary_t<float>(op, out, a, b);
  if (a.dtype == DType::f64) return binary_t<double>(op, out, a, b);
  throw DTypeError(err_msg("binary op: unsupported dtype ", dtype_name(a.dtype)));
}

void where(const StridedView& out, const StridedView& cond, const StridedView& a, const StridedView& b) {
  if (out.numel == 0) return;
  const bool byte_cond = cond.dtype == DType::boolean || cond.dtype == DType::u8 || cond.dtype == DType::i8;
  by_element_size(dtype_size(out.dtype), [&](auto u) {
    using U = decltype(u);
    U* o = static_cast<U*>(out.data);
    const U* pa = static_cast<const U*>(a.data);
    const U* pb = static_cast<const U*>(b.data);
    const uint8_t* pc = static_cast<const uint8_t*>(cond.data);
    for_each_row(make_strided_plan<4>({&out, &cond, &a, &b}), [&](const int64_t* off, int64_t n, const int64_t* st) {
      for (int64_t i = 0; i < n; ++i) {
        const int64_t ci = off[1] + i * st[1];
        const bool c = byte_cond ? pc[ci] != 0 : load_as_double(cond.data, cond.dtype, ci) != 0.0;
        o[off[0] + i * st[0]] = c ? pa[off[2] + i * st[2]] : pb[off[3] + i * st[3]];
      }
    });
  });
}

}  // namespace gradstyle::cpu
