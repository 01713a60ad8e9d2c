// `gradstyle invert` and `gradstyle edit`: options and help; the work is in invert.cpp.
#include <CLI/CLI.hpp>

#include "cli/command.hpp"
#include "cli/invert.hpp"

namespace gradstyle::cli {
namespace {

// The options both commands take (e4e/HFGI underscore names first, hyphenated aliases).
void add_common(CLI::App& sub, InversionArgs& a) {
  sub.add_option("ckpt,--checkpoint", a.checkpoint,
                 "e4e checkpoint (e4e_ffhq_encode.pt), GradStyle network (.safetensors) or toyfaces bundle folder")
      ->required();
  sub.add_option("--save_dir,--save-dir", a.save_dir, "Output folder (refused when not empty unless --overwrite)")->required();
  sub.add_option("--generator", a.generator, "Generator checkpoint (rosinality layout) instead of the one the model names");
  sub.add_option("--generator_key,--generator-key", a.generator_key, "Its entry (default g_ema; state_dict.decoder in e4e files)");
  sub.add_option("--encoder", a.encoder, "e4e checkpoint for a GradStyle network instead of the one it names");
  sub.add_option("--batch", a.batch, "Images per forward pass")->capture_default_str();
  sub.add_option("--n_sample,--n-sample", a.n_sample, "Only the first N images (0 = all)")->capture_default_str();
  sub.add_option("--device", a.device, "auto | cpu | cuda[:N]")->capture_default_str();
  sub.add_flag("--overwrite", a.overwrite, "Write into a non-empty --save_dir (our earlier outputs there are removed)");
  sub.add_flag("--keep-going,--keep_going", a.keep_going, "Skip unreadable images (exit status 1 at the end)");
  sub.add_flag("--quiet", a.quiet, "No progress lines");
  sub.add_flag("--align", a.align, "FFHQ-align every face first (dlib; as gradstyle align), one input per face");
  sub.add_option("--align_size,--align-size", a.align_size, "Side of the aligned square (e4e: 256)")->capture_default_str();
  sub.add_flag("--largest", a.largest, "With --align: only the largest face of each photo");
  sub.add_option("--landmarks", a.landmarks, "With --align: the dlib 68-point model file");
}

class InvertCommand final : public Command {
 public:
  std::string name() const override { return "invert"; }
  std::string summary() const override { return "Invert a folder of photos into W+ (e4e or GradStyle) and render them"; }
  std::string usage() const override {
    return "usage: gradstyle invert CKPT --images_dir D --save_dir O [--latents_only] [--resize_outputs] [--batch N]\n"
           "                        [--n_sample N] [--device auto|cpu|cuda] [--overwrite] [--keep-going]";
  }
  void add_options(CLI::App& sub) override {
    sub.footer(
        "Every PNG/JPEG/BMP of D (sorted by name) is converted to RGB, resized to the encoder's input with\n"
        "PIL's bilinear filter and normalised as e4e does; w = E(x) + latent_avg (e4e's get_latents).\n"
        "Writes O/latents.safetensors ('latents' [N, n_latent, 512] float32, the source names in the\n"
        "metadata) and O/inversions/00001.png ... in input order: G(w) with const noise for e4e, the\n"
        "reconstruction stream X^r for GradStyle. Images are quantised as e4e's tensor2im.\n\n"
        "Examples:\n"
        "  gradstyle invert e4e_ffhq_encode.pt --images_dir faces/ --save_dir out/\n"
        "  gradstyle invert models/toyfaces --images_dir toy/ --save_dir out/ --batch 8");
    add_common(sub, a_);
    sub.add_option("--images_dir,--images-dir", a_.images_dir, "Input images")->required();
    sub.add_flag("--latents_only,--latents-only", a_.latents_only, "Write latents.safetensors only");
    sub.add_flag("--resize_outputs,--resize-outputs", a_.resize_outputs,
                 "Inversions at 256 px (e4e's AdaptiveAvgPool2d) instead of the generator's size");
  }
  int run(std::ostream& out, std::ostream& err) override { return run_invert(a_, out, err); }

 private:
  InvertArgs a_;
};

class EditCommand final : public Command {
 public:
  std::string name() const override { return "edit"; }
  std::string summary() const override { return "Invert photos and edit them (InterFaceGAN directions, GANSpace)"; }
  std::string usage() const override {
    return "usage: gradstyle edit CKPT (--images_dir D | --latents F) --save_dir O --edit_attribute A\n"
           "                      (--edit_degree X | --range a:b:step) [--directions_dir DIR | --direction FILE]\n"
           "                      [--ganspace_pca F] [--ganspace idx,start,end,strength] [--align [--paste-back]]";
  }
  void add_options(CLI::App& sub) override {
    sub.footer(
        "InterFaceGAN: w_hat = w + X d, d from --direction FILE (.pt/.npy/.safetensors), the bundle's own\n"
        "directions (age, smile, yaw, eye_openness; there X is in the attribute's units), or\n"
        "<directions_dir>/<A>.pt (e4e's age, smile, pose). GANSpace: eyes, lip, beard (HFGI's tuples) or\n"
        "--ganspace idx,start,end,strength on ffhq_pca.pt; --edit_degree/--range replace the strength.\n"
        "e4e checkpoints edit the latent only; GradStyle runs the editing stream with the aligned\n"
        "residuals of the inversion (SPEC B.6). Writes O/inversion/00001.png, O/<A>_<X>/00001.png per\n"
        "degree and O/grids/00001.png (source | inversion | edits).\n\n"
        "Examples:\n"
        "  gradstyle edit e4e_ffhq_encode.pt --images_dir faces/ --save_dir out/ \\\n"
        "      --directions_dir editings/interfacegan_directions --edit_attribute age --range -3:3:1.5\n"
        "  gradstyle edit models/toyfaces --images_dir toy/ --save_dir out/ --edit_attribute smile --edit_degree 0.5");
    add_common(sub, a_);
    sub.add_option("--images_dir,--images-dir", a_.images_dir, "Input images");
    sub.add_option("--latents", a_.latents, "latents.safetensors of gradstyle invert instead of images (e4e only)");
    sub.add_option("--edit_attribute,--edit-attribute", a_.edit_attribute, "age, smile, pose, eyes, lip, beard, ...");
    sub.add_option("--edit_degree,--edit-degree", a_.edit_degree, "Step along the direction (GANSpace: the strength)");
    sub.add_option("--range", a_.range, "Sweep start:end:step (end included)");
    sub.add_option("--direction", a_.direction, "A direction file");
    sub.add_option("--directions_dir,--directions-dir", a_.directions_dir, "Folder with <attribute>.pt (and ffhq_pca.pt)");
    sub.add_option("--ganspace_pca,--ganspace-pca", a_.ganspace_pca, "GANSpace PCA file (ffhq_pca.pt)");
    sub.add_option("--ganspace", a_.ganspace, "A GANSpace edit idx,start,end,strength");
    sub.add_flag("--paste-back,--paste_back", a_.paste_back,
                 "With --align: also write each edit put back into the whole photo (O/<A>_<X>_pasted/)");
    sub.add_option("--feather", a_.feather, "Paste-back mask ramp, a fraction of the face square")->capture_default_str();
  }
  int run(std::ostream& out, std::ostream& err) override { return run_edit(a_, out, err); }

 private:
  EditArgs a_;
};

}  // namespace

std::unique_ptr<Command> make_invert_command() { return std::make_unique<InvertCommand>(); }
std::unique_ptr<Command> make_edit_command() { return std::make_unique<EditCommand>(); }

}  // namespace gradstyle::cli
