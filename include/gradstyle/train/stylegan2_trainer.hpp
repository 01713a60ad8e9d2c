#pragma once
// Training a StyleGAN2 (G, D, g_ema) from scratch with the recipe of rosinality's train.py
// (non-saturating logistic loss, lazy R1 every d_reg_every steps, lazy path-length regularisation
// every g_reg_every steps, style mixing, an exponential moving average of G), scaled to small
// configurations: the toyfaces domain trains at 64 px on two CPU cores (docs/toyfaces.md).
//
//   auto cfg = train::StyleGAN2TrainConfig::parse(text);     // ValueError naming bad keys
//   train::StyleGAN2Trainer t(cfg, train::toyfaces_source(cfg.size, cfg.toyfaces_seed, 0));
//   while (t.iteration() < cfg.iterations) { auto log = t.step(); ... }
//   t.save("last.safetensors");
//
// The checkpoint is also a generator checkpoint: its entries g_ema.*, g.*, d.* and latent_avg are
// rosinality's, so Generator::from_checkpoint / Discriminator::from_checkpoint (and `gradstyle
// generate`, `gradstyle train` of GradStyle) read it as they read stylegan2-ffhq-config-f.pt.
// Beside them it holds both optimisers, the path-length mean, the RNG offsets and the iteration,
// so a stopped run resumes bit for bit.
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "gradstyle/core/rng.hpp"
#include "gradstyle/models/stylegan2.hpp"
#include "gradstyle/train/optim.hpp"
#include "gradstyle/train/trainer.hpp"

namespace gradstyle::train {

struct StyleGAN2TrainConfig {
  // ---- the networks (G and D share size and channel table) ----
  int64_t size = 64;
  int64_t style_dim = 256;
  int64_t n_mlp = 4;
  double lr_mlp = 0.01;
  std::map<int64_t, int64_t> channels;  // resolution -> channels; empty = rosinality's table

  // ---- data ----
  std::string data_source = "toyfaces";  // toyfaces (rendered on the fly) | folder
  std::string data;                      // folder of images (data_source = folder)
  uint64_t toyfaces_seed = 0;            // the renderer's stream (identities and edits)
  int64_t toyfaces_identities = 0;       // 0 = a fresh training identity for every sample
  double hflip = 0.0;                    // folder data only

  // ---- optimisation (rosinality train.py defaults) ----
  int64_t batch = 16, iterations = 20000;
  double lr = 0.002;
  double r1 = 10.0;              // R1 gamma
  int64_t d_reg_every = 16;      // 0 = no R1
  double path_regularize = 2.0;  // 0 = no path-length regularisation
  int64_t g_reg_every = 4;
  int64_t path_batch_shrink = 2;
  double mixing = 0.9;           // style-mixing probability
  double ema_kimg = 10.0;        // g_ema half-life in thousands of images
  std::string noise_mode = "random";  // random (rosinality's training) | const | none

  // ---- run bookkeeping ----
  uint64_t seed = 0;
  int64_t log_every = 10, image_every = 500, save_every = 1000, keep_last = 3;
  std::string device = "auto";

  // Parses a JSON object that may hold "stage": "stylegan2". Throws ValueError naming every
  // unknown key and every value of the wrong type or out of range.
  static StyleGAN2TrainConfig parse(const std::string& json_text);
  std::string dump(int indent = 2) const;  // every key, "stage" included, sorted
  models::stylegan2::GeneratorConfig generator_config() const;
  models::stylegan2::DiscriminatorConfig discriminator_config() const;
  // 0.5 ** (global batch / (ema_kimg * 1000)), the global batch being batch * ranks.
  double ema_decay(int64_t ranks = 1) const;
};

// Toyfaces rendered on the fly: sample `position` is training identity train_index(position)
// (or position mod `identities` when identities > 0) with the edit sample_edit(seed, position),
// at `size` (and at `loss_size` for Batch::loss). Deterministic in (seed, position) only.
std::unique_ptr<DataSource> toyfaces_source(int64_t size, int64_t loss_size, uint64_t seed, int64_t identities = 0);

class StyleGAN2Trainer {
 public:
  // Data parallel with pg of size N > 1 (see train::Trainer): cfg.batch is one rank's batch; the
  // latents, noise and data are those of the global batch's rows of this rank; D's minibatch
  // deviation sees the global batch; mean terms are scaled by 1/N and the gradients summed; the
  // path-length mean is global and g_ema decays for the global batch. Needs batch divisible by
  // path_batch_shrink when the path penalty is on.
  StyleGAN2Trainer(StyleGAN2TrainConfig cfg, std::unique_ptr<DataSource> data, Device device = Device::cpu(),
                   dist::ProcessGroup* pg = nullptr);

  // One iteration: D step (+ R1 when due), G step (+ path length when due), EMA update.
  // Terms: d_loss, real_score, fake_score, g_loss, and r1, path, path_length when computed.
  StepLog step();
  int64_t iteration() const { return iteration_; }

  void save(const std::string& path) const;  // crash-safe (temp file, fsync, rename)
  void load(const std::string& path);        // ValueError when the configuration differs
  std::vector<uint8_t> serialize() const;
  void deserialize(const std::vector<uint8_t>& bytes, const std::string& name);
  std::vector<std::pair<std::string, Tensor>> replicated_state() const;  // G, g_ema, D, both optimisers
  std::vector<std::pair<std::string, Tensor>> frozen_state() const { return {}; }  // nothing is frozen
  double last_reduce_seconds() const { return reduce_seconds_; }

  models::stylegan2::Generator& G() { return *g_; }
  models::stylegan2::Generator& G_ema() { return *g_ema_; }
  models::stylegan2::Discriminator& D() { return *d_; }
  const StyleGAN2TrainConfig& config() const { return cfg_; }
  const DataSource& data() const { return *data_; }

  // g_ema's images for the fixed sample latents (seed-determined), [n, 3, size, size].
  Tensor samples(int64_t n = 16) const;

 private:
  // W+ for `batch` rows of this rank (the latents of the global batch of batch * N drawn).
  std::vector<Tensor> mixing_w_plus(int64_t batch);
  models::stylegan2::SynthesisOptions noise_options(int64_t batch);
  void d_step(const Tensor& real, StepLog& log);
  void g_step(StepLog& log);
  void accumulate();

  StyleGAN2TrainConfig cfg_;
  std::unique_ptr<DataSource> data_;
  std::unique_ptr<models::stylegan2::Generator> g_, g_ema_;
  std::unique_ptr<models::stylegan2::Discriminator> d_;
  std::unique_ptr<Adam> g_opt_, d_opt_;
  Generator rng_data_, rng_latent_, rng_noise_;
  double mean_path_length_ = 0;
  int64_t iteration_ = 0;
  dist::ProcessGroup* pg_ = nullptr;  // null: one process
  double reduce_seconds_ = 0;
  int64_t ranks() const { return pg_ ? pg_->size() : 1; }
  int64_t rank() const { return pg_ ? pg_->rank() : 0; }
};

}  // namespace gradstyle::train
