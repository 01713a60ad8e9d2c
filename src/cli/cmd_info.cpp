// `gradstyle info`: options and help; the work is run_info (info.cpp).
#include <CLI/CLI.hpp>

#include "cli/command.hpp"
#include "cli/commands.hpp"

namespace gradstyle::cli {
namespace {

const char* kHelp = R"(Show what a checkpoint holds: detected format (from the first bytes, never the extension),
the object tree with tensor dtypes, shapes and sizes, the networks gradstyle recognises in it, and
whether they load strictly.

Example:
  gradstyle info stylegan2-ffhq-config-f.pt)";

class InfoCommand final : public Command {
 public:
  std::string name() const override { return "info"; }
  std::string summary() const override { return "List what a checkpoint file holds"; }
  std::string usage() const override { return "usage: gradstyle info FILE [--max-tensors N] [--no-check]"; }
  void add_options(CLI::App& sub) override {
    sub.footer(kHelp);
    sub.add_option("FILE", a_.file, "Checkpoint, safetensors, .npz or .npy file")->required();
    sub.add_option("--max-tensors", a_.max_tensors, "Tensors listed per state dict (0 = all)")->capture_default_str();
    sub.add_flag("--no-check", no_check_, "Do not try to load recognised networks");
  }
  int run(std::ostream& out, std::ostream&) override {
    a_.check = !no_check_;
    return run_info(a_, out);
  }

 private:
  InfoArgs a_;
  bool no_check_ = false;
};

}  // namespace

std::unique_ptr<Command> make_info_command() { return std::make_unique<InfoCommand>(); }

}  // namespace gradstyle::cli
