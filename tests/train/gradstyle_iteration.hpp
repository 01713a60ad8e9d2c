#pragma once
// The tiny GradStyle training iteration of the PyTorch reference's net.safetensors fixture
// (tools/reference/make_gradstyle_fixtures.py): shared by the parity test and the benchmark.
#include <memory>
#include <nlohmann/json.hpp>

#include "gradstyle/core/error.hpp"
#include "gradstyle/io/safetensors.hpp"
#include "gradstyle/io/tensor_bridge.hpp"
#include "gradstyle/models/gradstyle_net.hpp"
#include "gradstyle/models/lpips.hpp"
#include "gradstyle/ops/elementwise.hpp"
#include "gradstyle/ops/perspective_warp.hpp"
#include "gradstyle/train/losses.hpp"

namespace gstest_train {

using namespace gradstyle;
using namespace gradstyle::train;
namespace sg = gradstyle::models::stylegan2;
namespace gsn = gradstyle::models::gsnet;


inline std::string root(const std::string& rel) { return std::string(GS_SOURCE_ROOT) + "/" + rel; }


struct Iteration {
  gsn::ReconstructResult rec;
  gsn::EditResult ed;
  std::vector<Tensor> F_hat;
  std::map<std::string, Tensor> loss;
};

// SPEC B.7 steps 2-5 with the fixture's T maps and homographies (what Trainer::step does after
// the encoder, with the data and the warp given instead of drawn).
inline Iteration run_iteration(gsn::GradStyleNet& net, const sg::Generator& G, sg::Discriminator& D, models::lpips::LPIPS& lp,
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


// net.safetensors loaded: the configuration, the frozen G, D and LPIPS of the tiny config, and the
// network with the fixture's initial parameters, in float64 (or the dtype given).
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
    if (it == fx.end()) throw gradstyle::ValueError("net.safetensors: fixture tensor '" + k + "' missing");
    return is_floating(it->second.dtype()) ? it->second.to(dtype) : it->second;
  }

  DType dtype;
  explicit NetFixture(DType dt = DType::f64) : dtype(dt) {
    for (auto& [k, raw] : io::load_safetensors(root("tests/golden/gradstyle/net.safetensors"), &meta))
      fx[k] = io::to_tensor(raw);
    cfg_json = nlohmann::json::parse(meta.at("config"));
    nlohmann::json net_json = nlohmann::json::object();
    for (const auto& k : gsn::GradStyleConfig::keys())
      if (cfg_json.contains(k)) net_json[k] = cfg_json[k].is_null() ? nlohmann::json("C") : cfg_json[k];
    const gsn::GradStyleConfig cfg = gsn::GradStyleConfig::from_json_text(net_json.dump());
    G = sg::Generator::from_checkpoint(root("tests/golden/stylegan2/tiny.pt"));
    G->to(dtype);
    D = sg::Discriminator::from_checkpoint(root("tests/golden/stylegan2/tiny.pt"), sg::Discriminator::LoadOptions{});
    D->to(dtype);
    D->requires_grad_(false);
    lp = models::lpips::LPIPS::from_files(root("tests/golden/encoders/vgg_tiny.pth"),
                                          root("tests/golden/encoders/lin_tiny.pth"));
    lp->to(dtype);
    net = std::make_unique<gsn::GradStyleNet>(cfg, G->config());
    nn::StateDict sd;
    for (auto& [k, t] : fx)
      if (k.rfind("grm.", 0) == 0 || k.rfind("gate.", 0) == 0 || k.rfind("gam.", 0) == 0) sd[k] = t;
    net->load_state_dict(sd);
    net->to(dtype);
    net->train();
  }
  Iteration run() {
    gsn::EncoderFeatures feats{at("in.c3"), at("in.p2"), Tensor()};
    return run_iteration(*net, *G, *D, *lp, at("in.w"), at("in.x"), at("in.H"), feats, cfg_json);
  }
};

}  // namespace gstest_train
