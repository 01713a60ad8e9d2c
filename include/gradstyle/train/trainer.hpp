#pragma once
// GradStyle's self-supervised trainer (SPEC B.7): one iteration is
//   1. w, {c3, p2, p1} = E0(x)                      no gradient (E0 frozen)
//   2. reconstruction pass with hooks               X^r, F_m, g_m
//   3. F^_m = warp(stopgrad(F_m), H_i)               one homography per sample (stream `warp`),
//                                                    the same for every stage unless configured
//   4. editing pass with w^ = w (alpha = 0)         X^e, F'_m
//   5. losses (pooled to loss_resolution), backward, module optimiser step
//   6. discriminator step on (x, X^r, X^e), and every d_reg_every iterations a lazy R1 step
// and everything it needs to resume bit for bit lives in one checkpoint (model, D, both
// optimisers, the iteration, every RNG stream's offset and the configuration).
//
//   train::Trainer t(cfg, net_cfg, std::move(nets), std::move(data));
//   while (t.iteration() < cfg.iterations) { auto log = t.step(); ... }
//   t.save("last.safetensors");                     // crash-safe: temp file, fsync, rename
//   t.load("last.safetensors");                     // same configuration required
//
// Determinism: every random draw (data order, flips, synthetic latents, warps) comes from a
// counter-based stream whose offset is saved, and the CPU kernels reduce in a fixed order, so
// N iterations straight and k + resume + (N - k) give bitwise-identical checkpoints.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "gradstyle/core/rng.hpp"
#include "gradstyle/dist/dist.hpp"
#include "gradstyle/models/arcface.hpp"
#include "gradstyle/models/e4e.hpp"
#include "gradstyle/models/gradstyle_net.hpp"
#include "gradstyle/models/lpips.hpp"
#include "gradstyle/models/stylegan2.hpp"
#include "gradstyle/train/config.hpp"
#include "gradstyle/train/optim.hpp"

namespace gradstyle::train {

// A non-finite loss term or gradient: names the term (or parameter) and the iteration.
class DivergenceError : public ValueError {
  using ValueError::ValueError;
};

// The networks of a run. G and E are frozen; D (present when lambda_adv > 0) trains; lpips and id
// are required when their weights are non-zero.
struct Networks {
  std::unique_ptr<models::stylegan2::Generator> G;
  std::unique_ptr<models::e4e::Encoder4Editing> E;
  std::unique_ptr<models::stylegan2::Discriminator> D;
  std::unique_ptr<models::lpips::LPIPS> lpips;
  std::unique_ptr<models::arcface::ArcFaceID> id;
};

// A batch of real images: `full` at the generator's resolution (D's real input) and `loss` at the
// loss resolution (the encoder input and the loss target), both [B, 3, S, S] in [-1, 1].
struct Batch {
  Tensor full, loss;
};

// Where training images come from. Implementations draw every random choice from the given
// stream, so their whole state is (stream offset, samples consumed).
//
// Data-parallel training reads slices: next_slice(global, begin, count) returns samples
// [begin, begin + count) of the next global batch of `global` samples and advances past the whole
// global batch (position += global, every random draw made for all `global` samples), so the N
// ranks' slices, concatenated in rank order, are exactly what next(global) would have returned.
class DataSource {
 public:
  virtual ~DataSource() = default;
  Batch next(int64_t batch, Generator& rng) { return next_slice(batch, 0, batch, rng); }
  virtual Batch next_slice(int64_t global, int64_t begin, int64_t count, Generator& rng) = 0;
  virtual std::string describe() const = 0;
  // What must be the same on every rank of a data-parallel run (a folder: its file names and
  // sizes); the default is describe().
  virtual std::string fingerprint() const { return describe(); }
  int64_t position = 0;  // samples consumed so far (saved with the checkpoint)

 protected:
  // ValueError unless 0 <= begin, 1 <= count and begin + count <= global.
  static void check_slice(int64_t global, int64_t begin, int64_t count) {
    if (begin < 0 || count < 1 || begin + count > global)
      throw ValueError("data source: slice [" + std::to_string(begin) + ", " + std::to_string(begin + count) +
                       ") is not inside a global batch of " + std::to_string(global));
  }
};

// Images of a folder (PNG/JPEG/BMP, sorted by name), resized with the PIL-exact bilinear filter to
// the generator's size and to the loss size, visited in a fresh seeded permutation each epoch,
// each flipped horizontally with probability hflip. Throws IOError for an empty or missing folder.
std::unique_ptr<DataSource> folder_source(const std::string& dir, int64_t size, int64_t loss_size, double hflip,
                                          uint64_t seed);
// Synthetic images from the frozen generator itself: z ~ N(0, 1), x = G(z) with const noise, the
// loss image its area average. Useful without a data set and for tests.
std::unique_ptr<DataSource> generator_source(const models::stylegan2::Generator& G, int64_t loss_size);

struct StepLog {
  int64_t iteration = 0;                 // after this step (1-based count of completed steps)
  std::map<std::string, double> terms;   // every computed loss term, unweighted, and "total", "d_loss", "r1"
  double seconds = 0;                    // wall time of the step
};

// Data parallel (pg of size N > 1, every rank running the same program): cfg.batch is the batch of
// ONE rank; rank r trains on samples [r b, (r + 1) b) of each global batch of N b, every random
// draw is made for the global batch, BatchNorm and D's minibatch deviation see the global batch
// (dist::BatchGroupGuard), mean loss terms are scaled by 1/N and the gradients summed over ranks,
// and StepLog holds the global batch's terms. So N ranks x b train what 1 rank x N b trains, up to
// the order of float additions (docs/distributed.md has the measured tolerance).
class Trainer {
 public:
  Trainer(TrainConfig cfg, models::gsnet::GradStyleConfig net_cfg, Networks nets, std::unique_ptr<DataSource> data,
          dist::ProcessGroup* pg = nullptr);

  StepLog step();
  int64_t iteration() const { return iteration_; }

  // The full state as named tensors (net.*, d.*, opt.*, d_opt.*, rng.*, iteration, data.position)
  // and the metadata (train_config, gradstyle_config).
  void save(const std::string& path) const;
  // Restores a save() of a run with the same configuration (ValueError naming what differs).
  void load(const std::string& path);
  // save() / load() through memory; `name` names the bytes in errors. dist::broadcast_state
  // sends these bytes from rank 0 to every rank.
  std::vector<uint8_t> serialize() const;
  void deserialize(const std::vector<uint8_t>& bytes, const std::string& name);
  // The trained state (GradStyle modules, D, both optimisers) as named tensors, for
  // dist::check_replicas_equal.
  std::vector<std::pair<std::string, Tensor>> replicated_state() const;
  // The frozen networks (G, E, LPIPS, ArcFace), which every rank loads itself: checked equal.
  std::vector<std::pair<std::string, Tensor>> frozen_state() const;
  // Seconds spent in gradient all-reduce during the last step (0 on one process).
  double last_reduce_seconds() const { return reduce_seconds_; }

  models::gsnet::GradStyleNet& net() { return *net_; }
  const TrainConfig& config() const { return cfg_; }
  Networks& networks() { return nets_; }

  // The last step's images for a grid: source | X^r | X^e, [B, 3, S, 3S] at the loss resolution.
  Tensor last_grid() const { return last_grid_; }

 private:
  void discriminator_step(const Batch& b, const Tensor& xr, const Tensor& xe, StepLog& log);
  void check_finite(const std::string& what, const Tensor& t) const;
  // progressive_stages: the stage that trains at (0-based) iteration `it`; -1 when training all.
  int64_t stage_at(int64_t it) const;
  // Makes stage m the trained one (m = -1: all): stages < m frozen, stages > m bypassed, and a
  // fresh module optimiser over stage m's parameters (SPEC A.6's "then the next stage").
  void use_stage(int64_t m);

  TrainConfig cfg_;
  models::gsnet::GradStyleConfig net_cfg_;
  Networks nets_;
  std::unique_ptr<DataSource> data_;
  std::unique_ptr<models::gsnet::GradStyleNet> net_;
  std::unique_ptr<Optimizer> opt_, d_opt_;
  Generator rng_data_, rng_warp_;
  dist::ProcessGroup* pg_ = nullptr;  // null or size 1: one process
  double reduce_seconds_ = 0;
  int64_t iteration_ = 0;
  int64_t opt_stage_ = -1;  // the stage opt_ trains (-1: all)
  Tensor last_grid_;
};

// Builds the networks a configuration names (G and D from `generator`, E from `encoder`, LPIPS and
// ArcFace when their weights are non-zero) on `device`. Throws what the loaders throw, and
// ValueError when a required path is empty (naming the key, and the weight that needs it).
Networks load_networks(const TrainConfig& cfg, Device device);

}  // namespace gradstyle::train
