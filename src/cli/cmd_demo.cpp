// `gradstyle demo` and `gradstyle bundle`: options and help; the work is in demo.cpp.
#include <CLI/CLI.hpp>

#include "cli/command.hpp"
#include "cli/demo.hpp"

namespace gradstyle::cli {
namespace {

class DemoCommand final : public Command {
 public:
  std::string name() const override { return "demo"; }
  std::string summary() const override { return "Invert and edit held-out toyfaces with e4e and GradStyle (no download, no GPU)"; }
  std::string usage() const override {
    return "usage: gradstyle demo [--out DIR] [--weights DIR] [--images_dir DIR] [--identities N] [--device cpu|cuda] [--quiet]";
  }
  void add_options(CLI::App& sub) override {
    sub.footer(
        "Runs the embedded default: a StyleGAN2, an e4e encoder and GradStyle's modules trained from\n"
        "scratch on the procedural toyfaces domain (models/toyfaces, docs/toyfaces.md). Held-out identities\n"
        "are inverted and edited (smile, age, yaw, eye openness); every result is compared with the ground\n"
        "truth, which toyfaces can render: the source for reconstruction, the same identity with the\n"
        "edited attribute for edits. Writes DIR/grid.png, DIR/report.html and DIR/metrics.csv and prints\n"
        "the table. GRADSTYLE_WEIGHTS overrides the default weights folder.");
    sub.add_option("--out", a_.out, "Output folder")->capture_default_str();
    sub.add_option("--weights", a_.weights, "Bundle folder (default: " + default_weights_dir() + ")");
    sub.add_option("--images_dir,--images-dir", a_.images_dir,
                   "Also invert and edit these images (PNG/JPEG, resized to the bundle's size): user_grid.png");
    sub.add_option("--identities", a_.identities, "Held-out identities to show")->capture_default_str();
    sub.add_option("--device", a_.device, "cpu | cuda[:N] | auto")->capture_default_str();
    sub.add_flag("--quiet", a_.quiet, "No progress lines");
  }
  int run(std::ostream& out, std::ostream& err) override { return run_demo(a_, out, err); }

 private:
  DemoArgs a_;
};

class BundleCommand final : public Command {
 public:
  std::string name() const override { return "bundle"; }
  std::string summary() const override { return "Pack trained toyfaces checkpoints into a demo bundle (with directions)"; }
  std::string usage() const override {
    return "usage: gradstyle bundle --generator G --encoder E --gradstyle N --out DIR [--fit-n 2000] [--training T.json] [--f32]\n"
           "       gradstyle bundle --out DIR --toyid TOYID.safetensors [--training T.json]";
  }
  void add_options(CLI::App& sub) override {
    sub.footer(
        "Copies g_ema (from a stylegan2-stage checkpoint), the encoder (from an e4e-stage checkpoint) and\n"
        "the GradStyle network into DIR in float16 (--f32 keeps float32), fits one InterFaceGAN-style\n"
        "direction per toyfaces attribute on --fit-n encoded training toyfaces, and writes manifest.json\n"
        "with each file's size and CRC-32 (checked by `gradstyle demo` at load).\n\n"
        "With --toyid alone it adds the toy identity network (toyid.safetensors of a toyid-stage run) to the\n"
        "bundle in DIR: the demo and results then report the ID column (cosine of the toy-ID embeddings of\n"
        "result and ground truth), and the recorded demo numbers are measured again (--training: its record).");
    sub.add_option("--generator", a_.generator, "stylegan2-stage checkpoint");
    sub.add_option("--encoder", a_.encoder, "e4e-stage checkpoint");
    sub.add_option("--gradstyle", a_.gradstyle, "GradStyle network file (gradstyle_net.safetensors of a run)");
    sub.add_option("--toyid", a_.toyid, "Toy identity network to add to the bundle in --out (toyid.safetensors)");
    sub.add_option("--out", a_.out, "Bundle folder")->required();
    sub.add_option("--fit-n", a_.fit_n, "Toyfaces for the direction fit")->capture_default_str();
    sub.add_option("--training", a_.training, "JSON file recorded in the manifest (commands, seeds, results)");
    sub.add_flag("--f32", a_.f32, "Keep float32 weights");
  }
  int run(std::ostream& out, std::ostream& err) override { return run_bundle(a_, out, err); }

 private:
  BundleArgs a_;
};

class ResultsCommand final : public Command {
 public:
  std::string name() const override { return "results"; }
  std::string summary() const override { return "The toyfaces ground-truth benchmark and ablations, as markdown (docs/results.md)"; }
  std::string usage() const override {
    return "usage: gradstyle results [--out docs/results.md] [--weights DIR] [--identities 32] [--device cpu|cuda]";
  }
  void add_options(CLI::App& sub) override {
    sub.footer(
        "Inverts and edits held-out toyfaces with e4e and with inference-time variants of the bundle's\n"
        "GradStyle network (GRM stages dropped, residuals injected unaligned, GRM re-run on the edit, the\n"
        "full GRM + GAM), measures each against rendered ground truth and writes the tables and the two\n"
        "paper claims checked to --out (include/gradstyle/eval/ablation.hpp).");
    sub.add_option("--out", a_.out, "Markdown file")->capture_default_str();
    sub.add_option("--weights", a_.weights, "Bundle folder (default: " + default_weights_dir() + ")");
    sub.add_option("--identities", a_.identities, "Held-out identities")->capture_default_str();
    sub.add_option("--device", a_.device, "cpu | cuda[:N] | auto")->capture_default_str();
  }
  int run(std::ostream& out, std::ostream& err) override { return run_results(a_, out, err); }

 private:
  ResultsArgs a_;
};

}  // namespace

std::unique_ptr<Command> make_results_command() { return std::make_unique<ResultsCommand>(); }
std::unique_ptr<Command> make_demo_command() { return std::make_unique<DemoCommand>(); }
std::unique_ptr<Command> make_bundle_command() { return std::make_unique<BundleCommand>(); }

}  // namespace gradstyle::cli
