#include "gradstyle/models/gradstyle_net.hpp"

#include <map>
#include <nlohmann/json.hpp>

#include "gradstyle/autograd/autograd.hpp"
#include "gradstyle/io/safetensors.hpp"
#include "gradstyle/io/tensor_bridge.hpp"
#include "gradstyle/models/editing.hpp"
#include "gradstyle/ops/interpolate.hpp"
#include "gradstyle/ops/pool.hpp"

namespace gradstyle::models::gsnet {

using json = nlohmann::json;

namespace {

const char* kFormat = "gradstyle-net";

const std::vector<GradStyleConfig::Stage>& checked_stages(const GradStyleConfig& cfg,
                                                          const std::vector<GradStyleConfig::Stage>& st) {
  cfg.validate();
  cfg.validate_stages(st);
  return st;
}

}  // namespace

GradStyleNet::GradStyleNet(const GradStyleConfig& cfg, const stylegan2::GeneratorConfig& g)
    : GradStyleNet(cfg, cfg.stages(g)) {}

GradStyleNet::GradStyleNet(const GradStyleConfig& cfg, const std::vector<Stage>& stages)
    : cfg_(cfg), stages_(checked_stages(cfg, stages)) {
  for (const Stage& s : stages_) {
    grm.emplace_back(s.C, cfg_);
    gam.emplace_back(s.C, cfg_);
    gate.emplace_back(s.C, cfg_.gate_width(s.C), cfg_.gate_bias_init);
  }
  register_module("grm", &grm);
  register_module("gam", &gam);
  register_module("gate", &gate);
}

int GradStyleNet::code_group(int b) {
  GS_CHECK(b >= 1, IndexError, "GradStyleNet: block ", b, " is below 1");
  // Code b is e4e head b - 1: heads [0, kCoarseEnd) read c3, [kCoarseEnd, kMiddleEnd) p2, the rest p1.
  const int head = b - 1;
  return head < e4e::E4EConfig::kCoarseEnd ? 0 : head < e4e::E4EConfig::kMiddleEnd ? 1 : 2;
}

Tensor GradStyleNet::select_t(int b, const Tensor& c3, const Tensor& p2, const Tensor& p1, int64_t R) {
  static const char* names[] = {"c3", "p2", "p1"};
  const int grp = code_group(b);
  const Tensor& src = grp == 0 ? c3 : grp == 1 ? p2 : p1;
  GS_CHECK(src.defined() && src.dim() == 4 && src.size(2) == src.size(3), ShapeError, "GradStyleNet::select_t: block ",
           b, " reads e4e map ", names[grp], ", which is ", src.defined() ? shape_str(src.shape()) : "undefined",
           " (expected [B, C, S, S])");
  GS_CHECK(R >= 1, ValueError, "GradStyleNet::select_t: resolution ", R, " < 1");
  Tensor t = src.detach();  // E0 is frozen: T is a constant
  int64_t S = t.size(2);
  if (S == R) return t;
  bool pow2_multiple = S > R && S % R == 0 && ((S / R) & (S / R - 1)) == 0;
  if (pow2_multiple) {
    while (S > R) {
      t = avg_pool2d(t, {2});
      S /= 2;
    }
    return t;
  }
  return interpolate(t, {R, R}, InterpolateMode::Bilinear, /*align_corners=*/false);
}

std::vector<Tensor> GradStyleNet::select_all(const EncoderFeatures& feats) const {
  std::vector<Tensor> T;
  for (const Stage& s : stages_) T.push_back(select_t(s.b, feats.c3, feats.p2, feats.p1, s.R));
  return T;
}

void GradStyleNet::check_generator(const stylegan2::Generator& G) const {
  for (const Stage& s : stages_) {
    GS_CHECK(s.b <= G.num_layers(), ValueError, "GradStyleNet: refined block ", s.b, " does not exist in a ",
             G.config().size, " px generator (", G.num_layers(), " StyledConvs)");
    const auto [C, R] = G.block_input(s.b);
    GS_CHECK(C == s.C && R == s.R, ValueError, "GradStyleNet: block ", s.b, " of the generator reads [", C, ", ", R,
             ", ", R, "] but this network was built for [", s.C, ", ", s.R, ", ", s.R, "]");
  }
}

void GradStyleNet::set_active_stages(int64_t k) {
  GS_CHECK(k >= 0 && k <= num_modules(), ValueError, "GradStyleNet::set_active_stages: ", k, " is outside [0, ",
           num_modules(), "]");
  active_ = k;
}

ReconstructResult GradStyleNet::reconstruct(const stylegan2::Generator& G, const Tensor& w_plus,
                                            const std::vector<Tensor>& T, const stylegan2::SynthesisOptions& opts) {
  check_generator(G);
  GS_CHECK(T.size() == stages_.size(), ValueError, "GradStyleNet::reconstruct: ", T.size(), " feature maps T for ",
           stages_.size(), " refined blocks");
  std::map<int, size_t> index;
  for (size_t m = 0; m < size_t(active_stages()); ++m) index[stages_[m].b] = m;
  ReconstructResult r;
  r.f.resize(stages_.size());
  r.F.resize(stages_.size());
  r.g.resize(stages_.size());
  auto hook = [&](int b, const Tensor& f) -> Tensor {
    auto it = index.find(b);
    if (it == index.end()) return f;
    const size_t m = it->second;
    Tensor F = grm[m].forward(T[m], f);  // [B, C, R, R]
    Tensor g = gate[m].gate(f, F);       // [B, Cg, R, R]
    r.f[m] = f;
    r.F[m] = F;
    r.g[m] = g;
    return GateFusion::fuse(f, F, g);
  };
  r.image = G.forward_with_hooks(w_plus, hook, 0, opts);
  return r;
}

ReconstructResult GradStyleNet::reconstruct(const stylegan2::Generator& G, const Tensor& w_plus,
                                            const EncoderFeatures& feats, const stylegan2::SynthesisOptions& opts) {
  return reconstruct(G, w_plus, select_all(feats), opts);
}

EditResult GradStyleNet::edit_stream(const stylegan2::Generator& G, const Tensor& w_hat,
                                     const std::vector<Tensor>& F_hat, bool update_gate,
                                     const stylegan2::SynthesisOptions& opts) const {
  check_generator(G);
  GS_CHECK(F_hat.size() == stages_.size(), ValueError, "GradStyleNet::edit_stream: ", F_hat.size(),
           " refinements F for ", stages_.size(), " refined blocks");
  std::map<int, size_t> index;
  for (size_t m = 0; m < size_t(active_stages()); ++m) index[stages_[m].b] = m;
  EditResult r;
  r.f.resize(stages_.size());
  r.Fp.resize(stages_.size());
  r.g.resize(stages_.size());
  auto hook = [&](int b, const Tensor& f) -> Tensor {
    auto it = index.find(b);
    if (it == index.end()) return f;
    const size_t m = it->second;
    Tensor Fp = gam[m].forward(F_hat[m].detach(), f);  // F' [B, C, R, R]
    Tensor g = gate[m].gate(f, Fp, /*detach_params=*/!update_gate);
    r.f[m] = f;
    r.Fp[m] = Fp;
    r.g[m] = g;
    return GateFusion::fuse(f, Fp, g);
  };
  r.image = G.forward_with_hooks(w_hat, hook, 0, opts);
  return r;
}

InvertResult GradStyleNet::invert(e4e::Encoder4Editing& E, const stylegan2::Generator& G, const Tensor& x) {
  E.check_generator(G.n_latent(), G.config().style_dim);
  InvertResult r;
  {
    autograd::NoGradGuard ng;  // E0 is frozen (B.7 step 1)
    e4e::E4EOutput o = E.forward(x);
    r.w = o.w_plus;
    r.features = {o.c3, o.p2, o.p1};
  }
  r.T = select_all(r.features);
  r.rec = reconstruct(G, r.w, r.T);
  return r;
}

GradStyleNet::EditOutput GradStyleNet::edit(e4e::Encoder4Editing& E, const stylegan2::Generator& G, const Tensor& x,
                                            const Tensor& direction, double alpha) {
  EditOutput o;
  o.inversion = invert(E, G, x);
  o.w_hat = editing::interfacegan_edit(o.inversion.w, direction, alpha);
  o.edit = edit_stream(G, o.w_hat, o.inversion.rec.F);
  return o;
}

// ---- checkpoint -----------------------------------------------------------------------------------

void GradStyleNet::save(const std::string& path, const CheckpointRefs& refs) {
  io::NamedTensors tensors;
  for (auto& [name, t] : state_dict()) tensors.emplace_back(name, io::from_tensor(t));
  json st = json::array();
  for (const Stage& s : stages_) st.push_back({s.b, s.C, s.R});
  std::map<std::string, std::string> meta{
      {"format", kFormat}, {"gradstyle_config", cfg_.to_json_text()}, {"gradstyle_stages", st.dump()}};
  if (!refs.generator_checkpoint.empty()) meta["generator_checkpoint"] = refs.generator_checkpoint;
  if (!refs.encoder_checkpoint.empty()) meta["encoder_checkpoint"] = refs.encoder_checkpoint;
  io::save_safetensors(path, tensors, meta);
}

namespace {

struct Parsed {
  GradStyleConfig cfg;
  std::vector<GradStyleConfig::Stage> stages;
  CheckpointRefs refs;
  nn::StateDict sd;
};

Parsed parse_checkpoint(const std::string& path, Device device) {
  std::map<std::string, std::string> meta;
  io::NamedTensors tensors = io::load_safetensors(path, &meta);
  auto get = [&](const char* key) -> const std::string& {
    auto it = meta.find(key);
    GS_CHECK(it != meta.end(), FormatError, "GradStyleNet::load: ", path,
             " is not a GradStyle network checkpoint (no metadata key '", key, "')");
    return it->second;
  };
  GS_CHECK(get("format") == kFormat, FormatError, "GradStyleNet::load: ", path, " has format '", get("format"),
           "', expected '", kFormat, "'");
  Parsed p;
  try {
    p.cfg = GradStyleConfig::from_json_text(get("gradstyle_config"));
  } catch (const Error& e) {
    throw FormatError(err_msg("GradStyleNet::load: ", path, ": metadata 'gradstyle_config': ", e.what()));
  }
  try {
    json st = json::parse(get("gradstyle_stages"));
    GS_CHECK(st.is_array(), FormatError, "not a list");
    for (const json& e : st) {
      GS_CHECK(e.is_array() && e.size() == 3 && e[0].is_number_integer() && e[1].is_number_integer() &&
                   e[2].is_number_integer(),
               FormatError, "entry ", e.dump(), " is not [b, C, R]");
      p.stages.push_back({e[0].get<int>(), e[1].get<int64_t>(), e[2].get<int64_t>()});
    }
    p.cfg.validate_stages(p.stages);
  } catch (const json::exception& e) {
    throw FormatError(err_msg("GradStyleNet::load: ", path, ": metadata 'gradstyle_stages' is not JSON: ", e.what()));
  } catch (const Error& e) {
    throw FormatError(err_msg("GradStyleNet::load: ", path, ": metadata 'gradstyle_stages': ", e.what()));
  }
  if (meta.count("generator_checkpoint")) p.refs.generator_checkpoint = meta.at("generator_checkpoint");
  if (meta.count("encoder_checkpoint")) p.refs.encoder_checkpoint = meta.at("encoder_checkpoint");
  for (auto& [name, raw] : tensors) p.sd[name] = io::to_tensor(raw, device);
  return p;
}

bool same_stages(const std::vector<GradStyleConfig::Stage>& a, const std::vector<GradStyleConfig::Stage>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].b != b[i].b || a[i].C != b[i].C || a[i].R != b[i].R) return false;
  return true;
}

}  // namespace

std::unique_ptr<GradStyleNet> GradStyleNet::load(const std::string& path, CheckpointRefs* refs, Device device) {
  Parsed p = parse_checkpoint(path, device);
  auto net = std::make_unique<GradStyleNet>(p.cfg, p.stages);
  net->to(device);
  net->load_state_dict(p.sd, /*strict=*/true);
  if (refs) *refs = p.refs;
  return net;
}

void GradStyleNet::load_weights(const std::string& path) {
  const Device device = grm.empty() ? Device::cpu() : grm[0].out.weight.device();
  Parsed p = parse_checkpoint(path, device);
  GS_CHECK(p.cfg == cfg_, ValueError, "GradStyleNet::load_weights: ", path, " was saved with configuration ",
           p.cfg.to_json_text(), " but this network has ", cfg_.to_json_text());
  GS_CHECK(same_stages(p.stages, stages_), ValueError, "GradStyleNet::load_weights: ", path,
           " was saved for other stage widths (metadata 'gradstyle_stages')");
  load_state_dict(p.sd, /*strict=*/true);
}

}  // namespace gradstyle::models::gsnet
