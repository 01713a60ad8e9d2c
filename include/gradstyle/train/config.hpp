#pragma once
// The training configuration of GradStyle (SPEC B.7, B.9): every training key with its default,
// read from one flat JSON object (the same object also holds the network keys of B.9, which are
// handed on to the network's own configuration; see `model_keys`).
//
//   auto cfg = train::TrainConfig::parse(text, model_keys);   // ValueError on bad keys
//   std::string j = cfg.dump();                               // every training key, defaults too
//
// The interface is JSON text, so embedders need no JSON library in their include path.
//
// Unknown keys are an error that names them all, so a typo ("lamda_l2") never trains silently
// with a default. Keys the network configuration understands are collected in `model` untouched;
// the network's from_json validates them (and reports its own unknown keys).
#include <cstdint>
#include <string>
#include <vector>

#include "gradstyle/ops/loss.hpp"

namespace gradstyle::train {

struct TrainConfig {
  // ---- frozen networks and data (paths; empty = not used) ----
  std::string generator;       // rosinality checkpoint (g_ema, latent_avg; `d` for the discriminator)
  std::string encoder;         // e4e checkpoint (e4e_ffhq_encode.pt) or our safetensors
  std::string lpips_vgg;       // torchvision vgg16 weights (LPIPS trunk)
  std::string lpips_lin;       // LPIPS v0.1 heads (vgg.pth)
  std::string arcface;         // model_ir_se50.pth
  std::string data;            // folder of PNG/JPEG images (the training set)
  std::string data_source = "folder";  // folder | generator (synthetic: images drawn from G itself) | toyfaces
  uint64_t toyfaces_seed = 0;          // data_source = toyfaces: the renderer's stream
  int64_t toyfaces_identities = 0;     // 0 = a fresh training identity for every sample

  // ---- warp (B.7) ----
  double warp_distortion = 0.15;
  double warp_prob = 0.9;
  bool warp_shared_across_stages = true;
  std::string warp_impl = "homography";  // or "torchvision": RandomPerspective semantics per stage (train/warp.hpp)

  // ---- losses (B.7) ----
  std::string noise_mode = "const";
  int64_t loss_resolution = 256;
  double lambda_l2 = 1.0, lambda_lpips = 0.8, lambda_id = 0.1, lambda_adv = 0.001, lambda_f = 0.01,
         lambda_aligner = 0.1;
  std::string lpips_net = "vgg";
  Reduction loss_reduction = Reduction::Mean;
  std::string image_loss_streams = "both";  // both | reconstruction
  bool edit_stream_updates_gate = false;

  // ---- discriminator (B.7) ----
  // lambda_adv (its alias `adv_weight` is accepted; giving both with different values is an
  // error): 0 disables D entirely (no D step, no L_adv, no discriminator needed).
  std::string d_init = "d";   // key of `generator`'s checkpoint holding D
  double r1_gamma = 10.0;
  int64_t d_reg_every = 16;
  bool d_lr_lazy_correction = true;

  // ---- optimisation (B.7) ----
  std::string optimizer = "adam_lookahead";  // adam_lookahead | ranger | adam
  double lr = 1e-4, d_lr = 1e-4;
  int64_t lookahead_k = 6;
  double lookahead_alpha = 0.5;
  int64_t batch = 8, iterations = 70000;
  double hflip = 0.5;
  std::vector<int64_t> progressive_stages;  // empty = off; else iterations per stage, in order (SPEC A.6)

  // ---- run bookkeeping ----
  uint64_t seed = 0;
  int64_t log_every = 10;      // metrics.csv rows
  int64_t image_every = 500;   // source | X^r | X^e grid
  int64_t save_every = 1000;   // checkpoints/iteration_N.safetensors
  int64_t keep_last = 3;       // iteration checkpoints kept (last.safetensors is always kept)
  std::string device = "auto";

  // Parses a JSON object. Throws ValueError naming every unknown key (and every key of the wrong
  // type or out of range: lambda < 0, batch < 1, warp_prob outside [0, 1], ...).
  // `model_keys` lists the keys that belong to the network configuration; they are kept aside.
  static TrainConfig parse(const std::string& json_text, const std::vector<std::string>& model_keys);
  std::string dump(int indent = 2) const;  // training keys only, every one of them (sorted)

  // The discriminator's Adam correction for lazy R1: c = d_reg_every / (d_reg_every + 1) when
  // d_lr_lazy_correction, else 1 (rosinality train.py).
  double d_ratio() const;
  bool use_discriminator() const { return lambda_adv > 0; }

  std::string model_json = "{}";  // the network keys of the same object, as JSON text
};

}  // namespace gradstyle::train
