#pragma once
// Reader of the PyTorch fixtures in tests/golden/conv/ (written by
// tools/reference/make_conv_fixtures.py): index.json lists the cases, each case's tensors are
// raw little-endian float32 in <case>.bin at the listed element offsets.
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "gradstyle/ops/conv.hpp"
#include "support/harness.hpp"

namespace gstest::conv_golden {

struct Case {
  std::string name, op;
  nlohmann::json params;
  std::map<std::string, gradstyle::Tensor> t;  // float32 CPU tensors
  bool has(const std::string& k) const { return t.count(k) > 0; }
  const gradstyle::Tensor& at(const std::string& k) const { return t.at(k); }
};

inline std::string dir() { return std::string(GS_SOURCE_ROOT) + "/tests/golden/conv/"; }

// All cases of one op ("conv2d", "conv_transpose2d", "upfirdn2d", "bias_act").
inline std::vector<Case> load(const std::string& op) {
  std::ifstream in(dir() + "index.json");
  REQUIRE_MESSAGE(in.good(), "missing fixture index " << dir() << "index.json");
  nlohmann::json idx = nlohmann::json::parse(in);
  std::vector<Case> out;
  for (const auto& c : idx.at("cases")) {
    if (c.at("op") != op) continue;
    Case k;
    k.name = c.at("name");
    k.op = op;
    k.params = c.at("params");
    std::ifstream bin(dir() + std::string(c.at("file")), std::ios::binary);
    REQUIRE_MESSAGE(bin.good(), "missing fixture " << c.at("file"));
    std::vector<char> bytes((std::istreambuf_iterator<char>(bin)), std::istreambuf_iterator<char>());
    for (const auto& e : c.at("tensors")) {
      gradstyle::Shape shape = e.at("shape").get<std::vector<int64_t>>();
      const int64_t off = e.at("offset"), n = gradstyle::shape_numel(shape);
      REQUIRE(size_t(off + n) * 4 <= bytes.size());
      k.t[e.at("name")] = gradstyle::Tensor::from_blob(bytes.data() + off * 4, shape, gradstyle::DType::f32);
    }
    out.push_back(std::move(k));
  }
  REQUIRE_MESSAGE(!out.empty(), "no fixtures for op " << op);
  return out;
}

inline gradstyle::Int2 int2(const nlohmann::json& j) { return {j.at(0).get<int64_t>(), j.at(1).get<int64_t>()}; }

}  // namespace gstest::conv_golden
