#pragma once
// Reader for the issue-4 kernel fixtures written by tools/reference/make_kernel_fixtures.py:
// tests/golden/kernels/index.json (cases, parameters, per-tensor dtype/shape/byte offset) and
// tests/golden/kernels/data.bin (raw little-endian float64 / float32, back to back).
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "support/harness.hpp"

namespace gstest {

struct KernelFixture {
  std::string name;
  nlohmann::json params;
  std::map<std::string, gradstyle::Tensor> tensors;
  // The named tensor converted to dtype (a missing name fails the test with a clear message).
  gradstyle::Tensor get(const std::string& key, gradstyle::DType dt = gradstyle::DType::f64) const {
    auto it = tensors.find(key);
    INFO("fixture " << name << " has no tensor " << key);
    REQUIRE(it != tensors.end());
    return it->second.detach().to(dt).clone();  // a fresh leaf each time
  }
};

inline const std::vector<char>& kernel_fixture_blob() {
  static std::vector<char> blob = [] {
    std::ifstream f(std::string(GS_SOURCE_ROOT) + "/tests/golden/kernels/data.bin", std::ios::binary);
    return std::vector<char>(std::istreambuf_iterator<char>(f), {});
  }();
  return blob;
}

inline KernelFixture load_kernel_fixture(const std::string& name) {
  std::ifstream f(std::string(GS_SOURCE_ROOT) + "/tests/golden/kernels/index.json");
  REQUIRE(f.good());
  nlohmann::json idx = nlohmann::json::parse(f);
  const auto& blob = kernel_fixture_blob();
  for (const auto& c : idx["cases"]) {
    if (c["name"] != name) continue;
    KernelFixture fx;
    fx.name = name;
    fx.params = c["params"];
    for (auto it = c["tensors"].begin(); it != c["tensors"].end(); ++it) {
      const auto& e = it.value();
      gradstyle::Shape shape = e["shape"].get<gradstyle::Shape>();
      const bool f64 = e["dtype"] == "f64";
      const size_t bytes = size_t(gradstyle::shape_numel(shape)) * (f64 ? 8 : 4);
      const size_t off = e["offset"].get<size_t>();
      REQUIRE(off + bytes <= blob.size());
      fx.tensors[it.key()] = gradstyle::Tensor::from_blob(blob.data() + off, shape,
                                                          f64 ? gradstyle::DType::f64 : gradstyle::DType::f32);
    }
    return fx;
  }
  INFO("no fixture case " << name << " (regenerate with /usr/bin/python3 tools/reference/make_kernel_fixtures.py)");
  REQUIRE(false);
  return {};
}

}  // namespace gstest
