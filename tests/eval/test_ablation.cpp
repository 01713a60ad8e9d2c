// The toyfaces ground-truth benchmark (eval/ablation.hpp, `gradstyle results`) on the committed
// bundle: its rows agree with the demo's where they measure the same thing, a zero edit leaves
// every residual variant at the reconstruction, and the markdown states the claims as measured.
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli/commands.hpp"
#include "cli/demo.hpp"
#include "gradstyle/eval/ablation.hpp"

using namespace gradstyle;
namespace fs = std::filesystem;

namespace {
const std::string kBundle = GS_SOURCE_ROOT "/models/toyfaces";

const eval::MetricRow& demo_row(const eval::DemoResult& d, const std::string& task, const std::string& method) {
  for (const auto& r : d.rows)
    if (r.task == task && r.method == method) return r;
  FAIL("no demo row " << task << " / " << method);
  return d.rows.front();
}
}  // namespace

TEST_CASE("eval/ablation: rows agree with the demo, zero edits stay at the reconstruction") {
  eval::ToyBundle b = eval::ToyBundle::load(kBundle);
  eval::AblationOptions o;
  o.identities = 2;
  o.batch = 2;
  o.attributes = {"smile"};
  o.magnitudes = {0.0, 1.0};
  const eval::AblationResult r = eval::run_toyfaces_ablation(b, o);
  eval::DemoOptions d;
  d.identities = 2;
  d.attributes = {"smile"};
  const eval::DemoResult demo = eval::run_toyfaces_demo(b, d);

  const auto* e4e = r.find("reconstruction", 0, "e4e");
  const auto* gs = r.find("reconstruction", 0, "GradStyle (GRM + GAM)");
  REQUIRE(e4e);
  REQUIRE(gs);
  CHECK(e4e->l2 == doctest::Approx(demo_row(demo, "reconstruction", "e4e").l2).epsilon(1e-9));
  CHECK(gs->l2 == doctest::Approx(demo_row(demo, "reconstruction", "GradStyle").l2).epsilon(1e-9));
  CHECK(gs->ssim == doctest::Approx(demo_row(demo, "reconstruction", "GradStyle").ssim).epsilon(1e-9));
  const double full = b.edit_delta.at("smile");
  const auto* gs_edit = r.find("edit:smile", full, "GradStyle (GRM + GAM)");
  REQUIRE(gs_edit);
  CHECK(gs_edit->l2 == doctest::Approx(demo_row(demo, "edit:smile", "GradStyle").l2).epsilon(1e-9));
  CHECK(r.find("edit:smile", full, "e4e")->l2 == doctest::Approx(demo_row(demo, "edit:smile", "e4e").l2).epsilon(1e-9));
  // Stage subsets: 1 .. K-1 of the K stages, between e4e and the full network's structure.
  const size_t K = b.net->stages().size();
  for (size_t k = 1; k < K; ++k)
    CHECK(r.find("reconstruction", 0, "GRM stages 1.." + std::to_string(k) + " of " + std::to_string(K)) != nullptr);
  // delta 0: the truth is the source; residual variants without an Aligner give X^r, e4e gives G(w).
  CHECK(r.find("edit:smile", 0, "source (no edit)")->l2 == 0.0);
  CHECK(r.find("edit:smile", 0, "unaligned residuals (HFGI-like)")->l2 == doctest::Approx(gs->l2).epsilon(1e-12));
  CHECK(r.find("edit:smile", 0, "GRM re-run on the edit")->l2 == doctest::Approx(gs->l2).epsilon(1e-12));
  CHECK(r.find("edit:smile", 0, "e4e")->l2 == doctest::Approx(e4e->l2).epsilon(1e-12));
  CHECK(r.rows.size() == 1 + (K - 1) + 1 + 2 * 5);

  const std::string md = eval::ablation_markdown(b, r, "gradstyle results --identities 2");
  CHECK(md.find("# Results: the toyfaces ground-truth benchmark") == 0);
  CHECK(md.find("`gradstyle results --identities 2`") != std::string::npos);
  const double gain = e4e->l2 / gs->l2;
  CHECK(md.find(gain >= 3.5 ? "x: met" : "x: **missed**") != std::string::npos);
  CHECK(md.find("## Not measured") != std::string::npos);
}

TEST_CASE("eval/ablation: negative edits run the other way; edits that leave the attribute's range are skipped") {
  eval::ToyBundle b = eval::ToyBundle::load(kBundle);
  eval::AblationOptions o;
  o.identities = 1;
  o.batch = 1;
  o.attributes = {"smile", "age", "eye_openness"};
  o.magnitudes = {-1.0};
  const eval::AblationResult r = eval::run_toyfaces_ablation(b, o);
  const double smile = b.edit_delta.at("smile");
  const auto* frown = r.find("edit:smile", -smile, "GradStyle (GRM + GAM)");
  REQUIRE(frown);
  // The truth moved: the unedited source is no longer an exact answer.
  CHECK(r.find("edit:smile", -smile, "source (no edit)")->l2 > 0);
  // age 0.1 - delta < 0 and eye openness 0.8 + 0.6 > 1 would leave their ranges.
  REQUIRE(r.skipped.size() == 2);
  CHECK(r.skipped[0].rfind("age -", 0) == 0);
  CHECK(r.skipped[1].rfind("eye_openness 0.", 0) == 0);
  CHECK(r.find("edit:age", -b.edit_delta.at("age"), "e4e") == nullptr);
  const std::string md = eval::ablation_markdown(b, r, "test");
  CHECK(md.find("edits with delta < 0: GradStyle lower in") != std::string::npos);
  CHECK(md.find("Not run (they would leave the attribute's toyfaces range): age -") != std::string::npos);
}

TEST_CASE("cli/results: writes the markdown and refuses bad arguments") {
  const fs::path out = fs::temp_directory_path() / ("gs_results_" + std::to_string(::getpid())) / "results.md";
  cli::ResultsArgs a;
  a.weights = kBundle;
  a.identities = 1;
  a.out = out.string();
  std::ostringstream o, e;
  REQUIRE(cli::run_results(a, o, e) == 0);
  CHECK(fs::file_size(out) > 1000);
  CHECK(o.str().find("GRM cuts the encoder-only reconstruction L2") != std::string::npos);
  a.identities = 0;
  CHECK_THROWS_AS(cli::run_results(a, o, e), cli::UsageError);
  fs::remove_all(out.parent_path());
}
