// The toy identity network's contrastive trainer (contract in gradstyle/train/id_trainer.hpp).
#include "gradstyle/train/id_trainer.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "gradstyle/autograd/autograd.hpp"
#include "gradstyle/core/error.hpp"
#include "gradstyle/data/toyfaces.hpp"
#include "gradstyle/io/safetensors.hpp"
#include "gradstyle/io/tensor_bridge.hpp"
#include "gradstyle/nn/layers.hpp"
#include "gradstyle/ops/elementwise.hpp"
#include "gradstyle/ops/linalg.hpp"
#include "gradstyle/ops/reduce.hpp"
#include "gradstyle/ops/shape.hpp"
#include "gradstyle/ops/softmax.hpp"
#include "train/config_fields.hpp"

namespace gradstyle::train {

using namespace detail;
namespace tf = data::toyfaces;
namespace irse = models::irse;

namespace {

const char* kFormat = "gradstyle-toyid-checkpoint-1";
uint64_t stream_seed(uint64_t seed, uint64_t purpose) { return seed * 0x9E3779B97F4A7C15ull + 0x1dull * purpose + 7; }
constexpr uint64_t kInit = 1;
// Edits of held-out evaluation views come from a stream of their own.
constexpr uint64_t kEvalEditSalt = 0x5eed1d;

std::map<std::string, Field> fields(IDTrainConfig& c) {
  auto positive = [](const double& v) { return v > 0 && std::isfinite(v) ? "" : "must be > 0"; };
  auto blocks = [](const std::vector<int64_t>& v) {
    if (v.size() != 4) return "needs 4 entries (the IR stages)";
    for (int64_t x : v)
      if (x < 1) return "every entry must be >= 1";
    return "";
  };
  auto widths = [&](const std::vector<int64_t>& v) {
    if (const char* e = blocks(v); *e) return e;
    for (size_t i = 1; i < v.size(); ++i)
      if (v[i] == v[i - 1]) return "consecutive stages need different widths (the checkpoint reader tells stages apart by width)";
    return "";
  };
  std::map<std::string, Field> f;
  f.emplace("size", field<int64_t>("size", c.size, [](const int64_t& s) {
              return s >= 16 && s % 16 == 0 ? "" : "must be a multiple of 16, at least 16 (4 stride-2 stages)";
            }));
  f.emplace("toyfaces_seed", field("toyfaces_seed", c.toyfaces_seed));
  f.emplace("toyfaces_identities", field("toyfaces_identities", c.toyfaces_identities, at_least(0)));
  f.emplace("trunk_blocks", field<std::vector<int64_t>>("trunk_blocks", c.trunk_blocks, blocks));
  f.emplace("trunk_channels", field<std::vector<int64_t>>("trunk_channels", c.trunk_channels, widths));
  f.emplace("trunk_se", field("trunk_se", c.trunk_se));
  f.emplace("embedding", field("embedding", c.embedding, at_least(2)));
  f.emplace("identities", field("identities", c.identities, at_least(2)));
  f.emplace("views", field("views", c.views, at_least(2)));
  f.emplace("temperature", field<double>("temperature", c.temperature, positive));
  f.emplace("hard_negatives", field("hard_negatives", c.hard_negatives));
  f.emplace("lr", field<double>("lr", c.lr, positive));
  f.emplace("iterations", field("iterations", c.iterations, at_least(0)));
  f.emplace("seed", field("seed", c.seed));
  f.emplace("log_every", field("log_every", c.log_every, at_least(1)));
  f.emplace("image_every", field("image_every", c.image_every, at_least(0)));
  f.emplace("save_every", field("save_every", c.save_every, at_least(1)));
  f.emplace("keep_last", field("keep_last", c.keep_last, at_least(1)));
  f.emplace("device", field("device", c.device));
  return f;
}

// A hard negative: `base` with one or two attribute groups taken from `donor` (the face shape,
// skin, hair, eyes, brows, nose and mouth, the freckles and moles, earrings, glasses, hat,
// background or shirt). Random identities differ in nearly every group, so telling them apart
// needs no fine detail; a sibling differs in one, sometimes only in its freckles.
tf::ToyIdentity sibling(const tf::ToyIdentity& base, const tf::ToyIdentity& donor, uint64_t seed, uint64_t index) {
  using Id = tf::ToyIdentity;
  static const std::vector<void (*)(Id&, const Id&)> groups = {
      [](Id& a, const Id& d) { a.face_rx = d.face_rx; a.face_ry = d.face_ry; a.jaw = d.jaw; },
      [](Id& a, const Id& d) { a.skin = d.skin; },
      [](Id& a, const Id& d) { a.hair_style = d.hair_style; a.hair = d.hair; a.hair_volume = d.hair_volume; },
      [](Id& a, const Id& d) {
        a.eye_color = d.eye_color; a.eye_size = d.eye_size; a.eye_spacing = d.eye_spacing; a.eye_height = d.eye_height;
      },
      [](Id& a, const Id& d) {
        a.brow_thickness = d.brow_thickness; a.brow_tilt = d.brow_tilt; a.brow_arch = d.brow_arch; a.brow_color = d.brow_color;
      },
      [](Id& a, const Id& d) {
        a.nose_length = d.nose_length; a.nose_width = d.nose_width; a.mouth_width = d.mouth_width;
        a.lip_thickness = d.lip_thickness; a.lip_color = d.lip_color;
      },
      [](Id& a, const Id& d) { a.freckles = d.freckles; a.moles = d.moles; },
      [](Id& a, const Id& d) { a.earrings = d.earrings; a.earring_color = d.earring_color; },
      [](Id& a, const Id& d) { a.glasses = d.glasses; a.glasses_color = d.glasses_color; },
      [](Id& a, const Id& d) {
        a.hat = d.hat; a.hat_color_a = d.hat_color_a; a.hat_color_b = d.hat_color_b; a.hat_stripes = d.hat_stripes;
      },
      [](Id& a, const Id& d) {
        a.background = d.background; a.bg_color_a = d.bg_color_a; a.bg_color_b = d.bg_color_b;
        a.bg_frequency = d.bg_frequency; a.bg_angle = d.bg_angle; a.bg_seed = d.bg_seed;
      },
      [](Id& a, const Id& d) { a.shirt = d.shirt; },
  };
  Id out = base;
  const int n = philox_uniform(seed, index, 0) < 0.3 ? 2 : 1;
  for (int k = 0; k < n; ++k) {
    const size_t g = std::min(groups.size() - 1, size_t(philox_uniform(seed, index, uint64_t(1 + k)) * double(groups.size())));
    groups[g](out, donor);
  }
  return out;
}
constexpr uint64_t kSiblingSalt = 0x51b1;

// Renders (identity, edit) pairs into [n, 3, size, size] in [-1, 1].
Tensor render_batch(const std::vector<std::pair<tf::ToyIdentity, tf::ToyEdit>>& items, int64_t size) {
  Tensor x = Tensor::empty({int64_t(items.size()), 3, size, size});
  float* p = x.data<float>();
  for (size_t i = 0; i < items.size(); ++i)
    tf::render_into(items[i].first, items[i].second, int(size), p + int64_t(i) * 3 * size * size);
  return tf::to_network_input(x);
}

}  // namespace

IDTrainConfig IDTrainConfig::parse(const std::string& text) {
  const json j = parse_object(text, "toyid training config", "toyid");
  IDTrainConfig c;
  auto table = fields(c);
  read_fields(j, table, "toyid training config", {"stage"});
  if (c.toyfaces_identities > 0 && c.toyfaces_identities < c.identities)
    throw ValueError("toyid training config: toyfaces_identities (" + std::to_string(c.toyfaces_identities) +
                     ") must be 0 or at least 'identities' (" + std::to_string(c.identities) +
                     "), or a batch would hold one identity twice as a negative of itself");
  return c;
}

std::string IDTrainConfig::dump(int indent) const {
  IDTrainConfig copy = *this;
  json out = json::object();
  for (auto& [name, f] : fields(copy)) f.write(out);
  out["stage"] = "toyid";
  return out.dump(indent);
}

irse::BackboneConfig IDTrainConfig::backbone_config() const {
  irse::BackboneConfig b;
  b.trunk.blocks = trunk_blocks;
  b.trunk.channels = trunk_channels;
  b.trunk.se = trunk_se;
  b.trunk.se_reduction = std::min<int64_t>(16, *std::min_element(trunk_channels.begin(), trunk_channels.end()));
  b.input_size = size;
  b.embedding = embedding;
  b.drop_ratio = 0.0;  // a small network on an unbounded stream of identities does not need it
  return b;
}

models::arcface::IDCropConfig IDTrainConfig::crop() const {
  models::arcface::IDCropConfig c;
  c.image_size = size;
  c.top = 0;
  c.bottom = size;
  c.left = 0;
  c.right = size;
  c.pool_size = size;
  return c;
}

ContrastiveResult contrastive_loss(const Tensor& z, int64_t views, double temperature) {
  return contrastive_loss_rows(z, z, 0, views, temperature);
}

ContrastiveResult contrastive_loss_rows(const Tensor& rows, const Tensor& all, int64_t begin, int64_t views,
                                        double temperature) {
  GS_CHECK(all.dim() == 2 && views >= 2 && all.size(0) % views == 0 && all.size(0) / views >= 2, ShapeError,
           "contrastive_loss: expected [identities * views, E] with at least 2 identities and 2 views, got ",
           shape_str(all.shape()), " with views = ", views);
  GS_CHECK(rows.dim() == 2 && rows.size(1) == all.size(1) && begin >= 0 && begin + rows.size(0) <= all.size(0),
           ShapeError, "contrastive_loss: rows ", shape_str(rows.shape()), " from ", begin, " are not inside ",
           shape_str(all.shape()));
  const int64_t M = all.size(0), m = rows.size(0);
  std::vector<double> self(size_t(m * M), 0.0), positive(size_t(m * M), 0.0);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < M; ++j) {
      const int64_t gi = begin + i;
      if (gi == j) self[size_t(i * M + j)] = -1e4;  // exp(-1e4 / tau) is 0: a view is not its own candidate
      else if (gi / views == j / views) positive[size_t(i * M + j)] = 1.0;
    }
  const Tensor mask = Tensor::from_vector(self, {m, M}).to(all.dtype()).to(all.device());
  const Tensor pos = Tensor::from_vector(positive, {m, M}).to(all.dtype()).to(all.device());
  Tensor sim = matmul(rows, transpose(all, 0, 1));  // cosines (unit-norm embeddings)
  Tensor logp = log_softmax(add(mul_scalar(sim, 1.0 / temperature), mask), 1);
  ContrastiveResult r;
  r.loss = mul_scalar(sum(mul(logp, pos)), -1.0 / double(M * (views - 1)));
  // Batch statistics on the host, as shares of the whole batch's means.
  const std::vector<double> s = sim.detach().to_vector<double>();
  double ps = 0, ns = 0;
  int64_t hits = 0;
  for (int64_t i = 0; i < m; ++i) {
    const int64_t gi = begin + i;
    int64_t best = -1;
    for (int64_t j = 0; j < M; ++j) {
      if (gi == j) continue;
      const double v = s[size_t(i * M + j)];
      if (gi / views == j / views) ps += v;
      else ns += v;
      if (best < 0 || v > s[size_t(i * M + best)]) best = j;
    }
    hits += best / views == gi / views;
  }
  r.pos = ps / double(M * (views - 1));
  r.neg = ns / double(M * (M - views));
  r.acc = double(hits) / double(M);
  return r;
}

IDTrainer::IDTrainer(IDTrainConfig cfg, Device device, dist::ProcessGroup* pg)
    : cfg_(std::move(cfg)), device_(device), pg_(pg && pg->size() > 1 ? pg : nullptr) {
  if (pg_ && cfg_.hard_negatives && cfg_.identities % 2 != 0)
    throw ValueError("toyid trainer: data-parallel training with hard_negatives needs an even 'identities' a rank (" +
                     std::to_string(cfg_.identities) + "), so that every sibling sits beside its identity");
  nn::manual_seed(stream_seed(cfg_.seed, kInit));
  net_ = std::make_unique<irse::Backbone>(cfg_.backbone_config());
  net_->to(device_);
  net_->train();
  AdamOptions a;
  a.lr = cfg_.lr;
  opt_ = std::make_unique<Adam>(trainable_parameters(*net_), a);
}

Tensor IDTrainer::batch_images(int64_t it) const {
  // This rank's slots [r K, (r + 1) K) of the global batch of N K identities.
  const int64_t K = cfg_.identities, V = cfg_.views, N = pg_ ? pg_->size() : 1, r0 = pg_ ? pg_->rank() * K : 0;
  std::vector<std::pair<tf::ToyIdentity, tf::ToyEdit>> items;
  tf::ToyIdentity previous;
  for (int64_t j = r0; j < r0 + K; ++j) {
    const uint64_t c = uint64_t(it * K * N + j);  // the identity counter of the whole run
    const uint64_t k = cfg_.toyfaces_identities > 0 ? c % uint64_t(cfg_.toyfaces_identities) : c;
    tf::ToyIdentity id = tf::sample_identity(cfg_.toyfaces_seed, tf::train_index(k));
    // With hard_negatives, every odd slot is a sibling of the slot before it (its own identity
    // donates one or two attribute groups).
    if (cfg_.hard_negatives && j % 2 == 1) id = sibling(previous, id, cfg_.toyfaces_seed ^ kSiblingSalt, c);
    previous = id;
    for (int64_t v = 0; v < V; ++v) items.emplace_back(id, tf::sample_edit(cfg_.toyfaces_seed, c * uint64_t(V) + uint64_t(v)));
  }
  return render_batch(items, cfg_.size).to(device_);
}

StepLog IDTrainer::step() {
  const auto t0 = std::chrono::steady_clock::now();
  StepLog log;
  reduce_seconds_ = 0;
  dist::BatchGroupGuard batch_group(pg_);  // BatchNorm over the global batch
  Tensor x = batch_images(iteration_);
  Tensor z = net_->forward(x);
  ContrastiveResult r = pg_ ? contrastive_loss_rows(z, dist::all_gather(z, *pg_), pg_->rank() * z.size(0), cfg_.views,
                                                    cfg_.temperature)
                            : contrastive_loss(z, cfg_.views, cfg_.temperature);
  const double loss = value_of(r.loss);
  if (!std::isfinite(loss))
    throw DivergenceError("toyid training diverged at iteration " + std::to_string(iteration_ + 1) +
                          ": the contrastive loss is not finite (the last good checkpoint is kept)");
  opt_->zero_grad();
  r.loss.backward();
  if (pg_) reduce_seconds_ += dist::all_reduce_gradients(opt_->parameters(), *pg_).seconds;
  opt_->step();
  log.terms["loss"] = loss;
  log.terms["pos"] = r.pos;
  log.terms["neg"] = r.neg;
  log.terms["acc"] = r.acc;
  if (pg_) dist::all_reduce_sum(log.terms, *pg_);  // each rank holds its rows' shares
  ++iteration_;
  log.iteration = iteration_;
  log.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return log;
}

IDEval IDTrainer::evaluate(int64_t n, bool siblings) {
  GS_CHECK(n >= 2 && (!siblings || n % 2 == 0), ValueError, "IDTrainer::evaluate: needs at least 2 identities",
           siblings ? " and an even number" : "", ", got ", n);
  std::vector<std::pair<tf::ToyIdentity, tf::ToyEdit>> a, b;
  tf::ToyIdentity previous;
  for (int64_t k = 0; k < n; ++k) {
    tf::ToyIdentity id = tf::sample_identity(cfg_.toyfaces_seed, tf::heldout_index(uint64_t(k)));
    if (siblings && k % 2 == 1) id = sibling(previous, id, cfg_.toyfaces_seed ^ kEvalEditSalt, uint64_t(k));
    previous = id;
    a.emplace_back(id, tf::sample_edit(cfg_.toyfaces_seed ^ kEvalEditSalt, uint64_t(2 * k)));
    b.emplace_back(id, tf::sample_edit(cfg_.toyfaces_seed ^ kEvalEditSalt, uint64_t(2 * k + 1)));
  }
  Tensor za, zb;
  {
    autograd::NoGradGuard ng;
    net_->eval();
    za = net_->forward(render_batch(a, cfg_.size).to(device_));
    zb = net_->forward(render_batch(b, cfg_.size).to(device_));
    net_->train();
  }
  const std::vector<double> s = matmul(za, transpose(zb, 0, 1)).to_vector<double>();  // [n, n]
  IDEval e;
  e.identities = n;
  int64_t hits = 0;
  for (int64_t i = 0; i < n; ++i) {
    int64_t best = 0;
    for (int64_t j = 0; j < n; ++j) {
      const double v = s[size_t(i * n + j)];
      if (i == j) e.pos += v;
      else e.neg += v;
      if (v > s[size_t(i * n + best)]) best = j;
    }
    hits += best == i;
  }
  e.pos /= double(n);
  e.neg /= double(n * (n - 1));
  e.top1 = double(hits) / double(n);
  return e;
}

std::vector<uint8_t> IDTrainer::serialize() const {
  io::NamedTensors out;
  auto put = [&](const std::string& k, const Tensor& t) { out.emplace_back(k, io::from_tensor(t.detach())); };
  for (auto& [k, t] : net_->state_dict()) put("net." + k, t);
  for (auto& [k, t] : opt_->state_dict()) put("optim." + k, t);
  put("iteration", scalar_i64(iteration_));
  return io::serialize_safetensors(out, {{"format", kFormat}, {"toyid_train_config", cfg_.dump(-1)}});
}

void IDTrainer::save(const std::string& path) const { io::atomic_write_file(path, serialize()); }

void IDTrainer::load(const std::string& path) { deserialize(io::read_file_bytes(path), path); }

std::vector<std::pair<std::string, Tensor>> IDTrainer::replicated_state() const {
  std::vector<std::pair<std::string, Tensor>> out;
  for (auto& [k, t] : net_->state_dict()) out.emplace_back("net." + k, t);
  for (auto& [k, t] : opt_->state_dict()) out.emplace_back("optim." + k, t);
  return out;
}

void IDTrainer::save_network(const std::string& path) const {
  io::NamedTensors out;
  for (auto& [k, t] : net_->state_dict()) out.emplace_back(k, io::from_tensor(t.detach()));
  io::save_safetensors(path, out, {{"format", "gradstyle-toyid-backbone-1"}, {"toyid_train_config", cfg_.dump(-1)}});
}

void IDTrainer::deserialize(const std::vector<uint8_t>& bytes, const std::string& path) {
  std::map<std::string, std::string> meta;
  io::NamedTensors in = io::load_safetensors_bytes(io::ByteSpan(bytes.data(), bytes.size()), path, &meta);
  if (meta["format"] != kFormat)
    throw FormatError(path + ": not a gradstyle toyid training checkpoint (metadata format = '" + meta["format"] + "')");
  require_resumable(IDTrainConfig::parse(meta["toyid_train_config"]), cfg_, path);
  const CheckpointReader r{in, path};
  net_->load_state_dict(r.prefixed("net.", device_));
  opt_->load_state_dict(r.prefixed("optim.", device_));
  iteration_ = r.i64("iteration");
}

}  // namespace gradstyle::train
