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

using namespace gradstyle;
using namespace gradstyle::train;
namespace sg = gradstyle::models::stylegan2;
namespace gsn = gradstyle::models::gsnet;

namespace {

std::string root(const std::string& rel) { return std::string(GS_SOURCE_ROOT) + "/" + rel; }

// |a - b| / max(max|b|, 1): float64 on both sides, so this is rounding only.
double rel_err(const Tensor& a, const Tensor& b) {
  auto va = a.to(DType::f64).to_vector<double>(), vb = b.to(DType::f64).to_vector<double>();
  REQUIRE(va.size() == vb.size());
  double scale = 1, worst = 0;
  for (double x : vb) scale = std::max(scale, std::abs(x));
  for (size_t i = 0; i < va.size(); ++i) worst = std::max(worst, std::abs(va[i] - vb[i]) / scale);
  return worst;
}

struct Iteration {
  gsn::ReconstructResult rec;
  gsn::EditResult ed;
  std::vector<Tensor> F_hat;
  std::map<std::string, Tensor> loss;
};

// SPEC B.7 steps 2-5 with the fixture's T maps and homographies (what Trainer::step does after
// the encoder, with the data and the warp given instead of drawn).
Iteration run_iteration(gsn::GradStyleNet& net, const sg::Generator& G, sg::Discriminator& D, models::lpips::LPIPS& lp,
                        const Tensor& w, const Tensor& x, const Tensor& H, const gsn::EncoderFeatures& feats,
                        const nlohmann::json& cfg_json) {
  Iteration r;
  r.rec = net.reconstruct(G, w, feats);
  std::vector<Tensor> F_det;
  for (const Tensor& F : r.rec.F) F_det.push_back(F.detach());
  r.F_hat = perspective_warp(F_det, H);
  r.ed = net.edit_stream(G, w, r.F_hat, false);
  const int64_t res = cfg_json["loss_resolution"].get<int64_t>();
  const Tensor xr = pool_to(r.rec.image, res), xe = pool_to(r.ed.image, res);
  auto& loss = r.loss;
  loss["l2"] = add(image_l2(xr, x), image_l2(xe, x));
  loss["lpips"] = add(image_lpips(lp, xr, x), image_lpips(lp, xe, x));
  loss["adv"] = add(generator_nonsaturating(D.forward(r.rec.image)), generator_nonsaturating(D.forward(r.ed.image)));
  loss["f"] = gate_regulariser(r.rec.g, r.rec.F);
  loss["aligner"] = aligner_l1(r.ed.Fp, r.rec.F);
  Tensor total;
  for (const char* k : {"l2", "lpips", "adv", "f", "aligner"}) {
    Tensor t = mul_scalar(loss[k], cfg_json[std::string("lambda_") + k].get<double>());
    total = total.defined() ? add(total, t) : t;
  }
  loss["total"] = total;
  return r;
}

}  // namespace

// net.safetensors loaded: the configuration, the frozen G, D and LPIPS of the tiny config, and the
// network with the fixture's initial parameters, all in float64.
struct NetFixture {
  std::map<std::string, std::string> meta;
  std::map<std::string, Tensor> fx;
  nlohmann::json cfg_json;
  std::unique_ptr<sg::Generator> G;
  std::unique_ptr<sg::Discriminator> D;
  std::unique_ptr<models::lpips::LPIPS> lp;
  std::unique_ptr<gsn::GradStyleNet> net;

  Tensor at(const std::string& k) const {
    auto it = fx.find(k);
    REQUIRE_MESSAGE(it != fx.end(), "fixture tensor '" << k << "' missing");
    return is_floating(it->second.dtype()) ? it->second.to(DType::f64) : it->second;
  }

  NetFixture() {
    for (auto& [k, raw] : io::load_safetensors(root("tests/golden/gradstyle/net.safetensors"), &meta))
      fx[k] = io::to_tensor(raw);
    cfg_json = nlohmann::json::parse(meta.at("config"));
    nlohmann::json net_json = nlohmann::json::object();
    for (const auto& k : gsn::GradStyleConfig::keys())
      if (cfg_json.contains(k)) net_json[k] = cfg_json[k].is_null() ? nlohmann::json("C") : cfg_json[k];
    const gsn::GradStyleConfig cfg = gsn::GradStyleConfig::from_json_text(net_json.dump());
    G = sg::Generator::from_checkpoint(root("tests/golden/stylegan2/tiny.pt"));
    G->to(DType::f64);
    D = sg::Discriminator::from_checkpoint(root("tests/golden/stylegan2/tiny.pt"), sg::Discriminator::LoadOptions{});
    D->to(DType::f64);
    D->requires_grad_(false);
    lp = models::lpips::LPIPS::from_files(root("tests/golden/encoders/vgg_tiny.pth"),
                                          root("tests/golden/encoders/lin_tiny.pth"));
    lp->to(DType::f64);
    net = std::make_unique<gsn::GradStyleNet>(cfg, G->config());
    nn::StateDict sd;
    for (auto& [k, t] : fx)
      if (k.rfind("grm.", 0) == 0 || k.rfind("gate.", 0) == 0 || k.rfind("gam.", 0) == 0) sd[k] = t;
    net->load_state_dict(sd);
    net->to(DType::f64);
    net->train();
  }
  Iteration run() {
    gsn::EncoderFeatures feats{at("in.c3"), at("in.p2"), Tensor()};
    return run_iteration(*net, *G, *D, *lp, at("in.w"), at("in.x"), at("in.H"), feats, cfg_json);
  }
};

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
