#pragma once
// Private to cuda/: device-side element conversions that reproduce the CPU kernels bit for bit
// (src/cpu/elementwise.cpp load_as_double/store_double and src/io/dtype_conv.cpp): half and
// bfloat16 use the same integer round-to-nearest-even code, not the cuda_fp16 intrinsics, so NaN
// payloads and subnormals convert identically on both devices.
#include <cstdint>

#include "gradstyle/core/dtype.hpp"

namespace gradstyle::cuda::dev {

__device__ __forceinline__ float half_to_float(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1F;
  uint32_t mant = h & 0x3FF;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: renormalise
      int e = -1;
      do {
        ++e;
        mant <<= 1;
      } while ((mant & 0x400) == 0);
      bits = sign | (uint32_t(127 - 15 - e) << 23) | ((mant & 0x3FF) << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7F800000u | (mant << 13);  // inf / NaN (payload kept)
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  return __uint_as_float(bits);
}

__device__ __forceinline__ uint16_t float_to_half(float f) {
  uint32_t x = __float_as_uint(f);
  uint16_t sign = uint16_t((x >> 16) & 0x8000);
  uint32_t absx = x & 0x7FFFFFFFu;
  if (absx >= 0x7F800000u)  // inf or NaN
    return uint16_t(sign | 0x7C00 | (absx > 0x7F800000u ? 0x200 | ((absx >> 13) & 0x3FF) : 0));
  if (absx >= 0x477FF000u) return uint16_t(sign | 0x7C00);  // rounds to >= 65520: overflow to inf
  if (absx < 0x38800000u) {                                 // below the smallest normal half
    if (absx < 0x33000000u) return sign;                    // < 2^-25 rounds to zero
    uint32_t e = absx >> 23;
    uint32_t m = (absx & 0x7FFFFF) | 0x800000;
    uint32_t shift = 126 - e;
    uint32_t r = m >> shift;
    uint32_t rem = m & ((1u << shift) - 1);
    uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (r & 1))) ++r;
    return uint16_t(sign | r);
  }
  uint32_t r = absx - 0x38000000u;  // rebias exponent 127 -> 15
  uint32_t h = r >> 13;
  uint32_t rem = r & 0x1FFF;
  if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) ++h;  // may carry into the exponent: correct
  return uint16_t(sign | h);
}

__device__ __forceinline__ float bf16_to_float(uint16_t b) { return __uint_as_float(uint32_t(b) << 16); }

__device__ __forceinline__ uint16_t float_to_bf16(float f) {
  uint32_t x = __float_as_uint(f);
  if ((x & 0x7FFFFFFFu) > 0x7F800000u) return uint16_t((x >> 16) | 0x40);  // quiet NaN
  uint32_t lsb = (x >> 16) & 1;
  x += 0x7FFFu + lsb;
  return uint16_t(x >> 16);
}

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
