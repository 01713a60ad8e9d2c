#include "gradstyle/models/e4e.hpp"

#include <sstream>

#include "gradstyle/autograd/autograd.hpp"
#include "gradstyle/ops/elementwise.hpp"
#include "gradstyle/ops/interpolate.hpp"
#include "gradstyle/ops/pool.hpp"
#include "gradstyle/ops/shape.hpp"
#include "models/detail/loader_util.hpp"

namespace gradstyle::models::e4e {

using detail::dim_of;
using detail::quoted;

namespace {

int64_t log2_exact(int64_t v) {
  int64_t k = 0;
  while ((int64_t(1) << k) < v) ++k;
  return (int64_t(1) << k) == v ? k : -1;
}

}  // namespace

// ---- configuration --------------------------------------------------------------------------------

int64_t E4EConfig::head_spatial(int64_t i) const {
  if (i < kCoarseEnd) return input_size / 16;
  if (i < kMiddleEnd) return input_size / 8;
  return input_size / 4;
}

int64_t E4EConfig::n_styles_for(int64_t stylegan_size) {
  const int64_t k = log2_exact(stylegan_size);
  GS_CHECK(k >= 2, ValueError, "e4e: stylegan_size must be a power of two >= 4, got ", stylegan_size);
  return 2 * k - 2;
}

void E4EConfig::validate() const {
  trunk.validate();
  GS_CHECK(trunk.blocks.size() == 4, ValueError, "e4e: the IR-SE trunk must have 4 stages (c1, c2, c3 are stages 2-4), got ",
           trunk.blocks.size());
  GS_CHECK(n_styles >= 1, ValueError, "e4e: n_styles must be >= 1, got ", n_styles);
  GS_CHECK(input_size >= 16 && input_size % 16 == 0 && log2_exact(input_size / 16) >= 0, ValueError,
           "e4e: input_size must be 16 * 2^k (256 for the published model), got ", input_size);
}

std::string E4EConfig::str() const {
  std::ostringstream o;
  o << trunk.str() << ", " << n_styles << " style heads of width " << style_dim() << ", input " << input_size;
  return o.str();
}

// ---- GradualStyleBlock ----------------------------------------------------------------------------

GradualStyleBlock::Convs::Convs(int64_t channels, int64_t n, ParamInit init) {
  for (int64_t i = 0; i < n; ++i) {
    layers.push_back(std::make_shared<Conv2d>(channels, channels, 3, 2, 1, true, init));
    register_module(std::to_string(2 * i), layers.back());  // LeakyReLU modules sit at the odd indices
  }
}

GradualStyleBlock::GradualStyleBlock(int64_t channels, int64_t spatial, ParamInit init)
    : convs(channels, log2_exact(spatial), init), linear(channels, channels, 1.0, init), channels_(channels), spatial_(spatial) {
  GS_CHECK(log2_exact(spatial) >= 1, ValueError, "GradualStyleBlock: spatial must be a power of two >= 2, got ", spatial);
  register_module("convs", &convs);
  register_module("linear", &linear);
}

Tensor GradualStyleBlock::forward(const Tensor& x) const {
  GS_CHECK(x.dim() == 4 && x.size(1) == channels_ && x.size(2) == spatial_ && x.size(3) == spatial_, ShapeError,
           "GradualStyleBlock: expected [B, ", channels_, ", ", spatial_, ", ", spatial_, "], got ", shape_str(x.shape()));
  Tensor h = x;
  for (const auto& c : convs.layers) h = leaky_relu(c->forward(h), 0.01);
  return linear.forward(reshape(h, {h.size(0), channels_}));  // [B, C, 1, 1] -> [B, C]
}

// ---- Encoder4Editing ------------------------------------------------------------------------------

namespace {
const E4EConfig& validated(const E4EConfig& c) {
  c.validate();
  return c;
}
}  // namespace

Encoder4Editing::Encoder4Editing(const E4EConfig& cfg, ParamInit init)
    : IRSETrunk(validated(cfg).trunk, init),
      cfg_(cfg),
      latlayer1(cfg.trunk.channels[2], cfg.style_dim(), 1, 1, 0, true, init),
      latlayer2(cfg.trunk.channels[1], cfg.style_dim(), 1, 1, 0, true, init),
      stage_(cfg.n_styles) {
  for (int64_t i = 0; i < cfg_.n_styles; ++i) styles.emplace_back(cfg_.style_dim(), cfg_.head_spatial(i), init);
  register_module("styles", &styles);
  register_module("latlayer1", &latlayer1);
  register_module("latlayer2", &latlayer2);
  latent_avg = Tensor::zeros({cfg_.n_styles, cfg_.style_dim()});
  register_buffer("latent_avg", &latent_avg, /*persistent=*/false);
}

void Encoder4Editing::set_progressive_stage(int64_t stage) {
  GS_CHECK(stage >= 0, ValueError, "Encoder4Editing: progressive stage must be >= 0, got ", stage);
  stage_ = stage;
}

void Encoder4Editing::check_generator(int64_t n_latent, int64_t style_dim) const {
  GS_CHECK(n_latent == cfg_.n_styles && style_dim == cfg_.style_dim(), ValueError, "e4e: the encoder produces ",
           cfg_.n_styles, " codes of width ", cfg_.style_dim(), " but the generator takes ", n_latent, " of width ",
           style_dim, " (an encoder trained for another stylegan_size?)");
}

Tensor Encoder4Editing::prepare_input(const Tensor& x) const {
  GS_CHECK(x.dim() == 4 && x.size(1) == irse_config().in_channels, ShapeError, "Encoder4Editing: expected input [B, ",
           irse_config().in_channels, ", ", cfg_.input_size, ", ", cfg_.input_size, "], got ", shape_str(x.shape()));
  GS_CHECK(x.size(2) == x.size(3), ShapeError, "Encoder4Editing: input must be square, got ", shape_str(x.shape()),
           " (crop or align the face first)");
  const int64_t s = x.size(2), t = cfg_.input_size;
  if (s == t) return x;
  if (s % t == 0) return avg_pool2d(x, {s / t});
  return interpolate(x, {t, t}, InterpolateMode::Bilinear, /*align_corners=*/false);
}

E4EOutput Encoder4Editing::forward(const Tensor& x) {
  const Tensor in = prepare_input(x);
  std::vector<Tensor> st = forward_stages(in);
  E4EOutput o;
  o.c1 = st[1];  // [B, C1, S/4, S/4]
  o.c2 = st[2];  // [B, C2, S/8, S/8]
  o.c3 = st[3];  // [B, D, S/16, S/16]
  // FPN (pSp's _upsample_add): bilinear to the lateral map's size, align_corners = true.
  Tensor l1 = latlayer1.forward(o.c2);
  o.p2 = interpolate(o.c3, {l1.size(2), l1.size(3)}, InterpolateMode::Bilinear, true) + l1;
  Tensor l2 = latlayer2.forward(o.c1);
  o.p1 = interpolate(o.p2, {l2.size(2), l2.size(3)}, InterpolateMode::Bilinear, true) + l2;

  // w_i = w0 + delta_i (delta_0 = 0; deltas beyond the progressive stage are not added).
  const Tensor w0 = styles[0].forward(o.c3);  // [B, D]
  std::vector<Tensor> rows{w0};
  for (int64_t i = 1; i < cfg_.n_styles; ++i) {
    if (i > stage_) {
      rows.push_back(w0);
      continue;
    }
    const Tensor& f = i < E4EConfig::kCoarseEnd ? o.c3 : (i < E4EConfig::kMiddleEnd ? o.p2 : o.p1);
    rows.push_back(w0 + styles[size_t(i)].forward(f));
  }
  o.codes = stack(rows, 1);  // [B, n_styles, D]
  o.w_plus = start_from_latent_avg ? o.codes + unsqueeze(latent_avg, 0) : o.codes;
  return o;
}

// ---- loading --------------------------------------------------------------------------------------

E4EConfig Encoder4Editing::infer_config(const nn::StateDict& sd, const std::string& name) {
  E4EConfig cfg;
  cfg.trunk = irse::infer_irse_config(sd, name);
  if (cfg.trunk.blocks.size() != 4)
    throw FormatError(name + ": an e4e trunk has 4 stages, the keys describe " + std::to_string(cfg.trunk.blocks.size()) +
                      " (" + cfg.trunk.str() + ")");
  cfg.n_styles = detail::max_index(sd, "styles.") + 1;
  if (cfg.n_styles < 1) throw FormatError(name + ": no 'styles.N.*' keys: not an e4e encoder");
  // The number of stride-2 convs of a head gives the size of the map it reads.
  auto n_convs = [&](int64_t i) {
    const int64_t last = detail::max_index(sd, "styles." + std::to_string(i) + ".convs.");
    return last < 0 ? int64_t(0) : last / 2 + 1;
  };
  const int64_t k0 = n_convs(0);
  if (k0 < 1) throw FormatError(name + ": head 'styles.0' has no 'convs.N.weight' keys");
  cfg.input_size = (int64_t(1) << k0) * 16;
  for (int64_t i = 1; i < cfg.n_styles; ++i) {
    const int64_t want = log2_exact(cfg.head_spatial(i)), got = n_convs(i);
    if (got != want)
      throw FormatError(name + ": head " + quoted("styles." + std::to_string(i)) + " has " + std::to_string(got) +
                        " stride-2 convs but e4e's layout needs " + std::to_string(want) + " (heads 0-2 read the input/16 map, " +
                        "3-6 input/8, 7+ input/4; head 0 implies input size " + std::to_string(cfg.input_size) + ")");
  }
  return cfg;
}

std::unique_ptr<Encoder4Editing> Encoder4Editing::from_state_dict(const nn::StateDict& sd, const Tensor& latent_avg,
                                                                  bool start_from_latent_avg, const std::string& name,
                                                                  const LoadOptions& opts) {
  const E4EConfig cfg = infer_config(sd, name);
  auto enc = std::make_unique<Encoder4Editing>(cfg, ParamInit::Deferred);
  detail::load_strict(*enc, sd, name, cfg.str());
  enc->start_from_latent_avg = start_from_latent_avg;
  Tensor avg = opts.latent_avg.defined() ? opts.latent_avg : latent_avg;
  if (start_from_latent_avg) {
    GS_CHECK(avg.defined(), FormatError, name,
             ": start_from_latent_avg is set but there is no latent_avg (pass LoadOptions::latent_avg, e.g. the "
             "generator's mean latent)");
    const int64_t n = cfg.n_styles, d = cfg.style_dim();
    const bool row = avg.numel() == d && avg.size(-1) == d;
    const bool full = avg.numel() == n * d && avg.size(-1) == d && (avg.dim() == 2 || (avg.dim() == 3 && avg.size(0) == 1));
    GS_CHECK(row || full, FormatError, name, ": latent_avg has shape ", shape_str(avg.shape()), "; expected [", n, ", ",
             d, "] (or [", d, "])");
    autograd::NoGradGuard ng;
    Tensor a = avg.detach().to(DType::f32).cpu();
    enc->latent_avg = (row ? expand(reshape(a, {1, d}), {n, d}) : reshape(a, {n, d})).contiguous().clone();
  }
  enc->to(opts.device);
  detail::freeze(*enc);
  return enc;
}

std::unique_ptr<Encoder4Editing> Encoder4Editing::from_checkpoint(const std::string& path, const LoadOptions& opts) {
  const std::string qp = quoted(path);
  detail::LoadedFile f =
      detail::load_file(path, Device::cpu(),
                        {"state_dict.encoder.", "encoder.", "latent_avg", "input_layer.", "body.", "styles.", "latlayer"});
  nn::StateDict sd;
  std::string name = qp;
  if (!(sd = detail::sub_dict(f.tensors, "state_dict.encoder.")).empty()) {
    name = qp + " (state_dict, encoder.*)";
  } else if (!(sd = detail::sub_dict(f.tensors, "encoder.")).empty()) {
    name = qp + " (encoder.*)";
  } else if (detail::has(f.tensors, "input_layer.0.weight")) {
    sd = f.tensors;
    sd.erase("latent_avg");
  } else {
    throw FormatError(qp + ": no e4e encoder: expected a 'state_dict' with 'encoder.*' keys or a bare encoder state dict "
                           "(entries: " + f.entries + ")");
  }
  Tensor latent_avg;
  if (auto it = f.tensors.find("latent_avg"); it != f.tensors.end()) latent_avg = it->second;

  // opts (plain values) as pSp saved them; they decide what the keys alone cannot.
  bool start_from_latent_avg = latent_avg.defined() || opts.latent_avg.defined();
  const io::PyValue* po = f.tree ? f.tree->get("opts") : nullptr;
  int64_t stylegan_size = 0;
  if (po && po->is_dict()) {
    if (const io::PyValue* v = po->get("encoder_type"); v && v->is(io::PyKind::String) && v->s != "Encoder4Editing")
      throw FormatError(qp + ": opts.encoder_type is '" + v->s +
                        "'; only Encoder4Editing (e4e) checkpoints are supported");
    if (const io::PyValue* v = po->get("learn_in_w"); v && v->is(io::PyKind::Bool) && v->b)
      throw FormatError(qp + ": opts.learn_in_w is set (a single-W encoder); only W+ e4e encoders are supported");
    if (const io::PyValue* v = po->get("start_from_latent_avg"); v && v->is(io::PyKind::Bool))
      start_from_latent_avg = v->b;
    if (const io::PyValue* v = po->get("stylegan_size"); v && v->is(io::PyKind::Int)) stylegan_size = v->i;
  }
  f.tree.reset();  // releases the file's other tensors (the generator half)
  f.tensors.clear();

  if (stylegan_size > 0) {
    const E4EConfig cfg = infer_config(sd, name);
    int64_t want = -1;
    try {
      want = E4EConfig::n_styles_for(stylegan_size);
    } catch (const ValueError&) {
    }
    if (want != cfg.n_styles)
      throw FormatError(qp + ": opts.stylegan_size = " + std::to_string(stylegan_size) + " implies " +
                        std::to_string(want) + " style heads but the state dict has " + std::to_string(cfg.n_styles) +
                        " (styles.0 .. styles." + std::to_string(cfg.n_styles - 1) + ")");
  }
  return from_state_dict(sd, latent_avg, start_from_latent_avg, name, opts);
}

}  // namespace gradstyle::models::e4e
