// Loading rosinality StyleGAN2 checkpoints: the configuration is read from the key shapes (never
// guessed), then the state dict is loaded strictly and every problem is reported with its key.
#include <algorithm>
#include <cmath>
#include <set>
#include <sstream>

#include "gradstyle/autograd/autograd.hpp"
#include "gradstyle/io/tensor_bridge.hpp"
#include "gradstyle/models/stylegan2.hpp"
#include "gradstyle/ops/elementwise.hpp"
#include "gradstyle/ops/reduce.hpp"
#include "models/detail/loader_util.hpp"

namespace gradstyle::models::stylegan2 {

namespace {

using detail::dim_of;
using detail::max_index;
using detail::quoted;
using detail::some_keys;
using detail::Vote;

void check_kernel(const nn::StateDict& sd, const std::string& key, const Tensor& expected, const std::string& name,
                  std::vector<std::string>& bad) {
  auto it = sd.find(key);
  if (it == sd.end() || it->second.shape() != expected.shape()) return;  // the strict load reports it
  const auto a = it->second.to_vector<double>();
  const auto b = expected.to_vector<double>();
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(a[i] - b[i]));
  if (!(worst <= 1e-6)) bad.push_back(key + " (max difference " + std::to_string(worst) + ")");
  (void)name;
}

}  // namespace

// The listing is shared with the other loaders (models/detail/loader_util.hpp).
std::string describe_entries(const nn::StateDict& all) { return detail::describe_entries(all); }

// ---- generator -----------------------------------------------------------------------------------

GeneratorConfig Generator::infer_config(const nn::StateDict& sd, const std::string& name, double lr_mlp) {
  GeneratorConfig c;
  c.lr_mlp = lr_mlp;
  const bool looks_like_g = sd.count("input.input") || sd.count("conv1.conv.weight") || sd.count("style.1.weight");
  if (!looks_like_g)
    throw FormatError(name +
                      ": not a rosinality StyleGAN2 generator state dict (no 'input.input', "
                      "'conv1.conv.weight' or 'style.1.weight'; keys: " +
                      some_keys(sd) + ")");
  // Resolution: to_rgbs.{0..K-1} and convs.{0..2K-1} for size 2^(K + 2).
  const int64_t k_rgb = max_index(sd, "to_rgbs.") + 1;
  const int64_t k_conv = (max_index(sd, "convs.") + 2) / 2;
  const int64_t k_noise = std::max<int64_t>(0, max_index(sd, "noises.noise_") / 2);  // unused when absent
  int64_t K = std::max({k_rgb, k_conv});
  if (K == 0) K = k_noise;
  if (K < 1)
    throw FormatError(name +
                      ": cannot tell the generator's resolution: no 'to_rgbs.*' or 'convs.*' keys "
                      "(a generator needs at least 8 px; keys: " +
                      some_keys(sd) + ")");
  if (K > 14) throw FormatError(name + ": implausible generator with " + std::to_string(K) + " to_rgbs layers");
  c.size = int64_t(1) << (K + 2);

  // style_dim: the mapping layers and every modulation weight [in, style_dim].
  Vote sd_vote;
  for (int64_t i = 1; i <= std::max<int64_t>(1, max_index(sd, "style.")); ++i) {
    sd_vote.add(dim_of(sd, "style." + std::to_string(i) + ".weight", 0));
    sd_vote.add(dim_of(sd, "style." + std::to_string(i) + ".weight", 1));
  }
  for (const auto& [k, v] : sd) {
    const std::string suffix = "conv.modulation.weight";
    if (k.size() >= suffix.size() && k.compare(k.size() - suffix.size(), suffix.size(), suffix) == 0)
      sd_vote.add(dim_of(sd, k, 1));
  }
  c.style_dim = sd_vote.winner();
  if (c.style_dim < 1)
    throw FormatError(name + ": cannot tell style_dim: no 'style.N.weight' or '*.conv.modulation.weight' keys");
  c.n_mlp = std::max<int64_t>(1, max_index(sd, "style."));

  // Channels per resolution, by vote over every key that carries them.
  c.channels.clear();
  auto key = [](const std::string& a, int64_t i, const std::string& b) { return a + std::to_string(i) + b; };
  for (int64_t r = 4, k = -1; r <= c.size; r *= 2, ++k) {
    Vote v;
    if (r == 4) {
      v.add(dim_of(sd, "input.input", 1));
      v.add(dim_of(sd, "conv1.conv.weight", 1));
      v.add(dim_of(sd, "conv1.conv.weight", 2));
      v.add(dim_of(sd, "conv1.conv.modulation.weight", 0));
      v.add(dim_of(sd, "conv1.activate.bias", 0));
      v.add(dim_of(sd, "to_rgb1.conv.weight", 2));
      v.add(dim_of(sd, "to_rgb1.conv.modulation.weight", 0));
      v.add(dim_of(sd, "convs.0.conv.weight", 2));
      v.add(dim_of(sd, "convs.0.conv.modulation.weight", 0));
    } else {
      const int64_t up = 2 * k, same = 2 * k + 1, next = 2 * k + 2;
      v.add(dim_of(sd, key("convs.", up, ".conv.weight"), 1));
      v.add(dim_of(sd, key("convs.", up, ".activate.bias"), 0));
      v.add(dim_of(sd, key("convs.", same, ".conv.weight"), 1));
      v.add(dim_of(sd, key("convs.", same, ".conv.weight"), 2));
      v.add(dim_of(sd, key("convs.", same, ".conv.modulation.weight"), 0));
      v.add(dim_of(sd, key("convs.", same, ".activate.bias"), 0));
      v.add(dim_of(sd, key("to_rgbs.", k, ".conv.weight"), 2));
      v.add(dim_of(sd, key("to_rgbs.", k, ".conv.modulation.weight"), 0));
      v.add(dim_of(sd, key("convs.", next, ".conv.weight"), 2));
      v.add(dim_of(sd, key("convs.", next, ".conv.modulation.weight"), 0));
    }
    const int64_t ch = v.winner();
    if (ch < 1)
      throw FormatError(name + ": cannot tell the channel count at " + std::to_string(r) +
                        " px: none of the keys that carry it is present (e.g. " +
                        (r == 4 ? std::string("conv1.conv.weight") : key("convs.", 2 * k, ".conv.weight")) + ")");
    c.channels[r] = ch;
  }
  // Report a rosinality channel multiplier when the table is one (informational).
  for (int64_t cm = 1; cm <= 8; ++cm)
    if (default_channels(c.size, cm, c.channels[4]) == c.channels) {
      c.channel_multiplier = cm, c.channel_base = c.channels[4];
      break;
    }
  return c;
}

std::unique_ptr<Generator> Generator::from_state_dict(const nn::StateDict& sd_in, const std::string& name,
                                                      const LoadOptions& opts) {
  nn::StateDict sd = sd_in;
  Tensor latent_avg;
  if (auto it = sd.find("latent_avg"); it != sd.end()) {
    latent_avg = it->second;
    sd.erase(it);
  }
  GeneratorConfig cfg = infer_config(sd, name, opts.lr_mlp);
  gradstyle::Generator init(0);  // deterministic stand-ins (noise for old files); the load overwrites the rest
  auto g = std::make_unique<Generator>(cfg, &init);

  // Files from the older model.py have no noises.*: keep the generated buffers (rosinality#65).
  bool has_noise = false;
  for (const auto& [k, v] : sd) has_noise = has_noise || k.compare(0, 7, "noises.") == 0;
  if (!has_noise) {
    for (auto& [k, t] : g->noises.named_buffers()) sd["noises." + k] = *t;
    g->noise_generated_ = true;
  }
  // Blur kernels must be the ones this architecture computes (SPEC C.1: check, do not trust).
  std::vector<std::string> bad;
  for (size_t k = 0; k < g->to_rgbs.size(); ++k) {
    check_kernel(sd, "convs." + std::to_string(2 * k) + ".conv.blur.kernel",
                 g->convs[2 * k].conv.blur->expected_kernel(), name, bad);
    check_kernel(sd, "to_rgbs." + std::to_string(k) + ".upsample.kernel", g->to_rgbs[k].upsample->expected_kernel(),
                 name, bad);
  }
  if (!bad.empty()) {
    std::string list;
    for (const auto& b : bad) list += (list.empty() ? "" : ", ") + b;
    throw FormatError(name + ": blur kernels differ from make_kernel([1,3,3,1]) * factor^2: " + list +
                      " (a generator built with another blur_kernel is not supported)");
  }
  try {
    g->load_state_dict(sd, /*strict=*/true);
  } catch (const ShapeError& e) {
    throw ShapeError(name + ": " + e.what() + " (generator inferred from the file: " + cfg.str() + ")");
  }
  if (latent_avg.defined()) {
    GS_CHECK(latent_avg.size(-1) == cfg.style_dim && (latent_avg.numel() == cfg.style_dim ||
                                                      (latent_avg.dim() == 2 && latent_avg.size(0) == cfg.n_latent())),
             ShapeError, name, ": latent_avg has shape ", shape_str(latent_avg.shape()),
             " but this generator expects [", cfg.style_dim, "] (or [", cfg.n_latent(), ", ", cfg.style_dim, "])");
    autograd::NoGradGuard ng;
    Tensor a = latent_avg.detach().to(DType::f32).contiguous().clone();
    g->w_avg = a.numel() == cfg.style_dim ? a.reshape({1, cfg.style_dim}) : a;
  }
  g->eval();
  g->requires_grad_(false);  // a loaded generator is frozen; call requires_grad_(true) to fine-tune
  if (opts.device != Device::cpu()) {
    g->to(opts.device);
    if (g->w_avg.defined()) g->w_avg = g->w_avg.to(opts.device);
  }
  return g;
}

std::unique_ptr<Generator> Generator::from_checkpoint(const std::string& path, const LoadOptions& opts) {
  // Only the generator's tensors are converted: an e4e checkpoint's encoder half (1 GB) is skipped.
  const detail::LoadedFile f = detail::load_file(
      path, Device::cpu(),
      {opts.key + ".", "latent_avg", "style.", "input.", "conv1.", "to_rgb1.", "convs.", "to_rgbs.", "noises."});
  const nn::StateDict& all = f.tensors;
  nn::StateDict sd = detail::sub_dict(all, opts.key + ".");
  std::string name = quoted(path) + " (" + opts.key + ")";
  if (sd.empty()) {
    // A bare generator state dict (torch.save(g_ema.state_dict())) has the keys at the top level.
    if (all.count("input.input") || all.count("conv1.conv.weight")) {
      sd = all;
      name = quoted(path);
    } else {
      throw FormatError(quoted(path) + ": no generator: there is no entry '" + opts.key +
                        "' and the file is not a bare generator state dict (entries: " + f.entries + ")");
    }
  } else if (auto it = all.find("latent_avg"); it != all.end()) {
    sd["latent_avg"] = it->second;
  }
  return from_state_dict(sd, name, opts);
}

// ---- discriminator -------------------------------------------------------------------------------------

DiscriminatorConfig Discriminator::infer_config(const nn::StateDict& sd, const std::string& name) {
  DiscriminatorConfig c;
  if (!sd.count("convs.0.0.weight") && !sd.count("final_conv.0.weight"))
    throw FormatError(name +
                      ": not a rosinality StyleGAN2 discriminator state dict (no 'convs.0.0.weight' or "
                      "'final_conv.0.weight'; keys: " +
                      some_keys(sd) + ")");
  const int64_t blocks = max_index(sd, "convs.");  // ResBlocks are convs.1 .. convs.N
  if (blocks < 1)
    throw FormatError(name + ": cannot tell the discriminator's resolution: no 'convs.N.conv1.*' ResBlock keys");
  if (blocks > 14) throw FormatError(name + ": implausible discriminator with " + std::to_string(blocks) + " blocks");
  c.size = int64_t(1) << (blocks + 2);
  c.channels.clear();
  auto key = [](int64_t i, const std::string& b) { return "convs." + std::to_string(i) + b; };
  for (int64_t r = c.size, i = 0; r >= 4; r /= 2, ++i) {
    // Resolution r is the output of block i (convs.0 for r = size) and the input of block i + 1.
    Vote v;
    if (i == 0) {
      v.add(dim_of(sd, "convs.0.0.weight", 0));
      v.add(dim_of(sd, "convs.0.1.bias", 0));
    } else {
      v.add(dim_of(sd, key(i, ".conv2.1.weight"), 0));
      v.add(dim_of(sd, key(i, ".conv2.2.bias"), 0));
      v.add(dim_of(sd, key(i, ".skip.1.weight"), 0));
    }
    if (i + 1 <= blocks) {
      v.add(dim_of(sd, key(i + 1, ".conv1.0.weight"), 0));
      v.add(dim_of(sd, key(i + 1, ".conv1.0.weight"), 1));
      v.add(dim_of(sd, key(i + 1, ".conv1.1.bias"), 0));
      v.add(dim_of(sd, key(i + 1, ".conv2.1.weight"), 1));
      v.add(dim_of(sd, key(i + 1, ".skip.1.weight"), 1));
    } else {
      v.add(dim_of(sd, "final_conv.0.weight", 0));
      v.add(dim_of(sd, "final_conv.1.bias", 0));
      v.add(dim_of(sd, "final_linear.0.weight", 0));
      v.add(dim_of(sd, "final_linear.1.weight", 1));
    }
    const int64_t ch = v.winner();
    if (ch < 1)
      throw FormatError(name + ": cannot tell the discriminator's channel count at " + std::to_string(r) + " px");
    c.channels[r] = ch;
  }
  const int64_t fin = dim_of(sd, "final_conv.0.weight", 1);
  if (fin > c.channels[4]) c.stddev_feat = fin - c.channels[4];
  for (int64_t cm = 1; cm <= 8; ++cm)
    if (default_channels(c.size, cm, c.channels[4]) == c.channels) {
      c.channel_multiplier = cm, c.channel_base = c.channels[4];
      break;
    }
  return c;
}

std::unique_ptr<Discriminator> Discriminator::from_state_dict(const nn::StateDict& sd, const std::string& name,
                                                              const LoadOptions& opts) {
  DiscriminatorConfig cfg = infer_config(sd, name);
  gradstyle::Generator init(0);
  auto d = std::make_unique<Discriminator>(cfg, &init);
  std::vector<std::string> bad;
  for (auto& [k, t] : d->named_buffers()) {
    if (k.size() > 7 && k.compare(k.size() - 7, 7, ".kernel") == 0) {
      auto it = sd.find(k);
      if (it == sd.end() || it->second.shape() != t->shape()) continue;
      auto a = it->second.to_vector<double>(), b = t->to_vector<double>();
      double worst = 0;
      for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(a[i] - b[i]));
      if (!(worst <= 1e-6)) bad.push_back(k);
    }
  }
  if (!bad.empty()) {
    std::string list;
    for (const auto& b : bad) list += (list.empty() ? "" : ", ") + b;
    throw FormatError(name + ": blur kernels differ from make_kernel([1,3,3,1]): " + list);
  }
  try {
    d->load_state_dict(sd, /*strict=*/true);
  } catch (const ShapeError& e) {
    throw ShapeError(name + ": " + e.what() + " (discriminator inferred from the file: " + cfg.str() + ")");
  }
  d->eval();
  d->requires_grad_(false);
  if (opts.device != Device::cpu()) d->to(opts.device);
  return d;
}

std::unique_ptr<Discriminator> Discriminator::from_checkpoint(const std::string& path, const LoadOptions& opts) {
  const nn::StateDict all = io::load_state_dict_tensors(path);
  nn::StateDict sd = detail::sub_dict(all, opts.key + ".");
  std::string name = quoted(path) + " (" + opts.key + ")";
  if (sd.empty()) {
    if (all.count("convs.0.0.weight") && all.count("final_conv.0.weight")) {
      sd = all;
      name = quoted(path);
    } else {
      throw FormatError(quoted(path) + ": no discriminator: there is no entry '" + opts.key +
                        "' (entries: " + describe_entries(all) +
                        "). rosinality's convert_weight.py adds it only with --disc; train.py checkpoints carry it.");
    }
  }
  return from_state_dict(sd, name, opts);
}

}  // namespace gradstyle::models::stylegan2
