#pragma once
// Private to cuda/: device-side element loads and stores that reproduce the CPU kernels bit for
// bit (src/cpu/elementwise.cpp load_as_double/store_double). half and bfloat16 go through the
// host-device conversions of gradstyle/core/half.hpp, the same code the CPU runs, so NaN payloads
// and subnormals convert identically on both devices.
#include <cstdint>

#include "gradstyle/core/dtype.hpp"  // includes core/half.hpp

namespace gradstyle::cuda::dev {

using ::gradstyle::bf16_to_float;  // core/half.hpp: the one host-device implementation
using ::gradstyle::float_to_bf16;
using ::gradstyle::float_to_half;
using ::gradstyle::half_to_float;

// Element `off` of an array of dtype t, as double (the CPU's load_as_double).
__device__ __forceinline__ double load_as_double(const void* base, DType t, int64_t off) {
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

// Stores v converted to dtype t (the CPU's store_double). Float-to-integer conversion of values
// outside the integer range is undefined on the CPU and saturates here.
__device__ __forceinline__ void store_double(void* base, DType t, int64_t off, double v) {
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

}  // namespace gradstyle::cuda::dev
