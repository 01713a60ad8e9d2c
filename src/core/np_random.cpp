#include "gradstyle/core/np_random.hpp"

#include <cmath>

#include "gradstyle/core/error.hpp"

namespace gradstyle {

NpRandomState::NpRandomState(int64_t seed) {
  GS_CHECK(seed >= 0 && seed <= int64_t(0xffffffffLL), ValueError, "NpRandomState: seed ", seed,
           " is outside [0, 2^32 - 1] (NumPy's RandomState accepts only that range)");
  // init_genrand (numpy's mt19937_seed)
  uint32_t s = uint32_t(seed);
  for (int i = 0; i < 624; ++i) {
    mt_[size_t(i)] = s;
    s = 1812433253u * (s ^ (s >> 30)) + uint32_t(i + 1);
  }
  pos_ = 624;
}

void NpRandomState::twist() {
  constexpr uint32_t kUpper = 0x80000000u, kLower = 0x7fffffffu, kMatrixA = 0x9908b0dfu;
  for (int i = 0; i < 624; ++i) {
    uint32_t y = (mt_[size_t(i)] & kUpper) | (mt_[size_t((i + 1) % 624)] & kLower);
    mt_[size_t(i)] = mt_[size_t((i + 397) % 624)] ^ (y >> 1) ^ ((y & 1u) ? kMatrixA : 0u);
  }
  pos_ = 0;
}

uint32_t NpRandomState::next_u32() {
  if (pos_ >= 624) twist();
  uint32_t y = mt_[size_t(pos_++)];
  // tempering
  y ^= (y >> 11);
  y ^= (y << 7) & 0x9d2c5680u;
  y ^= (y << 15) & 0xefc60000u;
  y ^= (y >> 18);
  return y;
}

double NpRandomState::random_sample() {
  uint32_t a = next_u32() >> 5, b = next_u32() >> 6;
  return (double(a) * 67108864.0 + double(b)) / 9007199254740992.0;
}

double NpRandomState::gauss() {
  if (has_gauss_) {
    has_gauss_ = false;
    return gauss_;
  }
  double x1, x2, r2;
  do {
    x1 = 2.0 * random_sample() - 1.0;
    x2 = 2.0 * random_sample() - 1.0;
    r2 = x1 * x1 + x2 * x2;
  } while (r2 >= 1.0 || r2 == 0.0);
  const double f = std::sqrt(-2.0 * std::log(r2) / r2);
  gauss_ = f * x1;
  has_gauss_ = true;
  return f * x2;
}

std::vector<double> NpRandomState::randn(int64_t n) {
  GS_CHECK(n >= 0, ValueError, "NpRandomState::randn: negative count ", n);
  std::vector<double> v(static_cast<size_t>(n));
  for (auto& x : v) x = gauss();
  return v;
}

std::vector<double> NpRandomState::rand(int64_t n) {
  GS_CHECK(n >= 0, ValueError, "NpRandomState::rand: negative count ", n);
  std::vector<double> v(static_cast<size_t>(n));
  for (auto& x : v) x = random_sample();
  return v;
}

}  // namespace gradstyle
