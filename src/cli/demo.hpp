#pragma once
// `gradstyle demo` and `gradstyle bundle`: the toyfaces embedded default (eval/toyfaces_demo.hpp).
#include <cstdint>
#include <iosfwd>
#include <string>

namespace gradstyle::cli {

struct DemoArgs {
  std::string out = "demo_out";  // folder for grid.png, report.html, metrics.csv
  std::string weights;           // bundle folder; empty = the repository's models/toyfaces
  std::string images_dir;        // the user's own images too (user_grid.png, user_metrics.csv)
  int64_t identities = 6;
  std::string device = "cpu";
  bool quiet = false;
};
// Inverts and edits held-out toyfaces with e4e and GradStyle, compares with the ground truth,
// writes the files and prints the metrics table. Returns 0.
int run_demo(const DemoArgs& a, std::ostream& out, std::ostream& err);

// The folder the demo reads by default: $GRADSTYLE_WEIGHTS, else the source tree's models/toyfaces.
std::string default_weights_dir();

struct BundleArgs {
  std::string generator, encoder, gradstyle, out, training;  // training: a JSON file recorded in the manifest
  std::string toyid;  // alone (with --out): add this toy identity network to the bundle in out
  int64_t fit_n = 2000;
  bool f32 = false;
};
int run_bundle(const BundleArgs& a, std::ostream& out, std::ostream& err);

struct ResultsArgs {
  std::string weights;        // bundle folder; empty = default_weights_dir()
  std::string out = "docs/results.md";
  int64_t identities = 32;
  std::string device = "cpu";
};
// The toyfaces ground-truth benchmark (eval/ablation.hpp) written as markdown to `out`; prints the
// claims' lines. Returns 0.
int run_results(const ResultsArgs& a, std::ostream& out, std::ostream& err);

}  // namespace gradstyle::cli
