// `gradstyle generate`: options and help; the work is run_generate (generate.cpp).
#include <CLI/CLI.hpp>

#include "cli/command.hpp"
#include "cli/commands.hpp"

namespace gradstyle::cli {
namespace {

const char* kHelp =
    R"(Render images with a StyleGAN2 generator (rosinality checkpoint, e.g. stylegan2-ffhq-config-f.pt).

z for seed s is numpy's RandomState(s).randn(1, style_dim), as in NVIDIA's generate.py, so a seed
names the same z there and here. Outputs are OUTDIR/seed0085.png, ... (or proj00.png, ... for
--projected-w). Noise 'const' uses the checkpoint's stored noise buffers.

Example:
  gradstyle generate --generator stylegan2-ffhq-config-f.pt --seeds 0-7 --trunc 0.7 --outdir out/)";

class GenerateCommand final : public Command {
 public:
  std::string name() const override { return "generate"; }
  std::string summary() const override { return "Render images from seeds or projected W+ latents"; }
  std::string usage() const override {
    return "usage: gradstyle generate --generator G.pt (--seeds LIST | --projected-w W.npz) --outdir DIR [--trunc "
           "PSI]\n"
           "                          [--noise-mode const|random|none] [--device auto|cpu|cuda] [--batch N] "
           "[--overwrite]";
  }
  void add_options(CLI::App& sub) override {
    sub.footer(kHelp);
    sub.add_option("--generator,--network", a_.generator, "Checkpoint holding the generator (.pt or .safetensors)")
        ->required();
    sub.add_option("--key", a_.key, "Entry of the checkpoint holding the generator")->capture_default_str();
    sub.add_option("--seeds", a_.seeds, "Seeds: list and/or ranges, e.g. 85,265,297 or 600-605");
    sub.add_option("--projected-w", a_.projected_w, ".npz with 'w' [N, n_latent, style_dim] (projector output)");
    sub.add_option("--trunc", a_.trunc, "Truncation psi (towards latent_avg)")->capture_default_str();
    sub.add_option("--noise-mode", a_.noise_mode, "const | random | none")->capture_default_str();
    sub.add_option("--noise-seed", a_.noise_seed, "Seed of the noise with --noise-mode random")->capture_default_str();
    sub.add_option("--outdir", a_.outdir, "Output directory (created if needed)")->required();
    sub.add_option("--device", a_.device, "auto | cpu | cuda[:N]")->capture_default_str();
    sub.add_option("--batch", a_.batch, "Images per forward pass")->capture_default_str();
    sub.add_flag("--overwrite", a_.overwrite, "Replace existing output images");
  }
  int run(std::ostream& out, std::ostream& err) override { return run_generate(a_, out, err); }

 private:
  GenerateArgs a_;
};

}  // namespace

std::unique_ptr<Command> make_generate_command() { return std::make_unique<GenerateCommand>(); }

}  // namespace gradstyle::cli
