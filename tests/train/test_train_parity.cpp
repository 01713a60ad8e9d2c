// One GradStyle training iteration against the PyTorch reference (tools/reference/
// make_gradstyle_fixtures.py, tests/golden/gradstyle/net.safetensors): both streams on the tiny
// 32 px generator, the warp with given homographies, every B.7 loss term (L2, LPIPS, adversarial,
// L_f, aligner) and the gradient of the total with respect to every module parameter under B.7's
// routing, all in float64.
#include <nlohmann/json.hpp>

#include "gradstyle/io/safetensors.hpp"
#include "gradstyle/io/tensor_bridge.hpp"
#include "gradstyle/models/lpips.hpp"
#include "gradstyle/ops/perspective_warp.hpp"
#include "gradstyle/train/losses.hpp"
#include "gradstyle/train/optim.hpp"
#include "models/gradstyle_fixture.hpp"
#include "train/gradstyle_iteration.hpp"

using namespace gradstyle;
using namespace gradstyle::train;
namespace sg = gradstyle::models::stylegan2;
namespace gsn = gradstyle::models::gsnet;

namespace {

// |a - b| / max(max|b|, 1): float64 on both sides, so this is rounding only.
double rel_err(const Tensor& a, const Tensor& b) {
  auto va = a.to(DType::f64).to_vector<double>(), vb = b.to(DType::f64).to_vector<double>();
  REQUIRE(va.size() == vb.size());
  double scale = 1, worst = 0;
  for (double x : vb) scale = std::max(scale, std::abs(x));
  for (size_t i = 0; i < va.size(); ++i) worst = std::max(worst, std::abs(va[i] - vb[i]) / scale);
  return worst;
}
}  // namespace

using namespace gstest_train;

TEST_CASE("train/parity: one iteration (streams, warp, every loss term, every gradient) matches PyTorch") {
  NetFixture f;
  auto at = [&](const std::string& k) { return f.at(k); };
  auto& fx = f.fx;
  auto& net = *f.net;

  gsn::EncoderFeatures feats{at("in.c3"), at("in.p2"), Tensor()};
  auto it = f.run();
  auto& rec = it.rec;
  auto& ed = it.ed;
  auto& F_hat = it.F_hat;
  auto& loss = it.loss;
  Tensor total = loss["total"];

  double worst = 0;
  std::string worst_name;
  auto check = [&](const std::string& name, const Tensor& ours, const Tensor& ref) {
    REQUIRE_MESSAGE(ours.numel() == ref.numel(), name << ": " << shape_str(ours.shape()) << " vs " << shape_str(ref.shape()));
    const double e = rel_err(ours.reshape(ref.shape()), ref);
    INFO(name << ": relative error " << e);
    CHECK(e <= 1e-10);
    if (e > worst) worst = e, worst_name = name;
  };
  check("out.Xr", rec.image, at("out.Xr"));
  check("out.Xe", ed.image, at("out.Xe"));
  check("out.T.0", net.select_all(feats)[0], at("out.T.0"));
  check("out.g.0", rec.g[0], at("out.g.0"));
  check("out.Fhat.0", F_hat[0], at("out.Fhat.0"));
  for (int m = 0; m < 2; ++m) {
    check("out.F." + std::to_string(m), rec.F[size_t(m)], at("out.F." + std::to_string(m)));
    check("out.Fp." + std::to_string(m), ed.Fp[size_t(m)], at("out.Fp." + std::to_string(m)));
  }
  for (const char* k : {"l2", "lpips", "adv", "f", "aligner", "total"})
    check(std::string("loss.") + k, loss[k], at(std::string("loss.") + k));

  total.backward();
  int n_grads = 0;
  for (auto& [name, p] : net.named_parameters()) {
    const std::string key = "grad." + name;
    if (!fx.count(key)) continue;
    ++n_grads;
    REQUIRE_MESSAGE(p->grad().defined(), name << " has no gradient");
    check(key, p->grad(), at(key));
  }
  CHECK(n_grads == int(net.parameters(true).size()));
  for (int m = 0; m < 2; ++m)
    for (const char* b : {"running_mean", "running_var"}) {
      const std::string k = "grm." + std::to_string(m) + ".stem_bn." + b;
      check("after." + k, net.state_dict().at(k), at("after." + k));
    }
  MESSAGE("one training iteration vs PyTorch: worst relative error " << worst << " (" << worst_name << ") over "
                                                                      << n_grads << " parameter gradients");
}

TEST_CASE("train/parity: 10 iterations of Adam + Lookahead match PyTorch (losses and final parameters)") {
  NetFixture f;
  std::map<std::string, std::string> meta;
  std::map<std::string, Tensor> ref;
  for (auto& [k, raw] : io::load_safetensors(root("tests/golden/gradstyle/train10.safetensors"), &meta))
    ref[k] = io::to_tensor(raw).to(DType::f64);
  const auto c = nlohmann::json::parse(meta.at("config"));
  AdamOptions ao;
  ao.lr = c["lr"].get<double>();
  ao.beta1 = c["adam_betas"][0].get<double>();
  ao.beta2 = c["adam_betas"][1].get<double>();
  ao.eps = c["adam_eps"].get<double>();
  Lookahead opt(std::make_unique<Adam>(trainable_parameters(*f.net), ao),
                LookaheadOptions{c["lookahead_k"].get<int64_t>(), c["lookahead_alpha"].get<double>()});
  const std::vector<std::string> terms = {"l2", "lpips", "adv", "f", "aligner", "total"};
  std::map<std::string, std::vector<double>> ours;
  for (int i = 0; i < 10; ++i) {
    opt.zero_grad();
    auto it = f.run();
    for (const auto& t : terms) ours[t].push_back(it.loss[t].item());
    it.loss["total"].backward();
    opt.step();
  }
  double worst = 0;
  for (const auto& t : terms) {
    const double e = rel_err(Tensor::from_vector<double>(ours[t], {10}), ref.at("loss." + t));
    INFO("loss." << t << ": relative error " << e);
    CHECK(e <= 1e-9);
    worst = std::max(worst, e);
  }
  int n = 0;
  auto sd = f.net->state_dict();
  for (auto& [k, t] : ref) {
    if (k.rfind("final.", 0) == 0) {
      const std::string key = k.substr(6);
      REQUIRE_MESSAGE(sd.count(key), key);
      const double e = rel_err(sd.at(key).to(DType::f64), t);
      INFO(k << ": relative error " << e);
      CHECK(e <= 1e-9);
      worst = std::max(worst, e);
      ++n;
    } else if (k.rfind("final_stats.", 0) == 0) {
      const std::string key = k.substr(12);
      REQUIRE_MESSAGE(sd.count(key), key);
      Tensor p = sd.at(key).to(DType::f64);
      Tensor st = Tensor::from_vector<double>({sum(p).item(), sum(abs(p)).item(), sum(square(p)).item()}, {3});
      const double e = rel_err(st, t);
      INFO(k << ": relative error " << e);
      CHECK(e <= 1e-9);
      worst = std::max(worst, e);
      ++n;
    }
  }
  MESSAGE("10 training iterations vs PyTorch: worst relative error " << worst << " over 6 loss curves and " << n
                                                                      << " final tensors");
}
