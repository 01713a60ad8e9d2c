#include "gradstyle/train/stylegan2_trainer.hpp"

#include <chrono>
#include <cmath>

#include "gradstyle/autograd/autograd.hpp"
#include "gradstyle/core/error.hpp"
#include "gradstyle/data/toyfaces.hpp"
#include "gradstyle/io/safetensors.hpp"
#include "gradstyle/io/tensor_bridge.hpp"
#include "gradstyle/nn/layers.hpp"
#include "gradstyle/ops/elementwise.hpp"
#include "gradstyle/ops/reduce.hpp"
#include "gradstyle/ops/shape.hpp"
#include "gradstyle/train/losses.hpp"
#include "train/config_fields.hpp"

namespace gradstyle::train {

using namespace detail;
namespace sg = models::stylegan2;

// ---- configuration ----------------------------------------------------------------------------------

namespace {

const char* kFormat = "gradstyle-stylegan2-checkpoint-1";

// Stream keys of this trainer (distinct from the GradStyle trainer's 1..3).
uint64_t stream_seed(uint64_t seed, uint64_t purpose) { return seed * 0x9E3779B97F4A7C15ull + 0x51ull * purpose + 7; }
constexpr uint64_t kData = 1, kLatent = 2, kNoise = 3, kInit = 4, kSample = 5, kAvg = 6;

std::function<std::string(const double&)> positive() {
  return [](const double& v) { return v > 0 && std::isfinite(v) ? "" : "must be > 0"; };
}

std::map<std::string, Field> fields(StyleGAN2TrainConfig& c, std::map<std::string, int64_t>& channels) {
  std::map<std::string, Field> f;
  f.emplace("size", field<int64_t>("size", c.size, [](const int64_t& v) {
              return v >= 8 && (v & (v - 1)) == 0 ? "" : "must be a power of two >= 8";
            }));
  f.emplace("style_dim", field("style_dim", c.style_dim, at_least(1)));
  f.emplace("n_mlp", field("n_mlp", c.n_mlp, at_least(1)));
  f.emplace("lr_mlp", field("lr_mlp", c.lr_mlp, positive()));
  f.emplace("channels", field("channels", channels));
  f.emplace("data_source", field("data_source", c.data_source, one_of({"toyfaces", "folder"})));
  f.emplace("data", field("data", c.data));
  f.emplace("toyfaces_seed", field("toyfaces_seed", c.toyfaces_seed));
  f.emplace("toyfaces_identities", field("toyfaces_identities", c.toyfaces_identities, at_least(0)));
  f.emplace("hflip", field("hflip", c.hflip, unit_interval()));
  f.emplace("batch", field("batch", c.batch, at_least(1)));
  f.emplace("iterations", field("iterations", c.iterations, at_least(0)));
  f.emplace("lr", field("lr", c.lr, positive()));
  f.emplace("r1", field("r1", c.r1, non_negative()));
  f.emplace("d_reg_every", field("d_reg_every", c.d_reg_every, at_least(0)));
  f.emplace("path_regularize", field("path_regularize", c.path_regularize, non_negative()));
  f.emplace("g_reg_every", field("g_reg_every", c.g_reg_every, at_least(0)));
  f.emplace("path_batch_shrink", field("path_batch_shrink", c.path_batch_shrink, at_least(1)));
  f.emplace("mixing", field("mixing", c.mixing, unit_interval()));
  f.emplace("ema_kimg", field("ema_kimg", c.ema_kimg, non_negative()));
  f.emplace("noise_mode", field("noise_mode", c.noise_mode, one_of({"random", "const", "none"})));
  f.emplace("seed", field("seed", c.seed));
  f.emplace("log_every", field("log_every", c.log_every, at_least(1)));
  f.emplace("image_every", field("image_every", c.image_every, at_least(0)));
  f.emplace("save_every", field("save_every", c.save_every, at_least(1)));
  f.emplace("keep_last", field("keep_last", c.keep_last, at_least(1)));
  f.emplace("device", field("device", c.device));
  return f;
}

std::map<std::string, int64_t> channels_by_name(const std::map<int64_t, int64_t>& c) {
  std::map<std::string, int64_t> out;
  for (auto [r, ch] : c) out[std::to_string(r)] = ch;
  return out;
}

}  // namespace

StyleGAN2TrainConfig StyleGAN2TrainConfig::parse(const std::string& text) {
  const json j = parse_object(text, "stylegan2 training config", "stylegan2");
  StyleGAN2TrainConfig c;
  std::map<std::string, int64_t> channels;
  auto table = fields(c, channels);
  read_fields(j, table, "stylegan2 training config", {"stage"});
  for (auto& [k, v] : channels) {
    size_t used = 0;
    int64_t r = -1;
    try {
      r = std::stoll(k, &used);
    } catch (const std::exception&) {
    }
    if (used != k.size() || r < 4 || (r & (r - 1)) != 0 || v < 1)
      throw ValueError("stylegan2 training config: channels: entry \"" + k + "\": " + std::to_string(v) +
                       " (keys are resolutions 4, 8, ..., size; values channel counts >= 1)");
    c.channels[r] = v;
  }
  c.generator_config().validate();  // a channel table that misses a resolution is named here
  c.discriminator_config().validate();
  if (c.data_source == "folder" && c.data.empty())
    throw ValueError("stylegan2 training config: data_source = folder needs 'data' (a folder of images)");
  return c;
}

std::string StyleGAN2TrainConfig::dump(int indent) const {
  StyleGAN2TrainConfig copy = *this;
  std::map<std::string, int64_t> names = channels_by_name(channels);
  json out = json::object();
  for (auto& [name, f] : fields(copy, names)) f.write(out);
  out["stage"] = "stylegan2";
  return out.dump(indent);
}

sg::GeneratorConfig StyleGAN2TrainConfig::generator_config() const {
  sg::GeneratorConfig g;
  g.size = size;
  g.style_dim = style_dim;
  g.n_mlp = n_mlp;
  g.lr_mlp = lr_mlp;
  g.channels = channels;
  return g;
}

sg::DiscriminatorConfig StyleGAN2TrainConfig::discriminator_config() const {
  sg::DiscriminatorConfig d;
  d.size = size;
  d.channels = channels;
  return d;
}

double StyleGAN2TrainConfig::ema_decay(int64_t ranks) const {
  if (ema_kimg <= 0) return 0.0;
  return std::pow(0.5, double(batch * ranks) / (ema_kimg * 1000.0));
}

// ---- toyfaces data ----------------------------------------------------------------------------------

namespace {

class ToyfacesSource : public DataSource {
 public:
  ToyfacesSource(int64_t size, int64_t loss_size, uint64_t seed, int64_t identities)
      : size_(size), loss_size_(loss_size), seed_(seed), identities_(identities) {}
  Batch next_slice(int64_t global, int64_t begin, int64_t count, Generator& rng) override {
    (void)rng;  // every sample is a function of (seed, position)
    check_slice(global, begin, count);
    namespace tf = data::toyfaces;
    Tensor full = Tensor::empty({count, 3, size_, size_});
    float* p = full.data<float>();
    for (int64_t i = 0; i < count; ++i) {
      const int64_t at = position + begin + i;
      const uint64_t k = identities_ > 0 ? uint64_t(at % identities_) : uint64_t(at);
      tf::render_into(tf::sample_identity(seed_, tf::train_index(k)), tf::sample_edit(seed_, uint64_t(at)),
                      int(size_), p + i * 3 * size_ * size_);
    }
    position += global;
    full = tf::to_network_input(full);
    return {full, loss_size_ == size_ ? full : pool_to(full, loss_size_)};
  }
  std::string describe() const override {
    return "toyfaces rendered at " + std::to_string(size_) + " px (seed " + std::to_string(seed_) + ", " +
           (identities_ > 0 ? std::to_string(identities_) + " training identities" : "a fresh identity per sample") + ")";
  }

 private:
  int64_t size_, loss_size_;
  uint64_t seed_;
  int64_t identities_;
};

Tensor scalar_f64(double v) { return Tensor::from_vector<double>({v}, {}); }

}  // namespace

std::unique_ptr<DataSource> toyfaces_source(int64_t size, int64_t loss_size, uint64_t seed, int64_t identities) {
  GS_CHECK(size >= 8 && loss_size >= 1 && size % loss_size == 0, ValueError, "toyfaces_source: size ", size,
           " and loss size ", loss_size, " (the loss size must divide the size)");
  return std::make_unique<ToyfacesSource>(size, loss_size, seed, identities);
}

// ---- trainer ----------------------------------------------------------------------------------------

StyleGAN2Trainer::StyleGAN2Trainer(StyleGAN2TrainConfig cfg, std::unique_ptr<DataSource> data, Device device,
                                   dist::ProcessGroup* pg)
    : cfg_(std::move(cfg)),
      data_(std::move(data)),
      rng_data_(stream_seed(cfg_.seed, kData)),
      rng_latent_(stream_seed(cfg_.seed, kLatent)),
      rng_noise_(stream_seed(cfg_.seed, kNoise)),
      pg_(pg && pg->size() > 1 ? pg : nullptr) {
  if (!data_) throw ValueError("stylegan2 trainer: no data source");
  if (pg_ && cfg_.path_regularize > 0 && cfg_.g_reg_every > 0 && cfg_.batch % cfg_.path_batch_shrink != 0)
    throw ValueError("stylegan2 trainer: data-parallel path regularisation needs batch (" + std::to_string(cfg_.batch) +
                     " a rank) divisible by path_batch_shrink (" + std::to_string(cfg_.path_batch_shrink) +
                     "), so that the ranks' path batches make the global one");
  Generator init(stream_seed(cfg_.seed, kInit));
  g_ = std::make_unique<sg::Generator>(cfg_.generator_config(), &init);
  d_ = std::make_unique<sg::Discriminator>(cfg_.discriminator_config(), &init);
  g_ema_ = std::make_unique<sg::Generator>(cfg_.generator_config(), &init);
  for (auto* m : {static_cast<nn::Module*>(g_.get()), static_cast<nn::Module*>(g_ema_.get()),
                  static_cast<nn::Module*>(d_.get())})
    m->to(device);
  // g_ema starts as a copy of G (rosinality: accumulate(g_ema, g, 0)), noise buffers included.
  g_ema_->load_state_dict(g_->state_dict());
  g_ema_->eval();
  g_ema_->requires_grad_(false);
  g_->train();
  d_->train();
  g_->requires_grad_(true);
  d_->requires_grad_(true);

  // Lazy-regularisation corrections of rosinality's train.py: lr * c, betas (0, 0.99 ** c).
  auto adam = [](nn::Module& m, double lr, int64_t every) {
    const double c = every > 0 ? double(every) / double(every + 1) : 1.0;
    AdamOptions o;
    o.lr = lr * c;
    o.beta1 = 0.0;
    o.beta2 = std::pow(0.99, c);
    return std::make_unique<Adam>(trainable_parameters(m), o);
  };
  g_opt_ = adam(*g_, cfg_.lr, cfg_.path_regularize > 0 ? cfg_.g_reg_every : 0);
  d_opt_ = adam(*d_, cfg_.lr, cfg_.r1 > 0 ? cfg_.d_reg_every : 0);
}

// W+ for a batch: with probability `mixing` two latents, rows [0, k) from the first and [k, n)
// from the second, k uniform in [1, n - 1] (rosinality's mixing_noise + inject_index).
std::vector<Tensor> StyleGAN2Trainer::mixing_w_plus(int64_t batch) {
  const auto& gc = g_->config();
  const int64_t n = gc.n_latent();
  const Tensor& like = g_->input.input;
  const Options o{.dtype = like.dtype(), .device = like.device()};
  const bool mix = cfg_.mixing > 0 && philox_uniform(rng_latent_.seed(), rng_latent_.advance(1), 0) < cfg_.mixing;
  // The latents of the global batch; this rank keeps its rows.
  auto latents = [&] {
    Tensor z = Tensor::randn({batch * ranks(), gc.style_dim}, rng_latent_, o);
    return ranks() == 1 ? z : z.narrow(0, rank() * batch, batch).contiguous();
  };
  Tensor z1 = latents();
  Tensor w1 = g_->style(z1);
  if (!mix) return {g_->to_w_plus(w1)};
  Tensor z2 = latents();
  Tensor w2 = g_->style(z2);
  const double u = philox_uniform(rng_latent_.seed(), rng_latent_.advance(1), 0);
  const int64_t k = std::min<int64_t>(n - 1, 1 + int64_t(u * double(n - 1)));
  Tensor a = expand(unsqueeze(w1, 1), {batch, k, gc.style_dim});
  Tensor b = expand(unsqueeze(w2, 1), {batch, n - k, gc.style_dim});
  return {cat({a, b}, 1)};
}

sg::SynthesisOptions StyleGAN2Trainer::noise_options(int64_t batch) {
  const std::string& mode = cfg_.noise_mode;
  sg::SynthesisOptions s;
  s.noise_mode = mode == "random" ? sg::NoiseMode::Random : mode == "const" ? sg::NoiseMode::Const : sg::NoiseMode::None;
  s.rng = &rng_noise_;
  if (ranks() > 1) {
    s.noise_global_batch = batch * ranks();
    s.noise_row_begin = rank() * batch;
  }
  return s;
}

void StyleGAN2Trainer::d_step(const Tensor& real, StepLog& log) {
  g_->requires_grad_(false);
  d_->requires_grad_(true);
  const double scale = 1.0 / double(ranks());  // every term is a batch mean
  Tensor fake;
  {
    autograd::NoGradGuard ng;
    fake = g_->synthesis(mixing_w_plus(real.size(0))[0], noise_options(real.size(0)));
  }
  Tensor fake_pred = d_->forward(fake);
  Tensor real_pred = d_->forward(real);
  Tensor d_loss = mul_scalar(discriminator_logistic(real_pred, {fake_pred}), scale);
  log.terms["d_loss"] = value_of(d_loss);
  log.terms["real_score"] = value_of(mean(real_pred)) * scale;
  log.terms["fake_score"] = value_of(mean(fake_pred)) * scale;
  if (!std::isfinite(log.terms["d_loss"]))
    throw DivergenceError("stylegan2 training diverged at iteration " + std::to_string(iteration_ + 1) +
                          ": the discriminator loss is not finite (the last good checkpoint is kept)");
  d_opt_->zero_grad();
  d_loss.backward();
  if (pg_) reduce_seconds_ += dist::all_reduce_gradients(d_opt_->parameters(), *pg_).seconds;
  d_opt_->step();
  if (cfg_.r1 > 0 && cfg_.d_reg_every > 0 && iteration_ % cfg_.d_reg_every == 0) {
    R1Result r1 = r1_penalty([&](const Tensor& x) { return d_->forward(x); }, real);
    log.terms["r1"] = value_of(r1.penalty) * scale;
    d_opt_->zero_grad();
    mul_scalar(r1.penalty, cfg_.r1 / 2.0 * double(cfg_.d_reg_every) * scale).backward();
    if (pg_) reduce_seconds_ += dist::all_reduce_gradients(d_opt_->parameters(), *pg_).seconds;
    d_opt_->step();
  }
}

void StyleGAN2Trainer::g_step(StepLog& log) {
  g_->requires_grad_(true);
  d_->requires_grad_(false);
  const double scale = 1.0 / double(ranks());
  Tensor fake = g_->synthesis(mixing_w_plus(cfg_.batch)[0], noise_options(cfg_.batch));
  Tensor g_loss = mul_scalar(generator_nonsaturating(d_->forward(fake)), scale);
  log.terms["g_loss"] = value_of(g_loss);
  if (!std::isfinite(log.terms["g_loss"]))
    throw DivergenceError("stylegan2 training diverged at iteration " + std::to_string(iteration_ + 1) +
                          ": the generator loss is not finite (the last good checkpoint is kept)");
  g_opt_->zero_grad();
  g_loss.backward();
  if (pg_) reduce_seconds_ += dist::all_reduce_gradients(g_opt_->parameters(), *pg_).seconds;
  g_opt_->step();

  if (cfg_.path_regularize > 0 && cfg_.g_reg_every > 0 && iteration_ % cfg_.g_reg_every == 0) {
    // rosinality's g_path_regularize: the Jacobian-vector norm |J^T y| per sample, y ~ N(0, 1/HW),
    // pulled towards its running mean (decay 0.01).
    const int64_t pb = std::max<int64_t>(1, cfg_.batch / cfg_.path_batch_shrink);
    Tensor wp = mixing_w_plus(pb)[0];
    Tensor img = g_->synthesis(wp, noise_options(pb));
    const double hw = double(img.size(2) * img.size(3));
    Shape gshape = img.shape();
    gshape[0] = pb * ranks();  // y is drawn for the global path batch; this rank keeps its rows
    Tensor y = Tensor::randn(gshape, rng_noise_, {.dtype = img.dtype(), .device = img.device()});
    if (ranks() > 1) y = y.narrow(0, rank() * pb, pb).contiguous();
    y = mul_scalar(y, 1.0 / std::sqrt(hw));
    Tensor gw = autograd::grad({sum(mul(img, y))}, {wp}, {}, /*retain_graph=*/true, /*create_graph=*/true)[0];
    Tensor lengths = sqrt(mean(sum(square(gw), {2}), {1}));  // [pb]
    // The running mean follows the global batch's mean length (rosinality reduces it too).
    double mean_now = value_of(mean(lengths));
    if (pg_) mean_now = dist::all_reduce_sum(std::vector<double>{mean_now}, *pg_)[0] / double(ranks());
    const double path_mean = mean_path_length_ + 0.01 * (mean_now - mean_path_length_);
    const double scale = 1.0 / double(ranks());
    Tensor penalty = mul_scalar(mean(square(add_scalar(lengths, -path_mean))), scale);
    log.terms["path"] = value_of(penalty);
    log.terms["path_length"] = mean_now * scale;  // this rank's share: the log sums over ranks
    mean_path_length_ = path_mean;
    g_opt_->zero_grad();
    mul_scalar(penalty, cfg_.path_regularize * double(cfg_.g_reg_every)).backward();
    if (pg_) reduce_seconds_ += dist::all_reduce_gradients(g_opt_->parameters(), *pg_).seconds;
    g_opt_->step();
  }
  g_->requires_grad_(false);
}

void StyleGAN2Trainer::accumulate() {
  autograd::NoGradGuard ng;
  const double a = cfg_.ema_decay(ranks());
  auto src = g_->named_parameters();
  auto dst = g_ema_->named_parameters();
  for (size_t i = 0; i < src.size(); ++i) {
    Tensor& e = *dst[i].second;
    e.mul_(a).add_(src[i].second->detach(), 1.0 - a);
  }
}

StepLog StyleGAN2Trainer::step() {
  const auto t0 = std::chrono::steady_clock::now();
  StepLog log;
  reduce_seconds_ = 0;
  dist::BatchGroupGuard batch_group(pg_);  // D's minibatch deviation over the global batch
  const Tensor& like = g_->input.input;
  Batch b = data_->next_slice(cfg_.batch * ranks(), rank() * cfg_.batch, cfg_.batch, rng_data_);
  Tensor real = b.full.to(like.dtype()).to(like.device());
  d_step(real, log);
  g_step(log);
  accumulate();
  if (pg_) {  // the global batch's terms: the sum of the ranks' shares
    dist::all_reduce_sum(log.terms, *pg_);
  }
  ++iteration_;
  log.iteration = iteration_;
  log.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return log;
}

Tensor StyleGAN2Trainer::samples(int64_t n) const {
  autograd::NoGradGuard ng;
  const Tensor& like = g_ema_->input.input;
  Generator rng(stream_seed(cfg_.seed, kSample));
  Tensor z = Tensor::randn({n, cfg_.style_dim}, rng, {.dtype = like.dtype(), .device = like.device()});
  return g_ema_->forward_z(z);
}

std::vector<uint8_t> StyleGAN2Trainer::serialize() const {
  io::NamedTensors out;
  auto put = [&](const std::string& k, const Tensor& t) { out.emplace_back(k, io::from_tensor(t.detach())); };
  for (auto& [k, t] : g_->state_dict()) put("g." + k, t);
  for (auto& [k, t] : g_ema_->state_dict()) put("g_ema." + k, t);
  for (auto& [k, t] : d_->state_dict()) put("d." + k, t);
  for (auto& [k, t] : g_opt_->state_dict()) put("g_optim." + k, t);
  for (auto& [k, t] : d_opt_->state_dict()) put("d_optim." + k, t);
  {
    // latent_avg as rosinality's checkpoints carry it: the mean w of g_ema over 4096 fixed z.
    autograd::NoGradGuard ng;
    Generator rng(stream_seed(cfg_.seed, kAvg));
    put("latent_avg", g_ema_->mean_latent(4096, rng).reshape({cfg_.style_dim}));
  }
  put("iteration", scalar_i64(iteration_));
  put("data.position", scalar_i64(data_->position));
  put("rng.data.offset", scalar_i64(int64_t(rng_data_.offset())));
  put("rng.latent.offset", scalar_i64(int64_t(rng_latent_.offset())));
  put("rng.noise.offset", scalar_i64(int64_t(rng_noise_.offset())));
  put("mean_path_length", scalar_f64(mean_path_length_));
  return io::serialize_safetensors(out, {{"format", kFormat}, {"stylegan2_train_config", cfg_.dump(-1)}});
}

void StyleGAN2Trainer::save(const std::string& path) const { io::atomic_write_file(path, serialize()); }

void StyleGAN2Trainer::load(const std::string& path) { deserialize(io::read_file_bytes(path), path); }

std::vector<std::pair<std::string, Tensor>> StyleGAN2Trainer::replicated_state() const {
  std::vector<std::pair<std::string, Tensor>> out;
  for (auto& [k, t] : g_->state_dict()) out.emplace_back("g." + k, t);
  for (auto& [k, t] : g_ema_->state_dict()) out.emplace_back("g_ema." + k, t);
  for (auto& [k, t] : d_->state_dict()) out.emplace_back("d." + k, t);
  for (auto& [k, t] : g_opt_->state_dict()) out.emplace_back("g_optim." + k, t);
  for (auto& [k, t] : d_opt_->state_dict()) out.emplace_back("d_optim." + k, t);
  return out;
}

void StyleGAN2Trainer::deserialize(const std::vector<uint8_t>& bytes, const std::string& path) {
  std::map<std::string, std::string> meta;
  io::NamedTensors in = io::load_safetensors_bytes(io::ByteSpan(bytes.data(), bytes.size()), path, &meta);
  if (meta["format"] != kFormat)
    throw FormatError(path + ": not a gradstyle StyleGAN2 training checkpoint (metadata format = '" + meta["format"] +
                      "')");
  require_resumable(StyleGAN2TrainConfig::parse(meta["stylegan2_train_config"]), cfg_, path);
  const Device dev = g_->input.input.device();
  const CheckpointReader r{in, path};
  g_->load_state_dict(r.prefixed("g.", dev));
  g_ema_->load_state_dict(r.prefixed("g_ema.", dev));
  d_->load_state_dict(r.prefixed("d.", dev));
  g_opt_->load_state_dict(r.prefixed("g_optim.", dev));
  d_opt_->load_state_dict(r.prefixed("d_optim.", dev));
  iteration_ = r.i64("iteration");
  data_->position = r.i64("data.position");
  rng_data_.set_offset(uint64_t(r.i64("rng.data.offset")));
  rng_latent_.set_offset(uint64_t(r.i64("rng.latent.offset")));
  rng_noise_.set_offset(uint64_t(r.i64("rng.noise.offset")));
  mean_path_length_ = r.tensor("mean_path_length").to_vector<double>().at(0);
}

}  // namespace gradstyle::train
