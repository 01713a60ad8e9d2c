// `gradstyle eval`: pairs the images of two folders and measures them (SPEC D.2 definitions).
#include "cli/eval.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unistd.h>

#include "cli/commands.hpp"
#include "cli/report.hpp"
#include "gradstyle/autograd/autograd.hpp"
#include "gradstyle/core/error.hpp"
#include "gradstyle/eval/metrics.hpp"
#include "gradstyle/io/file.hpp"
#include "gradstyle/io/image.hpp"
#include "gradstyle/io/tensor_bridge.hpp"
#include "gradstyle/models/arcface.hpp"
#include "gradstyle/io/safetensors.hpp"
#include "gradstyle/io/sniff.hpp"
#include "gradstyle/train/id_trainer.hpp"
#include "gradstyle/models/lpips.hpp"

namespace gradstyle::cli {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::vector<fs::path> images_of(const std::string& dir, const char* flag) {
  std::vector<fs::path> v;
  for (const auto& f : list_images(dir, flag)) v.emplace_back(f);
  return v;
}

Tensor load(const fs::path& p, int64_t res) {
  io::Image img = io::load_image(p.string());
  if (res > 0 && (img.width != res || img.height != res)) img = io::resize_pil(img, int(res), int(res));
  return io::image_to_tensor(img);
}

}  // namespace

int run_eval(const EvalArgs& a, std::ostream& out, std::ostream& err) {
  if (a.gt_dir.empty() || a.pred_dir.empty() || a.save_dir.empty())
    throw UsageError("eval: --images_dir, --pred_dir and --save_dir are required");
  std::vector<std::string> metrics;
  {
    std::stringstream s(a.metrics);
    std::string m;
    while (std::getline(s, m, ','))
      if (!m.empty()) metrics.push_back(m);
  }
  for (const auto& m : metrics)
    if (m != "l2" && m != "psnr" && m != "ssim" && m != "lpips" && m != "id")
      throw UsageError("--metrics: unknown metric '" + m + "' (l2, psnr, ssim, lpips, id)");
  const bool want_lpips = std::count(metrics.begin(), metrics.end(), "lpips") > 0;
  const bool want_id = std::count(metrics.begin(), metrics.end(), "id") > 0;
  if (want_lpips && (a.lpips_trunk.empty() || a.lpips_heads.empty()))
    throw UsageError("--metrics lpips needs --lpips-trunk (torchvision vgg16 weights) and --lpips-heads (lpips v0.1 vgg.pth)");
  if (want_id && a.id.empty()) throw UsageError("--metrics id needs --id (model_ir_se50.pth, or a toyid stage's toyid.safetensors)");
  if (fs::exists(a.save_dir) && !fs::is_empty(a.save_dir) && !a.overwrite)
    throw UsageError("--save_dir " + io::quoted(a.save_dir) + " exists and is not empty (pass --overwrite)");

  // Pairs, all checked before anything is measured or written.
  const auto gt = images_of(a.gt_dir, "--images_dir"), pred = images_of(a.pred_dir, "--pred_dir");
  std::vector<std::pair<fs::path, fs::path>> pairs;
  if (a.by_order) {
    if (gt.size() != pred.size())
      throw UsageError("--by-order: " + std::to_string(gt.size()) + " ground-truth images but " +
                       std::to_string(pred.size()) + " predictions");
    for (size_t i = 0; i < gt.size(); ++i) pairs.emplace_back(gt[i], pred[i]);
  } else {
    std::map<std::string, fs::path> by_stem;
    for (const auto& p : pred) by_stem[p.stem().string()] = p;
    for (const auto& g : gt)
      if (auto it = by_stem.find(g.stem().string()); it != by_stem.end()) pairs.emplace_back(g, it->second);
    if (pairs.empty())
      throw UsageError("eval: no file name of --images_dir has a prediction of the same name in --pred_dir (--by-order pairs by position)");
    if (pairs.size() < gt.size() && !a.quiet)
      err << "eval: " << gt.size() - pairs.size() << " ground-truth images have no prediction and are left out\n";
  }

  const Device device = pick_device(a.device);
  std::unique_ptr<models::lpips::LPIPS> lp;
  std::unique_ptr<models::arcface::ArcFaceID> idnet;
  if (want_lpips) {
    models::lpips::LPIPS::LoadOptions o;
    o.device = device;
    lp = models::lpips::LPIPS::from_files(a.lpips_trunk, a.lpips_heads, o);
  }
  if (want_id) {
    models::arcface::ArcFaceID::LoadOptions o;
    o.device = device;
    // The toy identity network (a toyid-stage toyid.safetensors) reads the whole image at its own
    // input size; ArcFace crops the 256 px FFHQ face box.
    std::map<std::string, std::string> meta;
    if (io::sniff_file(a.id) == io::FileKind::Safetensors) meta = io::SafetensorsFile(a.id).metadata();
    if (meta.count("format") && meta["format"] == "gradstyle-toyid-backbone-1") {
      const int64_t s = train::IDTrainConfig::parse(meta["toyid_train_config"]).size;
      o.crop.image_size = o.crop.bottom = o.crop.right = o.crop.pool_size = s;
      o.crop.top = o.crop.left = 0;
    }
    idnet = models::arcface::ArcFaceID::from_checkpoint(a.id, o);
  }

  autograd::NoGradGuard ng;
  std::map<std::string, std::vector<double>> values;
  std::vector<std::vector<std::string>> per_image;  // report rows: name, metric values
  std::ostringstream csv;
  csv << "name";
  for (const auto& m : metrics) csv << "," << m;
  csv << "\n";
  std::ostringstream sink;
  Progress progress(int64_t(pairs.size()), a.quiet ? static_cast<std::ostream&>(sink) : err, !a.quiet && ::isatty(2) != 0);
  for (const auto& [g, p] : pairs) {
    Tensor x = load(g, a.resolution), y = load(p, a.resolution);
    if (x.shape() != y.shape())
      throw ShapeError("eval: " + g.string() + " is " + shape_str(x.shape()) + " but " + p.string() + " is " +
                       shape_str(y.shape()) + " (pass --resolution N to resize both)");
    csv << g.filename().string();
    per_image.push_back({g.filename().string()});
    for (const auto& m : metrics) {
      double v = 0;
      if (m == "l2") v = eval::l2(y, x)[0];
      if (m == "psnr") v = eval::psnr(y, x)[0];
      if (m == "ssim") v = eval::ssim(y, x)[0];
      if (m == "lpips") v = lp->forward(y.to(device), x.to(device)).to(Device::cpu()).to_vector<double>().at(0);
      if (m == "id") v = idnet->similarity(y.to(device), x.to(device)).to(Device::cpu()).to_vector<double>().at(0);
      values[m].push_back(v);
      csv << "," << std::setprecision(9) << v;
      std::ostringstream cell;
      cell << std::fixed << std::setprecision(5) << v;
      per_image.back().push_back(cell.str());
    }
    csv << "\n";
    progress.step(g.filename().string());
  }
  progress.done();

  json summary = json::object();
  summary["images"] = pairs.size();
  summary["resolution"] = a.resolution > 0 ? json(a.resolution) : json("as stored");
  summary["images_dir"] = a.gt_dir;
  summary["pred_dir"] = a.pred_dir;
  std::ostringstream table;
  table << std::left << std::setw(8) << "metric" << std::right << std::setw(12) << "mean" << std::setw(12) << "std" << "\n";
  for (const auto& m : metrics) {
    const auto& v = values[m];
    const double mean = eval::mean_of(v);
    double var = 0;
    for (double x : v) var += (x - mean) * (x - mean);
    const double sd = v.size() > 1 ? std::sqrt(var / double(v.size() - 1)) : 0.0;
    summary["metrics"][m] = {{"mean", mean}, {"std", sd}};
    table << std::left << std::setw(8) << m << std::right << std::fixed << std::setprecision(5) << std::setw(12) << mean
          << std::setw(12) << sd << "\n";
  }
  fs::create_directories(a.save_dir);
  const std::string c = csv.str(), s = summary.dump(2) + "\n";
  io::atomic_write_file((fs::path(a.save_dir) / "metrics.csv").string(), std::vector<uint8_t>(c.begin(), c.end()));
  io::atomic_write_file((fs::path(a.save_dir) / "summary.json").string(), std::vector<uint8_t>(s.begin(), s.end()));
  {
    report::Page page("gradstyle eval: " + std::to_string(pairs.size()) + " image pairs");
    page.paragraph("Ground truth " + a.gt_dir + ", predictions " + a.pred_dir + " (" +
                   (a.resolution > 0 ? "both resized to " + std::to_string(a.resolution) + " px" : std::string("as stored")) +
                   "); per-image values in metrics.csv, these in summary.json.");
    std::vector<std::vector<std::string>> rows;
    for (const auto& m : metrics) {
      std::ostringstream mean, sd;
      mean << std::fixed << std::setprecision(5) << summary["metrics"][m]["mean"].get<double>();
      sd << std::fixed << std::setprecision(5) << summary["metrics"][m]["std"].get<double>();
      rows.push_back({m, mean.str(), sd.str()});
    }
    page.table({"metric", "mean", "std"}, rows);
    page.heading("Per image");
    const size_t shown = std::min<size_t>(pairs.size(), 100);
    if (shown < pairs.size()) page.paragraph("The first 100 of " + std::to_string(pairs.size()) + " pairs.");
    std::vector<std::string> header = {"name"};
    header.insert(header.end(), metrics.begin(), metrics.end());
    page.table(header, std::vector<std::vector<std::string>>(per_image.begin(), per_image.begin() + long(shown)));
    std::vector<std::vector<std::string>> thumbs;
    for (size_t i = 0; i < shown; ++i)
      thumbs.push_back({report::relative_ref(a.save_dir, pairs[i].first.string()),
                        report::relative_ref(a.save_dir, pairs[i].second.string())});
    page.image_table({"ground truth", "prediction"}, thumbs, 128);
    page.write((fs::path(a.save_dir) / "report.html").string());
  }
  out << "eval: " << pairs.size() << " image pairs\n" << table.str();
  out << "eval: wrote " << (fs::path(a.save_dir) / "metrics.csv").string() << ", "
      << (fs::path(a.save_dir) / "summary.json").string() << " and report.html\n";
  return 0;
}

}  // namespace gradstyle::cli
