#include "gradstyle/train/trainer.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "gradstyle/autograd/autograd.hpp"
#include "gradstyle/core/error.hpp"
#include "gradstyle/io/image.hpp"
#include "gradstyle/train/warp.hpp"
#include "gradstyle/io/safetensors.hpp"
#include "gradstyle/io/tensor_bridge.hpp"
#include "gradstyle/nn/layers.hpp"
#include "gradstyle/ops/elementwise.hpp"
#include "gradstyle/ops/perspective_warp.hpp"
#include "gradstyle/ops/reduce.hpp"
#include "gradstyle/ops/shape.hpp"
#include "gradstyle/train/losses.hpp"
#include "train/config_fields.hpp"

namespace gradstyle::train {

namespace fs = std::filesystem;
using detail::CheckpointReader;
using detail::scalar_i64;
using detail::value_of;
using models::gsnet::GradStyleConfig;
using models::gsnet::GradStyleNet;

namespace {

// Stream seeds: one key per purpose, so adding draws to one stream never shifts another.
uint64_t stream_seed(uint64_t seed, uint64_t purpose) { return seed * 0x9E3779B97F4A7C15ull + purpose; }
constexpr uint64_t kDataStream = 1, kWarpStream = 2, kInitStream = 3;

// ---- data sources ----

class FolderSource : public DataSource {
 public:
  FolderSource(const std::string& dir, int64_t size, int64_t loss_size, double hflip, uint64_t seed)
      : size_(size), loss_size_(loss_size), hflip_(hflip), seed_(stream_seed(seed, kDataStream) ^ 0x5bd1e995ull) {
    if (!fs::is_directory(dir)) throw IOError("training data: " + dir + " is not a folder");
    for (const auto& e : fs::directory_iterator(dir)) {
      if (!e.is_regular_file()) continue;
      std::string ext = e.path().extension().string();
      std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return char(std::tolower(c)); });
      if (ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".bmp") files_.push_back(e.path().string());
    }
    std::sort(files_.begin(), files_.end());
    if (files_.empty()) throw IOError("training data: no PNG/JPEG/BMP images in " + dir);
  }

  Batch next_slice(int64_t global, int64_t begin, int64_t count, Generator& rng) override {
    check_slice(global, begin, count);
    std::vector<Tensor> full, loss;
    for (int64_t i = 0; i < count; ++i) {
      const int64_t n = int64_t(files_.size());
      const int64_t at = position + begin + i;  // this sample's index in the whole stream
      const int64_t epoch = at / n, slot = at % n;
      if (epoch != perm_epoch_) permute(epoch);
      io::Image img = io::load_image(files_[size_t(perm_[size_t(slot)])]);
      const bool flip = philox_uniform(seed_, uint64_t(at), 0) <= hflip_ && hflip_ > 0;
      Tensor f = io::image_to_tensor(io::resize_pil(img, int(size_), int(size_)));
      Tensor l = io::image_to_tensor(io::resize_pil(img, int(loss_size_), int(loss_size_)));
      if (flip) {
        f = gradstyle::flip(f, {3});
        l = gradstyle::flip(l, {3});
      }
      full.push_back(f);
      loss.push_back(l);
    }
    position += global;
    (void)rng;  // the order and the flips are functions of (seed, position): nothing else to advance
    return {cat(full, 0), cat(loss, 0)};
  }

  std::string describe() const override {
    return std::to_string(files_.size()) + " images, resized to " + std::to_string(size_) + " and " +
           std::to_string(loss_size_);
  }
  std::string fingerprint() const override {
    std::string f = describe();
    for (const auto& p : files_) {
      std::error_code ec;
      const auto n = fs::file_size(p, ec);
      f += '\n';
      f += fs::path(p).filename().string();
      f += ' ';
      f += std::to_string(ec ? -1 : int64_t(n));
    }
    return f;
  }

 private:
  // Fisher-Yates with the epoch's own counters, so any epoch's order is computed directly.
  void permute(int64_t epoch) {
    const int64_t n = int64_t(files_.size());
    perm_.resize(size_t(n));
    for (int64_t i = 0; i < n; ++i) perm_[size_t(i)] = i;
    for (int64_t i = n - 1; i > 0; --i) {
      const double u = philox_uniform(seed_ + 1, uint64_t(epoch) * uint64_t(n), uint64_t(i));
      const int64_t j = std::min<int64_t>(i, int64_t(u * double(i + 1)));
      std::swap(perm_[size_t(i)], perm_[size_t(j)]);
    }
    perm_epoch_ = epoch;
  }

  std::vector<std::string> files_;
  std::vector<int64_t> perm_;
  int64_t perm_epoch_ = -1;
  int64_t size_, loss_size_;
  double hflip_;
  uint64_t seed_;
};

class GeneratorSource : public DataSource {
 public:
  GeneratorSource(const models::stylegan2::Generator& G, int64_t loss_size) : G_(G), loss_size_(loss_size) {}
  Batch next_slice(int64_t global, int64_t begin, int64_t count, Generator& rng) override {
    check_slice(global, begin, count);
    autograd::NoGradGuard ng;
    const auto& cfg = G_.config();
    const DType dt = G_.input.input.dtype();
    // The latents of the whole global batch are drawn (cheap); G renders this slice only.
    Tensor z = Tensor::randn({global, cfg.style_dim}, rng).narrow(0, begin, count).contiguous();
    z = z.to(dt).to(G_.input.input.device());
    Tensor x = clamp(G_.forward_z(z), -1.0, 1.0);
    position += global;
    return {x, pool_to(x, loss_size_)};
  }
  std::string describe() const override { return "synthetic images of the generator (z ~ N(0, 1), const noise)"; }

 private:
  const models::stylegan2::Generator& G_;
  int64_t loss_size_;
};


std::unique_ptr<Optimizer> make_module_optimizer(const TrainConfig& c, NamedParameters params) {
  if (c.optimizer == "ranger") {
    RangerOptions o;
    o.lr = c.lr;
    o.k = c.lookahead_k;
    o.alpha = c.lookahead_alpha;
    return std::make_unique<Ranger>(std::move(params), o);
  }
  AdamOptions a;
  a.lr = c.lr;
  auto adam = std::make_unique<Adam>(std::move(params), a);
  if (c.optimizer == "adam") return adam;
  return std::make_unique<Lookahead>(std::move(adam), LookaheadOptions{c.lookahead_k, c.lookahead_alpha});
}

}  // namespace

std::unique_ptr<DataSource> folder_source(const std::string& dir, int64_t size, int64_t loss_size, double hflip,
                                          uint64_t seed) {
  return std::make_unique<FolderSource>(dir, size, loss_size, hflip, seed);
}

std::unique_ptr<DataSource> generator_source(const models::stylegan2::Generator& G, int64_t loss_size) {
  return std::make_unique<GeneratorSource>(G, loss_size);
}

Trainer::Trainer(TrainConfig cfg, GradStyleConfig net_cfg, Networks nets, std::unique_ptr<DataSource> data,
                 dist::ProcessGroup* pg)
    : cfg_(std::move(cfg)),
      net_cfg_(std::move(net_cfg)),
      nets_(std::move(nets)),
      data_(std::move(data)),
      rng_data_(stream_seed(cfg_.seed, kDataStream)),
      rng_warp_(stream_seed(cfg_.seed, kWarpStream)),
      pg_(pg && pg->size() > 1 ? pg : nullptr) {
  if (!nets_.G || !nets_.E) throw ValueError("trainer: a generator and an encoder are required");
  if (!data_) throw ValueError("trainer: no data source");
  if (cfg_.use_discriminator() && !nets_.D)
    throw ValueError("trainer: lambda_adv = " + std::to_string(cfg_.lambda_adv) +
                     " needs a discriminator (checkpoint key '" + cfg_.d_init + "'); give lambda_adv = 0 to train without one");
  if (cfg_.lambda_lpips > 0 && !nets_.lpips)
    throw ValueError("trainer: lambda_lpips > 0 needs LPIPS weights (lpips_vgg, lpips_lin), or lambda_lpips = 0");
  if (cfg_.lambda_id > 0 && !nets_.id) throw ValueError("trainer: lambda_id > 0 needs arcface weights, or lambda_id = 0");

  auto& G = *nets_.G;
  nets_.E->check_generator(G.n_latent(), G.config().style_dim);
  G.eval();
  G.requires_grad_(false);
  nets_.E->eval();
  nets_.E->requires_grad_(false);
  if (nets_.lpips) {
    nets_.lpips->eval();
    nets_.lpips->requires_grad_(false);
  }
  if (nets_.id) {
    nets_.id->eval();
    nets_.id->requires_grad_(false);
  }

  // The modules start from their documented initialisation, drawn from the run's own stream.
  nn::manual_seed(stream_seed(cfg_.seed, kInitStream));
  net_ = std::make_unique<GradStyleNet>(net_cfg_, G.config());
  const Tensor& like = G.input.input;
  net_->to(like.dtype());
  net_->to(like.device());
  net_->train();
  if (const auto& ps = cfg_.progressive_stages; !ps.empty() && int64_t(ps.size()) != net_->num_modules())
    throw ValueError("training config: progressive_stages has " + std::to_string(ps.size()) + " entries for " +
                     std::to_string(net_->num_modules()) + " refined blocks (one iteration count per stage)");
  use_stage(stage_at(0));

  if (cfg_.use_discriminator()) {
    auto& D = *nets_.D;
    D.train();
    D.requires_grad_(true);
    const double c = cfg_.d_ratio();
    AdamOptions a;
    a.lr = cfg_.d_lr * c;
    a.beta1 = std::pow(0.0, c);
    a.beta2 = std::pow(0.99, c);
    d_opt_ = std::make_unique<Adam>(trainable_parameters(D), a);
  }
}

int64_t Trainer::stage_at(int64_t it) const {
  // Stage m trains for progressive_stages[m] iterations after the earlier ones; the last stage
  // keeps training once the schedule is used up.
  const auto& ps = cfg_.progressive_stages;
  int64_t start = 0, m = -1;
  for (size_t k = 0; k < ps.size(); ++k) {
    if (start <= it) m = int64_t(k);
    start += ps[k];
  }
  return m;
}

void Trainer::use_stage(int64_t m) {
  opt_stage_ = m;
  net_->train();
  if (m < 0) {
    net_->set_active_stages(net_->num_modules());
    net_->requires_grad_(true);
  } else {
    net_->set_active_stages(m + 1);
    net_->requires_grad_(false);
    for (int64_t k = 0; k < m; ++k) {  // frozen: no updates, BatchNorm statistics included
      net_->grm[size_t(k)].eval();
      net_->gam[size_t(k)].eval();
      net_->gate[size_t(k)].eval();
    }
    net_->grm[size_t(m)].requires_grad_(true);
    net_->gam[size_t(m)].requires_grad_(true);
    net_->gate[size_t(m)].requires_grad_(true);
  }
  opt_ = make_module_optimizer(cfg_, trainable_parameters(*net_));
}

void Trainer::check_finite(const std::string& what, const Tensor& t) const {
  if (!std::isfinite(value_of(sum(t.detach()))))
    throw DivergenceError("training diverged at iteration " + std::to_string(iteration_ + 1) + ": " + what +
                          " is not finite (the last good checkpoint is kept)");
}

StepLog Trainer::step() {
  const auto t0 = std::chrono::steady_clock::now();
  StepLog log;
  auto& G = *nets_.G;
  auto& E = *nets_.E;
  const int64_t B = cfg_.batch;
  if (const int64_t m = stage_at(iteration_); m != opt_stage_) use_stage(m);
  // Data parallel: this rank's rows [r0, r0 + B) of the global batch of NB samples; BatchNorm and
  // D's minibatch deviation see the global batch; mean terms are scaled by 1/N (their gradients
  // are summed over ranks below).
  const int64_t N = pg_ ? pg_->size() : 1, NB = N * B, r0 = pg_ ? int64_t(pg_->rank()) * B : 0;
  const double mean_scale = 1.0 / double(N);
  dist::BatchGroupGuard batch_group(pg_);
  auto rows = [&](const Tensor& global) { return N == 1 ? global : global.narrow(0, r0, B).contiguous(); };

  // 1. data and the frozen encoder
  Batch b = data_->next_slice(NB, r0, B, rng_data_);
  b.full = b.full.to(G.input.input.dtype()).to(G.input.input.device());
  b.loss = b.loss.to(b.full.dtype()).to(b.full.device());
  models::e4e::E4EOutput enc;
  {
    autograd::NoGradGuard ng;
    enc = E.forward(b.loss);
  }
  const Tensor w = enc.w_plus.detach();
  models::gsnet::EncoderFeatures feats{enc.c3.detach(), enc.p2.detach(), enc.p1.detach()};

  // 2. reconstruction stream
  if (nets_.D) nets_.D->requires_grad_(false);
  auto rec = net_->reconstruct(G, w, feats);

  // 3. warp the detached residuals: one homography per sample, shared across stages by default
  RandomHomographyOptions ho{cfg_.warp_distortion, cfg_.warp_prob};
  // (stages bypassed by progressive training have no F and stay undefined)
  std::vector<Tensor> F_det;
  std::vector<size_t> live;
  for (size_t m = 0; m < rec.F.size(); ++m)
    if (rec.F[m].defined()) {
      F_det.push_back(rec.F[m].detach());
      live.push_back(m);
    }
  std::vector<Tensor> warped;
  if (cfg_.warp_impl == "torchvision") {
    for (const Tensor& F : F_det)
      warped.push_back(perspective_warp(
          F, rows(torchvision_perspective_homographies(NB, F.size(-2), F.size(-1), rng_warp_, ho))));
  } else if (cfg_.warp_shared_across_stages) {
    Tensor H = rows(random_homographies(NB, rng_warp_, ho));
    warped = perspective_warp(F_det, H);
  } else {
    for (const Tensor& F : F_det) warped.push_back(perspective_warp(F, rows(random_homographies(NB, rng_warp_, ho))));
  }
  std::vector<Tensor> F_hat(rec.F.size());
  for (size_t i = 0; i < live.size(); ++i) F_hat[live[i]] = warped[i];

  // 4. editing stream at alpha = 0
  auto ed = net_->edit_stream(G, w, F_hat, cfg_.edit_stream_updates_gate);

  // 5. losses
  const Reduction red = cfg_.loss_reduction;
  const Tensor xr = pool_to(rec.image, cfg_.loss_resolution);
  const Tensor xe = pool_to(ed.image, cfg_.loss_resolution);
  const Tensor& target = b.loss;
  if (xr.shape() != target.shape())
    throw ShapeError("trainer: the pooled output " + shape_str(xr.shape()) + " and the loss image " +
                     shape_str(target.shape()) + " differ (loss_resolution = " + std::to_string(cfg_.loss_resolution) + ")");
  const bool both = cfg_.image_loss_streams == "both";
  Tensor total;
  // `is_mean`: the term is a mean over the batch (scaled by 1/N in data-parallel runs); the
  // others are sums (loss_reduction = sum), whose global value is the sum of the ranks' values.
  auto add_term = [&](const std::string& name, double weight, const Tensor& t, bool is_mean) {
    const double scale = is_mean ? mean_scale : 1.0;
    const double v = value_of(t) * scale;  // one read serves the guard and the log
    if (!std::isfinite(v))
      throw DivergenceError("training diverged at iteration " + std::to_string(iteration_ + 1) + ": loss term " +
                            name + " is not finite (the last good checkpoint is kept)");
    log.terms[name] = v;
    Tensor wt = mul_scalar(t, weight * scale);
    total = total.defined() ? add(total, wt) : wt;
  };
  const bool red_mean = red == Reduction::Mean;
  if (cfg_.lambda_l2 > 0) {
    Tensor l = image_l2(xr, target, red);
    if (both) l = add(l, image_l2(xe, target, red));
    add_term("l2", cfg_.lambda_l2, l, red_mean);
  }
  if (cfg_.lambda_lpips > 0) {
    Tensor l = image_lpips(*nets_.lpips, xr, target);
    if (both) l = add(l, image_lpips(*nets_.lpips, xe, target));
    add_term("lpips", cfg_.lambda_lpips, l, true);
  }
  if (cfg_.lambda_id > 0) {
    Tensor l = image_id(*nets_.id, xr, target);
    if (both) l = add(l, image_id(*nets_.id, xe, target));
    add_term("id", cfg_.lambda_id, l, true);
  }
  if (cfg_.use_discriminator()) {
    Tensor l = generator_nonsaturating(nets_.D->forward(rec.image));
    if (both) l = add(l, generator_nonsaturating(nets_.D->forward(ed.image)));
    add_term("adv", cfg_.lambda_adv, l, true);
  }
  if (cfg_.lambda_f > 0) add_term("f", cfg_.lambda_f, gate_regulariser(rec.g, rec.F, red), red_mean);
  if (cfg_.lambda_aligner > 0) add_term("aligner", cfg_.lambda_aligner, aligner_l1(ed.Fp, rec.F, red), red_mean);
  if (!total.defined()) throw ValueError("trainer: every loss weight is 0: nothing to train");
  log.terms["total"] = value_of(total);

  opt_->zero_grad();
  total.backward();
  reduce_seconds_ = 0;
  if (pg_) reduce_seconds_ += dist::all_reduce_gradients(opt_->parameters(), *pg_).seconds;
  for (const auto& [name, p] : opt_->parameters())
    if (p.grad().defined()) check_finite("the gradient of " + name, p.grad());
  opt_->step();

  // 6. discriminator
  if (cfg_.use_discriminator()) discriminator_step(b, rec.image.detach(), ed.image.detach(), log);

  {
    autograd::NoGradGuard ng;
    last_grid_ = cat({target, xr.detach(), xe.detach()}, 3);
  }
  if (pg_) {  // the log holds the global batch's terms: the sum of the ranks' scaled values
    dist::all_reduce_sum(log.terms, *pg_);
  }
  ++iteration_;
  log.iteration = iteration_;
  log.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return log;
}

void Trainer::discriminator_step(const Batch& b, const Tensor& xr, const Tensor& xe, StepLog& log) {
  auto& D = *nets_.D;
  D.requires_grad_(true);
  const double mean_scale = pg_ ? 1.0 / double(pg_->size()) : 1.0;  // every D term is a batch mean
  Tensor d_loss = mul_scalar(discriminator_logistic(D.forward(b.full), {D.forward(xr), D.forward(xe)}), mean_scale);
  check_finite("the discriminator loss", d_loss);
  log.terms["d_loss"] = value_of(d_loss);
  d_opt_->zero_grad();
  d_loss.backward();
  if (pg_) reduce_seconds_ += dist::all_reduce_gradients(d_opt_->parameters(), *pg_).seconds;
  d_opt_->step();
  // Lazy R1 as a separate step (rosinality train.py), which is what the 16/17 correction counts.
  if (cfg_.d_reg_every > 0 && cfg_.r1_gamma > 0 && (iteration_ % cfg_.d_reg_every) == 0) {
    R1Result r1 = r1_penalty([&](const Tensor& x) { return D.forward(x); }, b.full);
    check_finite("the R1 penalty", r1.penalty);
    log.terms["r1"] = value_of(r1.penalty) * mean_scale;
    d_opt_->zero_grad();
    mul_scalar(r1.penalty, cfg_.r1_gamma / 2.0 * double(cfg_.d_reg_every) * mean_scale).backward();
    if (pg_) reduce_seconds_ += dist::all_reduce_gradients(d_opt_->parameters(), *pg_).seconds;
    d_opt_->step();
  }
  D.requires_grad_(false);
}

std::vector<uint8_t> Trainer::serialize() const {
  io::NamedTensors out;
  auto put = [&](const std::string& k, const Tensor& t) { out.emplace_back(k, io::from_tensor(t.detach())); };
  for (auto& [k, t] : net_->state_dict()) put("net." + k, t);
  for (auto& [k, t] : opt_->state_dict()) put("opt." + k, t);
  if (d_opt_) {
    for (auto& [k, t] : nets_.D->state_dict()) put("d." + k, t);
    for (auto& [k, t] : d_opt_->state_dict()) put("d_opt." + k, t);
  }
  put("iteration", scalar_i64(iteration_));
  if (!cfg_.progressive_stages.empty()) put("progressive.stage", scalar_i64(opt_stage_));
  put("data.position", scalar_i64(data_->position));
  put("rng.data.offset", scalar_i64(int64_t(rng_data_.offset())));
  put("rng.warp.offset", scalar_i64(int64_t(rng_warp_.offset())));
  std::map<std::string, std::string> meta{{"format", "gradstyle-train-checkpoint-1"},
                                          {"train_config", cfg_.dump(-1)},
                                          {"gradstyle_config", net_cfg_.to_json_text()}};
  return io::serialize_safetensors(out, meta);
}

void Trainer::save(const std::string& path) const { io::atomic_write_file(path, serialize()); }

void Trainer::load(const std::string& path) { deserialize(io::read_file_bytes(path), path); }

std::vector<std::pair<std::string, Tensor>> Trainer::replicated_state() const {
  std::vector<std::pair<std::string, Tensor>> out;
  for (auto& [k, t] : net_->state_dict()) out.emplace_back("net." + k, t);
  for (auto& [k, t] : opt_->state_dict()) out.emplace_back("opt." + k, t);
  if (d_opt_) {
    for (auto& [k, t] : nets_.D->state_dict()) out.emplace_back("d." + k, t);
    for (auto& [k, t] : d_opt_->state_dict()) out.emplace_back("d_opt." + k, t);
  }
  return out;
}

std::vector<std::pair<std::string, Tensor>> Trainer::frozen_state() const {
  std::vector<std::pair<std::string, Tensor>> out;
  auto add = [&](const char* prefix, nn::Module* m) {
    if (!m) return;
    for (auto& [k, t] : m->state_dict()) out.emplace_back(prefix + k, t);
  };
  add("g.", nets_.G.get());
  add("e.", nets_.E.get());
  add("lpips.", nets_.lpips.get());
  add("id.", nets_.id.get());
  return out;
}

void Trainer::deserialize(const std::vector<uint8_t>& bytes, const std::string& path) {
  std::map<std::string, std::string> meta;
  io::NamedTensors in = io::load_safetensors_bytes(io::ByteSpan(bytes.data(), bytes.size()), path, &meta);
  if (meta["format"] != "gradstyle-train-checkpoint-1")
    throw FormatError(path + ": not a gradstyle training checkpoint (metadata format = '" + meta["format"] + "')");
  if (meta["gradstyle_config"] != net_cfg_.to_json_text())
    throw ValueError(path + ": the checkpoint's network configuration " + meta["gradstyle_config"] +
                     " differs from this run's " + net_cfg_.to_json_text());
  // Saved dtypes are kept (optimiser hyperparameters are float64 even for float32 models).
  const Device dev = nets_.G->input.input.device();
  const CheckpointReader r{in, path};
  net_->load_state_dict(r.prefixed("net.", dev));
  // The optimiser of the stage that was training when the checkpoint was written.
  if (!cfg_.progressive_stages.empty()) use_stage(r.i64("progressive.stage"));
  opt_->load_state_dict(r.prefixed("opt.", dev));
  if (d_opt_) {
    nets_.D->load_state_dict(r.prefixed("d.", dev));
    d_opt_->load_state_dict(r.prefixed("d_opt.", dev));
  }
  iteration_ = r.i64("iteration");
  data_->position = r.i64("data.position");
  rng_data_.set_offset(uint64_t(r.i64("rng.data.offset")));
  rng_warp_.set_offset(uint64_t(r.i64("rng.warp.offset")));
}

Networks load_networks(const TrainConfig& cfg, Device device) {
  Networks n;
  if (cfg.generator.empty()) throw ValueError("training config: 'generator' (a StyleGAN2 checkpoint) is required");
  if (cfg.encoder.empty()) throw ValueError("training config: 'encoder' (an e4e checkpoint) is required");
  models::stylegan2::Generator::LoadOptions go;
  go.device = device;
  n.G = models::stylegan2::Generator::from_checkpoint(cfg.generator, go);
  models::e4e::Encoder4Editing::LoadOptions eo;
  eo.device = device;
  n.E = models::e4e::Encoder4Editing::from_checkpoint(cfg.encoder, eo);
  if (cfg.use_discriminator()) {
    models::stylegan2::Discriminator::LoadOptions dopt;
    dopt.device = device;
    dopt.key = cfg.d_init;
    n.D = models::stylegan2::Discriminator::from_checkpoint(cfg.generator, dopt);
  }
  if (cfg.lambda_lpips > 0) {
    if (cfg.lpips_vgg.empty())
      throw ValueError("training config: lambda_lpips > 0 needs 'lpips_vgg' (and 'lpips_lin'), or lambda_lpips = 0");
    models::lpips::LPIPS::LoadOptions lo;
    lo.device = device;
    n.lpips = models::lpips::LPIPS::from_files(cfg.lpips_vgg, cfg.lpips_lin, lo);
  }
  if (cfg.lambda_id > 0) {
    if (cfg.arcface.empty()) throw ValueError("training config: lambda_id > 0 needs 'arcface', or lambda_id = 0");
    models::arcface::ArcFaceID::LoadOptions ao;
    ao.device = device;
    n.id = models::arcface::ArcFaceID::from_checkpoint(cfg.arcface, ao);
  }
  return n;
}

}  // namespace gradstyle::train
