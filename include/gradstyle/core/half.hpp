#pragma once
// IEEE half (binary16) and bfloat16 conversions, round to nearest even, written once for the host
// and nvcc (GS_HD) so that the CPU kernels, the file readers/writers and the CUDA kernels convert
// identically, NaN payloads and subnormals included (the cuda_fp16 intrinsics are not used for
// that reason). Free of CUDA headers.
#include <cstdint>

#include "gradstyle/core/host_device.hpp"

namespace gradstyle {

namespace half_detail {
GS_HD float bits_to_float(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  __builtin_memcpy(&f, &u, 4);
  return f;
#endif
}
GS_HD uint32_t float_to_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  uint32_t u;
  __builtin_memcpy(&u, &f, 4);
  return u;
#endif
}
}  // namespace half_detail

GS_HD float half_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1F;
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
  return half_detail::bits_to_float(bits);
}

GS_HD uint16_t float_to_half(float f) {
  const uint32_t x = half_detail::float_to_bits(f);
  const uint16_t sign = uint16_t((x >> 16) & 0x8000);
  const uint32_t absx = x & 0x7FFFFFFFu;
  if (absx >= 0x7F800000u)  // inf or NaN (a NaN stays quiet and keeps the top payload bits)
    return uint16_t(sign | 0x7C00 | (absx > 0x7F800000u ? 0x200 | ((absx >> 13) & 0x3FF) : 0));
  if (absx >= 0x477FF000u) return uint16_t(sign | 0x7C00);  // rounds to >= 65520: overflow to inf
  if (absx < 0x38800000u) {                                 // below the smallest normal half (2^-14)
    if (absx < 0x33000000u) return sign;                    // < 2^-25 rounds to zero
    const uint32_t e = absx >> 23;
    const uint32_t m = (absx & 0x7FFFFF) | 0x800000;
    const uint32_t shift = 126 - e;  // mantissa bits dropped for this subnormal
    uint32_t r = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1);
    const uint32_t halfway = 1u << (shift - 1);
    if (rem > halfway || (rem == halfway && (r & 1))) ++r;
    return uint16_t(sign | r);
  }
  const uint32_t r = absx - 0x38000000u;  // rebias exponent 127 -> 15
  uint32_t h = r >> 13;
  const uint32_t rem = r & 0x1FFF;
  if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) ++h;  // may carry into the exponent: correct
  return uint16_t(sign | h);
}

GS_HD float bf16_to_float(uint16_t b) { return half_detail::bits_to_float(uint32_t(b) << 16); }

GS_HD uint16_t float_to_bf16(float f) {
  uint32_t x = half_detail::float_to_bits(f);
  if ((x & 0x7FFFFFFFu) > 0x7F800000u) return uint16_t((x >> 16) | 0x40);  // quiet NaN
  const uint32_t lsb = (x >> 16) & 1;
  x += 0x7FFFu + lsb;
  return uint16_t(x >> 16);
}

}  // namespace gradstyle
