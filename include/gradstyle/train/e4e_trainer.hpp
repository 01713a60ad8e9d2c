#pragma once
// Training an e4e encoder against a frozen StyleGAN2 generator (omertov/encoder4editing's coach,
// scaled down): x -> E(x) = W+ -> G(W+) = x_hat with
//   L = lambda_l2 * mse(x_hat, x) + lambda_delta * sum_{i=1..stage} mean_b ||w_i - w_0||_2
//     (+ lambda_latent * mse(E(G(w)), w) on synthetic pairs, our addition: see docs/toyfaces.md)
// and e4e's progressive training: the encoder starts at stage 0 (one w for every row) and adds one
// delta every `progressive_step` iterations after `progressive_start`. Not implemented from e4e:
// the latent discriminator (lambda 0 here), LPIPS and the ID loss (no VGG or ArcFace in the
// toyfaces domain).
//
//   auto cfg = train::E4ETrainConfig::parse(text);
//   train::E4ETrainer t(cfg, std::move(G), train::toyfaces_source(64, 64, seed));
//   while (t.iteration() < cfg.iterations) t.step();
//   t.save("e4e.safetensors");   // encoder.* + latent_avg: Encoder4Editing::from_checkpoint reads it
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gradstyle/core/rng.hpp"
#include "gradstyle/models/e4e.hpp"
#include "gradstyle/models/stylegan2.hpp"
#include "gradstyle/train/optim.hpp"
#include "gradstyle/train/trainer.hpp"

namespace gradstyle::train {

struct E4ETrainConfig {
  std::string generator;  // StyleGAN2 checkpoint (g_ema, latent_avg), e.g. a stylegan2-stage last.safetensors
  // The encoder: IR-SE trunk (4 stages; the last width must be G's style_dim) at G's resolution.
  std::vector<int64_t> trunk_blocks{1, 2, 2, 1};
  std::vector<int64_t> trunk_channels{16, 32, 64, 128};
  bool trunk_se = true;

  std::string data_source = "toyfaces";  // toyfaces | folder
  std::string data;
  uint64_t toyfaces_seed = 0;
  int64_t toyfaces_identities = 0;
  double hflip = 0.0;

  double lambda_l2 = 1.0, lambda_delta = 2e-4, lambda_latent = 0.0;
  std::string optimizer = "ranger";  // ranger | adam
  double lr = 1e-3;
  int64_t batch = 8, iterations = 3000;
  int64_t progressive_start = 1000, progressive_step = 100;  // progressive_step 0 = all deltas from the start

  uint64_t seed = 0;
  int64_t log_every = 10, image_every = 250, save_every = 250, keep_last = 2;
  std::string device = "auto";

  static E4ETrainConfig parse(const std::string& json_text);  // accepts "stage": "e4e"
  std::string dump(int indent = 2) const;
  // The progressive stage at a given iteration (n_styles - 1 = every delta).
  int64_t stage_at(int64_t iteration, int64_t n_styles) const;
};

class E4ETrainer {
 public:
  // Data parallel with pg of size N > 1 (see train::Trainer): cfg.batch is one rank's batch, the
  // encoder's BatchNorm sees the global batch, mean terms are scaled by 1/N, gradients summed.
  E4ETrainer(E4ETrainConfig cfg, std::unique_ptr<models::stylegan2::Generator> G, std::unique_ptr<DataSource> data,
             dist::ProcessGroup* pg = nullptr);
  // Terms: l2, delta, latent (when lambda_latent > 0), total, stage.
  StepLog step();
  int64_t iteration() const { return iteration_; }
  void save(const std::string& path) const;
  void load(const std::string& path);
  std::vector<uint8_t> serialize() const;
  void deserialize(const std::vector<uint8_t>& bytes, const std::string& name);
  std::vector<std::pair<std::string, Tensor>> replicated_state() const;  // encoder, latent_avg, optimiser
  std::vector<std::pair<std::string, Tensor>> frozen_state() const;      // the generator
  double last_reduce_seconds() const { return reduce_seconds_; }
  models::e4e::Encoder4Editing& E() { return *e_; }
  models::stylegan2::Generator& G() { return *g_; }
  const E4ETrainConfig& config() const { return cfg_; }
  // The last step's source | reconstruction, [B, 3, S, 2S].
  Tensor last_grid() const { return last_grid_; }

 private:
  E4ETrainConfig cfg_;
  std::unique_ptr<models::stylegan2::Generator> g_;
  std::unique_ptr<DataSource> data_;
  std::unique_ptr<models::e4e::Encoder4Editing> e_;
  std::unique_ptr<Optimizer> opt_;
  Generator rng_data_, rng_latent_;
  dist::ProcessGroup* pg_ = nullptr;  // null: one process
  double reduce_seconds_ = 0;
  int64_t iteration_ = 0;
  Tensor last_grid_;
};

}  // namespace gradstyle::train
