// `gradstyle train`: the experiment folder around train::Trainer (configuration, resume,
// metrics, image grids, checkpoint rotation).
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>
#include <omp.h>
#include <sched.h>
#include <unistd.h>
#include <regex>
#include <sstream>

#include "cli/commands.hpp"
#include "cli/report.hpp"
#include "gradstyle/core/error.hpp"
#include "gradstyle/dist/dist.hpp"
#include "gradstyle/io/file.hpp"
#include "gradstyle/io/image.hpp"
#include "gradstyle/io/tensor_bridge.hpp"
#include "gradstyle/ops/elementwise.hpp"
#include "gradstyle/ops/shape.hpp"
#include "gradstyle/train/e4e_trainer.hpp"
#include "gradstyle/train/id_trainer.hpp"
#include "gradstyle/train/stylegan2_trainer.hpp"
#include "gradstyle/train/trainer.hpp"

namespace gradstyle::cli {

namespace fs = std::filesystem;
namespace gsn = gradstyle::models::gsnet;
using nlohmann::json;

namespace {

// Columns of metrics.csv, fixed so that rows of a resumed run line up with the earlier ones.
const std::vector<std::string> kColumns = {"total", "l2", "lpips", "id", "adv", "f", "aligner", "d_loss", "r1"};

std::string read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw IOError("cannot read " + io::quoted(path));
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

void write_text(const std::string& path, const std::string& text) {
  io::atomic_write_file(path, std::vector<uint8_t>(text.begin(), text.end()));
}

// The full configuration (training keys + network keys) as one JSON object, sorted.
json full_config(const train::TrainConfig& t, const gsn::GradStyleConfig& n) {
  json j = json::parse(t.dump());
  const json net = json::parse(n.to_json_text());  // named: items() would dangle on a temporary
  for (auto& [k, v] : net.items()) j[k] = v;
  return j;
}

// The "stage" key of a configuration: "gradstyle" (the default) or "stylegan2".
std::string stage_of(const std::string& text) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::parse_error& e) {
    throw ValueError(std::string("training config: not valid JSON: ") + e.what());
  }
  if (!j.is_object() || !j.contains("stage")) return "gradstyle";
  if (!j["stage"].is_string() ||
      (j["stage"] != "gradstyle" && j["stage"] != "stylegan2" && j["stage"] != "e4e" && j["stage"] != "toyid"))
    throw ValueError("training config: stage = " + j["stage"].dump() +
                     " (expected \"stylegan2\", \"e4e\", \"toyid\" or \"gradstyle\")");
  return j["stage"].get<std::string>();
}

// The configuration without its "stage" key (GradStyle's TrainConfig does not know it).
std::string without_stage(const std::string& text) {
  json j = json::parse(text);
  j.erase("stage");
  return j.dump();
}

// Keeps the rows of metrics.csv up to `iteration` (a killed run may have logged past its last
// checkpoint); writes the header when the file is new.
void prepare_metrics(const std::string& path, int64_t iteration, const std::vector<std::string>& columns) {
  std::string header = "iteration,seconds,lr";
  for (const auto& c : columns) header += "," + c;
  std::string kept = header + "\n";
  if (fs::exists(path)) {
    std::istringstream in(read_text(path));
    std::string line;
    bool first = true;
    while (std::getline(in, line)) {
      if (first) {
        first = false;
        continue;
      }
      if (line.empty()) continue;
      if (std::stoll(line.substr(0, line.find(','))) <= iteration) kept += line + "\n";
    }
  }
  write_text(path, kept);
}

// [B, 3, S, 3S] -> one image with the samples stacked vertically.
io::Image grid_image(const Tensor& grid) {
  std::vector<Tensor> rows;
  for (int64_t b = 0; b < grid.size(0); ++b) rows.push_back(grid.narrow(0, b, 1));
  return io::tensor_to_image(cat(rows, 2), 0);
}

void rotate_checkpoints(const fs::path& dir, int64_t keep) {
  static const std::regex re("iteration_([0-9]+)\\.safetensors");
  std::vector<std::pair<int64_t, fs::path>> found;
  for (const auto& e : fs::directory_iterator(dir)) {
    std::smatch m;
    const std::string name = e.path().filename().string();
    if (std::regex_match(name, m, re)) found.emplace_back(std::stoll(m[1]), e.path());
  }
  std::sort(found.begin(), found.end());
  for (size_t i = 0; i + size_t(keep) < found.size(); ++i) fs::remove(found[i].second);
}

// One training stage as the experiment loop sees it: step, save, the image of the moment, and
// the bookkeeping keys of its configuration.
struct StageLoop {
  std::function<train::StepLog()> step;
  std::function<int64_t()> iteration;
  std::function<void(const std::string&)> save;
  std::function<io::Image()> image;      // null: no images
  std::vector<std::string> columns;      // metrics.csv columns after iteration,seconds,lr
  std::vector<std::string> progress;     // terms shown on the progress line
  double lr = 0;
  int64_t iterations = 0, log_every = 1, image_every = 0, save_every = 1, keep_last = 1;
  // Data parallel: every rank runs the loop; rank 0 alone writes. At every checkpoint the ranks
  // first check that their replicas are bit-identical (a collective). Null: one process.
  dist::ProcessGroup* pg = nullptr;
  std::function<std::vector<std::pair<std::string, Tensor>>()> replicas;
  std::function<double()> reduce_seconds;  // all-reduce time of the last step (for the progress line)
};

// The bookkeeping keys every stage configuration has under the same names.
template <class Config>
void with_bookkeeping(StageLoop& L, const Config& cfg) {
  L.lr = cfg.lr;
  L.iterations = cfg.iterations;
  L.log_every = cfg.log_every;
  L.image_every = cfg.image_every;
  L.save_every = cfg.save_every;
  L.keep_last = cfg.keep_last;
}

// EXP/report.html: each logged term of metrics.csv as a curve, and the latest sample image.
void write_train_report(const fs::path& exp, int64_t iteration, int64_t iterations) {
  report::Page page("gradstyle train: " + exp.filename().string());
  page.paragraph("Iteration " + std::to_string(iteration) + " of " + std::to_string(iterations) + "; " +
                 "curves drawn from metrics.csv (one point per logged iteration), checkpoints in checkpoints/.");
  const std::vector<uint8_t> csv = io::read_file_bytes((exp / "metrics.csv").string());
  const std::string curves = report::curves_svg(std::string(csv.begin(), csv.end()));
  page.heading("Loss terms");
  if (curves.empty())
    page.paragraph("Fewer than two rows logged yet.");
  else
    page.raw("<div>" + curves + "</div>\n");
  int64_t latest = -1;
  static const std::regex img_re("iteration_([0-9]+)\\.png");
  if (fs::is_directory(exp / "images"))
    for (const auto& e : fs::directory_iterator(exp / "images")) {
      std::smatch m;
      const std::string n = e.path().filename().string();
      if (std::regex_match(n, m, img_re)) latest = std::max<int64_t>(latest, std::stoll(m[1].str()));
    }
  if (latest >= 0) {
    page.heading("Samples at iteration " + std::to_string(latest));
    page.image("images/iteration_" + std::to_string(latest) + ".png", "samples", 768);
  }
  page.write((exp / "report.html").string());
}

// The loop shared by every stage: metrics.csv rows, progress lines, images/iteration_N.png,
// checkpoints/iteration_N + last.safetensors (serialised once; last is a crash-safe copy),
// report.html at every checkpoint.
void run_loop(const StageLoop& L, const fs::path& exp, bool quiet, std::ostream& err) {
  const fs::path ckpt_dir = exp / "checkpoints", last = ckpt_dir / "last.safetensors";
  const std::string metrics = (exp / "metrics.csv").string();
  const bool writer = !L.pg || L.pg->rank() == 0;
  const int rank = L.pg ? L.pg->rank() : 0;
  if (writer) prepare_metrics(metrics, L.iteration(), L.columns);
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t start = L.iteration();
  double step_s = 0, reduce_s = 0;
  while (L.iteration() < L.iterations) {
    dist::maybe_inject_fault(rank, L.iteration() + 1);
    train::StepLog log = L.step();
    const int64_t it = log.iteration;
    step_s += log.seconds;
    if (L.reduce_seconds) reduce_s += L.reduce_seconds();
    const bool image_now = L.image && L.image_every > 0 && it % L.image_every == 0;
    const bool save_now = it % L.save_every == 0 || it == L.iterations;
    if (L.pg && save_now) dist::check_replicas_equal(L.replicas(), *L.pg, "iteration " + std::to_string(it));
    // While rank 0 writes images and checkpoints the others wait for it, under the watchdog's
    // allowance for file I/O (a 1024 px checkpoint is gigabytes), not in the next step's
    // collectives.
    const bool io_wait = L.pg && (image_now || save_now);
    if (!writer) {
      if (io_wait) L.pg->wait_for_root_io();
      continue;
    }
    if (it % L.log_every == 0 || it == L.iterations) {
      std::ofstream m(metrics, std::ios::app);
      m << it << "," << std::setprecision(6) << log.seconds << "," << L.lr << std::setprecision(9);
      for (const auto& c : L.columns) {
        m << ",";
        if (auto f = log.terms.find(c); f != log.terms.end()) m << f->second;
      }
      m << "\n";
      if (!quiet) {
        const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        const double rate = double(it - start) / std::max(el, 1e-9);
        err << "[" << it << "/" << L.iterations << "]" << std::setprecision(4);
        for (const auto& k : L.progress)
          if (auto f = log.terms.find(k); f != log.terms.end()) err << " " << k << " " << f->second;
        err << "  " << std::setprecision(3) << rate << " it/s";
        if (L.pg) err << " (" << L.pg->size() << " ranks, all-reduce " << std::setprecision(2)
                      << 100.0 * reduce_s / std::max(step_s, 1e-9) << "%)";
        err << "  ETA " << format_duration(double(L.iterations - it) / std::max(rate, 1e-9)) << "\n";
      }
    }
    if (image_now)
      io::save_png((exp / "images" / ("iteration_" + std::to_string(it) + ".png")).string(), L.image());
    if (save_now) {
      const std::string path = (ckpt_dir / ("iteration_" + std::to_string(it) + ".safetensors")).string();
      L.save(path);
      io::atomic_write_file(last.string(), io::read_file_bytes(path));
      rotate_checkpoints(ckpt_dir, L.keep_last);
      write_train_report(exp, it, L.iterations);
    }
    if (io_wait) L.pg->wait_for_root_io();
  }
}

std::unique_ptr<train::DataSource> stage_data(const std::string& source, const std::string& dir, int64_t size,
                                              int64_t loss_size, double hflip, uint64_t toy_seed, int64_t toy_ids,
                                              uint64_t seed) {
  if (source == "toyfaces") return train::toyfaces_source(size, loss_size, toy_seed, toy_ids);
  return train::folder_source(dir, size, loss_size, hflip, seed);
}

// "stage": "stylegan2": G, D and g_ema from scratch (train::StyleGAN2Trainer).
// The device of one rank: cuda:<local rank> when the configuration asks for a GPU.
Device rank_device(const std::string& requested, const dist::ProcessGroup& pg) {
  Device d = pick_device(requested);
  if (pg.size() > 1 && d.is_cuda()) d = pick_device("cuda:" + std::to_string(pg.local_rank()));  // one GPU a rank
  return d;
}

// " per rank x N ranks = M a step (MPI all-reduce)" when data parallel, "" otherwise.
std::string ranks_note(int64_t batch, const dist::ProcessGroup& pg, const Device& d) {
  if (pg.size() == 1) return "";
  return " per rank x " + std::to_string(pg.size()) + " ranks = " + std::to_string(batch * pg.size()) + " a step (" +
         (d.is_cuda() && dist::nccl_built() ? "NCCL" : "MPI") + " all-reduce)";
}

// Data parallel: what every rank read from its own disk (the frozen networks, the data set's
// files) must be the same everywhere; then rank 0 makes the folders and loads the checkpoint on
// resume, and every rank takes rank 0's state (its initialisation, or the checkpoint).
// EXP/ranks.json records the number of ranks; resuming with another number warns (the run goes
// on, but its global batch changes).
template <class T>
void start_state(T& t, const TrainArgs& a, const fs::path& exp, dist::ProcessGroup& pg, const std::string& data_fp,
                 std::ostream& err) {
  if (pg.size() > 1) {
    dist::check_replicas_equal(t.frozen_state(), pg, "the frozen networks (generator, encoder, loss networks)");
    dist::check_same_text(data_fp, pg, "the training data (file names and sizes)");
  }
  if (pg.rank() == 0) {
    fs::create_directories(exp / "checkpoints");
    fs::create_directories(exp / "images");
    const fs::path ranks_file = exp / "ranks.json";
    if (a.resume && fs::exists(ranks_file)) {
      const int64_t before = json::parse(read_text(ranks_file.string())).value("ranks", int64_t(1));
      if (before != pg.size())
        err << "train: warning: this run was trained on " << before << " rank(s) and resumes on " << pg.size()
            << ": the global batch changes from " << before << " to " << pg.size() << " times 'batch'\n";
    }
    write_text(ranks_file.string(), "{\"ranks\": " + std::to_string(pg.size()) + "}\n");
    if (a.resume) t.load((exp / "checkpoints" / "last.safetensors").string());
  }
  dist::broadcast_state(pg, 0, [&t] { return t.serialize(); },
                        [&t](const std::vector<uint8_t>& b, const std::string& n) { t.deserialize(b, n); });
}

template <class T>
void with_ranks(StageLoop& L, T& t, dist::ProcessGroup& pg) {
  if (pg.size() == 1) return;
  L.pg = &pg;
  L.replicas = [&t] { return t.replicated_state(); };
  L.reduce_seconds = [&t] { return t.last_reduce_seconds(); };
}

int run_train_stylegan2(const TrainArgs& a, const std::string& cfg_text, dist::ProcessGroup& pg, std::ostream& out,
                        std::ostream& err) {
  const fs::path exp(a.exp_dir);
  train::StyleGAN2TrainConfig cfg = train::StyleGAN2TrainConfig::parse(cfg_text);
  if (a.seed >= 0) cfg.seed = uint64_t(a.seed);
  const Device device = rank_device(cfg.device, pg);
  auto data = stage_data(cfg.data_source, cfg.data, cfg.size, cfg.size, cfg.hflip, cfg.toyfaces_seed,
                         cfg.toyfaces_identities, cfg.seed);
  const std::string data_desc = data->describe(), data_fp = data->fingerprint();
  train::StyleGAN2Trainer t(cfg, std::move(data), device, &pg);
  start_state(t, a, exp, pg, data_fp, err);
  if (pg.rank() == 0) write_text((exp / "opt.json").string(), cfg.dump(2) + "\n");
  out << "train: " << (a.resume ? "resuming " : "starting ") << "StyleGAN2 " << a.exp_dir << " at iteration "
      << t.iteration() << " of " << cfg.iterations << " on " << device.str() << "; batch " << cfg.batch
      << ranks_note(cfg.batch, pg, device) << ", G " << t.G().num_parameters() << " and D " << t.D().num_parameters()
      << " parameters (" << t.G().config().str() << "); data: " << data_desc << "\n";
  StageLoop L;
  L.step = [&] { return t.step(); };
  L.iteration = [&] { return t.iteration(); };
  L.save = [&](const std::string& p) { t.save(p); };
  L.image = [&] {
    // A 4 x 4 sheet of g_ema's images for fixed latents: the same faces at every iteration.
    Tensor s = clamp(t.samples(16), -1.0, 1.0);
    std::vector<Tensor> rows;
    for (int64_t r = 0; r < 4; ++r) rows.push_back(cat({s.narrow(0, 4 * r, 1), s.narrow(0, 4 * r + 1, 1),
                                                       s.narrow(0, 4 * r + 2, 1), s.narrow(0, 4 * r + 3, 1)}, 3));
    return io::tensor_to_image(cat(rows, 2), 0);
  };
  L.columns = {"d_loss", "real_score", "fake_score", "g_loss", "r1", "path", "path_length"};
  L.progress = {"d_loss", "g_loss", "real_score", "fake_score"};
  with_ranks(L, t, pg);
  with_bookkeeping(L, cfg);
  run_loop(L, exp, a.quiet, err);
  out << "train: done, " << t.iteration() << " iterations; checkpoint " << (exp / "checkpoints" / "last.safetensors").string()
      << " (a rosinality-layout generator checkpoint: g_ema, latent_avg, d)\n";
  return 0;
}

// "stage": "e4e": an e4e encoder against a frozen generator (train::E4ETrainer).
int run_train_e4e(const TrainArgs& a, const std::string& cfg_text, dist::ProcessGroup& pg, std::ostream& out,
                  std::ostream& err) {
  const fs::path exp(a.exp_dir);
  train::E4ETrainConfig cfg = train::E4ETrainConfig::parse(cfg_text);
  if (a.seed >= 0) cfg.seed = uint64_t(a.seed);
  const Device device = rank_device(cfg.device, pg);
  models::stylegan2::Generator::LoadOptions go;
  go.device = device;
  auto G = models::stylegan2::Generator::from_checkpoint(cfg.generator, go);
  const int64_t size = G->config().size;
  auto data = stage_data(cfg.data_source, cfg.data, size, size, cfg.hflip, cfg.toyfaces_seed, cfg.toyfaces_identities,
                         cfg.seed);
  const std::string data_desc = data->describe(), data_fp = data->fingerprint();
  train::E4ETrainer t(cfg, std::move(G), std::move(data), &pg);
  start_state(t, a, exp, pg, data_fp, err);
  if (pg.rank() == 0) write_text((exp / "opt.json").string(), cfg.dump(2) + "\n");
  out << "train: " << (a.resume ? "resuming " : "starting ") << "e4e " << a.exp_dir << " at iteration " << t.iteration()
      << " of " << cfg.iterations << " on " << device.str() << "; batch " << cfg.batch << ranks_note(cfg.batch, pg, device)
      << ", encoder "
      << t.E().num_parameters() << " parameters (" << t.E().config().str() << "); data: " << data_desc << "\n";
  StageLoop L;
  L.step = [&] { return t.step(); };
  L.iteration = [&] { return t.iteration(); };
  L.save = [&](const std::string& p) { t.save(p); };
  L.image = [&] { return grid_image(t.last_grid()); };
  L.columns = {"total", "l2", "delta", "latent", "stage"};
  L.progress = {"total", "l2", "latent", "stage"};
  with_ranks(L, t, pg);
  with_bookkeeping(L, cfg);
  run_loop(L, exp, a.quiet, err);
  out << "train: done, " << t.iteration() << " iterations; checkpoint " << (exp / "checkpoints" / "last.safetensors").string()
      << " (an e4e encoder checkpoint: encoder.*, latent_avg)\n";
  return 0;
}

// "stage": "toyid": the toy identity network (train::IDTrainer).
int run_train_toyid(const TrainArgs& a, const std::string& cfg_text, dist::ProcessGroup& pg, std::ostream& out,
                    std::ostream& err) {
  const fs::path exp(a.exp_dir);
  train::IDTrainConfig cfg = train::IDTrainConfig::parse(cfg_text);
  if (a.seed >= 0) cfg.seed = uint64_t(a.seed);
  const Device device = rank_device(cfg.device, pg);
  train::IDTrainer t(cfg, device, &pg);
  start_state(t, a, exp, pg, "toyfaces rendered on the fly (seed " + std::to_string(cfg.toyfaces_seed) + ")", err);
  if (pg.rank() == 0) write_text((exp / "opt.json").string(), cfg.dump(2) + "\n");
  out << "train: " << (a.resume ? "resuming " : "starting ") << "toyid " << a.exp_dir << " at iteration "
      << t.iteration() << " of " << cfg.iterations << " on " << device.str() << "; " << cfg.identities
      << " identities x " << cfg.views << " views a batch" << ranks_note(cfg.identities, pg, device) << ", network "
      << t.net().num_parameters() << " parameters (" << t.net().config().str() << ")\n";
  StageLoop L;
  L.step = [&] { return t.step(); };
  L.iteration = [&] { return t.iteration(); };
  L.save = [&](const std::string& p) {
    t.save(p);
    // The network alone: what ArcFaceID::from_checkpoint (the ID loss and metric) reads.
    t.save_network((exp / "toyid.safetensors").string());
  };
  L.columns = {"loss", "pos", "neg", "acc"};
  L.progress = {"loss", "pos", "neg", "acc"};
  with_ranks(L, t, pg);
  with_bookkeeping(L, cfg);
  run_loop(L, exp, a.quiet, err);
  if (pg.rank() != 0) return 0;  // the evaluation below is the same on every rank: rank 0 prints it
  const train::IDEval e = t.evaluate(256), h = t.evaluate(256, true);
  out << "train: done, " << t.iteration() << " iterations; held-out identities (" << e.identities
      << ", two edits each): same-identity cosine " << e.pos << ", different " << e.neg << ", top-1 " << e.top1
      << "; with siblings: different " << h.neg << ", top-1 " << h.top1 << "; network "
      << (exp / "toyid.safetensors").string() << "\n";
  return 0;
}

// Canonical dump of a stage configuration, for comparing a given --config with the run's own.
std::string canonical(const std::string& stage, const std::string& text) {
  if (stage == "stylegan2") return train::StyleGAN2TrainConfig::parse(text).dump();
  if (stage == "e4e") return train::E4ETrainConfig::parse(text).dump();
  if (stage == "toyid") return train::IDTrainConfig::parse(text).dump();
  auto c = train::TrainConfig::parse(without_stage(text), gsn::GradStyleConfig::keys());
  return full_config(c, gsn::GradStyleConfig::from_json_text(c.model_json)).dump();
}

}  // namespace

namespace {

// One rank's (or the only process's) run. pg.size() > 1: rank 0 reads and checks the
// configuration and broadcasts it, writes every file, and its state is broadcast to the others.
int train_process(const TrainArgs& a, dist::ProcessGroup& pg, std::ostream& out, std::ostream& err) {
  if (a.exp_dir.empty()) throw UsageError("--exp_dir is required");
  const fs::path exp(a.exp_dir);
  const fs::path opt_path = exp / "opt.json", ckpt_dir = exp / "checkpoints", last = ckpt_dir / "last.safetensors";
  const bool parallel = pg.size() > 1, writer = pg.rank() == 0;

  // ---- configuration ----
  std::string cfg_text;
  if (!writer) {
    // rank 0 checks everything below; a failure there stops the job
  } else if (a.resume) {
    if (!fs::exists(last))
      throw UsageError("--resume: " + io::quoted(last.string()) + " does not exist (nothing to resume)");
    cfg_text = read_text(opt_path.string());
    if (!a.config.empty()) {
      // The given configuration must be the run's own: a changed key would break the resume promise.
      const std::string given_text = read_text(a.config);
      const std::string stage = stage_of(cfg_text);
      if (stage_of(given_text) != stage)
        throw UsageError("--resume with --config: the configuration's stage (" + stage_of(given_text) +
                         ") differs from the run's opt.json (" + stage + ")");
      json g = json::parse(canonical(stage, given_text)), s = json::parse(canonical(stage, cfg_text));
      std::string diff;
      for (auto& [k, v] : s.items())
        if (k != "iterations" && g[k] != v) diff += (diff.empty() ? "" : ", ") + k + " (" + v.dump() + " -> " + g[k].dump() + ")";
      if (!diff.empty())
        throw UsageError("--resume with --config: the configuration differs from the run's opt.json in " + diff +
                         " (only 'iterations' may change)");
      cfg_text = given_text;
    }
  } else {
    if (a.config.empty()) throw UsageError("--config is required (a JSON file with the keys of SPEC B.9)");
    if (fs::exists(exp) && !fs::is_empty(exp))
      throw UsageError("--exp_dir " + io::quoted(a.exp_dir) +
                       " exists and is not empty: pass --resume to continue it, or choose a new folder");
    cfg_text = read_text(a.config);
  }
  if (parallel) {
    std::vector<uint8_t> b(cfg_text.begin(), cfg_text.end());
    pg.broadcast_bytes(b, 0);
    cfg_text.assign(b.begin(), b.end());
  }
  const std::string stage = stage_of(cfg_text);
  if (stage == "stylegan2") return run_train_stylegan2(a, cfg_text, pg, out, err);
  if (stage == "e4e") return run_train_e4e(a, cfg_text, pg, out, err);
  if (stage == "toyid") return run_train_toyid(a, cfg_text, pg, out, err);
  train::TrainConfig cfg = train::TrainConfig::parse(without_stage(cfg_text), gsn::GradStyleConfig::keys());
  if (a.seed >= 0) cfg.seed = uint64_t(a.seed);
  const gsn::GradStyleConfig net_cfg = gsn::GradStyleConfig::from_json_text(cfg.model_json);
  const Device device = rank_device(cfg.device, pg);

  // ---- networks and data ----
  train::Networks nets = train::load_networks(cfg, device);
  std::unique_ptr<train::DataSource> data;
  if (cfg.data_source == "generator") {
    data = train::generator_source(*nets.G, cfg.loss_resolution);
  } else {
    if (cfg.data_source == "folder" && cfg.data.empty())
      throw UsageError("training config: 'data' (a folder of images) is required for data_source = folder");
    data = stage_data(cfg.data_source, cfg.data, nets.G->config().size, cfg.loss_resolution, cfg.hflip,
                      cfg.toyfaces_seed, cfg.toyfaces_identities, cfg.seed);
  }
  const std::string data_desc = data->describe(), data_fp = data->fingerprint();
  train::Trainer trainer(cfg, net_cfg, std::move(nets), std::move(data), &pg);

  start_state(trainer, a, exp, pg, data_fp, err);
  if (writer) write_text(opt_path.string(), full_config(cfg, net_cfg).dump(2) + "\n");
  out << "train: " << (a.resume ? "resuming " : "starting ") << a.exp_dir << " at iteration " << trainer.iteration()
      << " of " << cfg.iterations << " on " << device.str() << "; batch " << cfg.batch
      << ranks_note(cfg.batch, pg, device) << ", " << trainer.net().num_modules() << " refined blocks, " << trainer.net().num_parameters(true)
      << " trainable parameters; data: " << data_desc << "\n";
  StageLoop L;
  L.step = [&] { return trainer.step(); };
  L.iteration = [&] { return trainer.iteration(); };
  L.save = [&](const std::string& p) {
    trainer.save(p);
    // The network alone, in the format GradStyleNet::load (and `gradstyle bundle`) reads.
    trainer.net().save((exp / "gradstyle_net.safetensors").string(), {cfg.generator, cfg.encoder});
  };
  L.image = [&] { return grid_image(trainer.last_grid()); };
  L.columns = kColumns;
  L.progress = {"total", "l2", "aligner", "d_loss"};
  with_ranks(L, trainer, pg);
  with_bookkeeping(L, cfg);
  run_loop(L, exp, a.quiet, err);
  out << "train: done, " << trainer.iteration() << " iterations; checkpoint " << last.string() << "\n";
  return 0;
}

}  // namespace

int run_train(const TrainArgs& a, std::ostream& out, std::ostream& err) {
  dist::init(nullptr, nullptr);  // joins the MPI job when started by mpirun
  struct Finalize {
    ~Finalize() { dist::finalize(); }
  } finalize_at_exit;
  dist::ProcessGroup& pg = dist::world();
  if (pg.size() == 1) return train_process(a, pg, out, err);
  // N ranks on one node share its cores unless OMP_NUM_THREADS says otherwise, or the launcher
  // already gave each rank its own cores (a CPU mask smaller than the node: mpirun's binding).
  if (!std::getenv("OMP_NUM_THREADS")) {
    cpu_set_t mask;
    const long online = sysconf(_SC_NPROCESSORS_ONLN);
    const bool whole_node = sched_getaffinity(0, sizeof(mask), &mask) == 0 && CPU_COUNT(&mask) >= online;
    if (whole_node) omp_set_num_threads(std::max(1, omp_get_num_procs() / pg.local_size()));
  }
  std::ostringstream sink;  // ranks other than 0 print nothing but their errors
  std::ostream& o = pg.rank() == 0 ? out : sink;
  std::ostream& e = pg.rank() == 0 ? err : sink;
  int rc = 0;
  try {
    rc = train_process(a, pg, o, e);
  } catch (const UsageError& ex) {
    pg.abort(std::string("error: ") + ex.what(), 2);  // one rank's error stops every rank
  } catch (const std::exception& ex) {
    pg.abort(std::string("error: ") + ex.what(), 1);
  }
  pg.barrier();
  return rc;
}

}  // namespace gradstyle::cli
