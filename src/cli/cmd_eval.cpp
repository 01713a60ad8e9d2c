// `gradstyle eval`: options and help; the work is run_eval (eval.cpp).
#include <CLI/CLI.hpp>

#include "cli/command.hpp"
#include "cli/eval.hpp"

namespace gradstyle::cli {
namespace {

class EvalCommand final : public Command {
 public:
  std::string name() const override { return "eval"; }
  std::string summary() const override { return "Reconstruction metrics between two image folders (L2, PSNR, SSIM, LPIPS, ID)"; }
  std::string usage() const override {
    return "usage: gradstyle eval --images_dir GT --pred_dir P --save_dir O [--metrics l2,psnr,ssim[,lpips][,id]]\n"
           "                      [--by-order] [--resolution N] [--lpips-trunk F --lpips-heads F] [--id F] [--overwrite]";
  }
  void add_options(CLI::App& sub) override {
    sub.footer(
        "Pairs the images of GT and P by file name (without extension; --by-order pairs them by sorted\n"
        "position) and measures each pair in SPEC D.2's definitions: l2 = MSE with both images in [-1, 1],\n"
        "psnr on [0, 1], ssim as scikit-image (21 px uniform window, sample covariance, per channel),\n"
        "lpips (VGG: torchvision's vgg16 weights + the lpips v0.1 heads), id (IR-SE50 cosine). Writes\n"
        "O/metrics.csv (one row per image) and O/summary.json (mean and std per metric).\n\n"
        "Example:\n  gradstyle eval --images_dir faces/ --pred_dir out/inversions/ --save_dir out/metrics");
    sub.add_option("--images_dir,--images-dir", a_.gt_dir, "Ground-truth images")->required();
    sub.add_option("--pred_dir,--pred-dir", a_.pred_dir, "Predicted images")->required();
    sub.add_option("--save_dir,--save-dir", a_.save_dir, "Output folder (refused when not empty unless --overwrite)")->required();
    sub.add_option("--metrics", a_.metrics, "Comma-separated: l2, psnr, ssim, lpips, id")->capture_default_str();
    sub.add_flag("--by-order,--by_order", a_.by_order, "Pair by sorted position instead of by name");
    sub.add_option("--resolution", a_.resolution, "Resize both images to N x N (PIL bilinear) first; 0 = as stored")
        ->capture_default_str();
    sub.add_option("--lpips-trunk,--lpips_trunk", a_.lpips_trunk, "torchvision vgg16-397923af.pth");
    sub.add_option("--lpips-heads,--lpips_heads", a_.lpips_heads, "lpips weights/v0.1/vgg.pth");
    sub.add_option("--id", a_.id, "IR-SE50 model_ir_se50.pth");
    sub.add_option("--device", a_.device, "auto | cpu | cuda[:N]")->capture_default_str();
    sub.add_flag("--overwrite", a_.overwrite, "Write into a non-empty --save_dir");
    sub.add_flag("--quiet", a_.quiet, "No progress lines");
  }
  int run(std::ostream& out, std::ostream& err) override { return run_eval(a_, out, err); }

 private:
  EvalArgs a_;
};

}  // namespace

std::unique_ptr<Command> make_eval_command() { return std::make_unique<EvalCommand>(); }

}  // namespace gradstyle::cli
