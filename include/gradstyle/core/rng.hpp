#pragma once
// Counter-based Philox-4x32-10 RNG. Element i of a draw uses counter (offset + i, 0) and key
// (seed), so CPU and CUDA produce bit-identical uniform numbers, and normals computed from them
// agree to float rounding. Header-only and free of CUDA headers (GS_HD: core/host_device.hpp).
#include <cmath>
#include <cstdint>

#include "gradstyle/core/host_device.hpp"

namespace gradstyle {

struct Philox4 {
  uint32_t v[4];
};

GS_HD uint32_t philox_mulhilo(uint32_t a, uint32_t b, uint32_t* hi) {
  uint64_t p = uint64_t(a) * uint64_t(b);
  *hi = uint32_t(p >> 32);
  return uint32_t(p);
}

// Philox4x32 with 10 rounds.
GS_HD Philox4 philox4x32(uint64_t counter_lo, uint64_t counter_hi, uint64_t key) {
  uint32_t c0 = uint32_t(counter_lo), c1 = uint32_t(counter_lo >> 32);
  uint32_t c2 = uint32_t(counter_hi), c3 = uint32_t(counter_hi >> 32);
  uint32_t k0 = uint32_t(key), k1 = uint32_t(key >> 32);
  for (int r = 0; r < 10; ++r) {
    uint32_t hi0, hi1;
    uint32_t lo0 = philox_mulhilo(0xD2511F53u, c0, &hi0);
    uint32_t lo1 = philox_mulhilo(0xCD9E8D57u, c2, &hi1);
    uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
    c0 = n0; c1 = n1; c2 = n2; c3 = n3;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return Philox4{{c0, c1, c2, c3}};
}

// Uniform in (0, 1]: never 0, so log() is safe.
GS_HD double philox_uniform01(uint32_t a, uint32_t b) {
  uint64_t x = (uint64_t(a) << 21) ^ uint64_t(b >> 11);  // 53 random bits
  x &= (uint64_t(1) << 53) - 1;
  return (double(x) + 1.0) * (1.0 / 9007199254740992.0);
}

// The i-th uniform in (0,1] of the stream (seed, offset).
GS_HD double philox_uniform(uint64_t seed, uint64_t offset, uint64_t i) {
  Philox4 r = philox4x32(offset + i, 0, seed);
  return philox_uniform01(r.v[0], r.v[1]);
}

// The i-th standard normal of the stream (seed, offset): Box-Muller on one Philox block.
GS_HD double philox_normal(uint64_t seed, uint64_t offset, uint64_t i) {
  Philox4 r = philox4x32(offset + i, 0, seed);
  double u1 = philox_uniform01(r.v[0], r.v[1]);
  double u2 = philox_uniform01(r.v[2], r.v[3]);
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586476925 * u2);
}

// A seeded stream. Each draw of n numbers consumes n counters, so successive draws differ and a
// (seed, offset) pair reproduces any draw exactly on any device.
class Generator {
 public:
  explicit Generator(uint64_t seed = 0) : seed_(seed) {}
  uint64_t seed() const { return seed_; }
  uint64_t offset() const { return offset_; }
  void set_offset(uint64_t o) { offset_ = o; }
  // Reserves n counters and returns the offset at which they start.
  uint64_t advance(uint64_t n) {
    uint64_t o = offset_;
    offset_ += n;
    return o;
  }

 private:
  uint64_t seed_;
  uint64_t offset_ = 0;
};

}  // namespace gradstyle
