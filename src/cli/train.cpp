// `gradstyle train`: the experiment folder around train::Trainer (configuration, resume,
// metrics, image grids, checkpoint rotation).
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "cli/commands.hpp"
#include "gradstyle/core/error.hpp"
#include "gradstyle/io/file.hpp"
#include "gradstyle/io/image.hpp"
#include "gradstyle/io/tensor_bridge.hpp"
#include "gradstyle/ops/shape.hpp"
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

// Keeps the rows of metrics.csv up to `iteration` (a killed run may have logged past its last
// checkpoint); writes the header when the file is new.
void prepare_metrics(const std::string& path, int64_t iteration) {
  std::string header = "iteration,seconds,lr";
  for (const auto& c : kColumns) header += "," + c;
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

}  // namespace

int run_train(const TrainArgs& a, std::ostream& out, std::ostream& err) {
  if (a.exp_dir.empty()) throw UsageError("--exp_dir is required");
  const fs::path exp(a.exp_dir);
  const fs::path opt_path = exp / "opt.json", ckpt_dir = exp / "checkpoints", last = ckpt_dir / "last.safetensors";

  // ---- configuration ----
  std::string cfg_text;
  if (a.resume) {
    if (!fs::exists(last))
      throw UsageError("--resume: " + io::quoted(last.string()) + " does not exist (nothing to resume)");
    cfg_text = read_text(opt_path.string());
    if (!a.config.empty()) {
      // The given configuration must be the run's own: a changed key would break the resume promise.
      auto given = train::TrainConfig::parse(read_text(a.config), gsn::GradStyleConfig::keys());
      auto saved = train::TrainConfig::parse(cfg_text, gsn::GradStyleConfig::keys());
      json g = full_config(given, gsn::GradStyleConfig::from_json_text(given.model_json));
      json s = full_config(saved, gsn::GradStyleConfig::from_json_text(saved.model_json));
      std::string diff;
      for (auto& [k, v] : s.items())
        if (k != "iterations" && g[k] != v) diff += (diff.empty() ? "" : ", ") + k + " (" + v.dump() + " -> " + g[k].dump() + ")";
      if (!diff.empty())
        throw UsageError("--resume with --config: the configuration differs from the run's opt.json in " + diff +
                         " (only 'iterations' may change)");
      cfg_text = read_text(a.config);
    }
  } else {
    if (a.config.empty()) throw UsageError("--config is required (a JSON file with the keys of SPEC B.9)");
    if (fs::exists(exp) && !fs::is_empty(exp))
      throw UsageError("--exp_dir " + io::quoted(a.exp_dir) +
                       " exists and is not empty: pass --resume to continue it, or choose a new folder");
    cfg_text = read_text(a.config);
  }
  train::TrainConfig cfg = train::TrainConfig::parse(cfg_text, gsn::GradStyleConfig::keys());
  if (a.seed >= 0) cfg.seed = uint64_t(a.seed);
  const gsn::GradStyleConfig net_cfg = gsn::GradStyleConfig::from_json_text(cfg.model_json);
  const Device device = pick_device(cfg.device);

  // ---- networks and data ----
  train::Networks nets = train::load_networks(cfg, device);
  std::unique_ptr<train::DataSource> data;
  if (cfg.data_source == "generator") {
    data = train::generator_source(*nets.G, cfg.loss_resolution);
  } else {
    if (cfg.data.empty()) throw UsageError("training config: 'data' (a folder of images) is required for data_source = folder");
    data = train::folder_source(cfg.data, nets.G->config().size, cfg.loss_resolution, cfg.hflip, cfg.seed);
  }
  const std::string data_desc = data->describe();
  train::Trainer trainer(cfg, net_cfg, std::move(nets), std::move(data));

  fs::create_directories(ckpt_dir);
  fs::create_directories(exp / "images");
  if (a.resume) {
    trainer.load(last.string());
  }
  write_text(opt_path.string(), full_config(cfg, net_cfg).dump(2) + "\n");
  const std::string metrics = (exp / "metrics.csv").string();
  prepare_metrics(metrics, trainer.iteration());

  out << "train: " << (a.resume ? "resuming " : "starting ") << a.exp_dir << " at iteration " << trainer.iteration()
      << " of " << cfg.iterations << " on " << device.str() << "; batch " << cfg.batch << ", "
      << trainer.net().num_modules() << " refined blocks, " << trainer.net().num_parameters(true)
      << " trainable parameters; data: " << data_desc << "\n";

  const auto t0 = std::chrono::steady_clock::now();
  const int64_t start = trainer.iteration();
  auto save_all = [&](int64_t it) {
    // Serialised once; last.safetensors is a crash-safe copy of the same bytes.
    const std::string path = (ckpt_dir / ("iteration_" + std::to_string(it) + ".safetensors")).string();
    trainer.save(path);
    io::atomic_write_file(last.string(), io::read_file_bytes(path));
    rotate_checkpoints(ckpt_dir, cfg.keep_last);
  };
  while (trainer.iteration() < cfg.iterations) {
    train::StepLog log = trainer.step();
    const int64_t it = log.iteration;
    if (it % cfg.log_every == 0 || it == cfg.iterations) {
      std::ofstream m(metrics, std::ios::app);
      m << it << "," << std::setprecision(6) << log.seconds << "," << trainer.config().lr;
      m << std::setprecision(9);
      for (const auto& c : kColumns) {
        m << ",";
        if (auto f = log.terms.find(c); f != log.terms.end()) m << f->second;
      }
      m << "\n";
      if (!a.quiet) {
        const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        const double rate = double(it - start) / std::max(el, 1e-9);
        err << "[" << it << "/" << cfg.iterations << "] loss " << std::setprecision(4) << log.terms["total"];
        for (const char* k : {"l2", "aligner", "d_loss"})
          if (log.terms.count(k)) err << " " << k << " " << log.terms[k];
        err << "  " << std::setprecision(3) << rate << " it/s  ETA "
            << format_duration(double(cfg.iterations - it) / std::max(rate, 1e-9)) << "\n";
      }
    }
    if (cfg.image_every > 0 && it % cfg.image_every == 0)
      io::save_png((exp / "images" / ("iteration_" + std::to_string(it) + ".png")).string(), grid_image(trainer.last_grid()));
    if (it % cfg.save_every == 0 || it == cfg.iterations) save_all(it);
  }
  out << "train: done, " << trainer.iteration() << " iterations; checkpoint " << last.string() << "\n";
  return 0;
}

}  // namespace gradstyle::cli
