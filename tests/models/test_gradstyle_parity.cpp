// Parity of GRM, Gate&Fusion and the Aligner with the PyTorch reference (tools/reference/
// gradstyle_ref.py, fixtures from make_gradstyle_fixtures.py in tests/golden/gradstyle/): the
// forward and the gradient of every input and parameter, BatchNorm in both modes with its updated
// running statistics. The reference computes in float64 from the stored float32 parameters; so do
// we, so the agreement is to float64 rounding. Each tensor's worst error relative to its largest
// magnitude is printed (MESSAGE) and must stay below 5e-6 (measured worst: 1.8e-6, most below 2e-7; a wrong
// wiring gives errors of order 1).
#include <nlohmann/json.hpp>

#include "gradstyle/io/safetensors.hpp"
#include "gradstyle/io/tensor_bridge.hpp"
#include "gradstyle/ops/selective_attention.hpp"
#include "models/gradstyle_fixture.hpp"

using namespace gstest_gs;

namespace {

struct Fixture {
  std::map<std::string, Tensor> t;
  nlohmann::json config;
  std::string name;

  explicit Fixture(const std::string& stem) : name(stem) {
    const std::string path = std::string(GS_SOURCE_ROOT) + "/tests/golden/gradstyle/" + stem + ".safetensors";
    t = io::load_state_dict_tensors(path);
    config = nlohmann::json::parse(io::SafetensorsFile(path).metadata().at("config"));
  }
  const Tensor& at(const std::string& k) const {
    auto it = t.find(k);
    REQUIRE_MESSAGE(it != t.end(), name << ": fixture tensor '" << k << "' missing");
    return it->second;
  }
  Tensor f64(const std::string& k) const { return at(k).to(DType::f64); }
  // The module's state dict: entries "<prefix><key>" with the prefix stripped.
  nn::StateDict module_state(const std::string& prefix) const {
    nn::StateDict sd;
    for (const auto& [k, v] : t)
      if (k.rfind(prefix, 0) == 0) sd[k.substr(prefix.size())] = k.find("num_batches_tracked") != std::string::npos ? v.reshape({}) : v;
    return sd;
  }
};

// Worst |a - ref| / max(max|ref|, 1e-6). The floor covers gradients that are zero in exact
// arithmetic (the key bias: a constant added to every key shifts a score row uniformly, which
// neither the top-k mask nor the softmax sees), where both sides hold rounding noise of ~1e-17.
double rel_error(const Tensor& a, const Tensor& ref) {
  auto va = a.to_vector<double>(), vr = ref.to_vector<double>();
  REQUIRE(va.size() == vr.size());
  double m = 0, d = 0;
  for (size_t i = 0; i < vr.size(); ++i) {
    m = std::max(m, std::abs(vr[i]));
    d = std::max(d, std::abs(va[i] - vr[i]));
  }
  return d / std::max(m, 1e-6);
}

void expect_match(const Fixture& fx, const std::string& what, const Tensor& got, const std::string& key,
                  double tol = 5e-6) {
  const Tensor& ref = fx.at(key);
  REQUIRE_MESSAGE(got.defined(), fx.name << ": " << what << " is undefined");
  CHECK_MESSAGE(got.numel() == ref.numel(), fx.name << ": " << key);
  const double e = rel_error(got, ref);
  MESSAGE(fx.name << "  " << key << "  worst rel err " << e);
  CHECK_MESSAGE(e <= tol, fx.name << ": " << key << " relative error " << e);
}

void check_param_grads(const Fixture& fx, nn::Module& m, const std::string& grad_prefix) {
  for (auto& [name, p] : m.named_parameters()) expect_match(fx, name, p->grad(), grad_prefix + name);
}

}  // namespace

TEST_CASE("models/gradstyle parity: GRM forward, input and parameter gradients, BatchNorm train and eval") {
  for (const char* stem : {"grm_c4_k1_l0_concat", "grm_c4_k3_l1_concat_ac0", "grm_c4_k3_l2_diff", "grm_c8_k1_l1_concat"}) {
    Fixture fx(stem);
    const auto& c = fx.config;
    gs::GradStyleConfig cfg;
    cfg.t_channels = c["t_channels"];
    cfg.grm_proj_kernel = c["grm_proj_kernel"];
    cfg.eres_levels = c["eres_levels"];
    cfg.eres_input = c["eres_input"] == "diff" ? gs::EresInput::Diff : gs::EresInput::Concat;
    cfg.eres_interp_align_corners = c["eres_interp_align_corners"];
    for (bool train : {true, false}) {
      CAPTURE(stem);
      CAPTURE(train);
      gs::GRM grm(c["C"].get<int64_t>(), cfg);
      grm.to(DType::f64);
      grm.load_state_dict(fx.module_state("grm.0."));
      grm.train(train);
      Tensor T = fx.f64("in.T").requires_grad_(), f = fx.f64("in.f").requires_grad_();
      Tensor F = grm.forward(T, f);
      const std::string mode = train ? "train." : "eval.";
      expect_match(fx, "F", F, mode + "out");
      (F * fx.f64("gy")).sum().backward();
      expect_match(fx, "dT", T.grad(), mode + "grad.in.T");
      expect_match(fx, "df", f.grad(), mode + "grad.in.f");
      check_param_grads(fx, grm, mode + "grad.grm.0.");
      if (train) {
        expect_match(fx, "running_mean", grm.stem_bn.running_mean, "train.after.grm.0.stem_bn.running_mean");
        expect_match(fx, "running_var", grm.stem_bn.running_var, "train.after.grm.0.stem_bn.running_var");
        CHECK(grm.stem_bn.num_batches_tracked.item() ==
              fx.at("train.after.grm.0.stem_bn.num_batches_tracked").to_vector<double>()[0]);
      }
    }
  }
}

TEST_CASE("models/gradstyle parity: Gate&Fusion (C_g = C and 1) forward and every gradient") {
  for (const char* stem : {"gate_c8_cg8", "gate_c4_cg1"}) {
    CAPTURE(stem);
    Fixture fx(stem);
    const int64_t C = fx.config["C"], Cg = fx.config["gate_channels"];
    gs::GateFusion gate(C, Cg, -4.0);
    gate.to(DType::f64);
    gate.load_state_dict(fx.module_state("gate.0."));
    Tensor f = fx.f64("in.f").requires_grad_(), F = fx.f64("in.F").requires_grad_();
    Tensor g = gate.gate(f, F);
    Tensor fused = gs::GateFusion::fuse(f, F, g);
    expect_match(fx, "g", g, "out.g");
    expect_match(fx, "fused", fused, "out.fused");
    ((fused * fx.f64("gy.fused")).sum() + (g * fx.f64("gy.g")).sum()).backward();
    expect_match(fx, "df", f.grad(), "grad.in.f");
    expect_match(fx, "dF", F.grad(), "grad.in.F");
    check_param_grads(fx, gate, "grad.gate.0.");
  }
}

TEST_CASE("models/gradstyle parity: Aligner (2-D/1-D PE, value/query output, PE on values, k = 1, ties)") {
  for (const char* stem :
       {"gam_c8_2d_value", "gam_c8_1d_value", "gam_c8_2d_query_pev", "gam_c4_2d_value_a1_k1", "gam_ties"}) {
    CAPTURE(stem);
    Fixture fx(stem);
    const auto& c = fx.config;
    gs::GradStyleConfig cfg;
    cfg.aligner_layers = c["aligner_layers"];
    cfg.aligner_heads = c["aligner_heads"];
    cfg.aligner_mlp_ratio = c["aligner_mlp_ratio"];
    cfg.pe = c["pe"] == "1d" ? gs::PositionalEncoding::OneD : gs::PositionalEncoding::TwoD;
    cfg.pe_on_value = c["pe_on_value"];
    cfg.pe_temperature = c["pe_temperature"];
    cfg.topk_mu = c["topk_mu"];
    cfg.aligner_output = c["aligner_output"] == "query" ? gs::AlignerOutput::Query : gs::AlignerOutput::Value;
    const int64_t R = c["R"];
    CHECK(selective_topk(cfg.topk_mu, R * R) == c["k_top"].get<int64_t>());
    gs::Aligner a(c["C"].get<int64_t>(), cfg);
    a.to(DType::f64);
    a.load_state_dict(fx.module_state("gam.0."));
    Tensor F = fx.f64("in.F").requires_grad_(), f = fx.f64("in.f").requires_grad_();
    Tensor y = a.forward(F, f);
    expect_match(fx, "F'", y, "out");
    (y * fx.f64("gy")).sum().backward();
    expect_match(fx, "dF", F.grad(), "grad.in.F");
    expect_match(fx, "df", f.grad(), "grad.in.f");
    check_param_grads(fx, a, "grad.gam.0.");
  }
}
