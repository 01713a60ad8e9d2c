// CUDA kernels of the basic elementwise families (same contracts as src/cpu/elementwise.cpp):
// converting copy, fill, Philox random fill, unary/binary maps and where. One grid-stride kernel
// per family and element type; the op is a runtime switch (uniform across a warp), which keeps
// the number of instantiations (and nvcc time) small.
#include <cmath>
#include <cstring>
#include <limits>

#include "../common/dtype_device.cuh"
#include "backend/kernels.hpp"
#include "../common/launch.cuh"

namespace gradstyle::cuda {

using backend::BinaryOp;
using backend::StridedView;
using backend::UnaryOp;

namespace {

// ---- device math ---------------------------------------------------------------------------

template <class T>
__device__ __forceinline__ T unary_apply(UnaryOp op, T x, T p0, T p1) {
  switch (op) {
    case UnaryOp::Neg: return -x;
    case UnaryOp::Exp: return ::exp(x);
    case UnaryOp::Log: return ::log(x);
    case UnaryOp::Sqrt: return ::sqrt(x);
    case UnaryOp::Rsqrt: return T(1) / ::sqrt(x);
    case UnaryOp::Abs: return ::fabs(x);
    case UnaryOp::Sign: return T((x > T(0)) - (x < T(0)));
    case UnaryOp::Square: return x * x;
    case UnaryOp::Relu: return x > T(0) ? x : T(0);
    case UnaryOp::LeakyRelu: return x > T(0) ? x : x * p0;
    case UnaryOp::Sigmoid: return T(1) / (T(1) + ::exp(-x));
    case UnaryOp::Tanh: return ::tanh(x);
    case UnaryOp::Softplus: {
      T bx = x * p0;
      return bx > p1 ? x : ::log1p(::exp(bx)) / p0;
    }
    case UnaryOp::PowScalar: return p0 == T(2) ? x * x : ::pow(x, p0);
    case UnaryOp::Clamp: return x < p0 ? p0 : (x > p1 ? p1 : x);
    case UnaryOp::AddScalar: return x + p0;
    case UnaryOp::MulScalar: return x * p0;
    case UnaryOp::Reciprocal: return T(1) / x;
    case UnaryOp::StepPositive: return x > T(0) ? T(1) : T(0);
    case UnaryOp::LeakyReluGrad: return x > T(0) ? T(1) : p0;
    case UnaryOp::ClampMask: return (x >= p0 && x <= p1) ? T(1) : T(0);
    case UnaryOp::Cos: return ::cos(x);
    case UnaryOp::Sin: return ::sin(x);
  }
  return x;
}

template <class T>
__device__ __forceinline__ T binary_apply(BinaryOp op, T a, T b) {
  switch (op) {
    case BinaryOp::Add: return a + b;
    case BinaryOp::Sub: return a - b;
    case BinaryOp::Mul: return a * b;
    case BinaryOp::Div: return a / b;
    case BinaryOp::Maximum: return (a != a || b != b) ? T(NAN) : (a > b ? a : b);
    case BinaryOp::Minimum: return (a != a || b != b) ? T(NAN) : (a < b ? a : b);
    case BinaryOp::Pow: return ::pow(a, b);
    case BinaryOp::Gt: return a > b;
    case BinaryOp::Lt: return a < b;
    case BinaryOp::Ge: return a >= b;
    case BinaryOp::Le: return a <= b;
    case BinaryOp::Eq: return a == b;
    case BinaryOp::Ne: return a != b;
  }
  return a;
}

// ---- kernels -------------------------------------------------------------------------------

// Same-dtype strided copy, moving E-sized elements (E: 1/2/4/8-byte unsigned integers).
template <class E>
__global__ void copy_same_kernel(StridedView dst, StridedView src, int64_t n) {
  E* d = static_cast<E*>(dst.data);
  const E* s = static_cast<const E*>(src.data);
  GS_GRID_LOOP(i, n) d[view_offset(dst, i)] = s[view_offset(src, i)];
}

__global__ void copy_convert_kernel(StridedView dst, StridedView src, int64_t n) {
  GS_GRID_LOOP(i, n) {
    dev::store_double(dst.data, dst.dtype, view_offset(dst, i), dev::load_as_double(src.data, src.dtype, view_offset(src, i)));
  }
}

// Writes the bit pattern `bits` (already converted to the element type) everywhere.
template <class E>
__global__ void fill_kernel(StridedView dst, E bits, int64_t n) {
  E* d = static_cast<E*>(dst.data);
  GS_GRID_LOOP(i, n) d[view_offset(dst, i)] = bits;
}

__global__ void fill_random_kernel(StridedView dst, uint64_t seed, uint64_t offset, bool normal, int64_t n) {
  GS_GRID_LOOP(i, n) {
    double v = normal ? philox_normal(seed, offset, uint64_t(i)) : philox_uniform(seed, offset, uint64_t(i));
    dev::store_double(dst.data, dst.dtype, view_offset(dst, i), v);
  }
}

template <class T>
__global__ void unary_kernel(UnaryOp op, StridedView out, StridedView in, T p0, T p1, int64_t n) {
  T* o = static_cast<T*>(out.data);
  const T* x = static_cast<const T*>(in.data);
  if (out.contiguous && in.contiguous) {
    GS_GRID_LOOP(i, n) o[i] = unary_apply<T>(op, x[i], p0, p1);
  } else {
    GS_GRID_LOOP(i, n) o[view_offset(out, i)] = unary_apply<T>(op, x[view_offset(in, i)], p0, p1);
  }
}

// The result (comparisons give 1/0 in T) is stored like the CPU does: as T when out has a's dtype,
// as uint8 for bool/uint8 outputs, else converted through double.
template <class T>
__global__ void binary_kernel(BinaryOp op, StridedView out, StridedView a, StridedView b, int64_t n) {
  const T* pa = static_cast<const T*>(a.data);
  const T* pb = static_cast<const T*>(b.data);
  if (out.dtype == a.dtype) {
    T* o = static_cast<T*>(out.data);
    if (out.contiguous && a.contiguous && b.contiguous) {
      GS_GRID_LOOP(i, n) o[i] = binary_apply<T>(op, pa[i], pb[i]);
    } else {
      GS_GRID_LOOP(i, n) o[view_offset(out, i)] = binary_apply<T>(op, pa[view_offset(a, i)], pb[view_offset(b, i)]);
    }
  } else if (out.dtype == DType::boolean || out.dtype == DType::u8) {
    uint8_t* o = static_cast<uint8_t*>(out.data);
    GS_GRID_LOOP(i, n) o[view_offset(out, i)] = uint8_t(binary_apply<T>(op, pa[view_offset(a, i)], pb[view_offset(b, i)]));
  } else {
    GS_GRID_LOOP(i, n) {
      T r = binary_apply<T>(op, pa[view_offset(a, i)], pb[view_offset(b, i)]);
      dev::store_double(out.data, out.dtype, view_offset(out, i), double(r));
    }
  }
}

template <class E>
__global__ void where_kernel(StridedView out, StridedView cond, StridedView a, StridedView b, int64_t n) {
  E* o = static_cast<E*>(out.data);
  const E* pa = static_cast<const E*>(a.data);
  const E* pb = static_cast<const E*>(b.data);
  GS_GRID_LOOP(i, n) {
    bool c = dev::load_as_double(cond.data, cond.dtype, view_offset(cond, i)) != 0.0;
    o[view_offset(out, i)] = c ? pa[view_offset(a, i)] : pb[view_offset(b, i)];
  }
}

// ---- host helpers --------------------------------------------------------------------------

// The CPU's store_double(value) as raw bits of the element type, so fill writes exactly what the
// CPU writes.
uint64_t element_bits(DType t, double v) {
  uint64_t bits = 0;
  auto put = [&](auto x) { std::memcpy(&bits, &x, sizeof(x)); };
  switch (t) {
    case DType::f32: put(float(v)); break;
    case DType::f64: put(v); break;
    case DType::f16: put(float_to_half(float(v))); break;
    case DType::bf16: put(float_to_bf16(float(v))); break;
    case DType::i64: put(int64_t(v)); break;
    case DType::i32: put(int32_t(v)); break;
    case DType::i16: put(int16_t(v)); break;
    case DType::i8: put(int8_t(v)); break;
    case DType::u8: put(uint8_t(v)); break;
    case DType::boolean: put(uint8_t(v != 0.0)); break;
  }
  return bits;
}

}  // namespace

void copy(const StridedView& dst_in, const StridedView& src_in) {
  const int64_t n = dst_in.numel;
  if (n == 0) return;
  GS_CHECK(src_in.numel == n, ShapeError, "copy (cuda): ", n, " destination vs ", src_in.numel, " source elements");
  const StridedView dst = coalesced(dst_in), src = coalesced(src_in);
  cudaStream_t s = stream();
  const unsigned grid = grid_for(n);
  if (dst.dtype != src.dtype) {
    copy_convert_kernel<<<grid, kBlock, 0, s>>>(dst, src, n);
    GS_CUDA_CHECK_LAUNCH("copy_convert_kernel");
    return;
  }
  const size_t es = dtype_size(dst.dtype);
  if (dst.contiguous && src.contiguous) {
    GS_CUDA_CHECK(cudaMemcpyAsync(dst.data, src.data, size_t(n) * es, cudaMemcpyDeviceToDevice, s));
    return;
  }
  switch (es) {
    case 1: copy_same_kernel<uint8_t><<<grid, kBlock, 0, s>>>(dst, src, n); break;
    case 2: copy_same_kernel<uint16_t><<<grid, kBlock, 0, s>>>(dst, src, n); break;
    case 4: copy_same_kernel<uint32_t><<<grid, kBlock, 0, s>>>(dst, src, n); break;
    default: copy_same_kernel<uint64_t><<<grid, kBlock, 0, s>>>(dst, src, n); break;
  }
  GS_CUDA_CHECK_LAUNCH("copy_same_kernel");
}

void fill(const StridedView& dst_in, double value) {
  const int64_t n = dst_in.numel;
  if (n == 0) return;
  const StridedView dst = coalesced(dst_in);
  const uint64_t bits = element_bits(dst.dtype, value);
  cudaStream_t s = stream();
  const unsigned grid = grid_for(n);
  switch (dtype_size(dst.dtype)) {
    case 1: fill_kernel<uint8_t><<<grid, kBlock, 0, s>>>(dst, uint8_t(bits), n); break;
    case 2: fill_kernel<uint16_t><<<grid, kBlock, 0, s>>>(dst, uint16_t(bits), n); break;
    case 4: fill_kernel<uint32_t><<<grid, kBlock, 0, s>>>(dst, uint32_t(bits), n); break;
    default: fill_kernel<uint64_t><<<grid, kBlock, 0, s>>>(dst, bits, n); break;
  }
  GS_CUDA_CHECK_LAUNCH("fill_kernel");
}

void fill_random(const StridedView& dst_in, uint64_t seed, uint64_t offset, bool normal) {
  const int64_t n = dst_in.numel;
  if (n == 0) return;
  const StridedView dst = coalesced(dst_in);
  fill_random_kernel<<<grid_for(n), kBlock, 0, stream()>>>(dst, seed, offset, normal, n);
  GS_CUDA_CHECK_LAUNCH("fill_random_kernel");
}

void unary(UnaryOp op, const StridedView& out_in, const StridedView& in_in, double p0, double p1) {
  GS_CHECK(out_in.dtype == DType::f32 || out_in.dtype == DType::f64, DTypeError,
           "unary op (cuda): unsupported dtype ", dtype_name(out_in.dtype));
  GS_CHECK(in_in.dtype == out_in.dtype, DTypeError, "unary op (cuda): input ", dtype_name(in_in.dtype),
           " vs output ", dtype_name(out_in.dtype));
  const int64_t n = out_in.numel;
  if (n == 0) return;
  const StridedView out = coalesced(out_in), in = coalesced(in_in);
  cudaStream_t s = stream();
  if (out.dtype == DType::f32)
    unary_kernel<float><<<grid_for(n), kBlock, 0, s>>>(op, out, in, float(p0), float(p1), n);
  else
    unary_kernel<double><<<grid_for(n), kBlock, 0, s>>>(op, out, in, p0, p1, n);
  GS_CUDA_CHECK_LAUNCH("unary_kernel");
}

void binary(BinaryOp op, const StridedView& out_in, const StridedView& a_in, const StridedView& b_in) {
  GS_CHECK(a_in.dtype == DType::f32 || a_in.dtype == DType::f64, DTypeError, "binary op (cuda): unsupported dtype ",
           dtype_name(a_in.dtype));
  GS_CHECK(b_in.dtype == a_in.dtype, DTypeError, "binary op (cuda): dtype mismatch ", dtype_name(a_in.dtype), " vs ",
           dtype_name(b_in.dtype));
  const int64_t n = out_in.numel;
  if (n == 0) return;
  const StridedView out = coalesced(out_in), a = coalesced(a_in), b = coalesced(b_in);
  cudaStream_t s = stream();
  if (a.dtype == DType::f32)
    binary_kernel<float><<<grid_for(n), kBlock, 0, s>>>(op, out, a, b, n);
  else
    binary_kernel<double><<<grid_for(n), kBlock, 0, s>>>(op, out, a, b, n);
  GS_CUDA_CHECK_LAUNCH("binary_kernel");
}

void where(const StridedView& out_in, const StridedView& cond_in, const StridedView& a_in, const StridedView& b_in) {
  GS_CHECK(a_in.dtype == out_in.dtype && b_in.dtype == out_in.dtype, DTypeError, "where (cuda): dtypes ",
           dtype_name(a_in.dtype), ", ", dtype_name(b_in.dtype), " -> ", dtype_name(out_in.dtype));
  const int64_t n = out_in.numel;
  if (n == 0) return;
  const StridedView out = coalesced(out_in), cond = coalesced(cond_in), a = coalesced(a_in), b = coalesced(b_in);
  cudaStream_t s = stream();
  const unsigned grid = grid_for(n);
  switch (dtype_size(out.dtype)) {
    case 1: where_kernel<uint8_t><<<grid, kBlock, 0, s>>>(out, cond, a, b, n); break;
    case 2: where_kernel<uint16_t><<<grid, kBlock, 0, s>>>(out, cond, a, b, n); break;
    case 4: where_kernel<uint32_t><<<grid, kBlock, 0, s>>>(out, cond, a, b, n); break;
    default: where_kernel<uint64_t><<<grid, kBlock, 0, s>>>(out, cond, a, b, n); break;
  }
  GS_CUDA_CHECK_LAUNCH("where_kernel");
}

}  // namespace gradstyle::cuda
