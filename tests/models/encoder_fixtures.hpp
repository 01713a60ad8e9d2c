#pragma once
// Shared helpers for the encoder / loss-network / editing tests: fixture paths (written by
// tools/reference/make_encoder_fixtures.py into tests/golden/encoders/), the synthetic image both
// sides compute, scale-aware comparison, and placeholder state dicts of the full-size key layouts.
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>

#include "gradstyle/io/tensor_bridge.hpp"
#include "gradstyle/nn/module.hpp"
#include "support/harness.hpp"

namespace enctest {

using namespace gradstyle;

inline std::string fixture(const std::string& name) {
  return std::string(GS_SOURCE_ROOT "/tests/golden/encoders/") + name;
}

// Every tensor of an *_io.pt file ("x", "grads.body.0.res_layer.1.weight", ...).
inline std::map<std::string, Tensor> load_io(const std::string& name, Device d = Device::cpu()) {
  io::StateDictOptions o;
  o.device = d;
  return io::load_state_dict_tensors(fixture(name), o);
}

inline const Tensor& at(const std::map<std::string, Tensor>& m, const std::string& k) {
  auto it = m.find(k);
  REQUIRE_MESSAGE(it != m.end(), "fixture entry missing: " << k);
  return it->second;
}

// make_encoder_fixtures.py synthetic_image(): smooth, deterministic, float64 math then float32.
inline Tensor synthetic_image(int64_t b, int64_t c, int64_t h, int64_t w, double phase = 0.0) {
  std::vector<float> v(size_t(b * c * h * w));
  size_t i = 0;
  for (int64_t n = 0; n < b; ++n)
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t y = 0; y < h; ++y)
        for (int64_t x = 0; x < w; ++x) {
          const double yy = double(y), xx = double(x), cc = double(ch), bb = double(n);
          v[i++] = float(0.8 * std::sin(0.11 * yy + 0.07 * xx * (cc + 1) + 0.5 * bb + phase) *
                         std::cos(0.05 * (yy - 2 * xx) + 0.3 * cc));
        }
  return Tensor::from_vector<float>(v, {b, c, h, w});
}

inline double max_abs(const Tensor& t) {
  double m = 0;
  for (double x : t.to_vector<double>()) m = std::max(m, std::abs(x));
  return m;
}

// |a - b| <= rel * (max|b| + |b|): float32 parity of a whole network, where the absolute error
// follows the scale of the tensor rather than of each element.
#define ENC_EXPECT_CLOSE(a, b, rel)                                                          \
  do {                                                                                       \
    const ::gradstyle::Tensor _ref = (b);                                                    \
    GS_EXPECT_CLOSE((a), _ref, (rel) * ::enctest::max_abs(_ref) + 1e-12, (rel));              \
  } while (0)

// Key -> shape lists of the full-size networks (keys_real.json).
inline const nlohmann::json& real_keys() {
  static const nlohmann::json j = [] {
    std::ifstream f(fixture("keys_real.json"));
    REQUIRE_MESSAGE(f.good(), "missing tests/golden/encoders/keys_real.json; run make_encoder_fixtures.py");
    return nlohmann::json::parse(f);
  }();
  return j;
}

inline std::map<std::string, Shape> real_shapes(const std::string& net) {
  std::map<std::string, Shape> m;
  for (const auto& e : real_keys().at(net)) m[e[0].get<std::string>()] = e[1].get<Shape>();
  return m;
}

// A state dict with the full-size shapes that costs no memory: every tensor is a stride-0 view
// of one zero (enough for the loaders' configuration inference, which reads shapes only).
inline nn::StateDict placeholder_state_dict(const std::string& net) {
  nn::StateDict sd;
  const Tensor zero = Tensor::zeros({1});
  for (const auto& [k, s] : real_shapes(net)) sd[k] = s.empty() ? Tensor::zeros({}) : zero.reshape(Shape(s.size(), 1)).expand(s);
  return sd;
}

inline std::map<std::string, Shape> shapes_of(nn::Module& m) {
  std::map<std::string, Shape> r;
  for (const auto& [k, t] : m.state_dict()) r[k] = t.shape();
  return r;
}

// Backward of sum(out * weight) from fresh leaves: returns the gradient of each input.
inline void backward_weighted(const Tensor& out, const Tensor& weight) { (out * weight.to(out.device())).sum().backward(); }

}  // namespace enctest

namespace enctest {

// Compares every "grads.<param>" entry of an io file with the .grad of that parameter.
inline void check_param_grads(gradstyle::nn::Module& m, const std::map<std::string, gradstyle::Tensor>& io, double rel) {
  auto params = m.named_parameters();
  int checked = 0;
  for (const auto& [k, ref] : io) {
    if (k.rfind("grads.", 0) != 0) continue;
    const std::string name = k.substr(6);
    gradstyle::Tensor* p = nullptr;
    for (auto& [n, t] : params)
      if (n == name) p = t;
    INFO("parameter " << name);
    REQUIRE(p != nullptr);
    REQUIRE(p->grad().defined());
    ENC_EXPECT_CLOSE(p->grad().cpu(), ref.cpu(), rel);
    ++checked;
  }
  CHECK(checked > 0);
}

}  // namespace enctest
