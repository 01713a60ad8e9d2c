#pragma once
// StyleGAN2 generator and discriminator in the layout of rosinality/stylegan2-pytorch model.py
// (SPEC.md C.1, C.2): state_dict keys and shapes are exactly rosinality's, so its checkpoints
// (stylegan2-ffhq-config-f.pt: g_ema, latent_avg, d) load strictly, key for key.
//
//   auto G = stylegan2::Generator::from_checkpoint("stylegan2-ffhq-config-f.pt");
//   Tensor w = G->style(z);                                   // z [B, 512] -> w [B, 512]
//   Tensor wp = G->to_w_plus(G->truncate(w, 0.7, G->w_avg)); // [B, 18, 512]
//   Tensor img = G->synthesis(wp);                           // [B, 3, 1024, 1024], about [-1, 1]
//
// Any resolution from 8 up (a power of two), any style_dim, mapping depth and channel table, so
// tiny configurations exist for tests. Block numbering (SPEC B.1): the StyledConv layers are
// numbered b = 1..num_layers() in forward order; conv1 is 1, convs[j] is j + 2; StyledConv b uses
// W+ row b - 1; to_rgb1 uses row 1 and to_rgbs[k] row 2k + 3.
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "gradstyle/core/rng.hpp"
#include "gradstyle/nn/layers.hpp"

namespace gradstyle::models::stylegan2 {

// ---- configuration -------------------------------------------------------------------------------

// rosinality's channel table: resolution -> channels, 512 (channel_base) up to 32 px, then
// channel_base * channel_multiplier * 32 / res (1024 px, multiplier 2: 512 ... 512, 256, 128, 64, 32).
std::map<int64_t, int64_t> default_channels(int64_t size, int64_t channel_multiplier = 2, int64_t channel_base = 512);

struct GeneratorConfig {
  int64_t size = 1024;  // output resolution, a power of two >= 8
  int64_t style_dim = 512;
  int64_t n_mlp = 8;  // EqualLinear layers of the mapping network
  int64_t channel_multiplier = 2;
  int64_t channel_base = 512;
  double lr_mlp = 0.01;
  std::vector<float> blur_kernel{1, 3, 3, 1};
  // resolution -> channels for 4, 8, ..., size; empty = default_channels(size, multiplier, base).
  std::map<int64_t, int64_t> channels;

  int64_t log_size() const;                                        // log2(size)
  int64_t num_layers() const { return (log_size() - 2) * 2 + 1; }  // StyledConvs = noise buffers
  int64_t n_latent() const { return log_size() * 2 - 2; }          // W+ rows
  int64_t channels_at(int64_t res) const;
  std::string str() const;  // "1024 px, style_dim 512, n_mlp 8, channels {...}"
  void validate() const;    // ValueError naming the bad field
};

struct DiscriminatorConfig {
  int64_t size = 1024;
  int64_t channel_multiplier = 2;
  int64_t channel_base = 512;
  std::vector<float> blur_kernel{1, 3, 3, 1};
  std::map<int64_t, int64_t> channels;  // empty = default_channels(size, multiplier, base)
  int64_t stddev_group = 4;
  int64_t stddev_feat = 1;

  int64_t log_size() const;
  int64_t channels_at(int64_t res) const;
  std::string str() const;
  void validate() const;
};

// ---- generator building blocks ----------------------------------------------------------------------

// ModulatedConv2d(in, out, k, style_dim, demodulate, upsample). Parameters: "weight"
// [1, out, in, k, k] (randn), "modulation" = EqualLinear(style_dim, in, bias_init 1); upsampling
// layers also hold "blur" (Blur with kernel * 4, pad (1, 1)).
// forward(x [B, in, H, W], w [B, style_dim]) -> [B, out, H, W] (2H, 2W when upsampling).
// Computed in the composed form (scale the input by the style, convolve with the shared weight,
// multiply by the demodulation coefficients), which is mathematically rosinality's grouped conv.
class ModulatedConv2d : public nn::Module {
 public:
  Tensor weight;
  nn::EqualLinear modulation;
  std::shared_ptr<nn::Blur> blur;  // only when upsampling
  ModulatedConv2d(int64_t in_channels, int64_t out_channels, int64_t kernel_size, int64_t style_dim, bool demodulate,
                  bool upsample, const std::vector<float>& blur_kernel, gradstyle::Generator* gen = nullptr);
  Tensor forward(const Tensor& x, const Tensor& w) const;
  // forward followed by `+ noise_weight * noise` (noise [B or 1, 1, H', W'] or undefined), `+ bias`
  // ([out] or undefined) and, with lrelu, leaky ReLU 0.2 * sqrt(2): StyledConv and ToRGB in one call.
  // With the [1, 3, 3, 1] blur this is gradstyle::modulated_conv2d (ops/modulated_conv.hpp) with
  // its fused epilogue; other blur kernels use the composed ops.
  Tensor forward_fused(const Tensor& x, const Tensor& w, const Tensor& noise, const Tensor& noise_weight,
                       const Tensor& bias, bool lrelu) const;
  int64_t in_channels() const { return in_; }
  int64_t out_channels() const { return out_; }
  bool upsample() const { return upsample_; }

 private:
  int64_t in_, out_, k_;
  bool demodulate_, upsample_, standard_blur_ = true;
  double scale_;
  void check_inputs(const Tensor& x, const Tensor& w) const;
};

// NoiseInjection: x + weight * noise; "weight" [1] (zeros); noise [B or 1, 1, H, W].
class NoiseInjection : public nn::Module {
 public:
  Tensor weight;
  NoiseInjection();
  Tensor forward(const Tensor& x, const Tensor& noise) const;
};

// StyledConv = ModulatedConv2d (demodulated) -> NoiseInjection ("noise") -> FusedLeakyReLU ("activate").
class StyledConv : public nn::Module {
 public:
  ModulatedConv2d conv;
  NoiseInjection noise;
  nn::FusedLeakyReLU activate;
  StyledConv(int64_t in_channels, int64_t out_channels, int64_t kernel_size, int64_t style_dim, bool upsample,
             const std::vector<float>& blur_kernel, gradstyle::Generator* gen = nullptr);
  // x [B, in, H, W], w [B, style_dim], noise [B or 1, 1, H', W'] at the output size or undefined
  // (no noise) -> [B, out, H', W'].
  Tensor forward(const Tensor& x, const Tensor& w, const Tensor& noise) const;
};

// ToRGB(in): ModulatedConv2d(in, 3, 1, no demodulation) + "bias" [1, 3, 1, 1], plus the skip
// upsampled by "upsample" (Upsample(blur_kernel), upfirdn2d up 2) when upsample is set.
class ToRGB : public nn::Module {
 public:
  std::shared_ptr<nn::Upsample> upsample;  // registered first, like rosinality
  ModulatedConv2d conv;
  Tensor bias;
  ToRGB(int64_t in_channels, int64_t style_dim, bool has_upsample, const std::vector<float>& blur_kernel,
        gradstyle::Generator* gen = nullptr);
  // x [B, in, H, W], w [B, style_dim], skip [B, 3, H/2, W/2] or undefined -> [B, 3, H, W].
  Tensor forward(const Tensor& x, const Tensor& w, const Tensor& skip = Tensor()) const;
};

// ConstantInput: parameter "input" [1, C, 4, 4] (randn), repeated over the batch.
class ConstantInput : public nn::Module {
 public:
  Tensor input;
  ConstantInput(int64_t channels, int64_t size = 4, gradstyle::Generator* gen = nullptr);
  Tensor forward(int64_t batch) const;  // -> [batch, C, 4, 4]
};

// The stored noise maps: buffers "noise_0" ... "noise_{L-1}", noise l of shape [1, 1, r, r] with
// r = 2^((l + 5) / 2) (4, 8, 8, 16, 16, ...), drawn N(0, 1) at construction.
class NoiseBuffers : public nn::Module {
 public:
  std::vector<Tensor> noise;
  NoiseBuffers(int64_t num_layers, gradstyle::Generator* gen = nullptr);
};

// ---- generator -------------------------------------------------------------------------------------

enum class NoiseMode {
  Const,   // the stored buffers noises.noise_{l} (rosinality randomize_noise=False; NVIDIA 'const')
  Random,  // fresh N(0, 1) noise from SynthesisOptions::rng (NVIDIA 'random')
  None,    // no noise (NVIDIA 'none')
};

struct SynthesisOptions {
  NoiseMode noise_mode = NoiseMode::Const;
  gradstyle::Generator* rng = nullptr;  // required for NoiseMode::Random
  // Explicit noise maps (rosinality's noise=[...]): num_layers() tensors [B or 1, 1, r, r]; when
  // given they override noise_mode.
  std::vector<Tensor> noise;
  // Data parallel, NoiseMode::Random: each layer's noise is drawn for a global batch of
  // noise_global_batch samples and rows [noise_row_begin, noise_row_begin + B) are kept, so the
  // ranks' images are those of one process with the global batch (0: the batch itself).
  int64_t noise_global_batch = 0, noise_row_begin = 0;
};

// Called with the feature map entering StyledConv b (1-based, SPEC B.1) and returning the tensor
// that replaces the generator state (same shape). For even b the ToRGB of that resolution, which
// runs between StyledConv b-1 and b, reads the returned tensor. Return the argument unchanged to
// observe only.
using FeatureHook = std::function<Tensor(int b, const Tensor& feature)>;

class Generator : public nn::Module {
 public:
  explicit Generator(const GeneratorConfig& cfg, gradstyle::Generator* init_rng = nullptr);

  // Children, in rosinality's registration order (constructed from config(), so cfg_ comes first).
 private:
  GeneratorConfig cfg_;

 public:
  nn::ModuleList<nn::EqualLinear> style_layers{1};  // keys style.1 ... style.n_mlp (style.0 is PixelNorm)
  ConstantInput input;                              // key input.input [1, C4, 4, 4]
  StyledConv conv1;
  ToRGB to_rgb1;
  nn::ModuleList<StyledConv> convs;
  nn::ModuleList<ToRGB> to_rgbs;
  NoiseBuffers noises;  // keys noises.noise_{l} [1, 1, r, r]
  // The average w when known ([1, style_dim]): latent_avg from the checkpoint, else undefined
  // (compute one with mean_latent). Not part of state_dict (rosinality stores it beside g_ema).
  Tensor w_avg;

  const GeneratorConfig& config() const { return cfg_; }
  int64_t num_layers() const { return cfg_.num_layers(); }
  int64_t n_latent() const { return cfg_.n_latent(); }

  // Mapping network: z [B, style_dim] -> w [B, style_dim] (PixelNorm, then n_mlp EqualLinear
  // with lr_mul = lr_mlp and fused leaky ReLU).
  Tensor style(const Tensor& z) const;
  // mean(style(randn(n, style_dim))) -> [1, style_dim]; draws z from rng (rosinality's
  // mean_latent uses torch's RNG, so the numbers differ from PyTorch's; the statistic is the same).
  Tensor mean_latent(int64_t n, gradstyle::Generator& rng) const;
  // w_avg + psi * (w - w_avg); w [B, style_dim] or [B, n_latent, style_dim], w_avg [1, style_dim]
  // or [style_dim]. psi == 1 returns w unchanged.
  static Tensor truncate(const Tensor& w, double psi, const Tensor& w_avg);
  // w [B, style_dim] -> [B, n_latent, style_dim] (the same row everywhere); W+ passes through.
  Tensor to_w_plus(const Tensor& w) const;

  // Synthesis from W+ [B, n_latent, style_dim] (same dtype and device as the parameters) ->
  // image [B, 3, size, size] (not clamped). ShapeError names the expected W+ shape.
  Tensor synthesis(const Tensor& w_plus, const SynthesisOptions& opts = {}) const;
  // Same, with the hook applied to the feature entering every StyledConv b (a null hook does
  // nothing). stop_after in [1, num_layers()]: return the output of StyledConv stop_after (before
  // any hook of block stop_after + 1) instead of the image; 0 = run to the image.
  Tensor forward_with_hooks(const Tensor& w_plus, const FeatureHook& hook, int stop_after = 0,
                            const SynthesisOptions& opts = {}) const;
  // z [B, style_dim] -> image: style, truncation towards truncation_latent (w_avg when undefined;
  // required when psi < 1), broadcast to W+, synthesis.
  Tensor forward_z(const Tensor& z, double psi = 1.0, const Tensor& truncation_latent = Tensor(),
                   const SynthesisOptions& opts = {}) const;

  // Feature shape entering StyledConv b: {channels, resolution}.
  std::pair<int64_t, int64_t> block_input(int b) const;

  // Builds the generator described by a rosinality checkpoint and loads it strictly.
  // The state dict is the entry `key` ("g_ema"; "g" also works) of a .pt/.safetensors file, or the
  // top level when the file is a bare generator state dict. Size, style_dim, n_mlp and the channel
  // table are read from the key shapes; latent_avg, when present, becomes w_avg. Blur kernels in
  // the file are checked against the recomputed ones. Files without noises.* (an older model.py)
  // get noise buffers drawn from Philox seed 0 and noise_generated() is true. The generator comes
  // back in eval mode with its parameters frozen (requires_grad_(true) to fine-tune it);
  // gradients with respect to the latents flow as usual.
  // Throws IOError/FormatError (unreadable, not a checkpoint, no generator in it) and ShapeError
  // naming every missing, unexpected or misshapen key.
  struct LoadOptions {
    std::string key = "g_ema";
    double lr_mlp = 0.01;  // not stored in checkpoints; rosinality always uses 0.01
    Device device = Device::cpu();
  };
  static std::unique_ptr<Generator> from_checkpoint(const std::string& path, const LoadOptions& opts);
  static std::unique_ptr<Generator> from_checkpoint(const std::string& path) {
    return from_checkpoint(path, LoadOptions{});
  }
  // The same from tensors already in memory (keys of the generator state dict; "latent_avg"
  // optional); `name` is used in messages.
  static std::unique_ptr<Generator> from_state_dict(const nn::StateDict& sd, const std::string& name,
                                                    const LoadOptions& opts);
  static GeneratorConfig infer_config(const nn::StateDict& sd, const std::string& name, double lr_mlp = 0.01);
  bool noise_generated() const { return noise_generated_; }

 private:
  bool noise_generated_ = false;
  std::vector<Tensor> pick_noise(const SynthesisOptions& opts, int64_t batch, const Tensor& like) const;
  void check_w_plus(const Tensor& w_plus) const;
};

// ---- discriminator ---------------------------------------------------------------------------------

class Discriminator : public nn::Module {
 public:
  explicit Discriminator(const DiscriminatorConfig& cfg, gradstyle::Generator* init_rng = nullptr);

 private:
  DiscriminatorConfig cfg_;  // first: the members below are built from it

 public:
  nn::ModuleList<nn::Module> convs;              // "0": ConvLayer(3, C[size], 1); "1".."log2(size)-2": ResBlocks
  nn::ConvLayer final_conv;                      // ConvLayer(C4 + stddev_feat, C4, 3)
  nn::ModuleList<nn::EqualLinear> final_linear;  // EqualLinear(C4*16, C4, lrelu), EqualLinear(C4, 1)

  const DiscriminatorConfig& config() const { return cfg_; }
  // x [B, 3, size, size] -> score [B, 1]. B must be divisible by min(B, stddev_group).
  Tensor forward(const Tensor& x) const;

  // Builds the discriminator of a rosinality checkpoint (entry `key`, "d"); size and channel table
  // from the key shapes; strict loading. FormatError when the file has no discriminator (the
  // message lists the entries it has).
  struct LoadOptions {
    std::string key = "d";
    Device device = Device::cpu();
  };
  static std::unique_ptr<Discriminator> from_checkpoint(const std::string& path, const LoadOptions& opts);
  static std::unique_ptr<Discriminator> from_checkpoint(const std::string& path) {
    return from_checkpoint(path, LoadOptions{});
  }
  static std::unique_ptr<Discriminator> from_state_dict(const nn::StateDict& sd, const std::string& name,
                                                        const LoadOptions& opts);
  static DiscriminatorConfig infer_config(const nn::StateDict& sd, const std::string& name);

 private:
  std::shared_ptr<nn::ConvLayer> from_rgb_;
  std::vector<std::shared_ptr<nn::ResBlock>> blocks_;
};

// What a checkpoint file holds at the top level, for messages ("g_ema, latent_avg, d").
std::string describe_entries(const nn::StateDict& all);

}  // namespace gradstyle::models::stylegan2
