// `gradstyle toyfaces`: options and help; the work is run_toyfaces (toyfaces.cpp).
#include <CLI/CLI.hpp>

#include "cli/command.hpp"
#include "cli/toyfaces.hpp"

namespace gradstyle::cli {
namespace {

class ToyfacesCommand final : public Command {
 public:
  std::string name() const override { return "toyfaces"; }
  std::string summary() const override { return "Render the procedural toyfaces domain (with ground-truth edits)"; }
  std::string usage() const override {
    return "usage: gradstyle toyfaces --n N --out DIR [--size 64] [--seed S] [--start K] [--heldout] [--neutral]\n"
           "                          [--edit-sweep yaw|smile|eye_openness|age [--sweep-values V,...]] [--overwrite]";
  }
  void add_options(CLI::App& sub) override {
    sub.footer(kToyfacesHelp);
    sub.add_option("--n", a_.n, "Identities to render")->required();
    sub.add_option("--out", a_.out, "Output folder (PNG files + labels.jsonl)")->required();
    sub.add_option("--size", a_.size, "Pixels per side (>= 16)")->capture_default_str();
    sub.add_option("--seed", a_.seed, "Identity stream")->capture_default_str();
    sub.add_option("--start", a_.start, "First identity number")->capture_default_str();
    sub.add_flag("--heldout", a_.heldout, "Draw from the held-out identities (never used for training)");
    sub.add_flag("--neutral", a_.neutral, "Neutral edit (frontal, no smile, open eyes, young) as the base");
    sub.add_option("--edit-sweep", a_.edit_sweep, "Render each identity at several values of one edit attribute");
    sub.add_option("--sweep-values", a_.sweep_values, "Comma-separated values for --edit-sweep (default: 5 over its range)");
    sub.add_flag("--overwrite", a_.overwrite, "Allow a non-empty --out");
  }
  int run(std::ostream& out, std::ostream& err) override { return run_toyfaces(a_, out, err); }

 private:
  ToyfacesArgs a_;
};

}  // namespace

std::unique_ptr<Command> make_toyfaces_command() { return std::make_unique<ToyfacesCommand>(); }

}  // namespace gradstyle::cli
