#pragma once
// Reader of the PyTorch fixtures for the issue-3 image ops (tests/golden/imgops, written by
// tools/reference/make_image_op_fixtures.py): index.json lists the cases (op, params, and each
// tensor's shape and byte offset), data.bin holds the tensors as raw little-endian float32.
//
// check_case() replays one case on a device: it builds leaves from the stored inputs (the listed
// differentiable ones require grad), runs the op, compares y with the stored output, then
// back-propagates the stored weight gy and compares each input gradient with grad_<name>.
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "support/harness.hpp"

namespace imgfx {

using namespace gradstyle;

struct Case {
  std::string name, op;
  nlohmann::json params;
  std::map<std::string, Tensor> t;  // float32, CPU
  bool has(const std::string& k) const { return t.count(k) > 0; }
  const Tensor& at(const std::string& k) const {
    auto it = t.find(k);
    if (it == t.end()) throw std::runtime_error("fixture " + name + " has no tensor '" + k + "'");
    return it->second;
  }
};

inline const std::vector<Case>& all_cases() {
  static const std::vector<Case> cases = [] {
    const std::string dir = std::string(GS_SOURCE_ROOT) + "/tests/golden/imgops/";
    std::ifstream jf(dir + "index.json");
    std::ifstream bf(dir + "data.bin", std::ios::binary);
    if (!jf || !bf)
      throw std::runtime_error("missing fixtures in " + dir + " (run tools/reference/make_image_op_fixtures.py)");
    std::vector<char> blob((std::istreambuf_iterator<char>(bf)), std::istreambuf_iterator<char>());
    nlohmann::json idx = nlohmann::json::parse(jf);
    std::vector<Case> out;
    for (const auto& c : idx.at("cases")) {
      Case k;
      k.name = c.at("name").get<std::string>();
      k.op = c.at("op").get<std::string>();
      k.params = c.at("params");
      for (const auto& [tname, info] : c.at("tensors").items()) {
        Shape shape = info.at("shape").get<Shape>();
        const size_t off = info.at("offset").get<size_t>();
        const size_t nbytes = size_t(shape_numel(shape)) * 4;
        if (off + nbytes > blob.size())
          throw std::runtime_error("fixture " + k.name + ": tensor " + tname + " out of range");
        k.t[tname] = Tensor::from_blob(blob.data() + off, shape, DType::f32);
      }
      out.push_back(std::move(k));
    }
    return out;
  }();
  return cases;
}

inline std::vector<const Case*> cases_of(const std::string& op) {
  std::vector<const Case*> r;
  for (const Case& c : all_cases())
    if (c.op == op) r.push_back(&c);
  return r;
}

using Inputs = std::map<std::string, Tensor>;
using OpFn = std::function<Tensor(const Inputs&)>;

// Replays case c on device d (see the file comment). `diff` lists the differentiable inputs.
inline void check_case(const Case& c, Device d, const std::vector<std::string>& diff, const OpFn& f,
                       gstest::Tol tol_y = {}, gstest::Tol tol_g = {}) {
  INFO("fixture case " << c.name << " on " << d.str());
  Inputs in;
  for (const auto& [k, v] : c.t) {
    if (k == "y" || k == "gy" || k.rfind("grad_", 0) == 0 || k.rfind("new_", 0) == 0) continue;
    in[k] = v.to(d).clone();
  }
  for (const auto& k : diff) in.at(k).requires_grad_();
  Tensor y = f(in);
  REQUIRE(y.device() == d);
  GS_EXPECT_CLOSE(y.cpu(), c.at("y"), tol_y.atol, tol_y.rtol);
  if (diff.empty()) return;
  std::vector<Tensor> leaves;
  for (const auto& k : diff) leaves.push_back(in.at(k));
  auto grads = autograd::grad({y}, leaves, {c.at("gy").to(d)});
  for (size_t i = 0; i < diff.size(); ++i) {
    INFO("gradient w.r.t. " << diff[i]);
    REQUIRE(grads[i].defined());
    GS_EXPECT_CLOSE(grads[i].cpu(), c.at("grad_" + diff[i]), tol_g.atol, tol_g.rtol);
  }
}

// Shapes stored in the fixture params, as gradstyle Shapes.
inline Shape shape_param(const Case& c, const char* key) {
  return c.params.at(key).get<Shape>();
}

}  // namespace imgfx
