// `gradstyle explain` on the toyfaces bundle: what it shows is the network's own numbers (the
// last stage's image is X^r, the aligned residuals are the editing stream's, the attention rows
// are the Aligner's top-k and sum to 1), the files and the page are written, bad input is refused.
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/commands.hpp"
#include "cli/explain.hpp"
#include "gradstyle/autograd/autograd.hpp"
#include "gradstyle/data/toyfaces.hpp"
#include "gradstyle/io/image.hpp"
#include "gradstyle/models/editing.hpp"
#include "gradstyle/ops/selective_attention.hpp"
#include "support/harness.hpp"

using namespace gradstyle;
namespace fs = std::filesystem;
namespace tf = gradstyle::data::toyfaces;
using nlohmann::json;

namespace {
const std::string kBundle = GS_SOURCE_ROOT "/models/toyfaces";
}

TEST_CASE("cli/explain: every stage shown is the network's own, and the attention rows are its top-k") {
  autograd::NoGradGuard ng;
  eval::InversionModel m = eval::InversionModel::load(kBundle);
  const io::Image face = tf::render_image(tf::sample_identity(0, tf::heldout_index(3)), tf::ToyEdit{}, 64);
  const Tensor x = eval::InversionModel::prepare(face, m.input_size());
  eval::DirectionSource ds;
  const Tensor d = m.direction("smile", ds);
  const double step = m.step_for("smile", 1.0, ds);
  const cli::ExplainResult r = cli::explain(m, x, d, step);

  const int64_t K = m.net->num_modules();
  REQUIRE(int64_t(r.stages.size()) == K);
  // The last stage's image is the full reconstruction; the edit is what `gradstyle edit` renders.
  const eval::Inversion inv = m.invert(x);
  GS_EXPECT_CLOSE(r.stages.back().image, inv.image, 0.0, 0.0);
  GS_EXPECT_CLOSE(r.rec, inv.image, 0.0, 0.0);
  GS_EXPECT_CLOSE(r.edit, m.render(models::editing::interfacegan_edit(inv.w, d, step), inv), 0.0, 0.0);
  GS_EXPECT_CLOSE(r.e4e, m.synthesize(inv.w), 0.0, 0.0);
  // Each stage changes the image (a stage that did nothing would show as equal images).
  GS_CHECK(amax((r.stages.front().image - r.e4e).abs()).item() > 1e-4, ValueError, "stage 1 changes nothing");
  for (int64_t k = 0; k < K; ++k) {
    CAPTURE(k);
    const auto& s = r.stages[size_t(k)];
    GS_EXPECT_CLOSE(s.residual, inv.F[size_t(k)], 0.0, 0.0);
    CHECK(s.residual.shape() == Shape{1, s.C, s.R, s.R});
    CHECK(s.gate.size(2) == s.R);
    CHECK(s.topk == selective_topk(m.net->config().topk_mu, s.R * s.R));
    REQUIRE(s.queries.size() == cli::default_query_points().size());
    for (const auto& q : s.queries) {
      double sum = 0;
      for (double w : q.weights) sum += w;
      CHECK(sum == doctest::Approx(1.0).epsilon(1e-5));
      // Heads average their own top-k sets: at least k keys, at most heads x k.
      CHECK(int64_t(q.keys.size()) >= s.topk);
      CHECK(int64_t(q.keys.size()) <= s.topk * m.net->config().aligner_heads);
      CHECK(std::is_sorted(q.weights.rbegin(), q.weights.rend()));
      CHECK(q.token >= 0);
      CHECK(q.token < s.R * s.R);
    }
  }
}

TEST_CASE("cli/explain: writes the page, the images and attention.json; refuses what it cannot show") {
  const fs::path root = fs::temp_directory_path() / ("gs_explain_" + std::to_string(::getpid()));
  fs::remove_all(root);
  fs::create_directories(root);
  const std::string img = (root / "face.png").string();
  io::save_png(img, tf::render_image(tf::sample_identity(0, tf::heldout_index(1)), tf::ToyEdit{}, 64));
  cli::ExplainArgs a;
  a.checkpoint = kBundle;
  a.image = img;
  a.edit_attribute = "age";
  a.edit_degree = 0.5;
  a.save_dir = (root / "out").string();
  a.device = "cpu";
  a.quiet = true;
  std::ostringstream out, err;
  REQUIRE(cli::run_explain(a, out, err) == 0);
  const fs::path o = root / "out";
  for (const char* f : {"report.html", "attention.json", "source.png", "e4e.png", "rec.png", "edit.png", "edit_e4e.png",
                        "stage1_image.png", "stage1_residual.png", "stage1_gate.png", "stage1_aligned.png"})
    CHECK_MESSAGE(fs::exists(o / f), f);
  std::ifstream jf(o / "attention.json");
  const json j = json::parse(jf);
  eval::InversionModel m = eval::InversionModel::load(kBundle);
  REQUIRE(int64_t(j["stages"].size()) == m.net->num_modules());
  CHECK(j["stages"][0]["queries"].size() == 4);
  std::ifstream hf(o / "report.html");
  std::stringstream h;
  h << hf.rdbuf();
  CHECK(h.str().find("Editing stream: what the Aligner selects") != std::string::npos);
  CHECK(h.str().find("<circle") != std::string::npos);

  GS_CHECK_THROWS_WITH(cli::run_explain(a, out, err), cli::UsageError, "not empty");
  cli::ExplainArgs b = a;
  b.save_dir = (root / "out2").string();
  b.edit_attribute = "nose";
  GS_CHECK_THROWS_WITH(cli::run_explain(b, out, err), gradstyle::Error, "nose");
  b.edit_attribute = "age";
  b.image = (root / "missing.png").string();
  GS_CHECK_THROWS_WITH(cli::run_explain(b, out, err), IOError, "missing.png");
  b.image = img;
  b.checkpoint = GS_SOURCE_ROOT "/tests/golden/inversion/e4e_full.pt";
  GS_CHECK_THROWS_WITH(cli::run_explain(b, out, err), cli::UsageError, "e4e checkpoint without them");
  CHECK(!fs::exists(root / "out2"));
  fs::remove_all(root);
}
