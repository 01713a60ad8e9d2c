#pragma once
// Shared helpers for the StyleGAN2 parity tests: the fixtures written by
// tools/reference/make_stylegan2_fixtures.py, read through our own .pt reader.
#include <map>
#include <string>

#include "gradstyle/io/tensor_bridge.hpp"
#include "gradstyle/models/stylegan2.hpp"
#include "support/harness.hpp"

namespace sg2test {

using namespace gradstyle;

inline std::string golden(const std::string& name) {
  return std::string(GS_SOURCE_ROOT) + "/tests/golden/stylegan2/" + name;
}

// Every tensor of tiny_io.pt (loaded once).
inline const std::map<std::string, Tensor>& io_tensors() {
  static const std::map<std::string, Tensor> t = io::load_state_dict_tensors(golden("tiny_io.pt"));
  return t;
}

inline Tensor fx(const std::string& key, Device d = Device::cpu()) {
  auto it = io_tensors().find(key);
  REQUIRE_MESSAGE(it != io_tensors().end(), "fixture tensor '" << key << "' missing: rerun make_stylegan2_fixtures.py");
  return it->second.to(d);
}

// float32 tolerance scaled to the reference's magnitude: |a - b| <= rel * (max|ref| + |ref|).
// The reference is float64 math on the same float32 weights; our float32 forward accumulates
// rounding through ~10 layers: measured worst errors are 2e-7..6e-7 of max|ref| (CPU), 30x below.
inline gstest::Tol f32_tol(const Tensor& r, double rel = 2e-5) {
  auto v = r.to_vector<double>();
  double m = 0;
  for (double x : v) m = std::max(m, std::abs(x));
  return gstest::Tol{rel * m, rel};
}

}  // namespace sg2test
