#pragma once
// NumPy's legacy RandomState (numpy.random.RandomState), bit-exact for what the StyleGAN tools
// use: `np.random.RandomState(seed).randn(...)` (NVIDIA generate.py draws z this way, so a seed
// names the same z in gradstyle as there) and `.rand(...)`.
//
//   NpRandomState rs(85);
//   std::vector<double> z = rs.randn(512);   // == np.random.RandomState(85).randn(512)
//
// Engine: MT19937 seeded like NumPy's `RandomState(int)`, i.e. `mt19937_seed` = Matsumoto's
// init_genrand (NOT init_by_array, which NumPy uses only for array seeds).
// random_sample: 53-bit doubles ((a >> 5) * 2^26 + (b >> 6)) / 2^53 from two 32-bit outputs.
// randn: the legacy polar Box-Muller (`legacy_gauss`): each accepted pair returns f*x2 and caches
// f*x1 for the next call. This is not the Philox stream of core/rng.hpp; it exists only to
// reproduce NumPy's numbers.
#include <array>
#include <cstdint>
#include <vector>

namespace gradstyle {

class NpRandomState {
 public:
  // Seeds must lie in [0, 2^32 - 1] like NumPy's; ValueError otherwise.
  explicit NpRandomState(int64_t seed);

  uint32_t next_u32();     // one raw MT19937 output (genrand_int32)
  double random_sample();  // uniform in [0, 1), 53 bits
  double gauss();          // standard normal (legacy polar method with the cached value)
  std::vector<double> randn(int64_t n);
  std::vector<double> rand(int64_t n);

 private:
  std::array<uint32_t, 624> mt_{};
  int pos_ = 624;
  bool has_gauss_ = false;
  double gauss_ = 0.0;
  void twist();
};

}  // namespace gradstyle
