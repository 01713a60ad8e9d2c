#pragma once
// The toy identity network of the toyfaces pipeline: it stands in for ArcFace (no face
// recognition weights can be had here). An IR trunk with ArcFace's output layer
// (models::irse::Backbone, unit-norm embeddings) is trained contrastively on identities across
// edits. Each batch holds K training identities, each rendered with V random edits (yaw, smile,
// eye openness, age). The loss is the normalised temperature-scaled cross-entropy of SimCLR /
// supervised contrastive learning: for every view, its other views are the positives and every
// other identity's views the negatives,
//   L = mean_i [ -log( sum_{p in P(i)} exp(s_ip / tau) / sum_{a != i} exp(s_ia / tau) ) ],  s = cosine.
// The embedding so learnt is what the ID loss and the ID metric compare (as arcface::ArcFaceID,
// through the written Backbone file).
//
//   auto cfg = train::IDTrainConfig::parse(text);          // "stage": "toyid"
//   train::IDTrainer t(cfg);
//   while (t.iteration() < cfg.iterations) t.step();       // terms: loss, pos, neg, acc
//   t.save_network("toyid.safetensors");                    // a plain Backbone state dict
//   auto id = models::arcface::ArcFaceID::from_checkpoint("toyid.safetensors", {.crop = t.crop()});
//
// Every image is a function of (toyfaces_seed, iteration, slot), so the state is the iteration:
// resume is bitwise. Held-out identities (toyfaces::heldout_index) are never trained on;
// evaluate() measures on them.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gradstyle/models/arcface.hpp"
#include "gradstyle/models/irse.hpp"
#include "gradstyle/train/optim.hpp"
#include "gradstyle/train/trainer.hpp"

namespace gradstyle::train {

struct IDTrainConfig {
  int64_t size = 64;               // rendered toyfaces size (the network's input)
  uint64_t toyfaces_seed = 0;      // the renderer's stream
  int64_t toyfaces_identities = 0;  // training identities cycled; 0 = a fresh identity every time
  // The network: an IR trunk of 4 stride-2 stages (input size / 16 is the final map) + the
  // ArcFace output layer (BN, Linear, BN1d) to `embedding` dims.
  std::vector<int64_t> trunk_blocks{1, 1, 1, 1};
  std::vector<int64_t> trunk_channels{16, 32, 64, 96};
  bool trunk_se = false;
  int64_t embedding = 64;
  // Each batch: `identities` identities x `views` edits.
  int64_t identities = 16, views = 2;
  // Every second identity of a batch is a sibling of the one before it: the same person with one
  // or two attribute groups (hair, eyes, freckles and moles, earrings, ...) of another. Random
  // identities differ in nearly everything, so without siblings the network need not look at
  // fine details.
  bool hard_negatives = true;
  double temperature = 0.1;
  double lr = 1e-3;
  int64_t iterations = 2000;
  uint64_t seed = 0;
  int64_t log_every = 25, image_every = 0, save_every = 250, keep_last = 2;
  std::string device = "auto";

  static IDTrainConfig parse(const std::string& json_text);  // accepts "stage": "toyid"
  std::string dump(int indent = 2) const;                     // every key, "stage" included, sorted
  models::irse::BackboneConfig backbone_config() const;
  // The crop ArcFaceID must use with this network: the whole image, no pooling.
  models::arcface::IDCropConfig crop() const;
};

// Held-out identities, each rendered twice with different edits.
struct IDEval {
  int64_t identities = 0;
  double pos = 0;   // mean cosine of an identity's two views
  double neg = 0;   // mean cosine of views of different identities
  double top1 = 0;  // fraction whose nearest view of the other set is its own identity
};

// Data parallel with pg of size N > 1: `identities` is one rank's share of a global batch of
// N x identities; the embeddings are gathered (dist::all_gather), each rank scores its own rows
// against every row, BatchNorm sees the global batch and the gradients are summed, so N ranks
// train what one process trains with N x identities. Needs an even `identities` when
// hard_negatives is on (a sibling and its identity stay on one rank).
class IDTrainer {
 public:
  explicit IDTrainer(IDTrainConfig cfg, Device device = Device::cpu(), dist::ProcessGroup* pg = nullptr);

  // Terms: loss, pos and neg (mean positive / negative cosine in the batch), acc (fraction of
  // views whose nearest other view has the same identity).
  StepLog step();
  int64_t iteration() const { return iteration_; }

  void save(const std::string& path) const;  // the training checkpoint (crash-safe)
  void load(const std::string& path);        // ValueError when the configuration differs
  std::vector<uint8_t> serialize() const;
  void deserialize(const std::vector<uint8_t>& bytes, const std::string& name);
  std::vector<std::pair<std::string, Tensor>> replicated_state() const;  // network and optimiser
  std::vector<std::pair<std::string, Tensor>> frozen_state() const { return {}; }  // nothing is frozen
  // The network alone as a plain Backbone state dict (input_layer.*, body.*, output_layer.*):
  // what arcface::ArcFaceID::from_checkpoint and irse::Backbone::from_checkpoint read.
  void save_network(const std::string& path) const;
  // `n` held-out identities, in evaluation mode (the training mode is restored). siblings: every
  // second identity is a sibling of the one before it (the hard case).
  IDEval evaluate(int64_t n = 64, bool siblings = false);

  models::irse::Backbone& net() { return *net_; }
  const IDTrainConfig& config() const { return cfg_; }
  double last_reduce_seconds() const { return reduce_seconds_; }

 private:
  // [identities * views, 3, size, size] for iteration `it` (identity-major: rows i*views + v).
  Tensor batch_images(int64_t it) const;

  IDTrainConfig cfg_;
  std::unique_ptr<models::irse::Backbone> net_;
  std::unique_ptr<Optimizer> opt_;
  int64_t iteration_ = 0;
  Device device_;
  dist::ProcessGroup* pg_ = nullptr;  // null: one process
  double reduce_seconds_ = 0;
};

// The contrastive loss above for unit-norm embeddings z [K * V, E] in identity-major order;
// also returns the batch statistics of StepLog (pos, neg, acc). Differentiable in z.
struct ContrastiveResult {
  Tensor loss;
  double pos = 0, neg = 0, acc = 0;
};
ContrastiveResult contrastive_loss(const Tensor& z, int64_t views, double temperature);
// The share of rows [begin, begin + rows.size(0)) of the batch `all` (rows = those of `all`):
// their loss terms over the whole batch, divided by the whole batch's count, and their shares of
// pos, neg and acc; the shares of all the rows add up to contrastive_loss(all).
ContrastiveResult contrastive_loss_rows(const Tensor& rows, const Tensor& all, int64_t begin, int64_t views,
                                        double temperature);

}  // namespace gradstyle::train
