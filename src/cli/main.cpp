// gradstyle: command-line entry point (FORMATS.md §13.2). Exit codes: 0 success, 1 runtime
// failure (one "error: ..." line), 2 usage error (the message and the usage line).
#include <CLI/CLI.hpp>
#include <iostream>

#include "cli/commands.hpp"
#include "gradstyle/core/error.hpp"

namespace {

const char* kGenerateHelp =
    R"(Render images with a StyleGAN2 generator (rosinality checkpoint, e.g. stylegan2-ffhq-config-f.pt).

z for seed s is numpy's RandomState(s).randn(1, style_dim), as in NVIDIA's generate.py, so a seed
names the same z there and here. Outputs are OUTDIR/seed0085.png, ... (or proj00.png, ... for
--projected-w). Noise 'const' uses the checkpoint's stored noise buffers.

Example:
  gradstyle generate --generator stylegan2-ffhq-config-f.pt --seeds 0-7 --trunc 0.7 --outdir out/)";

const char* kInfoHelp = R"(Show what a checkpoint holds: detected format (from the first bytes, never the extension),
the object tree with tensor dtypes, shapes and sizes, the networks gradstyle recognises in it, and
whether they load strictly.

Example:
  gradstyle info stylegan2-ffhq-config-f.pt)";

// The usage line printed with a usage error.
std::string usage_line(const CLI::App& app) {
  if (app.get_name() == "generate")
    return "usage: gradstyle generate --generator G.pt (--seeds LIST | --projected-w W.npz) --outdir DIR [--trunc "
           "PSI]\n"
           "                          [--noise-mode const|random|none] [--device auto|cpu|cuda] [--batch N] "
           "[--overwrite]";
  if (app.get_name() == "info") return "usage: gradstyle info FILE [--max-tensors N] [--no-check]";
  return "usage: gradstyle {generate,info} ...";
}

}  // namespace

int main(int argc, char** argv) {
  using namespace gradstyle::cli;
  CLI::App app{"gradstyle: GAN inversion with GradStyle (C++/CUDA, no deep-learning framework)", "gradstyle"};
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "Print help for every subcommand");

  GenerateArgs ga;
  auto* gen = app.add_subcommand("generate", "Render images from seeds or projected W+ latents");
  gen->footer(kGenerateHelp);
  gen->add_option("--generator,--network", ga.generator, "Checkpoint holding the generator (.pt or .safetensors)")
      ->required();
  gen->add_option("--key", ga.key, "Entry of the checkpoint holding the generator")->capture_default_str();
  gen->add_option("--seeds", ga.seeds, "Seeds: list and/or ranges, e.g. 85,265,297 or 600-605");
  gen->add_option("--projected-w", ga.projected_w, ".npz with 'w' [N, n_latent, style_dim] (projector output)");
  gen->add_option("--trunc", ga.trunc, "Truncation psi (towards latent_avg)")->capture_default_str();
  gen->add_option("--noise-mode", ga.noise_mode, "const | random | none")->capture_default_str();
  gen->add_option("--noise-seed", ga.noise_seed, "Seed of the noise with --noise-mode random")->capture_default_str();
  gen->add_option("--outdir", ga.outdir, "Output directory (created if needed)")->required();
  gen->add_option("--device", ga.device, "auto | cpu | cuda[:N]")->capture_default_str();
  gen->add_option("--batch", ga.batch, "Images per forward pass")->capture_default_str();
  gen->add_flag("--overwrite", ga.overwrite, "Replace existing output images");

  InfoArgs ia;
  bool no_check = false;
  auto* info = app.add_subcommand("info", "List what a checkpoint file holds");
  info->footer(kInfoHelp);
  info->add_option("FILE", ia.file, "Checkpoint, safetensors, .npz or .npy file")->required();
  info->add_option("--max-tensors", ia.max_tensors, "Tensors listed per state dict (0 = all)")->capture_default_str();
  info->add_flag("--no-check", no_check, "Do not try to load recognised networks");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    const CLI::App* sub = gen->parsed() ? gen : info->parsed() ? info : &app;
    std::cerr << "error: " << e.what() << "\n" << usage_line(*sub) << "  (--help for the options)\n";
    return 2;
  }
  try {
    if (gen->parsed()) return run_generate(ga, std::cout, std::cerr);
    ia.check = !no_check;
    return run_info(ia, std::cout);
  } catch (const UsageError& e) {
    std::cerr << "error: " << e.what() << "\n"
              << usage_line(gen->parsed() ? *gen : *info) << "  (--help for the options)\n";
    return 2;
  } catch (const gradstyle::Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
