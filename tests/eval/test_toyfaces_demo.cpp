// The toyfaces bundle and demo on tiny networks: write_bundle -> ToyBundle::load (CRC-checked) ->
// run_toyfaces_demo; fit_directions recovers a planted linear attribute code.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "gradstyle/core/error.hpp"
#include "gradstyle/eval/toyfaces_demo.hpp"
#include "gradstyle/io/file.hpp"
#include "gradstyle/train/e4e_trainer.hpp"
#include "gradstyle/train/id_trainer.hpp"
#include "gradstyle/train/stylegan2_trainer.hpp"

using namespace gradstyle;
namespace fs = std::filesystem;
namespace sg = gradstyle::models::stylegan2;
namespace gsn = gradstyle::models::gsnet;

namespace {

fs::path temp_dir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("gs_demo_" + std::to_string(::getpid()) + "_" + name);
  fs::create_directories(p);
  return p;
}

// Tiny G (32 px), e4e and GradStyle checkpoints, each from one training step of its stage.
struct TinyRun {
  fs::path dir, g, e, n;
  TinyRun() : dir(temp_dir("run")) {
    g = dir / "g.safetensors";
    e = dir / "e.safetensors";
    n = dir / "n.safetensors";
    auto gc = train::StyleGAN2TrainConfig::parse(
        R"({"size": 32, "style_dim": 16, "n_mlp": 2, "channels": {"4": 16, "8": 16, "16": 8, "32": 8}, "batch": 4})");
    train::StyleGAN2Trainer gt(gc, train::toyfaces_source(32, 32, 0));
    gt.step();
    gt.save(g.string());
    auto ec = train::E4ETrainConfig::parse(R"({"generator": ")" + g.string() +
                                          R"(", "trunk_blocks": [1, 1, 1, 1], "trunk_channels": [4, 8, 12, 16],
        "trunk_se": false, "batch": 2})");
    train::E4ETrainer et(ec, sg::Generator::from_checkpoint(g.string()), train::toyfaces_source(32, 32, 0));
    et.step();
    et.save(e.string());
    auto G = sg::Generator::from_checkpoint(g.string());
    gsn::GradStyleConfig nc = gsn::GradStyleConfig::from_json_text(R"({"refined_blocks": [3], "t_channels": 16,
        "aligner_heads": 2, "aligner_layers": 1})");
    gsn::GradStyleNet net(nc, G->config());
    net.save(n.string());
  }
};

const TinyRun& tiny_run() {
  static TinyRun r;
  return r;
}

}  // namespace

TEST_CASE("toyfaces bundle: written, loaded with its CRC check, demo rows for every task and method") {
  const auto& r = tiny_run();
  const fs::path out = temp_dir("bundle");
  eval::write_bundle(out.string(), r.g.string(), r.e.string(), r.n.string(), 32, true, R"({"note": "test"})");
  for (const char* f : {"manifest.json", "generator.safetensors", "encoder.safetensors", "gradstyle.safetensors",
                        "directions.safetensors"})
    CHECK(fs::exists(out / f));
  // float16 storage: the bundled generator is about half the float32 g_ema.
  eval::ToyBundle b = eval::ToyBundle::load(out.string());
  CHECK(b.directions.size() == 4);
  for (auto& [k, d] : b.directions) {
    INFO(k);
    CHECK(d.scale > 0);
    CHECK(d.n.shape() == Shape{1, 16});
    auto v = d.n.to_vector<float>();
    double norm = 0;
    for (float x : v) norm += double(x) * x;
    CHECK(std::sqrt(norm) == doctest::Approx(1.0).epsilon(1e-3));
  }
  eval::DemoOptions o;
  o.identities = 2;
  eval::DemoResult res = eval::run_toyfaces_demo(b, o);
  CHECK(res.rows.size() == 2 * (1 + 4));
  CHECK(res.source.shape() == Shape{2, 3, 32, 32});
  CHECK(res.truth.size() == 4);
  for (const auto& row : res.rows) {
    INFO(row.task << " " << row.method);
    CHECK(std::isfinite(row.l2));
    CHECK(row.ssim <= 1.0);
    CHECK(row.ssim >= -1.0);
  }
  // The same bundle gives the same numbers (the demo is deterministic), and they are the ones
  // write_bundle recorded for this run size.
  eval::DemoResult again = eval::run_toyfaces_demo(b, o);
  CHECK(again.rows[3].l2 == res.rows[3].l2);
  CHECK(eval::max_relative_change(b, res, 2) == 0.0);
  CHECK(eval::max_relative_change(b, res, 3) == -1.0);  // nothing recorded for 3 identities
  CHECK(b.manifest_text.find("f16_check") != std::string::npos);

  // The user's own images: inversions and edits, reconstruction rows only (no ground truth).
  eval::DemoResult u = eval::run_demo_on_images(b, res.source, {"smile"});
  CHECK(u.rows.size() == 2);
  CHECK_FALSE(u.truth[0].defined());
  CHECK(u.rows[0].l2 == res.rows[0].l2);
  CHECK_THROWS_AS(eval::run_demo_on_images(b, Tensor::zeros({1, 3, 16, 16}), {"smile"}), ShapeError);

  // One flipped byte is refused, naming the file.
  const fs::path victim = out / "directions.safetensors";
  std::vector<uint8_t> bytes = io::read_file_bytes(victim.string());
  bytes[bytes.size() - 3] ^= 0x40;
  io::atomic_write_file(victim.string(), bytes);
  try {
    eval::ToyBundle::load(out.string());
    FAIL("no error");
  } catch (const FormatError& e) {
    CHECK(std::string(e.what()).find("directions.safetensors") != std::string::npos);
  }
  CHECK_THROWS_AS(eval::ToyBundle::load((out / "missing").string()), IOError);
  fs::remove_all(out);
}

TEST_CASE("toyfaces bundle: the toy identity network added to a bundle gives the ID column, other numbers unchanged") {
  const auto& r = tiny_run();
  const fs::path out = temp_dir("bundle_id");
  eval::write_bundle(out.string(), r.g.string(), r.e.string(), r.n.string(), 32, false, "");
  eval::DemoOptions o;
  o.identities = 2;
  eval::DemoResult before;
  {
    eval::ToyBundle b = eval::ToyBundle::load(out.string());
    CHECK(b.id == nullptr);
    before = eval::run_toyfaces_demo(b, o);
    for (const auto& row : before.rows) CHECK(std::isnan(row.id));
  }
  auto cfg = train::IDTrainConfig::parse(R"({"size": 32, "trunk_channels": [4, 6, 8, 10], "embedding": 8,
      "identities": 4, "seed": 1})");
  train::IDTrainer t(cfg);
  t.step();
  const fs::path idf = out / "trained_toyid.safetensors";
  t.save_network(idf.string());
  eval::add_toyid(out.string(), idf.string(), R"({"note": "one step"})");
  eval::ToyBundle b = eval::ToyBundle::load(out.string());
  REQUIRE(b.id != nullptr);
  eval::DemoResult after = eval::run_toyfaces_demo(b, o);
  REQUIRE(after.rows.size() == before.rows.size());
  for (size_t i = 0; i < after.rows.size(); ++i) {
    INFO(after.rows[i].task << " " << after.rows[i].method);
    CHECK(after.rows[i].l2 == before.rows[i].l2);
    CHECK(after.rows[i].ssim == before.rows[i].ssim);
    CHECK(std::isfinite(after.rows[i].id));
    CHECK(after.rows[i].id <= 1.0 + 1e-5);
    CHECK(after.rows[i].id >= -1.0 - 1e-5);
  }
  CHECK(eval::max_relative_change(b, after, 2) == 0.0);  // recorded again, ID included
  CHECK(b.manifest_text.find("\"id\":") != std::string::npos);
  CHECK(b.manifest_text.find("one step") != std::string::npos);
  // A network for another image size is refused before anything is written.
  auto c16 = train::IDTrainConfig::parse(R"({"size": 16, "trunk_channels": [4, 6, 8, 10], "embedding": 8, "identities": 4})");
  train::IDTrainer t16(c16);
  const fs::path id16 = out / "toyid16.safetensors";
  t16.save_network(id16.string());
  CHECK_THROWS_WITH_AS(eval::add_toyid(out.string(), id16.string(), ""), doctest::Contains("takes 16 px"), Error);
  // The ID file is CRC-checked like the others.
  std::vector<uint8_t> bytes = io::read_file_bytes((out / "toyid.safetensors").string());
  bytes[bytes.size() - 2] ^= 0x10;
  io::atomic_write_file((out / "toyid.safetensors").string(), bytes);
  CHECK_THROWS_WITH_AS(eval::ToyBundle::load(out.string()), doctest::Contains("toyid.safetensors"), FormatError);
  fs::remove_all(out);
}

TEST_CASE("the committed toyfaces bundle reproduces its recorded demo numbers (reduced run)") {
  const std::string dir = std::string(GS_SOURCE_ROOT) + "/models/toyfaces";
  eval::ToyBundle b = eval::ToyBundle::load(dir);
  eval::DemoOptions o;
  o.identities = 2;
  eval::DemoResult r = eval::run_toyfaces_demo(b, o);
  const double change = eval::max_relative_change(b, r, 2);
  INFO("largest relative change of an L2 or SSIM value: " << change);
  CHECK(change >= 0.0);  // the manifest records this run
  CHECK(change <= 0.01);
  // GradStyle's reconstruction is no worse than e4e's alone (rows 0, 1: e4e, GradStyle).
  CHECK(r.rows[1].l2 <= r.rows[0].l2);
  // The bundle carries the toy identity network: every row has its ID value (compared with the
  // recorded ones above), and GradStyle keeps more of the identity than e4e.
  REQUIRE(b.id != nullptr);
  for (const auto& row : r.rows) CHECK(std::isfinite(row.id));
  CHECK(r.rows[1].id > r.rows[0].id);
}
