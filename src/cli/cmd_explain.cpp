// `gradstyle explain`: options and help; the work is in explain.cpp.
#include <CLI/CLI.hpp>

#include "cli/command.hpp"
#include "cli/explain.hpp"

namespace gradstyle::cli {
namespace {

class ExplainCommand final : public Command {
 public:
  std::string name() const override { return "explain"; }
  std::string summary() const override { return "Show GradStyle's residuals, gates and Aligner selections on one image"; }
  std::string usage() const override {
    return "usage: gradstyle explain CKPT --image X --edit_attribute A [--edit_degree D] --save_dir O\n"
           "                         [--direction FILE | --directions_dir DIR] [--generator G] [--encoder E]";
  }
  void add_options(CLI::App& sub) override {
    sub.footer(
        "One page (O/report.html) that opens GradStyle up, stage by stage (each refined block): the e4e\n"
        "image, the residual F_m the GRM computes, the gate map g_m, the image after each stage; and for\n"
        "the editing stream the aligned residual F'_m and the keys the Aligner's top-k attention keeps\n"
        "for four query positions (eyes, nose, mouth), drawn over the source with their weights\n"
        "(O/attention.json lists them all). CKPT is a GradStyle network file or a toyfaces bundle.\n\n"
        "Example:\n"
        "  gradstyle explain models/toyfaces --image face.png --edit_attribute smile --edit_degree 1 --save_dir ex/");
    sub.add_option("checkpoint", a_.checkpoint, "GradStyle network file or toyfaces bundle folder")->required();
    sub.add_option("--image", a_.image, "The image (aligned face)")->required();
    sub.add_option("--save_dir,--save-dir", a_.save_dir, "Output folder")->required();
    sub.add_option("--edit_attribute,--edit-attribute", a_.edit_attribute, "InterFaceGAN attribute")->required();
    sub.add_option("--edit_degree,--edit-degree", a_.edit_degree, "Edit strength")->capture_default_str();
    sub.add_option("--direction", a_.direction, "Direction file (one tensor)");
    sub.add_option("--directions_dir,--directions-dir", a_.directions_dir, "Folder with <attribute>.pt");
    sub.add_option("--generator", a_.generator, "Generator checkpoint (overrides the network file's)");
    sub.add_option("--encoder", a_.encoder, "e4e checkpoint (overrides the network file's)");
    sub.add_option("--device", a_.device, "auto, cpu or cuda[:N]")->capture_default_str();
    sub.add_flag("--overwrite", a_.overwrite, "Write into a non-empty --save_dir");
    sub.add_flag("--quiet", a_.quiet, "No hint line");
  }
  int run(std::ostream& out, std::ostream& err) override { return run_explain(a_, out, err); }

 private:
  ExplainArgs a_;
};

}  // namespace

std::unique_ptr<Command> make_explain_command() { return std::make_unique<ExplainCommand>(); }

}  // namespace gradstyle::cli
