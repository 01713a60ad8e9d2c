#include "gradstyle/models/lpips.hpp"

#include <sstream>

#include "gradstyle/ops/elementwise.hpp"
#include "gradstyle/ops/pool.hpp"
#include "gradstyle/ops/reduce.hpp"
#include "gradstyle/ops/shape.hpp"
#include "models/detail/loader_util.hpp"

namespace gradstyle::models::lpips {

using detail::dim_of;
using detail::quoted;

// ---- configuration --------------------------------------------------------------------------------

std::vector<int64_t> LPIPSConfig::conv_indices() const {
  std::vector<int64_t> idx;
  int64_t i = 0;
  for (int64_t n : convs) {
    for (int64_t k = 0; k < n; ++k, i += 2) idx.push_back(i);  // conv, relu
    i += 1;                                                     // max-pool
  }
  return idx;
}

std::vector<int64_t> LPIPSConfig::tap_indices() const {
  std::vector<int64_t> idx;
  int64_t i = 0;
  for (int64_t n : convs) {
    i += 2 * n;
    idx.push_back(i - 1);  // the block's last ReLU (3, 8, 15, 22, 29 for VGG16)
    i += 1;
  }
  return idx;
}

void LPIPSConfig::validate() const {
  GS_CHECK(!channels.empty() && channels.size() == convs.size(), ValueError, "LPIPS: channels (", channels.size(),
           ") and convs (", convs.size(), ") must be non-empty lists of equal length");
  for (size_t b = 0; b < channels.size(); ++b)
    GS_CHECK(channels[b] >= 1 && convs[b] >= 1, ValueError, "LPIPS: block ", b, " has width ", channels[b], " and ",
             convs[b], " convs (both must be >= 1)");
}

std::string LPIPSConfig::str() const {
  std::ostringstream o;
  o << "VGG blocks (";
  for (size_t b = 0; b < channels.size(); ++b) o << (b ? ", " : "") << convs[b] << "x" << channels[b];
  o << ")";
  return o.str();
}

// ---- modules --------------------------------------------------------------------------------------

VGGFeatures::VGGFeatures(const LPIPSConfig& cfg, ParamInit init) : cfg_(cfg) {
  cfg_.validate();
  const auto idx = cfg_.conv_indices();
  int64_t in = 3;
  size_t j = 0;
  for (size_t b = 0; b < cfg_.channels.size(); ++b)
    for (int64_t k = 0; k < cfg_.convs[b]; ++k, ++j) {
      convs.push_back(std::make_shared<Conv2d>(in, cfg_.channels[b], 3, 1, 1, true, init));
      register_module(std::to_string(idx[j]), convs.back());
      in = cfg_.channels[b];
    }
}

std::vector<Tensor> VGGFeatures::forward_taps(const Tensor& x) const {
  std::vector<Tensor> taps;
  Tensor h = x;
  size_t j = 0;
  for (size_t b = 0; b < cfg_.channels.size(); ++b) {
    if (b > 0) h = max_pool2d(h, {2}, {2});
    for (int64_t k = 0; k < cfg_.convs[b]; ++k) h = relu(convs[j++]->forward(h));
    taps.push_back(h);
  }
  return taps;
}

NetLinLayer::Model::Model(int64_t channels, ParamInit init) : conv(channels, 1, 1, 1, 0, false, init) {
  register_module("1", &conv);
}

NetLinLayer::NetLinLayer(int64_t channels, ParamInit init) : model(channels, init) { register_module("model", &model); }

LPIPS::LPIPS(const LPIPSConfig& cfg, ParamInit init) : cfg_(cfg), features(cfg, init) {
  register_module("features", &features);
  for (size_t l = 0; l < cfg_.channels.size(); ++l) {
    lins.push_back(std::make_shared<NetLinLayer>(cfg_.channels[l], init));
    register_module("lin" + std::to_string(l), lins.back());
  }
  shift = Tensor::from_vector<float>({-0.030f, -0.088f, -0.188f}, {1, 3, 1, 1});
  scale = Tensor::from_vector<float>({0.458f, 0.448f, 0.450f}, {1, 3, 1, 1});
  register_buffer("shift", &shift, /*persistent=*/false);
  register_buffer("scale", &scale, /*persistent=*/false);
}

Tensor LPIPS::forward_layers(const Tensor& a, const Tensor& b) {
  GS_CHECK(a.dim() == 4 && a.size(1) == 3 && a.shape() == b.shape(), ShapeError,
           "LPIPS: expected two images [B, 3, H, W] of the same shape, got ", shape_str(a.shape()), " and ",
           shape_str(b.shape()));
  const int64_t min_size = int64_t(1) << (cfg_.channels.size() - 1);
  GS_CHECK(a.size(2) >= min_size && a.size(3) >= min_size, ShapeError, "LPIPS: images of ", shape_str(a.shape()),
           " are too small for ", cfg_.channels.size(), " VGG blocks (need at least ", min_size, " px)");
  const int64_t B = a.size(0);
  // Both images go through the trunk as one batch (larger GEMMs, half the launches).
  const Tensor sh = shift.to(a.dtype()), sc = scale.to(a.dtype());
  const Tensor x = (cat({a, b}, 0) - sh) / sc;
  const auto taps = features.forward_taps(x);
  std::vector<Tensor> terms;
  for (size_t l = 0; l < taps.size(); ++l) {
    // f: [2B, C, H, W]; n = f / (||f||_channels + eps)
    const Tensor& f = taps[l];
    const Tensor n = f / (sqrt(sum(f * f, {1}, /*keepdim=*/true)) + 1e-10);
    const Tensor d = square(narrow(n, 0, 0, B) - narrow(n, 0, B, B));
    terms.push_back(mean(lins[l]->forward(d), {1, 2, 3}));  // [B]
  }
  return stack(terms, 1);  // [B, n_taps]
}

Tensor LPIPS::forward(const Tensor& a, const Tensor& b) { return sum(forward_layers(a, b), {1}); }

// ---- loading --------------------------------------------------------------------------------------

LPIPSConfig LPIPS::infer_config(const nn::StateDict& sd, const std::string& name) {
  // The conv indices of torchvision's Sequential: +2 within a block, +3 across a max-pool.
  std::vector<int64_t> idx;
  for (int64_t i = 0; i <= detail::max_index(sd, "features."); ++i)
    if (detail::has(sd, "features." + std::to_string(i) + ".weight") || detail::has(sd, "features." + std::to_string(i) + ".bias"))
      idx.push_back(i);
  if (idx.empty() || idx[0] != 0)
    throw FormatError(name + ": no VGG16 features: expected torchvision's 'features.0.weight', 'features.2.weight', ... (found " +
                      detail::some_keys(sd) + ")");
  LPIPSConfig cfg;
  cfg.channels.clear();
  cfg.convs.clear();
  for (size_t j = 0; j < idx.size(); ++j) {
    if (j == 0 || idx[j] - idx[j - 1] == 3) {
      cfg.convs.push_back(0);
      cfg.channels.push_back(0);
    } else if (idx[j] - idx[j - 1] != 2) {
      throw FormatError(name + ": unexpected VGG layout: conv " + quoted("features." + std::to_string(idx[j])) +
                        " follows " + quoted("features." + std::to_string(idx[j - 1])));
    }
    ++cfg.convs.back();
    const std::string k = "features." + std::to_string(idx[j]);
    detail::Vote w;
    w.add(dim_of(sd, k + ".weight", 0));
    w.add(dim_of(sd, k + ".bias", 0));
    if (cfg.channels.back() == 0) cfg.channels.back() = w.winner();
  }
  // One head per tap: the heads decide how many blocks LPIPS uses.
  const int64_t n_lin = detail::max_index(sd, "lin") + 1;
  if (n_lin < 1) throw FormatError(name + ": no LPIPS heads: expected 'lin0.model.1.weight', ... (weights/v0.1/vgg.pth)");
  if (n_lin > int64_t(cfg.channels.size()))
    throw FormatError(name + ": " + std::to_string(n_lin) + " LPIPS heads for a VGG trunk of " +
                      std::to_string(cfg.channels.size()) + " blocks");
  cfg.channels.resize(size_t(n_lin));
  cfg.convs.resize(size_t(n_lin));
  return cfg;
}

std::unique_ptr<LPIPS> LPIPS::from_state_dict(const nn::StateDict& sd, const std::string& name, const LoadOptions& opts) {
  const LPIPSConfig cfg = infer_config(sd, name);
  auto net = std::make_unique<LPIPS>(cfg, ParamInit::Deferred);
  detail::load_strict(*net, sd, name, cfg.str());
  net->to(opts.device);
  detail::freeze(*net);
  return net;
}

std::unique_ptr<LPIPS> LPIPS::from_files(const std::string& vgg_path, const std::string& lin_path,
                                         const LoadOptions& opts) {
  detail::LoadedFile vf = detail::load_file(vgg_path, Device::cpu(), {"features.", "net.slice", "lin"});
  vf.tree.reset();
  nn::StateDict sd;
  for (const auto& [k, v] : vf.tensors) {
    if (k.compare(0, 9, "features.") == 0 || (lin_path.empty() && k.compare(0, 3, "lin") == 0)) {
      sd[k] = v;
    } else if (k.compare(0, 9, "net.slice") == 0) {
      // lpips.LPIPS's own state dict: net.slice{k}.{i}.* keeps torchvision's index i.
      const size_t dot = k.find('.', 9);
      if (dot != std::string::npos) sd["features." + k.substr(dot + 1)] = v;
    }
  }
  if (sd.empty())
    throw FormatError(quoted(vgg_path) + ": no VGG16 features (expected torchvision's 'features.N.weight' keys; entries: " +
                      vf.entries + ")");
  std::string name = quoted(vgg_path);
  if (!lin_path.empty()) {
    detail::LoadedFile lf = detail::load_file(lin_path, Device::cpu(), {"lin"});
    if (lf.tensors.empty())
      throw FormatError(quoted(lin_path) + ": no LPIPS heads (expected 'lin0.model.1.weight', ...; entries: " +
                        lf.entries + ")");
    for (auto& [k, v] : lf.tensors) sd[k] = v;
    name += " + " + quoted(lin_path);
  }
  return from_state_dict(sd, name, opts);
}

}  // namespace gradstyle::models::lpips
