#pragma once
// Element types. Math ops compute in float32 and float64; the other types are storage types
// (checkpoint loading, indices, masks) that convert with Tensor::to(DType).
#include <cstddef>
#include <cstdint>
#include <string>

#include "gradstyle/core/half.hpp"  // half_to_float, float_to_half, bf16_to_float, float_to_bf16

namespace gradstyle {

enum class DType : uint8_t { f32, f64, f16, bf16, i64, i32, i16, i8, u8, boolean };

inline size_t dtype_size(DType t) {
  switch (t) {
    case DType::f32: return 4;
    case DType::f64: return 8;
    case DType::f16: return 2;
    case DType::bf16: return 2;
    case DType::i64: return 8;
    case DType::i32: return 4;
    case DType::i16: return 2;
    case DType::i8: return 1;
    case DType::u8: return 1;
    case DType::boolean: return 1;
  }
  return 0;
}

inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "float32";
    case DType::f64: return "float64";
    case DType::f16: return "float16";
    case DType::bf16: return "bfloat16";
    case DType::i64: return "int64";
    case DType::i32: return "int32";
    case DType::i16: return "int16";
    case DType::i8: return "int8";
    case DType::u8: return "uint8";
    case DType::boolean: return "bool";
  }
  return "?";
}

inline bool is_floating(DType t) {
  return t == DType::f32 || t == DType::f64 || t == DType::f16 || t == DType::bf16;
}

}  // namespace gradstyle
