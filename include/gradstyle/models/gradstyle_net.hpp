#pragma once
// The GradStyle network (SPEC.md B.6): K stages, one per refined block b_m, each holding a GRM_m,
// an Aligner (GAM_m) and the Gate&Fusion W_g they share, wired into a frozen StyleGAN2 generator
// through Generator::forward_with_hooks (the hook before StyledConv b_m replaces the feature).
//
//   GradStyleNet net(cfg, G.config());                     // widths from the generator (B.1)
//   auto inv = net.invert(E, G, x);                        // e4e codes and maps, then X^r
//   auto ed = net.edit_stream(G, w_hat, inv.rec.F);        // X^e with the aligned F'_m
//
// Streams (B.6, B.7):
//   reconstruction: f -> F_m = GRM_m(T_m, f); g_m = gate_m(f, F_m); f~ = f + g_m * F_m
//   editing:        f -> F'_m = Aligner_m(stopgrad(F_hat_m), f); g = gate_m(f, F'_m) (with detached
//                   gate parameters unless update_gate); f~ = f + g * F'_m
// Both use the generator's stored noise unless SynthesisOptions say otherwise (B.6 needs const).
//
// Checkpoint: a safetensors file holding this network only, keys grm.<m>.*, gam.<m>.*, gate.<m>.*
// (m = 0..K-1 in refined_blocks order; BatchNorm running statistics included), metadata
// "gradstyle_config" (the JSON of GradStyleConfig), "gradstyle_stages" ([[b, C, R], ...]) and
// "format" = "gradstyle-net". The frozen parts (G, e4e) are NOT embedded: they are the users'
// original checkpoints (hundreds of MB each, never modified by training), so the file references
// them by path in "generator_checkpoint" / "encoder_checkpoint" when given, and stays a few
// hundred MB smaller than an embedded copy would be.
#include <memory>
#include <string>
#include <vector>

#include "gradstyle/models/e4e.hpp"
#include "gradstyle/models/gam.hpp"
#include "gradstyle/models/gradstyle_config.hpp"
#include "gradstyle/models/grm.hpp"
#include "gradstyle/models/stylegan2.hpp"

namespace gradstyle::models::gsnet {

// The e4e maps T is drawn from (B.2): c3 [B, Ct, 16, 16], p2 [B, Ct, 32, 32], p1 [B, Ct, 64, 64] at
// 256 px input (other sizes allowed).
struct EncoderFeatures {
  Tensor c3, p2, p1;
};

struct ReconstructResult {
  Tensor image;           // X^r [B, 3, size, size]
  std::vector<Tensor> f;  // f_m^rec entering StyledConv b_m, before refinement [B, C_m, R_m, R_m]
  std::vector<Tensor> F;  // F_m [B, C_m, R_m, R_m]
  std::vector<Tensor> g;  // g_m [B, Cg_m, R_m, R_m]
};

struct EditResult {
  Tensor image;            // X^e
  std::vector<Tensor> f;   // f_m^edi entering StyledConv b_m
  std::vector<Tensor> Fp;  // F'_m (aligned)
  std::vector<Tensor> g;   // gate values of the editing stream
};

struct InvertResult {
  Tensor w;                  // W+ [B, n_latent, style_dim], latent_avg included
  EncoderFeatures features;  // the e4e maps
  std::vector<Tensor> T;     // T_m per stage (resized)
  ReconstructResult rec;
};

struct CheckpointRefs {
  std::string generator_checkpoint;  // path of the frozen generator's checkpoint ("" = not recorded)
  std::string encoder_checkpoint;    // path of the frozen e4e checkpoint
};

class GradStyleNet : public nn::Module {
 public:
  using Stage = GradStyleConfig::Stage;
  // Widths from a generator configuration (cfg.stages(g)); ValueError naming the bad key.
  GradStyleNet(const GradStyleConfig& cfg, const stylegan2::GeneratorConfig& g);
  // Widths given explicitly (what load() uses).
  GradStyleNet(const GradStyleConfig& cfg, const std::vector<Stage>& stages);

 private:
  GradStyleConfig cfg_;
  std::vector<Stage> stages_;
  int64_t active_ = -1;  // -1 = all stages

 public:
  nn::ModuleList<GRM> grm;
  nn::ModuleList<Aligner> gam;
  nn::ModuleList<GateFusion> gate;

  const GradStyleConfig& config() const { return cfg_; }
  const std::vector<Stage>& stages() const { return stages_; }
  int64_t num_modules() const { return int64_t(stages_.size()); }
  // Only the first k stages refine; later ones pass the generator's feature through (their F, g
  // entries stay undefined). Progressive training (SPEC A.6) and contribution measurements use it;
  // the default (and k = num_modules()) runs every stage. Not saved in checkpoints. ValueError for
  // k outside [0, num_modules()].
  void set_active_stages(int64_t k);
  int64_t active_stages() const { return active_ < 0 ? num_modules() : active_; }

  // e4e group of code b (B.2): 0 = c3 (codes 1-3), 1 = p2 (4-7), 2 = p1 (8 and up).
  static int code_group(int b);
  // T for block b at resolution R: the group's map, halved by 2x2 average pooling while it is an
  // exact power-of-two multiple of R, bilinear (align_corners = false) otherwise (smaller maps, or
  // sizes that are no power-of-two multiple), unchanged when equal. A constant: no gradient.
  static Tensor select_t(int b, const Tensor& c3, const Tensor& p2, const Tensor& p1, int64_t R);
  std::vector<Tensor> select_all(const EncoderFeatures& feats) const;

  // Reconstruction stream. w_plus [B, n_latent, style_dim]; T per stage [B, t_channels, R_m, R_m]
  // or the three e4e maps. ShapeError / ValueError when G's widths differ from the stages.
  ReconstructResult reconstruct(const stylegan2::Generator& G, const Tensor& w_plus, const std::vector<Tensor>& T,
                                const stylegan2::SynthesisOptions& opts = {});
  ReconstructResult reconstruct(const stylegan2::Generator& G, const Tensor& w_plus, const EncoderFeatures& feats,
                                const stylegan2::SynthesisOptions& opts = {});
  // Editing stream with the (warped, at training time) refinements F_hat [B, C_m, R_m, R_m]; they
  // are detached at the Aligner input. update_gate = edit_stream_updates_gate.
  EditResult edit_stream(const stylegan2::Generator& G, const Tensor& w_hat, const std::vector<Tensor>& F_hat,
                         bool update_gate = false, const stylegan2::SynthesisOptions& opts = {}) const;

  // e4e (without gradient: E0 is frozen) then the reconstruction stream. x [B, 3, S, S] in [-1, 1].
  InvertResult invert(e4e::Encoder4Editing& E, const stylegan2::Generator& G, const Tensor& x);
  // invert, then w_hat = w + alpha * direction (InterFaceGAN, editing.hpp) through the editing stream
  // with the inversion's F_m.
  struct EditOutput {
    InvertResult inversion;
    Tensor w_hat;
    EditResult edit;
  };
  EditOutput edit(e4e::Encoder4Editing& E, const stylegan2::Generator& G, const Tensor& x, const Tensor& direction,
                  double alpha);

  // Checks that G provides the features the stages expect. ValueError naming block and widths.
  void check_generator(const stylegan2::Generator& G) const;

  // Checkpoint (layout in the header comment). save is crash-safe (temp + fsync + rename).
  void save(const std::string& path, const CheckpointRefs& refs = {});
  // Builds the network a checkpoint describes and loads it strictly. FormatError for a file that is
  // not a GradStyle checkpoint (metadata missing or malformed), ShapeError naming every missing,
  // unexpected or misshapen key.
  static std::unique_ptr<GradStyleNet> load(const std::string& path, CheckpointRefs* refs = nullptr,
                                            Device device = Device::cpu());
  // Loads a checkpoint into this network; ValueError when its configuration or stages differ.
  void load_weights(const std::string& path);
};

}  // namespace gradstyle::models::gsnet
