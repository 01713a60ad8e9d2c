#include "gradstyle/train/e4e_trainer.hpp"

#include <chrono>
#include <cmath>

#include "gradstyle/autograd/autograd.hpp"
#include "gradstyle/core/error.hpp"
#include "gradstyle/io/safetensors.hpp"
#include "gradstyle/io/tensor_bridge.hpp"
#include "gradstyle/nn/layers.hpp"
#include "gradstyle/ops/elementwise.hpp"
#include "gradstyle/ops/loss.hpp"
#include "gradstyle/ops/reduce.hpp"
#include "gradstyle/ops/shape.hpp"
#include "gradstyle/train/losses.hpp"
#include "train/config_fields.hpp"

namespace gradstyle::train {

using namespace detail;
namespace sg = models::stylegan2;
namespace e4e = models::e4e;

namespace {

const char* kFormat = "gradstyle-e4e-checkpoint-1";
uint64_t stream_seed(uint64_t seed, uint64_t purpose) { return seed * 0x9E3779B97F4A7C15ull + 0xe4ull * purpose + 11; }
constexpr uint64_t kData = 1, kLatent = 2, kInit = 3;

std::map<std::string, Field> fields(E4ETrainConfig& c) {
  auto positive = [](const double& v) { return v > 0 && std::isfinite(v) ? "" : "must be > 0"; };
  auto widths = [](const std::vector<int64_t>& v) {
    if (v.size() != 4) return "needs 4 entries (the IR-SE stages)";
    for (int64_t x : v)
      if (x < 1) return "every entry must be >= 1";
    return "";
  };
  std::map<std::string, Field> f;
  f.emplace("generator", field("generator", c.generator));
  f.emplace("trunk_blocks", field<std::vector<int64_t>>("trunk_blocks", c.trunk_blocks, widths));
  f.emplace("trunk_channels", field<std::vector<int64_t>>("trunk_channels", c.trunk_channels, widths));
  f.emplace("trunk_se", field("trunk_se", c.trunk_se));
  f.emplace("data_source", field("data_source", c.data_source, one_of({"toyfaces", "folder"})));
  f.emplace("data", field("data", c.data));
  f.emplace("toyfaces_seed", field("toyfaces_seed", c.toyfaces_seed));
  f.emplace("toyfaces_identities", field("toyfaces_identities", c.toyfaces_identities, at_least(0)));
  f.emplace("hflip", field("hflip", c.hflip, unit_interval()));
  f.emplace("lambda_l2", field("lambda_l2", c.lambda_l2, non_negative()));
  f.emplace("lambda_delta", field("lambda_delta", c.lambda_delta, non_negative()));
  f.emplace("lambda_latent", field("lambda_latent", c.lambda_latent, non_negative()));
  f.emplace("optimizer", field("optimizer", c.optimizer, one_of({"ranger", "adam"})));
  f.emplace("lr", field<double>("lr", c.lr, positive));
  f.emplace("batch", field("batch", c.batch, at_least(2)));
  f.emplace("iterations", field("iterations", c.iterations, at_least(0)));
  f.emplace("progressive_start", field("progressive_start", c.progressive_start, at_least(0)));
  f.emplace("progressive_step", field("progressive_step", c.progressive_step, at_least(0)));
  f.emplace("seed", field("seed", c.seed));
  f.emplace("log_every", field("log_every", c.log_every, at_least(1)));
  f.emplace("image_every", field("image_every", c.image_every, at_least(0)));
  f.emplace("save_every", field("save_every", c.save_every, at_least(1)));
  f.emplace("keep_last", field("keep_last", c.keep_last, at_least(1)));
  f.emplace("device", field("device", c.device));
  return f;
}

}  // namespace

E4ETrainConfig E4ETrainConfig::parse(const std::string& text) {
  const json j = parse_object(text, "e4e training config", "e4e");
  E4ETrainConfig c;
  auto table = fields(c);
  read_fields(j, table, "e4e training config", {"stage"});
  if (c.generator.empty()) throw ValueError("e4e training config: 'generator' (a StyleGAN2 checkpoint) is required");
  if (c.data_source == "folder" && c.data.empty())
    throw ValueError("e4e training config: data_source = folder needs 'data' (a folder of images)");
  return c;
}

std::string E4ETrainConfig::dump(int indent) const {
  E4ETrainConfig copy = *this;
  json out = json::object();
  for (auto& [name, f] : fields(copy)) f.write(out);
  out["stage"] = "e4e";
  return out.dump(indent);
}

int64_t E4ETrainConfig::stage_at(int64_t it, int64_t n_styles) const {
  if (progressive_step <= 0) return n_styles - 1;
  if (it < progressive_start) return 0;
  return std::min<int64_t>(n_styles - 1, 1 + (it - progressive_start) / progressive_step);
}

E4ETrainer::E4ETrainer(E4ETrainConfig cfg, std::unique_ptr<sg::Generator> G, std::unique_ptr<DataSource> data,
                       dist::ProcessGroup* pg)
    : cfg_(std::move(cfg)),
      g_(std::move(G)),
      data_(std::move(data)),
      rng_data_(stream_seed(cfg_.seed, kData)),
      rng_latent_(stream_seed(cfg_.seed, kLatent)),
      pg_(pg && pg->size() > 1 ? pg : nullptr) {
  if (!g_ || !data_) throw ValueError("e4e trainer: a generator and a data source are required");
  g_->eval();
  g_->requires_grad_(false);
  const auto& gc = g_->config();
  if (gc.size < 32)
    throw ValueError("e4e trainer: the generator is " + std::to_string(gc.size) +
                     " px; e4e needs at least 32 px (its coarse heads read the input/16 map and need 2 x 2)");
  e4e::E4EConfig ec;
  ec.trunk.blocks = cfg_.trunk_blocks;
  ec.trunk.channels = cfg_.trunk_channels;
  ec.trunk.se = cfg_.trunk_se;
  ec.trunk.se_reduction = std::min<int64_t>(16, *std::min_element(cfg_.trunk_channels.begin(), cfg_.trunk_channels.end()));
  ec.n_styles = gc.n_latent();
  ec.input_size = gc.size;
  if (ec.style_dim() != gc.style_dim)
    throw ValueError("e4e training config: the last trunk width (" + std::to_string(ec.style_dim()) +
                     ") must be the generator's style_dim (" + std::to_string(gc.style_dim) + ")");
  ec.validate();
  nn::manual_seed(stream_seed(cfg_.seed, kInit));
  e_ = std::make_unique<e4e::Encoder4Editing>(ec);
  const Tensor& like = g_->input.input;
  e_->to(like.device());
  // Start from the generator's mean w, as e4e does (start_from_latent_avg).
  {
    autograd::NoGradGuard ng;
    Tensor avg = g_->w_avg;
    if (!avg.defined()) {
      Generator r(stream_seed(cfg_.seed, 99));
      avg = g_->mean_latent(4096, r);
    }
    e_->latent_avg = expand(avg.reshape({1, gc.style_dim}), {ec.n_styles, gc.style_dim}).contiguous().to(like.device());
  }
  e_->start_from_latent_avg = true;
  e_->train();
  if (cfg_.optimizer == "ranger") {
    RangerOptions o;
    o.lr = cfg_.lr;
    opt_ = std::make_unique<Ranger>(trainable_parameters(*e_), o);
  } else {
    AdamOptions o;
    o.lr = cfg_.lr;
    opt_ = std::make_unique<Adam>(trainable_parameters(*e_), o);
  }
}

StepLog E4ETrainer::step() {
  const auto t0 = std::chrono::steady_clock::now();
  StepLog log;
  const Tensor& like = g_->input.input;
  const int64_t n = e_->n_styles();
  const int64_t stage = cfg_.stage_at(iteration_, n);
  e_->set_progressive_stage(stage);
  // Data parallel: this rank's rows of the global batch; BatchNorm over the global batch; every
  // term is a batch mean, scaled by 1/N (the gradients are summed over ranks).
  const int64_t N = pg_ ? pg_->size() : 1, B = cfg_.batch, r0 = pg_ ? int64_t(pg_->rank()) * B : 0;
  const double scale = 1.0 / double(N);
  dist::BatchGroupGuard batch_group(pg_);
  reduce_seconds_ = 0;
  Batch b = data_->next_slice(N * B, r0, B, rng_data_);
  Tensor x = b.full.to(like.dtype()).to(like.device());
  e4e::E4EOutput out = e_->forward(x);
  sg::SynthesisOptions so;
  so.noise_mode = sg::NoiseMode::Const;
  Tensor y = g_->synthesis(out.w_plus, so);
  Tensor total;
  auto add_term = [&](const std::string& name, double weight, const Tensor& t) {
    const double v = value_of(t) * scale;
    if (!std::isfinite(v))
      throw DivergenceError("e4e training diverged at iteration " + std::to_string(iteration_ + 1) + ": loss term " +
                            name + " is not finite (the last good checkpoint is kept)");
    log.terms[name] = v;
    Tensor wt = mul_scalar(t, weight * scale);
    total = total.defined() ? add(total, wt) : wt;
  };
  add_term("l2", cfg_.lambda_l2, image_l2(y, x));
  if (cfg_.lambda_delta > 0 && stage > 0) {
    // e4e's delta regulariser: sum over the active deltas of mean_b ||w_i - w_0||_2.
    Tensor w0 = out.w_plus.narrow(1, 0, 1);
    Tensor d = sub(out.w_plus.narrow(1, 1, stage), w0);          // [B, stage, D]
    Tensor norms = sqrt(add_scalar(sum(square(d), {2}), 1e-12));  // [B, stage]
    add_term("delta", cfg_.lambda_delta, sum(mean(norms, {0})));
  }
  if (cfg_.lambda_latent > 0) {
    // Synthetic pairs: w+ of G for random z (no mixing), encoded back from G's image.
    Tensor wt, img;
    {
      autograd::NoGradGuard ng;
      Tensor z = Tensor::randn({N * B, g_->config().style_dim}, rng_latent_,
                               {.dtype = like.dtype(), .device = like.device()});
      if (N > 1) z = z.narrow(0, r0, B).contiguous();  // the global batch's latents, this rank's rows
      wt = g_->to_w_plus(g_->style(z));
      img = g_->synthesis(wt, so);
    }
    add_term("latent", cfg_.lambda_latent, mse_loss(e_->forward(img).w_plus, wt));
  }
  log.terms["total"] = value_of(total);
  opt_->zero_grad();
  total.backward();
  if (pg_) {
    reduce_seconds_ += dist::all_reduce_gradients(opt_->parameters(), *pg_).seconds;
    dist::all_reduce_sum(log.terms, *pg_);  // the global batch's terms: the sum of the ranks' shares
  }
  log.terms["stage"] = double(stage);
  opt_->step();
  {
    autograd::NoGradGuard ng;
    last_grid_ = cat({x, y.detach()}, 3);
  }
  ++iteration_;
  log.iteration = iteration_;
  log.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return log;
}

std::vector<uint8_t> E4ETrainer::serialize() const {
  io::NamedTensors out;
  auto put = [&](const std::string& k, const Tensor& t) { out.emplace_back(k, io::from_tensor(t.detach())); };
  for (auto& [k, t] : e_->state_dict()) put("encoder." + k, t);
  put("latent_avg", e_->latent_avg);
  for (auto& [k, t] : opt_->state_dict()) put("optim." + k, t);
  put("iteration", scalar_i64(iteration_));
  put("data.position", scalar_i64(data_->position));
  put("rng.data.offset", scalar_i64(int64_t(rng_data_.offset())));
  put("rng.latent.offset", scalar_i64(int64_t(rng_latent_.offset())));
  return io::serialize_safetensors(out, {{"format", kFormat}, {"e4e_train_config", cfg_.dump(-1)}});
}

void E4ETrainer::save(const std::string& path) const { io::atomic_write_file(path, serialize()); }

void E4ETrainer::load(const std::string& path) { deserialize(io::read_file_bytes(path), path); }

std::vector<std::pair<std::string, Tensor>> E4ETrainer::replicated_state() const {
  std::vector<std::pair<std::string, Tensor>> out;
  for (auto& [k, t] : e_->state_dict()) out.emplace_back("encoder." + k, t);
  out.emplace_back("latent_avg", e_->latent_avg);
  for (auto& [k, t] : opt_->state_dict()) out.emplace_back("optim." + k, t);
  return out;
}

std::vector<std::pair<std::string, Tensor>> E4ETrainer::frozen_state() const {
  std::vector<std::pair<std::string, Tensor>> out;
  for (auto& [k, t] : g_->state_dict()) out.emplace_back("g." + k, t);
  return out;
}

void E4ETrainer::deserialize(const std::vector<uint8_t>& bytes, const std::string& path) {
  std::map<std::string, std::string> meta;
  io::NamedTensors in = io::load_safetensors_bytes(io::ByteSpan(bytes.data(), bytes.size()), path, &meta);
  if (meta["format"] != kFormat)
    throw FormatError(path + ": not a gradstyle e4e training checkpoint (metadata format = '" + meta["format"] + "')");
  require_resumable(E4ETrainConfig::parse(meta["e4e_train_config"]), cfg_, path);
  const Device dev = g_->input.input.device();
  const CheckpointReader r{in, path};
  e_->load_state_dict(r.prefixed("encoder.", dev));
  e_->latent_avg = r.tensor("latent_avg").to(dev);
  opt_->load_state_dict(r.prefixed("optim.", dev));
  iteration_ = r.i64("iteration");
  data_->position = r.i64("data.position");
  rng_data_.set_offset(uint64_t(r.i64("rng.data.offset")));
  rng_latent_.set_offset(uint64_t(r.i64("rng.latent.offset")));
}

}  // namespace gradstyle::train
