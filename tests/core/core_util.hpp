#pragma once
// Small helpers shared by the engine-foundation tests (tests/core, tests/autograd and the basic
// op families in tests/ops). Everything here is independent of the code under test except the
// Tensor factories and to_vector.
#include <cmath>
#include <functional>
#include <vector>

#include "support/harness.hpp"

namespace coretest {

using namespace gradstyle;

// A float64 (default) or float32 tensor from literal values.
inline Tensor tens(const std::vector<double>& v, const Shape& s, DType dt = DType::f64) {
  return Tensor::from_vector(v, s).to(dt);
}
inline std::vector<double> vals(const Tensor& t) { return t.to_vector<double>(); }

// Releases a NaN-filled block of the given size right before an op allocates its output of the
// same size, so that the allocator hands the op recycled NaN memory: an op that leaves any output
// element unwritten then shows NaN instead of a lucky zero.
inline void prime_nan(int64_t numel, DType dt = DType::f64) {
  Tensor t = Tensor::empty({numel}, {dt});
  gstest::poison(t);
}

// Row-major strides and the flat index -> multi-index map, written independently of the library.
inline std::vector<int64_t> unravel(int64_t i, const Shape& s) {
  std::vector<int64_t> idx(s.size());
  for (int64_t d = int64_t(s.size()) - 1; d >= 0; --d) {
    idx[size_t(d)] = s[size_t(d)] == 0 ? 0 : i % s[size_t(d)];
    i = s[size_t(d)] == 0 ? 0 : i / s[size_t(d)];
  }
  return idx;
}
// Flat index into a row-major tensor of shape `s` (aligned to the right of the output index,
// broadcasting size-1 dims), i.e. NumPy broadcasting done by hand.
inline int64_t bcast_index(const std::vector<int64_t>& out_idx, const Shape& s) {
  size_t lead = out_idx.size() - s.size();
  int64_t flat = 0;
  for (size_t d = 0; d < s.size(); ++d) {
    int64_t i = s[d] == 1 ? 0 : out_idx[lead + d];
    flat = flat * s[d] + i;
  }
  return flat;
}

// Reference broadcast binary op over host vectors.
inline std::vector<double> bcast_ref(const std::vector<double>& a, const Shape& sa, const std::vector<double>& b,
                                     const Shape& sb, const Shape& so,
                                     const std::function<double(double, double)>& f) {
  std::vector<double> r(size_t(shape_numel(so)));
  for (int64_t i = 0; i < int64_t(r.size()); ++i) {
    auto idx = unravel(i, so);
    r[size_t(i)] = f(a[size_t(bcast_index(idx, sa))], b[size_t(bcast_index(idx, sb))]);
  }
  return r;
}

// Seeded float64 input in [lo, hi) (uniform), for ops with a restricted domain.
inline Tensor uniform(const Shape& s, uint64_t seed, double lo, double hi, DType dt = DType::f64) {
  return (Tensor::rand(s, seed, {DType::f64}) * (hi - lo) + lo).to(dt);
}

// Seeded float64 input whose entries all have |x| >= margin (for ops with a kink at 0).
inline Tensor away_from_zero(const Shape& s, uint64_t seed, double margin = 0.1) {
  auto v = vals(Tensor::randn(s, seed, {DType::f64}));
  for (double& x : v) x = x >= 0 ? x + margin : x - margin;
  return Tensor::from_vector(v, s);
}

}  // namespace coretest
