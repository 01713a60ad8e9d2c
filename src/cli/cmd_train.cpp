// `gradstyle train`: options and help; the work is run_train (train.cpp).
#include <CLI/CLI.hpp>

#include "cli/command.hpp"
#include "cli/commands.hpp"

namespace gradstyle::cli {
namespace {

const char* kHelp = R"(Train GradStyle's modules (GRM, Gate&Fusion, GAM) self-supervised on a frozen StyleGAN2 and
e4e encoder (SPEC B.7). The JSON configuration holds every key of SPEC B.9 (training and
network); unknown keys are an error that names them. Paths: 'generator' (rosinality checkpoint
with g_ema and, when lambda_adv > 0, the discriminator 'd'), 'encoder' (e4e checkpoint),
'lpips_vgg' + 'lpips_lin' (when lambda_lpips > 0), 'arcface' (when lambda_id > 0), 'data' (a
folder of images) or "data_source": "generator" (synthetic images of G itself).

The experiment folder gets opt.json, metrics.csv, images/iteration_N.png (source | X^r | X^e)
and checkpoints/{iteration_N,last}.safetensors. A run stopped at any moment continues with
--resume and ends bitwise identical to an uninterrupted one.

Data parallel (every stage; docs/distributed.md): under mpirun every rank trains on its own
slice of each global batch ('batch' is one rank's), BatchNorm and D's minibatch deviation see the
global batch, gradients are summed over ranks, and rank 0 writes every file; N ranks x batch b
train what one process trains with batch N*b. GRADSTYLE_COLLECTIVE_TIMEOUT (seconds, default 600)
stops a job whose ranks stopped meeting.

Example:
  gradstyle train --exp_dir runs/ffhq --config gradstyle_ffhq.json
  gradstyle train --exp_dir runs/ffhq --resume
  mpirun -np 4 gradstyle train --exp_dir runs/ffhq --config gradstyle_ffhq.json)";

class TrainCommand final : public Command {
 public:
  std::string name() const override { return "train"; }
  std::string summary() const override { return "Train GradStyle's modules (self-supervised, resumable)"; }
  std::string usage() const override {
    return "usage: gradstyle train --exp_dir DIR (--config CFG.json | --resume) [--seed S] [--quiet]";
  }
  void add_options(CLI::App& sub) override {
    sub.footer(kHelp);
    sub.add_option("--exp_dir,--exp-dir", a_.exp_dir, "Experiment folder (refused when not empty, unless --resume)")
        ->required();
    sub.add_option("--config", a_.config, "JSON configuration (SPEC B.9 keys); optional with --resume");
    sub.add_flag("--resume", a_.resume, "Continue from DIR/checkpoints/last.safetensors");
    sub.add_option("--seed", a_.seed, "Overrides the configuration's seed");
    sub.add_flag("--quiet", a_.quiet, "No progress lines");
  }
  int run(std::ostream& out, std::ostream& err) override { return run_train(a_, out, err); }

 private:
  TrainArgs a_;
};

}  // namespace

std::unique_ptr<Command> make_train_command() { return std::make_unique<TrainCommand>(); }

}  // namespace gradstyle::cli
