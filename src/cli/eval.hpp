#pragma once
// `gradstyle eval`: reconstruction metrics between two folders of images (SPEC D.2).
#include <cstdint>
#include <iosfwd>
#include <string>

namespace gradstyle::cli {

struct EvalArgs {
  std::string gt_dir, pred_dir, save_dir;
  std::string metrics = "l2,psnr,ssim";  // any of l2, psnr, ssim, lpips, id
  bool by_order = false;                 // pair the i-th files instead of equal names
  int64_t resolution = 0;                // 0 = as stored (sizes must agree); else PIL-bilinear resize of both
  std::string lpips_trunk, lpips_heads;  // torchvision vgg16 weights + lpips v0.1 vgg.pth
  std::string id;                        // model_ir_se50.pth
  std::string device = "auto";
  bool overwrite = false;
  bool quiet = false;
};
// Writes SAVE/metrics.csv (name,<metrics>) and SAVE/summary.json, prints the summary table.
int run_eval(const EvalArgs& a, std::ostream& out, std::ostream& err);

}  // namespace gradstyle::cli
