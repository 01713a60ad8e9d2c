// InversionModel: one interface over e4e checkpoints, GradStyle networks and toyfaces bundles.
#include "gradstyle/eval/inversion.hpp"

#include <filesystem>
#include <sstream>

#include "gradstyle/autograd/autograd.hpp"
#include "gradstyle/core/error.hpp"
#include "gradstyle/eval/toyfaces_demo.hpp"
#include "gradstyle/io/file.hpp"
#include "gradstyle/io/safetensors.hpp"
#include "gradstyle/io/sniff.hpp"
#include "gradstyle/io/tensor_bridge.hpp"

namespace gradstyle::eval {

namespace fs = std::filesystem;
namespace sg = models::stylegan2;
namespace e4e = models::e4e;
namespace gsnet = models::gsnet;

const char* model_kind_name(ModelKind k) {
  switch (k) {
    case ModelKind::E4E: return "e4e";
    case ModelKind::GradStyle: return "gradstyle";
    case ModelKind::Bundle: return "toyfaces bundle";
  }
  return "?";
}

namespace {

bool is_gradstyle_net(const std::string& path) {
  if (io::sniff_file(path) != io::FileKind::Safetensors) return false;
  const io::SafetensorsFile f(path);
  auto it = f.metadata().find("format");
  return it != f.metadata().end() && it->second == "gradstyle-net";
}

// The first of the candidates that exists ("" when none).
std::string first_existing(const std::vector<std::string>& candidates) {
  for (const auto& c : candidates)
    if (!c.empty() && fs::is_regular_file(c)) return c;
  return "";
}

}  // namespace

Tensor load_single_tensor(const std::string& path, const std::string& what, Device device) {
  if (!fs::exists(path)) throw IOError(what + ": " + io::quoted(path) + " does not exist");
  const auto all = io::load_state_dict_tensors(path);
  if (all.size() != 1) {
    std::string names;
    for (const auto& [k, v] : all) names += (names.empty() ? "" : ", ") + k;
    throw FormatError(what + ": " + io::quoted(path) + " holds " + std::to_string(all.size()) +
                      " tensors, expected exactly one" + (names.empty() ? "" : " (" + names + ")"));
  }
  return all.begin()->second.to(DType::f32).contiguous().to(device);
}

InversionModel InversionModel::load(const std::string& path, const InversionLoadOptions& opts) {
  InversionModel m;
  m.path = path;
  m.device_ = opts.device;
  if (!fs::exists(path)) throw IOError("checkpoint " + io::quoted(path) + " does not exist");

  sg::Generator::LoadOptions go;
  go.device = opts.device;
  e4e::Encoder4Editing::LoadOptions eo;
  eo.device = opts.device;
  auto load_g = [&](const std::string& file, const std::string& key) {
    go.key = !opts.generator_key.empty() ? opts.generator_key : key;
    m.G = sg::Generator::from_checkpoint(file, go);
    m.generator_source = file + " (" + go.key + ")";
  };

  if (fs::is_directory(path)) {
    if (!fs::exists(fs::path(path) / "manifest.json"))
      throw FormatError(io::quoted(path) + " is a folder but not a toyfaces bundle (no manifest.json)");
    if (!opts.generator.empty() || !opts.encoder.empty())
      throw FormatError("a toyfaces bundle brings its own generator and encoder; --generator/--encoder do not apply");
    ToyBundle b = ToyBundle::load(path, opts.device);
    m.kind = ModelKind::Bundle;
    m.G = std::move(b.G);
    m.E = std::move(b.E);
    m.net = std::move(b.net);
    for (auto& [k, d] : b.directions) {
      m.bundle_directions[k] = d.n;
      m.bundle_scales[k] = d.scale;
    }
    m.generator_source = (fs::path(path) / "generator.safetensors").string();
    m.encoder_source = (fs::path(path) / "encoder.safetensors").string();
    return m;
  }

  if (is_gradstyle_net(path)) {
    gsnet::CheckpointRefs refs;
    m.net = gsnet::GradStyleNet::load(path, &refs, opts.device);
    m.net->eval();
    m.net->requires_grad_(false);
    m.kind = ModelKind::GradStyle;
    const fs::path dir = fs::path(path).parent_path();
    const std::string gfile = !opts.generator.empty() ? opts.generator
                              : first_existing({refs.generator_checkpoint, (dir / "generator.safetensors").string()});
    const std::string efile = !opts.encoder.empty() ? opts.encoder
                              : first_existing({refs.encoder_checkpoint, (dir / "encoder.safetensors").string()});
    if (gfile.empty())
      throw FormatError(io::quoted(path) + " is a GradStyle network; its generator (recorded as " +
                        io::quoted(refs.generator_checkpoint) + ") is not there: pass --generator");
    if (efile.empty())
      throw FormatError(io::quoted(path) + " is a GradStyle network; its e4e encoder (recorded as " +
                        io::quoted(refs.encoder_checkpoint) + ") is not there: pass --encoder");
    load_g(gfile, "g_ema");
    m.E = e4e::Encoder4Editing::from_checkpoint(efile, eo);
    m.encoder_source = efile;
    m.E->check_generator(m.G->n_latent(), m.G->config().style_dim);
    m.net->check_generator(*m.G);
    return m;
  }

  // Otherwise an e4e checkpoint (the encoder loader names what is wrong with anything else).
  if (!opts.encoder.empty())
    throw FormatError(io::quoted(path) + " is not a GradStyle network; --encoder applies only to those (the e4e "
                      "encoder is the checkpoint itself)");
  m.kind = ModelKind::E4E;
  m.E = e4e::Encoder4Editing::from_checkpoint(path, eo);
  m.encoder_source = path;
  if (!opts.generator.empty()) {
    load_g(opts.generator, "g_ema");
  } else {
    try {
      load_g(path, "state_dict.decoder");
    } catch (const FormatError& e) {
      throw FormatError(io::quoted(path) + " holds an e4e encoder but no generator (no state_dict.decoder): pass "
                        "--generator (" + e.what() + ")");
    }
  }
  m.E->check_generator(m.G->n_latent(), m.G->config().style_dim);
  return m;
}

std::string InversionModel::describe() const {
  std::ostringstream s;
  s << model_kind_name(kind) << ", " << output_size() << " px, " << n_latent() << " x " << style_dim()
    << " W+, encoder input " << input_size();
  if (net) s << ", refined blocks " << net->num_modules();
  s << ", " << device_.str();
  return s.str();
}

Tensor InversionModel::prepare(const io::Image& img, int64_t size) {
  const io::Image r = (img.width == size && img.height == size) ? img : io::resize_pil(img, int(size), int(size));
  return io::image_to_tensor(r);
}

Inversion InversionModel::invert(const Tensor& x_in, bool with_image) {
  autograd::NoGradGuard ng;
  const Tensor x = x_in.to(device_);
  Inversion r;
  if (net) {
    gsnet::InvertResult ir = net->invert(*E, *G, x);
    r.w = ir.w;
    r.image = ir.rec.image;
    r.F = std::move(ir.rec.F);
    return r;
  }
  r.w = E->forward(x).w_plus;
  if (with_image) r.image = synthesize(r.w);
  return r;
}

Tensor InversionModel::synthesize(const Tensor& w) const {
  autograd::NoGradGuard ng;
  sg::SynthesisOptions so;
  so.noise_mode = sg::NoiseMode::Const;
  return G->synthesis(w.to(device_), so);
}

Tensor InversionModel::render(const Tensor& w_hat, const Inversion& inv) const {
  autograd::NoGradGuard ng;
  GS_CHECK(w_hat.dim() == 3 && w_hat.size(1) == n_latent() && w_hat.size(2) == style_dim(), ShapeError,
           "render: w_hat has shape ", shape_str(w_hat.shape()), ", expected [B,", n_latent(), ",", style_dim(), "]");
  if (!net) return synthesize(w_hat);
  GS_CHECK(!inv.F.empty() && inv.F[0].size(0) == w_hat.size(0), ShapeError,
           "render: the GradStyle editing stream needs the inversion's residuals for the same ", w_hat.size(0),
           " images");
  return net->edit_stream(*G, w_hat.to(device_), inv.F).image;
}

Tensor InversionModel::direction(const std::string& attribute, const DirectionSource& src) const {
  Tensor d;
  std::string from;
  if (!src.file.empty()) {
    d = load_single_tensor(src.file, "--direction", device_);
    from = src.file;
  } else if (auto it = bundle_directions.find(attribute); it != bundle_directions.end()) {
    d = it->second;
    from = "the bundle's '" + attribute + "'";
  } else if (!src.directions_dir.empty()) {
    const std::string f = (fs::path(src.directions_dir) / (attribute + ".pt")).string();
    if (!fs::exists(f))
      throw IOError("direction '" + attribute + "': " + io::quoted(f) + " does not exist (--directions_dir " +
                    io::quoted(src.directions_dir) + ")");
    d = models::editing::load_interfacegan_direction(f, device_);
    from = f;
  } else {
    std::string have;
    for (const auto& [k, v] : bundle_directions) have += (have.empty() ? "" : ", ") + k;
    throw FormatError("no direction for '" + attribute + "': pass --direction FILE or --directions_dir DIR" +
                      (have.empty() ? std::string() : " (this bundle has " + have + ")"));
  }
  const int64_t N = n_latent(), D = style_dim();
  const auto& s = d.shape();
  const bool ok = (s.size() == 1 && s[0] == D) || (s.size() == 2 && (s[0] == 1 || s[0] == N) && s[1] == D) ||
                  (s.size() == 3 && s[0] == 1 && s[1] == N && s[2] == D);
  GS_CHECK(ok, ShapeError, "direction ", from, " has shape ", shape_str(s), " but this generator's W+ is [", N, ",", D,
           "] (a direction is [", D, "], [1,", D, "], [", N, ",", D, "] or [1,", N, ",", D, "])");
  return d.to(DType::f32).to(device_);
}

double InversionModel::step_for(const std::string& attribute, double degree, const DirectionSource& src) const {
  if (src.file.empty())
    if (auto it = bundle_scales.find(attribute); it != bundle_scales.end()) return degree / it->second;
  return degree;
}

}  // namespace gradstyle::eval
