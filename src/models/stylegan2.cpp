// StyleGAN2 generator (rosinality layout): configuration, building blocks and the forward passes.
// Checkpoint loading is in stylegan2_load.cpp, the discriminator in stylegan2_disc.cpp.
#include "gradstyle/models/stylegan2.hpp"

#include <cmath>
#include <sstream>

#include "gradstyle/autograd/autograd.hpp"
#include "gradstyle/ops/bias_act.hpp"
#include "gradstyle/ops/conv.hpp"
#include "gradstyle/ops/elementwise.hpp"
#include "gradstyle/ops/linalg.hpp"
#include "gradstyle/ops/modulated_conv.hpp"
#include "gradstyle/ops/norm.hpp"
#include "gradstyle/ops/reduce.hpp"
#include "gradstyle/ops/shape.hpp"

namespace gradstyle::models::stylegan2 {

namespace {

int64_t checked_log2(int64_t size, const char* what) {
  GS_CHECK(size >= 8 && (size & (size - 1)) == 0, ValueError, what, ": size must be a power of two >= 8, got ", size);
  int64_t l = 0;
  while ((int64_t(1) << l) < size) ++l;
  return l;
}

std::string channels_str(const std::map<int64_t, int64_t>& ch) {
  std::ostringstream os;
  os << "{";
  bool first = true;
  for (auto [r, c] : ch) {
    os << (first ? "" : ", ") << r << ": " << c;
    first = false;
  }
  os << "}";
  return os.str();
}

int64_t channels_lookup(const std::map<int64_t, int64_t>& explicit_ch, int64_t size, int64_t cm, int64_t base,
                        int64_t res, const char* what) {
  if (explicit_ch.empty()) {
    auto d = default_channels(size, cm, base);
    auto it = d.find(res);
    GS_CHECK(it != d.end(), ValueError, what, ": no channel count for resolution ", res);
    return it->second;
  }
  auto it = explicit_ch.find(res);
  GS_CHECK(it != explicit_ch.end(), ValueError, what, ": the channel table ", channels_str(explicit_ch),
           " has no entry for resolution ", res);
  return it->second;
}

void validate_channels(const std::map<int64_t, int64_t>& ch, int64_t size, const char* what) {
  if (ch.empty()) return;
  for (int64_t r = 4; r <= size; r *= 2) {
    auto it = ch.find(r);
    GS_CHECK(it != ch.end(), ValueError, what, ": the channel table ", channels_str(ch),
             " has no entry for resolution ", r);
    GS_CHECK(it->second >= 1, ValueError, what, ": channels at resolution ", r, " must be >= 1, got ", it->second);
  }
}

}  // namespace

std::map<int64_t, int64_t> default_channels(int64_t size, int64_t channel_multiplier, int64_t channel_base) {
  GS_CHECK(channel_multiplier >= 1 && channel_base >= 1, ValueError,
           "stylegan2: channel_multiplier and channel_base must be >= 1, got ", channel_multiplier, ", ", channel_base);
  std::map<int64_t, int64_t> ch;
  for (int64_t r = 4; r <= std::max<int64_t>(size, 4); r *= 2)
    ch[r] = r <= 32 ? channel_base : std::max<int64_t>(1, channel_base * channel_multiplier * 32 / r);
  return ch;
}

// ---- configs ---------------------------------------------------------------------------------------

int64_t GeneratorConfig::log_size() const {
  return checked_log2(size, "GeneratorConfig");
}

int64_t GeneratorConfig::channels_at(int64_t res) const {
  return channels_lookup(channels, size, channel_multiplier, channel_base, res, "GeneratorConfig");
}

void GeneratorConfig::validate() const {
  log_size();
  GS_CHECK(style_dim >= 1, ValueError, "GeneratorConfig: style_dim must be >= 1, got ", style_dim);
  GS_CHECK(n_mlp >= 1, ValueError, "GeneratorConfig: n_mlp must be >= 1, got ", n_mlp);
  GS_CHECK(lr_mlp > 0, ValueError, "GeneratorConfig: lr_mlp must be > 0, got ", lr_mlp);
  GS_CHECK(blur_kernel.size() >= 2, ValueError, "GeneratorConfig: blur_kernel needs at least 2 taps");
  validate_channels(channels, size, "GeneratorConfig");
  if (channels.empty()) default_channels(size, channel_multiplier, channel_base);
}

std::string GeneratorConfig::str() const {
  std::map<int64_t, int64_t> ch;
  for (int64_t r = 4; r <= size; r *= 2) ch[r] = channels_at(r);
  std::ostringstream os;
  os << size << " px, style_dim " << style_dim << ", n_mlp " << n_mlp << ", " << n_latent() << " W+ rows, "
     << num_layers() << " StyledConvs, channels " << channels_str(ch);
  if (channel_multiplier > 0 && ch == default_channels(size, channel_multiplier, channel_base))
    os << " (channel_multiplier " << channel_multiplier << ")";
  return os.str();
}

int64_t DiscriminatorConfig::log_size() const {
  return checked_log2(size, "DiscriminatorConfig");
}

int64_t DiscriminatorConfig::channels_at(int64_t res) const {
  return channels_lookup(channels, size, channel_multiplier, channel_base, res, "DiscriminatorConfig");
}

void DiscriminatorConfig::validate() const {
  log_size();
  GS_CHECK(stddev_group >= 1 && stddev_feat >= 1, ValueError,
           "DiscriminatorConfig: stddev_group and stddev_feat must be >= 1, got ", stddev_group, ", ", stddev_feat);
  GS_CHECK(blur_kernel.size() >= 2, ValueError, "DiscriminatorConfig: blur_kernel needs at least 2 taps");
  validate_channels(channels, size, "DiscriminatorConfig");
  if (channels.empty()) default_channels(size, channel_multiplier, channel_base);
  GS_CHECK(channels_at(4) % stddev_feat == 0, ValueError, "DiscriminatorConfig: channels at 4 px (", channels_at(4),
           ") are not divisible by stddev_feat ", stddev_feat);
}

std::string DiscriminatorConfig::str() const {
  std::map<int64_t, int64_t> ch;
  for (int64_t r = 4; r <= size; r *= 2) ch[r] = channels_at(r);
  std::ostringstream os;
  os << size << " px, channels " << channels_str(ch) << ", minibatch stddev group " << stddev_group << " features "
     << stddev_feat;
  return os.str();
}

// ---- building blocks -----------------------------------------------------------------------------------

ModulatedConv2d::ModulatedConv2d(int64_t in_channels, int64_t out_channels, int64_t kernel_size, int64_t style_dim,
                                 bool demodulate, bool upsample, const std::vector<float>& blur_kernel,
                                 gradstyle::Generator* gen)
    : modulation(style_dim, in_channels, nn::EqualLinearSpec{.bias = true, .bias_init = 1.0}, gen),
      in_(in_channels),
      out_(out_channels),
      k_(kernel_size),
      demodulate_(demodulate),
      upsample_(upsample) {
  GS_CHECK(in_channels >= 1 && out_channels >= 1 && kernel_size >= 1, ValueError,
           "ModulatedConv2d: channels and kernel size must be >= 1, got ", in_channels, ", ", out_channels, ", ",
           kernel_size);
  scale_ = 1.0 / std::sqrt(double(in_channels * kernel_size * kernel_size));
  {
    autograd::NoGradGuard ng;
    weight = Tensor::randn({1, out_channels, in_channels, kernel_size, kernel_size}, gen ? *gen : nn::init_generator());
  }
  register_parameter("weight", &weight);
  register_module("modulation", &modulation);
  standard_blur_ = blur_kernel == std::vector<float>{1, 3, 3, 1};
  if (upsample) {
    // rosinality: p = (len - factor) - (k - 1); pad ((p + 1) / 2 + factor - 1, p / 2 + 1); kernel * factor^2.
    const int64_t factor = 2;
    // Python floor division: p is negative for short kernels ([1, 2, 1] with k = 3 gives p = -1).
    const int64_t p = (int64_t(blur_kernel.size()) - factor) - (kernel_size - 1);
    auto floordiv2 = [](int64_t a) { return a >= 0 ? a / 2 : -((-a + 1) / 2); };
    blur = std::make_shared<nn::Blur>(blur_kernel,
                                      std::array<int64_t, 2>{floordiv2(p + 1) + factor - 1, floordiv2(p) + 1}, factor);
    register_module("blur", blur);
  }
}

Tensor ModulatedConv2d::forward_fused(const Tensor& x, const Tensor& w, const Tensor& noise, const Tensor& noise_weight,
                                      const Tensor& bias, bool lrelu) const {
  if (!standard_blur_) {
    // Composed path for blur kernels other than [1, 3, 3, 1] (modulated_conv2d hard-codes that one).
    Tensor y = forward(x, w);
    if (noise.defined()) y = y + noise_weight * noise;
    BiasActOptions a;
    a.act = lrelu ? Activation::LeakyReLU : Activation::Linear;
    return bias.defined() || lrelu ? bias_act(y, bias, a) : y;
  }
  check_inputs(x, w);
  ModulatedConv2dOptions o;
  o.demodulate = demodulate_;
  o.up = upsample_ ? 2 : 1;
  o.noise = noise;
  o.noise_weight = noise.defined() ? noise_weight : Tensor();
  o.bias = bias;
  o.act = lrelu ? Activation::LeakyReLU : Activation::Linear;
  return modulated_conv2d(x, weight, modulation.forward(w), o);
}

void ModulatedConv2d::check_inputs(const Tensor& x, const Tensor& w) const {
  GS_CHECK(x.defined() && x.dim() == 4 && x.size(1) == in_, ShapeError, "ModulatedConv2d: input ",
           x.defined() ? shape_str(x.shape()) : "undefined", " is not [B, ", in_, ", H, W]");
  GS_CHECK(w.defined() && w.dim() == 2 && w.size(0) == x.size(0), ShapeError, "ModulatedConv2d: style ",
           w.defined() ? shape_str(w.shape()) : "undefined", " is not [", x.size(0), ", style_dim] for input ",
           shape_str(x.shape()));
}

Tensor ModulatedConv2d::forward(const Tensor& x, const Tensor& w) const {
  check_inputs(x, w);
  const int64_t b = x.size(0);
  const Tensor s = modulation.forward(w);                          // s: [B, in]
  const Tensor wt = weight.reshape({out_, in_, k_, k_}) * scale_;  // wt: [out, in, k, k]
  // Composed form of rosinality's grouped conv: conv(x * s, W) * d == conv(x, W * s * d).
  const Tensor xs = x * s.reshape({b, in_, 1, 1});
  Tensor y;
  if (upsample_) {
    ConvTranspose2dOptions o;
    o.stride = {2, 2};
    y = conv_transpose2d(xs, wt.transpose(0, 1), Tensor(), o);  // [B, out, 2H + k - 2, ...]
    y = blur->forward(y);                                       // [B, out, 2H, 2W]
  } else {
    Conv2dOptions o;
    o.padding = {k_ / 2, k_ / 2};
    y = conv2d(xs, wt, Tensor(), o);  // [B, out, H, W]
  }
  if (demodulate_) {
    // d[b, o] = rsqrt(sum_{i, kh, kw} (W[o, i, kh, kw] s[b, i])^2 + 1e-8)
    const Tensor wsq = square(wt).sum({2, 3});                                         // [out, in]
    const Tensor d = rsqrt(add_scalar(matmul(square(s), wsq.transpose(0, 1)), 1e-8));  // [B, out]
    y = y * d.reshape({b, out_, 1, 1});
  }
  return y;
}

NoiseInjection::NoiseInjection() {
  weight = Tensor::zeros({1});
  register_parameter("weight", &weight);
}

Tensor NoiseInjection::forward(const Tensor& x, const Tensor& noise) const {
  if (!noise.defined()) return x;
  GS_CHECK(noise.dim() == 4 && noise.size(1) == 1 && noise.size(2) == x.size(2) && noise.size(3) == x.size(3) &&
               (noise.size(0) == 1 || noise.size(0) == x.size(0)),
           ShapeError, "NoiseInjection: noise ", shape_str(noise.shape()), " does not fit the feature ",
           shape_str(x.shape()), " (expected [1 or ", x.size(0), ", 1, ", x.size(2), ", ", x.size(3), "])");
  return x + weight * noise;
}

StyledConv::StyledConv(int64_t in_channels, int64_t out_channels, int64_t kernel_size, int64_t style_dim, bool upsample,
                       const std::vector<float>& blur_kernel, gradstyle::Generator* gen)
    : conv(in_channels, out_channels, kernel_size, style_dim, true, upsample, blur_kernel, gen),
      activate(out_channels) {
  register_module("conv", &conv);
  register_module("noise", &noise);
  register_module("activate", &activate);
}

Tensor StyledConv::forward(const Tensor& x, const Tensor& w, const Tensor& n) const {
  return conv.forward_fused(x, w, n, noise.weight, activate.bias, /*lrelu=*/true);
}

ToRGB::ToRGB(int64_t in_channels, int64_t style_dim, bool has_upsample, const std::vector<float>& blur_kernel,
             gradstyle::Generator* gen)
    : conv(in_channels, 3, 1, style_dim, false, false, blur_kernel, gen) {
  if (has_upsample) {
    upsample = std::make_shared<nn::Upsample>(blur_kernel, 2);
    register_module("upsample", upsample);
  }
  register_module("conv", &conv);
  bias = Tensor::zeros({1, 3, 1, 1});
  register_parameter("bias", &bias);
}

Tensor ToRGB::forward(const Tensor& x, const Tensor& w, const Tensor& skip) const {
  Tensor out = conv.forward_fused(x, w, Tensor(), Tensor(), bias.reshape({3}), /*lrelu=*/false);  // [B, 3, H, W]
  if (!skip.defined()) return out;
  GS_CHECK(upsample != nullptr, ValueError, "ToRGB: a skip was given to a ToRGB without upsampling");
  return out + upsample->forward(skip);
}

ConstantInput::ConstantInput(int64_t channels, int64_t size, gradstyle::Generator* gen) {
  autograd::NoGradGuard ng;
  input = Tensor::randn({1, channels, size, size}, gen ? *gen : nn::init_generator());
  register_parameter("input", &input);
}

Tensor ConstantInput::forward(int64_t batch) const {
  return repeat(input, {batch, 1, 1, 1});
}

NoiseBuffers::NoiseBuffers(int64_t num_layers, gradstyle::Generator* gen) {
  autograd::NoGradGuard ng;
  for (int64_t l = 0; l < num_layers; ++l) {
    const int64_t r = int64_t(1) << ((l + 5) / 2);
    noise.push_back(Tensor::randn({1, 1, r, r}, gen ? *gen : nn::init_generator()));
  }
  for (int64_t l = 0; l < num_layers; ++l) register_buffer("noise_" + std::to_string(l), &noise[size_t(l)]);
}

// ---- generator -------------------------------------------------------------------------------------

namespace {
GeneratorConfig validated(GeneratorConfig c) {
  c.validate();
  return c;
}
}  // namespace

Generator::Generator(const GeneratorConfig& cfg, gradstyle::Generator* g)
    : cfg_(validated(cfg)),
      input(cfg_.channels_at(4), 4, g),
      conv1(cfg_.channels_at(4), cfg_.channels_at(4), 3, cfg_.style_dim, false, cfg_.blur_kernel, g),
      to_rgb1(cfg_.channels_at(4), cfg_.style_dim, false, cfg_.blur_kernel, g),
      noises(cfg_.num_layers(), g) {
  for (int64_t i = 0; i < cfg_.n_mlp; ++i)
    style_layers.emplace_back(
        cfg_.style_dim, cfg_.style_dim,
        nn::EqualLinearSpec{.lr_mul = cfg_.lr_mlp, .activation = nn::EqualActivation::FusedLeakyReLU}, g);
  int64_t in_ch = cfg_.channels_at(4);
  for (int64_t i = 3; i <= cfg_.log_size(); ++i) {
    const int64_t out_ch = cfg_.channels_at(int64_t(1) << i);
    convs.emplace_back(in_ch, out_ch, 3, cfg_.style_dim, true, cfg_.blur_kernel, g);
    convs.emplace_back(out_ch, out_ch, 3, cfg_.style_dim, false, cfg_.blur_kernel, g);
    to_rgbs.emplace_back(out_ch, cfg_.style_dim, true, cfg_.blur_kernel, g);
    in_ch = out_ch;
  }
  register_module("style", &style_layers);
  register_module("input", &input);
  register_module("conv1", &conv1);
  register_module("to_rgb1", &to_rgb1);
  register_module("convs", &convs);
  register_module("to_rgbs", &to_rgbs);
  register_module("noises", &noises);
}

Tensor Generator::style(const Tensor& z) const {
  GS_CHECK(z.defined() && z.dim() == 2 && z.size(1) == cfg_.style_dim, ShapeError, "Generator::style: z has shape ",
           z.defined() ? shape_str(z.shape()) : "undefined", " but this generator expects [N, ", cfg_.style_dim, "]");
  Tensor x = pixel_norm(z, 1, 1e-8);
  for (const auto& layer : style_layers) x = layer->forward(x);
  return x;  // [B, style_dim]
}

Tensor Generator::mean_latent(int64_t n, gradstyle::Generator& rng) const {
  GS_CHECK(n >= 1, ValueError, "Generator::mean_latent: n must be >= 1, got ", n);
  const Tensor& p = input.input;
  Tensor z = Tensor::randn({n, cfg_.style_dim}, rng, {.dtype = p.dtype(), .device = p.device()});
  return style(z).mean({0}, true);  // [1, style_dim]
}

Tensor Generator::truncate(const Tensor& w, double psi, const Tensor& w_avg) {
  if (psi == 1.0) return w;
  GS_CHECK(w_avg.defined(), ValueError, "Generator::truncate: truncation psi = ", psi,
           " needs an average latent (latent_avg from the checkpoint or mean_latent)");
  GS_CHECK(w.dim() >= 2 && w_avg.size(-1) == w.size(-1), ShapeError, "Generator::truncate: w ", shape_str(w.shape()),
           " and w_avg ", shape_str(w_avg.shape()), " have different style sizes");
  Tensor avg = w_avg;  // follows w to its device and dtype (w_avg is not a registered buffer)
  if (avg.device() != w.device()) avg = avg.to(w.device());
  if (avg.dtype() != w.dtype()) avg = avg.to(w.dtype());
  if (avg.dim() == 1 || (w.dim() == 3 && avg.dim() == 2 && avg.size(0) == 1)) avg = avg.reshape({1, 1, w.size(-1)});
  if (w.dim() == 2) avg = avg.reshape({1, w.size(-1)});
  return avg + (w - avg) * psi;
}

Tensor Generator::to_w_plus(const Tensor& w) const {
  if (w.dim() == 3) return w;
  GS_CHECK(w.dim() == 2 && w.size(1) == cfg_.style_dim, ShapeError, "Generator::to_w_plus: w has shape ",
           shape_str(w.shape()), " but this generator expects [N, ", cfg_.style_dim, "] or [N, ", cfg_.n_latent(), ", ",
           cfg_.style_dim, "]");
  return repeat(w.unsqueeze(1), {1, cfg_.n_latent(), 1});
}

std::pair<int64_t, int64_t> Generator::block_input(int b) const {
  GS_CHECK(b >= 1 && b <= num_layers(), IndexError, "Generator: block ", b, " is outside 1..", num_layers());
  // b = 1: conv1 at 4 px; b = 2k + 2 (up-conv convs[2k]) and b = 2k + 3 (convs[2k + 1]) read 4 * 2^k and 8 * 2^k.
  const int64_t res = b == 1 ? 4 : (b % 2 == 0 ? (int64_t(4) << ((b - 2) / 2)) : (int64_t(8) << ((b - 3) / 2)));
  return {cfg_.channels_at(res), res};
}

void Generator::check_w_plus(const Tensor& w_plus) const {
  GS_CHECK(w_plus.defined() && w_plus.dim() == 3 && w_plus.size(1) == cfg_.n_latent() &&
               w_plus.size(2) == cfg_.style_dim && w_plus.size(0) >= 1,
           ShapeError, "Generator: latents have shape ", w_plus.defined() ? shape_str(w_plus.shape()) : "undefined",
           " but this generator expects [N,", cfg_.n_latent(), ",", cfg_.style_dim, "] (", cfg_.size, " px, ",
           cfg_.n_latent(), " W+ rows)");
  const Tensor& p = input.input;
  GS_CHECK(w_plus.dtype() == p.dtype(), DTypeError, "Generator: latents are ", dtype_name(w_plus.dtype()),
           " but the generator's parameters are ", dtype_name(p.dtype()));
  GS_CHECK(w_plus.device() == p.device(), DeviceError, "Generator: latents are on ", w_plus.device().str(),
           " but the generator is on ", p.device().str());
}

std::vector<Tensor> Generator::pick_noise(const SynthesisOptions& o, int64_t batch, const Tensor& like) const {
  const int64_t n = num_layers();
  std::vector<Tensor> out(static_cast<size_t>(n));
  if (!o.noise.empty()) {
    GS_CHECK(int64_t(o.noise.size()) == n, ValueError, "Generator: ", o.noise.size(),
             " noise maps were given but this generator has ", n, " StyledConv layers");
    return o.noise;
  }
  switch (o.noise_mode) {
    case NoiseMode::Const:
      for (int64_t l = 0; l < n; ++l) out[size_t(l)] = noises.noise[size_t(l)];
      break;
    case NoiseMode::Random:
      GS_CHECK(o.rng != nullptr, ValueError, "Generator: NoiseMode::Random needs SynthesisOptions::rng");
      GS_CHECK(o.noise_global_batch == 0 || (o.noise_row_begin >= 0 && o.noise_row_begin + batch <= o.noise_global_batch),
               ValueError, "Generator: noise rows [", o.noise_row_begin, ", ", o.noise_row_begin + batch,
               ") are not inside the global batch of ", o.noise_global_batch);
      for (int64_t l = 0; l < n; ++l) {
        const int64_t r = int64_t(1) << ((l + 5) / 2);
        if (o.noise_global_batch > 0) {
          out[size_t(l)] = Tensor::randn({o.noise_global_batch, 1, r, r}, *o.rng, {.dtype = like.dtype(), .device = like.device()})
                               .narrow(0, o.noise_row_begin, batch)
                               .contiguous();
        } else {
          out[size_t(l)] = Tensor::randn({batch, 1, r, r}, *o.rng, {.dtype = like.dtype(), .device = like.device()});
        }
      }
      break;
    case NoiseMode::None:
      break;
  }
  return out;
}

Tensor Generator::forward_with_hooks(const Tensor& w_plus, const FeatureHook& hook, int stop_after,
                                     const SynthesisOptions& opts) const {
  check_w_plus(w_plus);
  const int L = int(num_layers());
  GS_CHECK(stop_after >= 0 && stop_after <= L, IndexError, "Generator::forward_with_hooks: stop_after ", stop_after,
           " is outside 0..", L);
  const int64_t batch = w_plus.size(0);
  const std::vector<Tensor> noise = pick_noise(opts, batch, w_plus);
  auto row = [&](int64_t i) { return select(w_plus, 1, i); };  // [B, style_dim]
  auto apply = [&](int b, const Tensor& x) {
    if (!hook) return x;
    Tensor y = hook(b, x);
    GS_CHECK(y.defined() && y.shape() == x.shape(), ShapeError, "Generator: the hook for block ", b, " returned ",
             y.defined() ? shape_str(y.shape()) : "an undefined tensor", " for a feature of shape ",
             shape_str(x.shape()));
    return y;
  };

  Tensor x = apply(1, input.forward(batch));  // [B, C4, 4, 4]
  x = conv1.forward(x, row(0), noise[0]);
  if (stop_after == 1) return x;
  x = apply(2, x);
  Tensor skip = to_rgb1.forward(x, row(1));  // [B, 3, 4, 4]
  for (size_t k = 0; k < to_rgbs.size(); ++k) {
    const int b = int(2 * k + 2);  // convs[2k] is StyledConv b (the up-conv), convs[2k+1] is b + 1
    x = convs[2 * k].forward(x, row(int64_t(2 * k + 1)), noise[2 * k + 1]);
    if (stop_after == b) return x;
    x = apply(b + 1, x);
    x = convs[2 * k + 1].forward(x, row(int64_t(2 * k + 2)), noise[2 * k + 2]);
    if (stop_after == b + 1) return x;
    if (b + 2 <= L) x = apply(b + 2, x);  // the ToRGB below reads the refined feature (SPEC B.1)
    skip = to_rgbs[k].forward(x, row(int64_t(2 * k + 3)), skip);
  }
  return skip;  // [B, 3, size, size]
}

Tensor Generator::synthesis(const Tensor& w_plus, const SynthesisOptions& opts) const {
  return forward_with_hooks(w_plus, FeatureHook(), 0, opts);
}

Tensor Generator::forward_z(const Tensor& z, double psi, const Tensor& truncation_latent,
                            const SynthesisOptions& opts) const {
  Tensor w = style(z);
  if (psi != 1.0) w = truncate(w, psi, truncation_latent.defined() ? truncation_latent : w_avg);
  return synthesis(to_w_plus(w), opts);
}

}  // namespace gradstyle::models::stylegan2
