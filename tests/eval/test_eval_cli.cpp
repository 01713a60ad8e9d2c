// `gradstyle eval` (run_eval): pairs by name or order, the per-image values are the metric
// functions' on the files as read back, the summary is their mean, and bad input is refused
// before anything is written.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unistd.h>

#include "cli/commands.hpp"
#include "cli/eval.hpp"
#include "gradstyle/data/toyfaces.hpp"
#include "gradstyle/eval/metrics.hpp"
#include "gradstyle/io/image.hpp"
#include "gradstyle/io/tensor_bridge.hpp"
#include "gradstyle/models/arcface.hpp"
#include "gradstyle/train/id_trainer.hpp"

using namespace gradstyle;
namespace fs = std::filesystem;
namespace tf = gradstyle::data::toyfaces;

namespace {

struct Folders {
  fs::path root, gt, pred;
  Folders() {
    root = fs::temp_directory_path() / ("gs_eval_cli_" + std::to_string(::getpid()));
    fs::remove_all(root);
    gt = root / "gt";
    pred = root / "pred";
    fs::create_directories(gt);
    fs::create_directories(pred);
    for (int k = 0; k < 3; ++k) {
      auto id = tf::sample_identity(0, tf::heldout_index(k));
      tf::ToyEdit e;
      io::save_png((gt / ("img" + std::to_string(k) + ".png")).string(), tf::render_image(id, e, 32));
      e.smile = 0.5;  // the "prediction": the same face smiling
      io::save_png((pred / ("img" + std::to_string(k) + ".png")).string(), tf::render_image(id, e, 32));
    }
    std::ofstream(gt / "notes.txt") << "not an image";
  }
  ~Folders() { fs::remove_all(root); }
  cli::EvalArgs args() const {
    cli::EvalArgs a;
    a.gt_dir = gt.string();
    a.pred_dir = pred.string();
    a.save_dir = (root / "out").string();
    a.device = "cpu";
    a.quiet = true;
    return a;
  }
};

std::string read(const fs::path& p) {
  std::ifstream f(p);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

}  // namespace

TEST_CASE("gradstyle eval: per-image values equal the metric functions on the files, summary = their mean") {
  Folders f;
  cli::EvalArgs a = f.args();
  std::ostringstream out, err;
  REQUIRE(cli::run_eval(a, out, err) == 0);
  const std::string csv = read(f.root / "out" / "metrics.csv");
  std::istringstream in(csv);
  std::string line;
  std::getline(in, line);
  CHECK(line == "name,l2,psnr,ssim");
  double sum_ssim = 0;
  for (int k = 0; k < 3; ++k) {
    REQUIRE(std::getline(in, line));
    std::stringstream row(line);
    std::string name, v;
    std::getline(row, name, ',');
    CHECK(name == "img" + std::to_string(k) + ".png");
    Tensor x = io::image_to_tensor(io::load_image((f.gt / name).string()));
    Tensor y = io::image_to_tensor(io::load_image((f.pred / name).string()));
    std::getline(row, v, ',');
    CHECK(std::stod(v) == doctest::Approx(eval::l2(y, x)[0]).epsilon(1e-7));
    std::getline(row, v, ',');
    CHECK(std::stod(v) == doctest::Approx(eval::psnr(y, x)[0]).epsilon(1e-7));
    std::getline(row, v, ',');
    CHECK(std::stod(v) == doctest::Approx(eval::ssim(y, x)[0]).epsilon(1e-7));
    sum_ssim += std::stod(v);
    CHECK(std::stod(v) < 1.0);
  }
  auto s = nlohmann::json::parse(read(f.root / "out" / "summary.json"));
  CHECK(s["images"] == 3);
  CHECK(s["metrics"]["ssim"]["mean"].get<double>() == doctest::Approx(sum_ssim / 3).epsilon(1e-7));
  CHECK(out.str().find("ssim") != std::string::npos);

  // A non-empty --save_dir is refused; --overwrite writes into it.
  CHECK_THROWS_AS(cli::run_eval(a, out, err), cli::UsageError);
  a.overwrite = true;
  CHECK(cli::run_eval(a, out, err) == 0);
}

TEST_CASE("gradstyle eval: refusals name the problem and write nothing") {
  Folders f;
  cli::EvalArgs a = f.args();
  std::ostringstream out, err;
  a.metrics = "l2,fid";
  CHECK_THROWS_AS(cli::run_eval(a, out, err), cli::UsageError);
  a.metrics = "lpips";
  CHECK_THROWS_AS(cli::run_eval(a, out, err), cli::UsageError);  // no LPIPS weights given
  a.metrics = "l2";
  a.pred_dir = (f.root / "missing").string();
  CHECK_THROWS_AS(cli::run_eval(a, out, err), cli::UsageError);
  // By order with different counts.
  a.pred_dir = f.pred.string();
  fs::remove(f.pred / "img2.png");
  a.by_order = true;
  CHECK_THROWS_AS(cli::run_eval(a, out, err), cli::UsageError);
  CHECK_FALSE(fs::exists(f.root / "out"));
  // By name, the unmatched ground truth is left out.
  a.by_order = false;
  CHECK(cli::run_eval(a, out, err) == 0);
  CHECK(read(f.root / "out" / "metrics.csv").find("img2.png") == std::string::npos);
}

TEST_CASE("gradstyle eval: SSIM, PSNR and L2 equal scikit-image's on real photo pairs") {
  // tests/golden/metrics: made by tools/reference/make_metric_fixtures.py with scikit-image 0.19.
  const fs::path golden = fs::path(GS_SOURCE_ROOT) / "tests" / "golden" / "metrics";
  const nlohmann::json ref = nlohmann::json::parse(read(golden / "skimage.json"));
  const fs::path root = fs::temp_directory_path() / ("gs_eval_skimage_" + std::to_string(::getpid()));
  fs::remove_all(root);
  fs::create_directories(root / "gt");
  fs::create_directories(root / "pred");
  for (const auto& [name, v] : ref["pairs"].items()) {
    fs::copy_file(golden / (name + "_gt.png"), root / "gt" / (name + ".png"));
    fs::copy_file(golden / (name + "_pred.png"), root / "pred" / (name + ".png"));
  }
  cli::EvalArgs a;
  a.gt_dir = (root / "gt").string();
  a.pred_dir = (root / "pred").string();
  a.save_dir = (root / "out").string();
  a.device = "cpu";
  a.quiet = true;
  std::ostringstream out, err;
  REQUIRE(cli::run_eval(a, out, err) == 0);
  std::istringstream csv(read(root / "out" / "metrics.csv"));
  std::string line;
  std::getline(csv, line);
  CHECK(line == "name,l2,psnr,ssim");
  int rows = 0;
  while (std::getline(csv, line)) {
    std::istringstream f(line);
    std::string name, l2, psnr, ssim;
    std::getline(f, name, ',');
    std::getline(f, l2, ',');
    std::getline(f, psnr, ',');
    std::getline(f, ssim, ',');
    const auto& r = ref["pairs"][fs::path(name).stem().string()];
    CAPTURE(name);
    CHECK(std::abs(std::stod(ssim) - r["ssim"].get<double>()) < 1e-5);
    CHECK(std::abs(std::stod(psnr) - r["psnr"].get<double>()) < 1e-5);
    CHECK(std::abs(std::stod(l2) - r["l2"].get<double>()) < 1e-5);
    ++rows;
  }
  CHECK(rows == 3);
  fs::remove_all(root);
}

TEST_CASE("gradstyle eval: --metrics id with a toy identity network reads the whole image at its size") {
  Folders f;
  auto cfg = train::IDTrainConfig::parse(R"({"size": 32, "trunk_channels": [4, 6, 8, 10], "embedding": 8,
      "identities": 4, "seed": 1})");
  train::IDTrainer t(cfg);
  t.step();
  const fs::path idf = f.root / "toyid.safetensors";
  t.save_network(idf.string());
  cli::EvalArgs a = f.args();
  a.metrics = "l2,id";
  a.id = idf.string();
  std::ostringstream out, err;
  REQUIRE(cli::run_eval(a, out, err) == 0);
  // The per-image values are the network's cosine of the two images, as ArcFaceID computes it.
  models::arcface::ArcFaceID::LoadOptions lo;
  lo.crop = cfg.crop();
  auto id = models::arcface::ArcFaceID::from_checkpoint(idf.string(), lo);
  const std::string csv = read(fs::path(a.save_dir) / "metrics.csv");
  Tensor x = io::image_to_tensor(io::load_image((f.gt / "img0.png").string()));
  Tensor y = io::image_to_tensor(io::load_image((f.pred / "img0.png").string()));
  const double want = id->similarity(y, x).to_vector<double>().at(0);
  const std::string row = csv.substr(csv.find("img0.png"));
  const double got = std::stod(row.substr(row.rfind(',', row.find('\n')) + 1));
  CHECK(got == doctest::Approx(want).epsilon(1e-6));
  CHECK(got <= 1.0 + 1e-6);
}
