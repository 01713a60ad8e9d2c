#pragma once
// The e4e encoder (omertov/encoder4editing models/encoders/psp_encoders.py Encoder4Editing, SPEC.md
// C.4): an IR-SE trunk, a two-level FPN and one GradualStyleBlock ("map2style") head per W+ row.
//
//   auto E = e4e::Encoder4Editing::from_checkpoint("e4e_ffhq_encode.pt");  // eval mode, frozen
//   auto out = E->forward(x);        // x [B, 3, 256, 256] in [-1, 1] (other square sizes are resized)
//   out.w_plus;                      // [B, 18, 512], latent_avg included
//   out.c3; out.p2; out.p1;          // [B, 512, 16|32|64, 16|32|64]: GradStyle's T_m sources (SPEC B.2)
//
// Forward (SPEC C.4): c1, c2, c3 = outputs of trunk stages 2, 3, 4 (units 6, 20, 23 of IR-SE50);
// p2 = up(c3) + latlayer1(c2); p1 = up(p2) + latlayer2(c1), `up` bilinear with align_corners =
// true; w_i = styles[0](c3) + styles[i](f_i) for i >= 1 (only for i <= progressive stage), with f
// = c3 for heads 0..2, p2 for 3..6, p1 for 7..; w_plus = w + latent_avg when
// start_from_latent_avg (pSp.forward).
//
// Keys (the `encoder.` entries of e4e_ffhq_encode.pt): input_layer.*, body.* (irse.hpp),
// styles.{i}.convs.{0,2,4,...}.{weight,bias}, styles.{i}.linear.{weight,bias},
// latlayer1.{weight,bias}, latlayer2.{weight,bias}.
//
// Differentiable (to second order) in the input and every parameter, float32/float64, CPU/CUDA.
#include <memory>
#include <string>
#include <vector>

#include "gradstyle/models/irse.hpp"
#include "gradstyle/nn/layers.hpp"

namespace gradstyle::models::e4e {

struct E4EConfig {
  irse::IRSEConfig trunk;   // IR-SE50; exactly 4 stages; the last width is the style width
  int64_t n_styles = 18;    // W+ rows = 2 log2(stylegan_size) - 2
  int64_t input_size = 256; // heads reach 1x1 from input/16 (coarse), /8 (middle), /4 (fine)

  // e4e's group boundaries (coarse_ind, middle_ind): heads 0..2 read c3, 3..6 p2, 7.. p1.
  static constexpr int64_t kCoarseEnd = 3, kMiddleEnd = 7;

  int64_t style_dim() const { return trunk.channels.back(); }
  // Spatial size of the map head i reads (input/16, input/8 or input/4).
  int64_t head_spatial(int64_t i) const;
  // 2 log2(size) - 2 (18 for 1024); ValueError unless size is a power of two >= 4.
  static int64_t n_styles_for(int64_t stylegan_size);
  // ValueError naming the bad field (not 4 stages, n_styles < 1, input_size not 16 * 2^k).
  void validate() const;
  std::string str() const;
};

// GradualStyleBlock(C, C, spatial): log2(spatial) x [Conv3x3 stride 2 pad 1 (bias) ->
// LeakyReLU(0.01)] (keys convs.0, convs.2, ...: the activations sit at the odd indices), flatten,
// EqualLinear(C, C, lr_mul 1) without activation. x [B, C, spatial, spatial] -> [B, C].
class GradualStyleBlock : public nn::Module {
 public:
  GradualStyleBlock(int64_t channels, int64_t spatial, ParamInit init = ParamInit::Random);

  struct Convs : nn::Module {
    std::vector<std::shared_ptr<Conv2d>> layers;
    Convs(int64_t channels, int64_t n, ParamInit init);
  };
  Convs convs;
  EqualLinear linear;

  Tensor forward(const Tensor& x) const;
  int64_t spatial() const { return spatial_; }

 private:
  int64_t channels_, spatial_;
};

// The hierarchical features and the codes of one forward.
struct E4EOutput {
  Tensor w_plus;  // [B, n_styles, D]: codes + latent_avg (codes alone when start_from_latent_avg is off)
  Tensor codes;   // [B, n_styles, D]: the encoder's own output (before latent_avg)
  Tensor c1, c2, c3;  // trunk stages 2, 3, 4: [B, 128, 64, 64], [B, 256, 32, 32], [B, 512, 16, 16]
  Tensor p2, p1;      // FPN: [B, 512, 32, 32], [B, 512, 64, 64]
};

class Encoder4Editing : public irse::IRSETrunk {
 public:
  // init: see encoder_layers.hpp (the loaders build with ParamInit::Deferred).
  explicit Encoder4Editing(const E4EConfig& cfg, ParamInit init = ParamInit::Random);

 private:
  E4EConfig cfg_;  // first: the members below are built from it

 public:
  nn::ModuleList<GradualStyleBlock> styles;
  Conv2d latlayer1, latlayer2;  // 1x1 convs with bias: c2 -> D, c1 -> D
  // [n_styles, D], added to the codes when start_from_latent_avg. A non-persistent buffer: it
  // moves with to(device) but is not one of the encoder's keys (the file keeps it at the top level).
  Tensor latent_avg;
  bool start_from_latent_avg = true;

  const E4EConfig& config() const { return cfg_; }
  int64_t n_styles() const { return cfg_.n_styles; }

  // x [B, 3, S, S] (float, [-1, 1]) -> codes and features. Inputs of another square size are first
  // resized to input_size: an area average when S is a multiple of input_size (what pSp's
  // AdaptiveAvgPool2d does for 1024 -> 256), bilinear (align_corners = false) otherwise. For images
  // read from disk use the PIL-exact resize of io (FORMATS.md §9.3) before calling this.
  // Throws ShapeError for a non-square input (crop or align the face first, FORMATS.md §10) or a
  // channel count other than 3.
  E4EOutput forward(const Tensor& x);
  // The resizing step of forward alone.
  Tensor prepare_input(const Tensor& x) const;

  // e4e's progressive training stage: only deltas 1..stage are added (stage >= n_styles - 1 is
  // inference, the default). ValueError for stage < 0.
  void set_progressive_stage(int64_t stage);
  int64_t progressive_stage() const { return stage_; }

  // Checks that this encoder's codes fit a generator (W+ rows, style width); ValueError otherwise,
  // naming both (e4e#27/#56: a wrong stylegan_size).
  void check_generator(int64_t n_latent, int64_t style_dim) const;

  // Builds the encoder of an e4e checkpoint and loads it strictly. The file is e4e_ffhq_encode.pt
  // ({state_dict with encoder./decoder. prefixes, opts, latent_avg}; HFGI's ckpt.pt has the same
  // encoder entries) or a bare encoder state dict (.pt, safetensors, .npz). Depth, widths, the
  // number of heads and the input size are read from the key shapes; opts.stylegan_size,
  // opts.encoder_type, opts.start_from_latent_avg and opts.learn_in_w are read and checked against
  // them. latent_avg comes from the file ([n_styles, D], or [D] repeated) unless LoadOptions gives
  // one. The encoder comes back in eval mode with its parameters frozen.
  // Throws IOError/FormatError (unreadable, no encoder, a pSp GradualStyleEncoder or learn_in_w
  // model, opts contradicting the keys, latent_avg required but absent or misshapen) and
  // ShapeError naming every missing, unexpected or misshapen key.
  struct LoadOptions {
    Device device = Device::cpu();
    Tensor latent_avg;  // overrides the file's ([n_styles, D] or [D])
  };
  static std::unique_ptr<Encoder4Editing> from_checkpoint(const std::string& path, const LoadOptions& opts);
  static std::unique_ptr<Encoder4Editing> from_checkpoint(const std::string& path) {
    return from_checkpoint(path, LoadOptions{});
  }
  // From the encoder's own keys (no "encoder." prefix); `latent_avg` may be undefined when
  // start_from_latent_avg is false.
  static std::unique_ptr<Encoder4Editing> from_state_dict(const nn::StateDict& sd, const Tensor& latent_avg,
                                                          bool start_from_latent_avg, const std::string& name,
                                                          const LoadOptions& opts);
  static E4EConfig infer_config(const nn::StateDict& sd, const std::string& name);

 private:
  int64_t stage_;
};

}  // namespace gradstyle::models::e4e
